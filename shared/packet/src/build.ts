/**
 * Packet builders for tests, the lab and the benchmark: the inverse of the decoders, byte for byte,
 * with correct checksums. Not for the hot path (each call allocates the packet it returns).
 *
 *     const inner = buildIcmpEchoFrame({ src: "10.0.0.1", dst: "10.0.0.2", id: 1, seq: 1 });
 *     const frame = buildTransportFrame({ src: "192.0.2.1", dst: "192.0.2.2" }, buildErspan2({ sessionId: 7, index: 1, inner }));
 *     decapsulate(frame); // { ok: true, kind: "erspan2", sessionId: 7, inner, … }
 *
 * Builders take values as given and mask them to their field width; they validate nothing, so
 * tests can build malformed packets too.
 */
import { finishChecksum, parseIp, parseMac, put16, put32, sumWords } from "./bytes.js";
import {
  ARP_OP_REQUEST,
  ETHERTYPE_ARP,
  ETHERTYPE_ERSPAN2,
  ETHERTYPE_ERSPAN3,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_TEB,
  ETHERTYPE_VLAN,
} from "./ethernet.js";
import {
  ERSPAN2_HEADER_LENGTH,
  ERSPAN3_HEADER_LENGTH,
  ERSPAN3_PLATFORM_LENGTH,
  GRE_CHECKSUM_PRESENT,
  GRE_KEY_PRESENT,
  GRE_SEQUENCE_PRESENT,
} from "./gre.js";
import type { Erspan3Platform } from "./gre.js";
import {
  IPPROTO_AH,
  IPPROTO_FRAGMENT,
  IPPROTO_GRE,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_HEADER_LENGTH,
  pseudoHeaderSum,
} from "./ip.js";
import {
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  TCP_ACK,
  TCP_PSH,
} from "./transport.js";

/** An address as text (`10.0.0.1`, `fe80::1`, `aa:bb:cc:dd:ee:ff`) or as octets. */
export type Address = string | Uint8Array;

function ipBytes(a: Address, what: string): Uint8Array {
  if (typeof a !== "string") return a;
  const b = parseIp(a);
  if (b === undefined) throw new TypeError(`${what}: not an IPv4 or IPv6 address: ${a}`);
  return b;
}

function macBytes(a: Address | undefined, fallback: string): Uint8Array {
  const v = a ?? fallback;
  if (typeof v !== "string") return v;
  const b = parseMac(v);
  if (b === undefined) throw new TypeError(`not a MAC address: ${v}`);
  return b;
}

export interface VlanSpec {
  readonly vid: number;
  readonly pcp?: number;
  readonly dei?: number;
  /** 0x8100 (default), 0x88A8 or 0x9100. */
  readonly tpid?: number;
}

export interface EthernetSpec {
  readonly dst?: Address;
  readonly src?: Address;
  /** Outermost first. */
  readonly vlans?: readonly VlanSpec[];
  readonly etherType: number;
  readonly payload: Uint8Array;
  /** Pad to the 60-octet minimum frame (IEEE 802.3 clause 3.2.8, without FCS), as a NIC would. */
  readonly pad?: boolean;
}

export function buildEthernet(spec: EthernetSpec): Buffer {
  const vlans = spec.vlans ?? [];
  const header = 14 + 4 * vlans.length;
  const len = Math.max(header + spec.payload.length, spec.pad === true ? 60 : 0);
  const b = Buffer.alloc(len);
  b.set(macBytes(spec.dst, "02:00:00:00:00:02"), 0);
  b.set(macBytes(spec.src, "02:00:00:00:00:01"), 6);
  let at = 12;
  for (const v of vlans) {
    put16(b, at, v.tpid ?? ETHERTYPE_VLAN);
    put16(b, at + 2, ((v.pcp ?? 0) << 13) | (((v.dei ?? 0) & 1) << 12) | (v.vid & 0x0fff));
    at += 4;
  }
  put16(b, at, spec.etherType);
  b.set(spec.payload, header);
  return b;
}

