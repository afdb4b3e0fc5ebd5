/**
 * The classic pcap file format (draft-ietf-opsawg-pcap): a 24-octet file header, then records of a
 * 16-octet header and the packet bytes, unpadded. Every field is in the writer's byte order, told
 * by the magic number, which also says whether timestamps are in µs (0xA1B2C3D4) or ns (0xA1B23C4D).
 * We read all four variants and write little-endian (what every host we run on is).
 *
 *     const r = new PcapStreamReader();
 *     for await (const chunk of socket) {
 *       const out = r.push(chunk);
 *       if (!out.ok) throw new CaptureFormatError(out);
 *       for (const rec of out.records) handle(rec.data, rec.seconds, rec.nanos);
 *     }
 *
 * Timestamps are `seconds` + `nanos` (0..999 999 999) whatever the file's precision; writing µs
 * drops the sub-microsecond part.
 */
import { asBuffer } from "./bytes.js";
import { BufferedFile } from "./file.js";
import { Framer } from "./framer.js";
import { fail } from "./result.js";
import type { DecodeFailure } from "./result.js";

export const PCAP_MAGIC_MICROSECONDS = 0xa1b2c3d4;
export const PCAP_MAGIC_NANOSECONDS = 0xa1b23c4d;
export const PCAP_HEADER_LENGTH = 24;
export const PCAP_RECORD_HEADER_LENGTH = 16;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
/** libpcap's MAXIMUM_SNAPLEN: what tcpdump writes by default and what we write unless told. */
export const PCAP_DEFAULT_SNAPLEN = 262144;
/** Records longer than this are refused as `bad-record` whatever the header's snaplen says. */
export const PCAP_MAX_RECORD_LENGTH = 64 * 1024 * 1024;

export type TimestampPrecision = "us" | "ns";
export type ByteOrder = "le" | "be";

export interface PcapHeader {
  readonly ok: true;
  readonly byteOrder: ByteOrder;
  readonly precision: TimestampPrecision;
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly snaplen: number;
  /** The LinkType (low 16 bits of the field). */
  readonly linkType: number;
  /** Octets of FCS at the end of each packet when the header's P bit says so, else `undefined`. */
  readonly fcsLength: number | undefined;
}

export interface PcapRecord {
  readonly seconds: number;
  /** 0..999 999 999 (a µs file's values × 1000). */
  readonly nanos: number;
  /** Length on the wire; ≥ `data.length` unless the writer broke the rule. */
  readonly originalLength: number;
  /** The captured bytes: a view into the chunk or file buffer it came from. */
  readonly data: Buffer;
}

/** What a writer needs of a record; `originalLength` defaults to `data.length`. */
export interface PcapRecordInput {
  readonly seconds: number;
  readonly nanos: number;
  readonly data: Uint8Array;
  readonly originalLength?: number;
}

export interface PcapWriteOptions {
  readonly precision?: TimestampPrecision;
  readonly snaplen?: number;
  readonly linkType?: number;
}

function readU32(b: Buffer, at: number, order: ByteOrder): number {
  return order === "le" ? b.readUInt32LE(at) : b.readUInt32BE(at);
}

/** Decode the 24-octet file header (draft-ietf-opsawg-pcap §4, "File Header"; §4.1 "File Endian Information"). */
export function decodePcapHeader(bytes: Uint8Array, offset = 0): PcapHeader | DecodeFailure {
  const b = asBuffer(bytes);
  if (b.length - offset < PCAP_HEADER_LENGTH) return fail("truncated", "pcap", offset);
  const le = b.readUInt32LE(offset);
  let byteOrder: ByteOrder;
  let precision: TimestampPrecision;
  if (le === PCAP_MAGIC_MICROSECONDS || le === PCAP_MAGIC_NANOSECONDS) {
    byteOrder = "le";
    precision = le === PCAP_MAGIC_NANOSECONDS ? "ns" : "us";
  } else {
    const be = b.readUInt32BE(offset);
    if (be !== PCAP_MAGIC_MICROSECONDS && be !== PCAP_MAGIC_NANOSECONDS)
      return fail("bad-magic", "pcap", offset);
    byteOrder = "be";
    precision = be === PCAP_MAGIC_NANOSECONDS ? "ns" : "us";
  }
  const read16 = (at: number): number => (byteOrder === "le" ? b.readUInt16LE(at) : b.readUInt16BE(at));
  const versionMajor = read16(offset + 4);
  if (versionMajor !== PCAP_VERSION_MAJOR) return fail("bad-version", "pcap", offset + 4);
  const lt = readU32(b, offset + 20, byteOrder);
  // "LinkType and additional information": FCS len (4 bits, in 16-bit words), R, P, reserved, LinkType (16 bits).
  const fcsPresent = (lt & 0x04000000) !== 0;
  return {
    ok: true,
    byteOrder,
    precision,
    versionMajor,
    versionMinor: read16(offset + 6),
    snaplen: readU32(b, offset + 16, byteOrder),
    linkType: lt & 0xffff,
    fcsLength: fcsPresent ? (lt >>> 28) * 2 : undefined,
  };
}

