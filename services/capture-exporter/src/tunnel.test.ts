/**
 * The exporter's in-place decapsulation agrees with @ovntap/packet's `decapsulate` (itself checked
 * against tshark) on every frame: valid ones of every shape, every truncation, flipped bytes, and
 * random bytes — and the inner frame it finds is the one that was built.
 */
import fc from "fast-check";
import {
  buildErspan2,
  buildErspan3,
  buildGre,
  buildIcmpEchoFrame,
  buildIpv6,
  buildTransportFrame,
  buildUdpFrame,
  decapsulate,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
} from "@ovntap/packet";
import { arbitraries } from "@ovntap/packet/internal";
import { describe, expect, it } from "vitest";
import { ENCAP_ERSPAN2, ENCAP_ERSPAN3, ENCAP_GRE, NO_TUNNEL_ID, TunnelParser } from "./tunnel.js";

const KINDS = { gre: ENCAP_GRE, erspan2: ENCAP_ERSPAN2, erspan3: ENCAP_ERSPAN3 } as const;

/** Parses `frame` placed at an offset inside a bigger buffer (as the pipeline sees frames) and compares with decapsulate. */
function agree(frame: Buffer, linkType = LINKTYPE_ETHERNET): TunnelParser {
  const pad = 7;
  const b = Buffer.alloc(frame.length + pad * 2, 0xee);
  frame.copy(b, pad);
  const t = new TunnelParser();
  const ok = t.parse(b, pad, pad + frame.length, linkType);
  const d = decapsulate(frame, linkType);
  expect(ok).toBe(d.ok);
  if (!d.ok) {
    expect(t.reason).toBe(d.reason);
    return t;
  }
  expect(t.kind).toBe(KINDS[d.kind]);
  expect(t.tunnelId).toBe(d.tunnelId ?? NO_TUNNEL_ID);
  expect(t.innerStart - pad).toBe(d.innerOffset);
  expect(t.innerEnd - t.innerStart).toBe(d.inner.length);
  expect(t.innerLength).toBe(d.innerLength);
  expect(t.innerLinkType).toBe(d.innerLinkType);
  const dst = d.outer.dst;
  expect(t.family).toBe(dst.length === 4 ? 4 : 6);
  expect(t.dst0).toBe(dst.readUInt32BE(0));
  if (dst.length === 16) expect([t.dst1, t.dst2, t.dst3]).toEqual([4, 8, 12].map((o) => dst.readUInt32BE(o)));
  return t;
}

describe("TunnelParser", () => {
  it("finds the built inner frame, key or session id, and sink of every encapsulation", () => {
    fc.assert(
      fc.property(arbitraries.encapsulated, (e) => {
        const t = agree(e.frame);
        expect(t.kind).toBe(KINDS[e.kind]);
        const expectedId =
          e.kind === "gre" ? (e.spec.key ?? NO_TUNNEL_ID) : (e.spec as { sessionId: number }).sessionId;
        expect(t.tunnelId).toBe(expectedId);
        // Ethernet padding may follow the IP packet; the inner frame ends where the IP packet does.
        const b = Buffer.alloc(e.frame.length + 14);
        e.frame.copy(b, 7);
        t.parse(b, 7, 7 + e.frame.length, LINKTYPE_ETHERNET);
        expect(b.subarray(t.innerStart, t.innerEnd).equals(e.inner.frame)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("agrees with decapsulate on every truncation and on flipped bytes", () => {
    fc.assert(
      fc.property(
        arbitraries.encapsulated,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
        fc.nat(),
        (e, flips, cut) => {
          const f = Buffer.from(e.frame);
          for (const [at, x] of flips) f[at % f.length]! ^= x;
          agree(f);
          agree(f.subarray(0, cut % (f.length + 1)));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("agrees with decapsulate on random bytes, as Ethernet and as raw IP", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
        agree(Buffer.from(bytes), LINKTYPE_ETHERNET);
        agree(Buffer.from(bytes), LINKTYPE_RAW);
      }),
      { numRuns: 2000 },
    );
  });

  const inner = buildIcmpEchoFrame({ src: "10.16.0.11", dst: "10.16.0.12", id: 1, seq: 1 });

  it("reads GRE with checksum, key and sequence; ERSPAN III with the platform sub-header", () => {
    const gre = agree(
      buildTransportFrame(
        { src: "198.51.100.1", dst: "198.51.100.2" },
        buildGre({ csum: true, key: 0xfffffffe, seq: 9, inner }),
      ),
    );
    expect([gre.kind, gre.tunnelId]).toEqual([ENCAP_GRE, 0xfffffffe]);
    const e3 = agree(
      buildTransportFrame(
        { src: "198.51.100.1", dst: "198.51.100.2", vlans: [{ vid: 10 }, { vid: 20 }] },
        buildErspan3({ sessionId: 1023, platform: { id: 3, infoHigh: 1, infoLow: 2 }, inner }),
      ),
    );
    expect([e3.kind, e3.tunnelId]).toEqual([ENCAP_ERSPAN3, 1023]);
  });

  it("reads IPv6 transports, with extension headers through the slow path", () => {
    const v6 = agree(
      buildTransportFrame({ src: "2001:db8::1", dst: "2001:db8::2" }, buildErspan2({ sessionId: 5, inner })),
    );
    expect([v6.family, v6.kind, v6.tunnelId, v6.slowPath]).toEqual([6, ENCAP_ERSPAN2, 5, 0]);
    const withExt = buildIpv6({
      src: "2001:db8::1",
      dst: "2001:db8::2",
      protocol: 47,
      extensionHeaders: [{ type: 60, body: Buffer.alloc(6) }],
      payload: buildGre({ key: 77, inner }),
    });
    const eth = Buffer.concat([
      Buffer.from("020000000002020000000001", "hex"),
      Buffer.from([0x86, 0xdd]),
      withExt,
    ]);
    const t = agree(eth);
    expect([t.kind, t.tunnelId, t.slowPath]).toEqual([ENCAP_GRE, 77, 1]);
  });

  it("reads GRE carrying IP directly (the inner link type is raw IP)", () => {
    const udp = buildUdpFrame({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1, dstPort: 2 }).subarray(14);
    const t = agree(
      buildTransportFrame(
        { src: "198.51.100.1", dst: "198.51.100.2" },
        buildGre({ key: 3, protocol: 0x0800, inner: udp }),
      ),
    );
    expect(t.innerLinkType).toBe(LINKTYPE_RAW);
  });

  it("says why a frame is not a tunnel packet", () => {
    const plain = buildUdpFrame({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1, dstPort: 2 });
    const t = new TunnelParser();
    expect(t.parse(plain, 0, plain.length, LINKTYPE_ETHERNET)).toBe(false);
    expect(t.reason).toBe("not-gre");
  });
});