export interface Ipv4Spec {
  readonly src: Address;
  readonly dst: Address;
  readonly protocol: number;
  readonly payload: Uint8Array;
  readonly ttl?: number;
  readonly tos?: number;
  readonly id?: number;
  readonly dontFragment?: boolean;
  readonly moreFragments?: boolean;
  /** In octets; must be a multiple of 8 to round-trip. */
  readonly fragmentOffset?: number;
  /** Option bytes, padded with zeros (End of Option List) to a multiple of 4. */
  readonly options?: Uint8Array;
  /** Override the computed total length (to build malformed packets). */
  readonly totalLength?: number;
  /** Override the IHL nibble (to build malformed packets). */
  readonly ihl?: number;
}

/** RFC 791 §3.1, header checksum filled in. */
export function buildIpv4(spec: Ipv4Spec): Buffer {
  const optLen = spec.options === undefined ? 0 : Math.ceil(spec.options.length / 4) * 4;
  const hl = 20 + optLen;
  const b = Buffer.alloc(hl + spec.payload.length);
  b[0] = 0x40 | ((spec.ihl ?? hl / 4) & 0x0f);
  b[1] = spec.tos ?? 0;
  put16(b, 2, spec.totalLength ?? b.length);
  put16(b, 4, spec.id ?? 0);
  const frag = ((spec.fragmentOffset ?? 0) / 8) & 0x1fff;
  put16(b, 6, (spec.dontFragment === true ? 0x4000 : 0) | (spec.moreFragments === true ? 0x2000 : 0) | frag);
  b[8] = spec.ttl ?? 64;
  b[9] = spec.protocol;
  b.set(ipBytes(spec.src, "src").subarray(0, 4), 12);
  b.set(ipBytes(spec.dst, "dst").subarray(0, 4), 16);
  if (spec.options !== undefined) b.set(spec.options, 20);
  put16(b, 10, finishChecksum(sumWords(b, 0, hl)));
  b.set(spec.payload, hl);
  return b;
}

export interface Ipv6ExtensionSpec {
  /** The header's own type (0 Hop-by-Hop, 43 Routing, 44 Fragment, 51 AH, 60 Destination Options, …). */
  readonly type: number;
  /**
   * The octets after Next Header and the length octet; zero-padded to the header's size unit (8
   * octets, 4 for AH). For Fragment give 6 octets (offset/flags + identification).
   */
  readonly body?: Uint8Array;
}

export interface Ipv6Spec {
  readonly src: Address;
  readonly dst: Address;
  /** The upper-layer protocol after the extension headers. */
  readonly protocol: number;
  readonly payload: Uint8Array;
  readonly hopLimit?: number;
  readonly trafficClass?: number;
  readonly flowLabel?: number;
  readonly extensionHeaders?: readonly Ipv6ExtensionSpec[];
  readonly payloadLength?: number;
}

function encodeExtension(ext: Ipv6ExtensionSpec, next: number): Buffer {
  const body = ext.body ?? new Uint8Array(0);
  if (ext.type === IPPROTO_FRAGMENT) {
    const b = Buffer.alloc(8);
    b[0] = next;
    b.set(body.subarray(0, 6), 2);
    return b;
  }
  // AH: (Payload Len + 2) × 4 octets (RFC 4302 §2.2); others (Hdr Ext Len + 1) × 8 (RFC 8200 §4.3).
  const unit = ext.type === IPPROTO_AH ? 4 : 8;
  const total = Math.max(8, Math.ceil((2 + body.length) / unit) * unit);
  const b = Buffer.alloc(total);
  b[0] = next;
  b[1] = ext.type === IPPROTO_AH ? total / 4 - 2 : total / 8 - 1;
  b.set(body, 2);
  return b;
}

