/**
 * `decodePacketRecord`, the record behind `ovntap decode --json`: known answers for each
 * encapsulation and each kind of damage, and for arbitrary valid tunnel packets the fields they
 * were built with. (tshark checks the same records in services/cli's decode.int.test.ts; these
 * cases include what tshark 4.0 cannot decode, such as ERSPAN III frame type 2.)
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  buildArpFrame,
  buildErspan2,
  buildErspan3,
  buildGre,
  buildIcmpEchoFrame,
  buildIpv4,
  buildIpv6,
  buildTcpFrame,
  buildTransportFrame,
  buildUdp,
  buildUdpFrame,
  decodePacketRecord,
  formatIp,
  ipProtocolName,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
} from "./index.js";
import type { PacketRecord } from "./index.js";
import { arbitraries } from "./internal.js";

const v4 = { src: "198.51.100.1", dst: "198.51.100.2" };
const v6 = { src: "2001:db8::1", dst: "2001:db8::2" };
const tcp = buildTcpFrame({
  src: "10.0.0.1",
  dst: "10.0.0.2",
  srcPort: 40000,
  dstPort: 443,
  payload: Buffer.alloc(10),
});
const udp = buildUdpFrame({
  src: "fd00::1",
  dst: "fd00::2",
  srcPort: 5000,
  dstPort: 5001,
  vlans: [{ vid: 7 }],
});
const icmp = buildIcmpEchoFrame({ src: "10.0.0.2", dst: "10.0.0.1", id: 1, seq: 2, reply: true });
const arp = buildArpFrame({ senderMac: "02:00:00:00:00:01", senderIp: "10.0.0.1", targetIp: "10.0.0.9" });
const ip4udp = buildIpv4({
  src: "10.1.0.1",
  dst: "10.1.0.2",
  protocol: 17,
  payload: buildUdp({
    src: "10.1.0.1",
    dst: "10.1.0.2",
    srcPort: 53,
    dstPort: 40000,
    payload: Buffer.alloc(4),
  }),
});

const base: PacketRecord = {
  n: 1,
  encap: "none",
  key: null,
  session: null,
  src: null,
  dst: null,
  proto: null,
  sport: null,
  dport: null,
  len: 0,
  error: null,
};
const rec = (frame: Buffer, originalLength = frame.length, linkType = LINKTYPE_ETHERNET) =>
  decodePacketRecord(frame, linkType, originalLength, 1);

describe("decodePacketRecord: known answers", () => {
  it.each<[string, Buffer, Partial<PacketRecord>]>([
    [
      "GRE with a key, TCP",
      buildTransportFrame(v4, buildGre({ key: 99, inner: tcp })),
      { encap: "gre", key: 99, src: "10.0.0.1", dst: "10.0.0.2", proto: "tcp", sport: 40000, dport: 443 },
    ],
    [
      "GRE without a key, checksum and sequence, ICMP",
      buildTransportFrame(v4, buildGre({ csum: true, seq: 5, inner: icmp })),
      { encap: "gre", src: "10.0.0.2", dst: "10.0.0.1", proto: "icmp" },
    ],
    [
      "ERSPAN II over IPv6, VLAN-tagged IPv6 UDP",
      buildTransportFrame(v6, buildErspan2({ sessionId: 1023, inner: udp })),
      {
        encap: "erspan2",
        session: 1023,
        src: "fd00::1",
        dst: "fd00::2",
        proto: "udp",
        sport: 5000,
        dport: 5001,
      },
    ],
    [
      "ERSPAN II with a GRE key too (some switches)",
      buildTransportFrame(v4, buildErspan2({ sessionId: 3, key: 77, inner: arp })),
      { encap: "erspan2", key: 77, session: 3, src: "10.0.0.1", dst: "10.0.0.9", proto: "arp" },
    ],
    [
      "ERSPAN III with the platform sub-header, ARP",
      buildTransportFrame(
        v4,
        buildErspan3({ sessionId: 9, platform: { id: 3, infoHigh: 1, infoLow: 2 }, inner: arp }),
      ),
      { encap: "erspan3", session: 9, src: "10.0.0.1", dst: "10.0.0.9", proto: "arp" },
    ],
    [
      "ERSPAN III frame type 2: IP without Ethernet",
      buildTransportFrame(v4, buildErspan3({ sessionId: 4, frameType: 2, inner: ip4udp })),
      {
        encap: "erspan3",
        session: 4,
        src: "10.1.0.1",
        dst: "10.1.0.2",
        proto: "udp",
        sport: 53,
        dport: 40000,
      },
    ],
    [
      "GRE carrying IPv4 directly",
      buildTransportFrame(v4, buildGre({ key: 1, protocol: 0x0800, inner: ip4udp })),
      { encap: "gre", key: 1, src: "10.1.0.1", dst: "10.1.0.2", proto: "udp", sport: 53, dport: 40000 },
    ],
    [
      "IPv6 extension headers before the upper layer",
      buildTransportFrame(
        v4,
        buildGre({
          protocol: 0x86dd,
          inner: buildIpv6({
            src: "fd00::5",
            dst: "fd00::6",
            protocol: 58,
            payload: Buffer.alloc(8),
            extensionHeaders: [{ type: 0 }, { type: 60 }],
          }),
        }),
      ),
      { encap: "gre", src: "fd00::5", dst: "fd00::6", proto: "icmpv6" },
    ],
    ["plain TCP", tcp, { src: "10.0.0.1", dst: "10.0.0.2", proto: "tcp", sport: 40000, dport: 443 }],
    ["plain ARP", arp, { src: "10.0.0.1", dst: "10.0.0.9", proto: "arp" }],
  ])("%s", (_name, frame, fields) => {
    expect(rec(frame)).toEqual({ ...base, len: frame.length, ...fields });
  });

  const gre = buildTransportFrame(v4, buildGre({ key: 99, seq: 1, inner: tcp }));
  it.each<[string, Buffer, number, Partial<PacketRecord>]>([
    [
      "a snaplen cut inside the payload is no error",
      gre.subarray(0, gre.length - 4),
      gre.length,
      { encap: "gre", key: 99, src: "10.0.0.1", dst: "10.0.0.2", proto: "tcp", sport: 40000, dport: 443 },
    ],
    [
      "a frame cut inside the mirrored TCP header keeps its ports",
      gre.subarray(0, 14 + 20 + 12 + 14 + 20 + 6),
      gre.length,
      {
        encap: "gre",
        key: 99,
        src: "10.0.0.1",
        dst: "10.0.0.2",
        proto: "tcp",
        sport: 40000,
        dport: 443,
        error: "truncated tcp",
      },
    ],
    [
      "a GRE header cut after the key keeps the key",
      gre.subarray(0, 14 + 20 + 8),
      gre.length,
      {
        encap: "gre",
        key: 99,
        src: "198.51.100.1",
        dst: "198.51.100.2",
        proto: "gre",
        error: "truncated gre",
      },
    ],
    [
      "a GRE header cut before the key has none",
      gre.subarray(0, 14 + 20 + 7),
      gre.length,
      { encap: "gre", src: "198.51.100.1", dst: "198.51.100.2", proto: "gre", error: "truncated gre" },
    ],
    [
      "an outer IPv4 header cut after the protocol octet says GRE",
      gre.subarray(0, 14 + 12),
      gre.length,
      { encap: "gre", proto: "gre", error: "truncated ipv4" },
    ],
    [
      "an outer IP length longer than the wire",
      gre.subarray(0, gre.length - 4),
      gre.length - 4,
      {
        encap: "gre",
        key: 99,
        src: "10.0.0.1",
        dst: "10.0.0.2",
        proto: "tcp",
        sport: 40000,
        dport: 443,
        error: "bad-length ipv4",
      },
    ],
  ])("%s", (_name, frame, originalLength, fields) => {
    expect(rec(frame, originalLength)).toEqual({ ...base, len: originalLength, ...fields });
  });

  it("names what it does not unwrap, with the fields decoded before", () => {
    const typeI = buildTransportFrame(v4, buildGre({ protocol: 0x88be, inner: tcp }));
    expect(rec(typeI)).toMatchObject({ encap: "gre", proto: "gre", error: "unsupported-protocol erspan" });
    const mpls = buildTransportFrame(v4, buildGre({ key: 4, protocol: 0x8847, inner: tcp }));
    expect(rec(mpls)).toMatchObject({
      encap: "gre",
      key: 4,
      src: "198.51.100.1",
      error: "unsupported-protocol gre",
    });
    const badVersion = buildTransportFrame(v4, buildErspan2({ sessionId: 8, version: 2, inner: tcp }));
    expect(rec(badVersion)).toMatchObject({ encap: "erspan2", session: 8, error: "bad-version erspan" });
    const ft5 = buildTransportFrame(v4, buildErspan3({ sessionId: 8, frameType: 5, inner: tcp }));
    expect(rec(ft5)).toMatchObject({ encap: "erspan3", session: 8, error: "unsupported-protocol erspan" });
    const routing = buildTransportFrame(v4, buildGre({ flags: 0x4000, inner: tcp }));
    expect(rec(routing)).toMatchObject({ encap: "gre", error: "bad-flags gre" });
    const fragment = buildEthernetIp(
      buildIpv4({ ...v4, protocol: 47, moreFragments: true, payload: buildGre({ inner: tcp }) }),
    );
    expect(rec(fragment)).toMatchObject({ encap: "gre", proto: "gre", error: "fragment ipv4" });
  });

  it("checks UDP's length against the wire", () => {
    const frame = buildTransportFrame(v4, buildGre({ protocol: 0x0800, inner: ip4udp }));
    // UDP length (at the end: IP 20 + UDP 8 + 4 payload) claims 100 octets.
    const lie = Buffer.from(frame);
    lie.writeUInt16BE(100, frame.length - 4 - 8 + 4);
    expect(rec(lie)).toMatchObject({ proto: "udp", sport: 53, error: "bad-length udp" });
  });

  it("reads raw-IP captures and refuses link types it does not know", () => {
    const frame = buildTransportFrame(v6, buildGre({ key: 2, inner: icmp }));
    expect(rec(frame.subarray(14), frame.length - 14, LINKTYPE_RAW)).toMatchObject({
      encap: "gre",
      key: 2,
      proto: "icmp",
      error: null,
    });
    expect(rec(frame, frame.length, 113)).toMatchObject({ error: "unsupported-protocol ethernet" });
    expect(rec(Buffer.alloc(0), 0, LINKTYPE_RAW)).toMatchObject({ error: "truncated ipv4" });
  });
});

function buildEthernetIp(ip: Buffer): Buffer {
  const b = Buffer.alloc(14 + ip.length);
  b.writeUInt16BE(0x0800, 12);
  ip.copy(b, 14);
  return b;
}

describe("decodePacketRecord: arbitrary valid tunnel packets", () => {
  it("give the fields they were built with, and no error", () => {
    fc.assert(
      fc.property(arbitraries.encapsulated, (e) => {
        const r = decodePacketRecord(e.frame, LINKTYPE_ETHERNET, e.frame.length, 7);
        const inner = e.inner;
        const ports = inner.kind === "tcp" || inner.kind === "udp";
        expect(r).toEqual({
          n: 7,
          encap: e.kind,
          key: e.spec.key ?? null,
          session: e.kind === "gre" ? null : e.spec.sessionId,
          src: formatIp(inner.src),
          dst: formatIp(inner.dst),
          proto:
            inner.kind === "icmp"
              ? inner.src.length === 16
                ? "icmpv6"
                : "icmp"
              : inner.kind === "arp"
                ? "arp"
                : inner.kind,
          sport: ports ? inner.srcPort : null,
          dport: ports ? inner.dstPort : null,
          len: e.frame.length,
          error: null,
        });
      }),
      { numRuns: 1000 },
    );
  });

  it("names IP protocols as tcpdump does", () => {
    expect([1, 6, 17, 47, 58, 132, 253].map(ipProtocolName)).toEqual([
      "icmp",
      "tcp",
      "udp",
      "gre",
      "icmpv6",
      "sctp",
      "ip-proto-253",
    ]);
  });
});
