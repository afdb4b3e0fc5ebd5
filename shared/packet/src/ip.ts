/**
 * IPv4 (RFC 791) and IPv6 (RFC 8200) headers. Both decoders accept packets cut short by a capture
 * snaplen: once the fixed header is whole, a payload shorter than the length fields promise is
 * returned as it is, with `truncated: true`; trailing Ethernet padding past the length field is
 * dropped from `payload`.
 *
 *     const ip = decodeIp(frame, eth.headerLength);
 *     if (ip.ok && ip.protocol === IPPROTO_GRE && !ip.fragment) decodeGre(frame, ip.offset + ip.headerLength);
 */
import { asBuffer, finishChecksum, sumWords, u16, u32 } from "./bytes.js";
import { fail } from "./result.js";
import type { DecodeFailure } from "./result.js";

export const IPPROTO_HOPOPTS = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ROUTING = 43;
export const IPPROTO_FRAGMENT = 44;
export const IPPROTO_GRE = 47;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_NONE = 59;
export const IPPROTO_DSTOPTS = 60;
export const IPPROTO_MOBILITY = 135;
export const IPPROTO_HIP = 139;
export const IPPROTO_SHIM6 = 140;

export const IPV4_MIN_HEADER_LENGTH = 20;
export const IPV6_HEADER_LENGTH = 40;
/**
 * Extension headers walked before `ext-header-limit`. RFC 8200 §4.1 allows each header once (the
 * Destination Options header twice), so a legitimate chain has at most 9 of the ones we know.
 */
export const MAX_IPV6_EXTENSION_HEADERS = 10;

export interface Fragment {
  /** Offset of this fragment's data in the original payload, in octets. */
  readonly offset: number;
  /** More fragments follow. */
  readonly more: boolean;
  /** Identification (16 bits for IPv4, 32 bits for IPv6). */
  readonly id: number;
}

export interface Ipv4 {
  readonly ok: true;
  readonly version: 4;
  /** Where the header starts in the caller's buffer. */
  readonly offset: number;
  /** IHL × 4. */
  readonly headerLength: number;
  /** Type of service octet: DSCP (6 bits) and ECN (2 bits), RFC 2474 / RFC 3168. */
  readonly tos: number;
  readonly totalLength: number;
  readonly id: number;
  readonly dontFragment: boolean;
  /** Set for any fragment (MF set or offset > 0); `undefined` for a whole packet. */
  readonly fragment: Fragment | undefined;
  readonly ttl: number;
  /** The next protocol (RFC 790 "Assigned Numbers"; IANA protocol numbers). */
  readonly protocol: number;
  readonly checksum: number;
  /** Views of 4 octets. */
  readonly src: Buffer;
  readonly dst: Buffer;
  /** Header bytes past the first 20 (RFC 791 §3.1 options); empty without options. */
  readonly options: Buffer;
  /** From the end of the header to the end of `totalLength` or of the buffer, whichever is first. */
  readonly payload: Buffer;
  /** Where `payload` ends in the caller's buffer. */
  readonly end: number;
  /** The buffer ends before `totalLength` does (a snaplen cut). */
  readonly truncated: boolean;
}

export interface Ipv6 {
  readonly ok: true;
  readonly version: 6;
  readonly offset: number;
  /** 40 plus every extension header walked. */
  readonly headerLength: number;
  /** Traffic class (8 bits) — the IPv4 TOS octet's counterpart. */
  readonly tos: number;
  readonly flowLabel: number;
  readonly payloadLength: number;
  readonly ttl: number;
  /** The upper-layer protocol after the extension headers (59 when "No Next Header", 50 for ESP). */
  readonly protocol: number;
  /** Number of extension headers walked. */
  readonly extensionHeaders: number;
  /** From the Fragment header, when there is one. */
  readonly fragment: Fragment | undefined;
  readonly src: Buffer;
  readonly dst: Buffer;
  readonly payload: Buffer;
  /** Where `payload` ends in the caller's buffer. */
  readonly end: number;
  readonly truncated: boolean;
}

export type Ip = Ipv4 | Ipv6;

