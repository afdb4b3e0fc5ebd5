/**
 * Capture file → capture file decapsulation at file speed: strip the outer Ethernet/IP/GRE[/ERSPAN]
 * of every packet of a pcap or pcapng stream and write the mirrored frames.
 *
 *     const stats = await decapCapture("erspan.pcap", "inner.pcap", { session: 7 });
 *     // { packets, written, tunnels: { gre, erspan2, erspan3 }, failures: { "not-gre ipv4": 12 }, … }
 *
 * The input is read in large chunks, records are parsed where they lie, and each output record is
 * written over the input record it came from (it is always shorter), so a chunk's buffer is both
 * the read and the write buffer: no allocation per packet and one copy (a memmove) of each
 * mirrored frame. Three such buffers take turns, so reading the next chunk and writing the last
 * one overlap with parsing this one. `decapFrame` is `decapsulate` without result objects; the
 * tests hold the two to the same answer on every packet.
 *
 * Output:
 * - pcap (the default) holds one link type: that of the first frame written — LINKTYPE_ETHERNET
 *   for GRE TEB, ERSPAN II and ERSPAN III frame type 0, LINKTYPE_RAW for GRE carrying IPv4/IPv6 and
 *   ERSPAN III frame type 2. Frames of another link type are not written and are counted in
 *   `linkTypeMismatch`: write pcapng to keep them.
 * - pcapng gets one Interface Description Block per inner link type (and, from a pcapng input, per
 *   input interface, keeping its `if_name`, `if_tsresol` and `if_tsoffset`).
 * - Timestamps are kept; a pcap input's precision (µs or ns) is kept, a pcapng input written as
 *   pcap gets ns. Original lengths come from the outer IP length field, bounded by the outer
 *   frame's own original length. Files are written little-endian whatever the input's order.
 * - Packets that are not GRE/ERSPAN or cannot be unwrapped are counted by reason (`failures`),
 *   never silently dropped; with `key` / `session`, packets of other tunnels are counted in
 *   `otherTunnel`.
 * - A damaged input (bad magic, a record longer than the limit, a file cut inside a record) stops
 *   the copy: what came before is written and the failure is in `inputError`.
 */
import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type { CaptureFormat } from "./capture.js";
import { LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_RAW } from "./decap.js";
import {
  decodePcapHeader,
  PCAP_DEFAULT_SNAPLEN,
  PCAP_HEADER_LENGTH,
  PCAP_MAGIC_MICROSECONDS,
  PCAP_MAGIC_NANOSECONDS,
  PCAP_MAX_RECORD_LENGTH,
  PCAP_RECORD_HEADER_LENGTH,
} from "./pcap.js";
import type { TimestampPrecision } from "./pcap.js";
import { PCAPNG_MAX_BLOCK_LENGTH } from "./pcapng.js";
import { pcapngTime, unitsToTime } from "./pcapng-time.js";
import { fail } from "./result.js";
import type { DecodeFailure, DecodeReason, Layer } from "./result.js";

// ---------------------------------------------------------------------------------------------
// The per-packet kernel

/** Reasons and layers by index, for failure codes that fit in a small integer. */
export const DECAP_REASONS: readonly DecodeReason[] = [
  "truncated",
  "bad-version",
  "bad-header-length",
  "bad-flags",
  "not-ip",
  "not-gre",
  "unsupported-protocol",
  "fragment",
  "vlan-limit",
  "ext-header-limit",
  "bad-ext-header",
];
export const DECAP_LAYERS: readonly Layer[] = ["ethernet", "vlan", "ipv4", "ipv6", "gre", "erspan"];

const TRUNCATED = 0;
const BAD_VERSION = 1;
const BAD_HEADER_LENGTH = 2;
const BAD_FLAGS = 3;
const NOT_IP = 4;
const NOT_GRE = 5;
const UNSUPPORTED = 6;
const FRAGMENT = 7;
const VLAN_LIMIT = 8;
const EXT_LIMIT = 9;
const BAD_EXT = 10;
const L_ETHERNET = 0;
const L_VLAN = 1;
const L_IPV4 = 2;
const L_IPV6 = 3;
const L_GRE = 4;
const L_ERSPAN = 5;
/** Failure codes are 1 + reason × CODE_STRIDE + layer. */
const CODE_STRIDE = 8;
export const DECAP_CODES = 1 + DECAP_REASONS.length * CODE_STRIDE;

export const KIND_GRE = 1;
export const KIND_ERSPAN2 = 2;
export const KIND_ERSPAN3 = 3;

