import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { waitFor } from "@ovntap/lab";
import { afterEach, describe, expect, it } from "vitest";

// The real thing: a service process, real signals, real exit codes, logs read from its stdout.
const fixture = join(import.meta.dirname, "fixtures", "service.ts");
const running: ChildProcess[] = [];
afterEach(() => {
  for (const c of running.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

interface Run {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  messages: () => string[];
}

function runFixture(env: Record<string, string>): Run {
  const child = spawn(process.execPath, ["--conditions=@ovntap/source", "--import", "tsx", fixture], {
    cwd: import.meta.dirname,
    env: { ...process.env, LOG_LEVEL: "debug", HTTP_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.push(child);
  const lines: Record<string, unknown>[] = [];
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
    let nl: number;
    while ((nl = out.indexOf("\n")) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      // Every stdout line must be a JSON log record: a parse failure fails the test.
      if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, lines, stderr: () => err, exited, messages: () => lines.map((l) => String(l.msg)) };
}

async function ready(run: Run): Promise<void> {
  await waitFor(() => run.messages().includes("fixture ready"), {
    what: `the fixture to start (stderr: ${run.stderr()})`,
    timeoutMs: 30_000,
  });
}

describe("runMain and createShutdown in a real process", () => {
  it("SIGTERM: in-flight work finishes, steps run in reverse order, logs are complete, exit 0", async () => {
    const run = runFixture({ FIXTURE_MODE: "graceful", SHUTDOWN_TIMEOUT_MS: "10000" });
    await ready(run);
    expect(run.lines[0]).toMatchObject({ msg: "starting", service: "fixture", config: { HTTP_PORT: 0 } });
    run.child.kill("SIGTERM");
    expect(await run.exited).toEqual({ code: 0, signal: null });

    const msgs = run.messages();
    const steps = run.lines.filter((l) => l.msg === "fixture step ran").map((l) => l.step);
    expect(steps).toEqual(["third", "second", "first"]);
    expect(msgs.indexOf("fixture work finished")).toBeGreaterThan(msgs.indexOf("shutdown started"));
    expect(msgs.indexOf("fixture work finished")).toBeLessThan(msgs.indexOf("fixture step ran"));
    expect(run.lines.find((l) => l.msg === "shutdown started")).toMatchObject({
      reason: "SIGTERM",
      inFlight: 1,
      steps: ["keep-alive", "third", "second", "first"],
    });
    // The last line made it out before exit.
    expect(run.lines.at(-1)).toMatchObject({ msg: "shutdown complete", exitCode: 0 });
  });

  it("SIGINT is handled the same way", async () => {
    const run = runFixture({ SHUTDOWN_TIMEOUT_MS: "10000", FIXTURE_WORK_MS: "10" });
    await ready(run);
    run.child.kill("SIGINT");
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.lines.find((l) => l.msg === "shutdown started")).toMatchObject({ reason: "SIGINT" });
  });

  it("a stuck task: exits 1 at the deadline and names what was still pending", async () => {
    const run = runFixture({ FIXTURE_MODE: "stuck", SHUTDOWN_TIMEOUT_MS: "700", FIXTURE_WORK_MS: "10" });
    await ready(run);
    const t = Date.now();
    run.child.kill("SIGTERM");
    expect(await run.exited).toEqual({ code: 1, signal: null });
    expect(Date.now() - t).toBeGreaterThanOrEqual(650);
    expect(run.lines.find((l) => l.msg === "shutdown deadline exceeded")).toMatchObject({
      level: "error",
      inFlight: ["stuck-task"],
      stepsNotRun: ["keep-alive", "third", "second", "first"],
    });
    expect(run.messages()).toContain("fixture work finished");
    expect(run.lines.at(-1)).toMatchObject({ msg: "shutdown complete", exitCode: 1 });
  });

  it("a second signal exits at once with 128 + the signal number", async () => {
    const run = runFixture({ FIXTURE_MODE: "stuck", SHUTDOWN_TIMEOUT_MS: "60000" });
    await ready(run);
    run.child.kill("SIGTERM");
    await waitFor(() => run.messages().includes("shutdown waiting for in-flight work"), {
      what: "the shutdown to start",
      timeoutMs: 10_000,
    });
    const t = Date.now();
    run.child.kill("SIGTERM");
    expect(await run.exited).toEqual({ code: 143, signal: null });
    expect(Date.now() - t).toBeLessThan(5_000);
    expect(run.lines.at(-1)).toMatchObject({
      msg: "second signal, exiting without waiting",
      signal: "SIGTERM",
    });
  });

  it("main throwing: a fatal log, the cleanup steps, exit 1", async () => {
    const run = runFixture({ FIXTURE_MODE: "throw", SHUTDOWN_TIMEOUT_MS: "5000" });
    expect(await run.exited).toEqual({ code: 1, signal: null });
    expect(run.lines.find((l) => l.msg === "main failed")).toMatchObject({
      level: "fatal",
      err: { message: "main failed on purpose" },
    });
    expect(run.lines.filter((l) => l.msg === "fixture step ran").map((l) => l.step)).toEqual([
      "third",
      "second",
      "first",
    ]);
  });

  it("an unhandled rejection: a fatal log and exit 1", async () => {
    const run = runFixture({ FIXTURE_MODE: "reject", SHUTDOWN_TIMEOUT_MS: "5000", FIXTURE_WORK_MS: "10" });
    expect(await run.exited).toEqual({ code: 1, signal: null });
    expect(run.lines.find((l) => l.msg === "unhandled promise rejection")).toMatchObject({
      level: "fatal",
      err: { message: "nobody handles this" },
    });
  });

  it("invalid configuration: every bad variable on stderr, exit 78, nothing on stdout", async () => {
    const run = runFixture({ HTTP_PORT: "http", SHUTDOWN_TIMEOUT_MS: "soon", FIXTURE_MODE: "wild" });
    expect(await run.exited).toEqual({ code: 78, signal: null });
    const err = run.stderr();
    expect(err).toContain("fixture: invalid configuration");
    expect(err).toContain("HTTP_PORT: must be an integer from 0 to 65535");
    expect(err).toContain("SHUTDOWN_TIMEOUT_MS: must be an integer ≥ 0");
    expect(err).toContain("FIXTURE_MODE: must be one of graceful, stuck, throw, reject");
    expect(run.lines).toEqual([]);
  });
});