// Results are classes whose views are getters: a decoder result costs no `subarray` (~90 ns each
// on Node 20) that its reader does not ask for, which keeps `decapsulate` to one view per packet.
class Ipv4Header implements Ipv4 {
  readonly ok = true as const;
  readonly version = 4 as const;
  readonly #b: Buffer;
  constructor(
    b: Buffer,
    readonly offset: number,
    readonly headerLength: number,
    readonly tos: number,
    readonly totalLength: number,
    readonly id: number,
    readonly dontFragment: boolean,
    readonly fragment: Fragment | undefined,
    readonly ttl: number,
    readonly protocol: number,
    readonly checksum: number,
    readonly end: number,
  ) {
    this.#b = b;
  }
  get src(): Buffer {
    return this.#b.subarray(this.offset + 12, this.offset + 16);
  }
  get dst(): Buffer {
    return this.#b.subarray(this.offset + 16, this.offset + 20);
  }
  get options(): Buffer {
    return this.#b.subarray(this.offset + IPV4_MIN_HEADER_LENGTH, this.offset + this.headerLength);
  }
  get payload(): Buffer {
    return this.#b.subarray(this.offset + this.headerLength, this.end);
  }
  get truncated(): boolean {
    return this.#b.length - this.offset < this.totalLength;
  }
}

class Ipv6Header implements Ipv6 {
  readonly ok = true as const;
  readonly version = 6 as const;
  readonly #b: Buffer;
  constructor(
    b: Buffer,
    readonly offset: number,
    readonly headerLength: number,
    readonly tos: number,
    readonly flowLabel: number,
    readonly payloadLength: number,
    readonly ttl: number,
    readonly protocol: number,
    readonly extensionHeaders: number,
    readonly fragment: Fragment | undefined,
    readonly end: number,
  ) {
    this.#b = b;
  }
  get src(): Buffer {
    return this.#b.subarray(this.offset + 8, this.offset + 24);
  }
  get dst(): Buffer {
    return this.#b.subarray(this.offset + 24, this.offset + 40);
  }
  get payload(): Buffer {
    return this.#b.subarray(this.offset + this.headerLength, this.end);
  }
  get truncated(): boolean {
    return this.payloadLength !== 0 && this.#b.length - this.offset < IPV6_HEADER_LENGTH + this.payloadLength;
  }
}

/**
 * RFC 791 §3.1: version 4, IHL ≥ 5 words, total length ≥ IHL × 4. Flags bit 1 is DF, bit 2 MF;
 * the fragment offset counts 8-octet units.
 */
export function decodeIpv4(packet: Uint8Array, offset = 0): Ipv4 | DecodeFailure {
  const b = asBuffer(packet);
  if (b.length - offset < IPV4_MIN_HEADER_LENGTH) return fail("truncated", "ipv4", offset);
  const vihl = b[offset]!;
  if (vihl >>> 4 !== 4) return fail("bad-version", "ipv4", offset);
  const headerLength = (vihl & 0x0f) * 4;
  if (headerLength < IPV4_MIN_HEADER_LENGTH) return fail("bad-header-length", "ipv4", offset);
  if (b.length - offset < headerLength) return fail("truncated", "ipv4", offset + IPV4_MIN_HEADER_LENGTH);
  const totalLength = u16(b, offset + 2);
  if (totalLength < headerLength) return fail("bad-header-length", "ipv4", offset + 2);
  const flagsFrag = u16(b, offset + 6);
  const fragOffset = (flagsFrag & 0x1fff) * 8;
  const more = (flagsFrag & 0x2000) !== 0;
  const id = u16(b, offset + 4);
  return new Ipv4Header(
    b,
    offset,
    headerLength,
    b[offset + 1]!,
    totalLength,
    id,
    (flagsFrag & 0x4000) !== 0,
    more || fragOffset !== 0 ? { offset: fragOffset, more, id } : undefined,
    b[offset + 8]!,
    b[offset + 9]!,
    u16(b, offset + 10),
    Math.min(b.length, offset + totalLength),
  );
}

/** RFC 791 §3.1 header checksum: true when the one's-complement sum over the header verifies. */
export function ipv4ChecksumOk(ip: Ipv4, packet: Uint8Array): boolean {
  return finishChecksum(sumWords(packet, ip.offset, ip.offset + ip.headerLength)) === 0;
}