/** What `decapFrame` found, overwritten by every call (read it before the next). */
export interface DecapFrameResult {
  /** Where the mirrored frame starts and its captured bytes end, in the buffer. */
  innerStart: number;
  innerEnd: number;
  /** Where the outer IP packet ends by its length field (≥ `innerEnd`), in the buffer. */
  wireEnd: number;
  innerLinkType: number;
  /** KIND_GRE, KIND_ERSPAN2, KIND_ERSPAN3. */
  kind: number;
  /** GRE key (−1 when K is clear) or ERSPAN session id. */
  tunnelId: number;
  /** On failure: indexes into DECAP_REASONS / DECAP_LAYERS, and the offset from the frame's start. */
  reason: number;
  layer: number;
  at: number;
}

export const decapFrameResult: DecapFrameResult = {
  innerStart: 0,
  innerEnd: 0,
  wireEnd: 0,
  innerLinkType: 0,
  kind: 0,
  tunnelId: 0,
  reason: 0,
  layer: 0,
  at: 0,
};
const R = decapFrameResult;

function stop(reason: number, layer: number, at: number): number {
  R.reason = reason;
  R.layer = layer;
  R.at = at;
  return 1 + reason * CODE_STRIDE + layer;
}

/** The failure a `decapFrame` code stands for. */
export function decapFailure(code: number, at = 0): DecodeFailure {
  const c = code - 1;
  return fail(DECAP_REASONS[Math.floor(c / CODE_STRIDE)]!, DECAP_LAYERS[c % CODE_STRIDE]!, at);
}

