/**
 * The fast file-to-file path against the regular decoders: `decapFrame` gives `decapsulate`'s
 * answer (kind, tunnel id, inner bounds and link type, or the same reason, layer and offset) on
 * valid, truncated, bit-flipped and random frames and on the malformed corpus; `decapCapture`
 * writes, for every input record, exactly the record `decapsulate` says it should — whatever the
 * input's format, byte order, precision or chunking.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import {
  buildArpFrame,
  buildErspan2,
  buildErspan3,
  buildGre,
  buildIcmpEchoFrame,
  buildIpv4,
  buildTcpFrame,
  buildTransportFrame,
  buildUdpFrame,
  decapsulate,
  decodePcap,
  decodePcapng,
  encodePcap,
  encodePcapngInterface,
  encodePcapngPacket,
  encodePcapngSectionHeader,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
} from "./index.js";
import type { PcapRecordInput } from "./index.js";
import { arbitraries, pcapngToBigEndian, pcapToBigEndian } from "./internal.js";
import { decapCapture, decapFailure, decapFrame, decapFrameResult as R } from "./decap-file.js";
import type { DecapStats } from "./decap-file.js";

const dir = mkdtempSync(join(tmpdir(), "ovntap-decap-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** decapFrame on `frame` placed at `pad` in a bigger buffer with junk after it, against decapsulate. */
function expectSameAnswer(frame: Buffer, linkType: number, pad = 0): void {
  const b = Buffer.alloc(pad + frame.length + 64, 0x5a);
  frame.copy(b, pad);
  const code = decapFrame(b, pad, pad + frame.length, linkType);
  const d = decapsulate(frame, linkType);
  if (!d.ok) {
    expect(code).not.toBe(0);
    expect(decapFailure(code, R.at)).toEqual(d);
    return;
  }
  expect(code).toBe(0);
  expect({
    kind: ["", "gre", "erspan2", "erspan3"][R.kind],
    tunnelId: R.tunnelId === -1 ? undefined : R.tunnelId,
    innerOffset: R.innerStart - pad,
    innerEnd: R.innerEnd - pad,
    innerLength: R.wireEnd - R.innerStart,
    innerLinkType: R.innerLinkType,
  }).toEqual({
    kind: d.kind,
    tunnelId: d.tunnelId,
    innerOffset: d.innerOffset,
    innerEnd: d.innerOffset + d.inner.length,
    innerLength: d.innerLength,
    innerLinkType: d.innerLinkType,
  });
}

describe("decapFrame gives decapsulate's answer", () => {
  it("on valid GRE, ERSPAN II and ERSPAN III frames, every truncation and every bit flipped", () => {
    fc.assert(
      fc.property(
        arbitraries.encapsulated,
        fc.nat(),
        fc.nat(),
        fc.nat({ max: 7 }),
        ({ frame }, cut, at, bit) => {
          expectSameAnswer(frame, LINKTYPE_ETHERNET, cut % 5);
          expectSameAnswer(frame.subarray(0, cut % (frame.length + 1)), LINKTYPE_ETHERNET);
          const flipped = Buffer.from(frame);
          flipped[at % frame.length]! ^= 1 << bit;
          expectSameAnswer(flipped, LINKTYPE_ETHERNET, 3);
          // The same bytes as raw IP (what a LINKTYPE_RAW capture of the transport holds).
          expectSameAnswer(flipped.subarray(14), LINKTYPE_RAW);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("on random bytes, for each link type", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 120 }),
        fc.constantFrom(LINKTYPE_ETHERNET, LINKTYPE_RAW, 228, 229, 113),
        (bytes, lt) => expectSameAnswer(Buffer.from(bytes), lt, 1),
      ),
      { numRuns: 3000 },
    );
  });

  it("on the malformed-packet corpus", () => {
    const fixtures = fileURLToPath(new URL("../test/fixtures/", import.meta.url));
    const files = readdirSync(fixtures).filter((f) => f.endsWith(".hex"));
    expect(files.length).toBeGreaterThan(30);
    for (const f of files) {
      const text = readFileSync(join(fixtures, f), "utf8");
      const hex = text
        .split("\n")
        .filter((l) => !l.startsWith("#"))
        .join("")
        .replace(/\s+/g, "");
      expectSameAnswer(Buffer.from(hex, "hex"), LINKTYPE_ETHERNET, 2);
    }
  });
});

