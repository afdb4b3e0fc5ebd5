/**
 * One million damaged packets through every decoding path: `decapsulate`, `decapFrame` (the
 * file-to-file kernel, held to decapsulate's answer on each), `decodePacketRecord` + JSON (what
 * `ovntap decode --json` prints, over every layer's decoder), and for one packet in ten
 * `decodeFrame` and the tcpdump-style summary. No exception may
 * escape; every packet ends up counted under exactly one outcome — `ok` or the record's error
 * reason — and the counts are printed.
 *
 * The packets: valid GRE / ERSPAN II / ERSPAN III frames (fast-check's arbitraries, seeded), then
 * mutated — bits flipped, cut short, a length field set to a lie (IPv4 total length and IHL, IPv6
 * payload length, UDP length, TCP data offset, GRE flags, ERSPAN version), header octets
 * overwritten — and pure random bytes, as Ethernet or raw-IP frames. Seeded: the same million
 * every run.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decapFailure, decapFrame, decapFrameResult } from "./decap-file.js";
import {
  decapsulate,
  decodeFrame,
  decodePacketRecord,
  formatDecapsulatedSummary,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
} from "./index.js";
import { arbitraries } from "./internal.js";

const PACKETS = 1_000_000;
const SEED = 0x0a7a9;

/** mulberry32: small, fast, seeded. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Offsets of the fields a lie goes into, found by walking the valid frame once. */
interface Template {
  readonly frame: Buffer;
  /** Outer IP header offset and version. */
  readonly ip: number;
  readonly v6: boolean;
  readonly gre: number;
  /** Start of the mirrored frame and its IP header (−1 for ARP). */
  readonly inner: number;
  readonly innerIp: number;
  readonly innerV6: boolean;
  readonly l4: number;
  readonly l4Proto: number;
}

function template(frame: Buffer): Template {
  const d = decapsulate(frame);
  if (!d.ok) throw new Error("templates are valid frames");
  // Templates have a 20-octet IPv4 header or a 40-octet IPv6 one (no options, no extensions).
  const outerIp = d.gre.offset - (d.outer.family === 4 ? 20 : 40);
  const f = decodeFrame(d.inner, d.innerLinkType);
  const innerIp = f.ok && f.ip !== undefined ? d.innerOffset + f.ip.offset : -1;
  const l4 =
    f.ok && f.ip !== undefined && f.l4 !== undefined ? d.innerOffset + f.ip.offset + f.ip.headerLength : -1;
  return {
    frame,
    ip: outerIp,
    v6: d.outer.family === 6,
    gre: d.gre.offset,
    inner: d.innerOffset,
    innerIp,
    innerV6: f.ok && f.ip?.version === 6,
    l4,
    l4Proto: f.ok && f.ip !== undefined ? f.ip.protocol : -1,
  };
}

const MUTATIONS = ["valid", "bit-flips", "truncation", "length-lie", "overwrite", "random"] as const;
type Mutation = (typeof MUTATIONS)[number];

