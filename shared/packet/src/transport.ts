/**
 * Upper-layer headers: TCP (RFC 9293), UDP (RFC 768), ICMP (RFC 792) and ICMPv6 (RFC 4443).
 * Each decoder reads the header at `offset` and returns the rest, up to `end` (the end of the IP
 * payload; default the end of the buffer), as `payload`.
 */
import { asBuffer, u16, u32 } from "./bytes.js";
import { fail } from "./result.js";
import type { DecodeFailure } from "./result.js";

/** TCP flag bits in the 12-bit field after the data offset (RFC 9293 §3.1; NS from RFC 3540). */
export const TCP_FIN = 0x001;
export const TCP_SYN = 0x002;
export const TCP_RST = 0x004;
export const TCP_PSH = 0x008;
export const TCP_ACK = 0x010;
export const TCP_URG = 0x020;
export const TCP_ECE = 0x040;
export const TCP_CWR = 0x080;
export const TCP_NS = 0x100;

export const TCP_MIN_HEADER_LENGTH = 20;
export const UDP_HEADER_LENGTH = 8;
export const ICMP_HEADER_LENGTH = 8;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_ECHO_REQUEST = 8;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;

export interface Tcp {
  readonly ok: true;
  readonly protocol: "tcp";
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: number;
  readonly ack: number;
  /** Data offset × 4. */
  readonly headerLength: number;
  /** The nine flag bits, `TCP_*`. */
  readonly flags: number;
  readonly window: number;
  readonly checksum: number;
  readonly urgent: number;
  /** Option bytes (header past 20 octets). */
  readonly options: Buffer;
  readonly payload: Buffer;
}

class TcpHeader implements Tcp {
  readonly ok = true as const;
  readonly protocol = "tcp" as const;
  readonly #b: Buffer;
  constructor(
    b: Buffer,
    readonly offset: number,
    readonly end: number,
    readonly srcPort: number,
    readonly dstPort: number,
    readonly seq: number,
    readonly ack: number,
    readonly headerLength: number,
    readonly flags: number,
    readonly window: number,
    readonly checksum: number,
    readonly urgent: number,
  ) {
    this.#b = b;
  }
  get options(): Buffer {
    return this.#b.subarray(this.offset + TCP_MIN_HEADER_LENGTH, this.offset + this.headerLength);
  }
  get payload(): Buffer {
    return this.#b.subarray(this.offset + this.headerLength, this.end);
  }
}

/** RFC 9293 §3.1: ports, sequence, acknowledgment, data offset (≥ 5 words), flags, window, checksum, urgent pointer. */
export function decodeTcp(segment: Uint8Array, offset = 0, to = segment.length): Tcp | DecodeFailure {
  const b = asBuffer(segment);
  const end = Math.min(to, b.length);
  if (end - offset < TCP_MIN_HEADER_LENGTH) return fail("truncated", "tcp", offset);
  const offFlags = u16(b, offset + 12);
  const headerLength = (offFlags >>> 12) * 4;
  if (headerLength < TCP_MIN_HEADER_LENGTH) return fail("bad-header-length", "tcp", offset + 12);
  if (end - offset < headerLength) return fail("truncated", "tcp", offset + TCP_MIN_HEADER_LENGTH);
  return new TcpHeader(
    b,
    offset,
    end,
    u16(b, offset),
    u16(b, offset + 2),
    u32(b, offset + 4),
    u32(b, offset + 8),
    headerLength,
    offFlags & 0x1ff,
    u16(b, offset + 14),
    u16(b, offset + 16),
    u16(b, offset + 18),
  );
}

export interface Udp {
  readonly ok: true;
  readonly protocol: "udp";
  readonly srcPort: number;
  readonly dstPort: number;
  /** Header plus data, from the header (RFC 768); 0 only in IPv6 jumbograms (RFC 2675 §4). */
  readonly length: number;
  readonly checksum: number;
  /** Up to `length` (or the end of the buffer). */
  readonly payload: Buffer;
}

class UdpHeader implements Udp {
  readonly ok = true as const;
  readonly protocol = "udp" as const;
  readonly #b: Buffer;
  constructor(
    b: Buffer,
    readonly offset: number,
    readonly end: number,
    readonly srcPort: number,
    readonly dstPort: number,
    readonly length: number,
    readonly checksum: number,
  ) {
    this.#b = b;
  }
  get payload(): Buffer {
    return this.#b.subarray(this.offset + UDP_HEADER_LENGTH, this.end);
  }
}

/** RFC 768: source port, destination port, length (≥ 8), checksum. */
export function decodeUdp(datagram: Uint8Array, offset = 0, to = datagram.length): Udp | DecodeFailure {
  const b = asBuffer(datagram);
  const end = Math.min(to, b.length);
  if (end - offset < UDP_HEADER_LENGTH) return fail("truncated", "udp", offset);
  const length = u16(b, offset + 4);
  if (length !== 0 && length < UDP_HEADER_LENGTH) return fail("bad-header-length", "udp", offset + 4);
  const stop = length === 0 ? end : Math.min(end, offset + length);
  return new UdpHeader(b, offset, stop, u16(b, offset), u16(b, offset + 2), length, u16(b, offset + 6));
}

export interface Icmp {
  readonly ok: true;
  readonly protocol: "icmp" | "icmpv6";
  readonly type: number;
  readonly code: number;
  readonly checksum: number;
  /** The second header word: identifier and sequence number for echo messages (RFC 792, RFC 4443 §4.1). */
  readonly id: number;
  readonly seq: number;
  readonly payload: Buffer;
}

class IcmpHeader implements Icmp {
  readonly ok = true as const;
  readonly #b: Buffer;
  constructor(
    b: Buffer,
    readonly protocol: "icmp" | "icmpv6",
    readonly offset: number,
    readonly end: number,
  ) {
    this.#b = b;
  }
  get type(): number {
    return this.#b[this.offset]!;
  }
  get code(): number {
    return this.#b[this.offset + 1]!;
  }
  get checksum(): number {
    return u16(this.#b, this.offset + 2);
  }
  get id(): number {
    return u16(this.#b, this.offset + 4);
  }
  get seq(): number {
    return u16(this.#b, this.offset + 6);
  }
  get payload(): Buffer {
    return this.#b.subarray(this.offset + ICMP_HEADER_LENGTH, this.end);
  }
}

/** RFC 792: type, code, checksum, then a type-specific word (identifier + sequence for echo). */
export function decodeIcmp(message: Uint8Array, offset = 0, to = message.length): Icmp | DecodeFailure {
  const end = Math.min(to, message.length);
  if (end - offset < ICMP_HEADER_LENGTH) return fail("truncated", "icmp", offset);
  return new IcmpHeader(asBuffer(message), "icmp", offset, end);
}

/** RFC 4443 §2.1: the same four-octet prefix as ICMP; echo messages carry identifier + sequence (§4.1). */
export function decodeIcmpv6(message: Uint8Array, offset = 0, to = message.length): Icmp | DecodeFailure {
  const end = Math.min(to, message.length);
  if (end - offset < ICMP_HEADER_LENGTH) return fail("truncated", "icmpv6", offset);
  return new IcmpHeader(asBuffer(message), "icmpv6", offset, end);
}
