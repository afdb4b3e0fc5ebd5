import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jitteredBackoff } from "./backoff.js";

describe("jitteredBackoff", () => {
  it("stays within [capped/2, capped] where capped = min(max, base·2^attempt)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 120_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, baseMs, maxMs, r) => {
          const capped = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
          const d = jitteredBackoff(attempt, { baseMs, maxMs, random: () => r });
          expect(d).toBeGreaterThanOrEqual(Math.floor(capped / 2));
          expect(d).toBeLessThanOrEqual(capped);
        },
      ),
    );
  });

  it("grows with the attempt until the ceiling", () => {
    const mid = () => 0.5;
    const seq = [0, 1, 2, 3, 4, 10].map((a) =>
      jitteredBackoff(a, { baseMs: 100, maxMs: 1_000, random: mid }),
    );
    expect(seq).toEqual([75, 150, 300, 600, 750, 750]);
  });
});
