/**
 * pcapng (draft-ietf-opsawg-pcapng): a Section Header Block, Interface Description Blocks — one per
 * mirror when ovntap writes, its name in `if_name`, its spec in `if_description` / `opt_comment` —
 * and Enhanced Packet Blocks. The reader follows each section's byte order (SHB byte-order magic),
 * each interface's `if_tsresol` and `if_tsoffset`, reads Simple and (obsolete) Packet Blocks too,
 * and skips every other block by its length (§3.1 "General Block Structure").
 *
 *     const w = await PcapngFileWriter.create("out.pcapng", { userAppl: "ovntap" });
 *     const id = await w.addInterface({ name: "team-a/web", description: JSON.stringify(spec) });
 *     await w.write(id, { seconds, nanos, data });
 *     await w.close();
 */
import { asBuffer } from "./bytes.js";
import { BufferedFile } from "./file.js";
import { Framer } from "./framer.js";
import { PCAP_DEFAULT_SNAPLEN } from "./pcap.js";
import type { ByteOrder, PcapRecordInput, TimestampPrecision } from "./pcap.js";
import { pcapngTime, unitsToTime } from "./pcapng-time.js";
import { fail } from "./result.js";
import type { DecodeFailure } from "./result.js";

export const PCAPNG_BLOCK_SHB = 0x0a0d0d0a;
export const PCAPNG_BLOCK_IDB = 0x00000001;
/** Obsolete Packet Block (Appendix "Packet Block (obsolete!)"). */
export const PCAPNG_BLOCK_PB = 0x00000002;
export const PCAPNG_BLOCK_SPB = 0x00000003;
export const PCAPNG_BLOCK_EPB = 0x00000006;
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
/** Blocks longer than this are refused as `bad-block` (a length field from a damaged file could ask for gigabytes). */
export const PCAPNG_MAX_BLOCK_LENGTH = 64 * 1024 * 1024;

// Option codes: §3.5 (common), §4.1 (SHB), §4.2 (IDB), §4.3 (EPB).
const OPT_ENDOFOPT = 0;
const OPT_COMMENT = 1;
const SHB_HARDWARE = 2;
const SHB_OS = 3;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;
const IF_FILTER = 11;
const IF_OS = 12;
const IF_TSOFFSET = 14;
const IF_HARDWARE = 15;
const EPB_FLAGS = 2;
const EPB_DROPCOUNT = 4;

export interface PcapngSection {
  readonly index: number;
  readonly byteOrder: ByteOrder;
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly hardware: string | undefined;
  readonly os: string | undefined;
  readonly userAppl: string | undefined;
  readonly comments: readonly string[];
}

export interface PcapngInterface {
  /** Interface ID within its section (the IDB's position, from 0). */
  readonly id: number;
  readonly section: number;
  readonly linkType: number;
  /** 0 means no limit. */
  readonly snaplen: number;
  readonly name: string | undefined;
  readonly description: string | undefined;
  readonly comments: readonly string[];
  readonly os: string | undefined;
  readonly hardware: string | undefined;
  /** `if_filter` text when its first octet says it is a libpcap filter string (0). */
  readonly filter: string | undefined;
  /** The raw `if_tsresol` octet (6 when absent): MSB clear → 10^-n s, set → 2^-n s. */
  readonly tsresol: number;
  /** `if_tsoffset`, seconds added to every timestamp. */
  readonly tsoffset: number;
}

export interface PcapngPacket {
  readonly interface: PcapngInterface;
  readonly interfaceId: number;
  readonly seconds: number;
  readonly nanos: number;
  readonly originalLength: number;
  /** A view into the chunk or file buffer. */
  readonly data: Buffer;
  /** `epb_flags` (direction, reception type, FCS length, errors), when present. */
  readonly flags: number | undefined;
  readonly dropCount: number | undefined;
  readonly comments: readonly string[] | undefined;
}