/** RFC 8200 §3 with the extension headers in the given order. */
export function buildIpv6(spec: Ipv6Spec): Buffer {
  const exts = spec.extensionHeaders ?? [];
  const encoded = exts.map((e, i) => encodeExtension(e, exts[i + 1]?.type ?? spec.protocol));
  const extLen = encoded.reduce((n, e) => n + e.length, 0);
  const b = Buffer.alloc(IPV6_HEADER_LENGTH + extLen + spec.payload.length);
  put32(
    b,
    0,
    ((6 << 28) | (((spec.trafficClass ?? 0) & 0xff) << 20) | ((spec.flowLabel ?? 0) & 0xfffff)) >>> 0,
  );
  put16(b, 4, spec.payloadLength ?? extLen + spec.payload.length);
  b[6] = exts[0]?.type ?? spec.protocol;
  b[7] = spec.hopLimit ?? 64;
  b.set(ipBytes(spec.src, "src").subarray(0, 16), 8);
  b.set(ipBytes(spec.dst, "dst").subarray(0, 16), 24);
  let at = IPV6_HEADER_LENGTH;
  for (const e of encoded) {
    b.set(e, at);
    at += e.length;
  }
  b.set(spec.payload, at);
  return b;
}

export interface IpSpec {
  readonly src: Address;
  readonly dst: Address;
  readonly protocol: number;
  readonly payload: Uint8Array;
  readonly ttl?: number;
  readonly tos?: number;
  readonly dontFragment?: boolean;
}

/** IPv4 or IPv6 by the address family of `src`. */
export function buildIp(spec: IpSpec): Buffer {
  const src = ipBytes(spec.src, "src");
  const dst = ipBytes(spec.dst, "dst");
  if (src.length === 16) {
    return buildIpv6({
      src,
      dst,
      protocol: spec.protocol,
      payload: spec.payload,
      hopLimit: spec.ttl,
      trafficClass: spec.tos,
    });
  }
  return buildIpv4({ ...spec, src, dst });
}

function transportChecksum(
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  segment: Buffer,
  at: number,
): void {
  put16(segment, at, 0);
  let c = finishChecksum(
    sumWords(segment, 0, segment.length, pseudoHeaderSum(src, dst, protocol, segment.length)),
  );
  // RFC 768: a computed UDP checksum of zero is sent as all ones (zero means "no checksum").
  if (c === 0 && protocol === IPPROTO_UDP) c = 0xffff;
  put16(segment, at, c);
}

export interface TcpSpec {
  /** For the checksum's pseudo-header. */
  readonly src: Address;
  readonly dst: Address;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq?: number;
  readonly ack?: number;
  /** `TCP_*` bits; default PSH|ACK. */
  readonly flags?: number;
  readonly window?: number;
  readonly urgent?: number;
  /** Option bytes, zero-padded to a multiple of 4. */
  readonly options?: Uint8Array;
  readonly payload?: Uint8Array;
}

/** RFC 9293 §3.1 segment with its checksum over the pseudo-header (§3.1, RFC 8200 §8.1). */
export function buildTcp(spec: TcpSpec): Buffer {
  const payload = spec.payload ?? new Uint8Array(0);
  const optLen = spec.options === undefined ? 0 : Math.ceil(spec.options.length / 4) * 4;
  const hl = 20 + optLen;
  const b = Buffer.alloc(hl + payload.length);
  put16(b, 0, spec.srcPort);
  put16(b, 2, spec.dstPort);
  put32(b, 4, spec.seq ?? 0);
  put32(b, 8, spec.ack ?? 0);
  put16(b, 12, ((hl / 4) << 12) | ((spec.flags ?? TCP_PSH | TCP_ACK) & 0x1ff));
  put16(b, 14, spec.window ?? 65535);
  put16(b, 18, spec.urgent ?? 0);
  if (spec.options !== undefined) b.set(spec.options, 20);
  b.set(payload, hl);
  transportChecksum(ipBytes(spec.src, "src"), ipBytes(spec.dst, "dst"), IPPROTO_TCP, b, 16);
  return b;
}

export interface UdpSpec {
  readonly src: Address;
  readonly dst: Address;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly payload?: Uint8Array;
}

/** RFC 768 datagram with its checksum. */
export function buildUdp(spec: UdpSpec): Buffer {
  const payload = spec.payload ?? new Uint8Array(0);
  const b = Buffer.alloc(8 + payload.length);
  put16(b, 0, spec.srcPort);
  put16(b, 2, spec.dstPort);
  put16(b, 4, b.length);
  b.set(payload, 8);
  transportChecksum(ipBytes(spec.src, "src"), ipBytes(spec.dst, "dst"), IPPROTO_UDP, b, 6);
  return b;
}

