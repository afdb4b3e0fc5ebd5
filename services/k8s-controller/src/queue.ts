/**
 * A work queue of resource keys, as controllers keep them (client-go's workqueue): a key queued
 * twice is reconciled once; a key is never reconciled by two workers at once (a change that
 * arrives meanwhile runs it again afterwards); a failure is retried after an exponential
 * backoff per key, reset by a success.
 *
 *     const q = createWorkQueue({ concurrency: 4, retryBaseMs: 500, retryMaxMs: 60_000, logger,
 *                                 handle: (key) => reconcileKey(key) });
 *     q.add("shop/web");
 *     await q.stop();     // no new work; waits for the running reconciles
 */
import type { Logger } from "@ovntap/runtime";

export interface WorkQueueOptions {
  concurrency: number;
  retryBaseMs: number;
  retryMaxMs: number;
  logger: Logger;
  /** Reconciles one key; a number asks for another pass after that many milliseconds. */
  handle: (key: string) => Promise<number | undefined>;
  /** Called after each pass (for metrics). */
  onResult?: (result: "ok" | "error") => void;
}

export interface WorkQueue {
  add(key: string): void;
  addAfter(key: string, ms: number): void;
  /** Keys waiting or running. */
  readonly depth: number;
  stop(): Promise<void>;
}

export function createWorkQueue(opts: WorkQueueOptions): WorkQueue {
  const queued: string[] = [];
  const waiting = new Set<string>();
  const running = new Set<string>();
  /** Keys changed while running: queued again when their pass ends. */
  const dirty = new Set<string>();
  const failures = new Map<string, number>();
  const timers = new Map<string, NodeJS.Timeout>();
  const inFlight = new Set<Promise<void>>();
  let stopped = false;

  const add = (key: string) => {
    if (stopped) return;
    if (running.has(key)) {
      dirty.add(key);
      return;
    }
    if (waiting.has(key)) return;
    waiting.add(key);
    queued.push(key);
    pump();
  };

  const addAfter = (key: string, ms: number) => {
    if (stopped) return;
    const existing = timers.get(key);
    if (existing) clearTimeout(existing);
    const t = setTimeout(() => {
      timers.delete(key);
      add(key);
    }, ms);
    t.unref();
    timers.set(key, t);
  };

  const pump = () => {
    while (!stopped && running.size < opts.concurrency && queued.length > 0) {
      const key = queued.shift() as string;
      waiting.delete(key);
      running.add(key);
      const p = run(key).finally(() => {
        inFlight.delete(p);
        running.delete(key);
        if (dirty.delete(key)) add(key);
        pump();
      });
      inFlight.add(p);
    }
  };

  const run = async (key: string) => {
    try {
      const again = await opts.handle(key);
      failures.delete(key);
      opts.onResult?.("ok");
      if (again !== undefined) addAfter(key, again);
    } catch (err) {
      const n = (failures.get(key) ?? 0) + 1;
      failures.set(key, n);
      const delay = Math.min(opts.retryMaxMs, opts.retryBaseMs * 2 ** Math.min(n - 1, 30));
      opts.logger.warn({ err, key, attempt: n, retryInMs: delay }, "reconcile failed, retrying");
      opts.onResult?.("error");
      addAfter(key, delay);
    }
  };

  return {
    add,
    addAfter,
    get depth() {
      return queued.length + running.size;
    },
    async stop() {
      stopped = true;
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      queued.length = 0;
      waiting.clear();
      await Promise.allSettled([...inFlight]);
    },
  };
}