// ---------------------------------------------------------------------------------------------
// Timestamps

/** seconds × 10^exp + fraction as (hi, lo) 32-bit words, exact for seconds < 2^32 (BigInt beyond). */
function timeToUnits(
  seconds: number,
  nanos: number,
  precision: TimestampPrecision,
  b: Buffer,
  at: number,
): void {
  const d = precision === "ns" ? 1_000_000_000 : 1_000_000;
  const f = precision === "ns" ? nanos : Math.floor(nanos / 1000);
  if (seconds > 0xffffffff || seconds < 0) {
    const units = BigInt(Math.floor(seconds)) * BigInt(d) + BigInt(f);
    b.writeUInt32LE(Number((units >> 32n) & 0xffffffffn), at);
    b.writeUInt32LE(Number(units & 0xffffffffn), at + 4);
    return;
  }
  const sHi = Math.floor(seconds / 65536);
  const sLo = seconds - sHi * 65536;
  const a = sHi * d; // < 2^16 × 10^9
  const bb = sLo * d + f;
  const aH = Math.floor(a / 65536);
  const c = (a - aH * 65536) * 65536 + bb;
  const cH = Math.floor(c / 0x100000000);
  b.writeUInt32LE(aH + cH, at);
  b.writeUInt32LE(c - cH * 0x100000000, at + 4);
}

// ---------------------------------------------------------------------------------------------
// Reading

/** §3.5: a string option is not necessarily NUL-terminated, but a NUL ends it. */
function optString(b: Buffer, at: number, len: number): string {
  const nul = b.indexOf(0, at);
  const end = nul === -1 || nul >= at + len ? at + len : nul;
  return b.toString("utf8", at, end);
}

function rd32(b: Buffer, at: number, order: ByteOrder): number {
  return order === "le" ? b.readUInt32LE(at) : b.readUInt32BE(at);
}

function rd16(b: Buffer, at: number, order: ByteOrder): number {
  return order === "le" ? b.readUInt16LE(at) : b.readUInt16BE(at);
}

type OptionVisitor = (code: number, at: number, len: number) => void;

/** Walk §3.5 options in `[at, end)`; stops at opt_endofopt or when an option would overrun the block. */
function walkOptions(b: Buffer, at: number, end: number, order: ByteOrder, visit: OptionVisitor): void {
  let p = at;
  while (end - p >= 4) {
    const code = order === "le" ? b.readUInt16LE(p) : b.readUInt16BE(p);
    const len = order === "le" ? b.readUInt16LE(p + 2) : b.readUInt16BE(p + 2);
    if (code === OPT_ENDOFOPT) return;
    if (p + 4 + len > end) return;
    visit(code, p + 4, len);
    p += 4 + ((len + 3) & ~3);
  }
}

export type PcapngPushResult =
  | { readonly ok: true; readonly packets: PcapngPacket[] }
  | (DecodeFailure & { readonly packets: PcapngPacket[] });

/**
 * A pcapng reader for streams; `push` chunks as they come. Packets inside one chunk are views of
 * it. Interfaces and sections seen so far are in `interfaces` / `sections`.
 */
export class PcapngStreamReader {
  readonly sections: PcapngSection[] = [];
  /** Every interface of every section, in file order. */
  readonly interfaces: PcapngInterface[] = [];
  #current: PcapngInterface[] = [];
  #order: ByteOrder = "le";
  #packets: PcapngPacket[] = [];
  readonly #framer: Framer;

