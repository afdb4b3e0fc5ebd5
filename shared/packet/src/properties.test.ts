/**
 * Properties: build → decode returns what was built, for arbitrary field values; no decoder throws
 * on arbitrary bytes, on any truncation of a valid packet, or on a valid packet with bytes flipped.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decapsulate,
  decodeArp,
  decodeErspan2,
  decodeErspan3,
  decodeEthernet,
  decodeFrame,
  decodeGre,
  decodeIcmp,
  decodeIcmpv6,
  decodeIp,
  decodeIpv4,
  decodeIpv6,
  decodePcap,
  decodePcapng,
  decodeTcp,
  decodeUdp,
  flowOf,
  formatDecapsulatedSummary,
  formatIp,
  formatSummary,
  greChecksumOk,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
} from "./index.js";
import type { DecodeReason } from "./index.js";
import { arbitraries } from "./internal.js";
import type { Encapsulated } from "./internal.js";

const REASONS = new Set<DecodeReason>([
  "truncated",
  "bad-version",
  "bad-header-length",
  "bad-flags",
  "not-ip",
  "not-gre",
  "unsupported-protocol",
  "fragment",
  "vlan-limit",
  "ext-header-limit",
  "bad-ext-header",
  "bad-magic",
  "bad-block",
  "bad-record",
  "unknown-interface",
]);

/** A decoder result is either ok, or a known reason at an offset inside (or just past) the input. */
function expectTyped(r: { ok: boolean }, length: number): void {
  expect(typeof r.ok).toBe("boolean");
  if (!r.ok) {
    const f = r as unknown as { reason: DecodeReason; at: number; layer: string };
    expect(REASONS.has(f.reason)).toBe(true);
    expect(typeof f.layer).toBe("string");
    expect(Number.isInteger(f.at) && f.at >= 0 && f.at <= length).toBe(true);
  }
}

function expectRoundTrip(e: Encapsulated): void {
  const d = decapsulate(e.frame);
  expect(d.ok).toBe(true);
  if (!d.ok) return;
  expect(d.kind).toBe(e.kind);
  // Outer fields.
  const t = e.transport;
  expect(d.outer.src).toEqual(t.src);
  expect(d.outer.dst).toEqual(t.dst);
  expect(d.outer.family).toBe((t.src as Buffer).length === 16 ? 6 : 4);
  expect(d.outer.ttl).toBe(t.ttl);
  expect(d.outer.tos).toBe(t.tos);
  expect(d.outer.vlan).toBe(t.vlans?.[0]?.vid);
  expect(d.outer.srcMac).toEqual(t.srcMac);
  // The inner frame, exactly, as a view.
  expect(d.inner).toEqual(e.inner.frame);
  expect(d.inner.buffer).toBe(e.frame.buffer);
  expect(d.innerLength).toBe(e.inner.frame.length);
  expect(e.frame.subarray(d.innerOffset, d.innerOffset + d.inner.length)).toEqual(d.inner);
  // Tunnel fields.
  if (d.kind === "gre" && e.kind === "gre") {
    expect(d.key).toBe(e.spec.key);
    expect(d.tunnelId).toBe(e.spec.key);
    expect(d.seq).toBe(e.spec.seq);
    expect(d.gre.checksum !== undefined).toBe(e.spec.csum === true);
    expect(greChecksumOk(d.gre, e.frame, d.gre.offset + d.gre.headerLength + d.gre.payload.length)).toBe(
      true,
    );
  } else if (d.kind === "erspan2" && e.kind === "erspan2") {
    const { seq, ...fields } = e.spec;
    expect(d.seq).toBe(seq);
    expect(d.tunnelId).toBe(e.spec.sessionId);
    expect(d.gre.key).toBeUndefined(); // OVS: S, no K
    expect(d.erspan).toMatchObject({ ...fields, version: 1 });
  } else if (d.kind === "erspan3" && e.kind === "erspan3") {
    const { seq, ...fields } = e.spec;
    expect(d.seq).toBe(seq);
    expect(d.tunnelId).toBe(e.spec.sessionId);
    expect(d.erspan).toMatchObject({ ...fields, version: 2, frameType: 0, platform: fields.platform });
    expect(d.erspan.headerLength).toBe(fields.platform === undefined ? 12 : 20);
  } else {
    throw new Error(`kind ${d.kind} for ${e.kind}`);
  }
  // The inner frame's layers.
  const f = decodeFrame(d.inner, d.innerLinkType);
  expect(f.ok).toBe(true);
  if (!f.ok) return;
  expect(f.error).toBeUndefined();
  expect(f.eth?.vlans.map((v) => v.vid)).toEqual(e.inner.vlans.map((v) => v.vid));
  expect(f.eth?.vlans.map((v) => v.tpid)).toEqual(e.inner.vlans.map((v) => v.tpid));
  if (e.inner.kind === "arp") {
    expect(f.arp?.senderProtocol).toEqual(e.inner.src);
    expect(f.arp?.targetProtocol).toEqual(e.inner.dst);
  } else {
    expect(f.ip?.src).toEqual(e.inner.src);
    expect(f.ip?.dst).toEqual(e.inner.dst);
    expect(f.l4?.protocol).toBe(
      e.inner.kind === "icmp" ? (e.inner.src.length === 16 ? "icmpv6" : "icmp") : e.inner.kind,
    );
    expect(f.l4?.payload).toEqual(Buffer.from(e.inner.payload));
    const flow = flowOf(f);
    expect(flow).toMatchObject({
      src: formatIp(e.inner.src),
      dst: formatIp(e.inner.dst),
      srcPort: e.inner.srcPort,
      dstPort: e.inner.dstPort,
    });
  }
  // No error marker (tcpdump's "[|proto]" or "[reason layer]") at the end of the line.
  expect(formatSummary(f)).not.toMatch(/\[(\||[a-z-]+ [a-z0-9]+\]$)/);
}

