/**
 * Replays a pcap or pcapng file into the pipeline — for tests, benchmarks and offline captures —
 * at file speed (as fast as it can be read and published) or with the original timing (the gaps
 * between packets' timestamps are kept). Frames carry the file's timestamps.
 *
 *     const src = new FileReplaySource({ path: "in.pcap", timing: "fast" });
 *     const { frames } = await src.run(pipeline);
 *
 * pcap (µs or ns, either byte order) is read in large chunks and walked in place: no object per
 * record. pcapng goes through @ovntap/packet's CaptureStreamReader (one link type: the first
 * interface's). By default a replay is lossless: it waits while the pipeline's queue is full
 * instead of overrunning it (`lossless: false` behaves like a live capture and drops).
 */
import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { CaptureFormatError, CaptureStreamReader, detectCaptureFormat } from "@ovntap/packet";
import type { CaptureSource, FrameSink, SourceResult } from "./source.js";

export interface FileReplayOptions {
  path: string;
  /** `fast` (default): as fast as the pipeline takes it; `original`: keep the timestamps' gaps. */
  timing?: "fast" | "original";
  /** Wait while the pipeline's queue is full (default true). */
  lossless?: boolean;
  /** Read size. Default 4 MiB. */
  chunkBytes?: number;
}

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const MAX_RECORD = 64 * 1024 * 1024;

export class FileReplaySource implements CaptureSource {
  readonly description: string;
  readonly #path: string;
  readonly #original: boolean;
  readonly #lossless: boolean;
  readonly #chunk: number;
  #stopped = false;
  #wake: (() => void) | undefined;

