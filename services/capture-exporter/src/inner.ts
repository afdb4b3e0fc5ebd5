/**
 * What the filter, the flow table and dedup need of a mirrored frame — network and transport
 * addresses and where the headers are — read in place into one reusable object.
 *
 *     const f = new InnerParser();
 *     f.parse(buf, start, end, LINKTYPE_ETHERNET);
 *     if (f.l3 === L3_IPV4) flows.add(f.protocol, f.src4, f.dst4, f.srcPort, f.dstPort, …);
 *
 * A frame that is cut short or is no IP/ARP leaves `l3 = L3_NONE` (or ports at NO_PORT); parsing never
 * throws and never allocates.
 */
import { LINKTYPE_ETHERNET } from "@ovntap/packet";

export const L3_NONE = 0;
export const L3_IPV4 = 4;
export const L3_IPV6 = 6;
/** ARP for IPv4 over Ethernet; `src4`/`dst4` hold the sender and target protocol addresses. */
export const L3_ARP = 1;

export const NO_PORT = -1;
/** `protocol` for frames that are not IP. */
export const NO_PROTOCOL = -1;

const MAX_VLAN_TAGS = 4;
const MAX_IPV6_EXTENSION_HEADERS = 10;

function isIpv6Extension(nh: number): boolean {
  // RFC 8200 §4 and the IANA registry, as @ovntap/packet walks them.
  return (
    nh === 0 ||
    nh === 43 ||
    nh === 44 ||
    nh === 51 ||
    nh === 60 ||
    nh === 135 ||
    nh === 139 ||
    nh === 140 ||
    nh === 253 ||
    nh === 254
  );
}

export class InnerParser {
  l3 = L3_NONE;
  /** Where the network header starts. */
  l3Start = 0;
  /** Where the network header (with IPv6 extension headers) ends and the transport header starts. */
  l4Start = 0;
  /** Where the IP packet ends within the capture (min of its length field and the captured bytes). */
  l3End = 0;
  /** IANA protocol number after extension headers, or NO_PROTOCOL. */
  protocol = NO_PROTOCOL;
  /** An IPv6 AH header was walked (its protocol is the one after it). */
  sawAh = false;
  /** IPv4 addresses (unsigned 32-bit); for IPv6 see `src6`/`dst6` offsets into the buffer. */
  src4 = 0;
  dst4 = 0;
  src6 = 0;
  dst6 = 0;
  /** TCP/UDP/SCTP ports of a whole packet or first fragment, else NO_PORT. */
  srcPort = NO_PORT;
  dstPort = NO_PORT;
  /** A non-first fragment: no transport header. */
  laterFragment = false;

  parse(b: Buffer, start: number, end: number, linkType: number): void {
    this.l3 = L3_NONE;
    this.protocol = NO_PROTOCOL;
    this.srcPort = NO_PORT;
    this.dstPort = NO_PORT;
    this.sawAh = false;
    this.laterFragment = false;
    let at = start;
    let v: number;
    if (linkType === LINKTYPE_ETHERNET) {
      if (end - start < 14) return;
      at = start + 12;
      let et = (b[at]! << 8) | b[at + 1]!;
      let tags = 0;
      while (et === 0x8100 || et === 0x88a8 || et === 0x9100) {
        if (tags === MAX_VLAN_TAGS || end - at < 6) return;
        tags++;
        at += 4;
        et = (b[at]! << 8) | b[at + 1]!;
      }
      at += 2;
      if (et === 0x0800) v = 4;
      else if (et === 0x86dd) v = 6;
      else if (et === 0x0806) {
        this.parseArp(b, at, end);
        return;
      } else return;
    } else {
      if (end - start < 1) return;
      v = b[start]! >>> 4;
    }
    this.l3Start = at;
    if (v === 4) this.parseIpv4(b, at, end);
    else if (v === 6) this.parseIpv6(b, at, end);
  }