describe("build → decode", () => {
  it("GRE / ERSPAN II / ERSPAN III over IPv4 and IPv6 return the fields they were built with", () => {
    fc.assert(fc.property(arbitraries.encapsulated, expectRoundTrip), { numRuns: 1000 });
  });

  it("every truncation fails as `truncated` before the inner frame starts and yields a prefix after", () => {
    fc.assert(
      fc.property(arbitraries.encapsulated, (e) => {
        const whole = decapsulate(e.frame);
        if (!whole.ok) throw new Error("valid frame did not decode");
        // The outer IP length bounds what GRE may read; a cut before the inner frame is a truncation.
        for (let k = 0; k < e.frame.length; k++) {
          const cut = e.frame.subarray(0, k);
          const d = decapsulate(cut);
          expectTyped(d, k);
          if (k < whole.innerOffset) {
            expect(d.ok).toBe(false);
            if (!d.ok) expect(d.reason).toBe("truncated");
          } else {
            expect(d.ok).toBe(true);
            if (d.ok) {
              expect(d.inner).toEqual(whole.inner.subarray(0, k - whole.innerOffset));
              expect(d.innerLength).toBe(whole.innerLength);
              expect(d.tunnelId).toBe(whole.tunnelId);
            }
          }
          const f = decodeFrame(cut);
          expectTyped(f, k);
          expect(typeof formatSummary(f)).toBe("string");
        }
      }),
      { numRuns: 150 },
    );
  });
});

const DECODERS: [string, (b: Uint8Array, at?: number) => { ok: boolean }][] = [
  ["decapsulate", (b) => decapsulate(b)],
  ["decapsulate raw", (b) => decapsulate(b, LINKTYPE_RAW)],
  ["decodeFrame", (b) => decodeFrame(b)],
  ["decodeFrame raw", (b) => decodeFrame(b, LINKTYPE_RAW)],
  ["decodeEthernet", decodeEthernet],
  ["decodeArp", decodeArp],
  ["decodeIp", decodeIp],
  ["decodeIpv4", decodeIpv4],
  ["decodeIpv6", decodeIpv6],
  ["decodeGre", decodeGre],
  ["decodeErspan2", decodeErspan2],
  ["decodeErspan3", decodeErspan3],
  ["decodeTcp", decodeTcp],
  ["decodeUdp", decodeUdp],
  ["decodeIcmp", decodeIcmp],
  ["decodeIcmpv6", decodeIcmpv6],
  ["decodePcap", decodePcap],
  ["decodePcapng", decodePcapng],
];

describe("decoders never throw", () => {
  it("on arbitrary bytes at arbitrary offsets", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(320), (bytes, offset) => {
        for (const [, decode] of DECODERS) {
          expectTyped(decode(bytes), bytes.length);
          const at = Math.min(offset, bytes.length);
          const r = decode(bytes, at);
          expect(typeof r.ok).toBe("boolean");
        }
        expect(typeof formatDecapsulatedSummary(bytes)).toBe("string");
        expect(typeof formatSummary(decodeFrame(bytes))).toBe("string");
      }),
      { numRuns: 3000 },
    );
  });

  it("on random bytes behind a valid-looking prefix (Ethernet/IPv4|IPv6/GRE headers)", () => {
    const prefix = fc.constantFrom(
      "020000000002020000000001080045000000000040002f00",
      "02000000000202000000000186dd6000000000002f40",
    );
    fc.assert(
      fc.property(prefix, fc.uint8Array({ maxLength: 200 }), (p, tail) => {
        const b = Buffer.concat([Buffer.from(p, "hex"), tail]);
        for (const [, decode] of DECODERS) expectTyped(decode(b), b.length);
      }),
      { numRuns: 3000 },
    );
  });

  it("on valid frames with bytes flipped", () => {
    fc.assert(
      fc.property(
        arbitraries.encapsulated,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 }),
        (e, flips) => {
          const b = Buffer.from(e.frame);
          for (const [i, x] of flips) b[i % b.length]! ^= x;
          const d = decapsulate(b);
          expectTyped(d, b.length);
          if (d.ok) expectTyped(decodeFrame(d.inner, d.innerLinkType), d.inner.length);
          expectTyped(decodeFrame(b, LINKTYPE_ETHERNET), b.length);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