function isIpv6Extension(nh: number): boolean {
  // The same set as decodeIpv6 (RFC 8200 §4, RFC 7045 §4).
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

/**
 * `decapsulate` of the frame `b[s, e)` of `linkType`, with its answer in `decapFrameResult`:
 * returns 0 when the frame was unwrapped, else a failure code (`decapFailure` names it). The same
 * checks in the same order as decapsulate → decodeEthernet → decodeIpv4/decodeIpv6 → decodeGre →
 * decodeErspan2/3, so the same reason, layer and offset.
 */
export function decapFrame(b: Uint8Array, s: number, e: number, linkType: number): number {
  let l3 = s;
  let v6: boolean;
  if (linkType === LINKTYPE_ETHERNET) {
    if (e - s < 14) return stop(TRUNCATED, L_ETHERNET, 0);
    let at = s + 12;
    let et = (b[at]! << 8) | b[at + 1]!;
    let tags = 0;
    // 802.1Q / 802.1ad / legacy QinQ tags, at most 4 (MAX_VLAN_TAGS).
    while (et === 0x8100 || et === 0x88a8 || et === 0x9100) {
      if (tags === 4) return stop(VLAN_LIMIT, L_VLAN, at - s);
      if (e - at < 6) return stop(TRUNCATED, L_VLAN, at - s);
      at += 4;
      et = (b[at]! << 8) | b[at + 1]!;
      tags++;
    }
    if (et === 0x0800) v6 = false;
    else if (et === 0x86dd) v6 = true;
    else return stop(NOT_IP, L_ETHERNET, at - s);
    l3 = at + 2;
  } else if (linkType === LINKTYPE_RAW || linkType === LINKTYPE_IPV4 || linkType === LINKTYPE_IPV6) {
    v6 = e > s && b[s]! >>> 4 === 6;
  } else {
    return stop(UNSUPPORTED, L_ETHERNET, 0);
  }

  let ipEnd: number;
  let wireEnd: number;
  let greAt: number;
  if (!v6) {
    if (e - l3 < 20) return stop(TRUNCATED, L_IPV4, l3 - s);
    const vihl = b[l3]!;
    if (vihl >>> 4 !== 4) return stop(BAD_VERSION, L_IPV4, l3 - s);
    const hl = (vihl & 0x0f) * 4;
    if (hl < 20) return stop(BAD_HEADER_LENGTH, L_IPV4, l3 - s);
    if (e - l3 < hl) return stop(TRUNCATED, L_IPV4, l3 - s + 20);
    const total = (b[l3 + 2]! << 8) | b[l3 + 3]!;
    if (total < hl) return stop(BAD_HEADER_LENGTH, L_IPV4, l3 - s + 2);
    if (b[l3 + 9] !== 47) return stop(NOT_GRE, L_IPV4, l3 - s + 9);
    // MF set or a fragment offset: a fragment.
    if ((((b[l3 + 6]! << 8) | b[l3 + 7]!) & 0x3fff) !== 0) return stop(FRAGMENT, L_IPV4, l3 - s);
    wireEnd = l3 + total;
    ipEnd = wireEnd < e ? wireEnd : e;
    greAt = l3 + hl;
  } else {
    if (e - l3 < 40) return stop(TRUNCATED, L_IPV6, l3 - s);
    if (b[l3]! >>> 4 !== 6) return stop(BAD_VERSION, L_IPV6, l3 - s);
    const pl = (b[l3 + 4]! << 8) | b[l3 + 5]!;
    // A zero payload length is a jumbogram (RFC 2675): take what was captured.
    wireEnd = pl === 0 ? e : l3 + 40 + pl;
    ipEnd = wireEnd < e ? wireEnd : e;
    let nh = b[l3 + 6]!;
    let at = l3 + 40;
    let count = 0;
    let fragment = false;
    while (isIpv6Extension(nh)) {
      if (nh === 0 && count !== 0) return stop(BAD_EXT, L_IPV6, at - s);
      if (count === 10) return stop(EXT_LIMIT, L_IPV6, at - s);
      if (ipEnd - at < 8) return stop(TRUNCATED, L_IPV6, at - s);
      const next = b[at]!;
      let len: number;
      let later = false;
      if (nh === 44) {
        len = 8;
        fragment = true;
        later = (((b[at + 2]! << 8) | b[at + 3]!) & 0xfff8) !== 0;
      } else if (nh === 51) {
        len = (b[at + 1]! + 2) * 4;
      } else {
        len = (b[at + 1]! + 1) * 8;
      }
      if (ipEnd - at < len) return stop(TRUNCATED, L_IPV6, at - s);
      at += len;
      nh = next;
      count++;
      if (later) break;
    }
    if (nh !== 47) return stop(NOT_GRE, L_IPV6, l3 - s + 6);
    if (fragment) return stop(FRAGMENT, L_IPV6, l3 - s);
    greAt = at;
  }

  // GRE (RFC 2784 / RFC 2890), read no further than the IP packet ends.
  if (ipEnd - greAt < 4) return stop(TRUNCATED, L_GRE, greAt - s);
  const flags = (b[greAt]! << 8) | b[greAt + 1]!;
  if ((flags & 0x0007) !== 0) return stop(BAD_VERSION, L_GRE, greAt - s);
  if ((flags & 0x4c00) !== 0) return stop(BAD_FLAGS, L_GRE, greAt - s);
  const c = (flags & 0x8000) !== 0;
  const k = (flags & 0x2000) !== 0;
  const sq = (flags & 0x1000) !== 0;
  const ghl = 4 + (c ? 4 : 0) + (k ? 4 : 0) + (sq ? 4 : 0);
  if (ipEnd - greAt < ghl) return stop(TRUNCATED, L_GRE, greAt - s + 4);
  const protocol = (b[greAt + 2]! << 8) | b[greAt + 3]!;
  const next = greAt + ghl;
  R.innerEnd = ipEnd;
  R.wireEnd = wireEnd;
  switch (protocol) {
    case 0x6558:
    case 0x0800:
    case 0x86dd: {
      let key = -1;
      if (k) {
        const ka = greAt + (c ? 8 : 4);
        key = ((b[ka]! << 24) | (b[ka + 1]! << 16) | (b[ka + 2]! << 8) | b[ka + 3]!) >>> 0;
      }
      R.kind = KIND_GRE;
      R.tunnelId = key;
      R.innerStart = next;
      R.innerLinkType = protocol === 0x6558 ? LINKTYPE_ETHERNET : LINKTYPE_RAW;
      return 0;
    }
    case 0x88be: {
      // 0x88BE without S is ERSPAN type I (no ERSPAN header): not unwrapped, as decapsulate.
      if (!sq) return stop(UNSUPPORTED, L_ERSPAN, greAt - s);
      if (ipEnd - next < 8) return stop(TRUNCATED, L_ERSPAN, next - s);
      if (b[next]! >>> 4 !== 1) return stop(BAD_VERSION, L_ERSPAN, next - s);
      R.kind = KIND_ERSPAN2;
      R.tunnelId = ((b[next + 2]! << 8) | b[next + 3]!) & 0x03ff;
      R.innerStart = next + 8;
      R.innerLinkType = LINKTYPE_ETHERNET;
      return 0;
    }
    case 0x22eb: {
      if (ipEnd - next < 12) return stop(TRUNCATED, L_ERSPAN, next - s);
      if (b[next]! >>> 4 !== 2) return stop(BAD_VERSION, L_ERSPAN, next - s);
      const w3 = (b[next + 10]! << 8) | b[next + 11]!;
      let hl = 12;
      if ((w3 & 1) !== 0) {
        if (ipEnd - next < 20) return stop(TRUNCATED, L_ERSPAN, next - s + 12);
        hl = 20;
      }
      const ft = (w3 >>> 10) & 0x1f;
      if (ft !== 0 && ft !== 2) return stop(UNSUPPORTED, L_ERSPAN, next - s + 10);
      R.kind = KIND_ERSPAN3;
      R.tunnelId = ((b[next + 2]! << 8) | b[next + 3]!) & 0x03ff;
      R.innerStart = next + hl;
      R.innerLinkType = ft === 0 ? LINKTYPE_ETHERNET : LINKTYPE_RAW;
      return 0;
    }
    default:
      return stop(UNSUPPORTED, L_GRE, greAt - s + 2);
  }
}

// ---------------------------------------------------------------------------------------------
// Timestamps

let unitsHi = 0;
let unitsLo = 0;

/** seconds × `d` + `frac` (seconds < 2^32, frac < d ≤ 10^9) as 64-bit (`unitsHi`, `unitsLo`). */
function timeToUnits(seconds: number, frac: number, d: number): void {
  const sHi = Math.floor(seconds / 65536);
  const sLo = seconds - sHi * 65536;
  const a = sHi * d;
  const aH = Math.floor(a / 65536);
  const c = (a - aH * 65536) * 65536 + sLo * d + frac;
  const cH = Math.floor(c / 0x100000000);
  unitsHi = aH + cH;
  unitsLo = c - cH * 0x100000000;
}

// ---------------------------------------------------------------------------------------------
// Byte access

function le32(b: Buffer, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}
function be32(b: Buffer, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}
function rd32(b: Buffer, at: number, le: boolean): number {
  return le ? le32(b, at) : be32(b, at);
}
function rd16(b: Buffer, at: number, le: boolean): number {
  return le ? b[at]! | (b[at + 1]! << 8) : (b[at]! << 8) | b[at + 1]!;
}
function put32le(b: Buffer, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}

// ---------------------------------------------------------------------------------------------
// Blocks written out of band

function pcapFileHeader(precision: TimestampPrecision, snaplen: number, linkType: number): Buffer {
  const b = Buffer.alloc(PCAP_HEADER_LENGTH);
  b.writeUInt32LE(precision === "ns" ? PCAP_MAGIC_NANOSECONDS : PCAP_MAGIC_MICROSECONDS, 0);
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeUInt32LE(snaplen, 16);
  b.writeUInt32LE(linkType & 0xffff, 20);
  return b;
}

function pcapngBlock(type: number, body: Buffer): Buffer {
  const b = Buffer.alloc(12 + body.length);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(b.length, 4);
  body.copy(b, 8);
  b.writeUInt32LE(b.length, b.length - 4);
  return b;
}

function pcapngOptions(options: readonly (readonly [number, Buffer])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [code, v] of options) {
    const h = Buffer.alloc(4 + ((v.length + 3) & ~3));
    h.writeUInt16LE(code, 0);
    h.writeUInt16LE(v.length, 2);
    v.copy(h, 4);
    parts.push(h);
  }
  if (parts.length > 0) parts.push(Buffer.alloc(4)); // opt_endofopt
  return Buffer.concat(parts);
}