/** A little-endian file header. */
export function encodePcapHeader(options: PcapWriteOptions = {}): Buffer {
  const b = Buffer.alloc(PCAP_HEADER_LENGTH);
  b.writeUInt32LE(options.precision === "us" ? PCAP_MAGIC_MICROSECONDS : PCAP_MAGIC_NANOSECONDS, 0);
  b.writeUInt16LE(PCAP_VERSION_MAJOR, 4);
  b.writeUInt16LE(PCAP_VERSION_MINOR, 6);
  // Reserved1/Reserved2 (formerly thiszone/sigfigs) stay 0.
  b.writeUInt32LE(options.snaplen ?? PCAP_DEFAULT_SNAPLEN, 16);
  b.writeUInt32LE((options.linkType ?? 1) & 0xffff, 20);
  return b;
}

/**
 * Write a record header (ts_sec, ts_usec|ts_nsec, incl_len, orig_len, little-endian) into `target`
 * at `at`, or into a new 16-octet buffer.
 */
export function encodePcapRecordHeader(
  record: {
    readonly seconds: number;
    readonly nanos: number;
    readonly capturedLength: number;
    readonly originalLength: number;
  },
  precision: TimestampPrecision = "ns",
  target: Buffer = Buffer.alloc(PCAP_RECORD_HEADER_LENGTH),
  at = 0,
): Buffer {
  target.writeUInt32LE(record.seconds >>> 0, at);
  target.writeUInt32LE(precision === "us" ? Math.floor(record.nanos / 1000) : record.nanos >>> 0, at + 4);
  target.writeUInt32LE(record.capturedLength >>> 0, at + 8);
  target.writeUInt32LE(record.originalLength >>> 0, at + 12);
  return target;
}

/** Record header and data in one buffer (a copy). */
export function encodePcapRecord(record: PcapRecordInput, precision: TimestampPrecision = "ns"): Buffer {
  const b = Buffer.alloc(PCAP_RECORD_HEADER_LENGTH + record.data.length);
  encodePcapRecordHeader(
    {
      seconds: record.seconds,
      nanos: record.nanos,
      capturedLength: record.data.length,
      originalLength: record.originalLength ?? record.data.length,
    },
    precision,
    b,
  );
  b.set(record.data, PCAP_RECORD_HEADER_LENGTH);
  return b;
}

/** A whole file in memory. */
export function encodePcap(records: Iterable<PcapRecordInput>, options: PcapWriteOptions = {}): Buffer {
  const parts = [encodePcapHeader(options)];
  for (const r of records) parts.push(encodePcapRecord(r, options.precision ?? "ns"));
  return Buffer.concat(parts);
}

/** A push that fails still hands over the records before the failure. */
export type PcapPushResult =
  | { readonly ok: true; readonly records: PcapRecord[] }
  | (DecodeFailure & { readonly records: PcapRecord[] });

/**
 * A pcap reader for streams (PCAP-over-IP, a pipe, a file read in chunks). `push` each chunk as it
 * comes; records that lie inside one chunk are views of it, so consume them before the chunk's
 * memory is reused. After a failure every push returns it again.
 */
export class PcapStreamReader {
  #header: PcapHeader | undefined;
  #records: PcapRecord[] = [];
  readonly #framer: Framer;

