import { decodeFrame, decodePcap, PCAP_DEFAULT_SNAPLEN, PCAP_MAGIC_NANOSECONDS } from "@ovntap/packet";
import { describe, expect, it } from "vitest";
import { pcapFileName, pcapFromBatches } from "./pcap.js";
import { recordSpans, scanRecords } from "./records.js";
import { batchPayload, icmpFrame, ringBatch } from "./testing/batches.js";

const file = (chunks: Buffer[]) => Buffer.concat(chunks);

/** ICMP sequence numbers of a decoded file, in file order. */
function icmpSeqs(bytes: Buffer): number[] {
  const f = decodePcap(bytes);
  if (!f.ok) throw new Error(`not a pcap: ${f.reason}`);
  expect(f.error).toBeUndefined();
  return f.records.map((r) => {
    const d = decodeFrame(r.data);
    if (!d.ok || d.l4?.protocol !== "icmp") throw new Error("not an ICMP frame");
    return d.l4.seq;
  });
}

describe("scanRecords / recordSpans", () => {
  it("counts records and their wire bytes", () => {
    const frames = [icmpFrame(1), icmpFrame(2, true)];
    const p = batchPayload([
      { seconds: 10, nanos: 1, data: frames[0]! },
      { seconds: 10, nanos: 2, data: frames[1]!.subarray(0, 40), originalLength: frames[1]!.length },
    ]);
    expect(scanRecords(p)).toEqual({
      count: 2,
      wireBytes: frames[0]!.length + frames[1]!.length,
      validBytes: p.length,
      error: undefined,
    });
    expect([...recordSpans(p)]).toEqual([
      { start: 0, end: 16 + frames[0]!.length, seconds: 10, nanos: 1 },
      { start: 16 + frames[0]!.length, end: p.length, seconds: 10, nanos: 2 },
    ]);
  });

  it("keeps the whole records before a damaged tail and says why", () => {
    const good = batchPayload([{ seconds: 1, nanos: 0, data: icmpFrame(1) }]);
    const cut = Buffer.concat([
      good,
      batchPayload([{ seconds: 1, nanos: 1, data: icmpFrame(2) }]).subarray(0, 30),
    ]);
    const s = scanRecords(cut);
    expect(s).toMatchObject({ count: 1, validBytes: good.length });
    expect(s.error).toMatch(/record 2 says \d+ bytes but 14 remain/);
    expect([...recordSpans(cut)]).toHaveLength(1);
    const badNanos = batchPayload([{ seconds: 1, nanos: 0, data: icmpFrame(1) }]);
    badNanos.writeUInt32LE(1_000_000_000, 4);
    expect(scanRecords(badNanos)).toMatchObject({ count: 0, validBytes: 0 });
    expect(scanRecords(Buffer.alloc(5)).error).toBe("5 stray bytes after record 0");
  });
});

describe("pcapFromBatches", () => {
  it("writes one nanosecond header and the batches' records as they are", () => {
    const batches = [
      ringBatch(1_000, [
        { seconds: 100, nanos: 1, data: icmpFrame(1) },
        { seconds: 100, nanos: 2, data: icmpFrame(1, true) },
      ]),
      ringBatch(1_050, [{ seconds: 100, nanos: 500_000_000, data: icmpFrame(2) }], { snaplen: 1500 }),
    ];
    const out = pcapFromBatches(batches);
    const bytes = file(out.chunks);
    expect(out.length).toBe(bytes.length);
    expect(out).toMatchObject({ packets: 3, linkType: 1, snaplen: 65535, omitted: 0 });
    expect(bytes.readUInt32LE(0)).toBe(PCAP_MAGIC_NANOSECONDS);
    expect(bytes.subarray(24)).toEqual(Buffer.concat(batches.map((b) => b.payload)));
    const f = decodePcap(bytes);
    if (!f.ok) throw new Error(f.reason);
    expect(f.header).toMatchObject({ precision: "ns", byteOrder: "le", linkType: 1, snaplen: 65535 });
    expect(f.records.map((r) => [r.seconds, r.nanos])).toEqual([
      [100, 1],
      [100, 2],
      [100, 500_000_000],
    ]);
    expect(f.records[0]!.data).toEqual(icmpFrame(1));
    expect(icmpSeqs(bytes)).toEqual([1, 1, 2]);
  });

  it("merges several streams' records by timestamp (nodes, or the two tunnels of a `both` mirror)", () => {
    const a = (seq: number, s: number, n: number) => ({ seconds: s, nanos: n, data: icmpFrame(seq) });
    const batches = [
      ringBatch(1, [a(1, 5, 100), a(3, 5, 300), a(5, 6, 0)], { stream: "node-a gre 7" }),
      ringBatch(2, [a(2, 5, 200), a(4, 5, 999_999_999)], { stream: "node-b gre 8" }),
      ringBatch(3, [a(6, 6, 1), a(7, 6, 2)], { stream: "node-a gre 7" }),
      ringBatch(4, [a(8, 7, 0)], { stream: "node-b gre 8" }),
    ];
    const out = pcapFromBatches(batches);
    expect(out.packets).toBe(8);
    const bytes = file(out.chunks);
    expect(out.length).toBe(bytes.length);
    expect(icmpSeqs(bytes)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // 6 and 7 follow each other in one payload: one chunk
    expect(out.chunks.length).toBeLessThan(1 + 8);
  });

  it("keeps one link type, the newest batch's, and counts the records it leaves out", () => {
    const out = pcapFromBatches([
      ringBatch(1, [{ seconds: 1, nanos: 0, data: Buffer.from([0x45, 0, 0, 20]) }], { linkType: 101 }),
      ringBatch(2, [{ seconds: 2, nanos: 0, data: icmpFrame(9) }]),
    ]);
    expect(out).toMatchObject({ packets: 1, omitted: 1, linkType: 1 });
    expect(icmpSeqs(file(out.chunks))).toEqual([9]);
  });

  it("is a valid empty file when nothing was captured", () => {
    const out = pcapFromBatches([]);
    expect(out).toMatchObject({ packets: 0, length: 24, snaplen: PCAP_DEFAULT_SNAPLEN, linkType: 1 });
    const f = decodePcap(file(out.chunks));
    expect(f.ok && f.records.length === 0 && f.error === undefined).toBe(true);
  });
});

describe("pcapFileName", () => {
  it("names the mirror and the UTC time", () => {
    expect(pcapFileName("shop", "web", new Date("2025-01-31T12:34:56.789Z"))).toBe(
      "shop-web-20250131T123456Z.pcap",
    );
  });
});