describe("1,000,000 random and mutated packets", () => {
  it("never throw, and each is counted under one outcome", () => {
    // Valid frames with no IPv4 options (so the outer header is 20 octets) from the arbitraries.
    const templates = fc
      .sample(arbitraries.encapsulated, { seed: SEED, numRuns: 600 })
      .map((e) => e.frame)
      .filter((f) => {
        const d = decapsulate(f);
        return d.ok && (d.outer.family === 6 || (f[d.gre.offset - 20]! & 0x0f) === 5);
      })
      .map(template);
    expect(templates.length).toBeGreaterThan(300);

    const r = rng(SEED);
    const int = (n: number) => Math.floor(r() * n);
    const scratch = Buffer.alloc(4096);
    const outcomes = new Map<string, number>();
    const byMutation = new Map<Mutation, number>();
    const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

    for (let n = 1; n <= PACKETS; n++) {
      const mutation = MUTATIONS[int(MUTATIONS.length)]!;
      byMutation.set(mutation, (byMutation.get(mutation) ?? 0) + 1);
      let len: number;
      let linkType = LINKTYPE_ETHERNET;
      if (mutation === "random") {
        len = int(160);
        for (let i = 0; i < len; i += 4) scratch.writeUInt32LE(Math.floor(r() * 4294967296), i);
        // Now and then a plausible start, so random bytes reach deeper layers.
        if (r() < 0.5 && len >= 24) {
          scratch.writeUInt16BE(r() < 0.5 ? 0x0800 : 0x86dd, 12);
          scratch[14] = r() < 0.5 ? 0x45 : 0x60;
          scratch[23] = 47;
          scratch[20] = 47;
        }
        if (r() < 0.2) linkType = LINKTYPE_RAW;
      } else {
        const t = templates[int(templates.length)]!;
        len = t.frame.length;
        t.frame.copy(scratch, 0);
        switch (mutation) {
          case "valid":
            break;
          case "bit-flips":
            for (let k = 1 + int(4); k > 0; k--) scratch[int(len)]! ^= 1 << int(8);
            break;
          case "truncation":
            len = int(len);
            break;
          case "overwrite":
            for (let k = 1 + int(3); k > 0; k--) scratch[int(Math.min(len, t.inner + 60))] = int(256);
            break;
          case "length-lie": {
            const which = int(8);
            const any16 = int(65536);
            if (which === 0) scratch.writeUInt16BE(any16, t.ip + (t.v6 ? 4 : 2));
            else if (which === 1 && !t.v6) scratch[t.ip] = 0x40 | int(16);
            else if (which === 2 && t.innerIp >= 0)
              scratch.writeUInt16BE(any16, t.innerIp + (t.innerV6 ? 4 : 2));
            else if (which === 3 && t.l4 >= 0 && t.l4Proto === 17) scratch.writeUInt16BE(any16, t.l4 + 4);
            else if (which === 4 && t.l4 >= 0 && t.l4Proto === 6) scratch[t.l4 + 12] = int(256);
            else if (which === 5) scratch.writeUInt16BE(any16 & 0xfff8, t.gre);
            else if (which === 6) scratch[t.gre + 4 + (scratch[t.gre]! & 0x80 ? 4 : 0)] = int(256);
            else scratch.writeUInt16BE(any16, t.ip + (t.v6 ? 4 : 2)); // a lie where the others do not apply
            // Sometimes the lie comes with a cut.
            if (r() < 0.3) len = t.inner + int(len - t.inner + 1);
            break;
          }
        }
      }
      const packet = scratch.subarray(0, len);
      // The file's original length: the frame's, or (a snaplen cut) more.
      const originalLength = r() < 0.2 ? len + int(1500) : len;
      let outcome: string;
      try {
        const d = decapsulate(packet, linkType);
        const code = decapFrame(packet, 0, len, linkType);
        if (d.ok !== (code === 0) || (!d.ok && decapFailure(code, decapFrameResult.at).reason !== d.reason))
          throw new Error(`decapFrame disagrees with decapsulate (code ${code})`);
        // The text path (decodeFrame under the tcpdump-style line) for one packet in ten.
        if (n % 10 === 0) {
          if (d.ok) decodeFrame(d.inner, d.innerLinkType);
          formatDecapsulatedSummary(packet, linkType);
        }
        const rec = decodePacketRecord(packet, linkType, originalLength, n);
        const json = JSON.stringify(rec);
        if (json.length === 0 || rec.n !== n) throw new Error("empty record");
        outcome = rec.error === null ? "ok" : rec.error.split(" ")[0]!;
      } catch (e) {
        throw new Error(
          `packet ${n} (${mutation}, link type ${linkType}): ${e instanceof Error ? e.message : String(e)}\n${packet.toString("hex")}`,
          { cause: e },
        );
      }
      count(outcomes, outcome);
    }

    const table = [...outcomes.entries()].sort((a, b) => b[1] - a[1]);
    console.log(
      `${PACKETS} packets (${[...byMutation.entries()].map(([m, c]) => `${m} ${c}`).join(", ")}):\n` +
        table.map(([k, c]) => `  ${k.padEnd(22)} ${c}`).join("\n"),
    );
    // Every packet is accounted for, once.
    expect(table.reduce((s, [, c]) => s + c, 0)).toBe(PACKETS);
    // Valid packets came through, and the damage was told apart by reason.
    expect(outcomes.get("ok")).toBeGreaterThan(PACKETS / 10);
    for (const reason of [
      "truncated",
      "bad-version",
      "bad-header-length",
      "bad-flags",
      "bad-length",
      "unsupported-protocol",
    ])
      expect({ reason, seen: (outcomes.get(reason) ?? 0) > 0 }).toEqual({ reason, seen: true });
    expect(outcomes.size).toBeGreaterThanOrEqual(8);
  });
});