  constructor() {
    this.#framer = new Framer({
      measure: (b, at, offset) => this.#measure(b, at, offset),
      unit: (b, at, len, offset) => this.#unit(b, at, len, offset),
    });
  }

  get buffered(): number {
    return this.#framer.buffered;
  }

  push(chunk: Uint8Array): PcapngPushResult {
    this.#packets = [];
    const f = this.#framer.push(asBuffer(chunk));
    return f === undefined ? { ok: true, packets: this.#packets } : { ...f, packets: this.#packets };
  }

  /** At the end of the stream: a failure when it stopped inside a block, or saw no section at all. */
  end(): DecodeFailure | undefined {
    if (this.#framer.failure !== undefined) return this.#framer.failure;
    if (this.#framer.buffered > 0 || this.sections.length === 0)
      return fail("truncated", "pcapng", this.#framer.offset);
    return undefined;
  }

  #measure(b: Buffer, at: number, offset: number): number | DecodeFailure {
    // Every block is at least 12 octets, and 12 reach an SHB's byte-order magic (§4.1).
    if (b.length - at < 12) return 12;
    const type = b.readUInt32LE(at);
    let order = this.#order;
    if (type === PCAPNG_BLOCK_SHB) {
      if (b.readUInt32LE(at + 8) === PCAPNG_BYTE_ORDER_MAGIC) order = "le";
      else if (b.readUInt32BE(at + 8) === PCAPNG_BYTE_ORDER_MAGIC) order = "be";
      else return fail("bad-magic", "pcapng", offset + 8);
    } else if (this.sections.length === 0) {
      // A pcapng file starts with an SHB (§3.4 "Physical File Layout").
      return fail("bad-magic", "pcapng", offset);
    }
    const length = order === "le" ? b.readUInt32LE(at + 4) : b.readUInt32BE(at + 4);
    // §3.1: Block Total Length is a multiple of 4 and at least 12.
    if (length < 12 || length % 4 !== 0 || length > PCAPNG_MAX_BLOCK_LENGTH)
      return fail("bad-block", "pcapng", offset + 4);
    return length;
  }

  #unit(b: Buffer, at: number, length: number, offset: number): DecodeFailure | undefined {
    const type = b.readUInt32LE(at);
    if (type === PCAPNG_BLOCK_SHB) {
      this.#order = b.readUInt32LE(at + 8) === PCAPNG_BYTE_ORDER_MAGIC ? "le" : "be";
    }
    const order = this.#order;
    // The trailing copy of the length must match (§3.1).
    if (rd32(b, at + length - 4, order) !== length) return fail("bad-block", "pcapng", offset + length - 4);
    const end = at + length - 4;
    const ordered = order === "le" ? type : b.readUInt32BE(at);
    switch (ordered) {
      case PCAPNG_BLOCK_SHB:
        return this.#sectionHeader(b, at, end, offset);
      case PCAPNG_BLOCK_IDB:
        return this.#interface(b, at, end, offset);
      case PCAPNG_BLOCK_EPB:
      case PCAPNG_BLOCK_PB: {
        if (end - at < 28) return fail("bad-block", "pcapng", offset);
        const obsolete = ordered === PCAPNG_BLOCK_PB;
        const id = obsolete ? rd16(b, at + 8, order) : rd32(b, at + 8, order);
        const iface = this.#current[id];
        if (iface === undefined) return fail("unknown-interface", "pcapng", offset + 8);
        const caplen = rd32(b, at + 20, order);
        const dataEnd = at + 28 + caplen;
        if (caplen > end - at - 28) return fail("bad-block", "pcapng", offset + 20);
        unitsToTime(rd32(b, at + 12, order), rd32(b, at + 16, order), iface.tsresol);
        let flags: number | undefined;
        let dropCount: number | undefined = obsolete ? rd16(b, at + 10, order) : undefined;
        let comments: string[] | undefined;
        const optAt = at + 28 + ((caplen + 3) & ~3);
        if (optAt < end) {
          walkOptions(b, optAt, end, order, (code, p, len) => {
            if (code === OPT_COMMENT) (comments ??= []).push(optString(b, p, len));
            else if (code === EPB_FLAGS && len === 4) flags = rd32(b, p, order);
            else if (code === EPB_DROPCOUNT && len === 8)
              dropCount =
                rd32(b, order === "le" ? p : p + 4, order) +
                rd32(b, order === "le" ? p + 4 : p, order) * 0x100000000;
          });
        }
        this.#packets.push({
          interface: iface,
          interfaceId: id,
          seconds: pcapngTime.seconds + iface.tsoffset,
          nanos: pcapngTime.nanos,
          originalLength: rd32(b, at + 24, order),
          data: b.subarray(at + 28, dataEnd),
          flags,
          dropCount,
          comments,
        });
        return undefined;
      }
      case PCAPNG_BLOCK_SPB: {
        // §4.4: no interface id (it is interface 0), no timestamp; captured length is implied.
        if (end - at < 12) return fail("bad-block", "pcapng", offset);
        const iface = this.#current[0];
        if (iface === undefined) return fail("unknown-interface", "pcapng", offset);
        const originalLength = rd32(b, at + 8, order);
        let caplen = Math.min(originalLength, end - at - 12);
        if (iface.snaplen !== 0) caplen = Math.min(caplen, iface.snaplen);
        this.#packets.push({
          interface: iface,
          interfaceId: 0,
          seconds: 0,
          nanos: 0,
          originalLength,
          data: b.subarray(at + 12, at + 12 + caplen),
          flags: undefined,
          dropCount: undefined,
          comments: undefined,
        });
        return undefined;
      }
      default:
        // Name Resolution, Interface Statistics, Decryption Secrets, Custom and unknown blocks are skipped (§3.1).
        return undefined;
    }
  }

  #sectionHeader(b: Buffer, at: number, end: number, offset: number): DecodeFailure | undefined {
    if (end - at < 24) return fail("bad-block", "pcapng", offset);
    const versionMajor = rd16(b, at + 12, this.#order);
    // §4.1: readers of this version only understand major version 1 (minor 0, or 2 read as 0).
    if (versionMajor !== 1) return fail("bad-version", "pcapng", offset + 12);
    let hardware: string | undefined;
    let os: string | undefined;
    let userAppl: string | undefined;
    const comments: string[] = [];
    walkOptions(b, at + 24, end, this.#order, (code, p, len) => {
      if (code === OPT_COMMENT) comments.push(optString(b, p, len));
      else if (code === SHB_HARDWARE) hardware = optString(b, p, len);
      else if (code === SHB_OS) os = optString(b, p, len);
      else if (code === SHB_USERAPPL) userAppl = optString(b, p, len);
    });
    this.sections.push({
      index: this.sections.length,
      byteOrder: this.#order,
      versionMajor,
      versionMinor: rd16(b, at + 14, this.#order),
      hardware,
      os,
      userAppl,
      comments,
    });
    // Interface IDs are per section (§4.2).
    this.#current = [];
    return undefined;
  }

  #interface(b: Buffer, at: number, end: number, offset: number): DecodeFailure | undefined {
    if (end - at < 16) return fail("bad-block", "pcapng", offset);
    let name: string | undefined;
    let description: string | undefined;
    let os: string | undefined;
    let hardware: string | undefined;
    let filter: string | undefined;
    let tsresol = 6;
    let tsoffset = 0;
    const comments: string[] = [];
    const order = this.#order;
    walkOptions(b, at + 16, end, order, (code, p, len) => {
      if (code === OPT_COMMENT) comments.push(optString(b, p, len));
      else if (code === IF_NAME) name = optString(b, p, len);
      else if (code === IF_DESCRIPTION) description = optString(b, p, len);
      else if (code === IF_OS) os = optString(b, p, len);
      else if (code === IF_HARDWARE) hardware = optString(b, p, len);
      else if (code === IF_FILTER && len >= 1 && b[p] === 0) filter = optString(b, p + 1, len - 1);
      else if (code === IF_TSRESOL && len === 1) tsresol = b[p]!;
      else if (code === IF_TSOFFSET && len === 8) {
        tsoffset = Number(order === "le" ? b.readBigInt64LE(p) : b.readBigInt64BE(p));
      }
    });
    const iface: PcapngInterface = {
      id: this.#current.length,
      section: this.sections.length - 1,
      linkType: rd16(b, at + 8, order),
      snaplen: rd32(b, at + 12, order),
      name,
      description,
      comments,
      os,
      hardware,
      filter,
      tsresol,
      tsoffset,
    };
    this.#current.push(iface);
    this.interfaces.push(iface);
    return undefined;
  }
}

