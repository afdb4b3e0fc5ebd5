/**
 * Periodic loops of a long-running service: each runs at once and then every `ms`, never
 * overlapping itself (a slow run makes the next tick skip), logging a failed run and going on.
 *
 *   const loops = createLoops(log);
 *   loops.every("expiry", 1_000, sweepExpiries);
 *   …
 *   loops.stop();
 */
import type { Logger } from "./logger.js";

export interface Loops {
  /** Runs `fn` now and every `ms` milliseconds until stop(); a run still going makes a tick skip. */
  every(this: void, name: string, ms: number, fn: () => Promise<void>): void;
  /** Stops every loop (a run in progress finishes on its own). */
  stop(this: void): void;
}

export function createLoops(log: Pick<Logger, "warn">): Loops {
  const timers: NodeJS.Timeout[] = [];
  const busy = new Set<string>();
  return {
    every(name, ms, fn) {
      const tick = () => {
        if (busy.has(name)) return;
        busy.add(name);
        let run: Promise<void>;
        try {
          run = fn();
        } catch (err) {
          run = Promise.reject(err instanceof Error ? err : new Error(String(err)));
        }
        run
          .catch((err: unknown) => log.warn({ err, loop: name }, "loop failed"))
          .finally(() => busy.delete(name));
      };
      const t = setInterval(tick, ms);
      t.unref();
      timers.push(t);
      tick();
    },
    stop() {
      for (const t of timers.splice(0)) clearInterval(t);
    },
  };
}