  private parseArp(b: Buffer, at: number, end: number): void {
    // RFC 826 for Ethernet/IPv4: htype 1, ptype 0x0800, hlen 6, plen 4.
    if (end - at < 28) return;
    if (b[at]! !== 0 || b[at + 1]! !== 1 || b[at + 2]! !== 8 || b[at + 3]! !== 0) return;
    if (b[at + 4]! !== 6 || b[at + 5]! !== 4) return;
    this.l3 = L3_ARP;
    this.l3Start = at;
    this.l4Start = at + 28;
    this.l3End = at + 28;
    this.src4 = ((b[at + 14]! << 24) | (b[at + 15]! << 16) | (b[at + 16]! << 8) | b[at + 17]!) >>> 0;
    this.dst4 = ((b[at + 24]! << 24) | (b[at + 25]! << 16) | (b[at + 26]! << 8) | b[at + 27]!) >>> 0;
  }

  private parseIpv4(b: Buffer, at: number, end: number): void {
    if (end - at < 20 || b[at]! >>> 4 !== 4) return;
    const ihl = (b[at]! & 0x0f) << 2;
    if (ihl < 20 || end - at < ihl) return;
    const total = (b[at + 2]! << 8) | b[at + 3]!;
    this.l3 = L3_IPV4;
    this.protocol = b[at + 9]!;
    this.src4 = ((b[at + 12]! << 24) | (b[at + 13]! << 16) | (b[at + 14]! << 8) | b[at + 15]!) >>> 0;
    this.dst4 = ((b[at + 16]! << 24) | (b[at + 17]! << 16) | (b[at + 18]! << 8) | b[at + 19]!) >>> 0;
    this.l4Start = at + ihl;
    const ipEnd = at + (total < ihl ? ihl : total);
    this.l3End = ipEnd < end ? ipEnd : end;
    const fragOffset = ((b[at + 6]! & 0x1f) << 8) | b[at + 7]!;
    if (fragOffset !== 0) {
      this.laterFragment = true;
      return;
    }
    this.readPorts(b);
  }

  private parseIpv6(b: Buffer, at: number, end: number): void {
    if (end - at < 40 || b[at]! >>> 4 !== 6) return;
    const payload = (b[at + 4]! << 8) | b[at + 5]!;
    const ipEnd = payload === 0 ? end : at + 40 + payload;
    const stop = ipEnd < end ? ipEnd : end;
    let nh = b[at + 6]!;
    let p = at + 40;
    let count = 0;
    while (isIpv6Extension(nh)) {
      if (count === MAX_IPV6_EXTENSION_HEADERS || stop - p < 8) return;
      const next = b[p]!;
      let len: number;
      if (nh === 44) {
        len = 8;
        if ((((b[p + 2]! << 8) | b[p + 3]!) & 0xfff8) !== 0) this.laterFragment = true;
      } else if (nh === 51) {
        len = (b[p + 1]! + 2) * 4;
        this.sawAh = true;
      } else {
        len = (b[p + 1]! + 1) * 8;
      }
      if (stop - p < len) return;
      p += len;
      nh = next;
      count++;
      if (this.laterFragment) break;
    }
    this.l3 = L3_IPV6;
    this.protocol = nh;
    this.src6 = at + 8;
    this.dst6 = at + 24;
    this.l4Start = p;
    this.l3End = stop;
    if (!this.laterFragment) this.readPorts(b);
  }

  private readPorts(b: Buffer): void {
    const p = this.protocol;
    // TCP, UDP, SCTP (and UDP-Lite) all start with source and destination port.
    if ((p === 6 || p === 17 || p === 132 || p === 136) && this.l3End - this.l4Start >= 4) {
      const at = this.l4Start;
      this.srcPort = (b[at]! << 8) | b[at + 1]!;
      this.dstPort = (b[at + 2]! << 8) | b[at + 3]!;
    }
  }
}
