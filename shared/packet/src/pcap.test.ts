/**
 * pcap and pcapng: write → read round trips (µs and ns, both byte orders on read), streaming in
 * arbitrary chunks, damaged files, and the file writers.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import {
  CaptureFormatError,
  CaptureStreamReader,
  decodePcap,
  decodePcapng,
  detectCaptureFormat,
  encodePcap,
  encodePcapHeader,
  encodePcapngInterface,
  encodePcapngPacket,
  encodePcapngSectionHeader,
  PcapFileWriter,
  PcapngFileWriter,
  PcapngStreamReader,
  PcapStreamReader,
  readCapture,
} from "./index.js";
import type { PcapRecordInput } from "./index.js";
import { arbitraries, pcapngToBigEndian, pcapToBigEndian } from "./internal.js";

/** Cut `b` into chunks at the given (sorted, deduplicated) points. */
function chunks(b: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...points, b.length]) {
    out.push(b.subarray(prev, c));
    prev = c;
  }
  return out;
}

const expectRecords = (
  got: readonly { seconds: number; nanos: number; data: Buffer; originalLength: number }[],
  want: readonly PcapRecordInput[],
): void => {
  expect(got.length).toBe(want.length);
  got.forEach((r, i) => {
    const w = want[i]!;
    expect({
      seconds: r.seconds,
      nanos: r.nanos,
      data: Buffer.from(r.data),
      originalLength: r.originalLength,
    }).toEqual({
      seconds: w.seconds,
      nanos: w.nanos,
      data: Buffer.from(w.data),
      originalLength: w.originalLength ?? w.data.length,
    });
  });
};

const precision = fc.constantFrom<"us" | "ns">("us", "ns");
const recordsOf = (
  p: "us" | "ns",
): fc.Arbitrary<{ seconds: number; nanos: number; data: Buffer; originalLength: number }[]> =>
  fc.array(arbitraries.record(p), { maxLength: 12 });