  constructor() {
    this.#framer = new Framer({
      measure: (b, at, offset) => {
        const avail = b.length - at;
        const h = this.#header;
        if (h === undefined) return PCAP_HEADER_LENGTH;
        if (avail < PCAP_RECORD_HEADER_LENGTH) return PCAP_RECORD_HEADER_LENGTH;
        const incl = readU32(b, at + 8, h.byteOrder);
        if (incl > Math.min(PCAP_MAX_RECORD_LENGTH, Math.max(h.snaplen, PCAP_DEFAULT_SNAPLEN)))
          return fail("bad-record", "pcap", offset + 8);
        return PCAP_RECORD_HEADER_LENGTH + incl;
      },
      unit: (b, at, length, offset) => {
        if (this.#header === undefined) {
          const h = decodePcapHeader(b, at);
          if (!h.ok) return fail(h.reason, h.layer, offset + (h.at - at));
          this.#header = h;
          return undefined;
        }
        const order = this.#header.byteOrder;
        const frac = readU32(b, at + 4, order);
        this.#records.push({
          seconds: readU32(b, at, order),
          nanos: this.#header.precision === "us" ? frac * 1000 : frac,
          originalLength: readU32(b, at + 12, order),
          data: b.subarray(at + PCAP_RECORD_HEADER_LENGTH, at + length),
        });
        return undefined;
      },
    });
  }

  /** The file header, once its 24 octets have arrived. */
  get header(): PcapHeader | undefined {
    return this.#header;
  }

  /** Bytes held back waiting for the rest of a record. */
  get buffered(): number {
    return this.#framer.buffered;
  }

  push(chunk: Uint8Array): PcapPushResult {
    this.#records = [];
    const f = this.#framer.push(asBuffer(chunk));
    return f === undefined ? { ok: true, records: this.#records } : { ...f, records: this.#records };
  }

  /** At the end of the stream: a failure when it stopped inside the header or a record. */
  end(): DecodeFailure | undefined {
    if (this.#framer.failure !== undefined) return this.#framer.failure;
    if (this.#framer.buffered > 0 || this.#header === undefined)
      return fail("truncated", "pcap", this.#framer.offset);
    return undefined;
  }
}

export interface PcapFile {
  readonly ok: true;
  readonly header: PcapHeader;
  /** Views into the buffer passed in. */
  readonly records: PcapRecord[];
  /** Why reading stopped early (a file cut short by a killed capture is `truncated`); `undefined` at a clean end. */
  readonly error: DecodeFailure | undefined;
}

/** Read a whole pcap file from memory; records before a damaged tail are still returned. */
export function decodePcap(bytes: Uint8Array): PcapFile | DecodeFailure {
  const r = new PcapStreamReader();
  const out = r.push(bytes);
  const error = r.end();
  if (r.header === undefined) return error ?? fail("truncated", "pcap", 0);
  return { ok: true, header: r.header, records: out.records, error };
}

/**
 * A pcap file on disk. `write` copies the record, so the caller may reuse its buffer at once.
 *
 *     const w = await PcapFileWriter.create("out.pcap", { precision: "ns" });
 *     await w.write({ seconds, nanos, data });
 *     await w.close();
 */
export class PcapFileWriter {
  readonly #file: BufferedFile;
  readonly #precision: TimestampPrecision;
  readonly #header = Buffer.alloc(PCAP_RECORD_HEADER_LENGTH);

  private constructor(file: BufferedFile, precision: TimestampPrecision) {
    this.#file = file;
    this.#precision = precision;
  }

  static async create(path: string, options: PcapWriteOptions = {}): Promise<PcapFileWriter> {
    const file = await BufferedFile.create(path);
    await file.write(encodePcapHeader(options));
    return new PcapFileWriter(file, options.precision ?? "ns");
  }

  async write(record: PcapRecordInput): Promise<void> {
    encodePcapRecordHeader(
      {
        seconds: record.seconds,
        nanos: record.nanos,
        capturedLength: record.data.length,
        originalLength: record.originalLength ?? record.data.length,
      },
      this.#precision,
      this.#header,
    );
    await this.#file.write(this.#header, record.data);
  }

  /** Append payloads that are already pcap records (a capture batch from `ovntap.v1.capture.*`). */
  async writeRaw(records: Uint8Array): Promise<void> {
    await this.#file.write(records);
  }

  async flush(): Promise<void> {
    await this.#file.flush();
  }

  async close(): Promise<void> {
    await this.#file.close();
  }
}
