import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createLoops } from "./loops.js";

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe("createLoops", () => {
  it("runs at once and then every period, never overlapping a slow run, until stopped", async () => {
    const warn = vi.fn();
    const loops = createLoops({ warn } as never);
    let runs = 0;
    let release!: () => void;
    loops.every("slow", 100, () => {
      runs++;
      return new Promise<void>((r) => (release = r));
    });
    expect(runs).toBe(1);
    await vi.advanceTimersByTimeAsync(350);
    expect(runs).toBe(1); // the first run still going: the ticks skip
    release();
    await vi.advanceTimersByTimeAsync(100);
    expect(runs).toBe(2);
    loops.stop();
    release();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(runs).toBe(2);
    expect(warn).not.toHaveBeenCalled();
  });

  it("logs a failed run (rejected or thrown) with the loop's name and goes on", async () => {
    const warn = vi.fn();
    const loops = createLoops({ warn } as never);
    let n = 0;
    loops.every("flaky", 100, () => {
      n++;
      if (n === 1) throw new Error("sync boom");
      return Promise.reject(new Error("async boom"));
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(n).toBe(2);
    expect(warn).toHaveBeenCalledTimes(2);
    expect(
      warn.mock.calls.map((c) => [(c[0] as { loop: string }).loop, (c[0] as { err: Error }).err.message]),
    ).toEqual([
      ["flaky", "sync boom"],
      ["flaky", "async boom"],
    ]);
    loops.stop();
  });
});