// ---------------------------------------------------------------------------------------------

const tcp = buildTcpFrame({
  src: "10.0.0.1",
  dst: "10.0.0.2",
  srcPort: 40000,
  dstPort: 443,
  payload: Buffer.alloc(30, 1),
});
const icmp = buildIcmpEchoFrame({ src: "10.0.0.2", dst: "10.0.0.1", id: 7, seq: 1 });
const udp6 = buildUdpFrame({
  src: "fd00::1",
  dst: "fd00::2",
  srcPort: 40001,
  dstPort: 40002,
  vlans: [{ vid: 10 }],
});
const arp = buildArpFrame({ senderMac: "02:00:00:00:00:01", senderIp: "10.0.0.1", targetIp: "10.0.0.2" });
const v4 = { src: "198.51.100.1", dst: "198.51.100.2" };
const v6 = { src: "2001:db8::1", dst: "2001:db8::2" };
const ipOnly = buildIpv4({ src: "10.1.0.1", dst: "10.1.0.2", protocol: 17, payload: Buffer.alloc(12) });

/** A mix of what a transport interface sees: every tunnel kind, plain traffic, damage. */
function mixedFrames(): Buffer[] {
  const big = buildUdpFrame({
    src: "10.0.0.1",
    dst: "10.0.0.2",
    srcPort: 1,
    dstPort: 2,
    payload: Buffer.alloc(70_000, 3),
  });
  return [
    buildTransportFrame(v4, buildGre({ key: 99, inner: tcp })),
    buildTransportFrame(v4, buildGre({ key: 7, seq: 3, csum: true, inner: icmp })),
    buildTransportFrame(v4, buildGre({ inner: arp })),
    buildTransportFrame(v4, buildErspan2({ sessionId: 700, index: 3, inner: udp6 })),
    buildTransportFrame(v6, buildErspan2({ sessionId: 5, inner: tcp })),
    buildTransportFrame(v4, buildErspan3({ sessionId: 9, inner: icmp })),
    buildTransportFrame(
      v6,
      buildErspan3({ sessionId: 9, platform: { id: 3, infoHigh: 1, infoLow: 2 }, inner: arp }),
    ),
    // Not encapsulated: plain TCP and ARP on the transport.
    tcp,
    arp,
    // Damaged: truncated GRE, bad ERSPAN version, unknown GRE protocol.
    buildTransportFrame(v4, buildGre({ key: 1, inner: tcp })).subarray(0, 40),
    buildTransportFrame(v4, buildErspan2({ sessionId: 1, version: 3, inner: tcp })),
    buildTransportFrame(v4, buildGre({ protocol: 0x8847, inner: tcp })),
    // A frame longer than the read buffer (64 KiB in the chunking test).
    buildTransportFrame(v4, buildGre({ key: 99, inner: big })),
    // Padded outer frame: padding past the IP length is not part of the inner frame.
    buildTransportFrame({ ...v4, pad: true }, buildGre({ key: 99, inner: Buffer.alloc(0) })),
  ];
}

/**
 * Records of `frames` (every other one claiming 1000 more octets on the wire than the outer IP
 * length says), then two GRE (key 42) records whose inner original length is not their captured
 * length: a snaplen cut inside the mirrored frame, and an outer IP length longer than the wire.
 */