export interface PcapngFile {
  readonly ok: true;
  readonly sections: readonly PcapngSection[];
  readonly interfaces: readonly PcapngInterface[];
  readonly packets: PcapngPacket[];
  /** Why reading stopped early; `undefined` at a clean end. */
  readonly error: DecodeFailure | undefined;
}

/** Read a whole pcapng file from memory; packets before a damaged tail are still returned. */
export function decodePcapng(bytes: Uint8Array): PcapngFile | DecodeFailure {
  const r = new PcapngStreamReader();
  const out = r.push(bytes);
  const error = r.end();
  if (r.sections.length === 0) return error ?? fail("truncated", "pcapng", 0);
  return { ok: true, sections: r.sections, interfaces: r.interfaces, packets: out.packets, error };
}

// ---------------------------------------------------------------------------------------------
// Writing (little-endian)

type Option = readonly [code: number, value: Uint8Array];

function stringOption(code: number, value: string | undefined): Option[] {
  return value === undefined ? [] : [[code, Buffer.from(value, "utf8")]];
}

function optionsLength(options: readonly Option[]): number {
  if (options.length === 0) return 0;
  let n = 4; // opt_endofopt
  for (const [, v] of options) n += 4 + ((v.length + 3) & ~3);
  return n;
}

function writeOptions(b: Buffer, at: number, options: readonly Option[]): number {
  if (options.length === 0) return at;
  let p = at;
  for (const [code, v] of options) {
    b.writeUInt16LE(code, p);
    b.writeUInt16LE(v.length, p + 2);
    b.set(v, p + 4);
    p += 4 + ((v.length + 3) & ~3); // padding octets stay zero (§3.6.2 "Alignment")
  }
  b.writeUInt32LE(0, p); // opt_endofopt, length 0: "Code that writes pcapng files MUST put" it (§3.5)
  return p + 4;
}