/** draft-ietf-opsawg-pcapng §4.1: byte-order magic, version 1.0, section length unknown. */
function pcapngSectionHeader(): Buffer {
  const fixed = Buffer.alloc(16);
  fixed.writeUInt32LE(0x1a2b3c4d, 0);
  fixed.writeUInt16LE(1, 4);
  fixed.writeBigInt64LE(-1n, 8);
  const options = pcapngOptions([[4, Buffer.from("ovntap decap")]]);
  return pcapngBlock(0x0a0d0d0a, Buffer.concat([fixed, options]));
}

/** §4.2 Interface Description Block with if_name, if_tsresol and if_tsoffset. */
function pcapngInterface(
  linkType: number,
  snaplen: number,
  name: string | undefined,
  tsresol: number,
  tsoffset: bigint,
): Buffer {
  const fixed = Buffer.alloc(8);
  fixed.writeUInt16LE(linkType, 0);
  fixed.writeUInt32LE(snaplen, 4);
  const options: [number, Buffer][] = [];
  if (name !== undefined) options.push([2, Buffer.from(name, "utf8")]);
  options.push([9, Buffer.of(tsresol)]);
  if (tsoffset !== 0n) {
    const o = Buffer.alloc(8);
    o.writeBigInt64LE(tsoffset);
    options.push([14, o]);
  }
  return pcapngBlock(1, Buffer.concat([fixed, pcapngOptions(options)]));
}

// ---------------------------------------------------------------------------------------------
// Input and output

/** Where decapsulated records go. `write` must be done with the bytes when its promise settles. */
export interface DecapSink {
  write(bytes: Uint8Array): Promise<void>;
  close?(): Promise<void>;
}

export interface DecapOptions {
  /** Keep only GRE packets with this key (others are counted in `otherTunnel`). */
  readonly key?: number;
  /** Keep only ERSPAN (II or III) packets with this session id. */
  readonly session?: number;
  /** Output format; default pcap. */
  readonly format?: CaptureFormat;
  /** Read buffer size (default 8 MiB; grows to fit a larger record). */
  readonly bufferSize?: number;
}