function recordsOf(frames: Buffer[], precision: "us" | "ns"): PcapRecordInput[] {
  const time = (i: number) => ({
    seconds: 1_700_000_000 + i,
    nanos: precision === "us" ? (123_456 + i) * 1000 : 123_456_789 + i,
  });
  const records: PcapRecordInput[] = frames.map((data, i) => ({
    ...time(i),
    data,
    originalLength: data.length + (i % 2 === 0 ? 0 : 1000),
  }));
  const whole = buildTransportFrame(v4, buildGre({ key: 42, inner: tcp }));
  records.push({
    ...time(frames.length),
    data: whole.subarray(0, whole.length - 10),
    originalLength: whole.length,
  });
  const lie = Buffer.from(whole);
  lie.writeUInt16BE(lie.readUInt16BE(16) + 100, 16);
  records.push({ ...time(frames.length + 1), data: lie, originalLength: lie.length });
  return records;
}

interface Expected {
  seconds: number;
  nanos: number;
  data: Buffer;
  originalLength: number;
  linkType: number;
}

/** What decapCapture must write for `records`, by the regular decoder. */
function expected(
  records: PcapRecordInput[],
  linkType = LINKTYPE_ETHERNET,
  filter?: (d: { kind: string; tunnelId: number | undefined }) => boolean,
): Expected[] {
  const out: Expected[] = [];
  for (const r of records) {
    const d = decapsulate(r.data, linkType);
    if (!d.ok) continue;
    if (filter !== undefined && !filter(d)) continue;
    const wire = Math.min(d.innerOffset + d.innerLength, r.originalLength ?? r.data.length) - d.innerOffset;
    out.push({
      seconds: r.seconds,
      nanos: r.nanos,
      data: Buffer.from(d.inner),
      originalLength: Math.max(wire, d.inner.length),
      linkType: d.innerLinkType,
    });
  }
  return out;
}

function readPcapOut(file: string): Expected[] {
  const p = decodePcap(readFileSync(file));
  if (!p.ok) throw new Error(`output unreadable: ${p.reason} ${p.layer} ${p.at}`);
  expect(p.error).toBeUndefined();
  return p.records.map((r) => ({
    seconds: r.seconds,
    nanos: r.nanos,
    data: Buffer.from(r.data),
    originalLength: r.originalLength,
    linkType: p.header.linkType,
  }));
}

function readPcapngOut(file: string): Expected[] {
  const p = decodePcapng(readFileSync(file));
  if (!p.ok) throw new Error(`output unreadable: ${p.reason} ${p.layer} ${p.at}`);
  expect(p.error).toBeUndefined();
  return p.packets.map((r) => ({
    seconds: r.seconds,
    nanos: r.nanos,
    data: Buffer.from(r.data),
    originalLength: r.originalLength,
    linkType: r.interface.linkType,
  }));
}

let fileNo = 0;
function tmp(name: string): string {
  return join(dir, `${fileNo++}-${name}`);
}

