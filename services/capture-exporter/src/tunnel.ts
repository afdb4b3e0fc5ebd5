/**
 * The exporter's decapsulation hot path: one reusable parser that reads a transport frame in place
 * and leaves its findings in fields — no object, no view per packet. It handles what OVS and Linux
 * send (outer Ethernet with up to MAX_VLAN_TAGS tags or raw IP, IPv4 with options, IPv6 without
 * extension headers, GRE with C/K/S, ERSPAN II, ERSPAN III with the platform sub-header) and hands
 * everything else to `decapsulate` from @ovntap/packet, whose result it copies into the same fields,
 * so the two never disagree (a property test checks it on random and mutated frames).
 *
 *     const t = new TunnelParser();
 *     if (t.parse(buf, start, end, LINKTYPE_ETHERNET)) use(t.kind, t.tunnelId, t.innerStart, t.innerEnd);
 *     else decapErrors[t.reason]++;
 */
import { decapsulate, LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_RAW } from "@ovntap/packet";
import type { DecodeReason } from "@ovntap/packet";

/** What the frames arrived in; the index into CAPTURE_ENCAPS order is not relied upon. */
export const ENCAP_NONE = 0;
export const ENCAP_GRE = 1;
export const ENCAP_ERSPAN2 = 2;
export const ENCAP_ERSPAN3 = 3;
export type EncapKind = typeof ENCAP_NONE | typeof ENCAP_GRE | typeof ENCAP_ERSPAN2 | typeof ENCAP_ERSPAN3;

/** The contract's name of each encapsulation (CAPTURE_ENCAPS). */
export const ENCAP_NAMES = ["none", "gre", "erspan2", "erspan3"] as const;
export type EncapName = (typeof ENCAP_NAMES)[number];

/** `tunnelId` of GRE packets without a key (K clear). */
export const NO_TUNNEL_ID = -1;

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_TEB = 0x6558;
const ETHERTYPE_ERSPAN2 = 0x88be;
const ETHERTYPE_ERSPAN3 = 0x22eb;
const MAX_VLAN_TAGS = 4;
const IPPROTO_GRE = 47;
const GRE_C = 0x8000;
const GRE_K = 0x2000;
const GRE_S = 0x1000;
// RFC 2784 §2.3 with RFC 2890: bits 1, 4, 5 must be zero, version must be 0.
const GRE_REJECT = 0x4000 | 0x0800 | 0x0400 | 0x0007;

function isTag(t: number): boolean {
  return t === 0x8100 || t === 0x88a8 || t === 0x9100;
}

export class TunnelParser {
  /** ENCAP_GRE, ENCAP_ERSPAN2 or ENCAP_ERSPAN3 after a successful parse. */
  kind: EncapKind = ENCAP_NONE;
  /** GRE key or ERSPAN session id; NO_TUNNEL_ID for GRE without K. */
  tunnelId = NO_TUNNEL_ID;
  /** Outer IP version. */
  family: 4 | 6 = 4;
  /** Outer destination (the sink): the IPv4 address as an unsigned 32-bit number, or IPv6 as four words. */
  dst0 = 0;
  dst1 = 0;
  dst2 = 0;
  dst3 = 0;
  /** The mirrored frame: `buf[innerStart, innerEnd)` (possibly cut short by the capture's snaplen). */
  innerStart = 0;
  innerEnd = 0;
  /** The mirrored frame's length on the wire, from the outer IP length: the pcap record's orig_len. */
  innerLength = 0;
  /** LINKTYPE_ETHERNET, or LINKTYPE_RAW when the tunnel carried IP directly. */
  innerLinkType: number = LINKTYPE_ETHERNET;
  /** Why the last parse failed. */
  reason: DecodeReason = "truncated";
  /** Frames the fast path passed to `decapsulate` (unusual but maybe valid), for the curious. */
  slowPath = 0;