function block(type: number, fixed: number, options: readonly Option[], fill: (b: Buffer) => void): Buffer {
  const length = 8 + fixed + optionsLength(options) + 4;
  const b = Buffer.alloc(length);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(length, 4);
  fill(b);
  writeOptions(b, 8 + fixed, options);
  b.writeUInt32LE(length, length - 4);
  return b;
}

export interface PcapngSectionSpec {
  readonly hardware?: string;
  readonly os?: string;
  readonly userAppl?: string;
  readonly comment?: string;
}

/** §4.1 Section Header Block: byte-order magic, version 1.0, section length -1 (not specified). */
export function encodePcapngSectionHeader(spec: PcapngSectionSpec = {}): Buffer {
  const options = [
    ...stringOption(OPT_COMMENT, spec.comment),
    ...stringOption(SHB_HARDWARE, spec.hardware),
    ...stringOption(SHB_OS, spec.os),
    ...stringOption(SHB_USERAPPL, spec.userAppl),
  ];
  return block(PCAPNG_BLOCK_SHB, 16, options, (b) => {
    b.writeUInt32LE(PCAPNG_BYTE_ORDER_MAGIC, 8);
    b.writeUInt16LE(1, 12);
    b.writeUInt16LE(0, 14);
    b.writeBigInt64LE(-1n, 16);
  });
}