describe("pcap", () => {
  it("writes the magic in the writer's (little-endian) order", () => {
    expect(encodePcapHeader({ precision: "us" }).subarray(0, 8)).toEqual(
      Buffer.from("d4c3b2a102000400", "hex"),
    );
    expect(encodePcapHeader({ precision: "ns" }).subarray(0, 4)).toEqual(Buffer.from("4d3cb2a1", "hex"));
  });

  it("round-trips records exactly, µs and ns, read little- and big-endian", () => {
    fc.assert(
      fc.property(
        precision.chain((p) => fc.tuple(fc.constant(p), recordsOf(p))),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 14, max: 0x40000 }),
        ([p, records], linkType, snaplen) => {
          const le = encodePcap(records, { precision: p, linkType, snaplen });
          for (const [file, order] of [
            [le, "le"],
            [pcapToBigEndian(le), "be"],
          ] as const) {
            const r = decodePcap(file);
            expect(r.ok).toBe(true);
            if (!r.ok) return;
            expect(r.error).toBeUndefined();
            expect(r.header).toMatchObject({
              byteOrder: order,
              precision: p,
              versionMajor: 2,
              versionMinor: 4,
              linkType,
              snaplen,
              fcsLength: undefined,
            });
            expectRecords(r.records, records);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reads a stream cut into arbitrary chunks as it reads the whole file, views where it can", () => {
    fc.assert(
      fc.property(
        precision.chain((p) => fc.tuple(fc.constant(p), recordsOf(p))),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.boolean(),
        ([p, records], cuts, be) => {
          const le = encodePcap(records, { precision: p });
          const file = be ? pcapToBigEndian(le) : le;
          const reader = new PcapStreamReader();
          const got = [];
          for (const c of chunks(file, cuts)) {
            const out = reader.push(c);
            expect(out.ok).toBe(true);
            got.push(...out.records);
          }
          expect(reader.end()).toBeUndefined();
          expectRecords(got, records);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("returns the records before a damaged tail, and says why it stopped", () => {
    const records = [1, 2, 3].map((i) => ({ seconds: i, nanos: i, data: Buffer.alloc(10, i) }));
    const file = encodePcap(records);
    const cut = decodePcap(file.subarray(0, file.length - 3));
    expect(cut.ok && cut.records.length).toBe(2);
    expect(cut.ok && cut.error).toEqual({ ok: false, reason: "truncated", layer: "pcap", at: 24 + 2 * 26 });
    const huge = Buffer.from(file);
    huge.writeUInt32LE(0x7fffffff, 24 + 26 + 8); // second record's incl_len
    const bad = decodePcap(huge);
    expect(bad.ok && bad.records.length).toBe(1);
    expect(bad.ok && bad.error?.reason).toBe("bad-record");
  });

  it("refuses what is not a pcap file", () => {
    expect(decodePcap(Buffer.from("not a capture file at all, really"))).toMatchObject({
      ok: false,
      reason: "bad-magic",
      at: 0,
    });
    const v1 = encodePcapHeader();
    v1.writeUInt16LE(1, 4);
    expect(decodePcap(v1)).toMatchObject({ ok: false, reason: "bad-version", at: 4 });
    expect(decodePcap(encodePcapHeader().subarray(0, 10))).toMatchObject({ ok: false, reason: "truncated" });
  });

  it("reads the FCS length from the link-type field's P bit", () => {
    const h = encodePcapHeader({ linkType: 1 });
    h.writeUInt32LE((2 << 28) | 0x04000000 | 1, 20);
    expect(decodePcap(h)).toMatchObject({ ok: true, header: { linkType: 1, fcsLength: 4 } });
  });

  it("writes files through PcapFileWriter, reusing the caller's buffer safely", async () => {
    const path = join(dir, "w.pcap");
    const w = await PcapFileWriter.create(path, { precision: "ns", snaplen: 9000 });
    // ~1.5 MB: more than the writer's 1 MiB buffer, so it flushes mid-way.
    const buf = Buffer.alloc(1000);
    const want: PcapRecordInput[] = [];
    for (let i = 0; i < 3000; i++) {
      buf.fill(i & 0xff);
      const data = buf.subarray(0, 1 + ((i * 37) % 1000));
      await w.write({ seconds: 1_700_000_000 + i, nanos: i * 7, data });
      want.push({ seconds: 1_700_000_000 + i, nanos: i * 7, data: Buffer.from(data) });
    }
    await w.close();
    const r = decodePcap(readFileSync(path));
    expect(r.ok && r.header.snaplen).toBe(9000);
    if (r.ok) expectRecords(r.records, want);
  });
});

describe("pcapng", () => {
  const section = { userAppl: "ovntap test", os: "Linux", hardware: "x86_64", comment: "section comment" };

  it("round-trips sections, interfaces (one per mirror) and packets, µs and ns, both byte orders", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            name: fc.string({ maxLength: 20 }),
            description: fc.string({ maxLength: 60 }),
            precision,
            linkType: fc.integer({ min: 0, max: 300 }),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        fc.array(
          fc.tuple(
            fc.nat(),
            fc.nat(),
            fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
            fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }),
          ),
          {
            maxLength: 10,
          },
        ),
        fc.array(arbitraries.record("ns"), { minLength: 10, maxLength: 10 }),
        (ifaces, picks, pool) => {
          // Strings without NUL: §3.5 makes a NUL octet end a string option.
          const clean = (s: string): string => s.replace(/\0/g, "");
          const parts = [
            encodePcapngSectionHeader(section),
            ...ifaces.map((i) =>
              encodePcapngInterface({ ...i, name: clean(i.name), description: clean(i.description) }),
            ),
          ];
          const want = picks.map(([ifPick, recPick, comment, flags]) => {
            const id = ifPick % ifaces.length;
            const p = ifaces[id]!.precision;
            const rec = pool[recPick % pool.length]!;
            const nanos = p === "us" ? Math.floor(rec.nanos / 1000) * 1000 : rec.nanos;
            const c = comment === undefined ? undefined : clean(comment);
            parts.push(encodePcapngPacket(id, { ...rec, nanos, comment: c, flags }, p));
            return { id, rec: { ...rec, nanos }, comment: c, flags };
          });
          const le = Buffer.concat(parts);
          for (const [file, order] of [
            [le, "le"],
            [pcapngToBigEndian(le), "be"],
          ] as const) {
            const r = decodePcapng(file);
            expect(r.ok).toBe(true);
            if (!r.ok) return;
            expect(r.error).toBeUndefined();
            expect(r.sections).toEqual([
              {
                index: 0,
                byteOrder: order,
                versionMajor: 1,
                versionMinor: 0,
                hardware: "x86_64",
                os: "Linux",
                userAppl: "ovntap test",
                comments: ["section comment"],
              },
            ]);
            expect(r.interfaces.map((i) => [i.id, i.name, i.description, i.linkType, i.tsresol])).toEqual(
              ifaces.map((i, n) => [
                n,
                clean(i.name),
                clean(i.description),
                i.linkType,
                i.precision === "us" ? 6 : 9,
              ]),
            );
            expectRecords(
              r.packets,
              want.map((w) => w.rec),
            );
            expect(r.packets.map((p) => [p.interfaceId, p.comments?.[0], p.flags])).toEqual(
              want.map((w) => [w.id, w.comment, w.flags]),
            );
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("skips unknown blocks, reads Simple Packet Blocks, and starts over at a new section", () => {
    const custom = Buffer.alloc(20);
    custom.writeUInt32LE(0x00000bad, 0);
    custom.writeUInt32LE(20, 4);
    custom.writeUInt32LE(20, 16);
    const spb = Buffer.alloc(16 + 8);
    spb.writeUInt32LE(3, 0);
    spb.writeUInt32LE(24, 4);
    spb.writeUInt32LE(5, 8); // original length 5: 5 data octets, 3 padding
    spb.write("hello", 12);
    spb.writeUInt32LE(24, 20);
    const file = Buffer.concat([
      encodePcapngSectionHeader(),
      custom,
      encodePcapngInterface({ name: "a" }),
      spb,
      encodePcapngPacket(0, { seconds: 1, nanos: 2, data: Buffer.from("x") }),
      encodePcapngSectionHeader(),
      encodePcapngInterface({ name: "b", precision: "us" }),
      encodePcapngPacket(0, { seconds: 3, nanos: 4000, data: Buffer.from("y") }, "us"),
    ]);
    const r = decodePcapng(file);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.sections.length).toBe(2);
    expect(
      r.packets.map((p) => [p.interface.name, p.interface.section, p.data.toString(), p.seconds, p.nanos]),
    ).toEqual([
      ["a", 0, "hello", 0, 0],
      ["a", 0, "x", 1, 2],
      ["b", 1, "y", 3, 4000],
    ]);
  });

  it("converts if_tsresol (powers of 10 and 2) and if_tsoffset", () => {
    const idb = (resol: number, offset: bigint): Buffer => {
      const b = Buffer.alloc(20 + 8 + 16 + 4);
      b.writeUInt32LE(1, 0);
      b.writeUInt32LE(b.length, 4);
      b.writeUInt16LE(1, 8);
      b.writeUInt16LE(9, 16); // if_tsresol
      b.writeUInt16LE(1, 18);
      b[20] = resol;
      b.writeUInt16LE(14, 24); // if_tsoffset
      b.writeUInt16LE(8, 26);
      b.writeBigInt64LE(offset, 28);
      b.writeUInt32LE(b.length, b.length - 4);
      return b;
    };
    const epb = (id: number, units: bigint): Buffer => {
      const b = Buffer.alloc(32);
      b.writeUInt32LE(6, 0);
      b.writeUInt32LE(32, 4);
      b.writeUInt32LE(id, 8);
      b.writeUInt32LE(Number(units >> 32n), 12);
      b.writeUInt32LE(Number(units & 0xffffffffn), 16);
      b.writeUInt32LE(32, 28);
      return b;
    };
    const file = Buffer.concat([
      encodePcapngSectionHeader(),
      idb(3, 0n), // milliseconds
      idb(0x80 | 20, 0n), // 2^-20 s
      idb(9, 100n),
      idb(12, 0n), // picoseconds (BigInt path)
      epb(0, 1_700_000_000_123n),
      epb(1, (5n << 20n) | (1n << 19n)), // 5.5 s
      epb(2, 1_700_000_000_999_999_999n),
      epb(3, 1_700_000_000_000_000_001_000n & 0xffffffffffffffffn),
    ]);
    const r = decodePcapng(file);
    expect(r.ok && r.error).toBeUndefined();
    const units = 1_700_000_000_000_000_001_000n & 0xffffffffffffffffn;
    expect(r.ok && r.packets.map((p) => [p.seconds, p.nanos])).toEqual([
      [1_700_000_000, 123_000_000],
      [5, 500_000_000],
      [1_700_000_100, 999_999_999],
      [Number(units / 10n ** 12n), Number(((units % 10n ** 12n) * 10n ** 9n) / 10n ** 12n)],
    ]);
  });

  it("reports damaged files with a reason and keeps what came before", () => {
    const good = Buffer.concat([
      encodePcapngSectionHeader(),
      encodePcapngInterface(),
      encodePcapngPacket(0, { seconds: 1, nanos: 1, data: Buffer.from("a") }),
    ]);
    expect(decodePcapng(Buffer.from("xxxxxxxxxxxxxxxxxxxx"))).toMatchObject({
      ok: false,
      reason: "bad-magic",
    });
    const badMagic = Buffer.from(good);
    badMagic.writeUInt32LE(0x11223344, 8);
    expect(decodePcapng(badMagic)).toMatchObject({ ok: false, reason: "bad-magic", at: 8 });
    const trailer = Buffer.concat([
      good,
      encodePcapngPacket(0, { seconds: 2, nanos: 2, data: Buffer.from("b") }),
    ]);
    trailer.writeUInt32LE(12345, trailer.length - 4);
    const t = decodePcapng(trailer);
    expect(t.ok && [t.packets.length, t.error?.reason]).toEqual([1, "bad-block"]);
    const noIface = Buffer.concat([
      encodePcapngSectionHeader(),
      encodePcapngPacket(0, { seconds: 1, nanos: 1, data: Buffer.from("a") }),
    ]);
    const n = decodePcapng(noIface);
    expect(n.ok && n.error?.reason).toBe("unknown-interface");
    const odd = Buffer.from(good);
    odd.writeUInt32LE(0x0a0d0d0a, 0);
    odd.writeUInt32LE(27, 4);
    expect(decodePcapng(odd)).toMatchObject({ ok: false, reason: "bad-block", at: 4 });
    const v2 = Buffer.from(good);
    v2.writeUInt16LE(2, 12);
    expect(decodePcapng(v2)).toMatchObject({ ok: false, reason: "bad-version", at: 12 });
    const cut = decodePcapng(good.subarray(0, good.length - 1));
    expect(cut.ok && [cut.packets.length, cut.error?.reason]).toEqual([0, "truncated"]);
  });

  it("streams in arbitrary chunks", () => {
    const parts = [encodePcapngSectionHeader(section), encodePcapngInterface({ name: "m" })];
    const want: PcapRecordInput[] = [];
    for (let i = 0; i < 40; i++) {
      const rec = { seconds: 1_700_000_000 + i, nanos: i, data: Buffer.alloc(i * 3, i) };
      want.push(rec);
      parts.push(encodePcapngPacket(0, rec));
    }
    const file = Buffer.concat(parts);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 30 }), fc.boolean(), (cuts, be) => {
        const reader = new PcapngStreamReader();
        const got = [];
        for (const c of chunks(be ? pcapngToBigEndian(file) : file, cuts)) {
          const out = reader.push(c);
          expect(out.ok).toBe(true);
          got.push(...out.packets);
        }
        expect(reader.end()).toBeUndefined();
        expectRecords(got, want);
      }),
      { numRuns: 200 },
    );
  });

  it("writes files through PcapngFileWriter with one interface per mirror", async () => {
    const path = join(dir, "w.pcapng");
    const w = await PcapngFileWriter.create(path, { userAppl: "ovntap" });
    const a = await w.addInterface({ name: "team-a/web", description: '{"target":{"type":"gre","key":99}}' });
    const b = await w.addInterface({ name: "team-a/db", precision: "us" });
    await w.write(a, { seconds: 10, nanos: 123_456_789, data: Buffer.from("one") });
    await w.write(b, { seconds: 11, nanos: 123_456_789, data: Buffer.from("two"), originalLength: 99 });
    await expect(w.write(7, { seconds: 0, nanos: 0, data: Buffer.alloc(0) })).rejects.toThrow(/never added/);
    await w.close();
    const r = decodePcapng(readFileSync(path));
    expect(
      r.ok &&
        r.packets.map((p) => [p.interface.name, p.seconds, p.nanos, p.data.toString(), p.originalLength]),
    ).toEqual([
      ["team-a/web", 10, 123_456_789, "one", 3],
      ["team-a/db", 11, 123_456_000, "two", 99],
    ]);
    expect(r.ok && r.interfaces[0]?.description).toBe('{"target":{"type":"gre","key":99}}');
  });
});

describe("either format", () => {
  it("detects the format from the first octets and reads both through one reader", async () => {
    const rec = { seconds: 5, nanos: 6, data: Buffer.from("abc") };
    const pcap = encodePcap([rec], { linkType: 101 });
    const ng = Buffer.concat([
      encodePcapngSectionHeader(),
      encodePcapngInterface({ name: "m", linkType: 1 }),
      encodePcapngPacket(0, rec),
    ]);
    expect([
      detectCaptureFormat(pcap),
      detectCaptureFormat(pcapToBigEndian(pcap)),
      detectCaptureFormat(ng),
      detectCaptureFormat(Buffer.from("abcd")),
    ]).toEqual(["pcap", "pcap", "pcapng", undefined]);
    for (const [file, linkType, name] of [
      [pcap, 101, undefined],
      [ng, 1, "m"],
    ] as const) {
      const got = [];
      // One octet at a time: the format is only known after four.
      for await (const p of readCapture([...file].map((x) => Uint8Array.of(x))))
        got.push({ ...p, data: Buffer.from(p.data) });
      expect(got).toEqual([
        {
          seconds: 5,
          nanos: 6,
          originalLength: 3,
          data: Buffer.from("abc"),
          linkType,
          interfaceId: 0,
          interfaceName: name,
        },
      ]);
    }
    const r = new CaptureStreamReader();
    expect(r.push(Buffer.from("garbage!"))).toMatchObject({ ok: false, reason: "bad-magic" });
    await expect(
      (async () => {
        for await (const _ of readCapture([pcap.subarray(0, pcap.length - 1)])) void _;
      })(),
    ).rejects.toBeInstanceOf(CaptureFormatError);
  });
});

const dir = mkdtempSync(join(tmpdir(), "ovntap-packet-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