describe("decapCapture", () => {
  const frames = mixedFrames();

  it.each([
    ["µs", "us" as const, false],
    ["ns", "ns" as const, false],
    ["big-endian µs", "us" as const, true],
    ["big-endian ns", "ns" as const, true],
  ])(
    "pcap (%s) in → pcap out: each unwrapped record, counted by reason otherwise",
    async (_n, precision, bigEndian) => {
      const records = recordsOf(frames, precision);
      const le = encodePcap(records, { precision });
      const input = tmp("in.pcap");
      writeFileSync(input, bigEndian ? pcapToBigEndian(le) : le);
      const output = tmp("out.pcap");
      const stats = await decapCapture(input, output);
      const want = expected(records);
      expect(readPcapOut(output)).toEqual(want.map((w) => ({ ...w, linkType: LINKTYPE_ETHERNET })));
      expect(stats).toMatchObject<Partial<DecapStats>>({
        inputFormat: "pcap",
        outputFormat: "pcap",
        packets: frames.length + 2,
        written: want.length,
        tunnels: { gre: 7, erspan2: 2, erspan3: 2 },
        otherTunnel: 0,
        linkTypeMismatch: 0,
        linkTypes: [LINKTYPE_ETHERNET],
        inputError: undefined,
      });
      expect(stats.failures).toEqual({
        "not-gre ipv4": 1,
        "not-ip ethernet": 1,
        "truncated gre": 1,
        "bad-version erspan": 1,
        "unsupported-protocol gre": 1,
      });
      // Output precision follows the input's.
      expect(readFileSync(output).readUInt32LE(0)).toBe(precision === "us" ? 0xa1b2c3d4 : 0xa1b23c4d);
    },
  );

  it("reads records that straddle chunks, a record bigger than the buffer, and tiny stream chunks", async () => {
    const records = recordsOf([...frames, ...frames, ...frames], "ns");
    const bytes = encodePcap(records);
    const want = expected(records);
    const a = tmp("a.pcap");
    await decapCapture(
      (function* () {
        for (let i = 0; i < bytes.length; i += 7) yield bytes.subarray(i, i + 7);
      })(),
      a,
      { bufferSize: 1 },
    );
    expect(readPcapOut(a)).toEqual(want);
    const input = tmp("in.pcap");
    writeFileSync(input, bytes);
    const b = tmp("b.pcap");
    await decapCapture(input, b, { bufferSize: 64 * 1024 });
    expect(readFileSync(b)).toEqual(readFileSync(a));
  });

  it("--key and --session keep one tunnel and count the others", async () => {
    const records = recordsOf(frames, "ns");
    const input = tmp("in.pcap");
    writeFileSync(input, encodePcap(records));
    const byKey = tmp("key.pcap");
    const s1 = await decapCapture(input, byKey, { key: 99 });
    const wantKey = expected(records, LINKTYPE_ETHERNET, (d) => d.kind === "gre" && d.tunnelId === 99);
    expect(wantKey.length).toBe(3);
    expect(readPcapOut(byKey)).toEqual(wantKey);
    expect(s1).toMatchObject({ written: 3, otherTunnel: 8, packets: frames.length + 2 });
    const bySession = tmp("session.pcap");
    const s2 = await decapCapture(input, bySession, { session: 9 });
    const wantSession = expected(records, LINKTYPE_ETHERNET, (d) => d.kind !== "gre" && d.tunnelId === 9);
    expect(wantSession.length).toBe(2);
    expect(readPcapOut(bySession)).toEqual(wantSession);
    expect(s2).toMatchObject({ written: 2, otherTunnel: 9 });
  });

  it("mixed inner link types: pcap keeps the first and counts the rest, pcapng keeps all", async () => {
    const mixed = [
      buildTransportFrame(v4, buildGre({ key: 1, protocol: 0x0800, inner: ipOnly })),
      buildTransportFrame(v4, buildGre({ key: 2, inner: tcp })),
      buildTransportFrame(v4, buildErspan3({ sessionId: 4, frameType: 2, inner: ipOnly })),
      buildTransportFrame(v6, buildGre({ key: 3, protocol: 0x86dd, inner: udp6.subarray(18) })),
    ];
    const records = recordsOf(mixed, "us");
    const input = tmp("in.pcap");
    writeFileSync(input, encodePcap(records, { precision: "us" }));
    const want = expected(records);

    const p = tmp("out.pcap");
    const s = await decapCapture(input, p);
    expect(s).toMatchObject({ written: 3, linkTypeMismatch: 3, linkTypes: [LINKTYPE_RAW] });
    expect(readPcapOut(p)).toEqual(want.filter((w) => w.linkType === LINKTYPE_RAW));

    const n = tmp("out.pcapng");
    const sn = await decapCapture(input, n, { format: "pcapng" });
    expect(sn).toMatchObject({
      written: 6,
      linkTypeMismatch: 0,
      linkTypes: [LINKTYPE_RAW, LINKTYPE_ETHERNET],
    });
    expect(readPcapngOut(n)).toEqual(want);
  });

  it.each([false, true])(
    "pcapng in (big-endian: %s) → pcapng and pcap out, interfaces and timestamps kept",
    async (bigEndian) => {
      const records = recordsOf(frames, "ns");
      const le = Buffer.concat([
        encodePcapngSectionHeader({ userAppl: "test" }),
        encodePcapngInterface({ name: "transport-a" }),
        encodePcapngInterface({ name: "transport-b", precision: "us" }),
        ...records.map((r, i) =>
          encodePcapngPacket(
            i % 2,
            { ...r, nanos: i % 2 === 1 ? Math.floor(r.nanos / 1000) * 1000 : r.nanos },
            i % 2 === 0 ? "ns" : "us",
          ),
        ),
      ]);
      const input = tmp("in.pcapng");
      writeFileSync(input, bigEndian ? pcapngToBigEndian(le) : le);
      const inPackets = decodePcapng(readFileSync(input));
      if (!inPackets.ok) throw new Error("input");
      const asRecords = inPackets.packets.map((p) => ({
        seconds: p.seconds,
        nanos: p.nanos,
        data: p.data,
        originalLength: p.originalLength,
      }));
      const want = expected(asRecords);

      const ng = tmp("out.pcapng");
      const s = await decapCapture(input, ng, { format: "pcapng" });
      expect(s).toMatchObject({ inputFormat: "pcapng", written: want.length, packets: frames.length + 2 });
      expect(readPcapngOut(ng)).toEqual(want);
      const out = decodePcapng(readFileSync(ng));
      if (!out.ok) throw new Error("output");
      expect(out.interfaces.map((i) => [i.name, i.tsresol])).toEqual([
        ["transport-a", 9],
        ["transport-b", 6],
      ]);

      const pc = tmp("out.pcap");
      await decapCapture(input, pc);
      expect(readPcapOut(pc)).toEqual(want);
    },
  );

  it("stops at damage, keeping what came before; refuses a file that is no capture without creating the output", async () => {
    const records = recordsOf(frames, "ns");
    const bytes = encodePcap(records);
    const input = tmp("cut.pcap");
    writeFileSync(input, bytes.subarray(0, bytes.length - 5));
    const out = tmp("cut-out.pcap");
    const s = await decapCapture(input, out);
    expect(s.inputError).toMatchObject({ reason: "truncated", layer: "pcap" });
    expect(readPcapOut(out)).toEqual(expected(records.slice(0, -1)));

    const junk = tmp("junk.pcap");
    writeFileSync(junk, "this is not a capture file");
    const none = tmp("none.pcap");
    const s2 = await decapCapture(junk, none);
    expect(s2.inputError).toMatchObject({ reason: "bad-magic" });
    expect(existsSync(none)).toBe(false);
  });

  it("rejects with the sink's error when writing fails", async () => {
    const input = tmp("in.pcap");
    writeFileSync(input, encodePcap(recordsOf([...frames, ...frames], "ns")));
    let calls = 0;
    const failing = {
      write: () => (++calls === 2 ? Promise.reject(new Error("disk full")) : Promise.resolve()),
    };
    await expect(decapCapture(input, failing, { bufferSize: 1 })).rejects.toThrow("disk full");
  });

  it("an input with nothing to unwrap still gives a readable, empty capture", async () => {
    const input = tmp("plain.pcap");
    writeFileSync(input, encodePcap([tcp, arp].map((data) => ({ seconds: 1, nanos: 2, data }))));
    for (const format of ["pcap", "pcapng"] as const) {
      const out = tmp(`empty.${format}`);
      const s = await decapCapture(input, out, { format });
      expect(s).toMatchObject({
        packets: 2,
        written: 0,
        failures: { "not-gre ipv4": 1, "not-ip ethernet": 1 },
      });
      expect(format === "pcap" ? readPcapOut(out) : readPcapngOut(out)).toEqual([]);
    }
  });
});