  /** Parses `b[start, end)` captured with `linkType`; false with `reason` set when it is no tunnel packet we unwrap. */
  parse(b: Buffer, start: number, end: number, linkType: number): boolean {
    let l3 = start;
    let v6: boolean;
    if (linkType === LINKTYPE_ETHERNET) {
      if (end - start < 14) return this.slow(b, start, end, linkType);
      let at = start + 12;
      let et = (b[at]! << 8) | b[at + 1]!;
      let tags = 0;
      while (isTag(et)) {
        if (tags === MAX_VLAN_TAGS || end - at < 6) return this.slow(b, start, end, linkType);
        tags++;
        at += 4;
        et = (b[at]! << 8) | b[at + 1]!;
      }
      if (et === ETHERTYPE_IPV4) v6 = false;
      else if (et === ETHERTYPE_IPV6) v6 = true;
      else return this.slow(b, start, end, linkType);
      l3 = at + 2;
    } else if (linkType === LINKTYPE_RAW || linkType === LINKTYPE_IPV4 || linkType === LINKTYPE_IPV6) {
      if (end - start < 1) return this.slow(b, start, end, linkType);
      v6 = b[start]! >>> 4 === 6;
    } else {
      return this.slow(b, start, end, linkType);
    }

    let ipEnd: number; // where the IP packet ends by its length field (orig_len)
    let stop: number; // where reading stops: the IP end or the captured end, whichever is first
    let gre: number;
    if (!v6) {
      if (end - l3 < 20) return this.slow(b, start, end, linkType);
      const vihl = b[l3]!;
      const ihl = (vihl & 0x0f) << 2;
      const total = (b[l3 + 2]! << 8) | b[l3 + 3]!;
      // Version, header length, GRE, no fragment (MF or offset): anything else takes the slow path.
      if (
        vihl >>> 4 !== 4 ||
        ihl < 20 ||
        end - l3 < ihl ||
        total < ihl ||
        b[l3 + 9]! !== IPPROTO_GRE ||
        ((b[l3 + 6]! & 0x3f) | b[l3 + 7]!) !== 0
      ) {
        return this.slow(b, start, end, linkType);
      }
      this.family = 4;
      this.dst0 = ((b[l3 + 16]! << 24) | (b[l3 + 17]! << 16) | (b[l3 + 18]! << 8) | b[l3 + 19]!) >>> 0;
      ipEnd = l3 + total;
      stop = ipEnd < end ? ipEnd : end;
      gre = l3 + ihl;
    } else {
      // Only GRE right after the fixed header; extension headers take the slow path.
      if (end - l3 < 40 || b[l3]! >>> 4 !== 6 || b[l3 + 6]! !== IPPROTO_GRE) {
        return this.slow(b, start, end, linkType);
      }
      const payload = (b[l3 + 4]! << 8) | b[l3 + 5]!;
      this.family = 6;
      this.dst0 = b.readUInt32BE(l3 + 24);
      this.dst1 = b.readUInt32BE(l3 + 28);
      this.dst2 = b.readUInt32BE(l3 + 32);
      this.dst3 = b.readUInt32BE(l3 + 36);
      // A zero payload length means a jumbogram (RFC 2675): take what the capture holds.
      ipEnd = payload === 0 ? end : l3 + 40 + payload;
      stop = ipEnd < end ? ipEnd : end;
      gre = l3 + 40;
    }

    // GRE, RFC 2784 §2 / RFC 2890 §2.
    if (stop - gre < 4) return this.slow(b, start, end, linkType);
    const flags = (b[gre]! << 8) | b[gre + 1]!;
    if ((flags & GRE_REJECT) !== 0) return this.slow(b, start, end, linkType);
    const c = (flags & GRE_C) !== 0;
    const k = (flags & GRE_K) !== 0;
    const s = (flags & GRE_S) !== 0;
    const greLength = 4 + (c ? 4 : 0) + (k ? 4 : 0) + (s ? 4 : 0);
    if (stop - gre < greLength) return this.slow(b, start, end, linkType);
    const protocol = (b[gre + 2]! << 8) | b[gre + 3]!;
    const after = gre + greLength;
    let inner: number;
    if (protocol === ETHERTYPE_TEB || protocol === ETHERTYPE_IPV4 || protocol === ETHERTYPE_IPV6) {
      this.kind = ENCAP_GRE;
      if (k) {
        const at = gre + (c ? 8 : 4);
        this.tunnelId = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
      } else {
        this.tunnelId = NO_TUNNEL_ID;
      }
      this.innerLinkType = protocol === ETHERTYPE_TEB ? LINKTYPE_ETHERNET : LINKTYPE_RAW;
      inner = after;
    } else if (protocol === ETHERTYPE_ERSPAN2) {
      // ERSPAN type II: S set, version field 1, 8-octet header (type I, without S, is not unwrapped).
      if (!s || stop - after < 8 || b[after]! >>> 4 !== 1) return this.slow(b, start, end, linkType);
      this.kind = ENCAP_ERSPAN2;
      this.tunnelId = ((b[after + 2]! << 8) | b[after + 3]!) & 0x3ff;
      this.innerLinkType = LINKTYPE_ETHERNET;
      inner = after + 8;
    } else if (protocol === ETHERTYPE_ERSPAN3) {
      // ERSPAN type III: version field 2, 12 octets plus 8 when O is set; frame type 0 Ethernet, 2 IP.
      if (stop - after < 12 || b[after]! >>> 4 !== 2) return this.slow(b, start, end, linkType);
      const w3 = (b[after + 10]! << 8) | b[after + 11]!;
      const length = (w3 & 1) !== 0 ? 20 : 12;
      const frameType = (w3 >>> 10) & 0x1f;
      if (stop - after < length || (frameType !== 0 && frameType !== 2)) {
        return this.slow(b, start, end, linkType);
      }
      this.kind = ENCAP_ERSPAN3;
      this.tunnelId = ((b[after + 2]! << 8) | b[after + 3]!) & 0x3ff;
      this.innerLinkType = frameType === 0 ? LINKTYPE_ETHERNET : LINKTYPE_RAW;
      inner = after + length;
    } else {
      return this.slow(b, start, end, linkType);
    }
    this.innerStart = inner;
    this.innerEnd = stop;
    this.innerLength = ipEnd - inner;
    return true;
  }

  /** Everything the fast path does not take: `decapsulate` decides, and its answer is copied into the fields. */
  private slow(b: Buffer, start: number, end: number, linkType: number): boolean {
    this.slowPath++;
    const d = decapsulate(b.subarray(start, end), linkType);
    if (!d.ok) {
      this.reason = d.reason;
      return false;
    }
    this.kind = d.kind === "gre" ? ENCAP_GRE : d.kind === "erspan2" ? ENCAP_ERSPAN2 : ENCAP_ERSPAN3;
    this.tunnelId = d.tunnelId ?? NO_TUNNEL_ID;
    const dst = d.outer.dst;
    if (dst.length === 4) {
      this.family = 4;
      this.dst0 = dst.readUInt32BE(0);
    } else {
      this.family = 6;
      this.dst0 = dst.readUInt32BE(0);
      this.dst1 = dst.readUInt32BE(4);
      this.dst2 = dst.readUInt32BE(8);
      this.dst3 = dst.readUInt32BE(12);
    }
    this.innerStart = start + d.innerOffset;
    this.innerEnd = this.innerStart + d.inner.length;
    this.innerLength = d.innerLength;
    this.innerLinkType = d.innerLinkType;
    return true;
  }
}
