/**
 * A layered view of one (decapsulated) frame — link, network, transport — a tcpdump-style one-line
 * summary, and the 5-tuple flows are counted by.
 *
 *     const f = decodeFrame(d.inner, d.innerLinkType);
 *     log.debug({ summary: formatSummary(f) }, "packet");
 *     const flow = f.ok ? flowOf(f) : undefined;
 */
import { asBuffer, formatIp, formatMac } from "./bytes.js";
import { decapsulate, LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_RAW } from "./decap.js";
import {
  ARP_OP_REPLY,
  ARP_OP_REQUEST,
  decodeArp,
  decodeEthernet,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_TEB,
} from "./ethernet.js";
import type { Arp, Ethernet } from "./ethernet.js";
import { decodeGre, GRE_KEY_PRESENT } from "./gre.js";
import {
  decodeIpv4,
  decodeIpv6,
  IPPROTO_GRE,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from "./ip.js";
import type { Ip } from "./ip.js";
import { fail } from "./result.js";
import type { DecodeFailure } from "./result.js";
import {
  decodeIcmp,
  decodeIcmpv6,
  decodeTcp,
  decodeUdp,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
} from "./transport.js";
import type { Icmp, Tcp, Udp } from "./transport.js";

export type Transport = Tcp | Udp | Icmp;

export interface Frame {
  readonly ok: true;
  readonly linkType: number;
  /** Captured bytes. */
  readonly length: number;
  readonly eth: Ethernet | undefined;
  readonly arp: Arp | undefined;
  readonly ip: Ip | undefined;
  /** Absent for non-first fragments (their payload is not a header) and protocols we do not decode. */
  readonly l4: Transport | undefined;
  /** The first layer below the link layer that failed to decode; the layers above it are still filled. */
  readonly error: DecodeFailure | undefined;
}

function decodeTransport(b: Buffer, ip: Ip): Transport | DecodeFailure | undefined {
  // Only a whole packet or a first fragment starts with the transport header.
  if (ip.fragment !== undefined && ip.fragment.offset !== 0) return undefined;
  const at = ip.offset + ip.headerLength;
  switch (ip.protocol) {
    case IPPROTO_TCP:
      return decodeTcp(b, at, ip.end);
    case IPPROTO_UDP:
      return decodeUdp(b, at, ip.end);
    case IPPROTO_ICMP:
      return ip.version === 4 ? decodeIcmp(b, at, ip.end) : undefined;
    case IPPROTO_ICMPV6:
      return ip.version === 6 ? decodeIcmpv6(b, at, ip.end) : undefined;
    default:
      return undefined;
  }
}

/**
 * Decode `frame` of `linkType` (LINKTYPE_ETHERNET, or LINKTYPE_RAW / IPV4 / IPV6) layer by layer.
 * Fails only when the link layer itself cannot be read; a deeper failure is in `error`.
 */
export function decodeFrame(frame: Uint8Array, linkType: number = LINKTYPE_ETHERNET): Frame | DecodeFailure {
  const b = asBuffer(frame);
  let eth: Ethernet | undefined;
  let arp: Arp | undefined;
  let ip: Ip | undefined;
  let l4: Transport | undefined;
  let error: DecodeFailure | undefined;
  let l3 = 0;
  let etherType: number;
  if (linkType === LINKTYPE_ETHERNET) {
    const e = decodeEthernet(b);
    if (!e.ok) return e;
    eth = e;
    l3 = e.headerLength;
    etherType = e.etherType;
  } else if (linkType === LINKTYPE_RAW || linkType === LINKTYPE_IPV4 || linkType === LINKTYPE_IPV6) {
    if (b.length === 0) return fail("truncated", "ipv4", 0);
    etherType = b[0]! >>> 4 === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
  } else {
    return fail("unsupported-protocol", "ethernet", 0);
  }
  if (etherType === ETHERTYPE_IPV4 || etherType === ETHERTYPE_IPV6) {
    const r = etherType === ETHERTYPE_IPV4 ? decodeIpv4(b, l3) : decodeIpv6(b, l3);
    if (r.ok) {
      ip = r;
      const t = decodeTransport(b, r);
      if (t !== undefined && !t.ok) error = t;
      else l4 = t;
    } else {
      error = r;
    }
  } else if (etherType === ETHERTYPE_ARP) {
    const r = decodeArp(b, l3);
    if (r.ok) arp = r;
    else error = r;
  }
  return { ok: true, linkType, length: b.length, eth, arp, ip, l4, error };
}

/** A flow's 5-tuple, in the shape of the contracts' FlowRecord key; ports are 0 for protocols without ports. */
export interface Flow {
  /** IANA protocol number. */
  readonly protocol: number;
  readonly src: string;
  readonly dst: string;
  readonly srcPort: number;
  readonly dstPort: number;
}

/** The 5-tuple of an IP frame, `undefined` for non-IP frames. Non-first fragments count with ports 0. */
export function flowOf(frame: Frame): Flow | undefined {
  const ip = frame.ip;
  if (ip === undefined) return undefined;
  const ports = frame.l4 !== undefined && frame.l4.protocol !== "icmp" && frame.l4.protocol !== "icmpv6";
  return {
    protocol: ip.protocol,
    src: formatIp(ip.src),
    dst: formatIp(ip.dst),
    srcPort: ports ? (frame.l4 as Tcp | Udp).srcPort : 0,
    dstPort: ports ? (frame.l4 as Tcp | Udp).dstPort : 0,
  };
}

// tcpdump print-tcp.c `tcp_flag_values`, in its order.
const TCP_FLAG_CHARS: readonly [number, string][] = [
  [TCP_FIN, "F"],
  [TCP_SYN, "S"],
  [TCP_RST, "R"],
  [TCP_PSH, "P"],
  [TCP_ACK, "."],
  [TCP_URG, "U"],
  [TCP_ECE, "E"],
  [TCP_CWR, "W"],
];

function tcpFlags(flags: number): string {
  let s = "";
  for (const [bit, c] of TCP_FLAG_CHARS) if ((flags & bit) !== 0) s += c;
  return s === "" ? "none" : s;
}

const ICMP_NAMES: Record<number, string> = {
  0: "echo reply",
  3: "unreachable",
  5: "redirect",
  8: "echo request",
  11: "time exceeded",
};
const ICMPV6_NAMES: Record<number, string> = {
  1: "destination unreachable",
  2: "packet too big",
  3: "time exceeded",
  128: "echo request",
  129: "echo reply",
  133: "router solicitation",
  134: "router advertisement",
  135: "neighbor solicitation",
  136: "neighbor advertisement",
};

/** tcpdump separates the port with a dot, for IPv6 too. */
function endpoint(addr: Buffer, port: number | undefined): string {
  return port === undefined ? formatIp(addr) : `${formatIp(addr)}.${port}`;
}

function describeIp(f: Frame, ip: Ip): string {
  const v6 = ip.version === 6;
  const l4 = f.l4;
  const ports = l4 !== undefined && (l4.protocol === "tcp" || l4.protocol === "udp");
  const sp = ports ? l4.srcPort : undefined;
  const dp = ports ? l4.dstPort : undefined;
  let s = `${v6 ? "IP6" : "IP"} ${endpoint(ip.src, sp)} > ${endpoint(ip.dst, dp)}: `;
  if (l4?.protocol === "tcp") {
    const len = l4.payload.length;
    s += `Flags [${tcpFlags(l4.flags)}], seq ${l4.seq}${len > 0 ? `:${(l4.seq + len) >>> 0}` : ""}`;
    if ((l4.flags & TCP_ACK) !== 0) s += `, ack ${l4.ack}`;
    s += `, win ${l4.window}, length ${len}`;
  } else if (l4?.protocol === "udp") {
    s += `UDP, length ${l4.length === 0 ? l4.payload.length : l4.length - 8}`;
  } else if (l4?.protocol === "icmp") {
    const echo = l4.type === ICMP_ECHO_REQUEST || l4.type === ICMP_ECHO_REPLY;
    s += `ICMP ${ICMP_NAMES[l4.type] ?? `type ${l4.type}`}`;
    if (echo) s += `, id ${l4.id}, seq ${l4.seq}`;
    else if (ICMP_NAMES[l4.type] === undefined) s += ` code ${l4.code}`;
    s += `, length ${ip.payload.length}`;
  } else if (l4?.protocol === "icmpv6") {
    const echo = l4.type === ICMPV6_ECHO_REQUEST || l4.type === ICMPV6_ECHO_REPLY;
    s += `ICMP6, ${ICMPV6_NAMES[l4.type] ?? `type ${l4.type}`}`;
    if (echo) s += `, id ${l4.id}, seq ${l4.seq}`;
    s += `, length ${ip.payload.length}`;
  } else if (ip.protocol === IPPROTO_GRE && ip.fragment === undefined) {
    const g = decodeGre(ip.payload);
    if (g.ok) {
      s += `GREv0, ${(g.flags & GRE_KEY_PRESENT) !== 0 ? `key=0x${g.key!.toString(16)}, ` : ""}`;
      s += g.seq !== undefined ? `seq ${g.seq}, ` : "";
      s += `proto ${g.protocol === ETHERTYPE_TEB ? "TEB" : `0x${g.protocol.toString(16).padStart(4, "0")}`}, length ${ip.payload.length}`;
    } else {
      s += `GRE, length ${ip.payload.length}`;
    }
  } else {
    s += `ip-proto-${ip.protocol} ${ip.payload.length}`;
  }
  if (ip.fragment !== undefined) {
    s += ` (frag ${ip.fragment.id}:${ip.payload.length}@${ip.fragment.offset}${ip.fragment.more ? "+" : ""})`;
  }
  return s;
}

function describeArp(arp: Arp): string {
  const ipv4Eth = arp.htype === 1 && arp.ptype === ETHERTYPE_IPV4 && arp.senderProtocol.length === 4;
  const addr = (a: Buffer): string => (ipv4Eth ? formatIp(a) : a.toString("hex"));
  if (arp.op === ARP_OP_REQUEST)
    return `ARP, Request who-has ${addr(arp.targetProtocol)} tell ${addr(arp.senderProtocol)}, length ${arp.length}`;
  if (arp.op === ARP_OP_REPLY)
    return `ARP, Reply ${addr(arp.senderProtocol)} is-at ${formatMac(arp.senderHardware)}, length ${arp.length}`;
  return `ARP, op ${arp.op}, length ${arp.length}`;
}

export interface SummaryOptions {
  /** Prefix the link-layer addresses and tags, like `tcpdump -e`. */
  readonly link?: boolean;
}

/**
 * One line per packet in tcpdump's style (`IP 10.0.0.1.4242 > 10.0.0.2.80: Flags [S], seq 1, win
 * 512, length 0`). A layer that failed to decode ends the line in tcpdump's `[|tcp]` form for a
 * truncation, or `[reason layer]` otherwise.
 */
export function formatSummary(frame: Frame | DecodeFailure, options: SummaryOptions = {}): string {
  if (!frame.ok)
    return frame.reason === "truncated" ? `[|${frame.layer}]` : `[${frame.reason} ${frame.layer}]`;
  let s = "";
  const eth = frame.eth;
  if (eth !== undefined) {
    if (options.link === true) s += `${formatMac(eth.src)} > ${formatMac(eth.dst)}, `;
    for (const tag of eth.vlans) s += `vlan ${tag.vid}, p ${tag.pcp}, `;
  }
  if (frame.ip !== undefined) s += describeIp(frame, frame.ip);
  else if (frame.arp !== undefined) s += describeArp(frame.arp);
  else if (eth !== undefined && frame.error === undefined) {
    s +=
      eth.etherType < 0x0600
        ? `802.3, length ${eth.etherType}`
        : `ethertype 0x${eth.etherType.toString(16).padStart(4, "0")}, length ${frame.length}`;
  }
  const e = frame.error;
  if (e !== undefined)
    s += `${s === "" || s.endsWith(" ") ? "" : " "}${e.reason === "truncated" ? `[|${e.layer}]` : `[${e.reason} ${e.layer}]`}`;
  return s;
}

/**
 * The summary of a transport-interface frame: the tunnel, then the mirrored packet, e.g.
 * `gre key 99 192.0.2.1 > 192.0.2.2: IP 10.0.0.1 > 10.0.0.2: ICMP echo request, …`.
 */
export function formatDecapsulatedSummary(frame: Uint8Array, linkType: number = LINKTYPE_ETHERNET): string {
  const d = decapsulate(frame, linkType);
  if (!d.ok) return formatSummary(decodeFrame(frame, linkType));
  const tunnel =
    d.kind === "gre"
      ? `gre${d.key === undefined ? "" : ` key ${d.key}`}`
      : `${d.kind} session ${d.sessionId}`;
  return `${tunnel} ${formatIp(d.outer.src)} > ${formatIp(d.outer.dst)}: ${formatSummary(decodeFrame(d.inner, d.innerLinkType))}`;
}