function isExtensionHeader(nh: number): boolean {
  // RFC 8200 §4 and the IANA "IPv6 Extension Header Types" registry (RFC 7045 §4); ESP (50) is
  // listed there too, but nothing after it can be read, so it ends the walk as the protocol.
  return (
    nh === IPPROTO_HOPOPTS ||
    nh === IPPROTO_ROUTING ||
    nh === IPPROTO_FRAGMENT ||
    nh === IPPROTO_AH ||
    nh === IPPROTO_DSTOPTS ||
    nh === IPPROTO_MOBILITY ||
    nh === IPPROTO_HIP ||
    nh === IPPROTO_SHIM6 ||
    nh === 253 ||
    nh === 254
  );
}

/**
 * RFC 8200 §3 fixed header, then the extension-header chain (§4) to the upper-layer protocol:
 * Hop-by-Hop, Routing, Destination Options and the RFC 7045 ones are (Hdr Ext Len + 1) × 8 octets;
 * Fragment is 8 octets (§4.5), and a non-first fragment ends the walk since what follows is not a
 * header; AH is (Payload Len + 2) × 4 octets (RFC 4302 §2.2).
 */
export function decodeIpv6(packet: Uint8Array, offset = 0): Ipv6 | DecodeFailure {
  const b = asBuffer(packet);
  if (b.length - offset < IPV6_HEADER_LENGTH) return fail("truncated", "ipv6", offset);
  const w0 = u32(b, offset);
  if (w0 >>> 28 !== 6) return fail("bad-version", "ipv6", offset);
  const payloadLength = u16(b, offset + 4);
  // A zero payload length means a Jumbo Payload option (RFC 2675); take what the buffer holds.
  const end =
    payloadLength === 0 ? b.length : Math.min(b.length, offset + IPV6_HEADER_LENGTH + payloadLength);
  let nh = b[offset + 6]!;
  let at = offset + IPV6_HEADER_LENGTH;
  let count = 0;
  let fragment: Fragment | undefined;
  while (isExtensionHeader(nh)) {
    // RFC 8200 §4.3: Hop-by-Hop Options "MUST immediately follow the IPv6 header".
    if (nh === IPPROTO_HOPOPTS && count !== 0) return fail("bad-ext-header", "ipv6", at);
    if (count === MAX_IPV6_EXTENSION_HEADERS) return fail("ext-header-limit", "ipv6", at);
    if (end - at < 8) return fail("truncated", "ipv6", at);
    const next = b[at]!;
    let len: number;
    if (nh === IPPROTO_FRAGMENT) {
      len = 8;
      const offFlags = u16(b, at + 2);
      fragment = { offset: offFlags & 0xfff8, more: (offFlags & 1) !== 0, id: u32(b, at + 4) };
    } else if (nh === IPPROTO_AH) {
      len = (b[at + 1]! + 2) * 4;
    } else {
      len = (b[at + 1]! + 1) * 8;
    }
    if (end - at < len) return fail("truncated", "ipv6", at);
    at += len;
    nh = next;
    count++;
    if (fragment !== undefined && fragment.offset !== 0) break;
  }
  return new Ipv6Header(
    b,
    offset,
    at - offset,
    (w0 >>> 20) & 0xff,
    w0 & 0xfffff,
    payloadLength,
    b[offset + 7]!,
    nh,
    count,
    fragment,
    end,
  );
}

/** IPv4 or IPv6 by the version nibble. */
export function decodeIp(packet: Uint8Array, offset = 0): Ip | DecodeFailure {
  const b = asBuffer(packet);
  if (b.length - offset < 1) return fail("truncated", "ipv4", offset);
  const v = b[offset]! >>> 4;
  if (v === 6) return decodeIpv6(b, offset);
  if (v === 4) return decodeIpv4(b, offset);
  return fail("bad-version", "ipv4", offset);
}

/**
 * The pseudo-header sum for TCP/UDP/ICMPv6 checksums: RFC 793 §3.1 (IPv4: src, dst, zero,
 * protocol, length) and RFC 8200 §8.1 (IPv6: src, dst, 32-bit length, 3 zero octets, next header).
 */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  let sum = sumWords(src, 0, src.length) + sumWords(dst, 0, dst.length) + protocol;
  sum += src.length === 16 ? Math.floor(length / 0x10000) + (length & 0xffff) : length;
  return sum;
}
