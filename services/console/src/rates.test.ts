import { describe, expect, it } from "vitest";
import { RateBoard, RateSeries } from "./rates.js";

describe("RateSeries", () => {
  it("counts into one-second buckets and reads them back oldest first", () => {
    const s = new RateSeries(5);
    s.add(100, 2, 200);
    s.add(100, 1, 50);
    s.add(102, 4, 400);
    expect(s.at(100)).toEqual([3, 250]);
    expect(s.at(101)).toEqual([0, 0]);
    expect(s.series(102)).toEqual({ start: 98, packets: [0, 0, 3, 0, 4], bytes: [0, 0, 250, 0, 400] });
    expect([s.packetsTotal, s.bytesTotal]).toEqual([7, 650]);
  });

  it("forgets what slid out of the window, even after a long silence", () => {
    const s = new RateSeries(5);
    s.add(100, 9, 900);
    s.add(104, 1, 10);
    expect(s.at(100)).toEqual([9, 900]);
    s.add(105, 1, 10);
    expect(s.at(100)).toEqual([0, 0]);
    s.add(1_000, 7, 70);
    expect(s.series(1_000).packets).toEqual([0, 0, 0, 0, 7]);
    // a late batch for a second already out of the window counts in the totals only
    s.add(990, 5, 50);
    expect(s.series(1_000).packets).toEqual([0, 0, 0, 0, 7]);
    expect(s.packetsTotal).toBe(23);
  });

  it("averages the rate over the last complete seconds", () => {
    const s = new RateSeries(120);
    // one ping each way per second, 98-byte frames
    for (let t = 10; t < 20; t++) s.add(t, 2, 196);
    expect(s.rate(19, 5)).toEqual({ pps: 2, bps: 196 });
    // three silent seconds bring the 5-second average down to 2/5 of it
    expect(s.rate(22, 5)).toEqual({ pps: 0.8, bps: 78.4 });
    expect(s.rate(30, 5)).toEqual({ pps: 0, bps: 0 });
  });

  it("reads 0 for seconds after the newest and before the window", () => {
    const s = new RateSeries(3);
    s.add(50, 1, 1);
    expect(s.at(51)).toEqual([0, 0]);
    expect(s.at(47)).toEqual([0, 0]);
    expect(new RateSeries(3).series(10).packets).toEqual([0, 0, 0]);
  });
});

describe("RateBoard", () => {
  it("ticks every mirror's second and snapshots every series", () => {
    const b = new RateBoard({ window: 4 });
    b.add("a/x", 10_000, 3, 300);
    b.add("a/x", 10_999, 1, 100);
    b.add("b/y", 11_500, 5, 500);
    expect(b.tick(10)).toEqual({
      "a/x": { packets: 4, bytes: 400, pps: 0.8, bps: 80, packetsTotal: 4, bytesTotal: 400 },
      "b/y": { packets: 0, bytes: 0, pps: 0, bps: 0, packetsTotal: 5, bytesTotal: 500 },
    });
    expect(b.snapshot(11)["b/y"]).toMatchObject({ start: 8, packets: [0, 0, 0, 5], bytes: [0, 0, 0, 500] });
  });

  it("prunes mirrors silent for the whole window unless told to keep them", () => {
    const b = new RateBoard({ window: 10 });
    b.add("a/x", 1_000, 1, 1);
    b.add("b/y", 1_000, 1, 1);
    b.add("c/z", 15_000, 1, 1);
    expect(b.prune(11, () => false)).toEqual(["a/x", "b/y"]);
    expect(b.has("c/z")).toBe(true);
    b.add("a/x", 16_000, 1, 1);
    expect(b.prune(40, (id) => id === "a/x")).toEqual(["c/z"]);
    expect(b.has("a/x")).toBe(true);
  });

  it("tracks at most maxSeries mirrors", () => {
    const b = new RateBoard({ maxSeries: 2 });
    expect(b.add("a/x", 0, 1, 1)).toBe(true);
    expect(b.add("b/y", 0, 1, 1)).toBe(true);
    expect(b.add("c/z", 0, 1, 1)).toBe(false);
    expect(b.add("a/x", 0, 1, 1)).toBe(true);
  });
});