export interface PcapngInterfaceSpec {
  /** `if_name`: for ovntap, the mirror (`<namespace>/<mirror>`). */
  readonly name?: string;
  /** `if_description`: for ovntap, the mirror's spec. */
  readonly description?: string;
  readonly comment?: string;
  /** Default LINKTYPE_ETHERNET. */
  readonly linkType?: number;
  /** Default 262144; 0 means no limit. */
  readonly snaplen?: number;
  /** `if_tsresol` 9 for "ns" (default), 6 for "us". */
  readonly precision?: TimestampPrecision;
}

/** §4.2 Interface Description Block with if_name, if_description, opt_comment and if_tsresol. */
export function encodePcapngInterface(spec: PcapngInterfaceSpec = {}): Buffer {
  const options: Option[] = [
    ...stringOption(OPT_COMMENT, spec.comment),
    ...stringOption(IF_NAME, spec.name),
    ...stringOption(IF_DESCRIPTION, spec.description),
    [IF_TSRESOL, Uint8Array.of(spec.precision === "us" ? 6 : 9)],
  ];
  return block(PCAPNG_BLOCK_IDB, 8, options, (b) => {
    b.writeUInt16LE((spec.linkType ?? 1) & 0xffff, 8);
    b.writeUInt16LE(0, 10);
    b.writeUInt32LE(spec.snaplen ?? PCAP_DEFAULT_SNAPLEN, 12);
  });
}

export interface PcapngPacketInput extends PcapRecordInput {
  readonly comment?: string;
  /** `epb_flags` (§4.3.1): bits 0-1 direction (1 inbound, 2 outbound), … */
  readonly flags?: number;
}

/** §4.3 Enhanced Packet Block; `precision` must match the interface's `if_tsresol`. */
export function encodePcapngPacket(
  interfaceId: number,
  packet: PcapngPacketInput,
  precision: TimestampPrecision = "ns",
): Buffer {
  const options: Option[] = stringOption(OPT_COMMENT, packet.comment);
  if (packet.flags !== undefined) {
    const f = Buffer.alloc(4);
    f.writeUInt32LE(packet.flags >>> 0);
    options.push([EPB_FLAGS, f]);
  }
  const caplen = packet.data.length;
  return block(PCAPNG_BLOCK_EPB, 20 + ((caplen + 3) & ~3), options, (b) => {
    b.writeUInt32LE(interfaceId, 8);
    timeToUnits(packet.seconds, packet.nanos, precision, b, 12);
    b.writeUInt32LE(caplen, 20);
    b.writeUInt32LE(packet.originalLength ?? caplen, 24);
    b.set(packet.data, 28);
  });
}

/**
 * A pcapng file on disk: one section, interfaces added as mirrors appear, packets written to them.
 * `write` copies the packet, so the caller may reuse its buffer at once.
 */
export class PcapngFileWriter {
  readonly #file: BufferedFile;
  readonly #precisions: TimestampPrecision[] = [];

  private constructor(file: BufferedFile) {
    this.#file = file;
  }

  static async create(path: string, section: PcapngSectionSpec = {}): Promise<PcapngFileWriter> {
    const file = await BufferedFile.create(path);
    await file.write(encodePcapngSectionHeader(section));
    return new PcapngFileWriter(file);
  }

  /** Write an Interface Description Block; resolves to its interface id. */
  async addInterface(spec: PcapngInterfaceSpec = {}): Promise<number> {
    await this.#file.write(encodePcapngInterface(spec));
    this.#precisions.push(spec.precision ?? "ns");
    return this.#precisions.length - 1;
  }

  async write(interfaceId: number, packet: PcapngPacketInput): Promise<void> {
    const precision = this.#precisions[interfaceId];
    if (precision === undefined)
      throw new RangeError(`pcapng interface ${interfaceId} was never added; call addInterface first`);
    await this.#file.write(encodePcapngPacket(interfaceId, packet, precision));
  }

  async flush(): Promise<void> {
    await this.#file.flush();
  }

  async close(): Promise<void> {
    await this.#file.close();
  }
}
