import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { createShutdown } from "./shutdown.js";
import { captureLogs } from "./testing/log-capture.js";

// In-process: no signal handlers, and `exit` records the code instead of leaving.
// The real signals and process exits are covered by main.int.test.ts.
function setup(timeoutMs = 1_000) {
  const logs = captureLogs();
  const logger = createLogger({ name: "shutdown-test", level: "debug", destination: logs.stream });
  const exits: number[] = [];
  const shutdown = createShutdown({ logger, timeoutMs, signals: [], exit: (c) => void exits.push(c) });
  return { shutdown, logs, exits };
}

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe("createShutdown", () => {
  it("aborts the signal, drains in-flight work, then runs steps last-registered first", async () => {
    const { shutdown, exits } = setup();
    const order: string[] = [];
    for (const name of ["nats", "redis", "http"]) shutdown.onShutdown(name, () => void order.push(name));
    const work = deferred();
    const tracked = shutdown.track(
      work.promise.then(() => order.push("work")),
      "job-1",
    );
    expect(shutdown.inFlight).toBe(1);

    const done = shutdown.shutdown("test");
    expect(shutdown.signal.aborted).toBe(true);
    expect(shutdown.shuttingDown).toBe(true);
    expect(shutdown.shutdown("again")).toBe(done);
    await Promise.resolve();
    expect(order).toEqual([]); // steps wait for the work
    work.resolve();
    await tracked;
    expect(await done).toBe(0);
    expect(order).toEqual(["work", "http", "redis", "nats"]);
    expect(shutdown.inFlight).toBe(0);
    expect(exits).toEqual([0]);
  });

  it("a failing step is logged, the others still run, and the exit code is 1", async () => {
    const { shutdown, logs, exits } = setup();
    const ran: string[] = [];
    shutdown.onShutdown("a", () => void ran.push("a"));
    shutdown.onShutdown("b", () => Promise.reject(new Error("close failed")));
    shutdown.onShutdown("c", () => void ran.push("c"));
    expect(await shutdown.shutdown("test")).toBe(1);
    expect(ran).toEqual(["c", "a"]);
    expect(logs.messages("shutdown step failed")[0]).toMatchObject({
      step: "b",
      err: { message: "close failed" },
    });
    expect(exits).toEqual([1]);
  });

  it("past the deadline it names the pending work and the steps not run, and exits 1", async () => {
    const { shutdown, logs, exits } = setup(150);
    shutdown.onShutdown("nats", () => undefined);
    void shutdown.track(new Promise(() => undefined), "stuck-job");
    const t = Date.now();
    expect(await shutdown.shutdown("test")).toBe(1);
    expect(Date.now() - t).toBeGreaterThanOrEqual(140);
    expect(logs.messages("shutdown deadline exceeded")[0]).toMatchObject({
      inFlight: ["stuck-job"],
      stepsNotRun: ["nats"],
    });
    expect(exits).toEqual([1]);
  });

  it("a step that hangs is reported by name", async () => {
    const { shutdown, logs } = setup(100);
    shutdown.onShutdown("first-registered", () => undefined);
    shutdown.onShutdown("hangs", () => new Promise(() => undefined));
    expect(await shutdown.shutdown("test")).toBe(1);
    expect(logs.messages("shutdown deadline exceeded")[0]).toMatchObject({
      step: "hangs",
      stepsNotRun: ["first-registered"],
      inFlight: [],
    });
  });

  it("track passes results and failures through, and unregistered steps do not run", async () => {
    const { shutdown } = setup();
    await expect(shutdown.track(Promise.resolve(42))).resolves.toBe(42);
    await expect(shutdown.track(Promise.reject(new Error("job failed")))).rejects.toThrow("job failed");
    expect(shutdown.inFlight).toBe(0);
    let ran = false;
    const off = shutdown.onShutdown("gone", () => (ran = true));
    off();
    expect(await shutdown.shutdown("test", 3)).toBe(3);
    expect(ran).toBe(false);
  });
});