export interface IcmpEchoSpec {
  readonly src: Address;
  readonly dst: Address;
  readonly id: number;
  readonly seq: number;
  readonly reply?: boolean;
  readonly payload?: Uint8Array;
}

/**
 * An echo request or reply: ICMP (RFC 792, checksum over the message) for IPv4 addresses, ICMPv6
 * (RFC 4443 §4.1, checksum over the pseudo-header too, §2.3) for IPv6 ones.
 */
export function buildIcmpEcho(spec: IcmpEchoSpec): Buffer {
  const src = ipBytes(spec.src, "src");
  const dst = ipBytes(spec.dst, "dst");
  const payload = spec.payload ?? Buffer.alloc(56, 0x61);
  const b = Buffer.alloc(8 + payload.length);
  const v6 = src.length === 16;
  b[0] = v6
    ? spec.reply === true
      ? ICMPV6_ECHO_REPLY
      : ICMPV6_ECHO_REQUEST
    : spec.reply === true
      ? ICMP_ECHO_REPLY
      : ICMP_ECHO_REQUEST;
  put16(b, 4, spec.id);
  put16(b, 6, spec.seq);
  b.set(payload, 8);
  if (v6) transportChecksum(src, dst, IPPROTO_ICMPV6, b, 2);
  else put16(b, 2, finishChecksum(sumWords(b, 0, b.length)));
  return b;
}

/** Link and network fields shared by the inner frame builders. */
export interface FrameSpec {
  readonly src: Address;
  readonly dst: Address;
  readonly srcMac?: Address;
  readonly dstMac?: Address;
  readonly vlans?: readonly VlanSpec[];
  readonly ttl?: number;
  readonly tos?: number;
  readonly pad?: boolean;
}

function frameAround(spec: FrameSpec, protocol: number, l4: Uint8Array): Buffer {
  const ip = buildIp({ src: spec.src, dst: spec.dst, protocol, payload: l4, ttl: spec.ttl, tos: spec.tos });
  return buildEthernet({
    dst: spec.dstMac,
    src: spec.srcMac,
    vlans: spec.vlans,
    etherType: ip[0]! >>> 4 === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4,
    payload: ip,
    pad: spec.pad,
  });
}

export type TcpFrameSpec = FrameSpec & Omit<TcpSpec, "src" | "dst">;
export type UdpFrameSpec = FrameSpec & Omit<UdpSpec, "src" | "dst">;
export type IcmpEchoFrameSpec = FrameSpec & Omit<IcmpEchoSpec, "src" | "dst">;

/** Ethernet + IPv4/IPv6 + TCP. */
export function buildTcpFrame(spec: TcpFrameSpec): Buffer {
  return frameAround(spec, IPPROTO_TCP, buildTcp(spec));
}

/** Ethernet + IPv4/IPv6 + UDP. */
export function buildUdpFrame(spec: UdpFrameSpec): Buffer {
  return frameAround(spec, IPPROTO_UDP, buildUdp(spec));
}

/** Ethernet + IPv4 + ICMP echo, or Ethernet + IPv6 + ICMPv6 echo. */
export function buildIcmpEchoFrame(spec: IcmpEchoFrameSpec): Buffer {
  const v6 = ipBytes(spec.src, "src").length === 16;
  return frameAround(spec, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP, buildIcmpEcho(spec));
}

export interface ArpFrameSpec {
  /** 1 request (default), 2 reply. */
  readonly op?: number;
  readonly senderMac: Address;
  readonly senderIp: Address;
  readonly targetMac?: Address;
  readonly targetIp: Address;
  readonly vlans?: readonly VlanSpec[];
  readonly pad?: boolean;
}

