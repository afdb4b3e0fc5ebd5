/**
 * One captured packet as a flat record — what `ovntap decode --json` prints, one JSON object per
 * packet — for a transport-interface frame (GRE / ERSPAN II / ERSPAN III) or any other frame.
 *
 *     decodePacketRecord(frame, LINKTYPE_ETHERNET, originalLength, 1);
 *     // { n: 1, encap: "erspan2", key: null, session: 700, src: "10.0.0.1", dst: "10.0.0.2",
 *     //   proto: "tcp", sport: 40000, dport: 443, len: 118, error: null }
 *
 * Fields, as far as the captured bytes go (a snaplen cut or a damaged packet keeps every field
 * decoded before the damage; a field whose octets were not all captured is `null`):
 *
 * - `encap`: `gre` when the outer IP packet carries GRE (IP protocol 47), `erspan2` when the GRE
 *   protocol type is 0x88BE with S set (ERSPAN type II, version field 1), `erspan3` when it is
 *   0x22EB (type III, version field 2), `none` for anything else (the frame is then described
 *   as it is).
 * - `key`: the GRE key when K is set (whatever the encapsulation); `session`: the 10-bit ERSPAN
 *   session id.
 * - `src`, `dst`, `proto`, `sport`, `dport`: from the innermost network header found — the
 *   mirrored packet's IPv4 / IPv6 header (or ARP: sender and target protocol addresses), else the
 *   outer one. A header counts once its first field is captured (IP: the version octet; ARP: the
 *   hardware type). `proto` is `tcp`, `udp`, `icmp`, `icmpv6`, `gre`, `arp`, … or `ip-proto-N`;
 *   for IPv6 the upper-layer protocol after the extension headers. Ports once their four octets
 *   are captured.
 * - `len`: the frame's length on the wire as the capture file records it (pcap `orig_len`, pcapng
 *   Original Packet Length; tshark's `frame.len`), of the outer frame for a tunnelled packet.
 * - `error`: `null`, or `"<reason> <layer>"` for the first problem met (`truncated gre`,
 *   `bad-version erspan`, …): a header cut short, an impossible field, a protocol ovntap does not
 *   unwrap (`unsupported-protocol`, `fragment`), or `bad-length` when a length field (IPv4 total
 *   length, IPv6 payload length, UDP length) claims more octets than the frame had on the wire.
 *   A snaplen cut inside a payload is not an error: `len` says how long the frame was.
 *
 * Never throws on any input.
 */
import { asBuffer, formatIp, u16 } from "./bytes.js";
import { LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_RAW } from "./decap.js";
import {
  decodeArp,
  decodeEthernet,
  ETHERTYPE_ARP,
  ETHERTYPE_ERSPAN2,
  ETHERTYPE_ERSPAN3,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_TEB,
} from "./ethernet.js";
import {
  decodeErspan2,
  decodeErspan3,
  decodeGre,
  GRE_CHECKSUM_PRESENT,
  GRE_KEY_PRESENT,
  GRE_SEQUENCE_PRESENT,
} from "./gre.js";
import {
  decodeIpv4,
  decodeIpv6,
  IPPROTO_GRE,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_HEADER_LENGTH,
} from "./ip.js";
import type { Ip } from "./ip.js";
import type { DecodeFailure, DecodeReason, Layer } from "./result.js";
import { decodeIcmp, decodeIcmpv6, decodeTcp, decodeUdp } from "./transport.js";

export type Encapsulation = "gre" | "erspan2" | "erspan3" | "none";

/** Why a record has an `error`: a decoder's reason, or `bad-length` (a length field longer than the wire). */
export type RecordReason = DecodeReason | "bad-length";

export interface PacketRecord {
  /** 1-based position in the capture. */
  n: number;
  encap: Encapsulation;
  key: number | null;
  session: number | null;
  src: string | null;
  dst: string | null;
  proto: string | null;
  sport: number | null;
  dport: number | null;
  len: number;
  /** `"<reason> <layer>"`, e.g. `"truncated gre"`; `null` for a well-formed packet. */
  error: string | null;
}

