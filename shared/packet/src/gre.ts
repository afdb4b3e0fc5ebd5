/**
 * GRE (RFC 2784 with the RFC 2890 key and sequence extensions) and the ERSPAN type II and III
 * headers carried in it.
 *
 *       0                   1                   2                   3
 *       0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *      |C| |K|S| Reserved0       | Ver |         Protocol Type         |   RFC 2890 §2
 *      |      Checksum (optional)      |       Reserved1 (Optional)    |
 *      |                         Key (optional)                        |
 *      |                 Sequence Number (Optional)                    |
 *
 * OVS builds `gre` ports' headers with K (the key) and, with `options:seq=true`, S; ERSPAN ports
 * always get S and never K (OVS lib/netdev-native-tnl.c `netdev_erspan_build_header`:
 * `greh->flags = htons(GRE_SEQ)`), and the session id plays the key's part (`tun_id`).
 */
import { asBuffer, finishChecksum, sumWords, u16, u32 } from "./bytes.js";
import { fail } from "./result.js";
import type { DecodeFailure } from "./result.js";

export const GRE_CHECKSUM_PRESENT = 0x8000;
export const GRE_ROUTING_PRESENT = 0x4000;
export const GRE_KEY_PRESENT = 0x2000;
export const GRE_SEQUENCE_PRESENT = 0x1000;
/**
 * RFC 2784 §2.3: "A receiver MUST discard a packet where any of bits 1-5 are non-zero, unless
 * that receiver implements RFC 1701"; RFC 2890 gives bits 2 and 3 back as K and S, leaving bit 1
 * (RFC 1701 routing), bit 4 (strict source route) and bit 5 (top bit of recursion control).
 */
const GRE_MUST_BE_ZERO = 0x4000 | 0x0800 | 0x0400;
const GRE_VERSION_MASK = 0x0007;

export const GRE_BASE_HEADER_LENGTH = 4;
export const ERSPAN2_HEADER_LENGTH = 8;
export const ERSPAN3_HEADER_LENGTH = 12;
export const ERSPAN3_PLATFORM_LENGTH = 8;

export interface Gre {
  readonly ok: true;
  readonly offset: number;
  /** The first 16 bits: flags, reserved bits, version. */
  readonly flags: number;
  readonly protocol: number;
  /** Checksum field when C is set (RFC 2784 §2.5), else `undefined`. */
  readonly checksum: number | undefined;
  /** Key when K is set (RFC 2890 §2.1). */
  readonly key: number | undefined;
  /** Sequence number when S is set (RFC 2890 §2.2). */
  readonly seq: number | undefined;
  /** 4 plus 4 for each of C, K, S. */
  readonly headerLength: number;
  /** Where the GRE packet ends in the caller's buffer. */
  readonly end: number;
  readonly payload: Buffer;
}

class GreHeader implements Gre {
  readonly ok = true as const;
  readonly #b: Buffer;
  constructor(
    b: Buffer,
    readonly offset: number,
    readonly end: number,
    readonly flags: number,
    readonly protocol: number,
    readonly checksum: number | undefined,
    readonly key: number | undefined,
    readonly seq: number | undefined,
    readonly headerLength: number,
  ) {
    this.#b = b;
  }
  get payload(): Buffer {
    return this.#b.subarray(this.offset + this.headerLength, this.end);
  }
}

/**
 * RFC 2784 §2 / RFC 2890 §2, reading no further than `end` (the end of the IP payload). Version
 * must be 0 (RFC 2784 §2.3.1; version 1 is PPTP's enhanced GRE, RFC 2637).
 */
