import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  DEFAULT_NATS_URL,
  defaultPrincipal,
  findRepoRoot,
  parseEnvFile,
  redactUrl,
  resolveNatsTarget,
} from "./config.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ovntap-cli-config-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("parseEnvFile", () => {
  it("reads what the lab writes and plain NAME=value lines", () => {
    const text = [
      "# lab",
      "export NATS_URL='nats://127.0.0.1:4333'",
      `export LAB_DIR='/srv/it'\\''s'`,
      'REDIS_URL="redis://127.0.0.1:6390"',
      "PLAIN=value # comment",
      "not a line",
    ].join("\n");
    expect(parseEnvFile(text)).toEqual({
      NATS_URL: "nats://127.0.0.1:4333",
      LAB_DIR: "/srv/it's",
      REDIS_URL: "redis://127.0.0.1:6390",
      PLAIN: "value",
    });
  });
});

describe("resolveNatsTarget", () => {
  it("prefers --nats, then NATS_URL", () => {
    expect(resolveNatsTarget("nats://a:1", { NATS_URL: "nats://b:2" }, dir)).toEqual({
      url: "nats://a:1",
      source: "--nats",
    });
    expect(resolveNatsTarget(undefined, { NATS_URL: "nats://b:2" }, dir)).toEqual({
      url: "nats://b:2",
      source: "NATS_URL",
    });
  });

  it("reads .lab/env in the current directory", () => {
    mkdirSync(join(dir, ".lab"));
    writeFileSync(join(dir, ".lab", "env"), "export NATS_URL='nats://127.0.0.1:4999'\n");
    expect(resolveNatsTarget(undefined, {}, dir)).toEqual({
      url: "nats://127.0.0.1:4999",
      source: join(".lab", "env"),
    });
  });

  it("reads .lab/env at the repository root from a subdirectory", () => {
    writeFileSync(join(dir, "package.json"), JSON.stringify({ workspaces: ["services/*"] }));
    mkdirSync(join(dir, ".lab"));
    writeFileSync(join(dir, ".lab", "env"), "export NATS_URL='nats://127.0.0.1:4998'\n");
    const sub = join(dir, "services", "cli");
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, "package.json"), JSON.stringify({ name: "@ovntap/cli" }));
    expect(findRepoRoot(sub)).toBe(dir);
    expect(resolveNatsTarget(undefined, {}, sub).url).toBe("nats://127.0.0.1:4998");
  });

  it("falls back to the default", () => {
    expect(resolveNatsTarget(undefined, { NATS_URL: " " }, dir)).toEqual({
      url: DEFAULT_NATS_URL,
      source: "the default",
    });
  });
});

describe("redactUrl and defaultPrincipal", () => {
  it("masks passwords and tokens", () => {
    expect(redactUrl("nats://bob:hunter2@h:4222")).toBe("nats://bob:***@h:4222");
    expect(redactUrl("nats://s3cret@h:4222,nats://h2:4222")).toBe("nats://***@h:4222,nats://h2:4222");
  });
  it("takes OVNTAP_PRINCIPAL, else the OS user", () => {
    expect(defaultPrincipal({ OVNTAP_PRINCIPAL: "ci:deploy" })).toBe("ci:deploy");
    expect(defaultPrincipal({})).toBeTruthy();
  });
});
