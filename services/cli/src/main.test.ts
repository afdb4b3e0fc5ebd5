/**
 * The process wiring: bin/ovntap.js without a build, and src/main.ts run as a real process (via
 * tsx) passing argv, the streams and the exit code through.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = dirname(here);
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ovntap-cli-bin-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function node(args: string[], env: Record<string, string> = {}, cwd = dir) {
  const r = spawnSync(process.execPath, args, {
    cwd,
    encoding: "utf8",
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? "", ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("bin/ovntap.js", () => {
  it("says how to build when dist/main.js is missing", () => {
    mkdirSync(join(dir, "pkg", "bin"), { recursive: true });
    writeFileSync(join(dir, "pkg", "package.json"), JSON.stringify({ type: "module" }));
    copyFileSync(join(pkg, "bin", "ovntap.js"), join(dir, "pkg", "bin", "ovntap.js"));
    const r = node([join(dir, "pkg", "bin", "ovntap.js"), "--help"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("the CLI is not built yet");
    expect(r.err).toContain("npm run build");
  });
});

describe("src/main.ts as a process", () => {
  // From the package directory, so `--import tsx` resolves from the workspace's node_modules.
  const main = (args: string[], env?: Record<string, string>) =>
    node(["--conditions=@ovntap/source", "--import", "tsx", join(here, "main.ts"), ...args], env, pkg);

  it("prints help on stdout and exits 0", () => {
    const r = main(["--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("ovntap <command> [flags]");
  });

  it("passes usage errors (2) and unreachable NATS (3) through as exit codes", () => {
    const usage = main(["get"]);
    expect(usage.code).toBe(2);
    expect(usage.err).toContain("ovntap get: needs the mirror's NAME");
    const down = main(["get", "web", "-n", "shop"], { NATS_URL: "nats://127.0.0.1:1" });
    expect(down.code).toBe(3);
    expect(down.err).toContain("cannot reach NATS at nats://127.0.0.1:1 (from NATS_URL)");
  });
});