/** RFC 826 Ethernet/IPv4 ARP; a request goes to the broadcast address. */
export function buildArpFrame(spec: ArpFrameSpec): Buffer {
  const op = spec.op ?? ARP_OP_REQUEST;
  const sha = macBytes(spec.senderMac, "");
  const tha = macBytes(spec.targetMac, "00:00:00:00:00:00");
  const b = Buffer.alloc(28);
  put16(b, 0, 1);
  put16(b, 2, ETHERTYPE_IPV4);
  b[4] = 6;
  b[5] = 4;
  put16(b, 6, op);
  b.set(sha, 8);
  b.set(ipBytes(spec.senderIp, "senderIp").subarray(0, 4), 14);
  b.set(tha, 18);
  b.set(ipBytes(spec.targetIp, "targetIp").subarray(0, 4), 24);
  return buildEthernet({
    dst: op === ARP_OP_REQUEST ? "ff:ff:ff:ff:ff:ff" : tha,
    src: sha,
    vlans: spec.vlans,
    etherType: ETHERTYPE_ARP,
    payload: b,
    pad: spec.pad,
  });
}

export interface GreSpec {
  /** Present ⇒ K set (RFC 2890 §2.1). */
  readonly key?: number;
  /** Present ⇒ S set (RFC 2890 §2.2). */
  readonly seq?: number;
  /** C set, checksum computed over header and payload (RFC 2784 §2.5). */
  readonly csum?: boolean;
  /** Protocol type; default 0x6558 (Transparent Ethernet Bridging, what OVN's `gre` mirrors carry). */
  readonly protocol?: number;
  /** Override the first 16 bits (flags and version) after they are computed: for malformed packets. */
  readonly flags?: number;
  readonly inner: Uint8Array;
}

/** The GRE header (RFC 2784 §2.1, RFC 2890 §2) followed by `inner`. */
export function buildGre(spec: GreSpec): Buffer {
  const c = spec.csum === true;
  const k = spec.key !== undefined;
  const s = spec.seq !== undefined;
  const hl = 4 + (c ? 4 : 0) + (k ? 4 : 0) + (s ? 4 : 0);
  const b = Buffer.alloc(hl + spec.inner.length);
  const flags = (c ? GRE_CHECKSUM_PRESENT : 0) | (k ? GRE_KEY_PRESENT : 0) | (s ? GRE_SEQUENCE_PRESENT : 0);
  put16(b, 0, spec.flags ?? flags);
  put16(b, 2, spec.protocol ?? ETHERTYPE_TEB);
  let at = 4;
  const csumAt = at;
  if (c) at += 4;
  if (k) {
    put32(b, at, spec.key);
    at += 4;
  }
  if (s) put32(b, at, spec.seq);
  b.set(spec.inner, hl);
  if (c) put16(b, csumAt, finishChecksum(sumWords(b, 0, b.length)));
  return b;
}

export interface Erspan2Spec {
  /** 10 bits. */
  readonly sessionId: number;
  /** 20 bits (OVS `erspan_idx`). */
  readonly index?: number;
  readonly vlan?: number;
  readonly cos?: number;
  readonly en?: number;
  readonly truncated?: boolean;
  /** GRE sequence number; OVS always sends one (S set, K clear). */
  readonly seq?: number;
  /** Also set K with this key (OVS never does; some switches do). */
  readonly key?: number;
  /** ERSPAN version nibble; 1 for type II (override to build malformed packets). */
  readonly version?: number;
  readonly inner: Uint8Array;
}

/** GRE (S, protocol 0x88BE) + ERSPAN type II header + `inner`, the way OVS builds it (`netdev_erspan_build_header`, erspan_ver=1). */
export function buildErspan2(spec: Erspan2Spec): Buffer {
  const h = Buffer.alloc(ERSPAN2_HEADER_LENGTH + spec.inner.length);
  put16(h, 0, (((spec.version ?? 1) & 0xf) << 12) | ((spec.vlan ?? 0) & 0x0fff));
  put16(
    h,
    2,
    (((spec.cos ?? 0) & 7) << 13) |
      (((spec.en ?? 0) & 3) << 11) |
      (spec.truncated === true ? 0x0400 : 0) |
      (spec.sessionId & 0x3ff),
  );
  put32(h, 4, (spec.index ?? 0) & 0xfffff);
  h.set(spec.inner, ERSPAN2_HEADER_LENGTH);
  return buildGre({ protocol: ETHERTYPE_ERSPAN2, seq: spec.seq ?? 0, key: spec.key, inner: h });
}