export function decodeGre(packet: Uint8Array, offset = 0, to = packet.length): Gre | DecodeFailure {
  const b = asBuffer(packet);
  const end = Math.min(to, b.length);
  if (end - offset < GRE_BASE_HEADER_LENGTH) return fail("truncated", "gre", offset);
  const flags = u16(b, offset);
  if ((flags & GRE_VERSION_MASK) !== 0) return fail("bad-version", "gre", offset);
  if ((flags & GRE_MUST_BE_ZERO) !== 0) return fail("bad-flags", "gre", offset);
  let at = offset + GRE_BASE_HEADER_LENGTH;
  const c = (flags & GRE_CHECKSUM_PRESENT) !== 0;
  const k = (flags & GRE_KEY_PRESENT) !== 0;
  const s = (flags & GRE_SEQUENCE_PRESENT) !== 0;
  const headerLength = GRE_BASE_HEADER_LENGTH + (c ? 4 : 0) + (k ? 4 : 0) + (s ? 4 : 0);
  if (end - offset < headerLength) return fail("truncated", "gre", offset + GRE_BASE_HEADER_LENGTH);
  // Optional fields come in the order checksum(+reserved1), key, sequence (RFC 2890 §2).
  let checksum: number | undefined;
  let key: number | undefined;
  let seq: number | undefined;
  if (c) {
    checksum = u16(b, at);
    at += 4;
  }
  if (k) {
    key = u32(b, at);
    at += 4;
  }
  if (s) seq = u32(b, at);
  return new GreHeader(b, offset, end, flags, u16(b, offset + 2), checksum, key, seq, headerLength);
}

/**
 * RFC 2784 §2.5: the checksum covers the GRE header and payload. True when C is clear, or when the
 * sum over `gre.offset` to `end` (the end of the IP payload) verifies.
 */
export function greChecksumOk(
  gre: Gre,
  packet: Uint8Array,
  end = gre.offset + gre.headerLength + gre.payload.length,
): boolean {
  if (gre.checksum === undefined) return true;
  return finishChecksum(sumWords(packet, gre.offset, end)) === 0;
}

/**
 * ERSPAN version 1 (type II), 8 octets (draft-foschiano-erspan-03; Linux include/net/erspan.h;
 * Wireshark epan/dissectors/packet-erspan.c masks):
 *
 *      |  Ver  |          VLAN         | COS | En|T|    Session ID     |
 *      |      Reserved         |                  Index                |
 */
export interface Erspan2 {
  readonly ok: true;
  readonly version: 1;
  readonly vlan: number;
  /** Class of service (3 bits). */
  readonly cos: number;
  /** Encapsulation type (2 bits): 0 untagged, 1 ISL, 2 802.1Q, 3 VLAN tag kept in the frame. */
  readonly en: number;
  /** The mirrored frame was truncated (T bit). */
  readonly truncated: boolean;
  /** 10 bits. */
  readonly sessionId: number;
  /** 20-bit port index (OVS `erspan_idx`). */
  readonly index: number;
  readonly headerLength: 8;
  readonly payload: Buffer;
}

class Erspan2Header implements Erspan2 {
  readonly ok = true as const;
  readonly version = 1 as const;
  readonly headerLength = ERSPAN2_HEADER_LENGTH;
  readonly #b: Buffer;
  constructor(
    b: Buffer,
    readonly offset: number,
    readonly end: number,
    readonly vlan: number,
    readonly cos: number,
    readonly en: number,
    readonly truncated: boolean,
    readonly sessionId: number,
    readonly index: number,
  ) {
    this.#b = b;
  }
  get payload(): Buffer {
    return this.#b.subarray(this.offset + ERSPAN2_HEADER_LENGTH, this.end);
  }
}

export function decodeErspan2(packet: Uint8Array, offset = 0, to = packet.length): Erspan2 | DecodeFailure {
  const b = asBuffer(packet);
  const end = Math.min(to, b.length);
  if (end - offset < ERSPAN2_HEADER_LENGTH) return fail("truncated", "erspan", offset);
  const w0 = u16(b, offset);
  if (w0 >>> 12 !== 1) return fail("bad-version", "erspan", offset);
  const w1 = u16(b, offset + 2);
  return new Erspan2Header(
    b,
    offset,
    end,
    w0 & 0x0fff,
    w1 >>> 13,
    (w1 >>> 11) & 0x3,
    (w1 & 0x0400) !== 0,
    w1 & 0x03ff,
    u32(b, offset + 4) & 0xfffff,
  );
}

/** The optional 8-octet platform-specific sub-header of ERSPAN type III (present when O is set). */
export interface Erspan3Platform {
  /** Platform ID (6 bits); Wireshark decodes 1, 3, 4, 5/6 and 7 (or 0) differently. */
  readonly id: number;
  /** The 26 bits after the platform id in the first word. */
  readonly infoHigh: number;
  /** The second word. */
  readonly infoLow: number;
}

