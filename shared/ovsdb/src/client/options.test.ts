import { describe, expect, it } from "vitest";
import { OptionsError } from "../errors.js";
import { Backoff, parseClientOptions, type OvsdbClientOptions } from "./options.js";

describe("parseClientOptions", () => {
  it("fills defaults", () => {
    const o = parseClientOptions({ remote: "unix:/x.sock" });
    expect(o.probeIntervalMs).toBe(5000);
    expect(o.reconnect).toBe(true);
    expect(o.backoff).toEqual({ initialMs: 250, maxMs: 8000, multiplier: 2, jitter: 0.5 });
    expect(o.remotes).toHaveLength(1);
  });

  it.each<[Record<string, unknown>, RegExp]>([
    [{ remote: 42 }, /invalid option remote/],
    [{ remote: "tcp:h:1", probeIntervalMs: -1 }, /probeIntervalMs/],
    [{ remote: "tcp:h:1", backoff: { jitter: 2 } }, /backoff.jitter/],
    [{ remote: "tcp:h:1", backoff: { initialMs: 100, maxMs: 10 } }, /backoff.maxMs/],
    [{ remote: "ssl:h:1" }, /ssl/],
    [{ remote: "tcp:h:1", database: "" }, /database/],
    [{ remote: "tcp:h:1", logger: { info: () => {} } }, /logger.debug/],
    [{ remote: "tcp:h:1", reconnect: "yes" }, /reconnect/],
  ])("rejects %j naming the field", (opts, msg) => {
    expect(() => parseClientOptions(opts as unknown as OvsdbClientOptions)).toThrow(OptionsError);
    expect(() => parseClientOptions(opts as unknown as OvsdbClientOptions)).toThrow(msg);
  });
});

describe("Backoff", () => {
  it("grows exponentially to the cap, with jitter taking at most its share, and resets", () => {
    const noJitter = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.5 }, () => 0);
    expect([1, 2, 3, 4, 5, 6].map(() => noJitter.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    noJitter.reset();
    expect(noJitter.next()).toBe(100);
    const fullJitter = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.5 }, () => 0.999);
    expect(fullJitter.next()).toBe(50);
    const random = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.5 });
    for (let i = 0; i < 20; i++) {
      const d = random.next();
      expect(d).toBeGreaterThanOrEqual(Math.min(1000, 100 * 2 ** i) / 2 - 1);
      expect(d).toBeLessThanOrEqual(Math.min(1000, 100 * 2 ** i));
    }
  });
});