  constructor(opts: FileReplayOptions) {
    this.#path = opts.path;
    this.description = `file ${opts.path}`;
    this.#original = opts.timing === "original";
    this.#lossless = opts.lossless ?? true;
    this.#chunk = opts.chunkBytes ?? 4 << 20;
  }

  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  async run(sink: FrameSink): Promise<SourceResult> {
    const fh = await open(this.#path, "r");
    try {
      const head = Buffer.alloc(24);
      const { bytesRead } = await fh.read(head, 0, 24, 0);
      const format = detectCaptureFormat(head.subarray(0, bytesRead));
      if (format === "pcap" && bytesRead === 24) return await this.#pcap(fh, head, sink);
      return await this.#generic(fh, sink);
    } finally {
      await fh.close();
    }
  }

  /** Classic pcap, walked in place. */
  async #pcap(fh: FileHandle, head: Buffer, sink: FrameSink): Promise<SourceResult> {
    const magicLe = head.readUInt32LE(0);
    const le = magicLe === PCAP_MAGIC_US || magicLe === PCAP_MAGIC_NS;
    const magic = le ? magicLe : head.readUInt32BE(0);
    const walk = new RecordWalk(
      sink,
      le,
      magic === PCAP_MAGIC_NS,
      this.#lossless,
      this.#original,
      sink.frameBuffer?.(this.#chunk) ?? Buffer.allocUnsafe(this.#chunk),
    );
    sink.linkType = (le ? head.readUInt32LE(20) : head.readUInt32BE(20)) & 0xffff;
    let filePos = 24;
    let eof = false;
    let more = true;
    for (;;) {
      if (this.#stopped) break;
      if (more && !eof) {
        walk.compact();
        const { bytesRead } = await fh.read(walk.buf, walk.have, walk.room(), filePos);
        filePos += bytesRead;
        walk.have += bytesRead;
        eof = bytesRead === 0;
      }
      // Synchronous over the buffer: an async function keeps its locals in a heap context, which
      // costs more per record than everything else the walk does.
      const stop = walk.run();
      more = false;
      if (stop === STOP_WRITABLE) {
        await sink.whenWritable();
      } else if (stop === STOP_PACE) {
        await this.#sleep(walk.waitMs);
        walk.paced = true;
      } else if (stop === STOP_BAD) {
        throw new CaptureFormatError({
          reason: "bad-record",
          layer: "pcap",
          at: filePos - walk.have + walk.at + 8,
        });
      } else if (eof) {
        if (walk.have - walk.at > 0) {
          throw new CaptureFormatError({
            reason: "truncated",
            layer: "pcap",
            at: filePos - (walk.have - walk.at),
          });
        }
        break;
      } else {
        more = true;
      }
    }
    return { frames: walk.frames, bytes: walk.bytes };
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** pcapng (and anything else CaptureStreamReader reads), one packet object at a time. */
  async #generic(fh: FileHandle, sink: FrameSink): Promise<SourceResult> {
    const reader = new CaptureStreamReader();
    const chunk = Buffer.allocUnsafe(this.#chunk);
    let pos = 0;
    let frames = 0;
    let bytes = 0;
    let linkTypeSet = false;
    const pace = this.#pacer();
    for (;;) {
      if (this.#stopped) break;
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      // The reader keeps views into what it is given: hand it a copy it may hold on to.
      const out = reader.push(Buffer.from(chunk.subarray(0, bytesRead)));
      for (const p of out.packets) {
        if (!linkTypeSet) {
          sink.linkType = p.linkType;
          linkTypeSet = true;
        }
        if (pace !== undefined) await pace(p.seconds, p.nanos);
        if (this.#lossless && !sink.writable()) await sink.whenWritable();
        if (this.#stopped) break;
        sink.ingest(p.data, 0, p.data.length, p.originalLength, p.seconds, p.nanos);
        frames++;
        bytes += p.data.length;
      }
      if (!out.ok) throw new CaptureFormatError(out);
    }
    if (!this.#stopped) {
      const tail = reader.end();
      if (tail !== undefined) throw new CaptureFormatError(tail);
    }
    return { frames, bytes };
  }

  /** For `original` timing: waits until the wall clock has moved as far as the file's clock. */
  #pacer(): ((sec: number, nsec: number) => Promise<void>) | undefined {
    if (!this.#original) return undefined;
    let fileStart: number | undefined;
    let wallStart = 0;
    return async (sec, nsec) => {
      const t = sec * 1000 + nsec / 1e6;
      if (fileStart === undefined) {
        fileStart = t;
        wallStart = performance.now();
        return;
      }
      const wait = wallStart + (t - fileStart) - performance.now();
      if (wait > 1 && !this.#stopped) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    };
  }
}

const STOP_MORE = 0;
const STOP_WRITABLE = 1;
const STOP_PACE = 2;
const STOP_BAD = 3;

/** The synchronous part of a pcap replay: records of `buf[at, have)` into the sink, until one of the STOP_ reasons. */
class RecordWalk {
  at = 0;
  have = 0;
  frames = 0;
  bytes = 0;
  /** STOP_PACE: how long to wait; set `paced` once waited so the record goes. */
  waitMs = 0;
  paced = false;
  #fileStart = -1;
  #wallStart = 0;

  constructor(
    readonly sink: FrameSink,
    readonly le: boolean,
    readonly nanos: boolean,
    readonly lossless: boolean,
    readonly original: boolean,
    public buf: Buffer,
  ) {}

  /** Free bytes after `have` (the buffer grows when a record does not fit at all). */
  room(): number {
    return this.buf.length - this.have;
  }

  /** Moves the partial record at `at` to the front. */
  compact(): void {
    if (this.at > 0) {
      this.buf.copyWithin(0, this.at, this.have);
      this.have -= this.at;
      this.at = 0;
    }
  }

  run(): number {
    const sink = this.sink;
    const le = this.le;
    const buf = this.buf;
    let p = this.at;
    const have = this.have;
    let frames = this.frames;
    let bytes = this.bytes;
    let stop = STOP_MORE;
    while (have - p >= 16) {
      const incl = le
        ? (buf[p + 8]! | (buf[p + 9]! << 8) | (buf[p + 10]! << 16) | (buf[p + 11]! << 24)) >>> 0
        : buf.readUInt32BE(p + 8);
      if (incl > MAX_RECORD) {
        stop = STOP_BAD;
        break;
      }
      if (have - p < 16 + incl) {
        if (16 + incl > buf.length) {
          // A record larger than the buffer: move to a bigger one.
          const bigger = Buffer.allocUnsafe(16 + incl);
          buf.copy(bigger, 0, p, have);
          this.buf = bigger;
          this.have = have - p;
          this.at = 0;
          this.frames = frames;
          this.bytes = bytes;
          return STOP_MORE;
        }
        break;
      }
      let sec: number;
      let frac: number;
      let orig: number;
      if (le) {
        sec = (buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24)) >>> 0;
        frac = (buf[p + 4]! | (buf[p + 5]! << 8) | (buf[p + 6]! << 16) | (buf[p + 7]! << 24)) >>> 0;
        orig = (buf[p + 12]! | (buf[p + 13]! << 8) | (buf[p + 14]! << 16) | (buf[p + 15]! << 24)) >>> 0;
      } else {
        sec = buf.readUInt32BE(p);
        frac = buf.readUInt32BE(p + 4);
        orig = buf.readUInt32BE(p + 12);
      }
      const nsec = this.nanos ? frac : frac * 1000;
      if (this.original && !this.paced) {
        const t = sec * 1000 + nsec / 1e6;
        if (this.#fileStart < 0) {
          this.#fileStart = t;
          this.#wallStart = performance.now();
        } else {
          const wait = this.#wallStart + (t - this.#fileStart) - performance.now();
          if (wait > 1) {
            this.waitMs = wait;
            stop = STOP_PACE;
            break;
          }
        }
      }
      if (this.lossless && !sink.writable()) {
        stop = STOP_WRITABLE;
        break;
      }
      this.paced = false;
      sink.ingest(buf, p + 16, p + 16 + incl, orig, sec, nsec);
      frames++;
      bytes += incl;
      p += 16 + incl;
    }
    this.at = p;
    this.frames = frames;
    this.bytes = bytes;
    return stop;
  }
}