/**
 * ERSPAN version 2 (type III), 12 octets plus the optional 8-octet platform sub-header
 * (draft-foschiano-erspan-03; Linux include/net/erspan.h `erspan_md2` masks):
 *
 *      |  Ver  |          VLAN         | COS |BSO|T|     Session ID    |
 *      |                          Timestamp                            |
 *      |             SGT               |P|    FT   |   Hw ID   |D|Gra|O|
 *      |  Platf ID |               Platform Specific Info              |   (when O)
 *      |                  Platform Specific Info                       |
 */
export interface Erspan3 {
  readonly ok: true;
  readonly version: 2;
  readonly vlan: number;
  readonly cos: number;
  /** Bad/Short/Oversized (2 bits), RFC 1757 semantics. */
  readonly bso: number;
  readonly truncated: boolean;
  readonly sessionId: number;
  /** 32-bit timestamp in units of `gra` (OVS and Linux send 100 µs units, gra = 0). */
  readonly timestamp: number;
  /** Security group tag (16 bits). */
  readonly sgt: number;
  /** P: the payload is an Ethernet PDU. */
  readonly p: boolean;
  /** Frame type (5 bits): 0 Ethernet, 2 IP (Wireshark packet-erspan.c `erspan_ft_vals`). */
  readonly frameType: number;
  /** Hardware id (6 bits, OVS `erspan_hwid`). */
  readonly hwId: number;
  /** D: 0 ingress, 1 egress (OVS `erspan_dir`). */
  readonly direction: number;
  /** Timestamp granularity (2 bits): 0 100 µs, 1 100 ns, 2 IEEE 1588, 3 custom. */
  readonly gra: number;
  readonly platform: Erspan3Platform | undefined;
  /** 12, or 20 with the platform sub-header. */
  readonly headerLength: number;
  readonly payload: Buffer;
}

class Erspan3Header implements Erspan3 {
  readonly ok = true as const;
  readonly version = 2 as const;
  readonly #b: Buffer;
  constructor(
    b: Buffer,
    readonly offset: number,
    readonly end: number,
    readonly vlan: number,
    readonly cos: number,
    readonly bso: number,
    readonly truncated: boolean,
    readonly sessionId: number,
    readonly timestamp: number,
    readonly sgt: number,
    readonly p: boolean,
    readonly frameType: number,
    readonly hwId: number,
    readonly direction: number,
    readonly gra: number,
    readonly platform: Erspan3Platform | undefined,
    readonly headerLength: number,
  ) {
    this.#b = b;
  }
  get payload(): Buffer {
    return this.#b.subarray(this.offset + this.headerLength, this.end);
  }
}

export function decodeErspan3(packet: Uint8Array, offset = 0, to = packet.length): Erspan3 | DecodeFailure {
  const b = asBuffer(packet);
  const end = Math.min(to, b.length);
  if (end - offset < ERSPAN3_HEADER_LENGTH) return fail("truncated", "erspan", offset);
  const w0 = u16(b, offset);
  if (w0 >>> 12 !== 2) return fail("bad-version", "erspan", offset);
  const w1 = u16(b, offset + 2);
  const w3 = u16(b, offset + 10);
  let platform: Erspan3Platform | undefined;
  let headerLength = ERSPAN3_HEADER_LENGTH;
  if ((w3 & 1) !== 0) {
    if (end - offset < ERSPAN3_HEADER_LENGTH + ERSPAN3_PLATFORM_LENGTH) {
      return fail("truncated", "erspan", offset + ERSPAN3_HEADER_LENGTH);
    }
    const p0 = u32(b, offset + 12);
    platform = { id: p0 >>> 26, infoHigh: p0 & 0x03ffffff, infoLow: u32(b, offset + 16) };
    headerLength += ERSPAN3_PLATFORM_LENGTH;
  }
  return new Erspan3Header(
    b,
    offset,
    end,
    w0 & 0x0fff,
    w1 >>> 13,
    (w1 >>> 11) & 0x3,
    (w1 & 0x0400) !== 0,
    w1 & 0x03ff,
    u32(b, offset + 4),
    u16(b, offset + 8),
    (w3 & 0x8000) !== 0,
    (w3 >>> 10) & 0x1f,
    (w3 >>> 4) & 0x3f,
    (w3 >>> 3) & 1,
    (w3 >>> 1) & 0x3,
    platform,
    headerLength,
  );
}
