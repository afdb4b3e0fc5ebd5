import { describe, expect, it } from "vitest";
import { type CliIo, progressLine, runCli } from "./cli-run.js";
import { makeTempDir, removeDir } from "./proc.js";

function io(root: boolean): CliIo & { stdout: string; stderr: string } {
  const repoRoot = makeTempDir("ovntap-cli-test-");
  const o = {
    stdout: "",
    stderr: "",
    repoRoot,
    out: (t: string) => void (o.stdout += t),
    err: (t: string) => void (o.stderr += t),
    isRoot: () => root,
  };
  return o;
}

describe("lab CLI", () => {
  it("refuses up and down without root, saying why", async () => {
    for (const verb of ["up", "down"]) {
      const o = io(false);
      expect(await runCli([verb], o)).toBe(1);
      expect(o.stderr).toContain(
        "the lab needs root: run as root or with sudo — it creates network namespaces and starts Open vSwitch",
      );
      removeDir(o.repoRoot!);
    }
  });

  it("reports no lab when there is no state file", async () => {
    const o = io(true);
    expect(await runCli(["status"], o)).toBe(3);
    expect(await runCli(["down"], o)).toBe(0);
    expect(o.stdout).toContain("no lab is up");
    removeDir(o.repoRoot!);
  });

  it("rejects unknown commands and options with the usage", async () => {
    const o = io(true);
    expect(await runCli(["sideways"], o)).toBe(2);
    expect(await runCli(["up", "--bogus"], o)).toBe(2);
    expect(o.stderr).toContain("usage: lab <command>");
    removeDir(o.repoRoot!);
  });

  it("prints a line per progress event", () => {
    expect(progressLine({ step: "ovs-vswitchd", status: "start", elapsedMs: 0 })).toBe("▸ ovs-vswitchd\n");
    expect(progressLine({ step: "x", status: "done", elapsedMs: 12 })).toBe("  ✓ x (12 ms)\n");
    expect(progressLine({ step: "x", status: "wait", elapsedMs: 4000, detail: "chassis" })).toBe(
      "  … waiting for chassis (4.0 s)\n",
    );
  });
});
