import { describe, expect, it } from "vitest";
import { BATCH_OVERHEAD_BYTES, CaptureRing } from "./ring.js";
import { sizedBatch } from "./testing/batches.js";

const KIB = 1024;

describe("CaptureRing", () => {
  it("keeps batches in order and hands back those received since a time", () => {
    const ring = new CaptureRing({ maxAgeMs: 60_000, maxBytesPerMirror: 1 << 20, maxTotalBytes: 1 << 20 });
    for (let t = 0; t < 10; t++) ring.push("shop/web", sizedBatch(1_000 + t * 1_000, 100));
    expect(ring.since("shop/web", 7_000).map((b) => b.receivedAtMs)).toEqual([7_000, 8_000, 9_000, 10_000]);
    expect(ring.since("shop/web", 0)).toHaveLength(10);
    expect(ring.since("shop/web", 10_001)).toEqual([]);
    expect(ring.since("shop/other", 0)).toEqual([]);
    expect(ring.stats()).toMatchObject({ mirrors: 1, batches: 10, bytes: 10 * (100 + BATCH_OVERHEAD_BYTES) });
  });

  it("drops batches older than maxAgeMs, on push for that mirror and on expire for all", () => {
    const ring = new CaptureRing({ maxAgeMs: 5_000, maxBytesPerMirror: 1 << 20, maxTotalBytes: 1 << 20 });
    ring.push("a/x", sizedBatch(1_000, 100));
    ring.push("a/x", sizedBatch(2_000, 100));
    ring.push("b/y", sizedBatch(2_000, 100));
    ring.push("a/x", sizedBatch(6_500, 100));
    expect(ring.since("a/x", 0).map((b) => b.receivedAtMs)).toEqual([2_000, 6_500]);
    expect(ring.has("b/y")).toBe(true);
    ring.expire(7_001);
    expect(ring.since("a/x", 0).map((b) => b.receivedAtMs)).toEqual([6_500]);
    expect(ring.has("b/y")).toBe(false);
    expect(ring.stats().evicted.age).toBe(3);
    ring.expire(20_000);
    expect(ring.stats()).toMatchObject({ mirrors: 0, batches: 0, bytes: 0 });
  });

  it("bounds each mirror's bytes, the oldest going first", () => {
    const perBatch = 10 * KIB;
    const ring = new CaptureRing({
      maxAgeMs: 60_000,
      maxBytesPerMirror: 3 * (perBatch + BATCH_OVERHEAD_BYTES),
      maxTotalBytes: 1 << 30,
    });
    for (let t = 1; t <= 5; t++) ring.push("a/x", sizedBatch(t, perBatch));
    ring.push("b/y", sizedBatch(6, perBatch));
    expect(ring.since("a/x", 0).map((b) => b.receivedAtMs)).toEqual([3, 4, 5]);
    expect(ring.bytesOf("a/x")).toBe(3 * (perBatch + BATCH_OVERHEAD_BYTES));
    expect(ring.stats().evicted.mirror_bytes).toBe(2);
    expect(ring.since("b/y", 0)).toHaveLength(1);
  });

  it("bounds the total, taking the oldest batch of any mirror", () => {
    const perBatch = 10 * KIB;
    const charged = perBatch + BATCH_OVERHEAD_BYTES;
    const ring = new CaptureRing({
      maxAgeMs: 60_000,
      maxBytesPerMirror: 10 * charged,
      maxTotalBytes: 4 * charged,
    });
    ring.push("a/x", sizedBatch(1, perBatch));
    ring.push("b/y", sizedBatch(2, perBatch));
    ring.push("a/x", sizedBatch(3, perBatch));
    ring.push("b/y", sizedBatch(4, perBatch));
    ring.push("c/z", sizedBatch(5, perBatch));
    ring.push("c/z", sizedBatch(6, perBatch));
    expect(ring.stats()).toMatchObject({ batches: 4, bytes: 4 * charged });
    expect(ring.stats().evicted.total_bytes).toBe(2);
    expect(ring.since("a/x", 0).map((b) => b.receivedAtMs)).toEqual([3]);
    expect(ring.since("b/y", 0).map((b) => b.receivedAtMs)).toEqual([4]);
    expect(ring.since("c/z", 0).map((b) => b.receivedAtMs)).toEqual([5, 6]);
  });

  it("never holds more than its bounds whatever is pushed, tiny batches included", () => {
    const maxTotal = 64 * KIB;
    const ring = new CaptureRing({ maxAgeMs: 1_000, maxBytesPerMirror: 16 * KIB, maxTotalBytes: maxTotal });
    let now = 0;
    for (let i = 0; i < 20_000; i++) {
      now += 1;
      ring.push(`ns/m${i % 13}`, sizedBatch(now, i % 7 === 0 ? 3_000 : 17));
      const s = ring.stats();
      if (s.bytes > maxTotal) throw new Error(`total ${s.bytes} over ${maxTotal} after push ${i}`);
      for (let m = 0; m < 13; m++) {
        if (ring.bytesOf(`ns/m${m}`) > 16 * KIB)
          throw new Error(`mirror m${m} over its bound after push ${i}`);
      }
    }
    ring.expire(now);
    for (const b of ring.since("ns/m1", 0)) expect(b.receivedAtMs).toBeGreaterThanOrEqual(now - 1_000);
  });

  it("does not keep a batch larger than the per-mirror bound", () => {
    const ring = new CaptureRing({ maxAgeMs: 60_000, maxBytesPerMirror: 4 * KIB, maxTotalBytes: 1 << 20 });
    ring.push("a/x", sizedBatch(1, 1 * KIB));
    expect(ring.push("a/x", sizedBatch(2, 8 * KIB))).toBe(false);
    expect(ring.since("a/x", 0).map((b) => b.receivedAtMs)).toEqual([1]);
    expect(ring.stats().evicted.too_large).toBe(1);
  });

  it("refuses bounds that are not positive, naming the option", () => {
    expect(() => new CaptureRing({ maxAgeMs: 0, maxBytesPerMirror: 1, maxTotalBytes: 1 })).toThrow(
      /maxAgeMs/,
    );
  });
});
