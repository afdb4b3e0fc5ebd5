/**
 * Graceful shutdown with one deadline. On SIGTERM or SIGINT (or `shutdown()`):
 *
 * 1. `signal` aborts: loops and consumers stop taking new work;
 * 2. in-flight work registered with `track()` is awaited;
 * 3. cleanup steps run one at a time, last registered first (connections opened at
 *    start close last);
 * 4. logs are flushed and the process exits: 0, or 1 if a step failed or the deadline
 *    passed (then the log names the work and the steps still pending).
 *
 * A second signal exits at once with 128 + the signal number.
 *
 *   const shutdown = createShutdown({ logger, timeoutMs: config.SHUTDOWN_TIMEOUT_MS });
 *   shutdown.onShutdown("nats", () => nats.close());
 *   shutdown.onShutdown("http", () => http.close());      // runs before "nats"
 *   for await (const msg of sub) {
 *     if (shutdown.signal.aborted) break;
 *     void shutdown.track(handle(msg), `request ${msg.subject}`);
 *   }
 */
import { constants } from "node:os";
import { flushLogger, type Logger } from "./logger.js";

export interface ShutdownOptions {
  logger: Logger;
  /** Deadline for the whole shutdown (draining and every step), from the first signal. */
  timeoutMs: number;
  /** Signals that start it; default SIGTERM and SIGINT. `[]` installs no handler. */
  signals?: readonly NodeJS.Signals[];
  /** How to leave; process.exit by default. */
  exit?: (code: number) => void;
}

export type ShutdownStep = () => unknown;

export interface Shutdown {
  /** Registers a cleanup step; steps run in reverse order of registration. Returns an unregister function. */
  onShutdown(name: string, step: ShutdownStep): () => void;
  /**
   * Counts `work` as in flight until it settles; shutdown waits for it (up to the
   * deadline). Returns a promise settling like `work`: failures stay the caller's to handle.
   */
  track<T>(work: Promise<T>, name?: string): Promise<T>;
  /** Number of tracked promises not yet settled. */
  readonly inFlight: number;
  /** Aborted when shutdown starts. */
  readonly signal: AbortSignal;
  readonly shuttingDown: boolean;
  /**
   * Starts the shutdown (once; later calls return the same promise). Resolves to the
   * exit code after `exit` was called — with process.exit, it never resolves.
   */
  shutdown(reason: string, exitCode?: number): Promise<number>;
  /** Removes the signal handlers. */
  dispose(): void;
}

export function createShutdown(opts: ShutdownOptions): Shutdown {
  const log = opts.logger;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const steps: { name: string; step: ShutdownStep }[] = [];
  const pending = new Map<number, string>();
  let nextId = 0;
  let idleWaiters: (() => void)[] = [];
  const controller = new AbortController();
  let running: Promise<number> | undefined;

  const onSignal = (signal: NodeJS.Signals) => {
    if (!running) {
      void shutdown(signal);
      return;
    }
    log.warn({ signal, inFlight: [...pending.values()] }, "second signal, exiting without waiting");
    flushLogger(log);
    exit(128 + (constants.signals[signal] ?? 0));
  };
  const signals = opts.signals ?? ["SIGTERM", "SIGINT"];
  for (const s of signals) process.on(s, onSignal);

  function idle(): Promise<void> {
    if (pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => idleWaiters.push(resolve));
  }

  function shutdown(reason: string, exitCode = 0): Promise<number> {
    running ??= run(reason, exitCode);
    return running;
  }

  async function run(reason: string, exitCode: number): Promise<number> {
    const started = Date.now();
    let code = exitCode;
    const remaining = [...steps].reverse();
    log.info(
      { reason, inFlight: pending.size, steps: remaining.map((s) => s.name), timeoutMs: opts.timeoutMs },
      "shutdown started",
    );
    controller.abort(reason);

    // The timer is ref'd on purpose: with nothing else left on the event loop (a stuck
    // promise holds none), Node would otherwise exit 0 before the deadline is reported.
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<"expired">((resolve) => {
      timer = setTimeout(() => resolve("expired"), opts.timeoutMs);
    });

    let timedOut = false;
    let current: string | undefined;
    if (pending.size > 0) {
      log.info({ inFlight: [...pending.values()] }, "shutdown waiting for in-flight work");
      timedOut = (await Promise.race([idle(), expired])) === "expired";
    }
    while (!timedOut && remaining.length > 0) {
      const { name, step } = remaining.shift()!;
      current = name;
      const t = Date.now();
      const outcome = await Promise.race([
        (async () => {
          try {
            await step();
            log.debug({ step: name, durationMs: Date.now() - t }, "shutdown step done");
          } catch (err) {
            code ||= 1;
            log.error({ err, step: name }, "shutdown step failed");
          }
        })(),
        expired,
      ]);
      timedOut = outcome === "expired";
    }
    clearTimeout(timer);

    if (timedOut) {
      code ||= 1;
      log.error(
        {
          timeoutMs: opts.timeoutMs,
          inFlight: [...pending.values()],
          ...(current !== undefined ? { step: current } : {}),
          stepsNotRun: remaining.map((s) => s.name),
        },
        "shutdown deadline exceeded",
      );
    }
    log.info({ exitCode: code, durationMs: Date.now() - started }, "shutdown complete");
    flushLogger(log);
    exit(code);
    return code;
  }

  return {
    onShutdown(name, step) {
      const entry = { name, step };
      steps.push(entry);
      return () => {
        const i = steps.indexOf(entry);
        if (i >= 0) steps.splice(i, 1);
      };
    },
    track(work, name = "task") {
      const id = nextId++;
      pending.set(id, name);
      return work.finally(() => {
        pending.delete(id);
        if (pending.size === 0) {
          const waiters = idleWaiters;
          idleWaiters = [];
          for (const w of waiters) w();
        }
      });
    },
    get inFlight() {
      return pending.size;
    },
    signal: controller.signal,
    get shuttingDown() {
      return running !== undefined;
    },
    shutdown,
    dispose() {
      for (const s of signals) process.off(s, onSignal);
    },
  };
}