const IP_PROTOCOL_NAMES: Readonly<Record<number, string>> = {
  1: "icmp",
  2: "igmp",
  4: "ipip",
  6: "tcp",
  17: "udp",
  41: "ipv6",
  47: "gre",
  50: "esp",
  51: "ah",
  58: "icmpv6",
  89: "ospf",
  103: "pim",
  112: "vrrp",
  132: "sctp",
};

/** `tcp`, `udp`, `icmp`, … for the common IANA protocol numbers, `ip-proto-N` (tcpdump's form) otherwise. */
export function ipProtocolName(protocol: number): string {
  return IP_PROTOCOL_NAMES[protocol] ?? `ip-proto-${protocol}`;
}

/** The record's `error` text for a failure. */
export function recordError(reason: RecordReason, layer: Layer): string {
  return `${reason} ${layer}`;
}

/** An IPv4 address read in place (formatIp without the view). */
function dotted(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** Mutable state of one walk down the layers. */
class Walk {
  readonly rec: PacketRecord;
  constructor(rec: PacketRecord) {
    this.rec = rec;
  }
  fail(reason: RecordReason, layer: Layer): void {
    this.rec.error ??= recordError(reason, layer);
  }
  failWith(f: DecodeFailure): void {
    this.fail(f.reason, f.layer);
  }
  /** A new innermost network header: what outer headers said no longer describes the packet. */
  enter(proto: string | null): void {
    const r = this.rec;
    r.src = null;
    r.dst = null;
    r.proto = proto;
    r.sport = null;
    r.dport = null;
  }
}

/** What an IP header walk leaves for the layers above it. */
interface IpStep {
  readonly ip: Ip;
  /** End of the captured IP packet in the buffer (length field or capture, whichever is first). */
  readonly end: number;
  /** End of the IP packet on the wire, in buffer offsets. */
  readonly wireEnd: number;
}

/**
 * The network header at `at` (IPv4, IPv6 or ARP by `etherType`) in `b`, whose octets on the wire
 * end at `wireEnd`. Returns the IP header when the layers above can be read.
 */
function network(w: Walk, b: Buffer, at: number, etherType: number, wireEnd: number): IpStep | undefined {
  const avail = b.length - at;
  if (etherType === ETHERTYPE_ARP) {
    // tshark's ARP dissector shows the packet once its hardware type is there.
    if (avail < 2) {
      w.fail("truncated", "arp");
      return undefined;
    }
    w.enter("arp");
    const arp = decodeArp(b, at);
    if (!arp.ok) {
      w.failWith(arp);
      return undefined;
    }
    if (arp.ptype === ETHERTYPE_IPV4 && arp.senderProtocol.length === 4) {
      w.rec.src = formatIp(arp.senderProtocol);
      w.rec.dst = formatIp(arp.targetProtocol);
    }
    return undefined;
  }
  if (etherType === ETHERTYPE_IPV4) {
    const layer = "ipv4";
    if (avail < 1) {
      w.fail("truncated", layer);
      return undefined;
    }
    w.enter(null);
    const vihl = b[at]!;
    if (vihl >>> 4 !== 4) {
      w.fail("bad-version", layer);
      return undefined;
    }
    if ((vihl & 0x0f) < 5) {
      w.fail("bad-header-length", layer);
      return undefined;
    }
    // RFC 791 §3.1 fixed offsets: protocol at 9, source at 12, destination at 16.
    if (avail >= 10) w.rec.proto = ipProtocolName(b[at + 9]!);
    if (avail >= 16) w.rec.src = dotted(b, at + 12);
    if (avail >= 20) w.rec.dst = dotted(b, at + 16);
    const ip = decodeIpv4(b, at);
    if (!ip.ok) {
      w.failWith(ip);
      return undefined;
    }
    const claimed = at + ip.totalLength;
    if (claimed > wireEnd) w.fail("bad-length", layer);
    return { ip, end: ip.end, wireEnd: Math.min(claimed, wireEnd) };
  }
  if (etherType === ETHERTYPE_IPV6) {
    const layer = "ipv6";
    if (avail < 1) {
      w.fail("truncated", layer);
      return undefined;
    }
    w.enter(null);
    if (b[at]! >>> 4 !== 6) {
      w.fail("bad-version", layer);
      return undefined;
    }
    // RFC 8200 §3: next header at 6, source at 8, destination at 24.
    if (avail >= 7) w.rec.proto = ipProtocolName(b[at + 6]!);
    if (avail >= 24) w.rec.src = formatIp(b.subarray(at + 8, at + 24));
    if (avail >= 40) w.rec.dst = formatIp(b.subarray(at + 24, at + 40));
    const ip = decodeIpv6(b, at);
    if (!ip.ok) {
      w.failWith(ip);
      return undefined;
    }
    w.rec.proto = ipProtocolName(ip.protocol);
    // A zero payload length is a jumbogram (RFC 2675): it claims nothing we can check.
    const claimed = ip.payloadLength === 0 ? wireEnd : at + IPV6_HEADER_LENGTH + ip.payloadLength;
    if (claimed > wireEnd) w.fail("bad-length", layer);
    return { ip, end: ip.end, wireEnd: Math.min(claimed, wireEnd) };
  }
  return undefined;
}

/** TCP, UDP, ICMP or ICMPv6 above the innermost IP header. */
function transport(w: Walk, b: Buffer, step: IpStep): void {
  const { ip, end } = step;
  // Only a whole packet or a first fragment starts with the transport header.
  if (ip.fragment !== undefined && ip.fragment.offset !== 0) return;
  const at = ip.offset + ip.headerLength;
  const p = ip.protocol;
  if (p === IPPROTO_TCP || p === IPPROTO_UDP) {
    if (end - at >= 4) {
      w.rec.sport = u16(b, at);
      w.rec.dport = u16(b, at + 2);
    }
    const l4 = p === IPPROTO_TCP ? decodeTcp(b, at, end) : decodeUdp(b, at, end);
    if (!l4.ok) w.failWith(l4);
    else if (l4.protocol === "udp" && l4.length > step.wireEnd - at) w.fail("bad-length", "udp");
  } else if (p === IPPROTO_ICMP && ip.version === 4) {
    const l4 = decodeIcmp(b, at, end);
    if (!l4.ok) w.failWith(l4);
  } else if (p === IPPROTO_ICMPV6 && ip.version === 6) {
    const l4 = decodeIcmpv6(b, at, end);
    if (!l4.ok) w.failWith(l4);
  }
}

/** The link layer of a frame of `linkType` at offset 0: the EtherType and where the network header starts. */
function link(w: Walk, b: Buffer, linkType: number): { etherType: number; at: number } | undefined {
  if (linkType === LINKTYPE_ETHERNET) {
    const e = decodeEthernet(b, 0);
    if (!e.ok) {
      w.failWith(e);
      return undefined;
    }
    return { etherType: e.etherType, at: e.headerLength };
  }
  if (linkType === LINKTYPE_RAW || linkType === LINKTYPE_IPV4 || linkType === LINKTYPE_IPV6) {
    if (b.length === 0) {
      w.fail("truncated", "ipv4");
      return undefined;
    }
    return { etherType: b[0]! >>> 4 === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4, at: 0 };
  }
  w.fail("unsupported-protocol", "ethernet");
  return undefined;
}

/** The mirrored frame inside a tunnel: its own link layer (Ethernet, or none for IP), network and transport. */
function inner(w: Walk, frame: Buffer, linkType: number, wireLength: number): void {
  const l = link(w, frame, linkType);
  if (l === undefined) return;
  const step = network(w, frame, l.at, l.etherType, Math.max(wireLength, frame.length));
  if (step !== undefined) transport(w, frame, step);
}

/**
 * The GRE header at `at` (and ERSPAN, and the mirrored frame), of an IP packet captured up to `end`
 * and `wireEnd` long on the wire. GRE and ERSPAN fields are taken as far as they were captured.
 */
function tunnel(w: Walk, b: Buffer, at: number, end: number, wireEnd: number): void {
  const rec = w.rec;
  rec.encap = "gre";
  const avail = end - at;
  if (avail < 4) {
    w.fail("truncated", "gre");
    return;
  }
  const flags = u16(b, at);
  const protocol = u16(b, at + 2);
  const s = (flags & GRE_SEQUENCE_PRESENT) !== 0;
  if (protocol === ETHERTYPE_ERSPAN2 && s) rec.encap = "erspan2";
  else if (protocol === ETHERTYPE_ERSPAN3) rec.encap = "erspan3";
  // RFC 2890 §2: checksum (+ reserved) first, then the key.
  const keyAt = at + 4 + ((flags & GRE_CHECKSUM_PRESENT) !== 0 ? 4 : 0);
  if ((flags & GRE_KEY_PRESENT) !== 0 && end - keyAt >= 4 && (flags & 7) === 0)
    rec.key = b.readUInt32BE(keyAt);
  const gre = decodeGre(b, at, end);
  if (!gre.ok) {
    w.failWith(gre);
    return;
  }
  const next = at + gre.headerLength;
  switch (gre.protocol) {
    case ETHERTYPE_TEB:
      inner(w, b.subarray(next, end), LINKTYPE_ETHERNET, wireEnd - next);
      return;
    case ETHERTYPE_IPV4:
    case ETHERTYPE_IPV6:
      inner(w, b.subarray(next, end), LINKTYPE_RAW, wireEnd - next);
      return;
    case ETHERTYPE_ERSPAN2:
    case ETHERTYPE_ERSPAN3: {
      // 0x88BE without S is ERSPAN type I (no ERSPAN header; Wireshark packet-erspan.c): not unwrapped.
      if (gre.protocol === ETHERTYPE_ERSPAN2 && !s) {
        w.fail("unsupported-protocol", "erspan");
        return;
      }
      // The session id sits in the first 32 bits of both types (Linux include/net/erspan.h).
      if (end - next >= 4) rec.session = u16(b, next + 2) & 0x03ff;
      const e =
        gre.protocol === ETHERTYPE_ERSPAN3 ? decodeErspan3(b, next, end) : decodeErspan2(b, next, end);
      if (!e.ok) {
        w.failWith(e);
        return;
      }
      const from = next + e.headerLength;
      if (e.version === 2 && e.frameType !== 0 && e.frameType !== 2) {
        w.fail("unsupported-protocol", "erspan");
        return;
      }
      const lt = e.version === 2 && e.frameType === 2 ? LINKTYPE_RAW : LINKTYPE_ETHERNET;
      inner(w, b.subarray(from, end), lt, wireEnd - from);
      return;
    }
    default:
      w.fail("unsupported-protocol", "gre");
  }
}

/**
 * The record of one captured frame: `data` as captured, `linkType` of the capture (interface),
 * `originalLength` its length on the wire, `n` its 1-based position.
 */
export function decodePacketRecord(
  data: Uint8Array,
  linkType: number,
  originalLength: number,
  n: number,
): PacketRecord {
  const b = asBuffer(data);
  const rec: PacketRecord = {
    n,
    encap: "none",
    key: null,
    session: null,
    src: null,
    dst: null,
    proto: null,
    sport: null,
    dport: null,
    len: originalLength,
    error: null,
  };
  const w = new Walk(rec);
  const l = link(w, b, linkType);
  if (l === undefined) return rec;
  // A writer that records orig_len < caplen is wrong; the captured bytes were on the wire.
  const wireEnd = Math.max(originalLength, b.length);
  const step = network(w, b, l.at, l.etherType, wireEnd);
  if (step === undefined) {
    // The protocol octet was captured even if the rest of the header was not.
    if (rec.proto === "gre") rec.encap = "gre";
    return rec;
  }
  const { ip } = step;
  if (ip.protocol !== IPPROTO_GRE) {
    transport(w, b, step);
    return rec;
  }
  if (ip.fragment !== undefined) {
    // A fragment's payload is not a whole GRE packet (OVS sets DF on tunnels).
    rec.encap = "gre";
    w.fail("fragment", ip.version === 4 ? "ipv4" : "ipv6");
    return rec;
  }
  tunnel(w, b, ip.offset + ip.headerLength, step.end, step.wireEnd);
  return rec;
}