export interface DecapStats {
  inputFormat: CaptureFormat | undefined;
  outputFormat: CaptureFormat;
  /** Packets read. */
  packets: number;
  /** Mirrored frames written. */
  written: number;
  /** Packets unwrapped, by encapsulation (including those `key`/`session` left out). */
  tunnels: { gre: number; erspan2: number; erspan3: number };
  /** Unwrapped packets of a tunnel other than the `key` / `session` asked for. */
  otherTunnel: number;
  /** pcap output: unwrapped frames whose link type is not the file's. */
  linkTypeMismatch: number;
  /** Packets not unwrapped, by `"<reason> <layer>"` (`not-gre ipv4`, `truncated erspan`, …). */
  failures: Record<string, number>;
  /** The link types written (pcapng: one per interface, in order). */
  linkTypes: number[];
  /** Why reading stopped before the end of the input, if it did. */
  inputError: DecodeFailure | undefined;
}

/** Reasons that mean "not a tunnel packet" rather than "a damaged or unsupported tunnel packet". */
export function isNotEncapsulated(failure: string): boolean {
  return failure.startsWith("not-ip ") || failure.startsWith("not-gre ");
}

type Read = (into: Buffer, at: number, max: number) => Promise<number>;

function iterableSource(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Read {
  const it = Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : chunks[Symbol.iterator]();
  let cur: Uint8Array | undefined;
  let off = 0;
  return async (into, at, max) => {
    while (cur === undefined || off >= cur.length) {
      const r = await it.next();
      if (r.done === true) return 0;
      cur = typeof r.value === "string" ? Buffer.from(r.value) : r.value;
      off = 0;
    }
    const n = Math.min(max, cur.length - off);
    into.set(cur.subarray(off, off + n), at);
    off += n;
    return n;
  };
}

function fileSink(fh: FileHandle): DecapSink {
  return {
    async write(bytes) {
      let at = 0;
      while (at < bytes.length) {
        const { bytesWritten } = await fh.write(bytes, at, bytes.length - at);
        at += bytesWritten;
      }
    },
    close: () => fh.close(),
  };
}

const DEFAULT_BUFFER = 8 << 20;
const MIN_BUFFER = 64 << 10;
/** Room before each chunk for the tail of the one before: records up to this size never move more than once. */
const HEADROOM = 256 << 10;

interface Slot {
  buf: Buffer;
  /** Settles once every write from `buf` has. */
  written: Promise<void>;
}

interface InputInterface {
  readonly linkType: number;
  readonly snaplen: number;
  readonly name: string | undefined;
  readonly tsresol: number;
  readonly tsoffset: bigint;
  /** Position in the whole file's interface list. */
  readonly index: number;
}

/**
 * Decapsulate `input` (a path, or the byte chunks of a pcap/pcapng stream) into `output` (a path,
 * created or truncated once the input's header has been read; or a sink). Resolves to what was
 * read, written and left out; rejects only on I/O errors.
 */
export async function decapCapture(
  input: string | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  output: string | DecapSink,
  options: DecapOptions = {},
): Promise<DecapStats> {
  const inFh = typeof input === "string" ? await open(input, "r") : undefined;
  let sink: DecapSink | undefined = typeof output === "string" ? undefined : output;
  try {
    const read: Read =
      inFh !== undefined
        ? async (into, at, max) => (await inFh.read(into, at, max, null)).bytesRead
        : iterableSource(input as AsyncIterable<Uint8Array>);
    return await run(
      read,
      async () => {
        if (sink === undefined) sink = fileSink(await open(output as string, "w"));
        return sink;
      },
      options,
    );
  } finally {
    await inFh?.close();
    if (typeof output === "string") await sink?.close?.();
  }
}

async function run(
  read: Read,
  openSink: () => Promise<DecapSink>,
  options: DecapOptions,
): Promise<DecapStats> {
  const outFormat: CaptureFormat = options.format ?? "pcap";
  const stats: DecapStats = {
    inputFormat: undefined,
    outputFormat: outFormat,
    packets: 0,
    written: 0,
    tunnels: { gre: 0, erspan2: 0, erspan3: 0 },
    otherTunnel: 0,
    linkTypeMismatch: 0,
    failures: {},
    linkTypes: [],
    inputError: undefined,
  };
  const failureCounts = new Float64Array(DECAP_CODES);
  const wantKey = options.key;
  const wantSession = options.session;
  const filtered = wantKey !== undefined || wantSession !== undefined;

  // Three buffers in turn: while one is parsed, the next is being read into and the one before
  // is being written from. Each has headroom before its data for the tail of the previous one (a
  // record cut by the chunk boundary), so the data itself never moves.
  const chunk = Math.max(options.bufferSize ?? DEFAULT_BUFFER, MIN_BUFFER);
  const headroom = Math.min(chunk, HEADROOM);
  const slots: Slot[] = [0, 1, 2].map(() => ({
    buf: Buffer.allocUnsafe(headroom + chunk),
    written: Promise.resolve(),
  }));
  let slot = 0;
  let buf = slots[0]!.buf;
  let len = headroom;
  let eof = false;
  /** The stream offset of buf[i] is base + i. */
  let base = -headroom;

  // Enough for the format and the pcap file header.
  while (!eof && len < headroom + PCAP_HEADER_LENGTH) {
    const n = await read(buf, len, buf.length - len);
    if (n === 0) eof = true;
    else len += n;
  }
  if (len - headroom < 4) {
    stats.inputError = fail(len === headroom ? "truncated" : "bad-magic", "pcap", 0);
    return stats;
  }
  const pcapng = le32(buf, headroom) === 0x0a0d0d0a;
  const magicLe = le32(buf, headroom);
  const magicBe = be32(buf, headroom);
  if (
    !pcapng &&
    magicLe !== PCAP_MAGIC_MICROSECONDS &&
    magicLe !== PCAP_MAGIC_NANOSECONDS &&
    magicBe !== PCAP_MAGIC_MICROSECONDS &&
    magicBe !== PCAP_MAGIC_NANOSECONDS
  ) {
    stats.inputError = fail("bad-magic", "pcap", 0);
    return stats;
  }
  stats.inputFormat = pcapng ? "pcapng" : "pcap";

  // Input state.
  let le = true;
  let precision: TimestampPrecision = "ns";
  let inLinkType = LINKTYPE_ETHERNET;
  let snaplen = PCAP_DEFAULT_SNAPLEN;
  let maxRecord = PCAP_MAX_RECORD_LENGTH;
  let pos = headroom;
  let sections = 0;
  let current: InputInterface[] = [];
  let allInterfaces = 0;

  if (!pcapng) {
    const h = decodePcapHeader(buf, headroom);
    if (!h.ok) {
      stats.inputError = h;
      return stats;
    }
    le = h.byteOrder === "le";
    precision = h.precision;
    inLinkType = h.linkType;
    snaplen = h.snaplen;
    maxRecord = Math.min(PCAP_MAX_RECORD_LENGTH, Math.max(h.snaplen, PCAP_DEFAULT_SNAPLEN));
    pos = headroom + PCAP_HEADER_LENGTH;
  }

  const sink = await openSink();
  // Writes go out in order, each after the one before; the first failure is kept and thrown.
  let writes: Promise<void> = Promise.resolve();
  let writeError: Error | undefined;
  const queue = (bytes: Uint8Array): void => {
    writes = writes.then(() => (writeError === undefined ? sink.write(bytes) : undefined));
    writes.catch((e: unknown) => {
      writeError ??= e instanceof Error ? e : new Error(String(e));
    });
  };
  const checkWrites = (): void => {
    if (writeError !== undefined) throw writeError;
  };
  // Output state.
  const outPrecision: TimestampPrecision = pcapng ? "ns" : precision;
  let pcapLinkType = -1;
  /** pcapng output: output interface id by (input interface, inner link type). */
  const outInterfaces = new Map<number, number>();
  let w = 0;
  let flushed = 0;

  if (outFormat === "pcapng") queue(pcapngSectionHeader());

  /** Write a block (file header, interface) out of band: after what is written in `buf` so far. */
  function block(b: Buffer): void {
    if (w > flushed) queue(buf.subarray(flushed, w));
    flushed = w;
    queue(b);
  }

  /** The output interface for this packet (written first when it is new). */
  function outInterface(iface: InputInterface | undefined, innerLt: number): number {
    const key = (iface?.index ?? 0) * 2 + (innerLt === LINKTYPE_ETHERNET ? 0 : 1);
    const known = outInterfaces.get(key);
    if (known !== undefined) return known;
    const id = outInterfaces.size;
    outInterfaces.set(key, id);
    stats.linkTypes.push(innerLt);
    block(
      iface === undefined
        ? pcapngInterface(innerLt, snaplen, undefined, precision === "us" ? 6 : 9, 0n)
        : pcapngInterface(innerLt, iface.snaplen, iface.name, iface.tsresol, iface.tsoffset),
    );
    return id;
  }

  const MORE = 0;
  const ERROR = 1;

  /** One packet whose frame is `buf[ds, de)`, `decapFrame` said `code`: write its mirrored frame at `w`. */
  function emit(
    code: number,
    ds: number,
    de: number,
    orig: number,
    iface: InputInterface | undefined,
    sec: number,
    frac: number,
    tsHi: number,
    tsLo: number,
    hasUnits: boolean,
  ): void {
    stats.packets++;
    if (code !== 0) {
      failureCounts[code]!++;
      return;
    }
    const kind = R.kind;
    if (filtered) {
      const match =
        wantKey !== undefined
          ? kind === KIND_GRE && R.tunnelId === wantKey
          : kind !== KIND_GRE && R.tunnelId === wantSession;
      if (!match) {
        countKind(kind);
        stats.otherTunnel++;
        return;
      }
    }
    const innerLt = R.innerLinkType;
    const is = R.innerStart;
    const ie = R.innerEnd;
    const frameWireEnd = ds + orig;
    const wireEnd = R.wireEnd < frameWireEnd ? R.wireEnd : frameWireEnd;
    const caplen = ie - is;
    const origLen = wireEnd - is > caplen ? wireEnd - is : caplen;
    countKind(kind);
    if (outFormat === "pcap") {
      if (pcapLinkType === -1) {
        pcapLinkType = innerLt;
        stats.linkTypes.push(innerLt);
        block(pcapFileHeader(outPrecision, snaplen, innerLt));
      }
      if (innerLt !== pcapLinkType) {
        stats.linkTypeMismatch++;
        return;
      }
      if (hasUnits) {
        unitsToTime(tsHi, tsLo, iface!.tsresol);
        sec = pcapngTime.seconds + Number(iface!.tsoffset);
        frac = pcapngTime.nanos;
      }
      // Every input field is in locals: move the frame first, then write the header before it.
      buf.copyWithin(w + 16, is, ie);
      put32le(buf, w, sec);
      put32le(buf, w + 4, frac);
      put32le(buf, w + 8, caplen);
      put32le(buf, w + 12, origLen);
      w += 16 + caplen;
    } else {
      const id = outInterface(iface, innerLt);
      if (!hasUnits) {
        timeToUnits(sec, frac, precision === "us" ? 1e6 : 1e9);
        tsHi = unitsHi;
        tsLo = unitsLo;
      }
      const padded = (caplen + 3) & ~3;
      const total = 32 + padded;
      buf.copyWithin(w + 28, is, ie);
      for (let i = w + 28 + caplen; i < w + 28 + padded; i++) buf[i] = 0;
      put32le(buf, w, 6);
      put32le(buf, w + 4, total);
      put32le(buf, w + 8, id);
      put32le(buf, w + 12, tsHi);
      put32le(buf, w + 16, tsLo);
      put32le(buf, w + 20, caplen);
      put32le(buf, w + 24, origLen);
      put32le(buf, w + 28 + padded, total);
      w += total;
    }
    stats.written++;
  }

  function countKind(kind: number): void {
    if (kind === KIND_GRE) stats.tunnels.gre++;
    else if (kind === KIND_ERSPAN2) stats.tunnels.erspan2++;
    else stats.tunnels.erspan3++;
  }

  function inputError(f: DecodeFailure): number {
    stats.inputError = f;
    return ERROR;
  }

  function pcapRecords(): number {
    for (;;) {
      if (len - pos < PCAP_RECORD_HEADER_LENGTH) return MORE;
      const caplen = rd32(buf, pos + 8, le);
      if (caplen > maxRecord) return inputError(fail("bad-record", "pcap", base + pos + 8));
      const size = PCAP_RECORD_HEADER_LENGTH + caplen;
      if (len - pos < size) return MORE;
      const ds = pos + PCAP_RECORD_HEADER_LENGTH;
      const code = decapFrame(buf, ds, ds + caplen, inLinkType);
      emit(
        code,
        ds,
        ds + caplen,
        rd32(buf, pos + 12, le),
        undefined,
        rd32(buf, pos, le),
        rd32(buf, pos + 4, le),
        0,
        0,
        false,
      );
      pos += size;
    }
  }

  function pcapngBlocks(): number {
    for (;;) {
      if (len - pos < 12) return MORE;
      const type = le32(buf, pos);
      if (type === 0x0a0d0d0a) {
        const m = le32(buf, pos + 8);
        if (m === 0x1a2b3c4d) le = true;
        else if (m === 0x4d3c2b1a) le = false;
        else return inputError(fail("bad-magic", "pcapng", base + pos + 8));
      }
      const length = rd32(buf, pos + 4, le);
      // §3.1: Block Total Length is a multiple of 4, at least 12.
      if (length < 12 || length % 4 !== 0 || length > PCAPNG_MAX_BLOCK_LENGTH)
        return inputError(fail("bad-block", "pcapng", base + pos + 4));
      if (len - pos < length) return MORE;
      if (rd32(buf, pos + length - 4, le) !== length)
        return inputError(fail("bad-block", "pcapng", base + pos + length - 4));
      const end = pos + length - 4;
      const t = le ? type : be32(buf, pos);
      if (t === 0x0a0d0d0a) {
        if (end - pos < 24) return inputError(fail("bad-block", "pcapng", base + pos));
        if (rd16(buf, pos + 12, le) !== 1) return inputError(fail("bad-version", "pcapng", base + pos + 12));
        sections++;
        current = [];
      } else if (t === 1) {
        if (end - pos < 16) return inputError(fail("bad-block", "pcapng", base + pos));
        current.push(readInterface(pos, end));
      } else if (t === 6 || t === 2) {
        if (end - pos < 28) return inputError(fail("bad-block", "pcapng", base + pos));
        const id = t === 2 ? rd16(buf, pos + 8, le) : rd32(buf, pos + 8, le);
        const iface = current[id];
        if (iface === undefined) return inputError(fail("unknown-interface", "pcapng", base + pos + 8));
        const caplen = rd32(buf, pos + 20, le);
        if (caplen > end - pos - 28) return inputError(fail("bad-block", "pcapng", base + pos + 20));
        const ds = pos + 28;
        const code = decapFrame(buf, ds, ds + caplen, iface.linkType);
        emit(
          code,
          ds,
          ds + caplen,
          rd32(buf, pos + 24, le),
          iface,
          0,
          0,
          rd32(buf, pos + 12, le),
          rd32(buf, pos + 16, le),
          true,
        );
      } else if (t === 3) {
        // §4.4 Simple Packet Block: interface 0, no timestamp, captured length implied.
        if (end - pos < 12) return inputError(fail("bad-block", "pcapng", base + pos));
        const iface = current[0];
        if (iface === undefined) return inputError(fail("unknown-interface", "pcapng", base + pos));
        const orig = rd32(buf, pos + 8, le);
        let caplen = Math.min(orig, end - pos - 12);
        if (iface.snaplen !== 0) caplen = Math.min(caplen, iface.snaplen);
        const ds = pos + 12;
        const code = decapFrame(buf, ds, ds + caplen, iface.linkType);
        emit(code, ds, ds + caplen, orig, iface, 0, 0, 0, 0, true);
      } else if (sections === 0) {
        // A pcapng file starts with a Section Header Block (§3.4).
        return inputError(fail("bad-magic", "pcapng", base + pos));
      }
      // Other blocks (name resolution, statistics, …) are skipped by their length (§3.1).
      pos += length;
    }
  }

  function readInterface(at: number, end: number): InputInterface {
    let name: string | undefined;
    let tsresol = 6;
    let tsoffset = 0n;
    let p = at + 16;
    while (end - p >= 4) {
      const code = rd16(buf, p, le);
      const olen = rd16(buf, p + 2, le);
      if (code === 0 || p + 4 + olen > end) break;
      const v = p + 4;
      if (code === 2) {
        const nul = buf.indexOf(0, v);
        name = buf.toString("utf8", v, nul === -1 || nul >= v + olen ? v + olen : nul);
      } else if (code === 9 && olen === 1) tsresol = buf[v]!;
      else if (code === 14 && olen === 8) tsoffset = le ? buf.readBigInt64LE(v) : buf.readBigInt64BE(v);
      p += 4 + ((olen + 3) & ~3);
    }
    return {
      linkType: rd16(buf, at + 8, le),
      snaplen: rd32(buf, at + 12, le),
      name,
      tsresol,
      tsoffset,
      index: allInterfaces++,
    };
  }

  const step = pcapng ? pcapngBlocks : pcapRecords;
  for (;;) {
    // Start reading the next chunk (into the buffer written from two turns ago), parse this one.
    const next = slots[(slot + 1) % slots.length]!;
    let reading: Promise<number> | undefined;
    if (!eof) {
      await next.written;
      checkWrites();
      reading = read(next.buf, headroom, chunk);
    }
    const r = step();
    if (w > flushed) queue(buf.subarray(flushed, w));
    slots[slot]!.written = writes.catch(() => undefined);
    if (r === ERROR) {
      await reading;
      break;
    }
    const n = reading === undefined ? 0 : await reading;
    if (n === 0) {
      if (pos < len) stats.inputError = fail("truncated", pcapng ? "pcapng" : "pcap", base + pos);
      break;
    }
    // The tail of this chunk (the start of a record) goes right before the next chunk's data; a
    // tail longer than the headroom (a record over 256 KiB) makes that buffer a bigger one.
    const tail = len - pos;
    let start = headroom - tail;
    if (tail > headroom) {
      const bigger = Buffer.allocUnsafe(headroom + Math.max(chunk, tail + n));
      next.buf.copy(bigger, headroom + tail, headroom, headroom + n);
      next.buf = bigger;
      start = headroom;
    }
    buf.copy(next.buf, start, pos, len);
    base += pos - start;
    slot = (slot + 1) % slots.length;
    buf = next.buf;
    pos = start;
    len = start + tail + n;
    w = 0;
    flushed = 0;
  }

  // Nothing written at all: still leave a readable (empty) file.
  if (outFormat === "pcap" && pcapLinkType === -1) {
    stats.linkTypes.push(LINKTYPE_ETHERNET);
    queue(pcapFileHeader(outPrecision, snaplen, LINKTYPE_ETHERNET));
  }
  await writes.catch(() => undefined);
  checkWrites();

  for (let c = 1; c < DECAP_CODES; c++) {
    const n = failureCounts[c]!;
    if (n === 0) continue;
    const f = decapFailure(c);
    stats.failures[`${f.reason} ${f.layer}`] = n;
  }
  return stats;
}