export interface Erspan3Spec {
  readonly sessionId: number;
  readonly timestamp?: number;
  /** 6 bits. */
  readonly hwId?: number;
  readonly vlan?: number;
  readonly cos?: number;
  readonly bso?: number;
  readonly truncated?: boolean;
  readonly sgt?: number;
  readonly p?: boolean;
  /** 0 Ethernet (default), 2 IP. */
  readonly frameType?: number;
  /** 0 ingress, 1 egress. */
  readonly direction?: number;
  readonly gra?: number;
  /** Present ⇒ O set and the 8-octet platform sub-header follows. */
  readonly platform?: Erspan3Platform;
  readonly seq?: number;
  readonly key?: number;
  readonly version?: number;
  readonly inner: Uint8Array;
}

/** GRE (S, protocol 0x22EB) + ERSPAN type III header (+ platform sub-header) + `inner` (OVS erspan_ver=2). */
export function buildErspan3(spec: Erspan3Spec): Buffer {
  const hl = ERSPAN3_HEADER_LENGTH + (spec.platform === undefined ? 0 : ERSPAN3_PLATFORM_LENGTH);
  const h = Buffer.alloc(hl + spec.inner.length);
  put16(h, 0, (((spec.version ?? 2) & 0xf) << 12) | ((spec.vlan ?? 0) & 0x0fff));
  put16(
    h,
    2,
    (((spec.cos ?? 0) & 7) << 13) |
      (((spec.bso ?? 0) & 3) << 11) |
      (spec.truncated === true ? 0x0400 : 0) |
      (spec.sessionId & 0x3ff),
  );
  put32(h, 4, spec.timestamp ?? 0);
  put16(h, 8, spec.sgt ?? 0);
  put16(
    h,
    10,
    (spec.p === true ? 0x8000 : 0) |
      (((spec.frameType ?? 0) & 0x1f) << 10) |
      (((spec.hwId ?? 0) & 0x3f) << 4) |
      (((spec.direction ?? 0) & 1) << 3) |
      (((spec.gra ?? 0) & 3) << 1) |
      (spec.platform === undefined ? 0 : 1),
  );
  if (spec.platform !== undefined) {
    put32(h, 12, (((spec.platform.id & 0x3f) << 26) | (spec.platform.infoHigh & 0x03ffffff)) >>> 0);
    put32(h, 16, spec.platform.infoLow);
  }
  h.set(spec.inner, hl);
  return buildGre({ protocol: ETHERTYPE_ERSPAN3, seq: spec.seq ?? 0, key: spec.key, inner: h });
}

export interface TransportSpec {
  /** The tunnel's local and remote (sink) addresses; IPv6 addresses make an ip6gre/ip6erspan packet. */
  readonly src: Address;
  readonly dst: Address;
  readonly ttl?: number;
  readonly tos?: number;
  /** IPv4 DF; default true, as OVS sets it (`FLOW_TNL_F_DONT_FRAGMENT`). */
  readonly dontFragment?: boolean;
  readonly srcMac?: Address;
  readonly dstMac?: Address;
  readonly vlans?: readonly VlanSpec[];
  readonly pad?: boolean;
}

/** Ethernet + IPv4/IPv6 (protocol 47) around a GRE packet from `buildGre` / `buildErspan2` / `buildErspan3`. */
export function buildTransportFrame(spec: TransportSpec, gre: Uint8Array): Buffer {
  const ip = buildIp({
    src: spec.src,
    dst: spec.dst,
    protocol: IPPROTO_GRE,
    payload: gre,
    ttl: spec.ttl,
    tos: spec.tos,
    dontFragment: spec.dontFragment ?? true,
  });
  return buildEthernet({
    dst: spec.dstMac,
    src: spec.srcMac,
    vlans: spec.vlans,
    etherType: ip[0]! >>> 4 === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4,
    payload: ip,
    pad: spec.pad,
  });
}
