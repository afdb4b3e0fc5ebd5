/**
 * `ovntap capture`: subscribe to a mirror's packet batches on every node
 * (`ovntap.v1.capture.<ns>.<mirror>.*`, core NATS), and write them as pcap or pcapng, or print one
 * line per packet. Batches are pcap records with nanosecond timestamps (contracts/capture.ts), so a
 * pcap is one global header and the payloads appended; records are walked anyway, to count them, to
 * filter, and to cut the last batch at `--count`.
 *
 *   const summary = await runCapture(nc, {
 *     namespace: "shop", mirror: "web", output: await openOutput({ kind: "file", path: "web.pcap", format: "pcap" }),
 *     count: 100, notice: (line) => stderr.write(`${line}\n`),
 *   });
 *
 * Nothing is lost silently: drops the exporters report in batch headers, batches missing from a
 * node's sequence (core NATS delivers at most once), batches refused as malformed, and batches this
 * process had to drop because its output did not keep up are all counted, announced as they happen
 * and summed up at the end.
 */
import { captureSubject, LINKTYPE_ETHERNET, parseCaptureHeaders, parseSubject } from "@ovntap/contracts";
import type { CaptureBatchHeader, MirrorSpec } from "@ovntap/contracts";
import {
  decodeFrame,
  encodePcapHeader,
  encodePcapngInterface,
  encodePcapngPacket,
  encodePcapngSectionHeader,
  encodePcapRecordHeader,
  formatSummary,
  PCAP_DEFAULT_SNAPLEN,
} from "@ovntap/packet";
import type { FrameFilter } from "@ovntap/packet";
import { BufferedFile } from "@ovntap/packet/internal";
import { errors } from "@nats-io/transport-node";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { describeCause } from "./errors.js";

/** Bytes of a pcap record header in a batch payload. */
const RECORD_HEADER = 16;
/**
 * Batches waiting in this process before newer ones are dropped (and counted): the NATS client
 * buffers without limit, so a stalled output (a pipe nobody reads) must not eat all memory.
 */
export const DEFAULT_MAX_PENDING_BATCHES = 4096;

/** A capture could not be written (the file, the pipe) or NATS refused the subscription. */
export class CaptureError extends Error {
  override readonly name = "CaptureError";
  readonly exitCode = 1;
}

// ---------------------------------------------------------------------------------------------
// Records in a batch payload

export interface BatchRecord {
  readonly seconds: number;
  readonly nanos: number;
  readonly originalLength: number;
  /** The frame: a view into the payload. */
  readonly data: Buffer;
}

export interface SplitRecords {
  readonly records: BatchRecord[];
  /** Why walking stopped before the end of the payload; the records before it are good. */
  readonly error: string | undefined;
}

/** Walk a batch payload: 16-byte LE record headers (ts_sec, ts_nsec, incl_len, orig_len), each followed by its frame. */
export function splitRecords(payload: Uint8Array): SplitRecords {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const records: BatchRecord[] = [];
  let at = 0;
  while (at < b.length) {
    if (b.length - at < RECORD_HEADER)
      return { records, error: `${b.length - at} stray bytes after record ${records.length}` };
    const nanos = b.readUInt32LE(at + 4);
    const incl = b.readUInt32LE(at + 8);
    if (nanos > 999_999_999)
      return { records, error: `record ${records.length + 1} has ts_nsec ${nanos} (over 999999999)` };
    if (incl > b.length - at - RECORD_HEADER) {
      return {
        records,
        error: `record ${records.length + 1} says ${incl} bytes but ${b.length - at - RECORD_HEADER} remain`,
      };
    }
    records.push({
      seconds: b.readUInt32LE(at),
      nanos,
      originalLength: b.readUInt32LE(at + 12),
      data: b.subarray(at + RECORD_HEADER, at + RECORD_HEADER + incl),
    });
    at += RECORD_HEADER + incl;
  }
  return { records, error: undefined };
}

// ---------------------------------------------------------------------------------------------
// Byte sinks: a file, or a stream (stdout)

/** What `-w -` writes to: process.stdout or any Writable-like stream. */
export interface ByteStream {
  write(chunk: Uint8Array): unknown;
  /** Backpressure: called when a full stream can take more. */
  once?(event: "drain", listener: () => void): unknown;
}

export interface ByteSink {
  write(chunk: Uint8Array): Promise<void>;
  /** Push what is buffered to the file or stream (after each batch, so readers see whole batches). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export async function fileSink(path: string): Promise<ByteSink> {
  let file: BufferedFile;
  try {
    file = await BufferedFile.create(path);
  } catch (e) {
    throw new CaptureError(`cannot write ${path}: ${describeCause(e)}`, { cause: e });
  }
  const guard = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      throw new CaptureError(`${what} ${path} failed: ${describeCause(e)}`, { cause: e });
    }
  };
  return {
    write: (chunk) => guard("writing", () => file.write(chunk)),
    flush: () => guard("writing", () => file.flush()),
    close: () => guard("closing", () => file.close()),
  };
}

/**
 * Writes straight to a stream, waiting for `drain` when it says it is full, until `signal` aborts
 * (Ctrl-C must end a capture whose reader has stalled). The stream is not ended.
 */
export function streamSink(stream: ByteStream, signal?: AbortSignal): ByteSink {
  return {
    async write(chunk) {
      // A stream may keep the chunk until it is flushed: hand it a copy, never a view the caller reuses.
      const ok = stream.write(Buffer.from(chunk));
      if (ok !== false || typeof stream.once !== "function" || signal?.aborted === true) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          signal?.removeEventListener("abort", done);
          resolve();
        };
        stream.once!("drain", done);
        signal?.addEventListener("abort", done, { once: true });
      });
    },
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

// ---------------------------------------------------------------------------------------------
// Outputs: pcap, pcapng, one line per packet

/** What the pcapng interface block says about the mirror. */
export interface MirrorDescription {
  /** `if_description`: the spec as JSON, when it could be fetched. */
  readonly description?: string;
  /** `opt_comment`: a readable summary, or why the spec is not there. */
  readonly comment: string;
}

export interface CaptureOutput {
  /** Whether `write` needs each record decoded (printing); writers take records as they are. */
  readonly kind: "pcap" | "pcapng" | "print";
  /**
   * Write records of one batch. `raw` is the batch payload when `records` is all of it, unchanged,
   * so a pcap writer can append it in one piece. Resolves to the records written (a pcap holds one
   * link type: records of another are skipped, and the caller is told).
   */
  write(
    header: CaptureBatchHeader,
    records: readonly BatchRecord[],
    raw: Uint8Array | undefined,
  ): Promise<number>;
  close(): Promise<void>;
}

/**
 * A nanosecond little-endian pcap, as the batches are. The global header waits for the first batch,
 * whose link type it takes (Ethernet if the capture ends empty). Its snaplen is libpcap's maximum,
 * as tcpdump writes, so records cut to any mirror's snaplen on any node fit under it.
 */
export function pcapOutput(
  sink: ByteSink,
  onSkip: (header: CaptureBatchHeader, fileLinkType: number) => void,
): CaptureOutput {
  let linkType: number | undefined;
  const recordHeader = Buffer.alloc(RECORD_HEADER);
  const start = async (lt: number) => {
    linkType = lt;
    await sink.write(encodePcapHeader({ precision: "ns", snaplen: PCAP_DEFAULT_SNAPLEN, linkType: lt }));
  };
  return {
    kind: "pcap",
    async write(header, records, raw) {
      if (linkType === undefined) await start(header.linkType);
      if (header.linkType !== linkType) {
        onSkip(header, linkType!);
        return 0;
      }
      if (raw !== undefined) await sink.write(raw);
      else {
        for (const r of records) {
          encodePcapRecordHeader(
            {
              seconds: r.seconds,
              nanos: r.nanos,
              capturedLength: r.data.length,
              originalLength: r.originalLength,
            },
            "ns",
            recordHeader,
          );
          await sink.write(recordHeader);
          await sink.write(r.data);
        }
      }
      await sink.flush();
      return records.length;
    },
    async close() {
      if (linkType === undefined) await start(LINKTYPE_ETHERNET);
      await sink.close();
    },
  };
}

/**
 * pcapng: a section header now, then one interface block per mirror (per link type, should a mirror
 * ever deliver two), `if_name` = `<namespace>/<mirror>`, the spec in `if_description` and a summary
 * in its comment; Enhanced Packet Blocks with nanosecond timestamps.
 */
export async function pcapngOutput(
  sink: ByteSink,
  mirror: { namespace: string; name: string },
  describe: () => Promise<MirrorDescription>,
  userAppl: string,
): Promise<CaptureOutput> {
  await sink.write(encodePcapngSectionHeader({ userAppl }));
  const interfaces = new Map<number, number>();
  let description: MirrorDescription | undefined;
  return {
    kind: "pcapng",
    async write(header, records) {
      let id = interfaces.get(header.linkType);
      if (id === undefined) {
        description ??= await describe();
        id = interfaces.size;
        interfaces.set(header.linkType, id);
        await sink.write(
          encodePcapngInterface({
            name: `${mirror.namespace}/${mirror.name}`,
            ...(description.description !== undefined ? { description: description.description } : {}),
            comment: description.comment,
            linkType: header.linkType,
            snaplen: PCAP_DEFAULT_SNAPLEN,
            precision: "ns",
          }),
        );
      }
      for (const r of records) await sink.write(encodePcapngPacket(id, r, "ns"));
      await sink.flush();
      return records.length;
    },
    close: () => sink.close(),
  };
}

/** tcpdump's default timestamp: local time of day with microseconds. */
export function timeOfDay(seconds: number, nanos: number): string {
  const d = new Date(seconds * 1000);
  const p2 = (n: number) => String(n).padStart(2, "0");
  return `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${String(Math.floor(nanos / 1000)).padStart(6, "0")}`;
}

/** One tcpdump-style line per packet (`12:00:01.000042 IP 10.16.0.11.4242 > 10.16.0.12.80: Flags [S], …`). */
export function printOutput(write: (text: string) => void): CaptureOutput {
  return {
    kind: "print",
    write(header, records) {
      let text = "";
      for (const r of records)
        text += `${timeOfDay(r.seconds, r.nanos)} ${formatSummary(decodeFrame(r.data, header.linkType))}\n`;
      write(text);
      return Promise.resolve(records.length);
    },
    close: () => Promise.resolve(),
  };
}

// ---------------------------------------------------------------------------------------------
// Accounting

export interface CaptureStats {
  /** Packets written or printed, and their captured bytes. */
  packets: number;
  bytes: number;
  /** Batches taken in (valid ones). */
  batches: number;
  /** Records the filter left out. */
  filtered: number;
  /** Packets the exporters reported lost before their batches (`Ovntap-Drops`). */
  drops: number;
  /** Batches missing from a node's sequence: lost between the exporter and here. */
  lostBatches: number;
  /** Batches this process dropped because its output did not keep up, and their packets. */
  localDroppedBatches: number;
  localDroppedPackets: number;
  /** Batches refused: headers against the contract, another mirror's, a damaged payload. */
  invalidBatches: number;
  /** Records a pcap could not hold (another link type than the file's). */
  skipped: number;
  /** Times a node's sequence went back: its exporter restarted. */
  restarts: number;
  /** Nodes seen. */
  readonly nodes: Set<string>;
}

export function newStats(): CaptureStats {
  return {
    packets: 0,
    bytes: 0,
    batches: 0,
    filtered: 0,
    drops: 0,
    lostBatches: 0,
    localDroppedBatches: 0,
    localDroppedPackets: 0,
    invalidBatches: 0,
    skipped: 0,
    restarts: 0,
    nodes: new Set(),
  };
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The live counter: `1234 packets, 567890 bytes, 0 dropped, 0 batches lost`. */
export function counterLine(s: CaptureStats): string {
  const parts = [
    plural(s.packets, "packet"),
    plural(s.bytes, "byte"),
    `${s.drops + s.localDroppedPackets} dropped`,
  ];
  parts.push(`${plural(s.lostBatches + s.localDroppedBatches, "batch", "batches")} lost`);
  if (s.filtered > 0) parts.push(`${s.filtered} filtered out`);
  return parts.join(", ");
}

/** The closing line, tcpdump-like: what was captured, then every kind of loss that happened. */
export function summaryLine(s: CaptureStats, stoppedBy: string): string {
  let line = `${plural(s.packets, "packet")} captured (${plural(s.bytes, "byte")}) from ${plural(s.nodes.size, "node")}`;
  const losses: string[] = [];
  if (s.drops > 0) losses.push(`${s.drops} dropped by the exporters`);
  if (s.lostBatches > 0)
    losses.push(`${plural(s.lostBatches, "batch", "batches")} lost in transit (packets unknown)`);
  if (s.localDroppedBatches > 0)
    losses.push(
      `${plural(s.localDroppedBatches, "batch", "batches")} (${plural(s.localDroppedPackets, "packet")}) dropped here: the output did not keep up`,
    );
  if (s.invalidBatches > 0)
    losses.push(`${plural(s.invalidBatches, "malformed batch", "malformed batches")} (refused or cut short)`);
  if (s.skipped > 0) losses.push(`${plural(s.skipped, "packet")} of another link type skipped`);
  if (s.restarts > 0) losses.push(`${plural(s.restarts, "exporter restart")}`);
  if (s.filtered > 0) losses.push(`${s.filtered} filtered out`);
  line += losses.length > 0 ? `; ${losses.join(", ")}` : "; nothing lost";
  return `${line} (stopped: ${stoppedBy})`;
}

// ---------------------------------------------------------------------------------------------
// The capture

export type StopReason = "count" | "duration" | "interrupted" | "closed";

export interface RunCaptureOptions {
  readonly namespace: string;
  readonly mirror: string;
  readonly output: CaptureOutput;
  /** Stop after exactly this many packets (after the filter). */
  readonly count?: number;
  /** Stop after this long. */
  readonly durationMs?: number;
  readonly filter?: FrameFilter;
  /** Ends the capture cleanly (Ctrl-C). */
  readonly signal?: AbortSignal;
  /** A line about a loss or a refused batch, as it happens. */
  readonly notice: (line: string) => void;
  /** Called after every batch (the live counter). */
  readonly onBatch?: (stats: CaptureStats) => void;
  /** Called once the server has the subscription, with its subject. */
  readonly onSubscribed?: (subject: string) => void;
  readonly maxPendingBatches?: number;
  /** Counters to fill (they are live while the capture runs); fresh ones when absent. */
  readonly stats?: CaptureStats;
}

export interface CaptureResult {
  readonly stats: CaptureStats;
  readonly stoppedBy: StopReason;
}

/** The subject of every node's batches of one mirror: the builder checks the tokens, `*` takes any node. */
export function mirrorCaptureWildcard(namespace: string, mirror: string): string {
  const one = captureSubject(namespace, mirror, "node");
  return `${one.slice(0, one.lastIndexOf("."))}.*`;
}

interface Queued {
  readonly msg: Msg;
  readonly header: CaptureBatchHeader;
}

export async function runCapture(nc: NatsConnection, opts: RunCaptureOptions): Promise<CaptureResult> {
  const stats = opts.stats ?? newStats();
  const subject = mirrorCaptureWildcard(opts.namespace, opts.mirror);
  const maxPending = opts.maxPendingBatches ?? DEFAULT_MAX_PENDING_BATCHES;
  const { output, notice, filter } = opts;
  let remaining = opts.count ?? Number.POSITIVE_INFINITY;
  let stoppedBy: StopReason | undefined;
  let failure: unknown;

  // Batches go from the subscription's callback into a bounded queue, which one worker empties
  // into the output: a slow output makes this process drop (and count) batches, never grow
  // without bound, and never reorder them.
  const queue: Queued[] = [];
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  /** Per node: the last sequence written, and sequences dropped here since (not lost in transit). */
  const lastSequence = new Map<string, number>();
  const droppedHere = new Map<string, number[]>();

  const refuse = (msg: Msg, why: string) => {
    stats.invalidBatches++;
    notice(`refused a batch on ${msg.subject}: ${why}`);
  };

  /** The header, checked against the contract, this mirror and the subject; undefined when refused. */
  const check = (msg: Msg): CaptureBatchHeader | undefined => {
    const parsed = parseCaptureHeaders(msg.headers ?? {});
    if (!parsed.ok) {
      refuse(msg, parsed.error.message);
      return undefined;
    }
    const h = parsed.value;
    if (h.namespace !== opts.namespace || h.mirror !== opts.mirror) {
      refuse(
        msg,
        `its headers name ${h.namespace ?? "no namespace"}/${h.mirror ?? "no mirror"}, not ${opts.namespace}/${opts.mirror}`,
      );
      return undefined;
    }
    const at = parseSubject(msg.subject);
    if (at?.kind === "capture" && at.node !== h.node) {
      refuse(msg, `its header says node ${h.node} but the subject says node ${at.node}`);
      return undefined;
    }
    return h;
  };

  const receive = (err: Error | null, msg: Msg) => {
    if (err !== null) {
      failure ??= err;
      stop("closed");
      return;
    }
    if (stoppedBy !== undefined) return;
    const h = check(msg);
    if (h === undefined) return;
    if (queue.length >= maxPending) {
      stats.localDroppedBatches++;
      stats.localDroppedPackets += h.count;
      stats.drops += h.drops;
      stats.nodes.add(h.node);
      const list = droppedHere.get(h.node) ?? [];
      list.push(h.sequence);
      droppedHere.set(h.node, list);
      if (stats.localDroppedBatches === 1 || stats.localDroppedBatches % 100 === 0) {
        notice(
          `the output does not keep up: ${queue.length} batches waiting; dropped ${plural(stats.localDroppedBatches, "batch", "batches")} (${plural(stats.localDroppedPackets, "packet")}) here so far`,
        );
      }
      return;
    }
    queue.push({ msg, header: h });
    poke();
  };

  let sub: Subscription;
  try {
    sub = nc.subscribe(subject, { callback: receive });
    await nc.flush(); // the server has the subscription: nothing published from now on is missed
  } catch (e) {
    throw new CaptureError(`cannot subscribe to ${subject}: ${describeCause(e)}`, { cause: e });
  }
  function stop(why: StopReason): void {
    if (stoppedBy !== undefined) return;
    stoppedBy = why;
    if (!sub.isClosed()) sub.unsubscribe();
    poke();
  }
  const onAbort = () => stop("interrupted");
  if (opts.signal?.aborted) stop("interrupted");
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const timer =
    opts.durationMs !== undefined ? setTimeout(() => stop("duration"), opts.durationMs) : undefined;
  // A subscription the server closes (a permission violation) ends the capture with its error.
  void sub.closed.then((e) => {
    if (e instanceof Error) failure ??= e;
    stop("closed");
  });
  opts.onSubscribed?.(subject);

  /** Losses before this batch: gaps in its node's sequence not explained by drops here, and the exporter's. */
  const account = (h: CaptureBatchHeader) => {
    const last = lastSequence.get(h.node);
    const here = droppedHere.get(h.node) ?? [];
    if (last !== undefined && h.sequence > last + 1) {
      const explained = here.filter((s) => s > last && s < h.sequence).length;
      const lost = h.sequence - last - 1 - explained;
      if (lost > 0) {
        stats.lostBatches += lost;
        notice(
          `node ${h.node}: ${plural(lost, "batch", "batches")} lost in transit (sequence ${last} → ${h.sequence}); their packets are not in the capture`,
        );
      }
    } else if (last !== undefined && h.sequence <= last) {
      stats.restarts++;
      notice(`node ${h.node}: the exporter restarted (batch ${h.sequence} after ${last})`);
    }
    // Keep the drops here still ahead of this batch; a restart starts the numbering again.
    const ahead = last !== undefined && h.sequence <= last ? [] : here.filter((s) => s > h.sequence);
    if (ahead.length > 0) droppedHere.set(h.node, ahead);
    else droppedHere.delete(h.node);
    lastSequence.set(h.node, h.sequence);
    stats.nodes.add(h.node);
    if (h.drops > 0) {
      stats.drops += h.drops;
      notice(`node ${h.node}: the exporter dropped ${plural(h.drops, "packet")} before batch ${h.sequence}`);
    }
  };

  const handle = async ({ msg, header: h }: Queued): Promise<void> => {
    account(h);
    const split = splitRecords(msg.data);
    if (split.error !== undefined) {
      stats.invalidBatches++;
      notice(
        `node ${h.node}: batch ${h.sequence} is damaged (${split.error}); keeping its first ${plural(split.records.length, "record")}`,
      );
    } else if (split.records.length !== h.count) {
      notice(
        `node ${h.node}: batch ${h.sequence} holds ${plural(split.records.length, "record")}, its header says ${h.count}`,
      );
    }
    stats.batches++;
    let records = split.records;
    if (filter !== undefined) {
      records = records.filter((r) => filter(decodeFrame(r.data, h.linkType)));
      stats.filtered += split.records.length - records.length;
    }
    if (records.length > remaining) records = records.slice(0, remaining);
    const whole = split.error === undefined && records.length === split.records.length;
    const written = await output.write(h, records, whole ? msg.data : undefined);
    stats.skipped += records.length - written;
    stats.packets += written;
    for (let i = 0; i < written; i++) stats.bytes += records[i]!.data.length;
    remaining -= written;
    if (remaining <= 0) stop("count");
  };

  try {
    for (;;) {
      // Batches that arrived before a stop by time, Ctrl-C or a closed connection are still written.
      if (stoppedBy === "count") break;
      const next = queue.shift();
      if (next !== undefined) {
        await handle(next);
        opts.onBatch?.(stats);
        continue;
      }
      if (stoppedBy !== undefined) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } catch (e) {
    failure ??= e;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
    if (!sub.isClosed()) sub.unsubscribe();
  }
  // Close the file even after a failure: what was captured stays a valid pcap.
  try {
    await output.close();
  } catch (e) {
    failure ??= e;
  }
  if (failure !== undefined) {
    if (failure instanceof CaptureError) throw failure;
    const permission =
      failure instanceof errors.PermissionViolationError ? failure : (failure as Error).cause;
    if (permission instanceof errors.PermissionViolationError) {
      throw new CaptureError(
        `NATS does not allow this user to subscribe to ${subject}: ask for access to namespace ${opts.namespace}`,
        { cause: failure },
      );
    }
    throw new CaptureError(`the capture failed: ${describeCause(failure)}`, { cause: failure });
  }
  return { stats, stoppedBy: stoppedBy ?? "closed" };
}

// ---------------------------------------------------------------------------------------------
// The pcapng interface description of a mirror

/** From a `get` reply's spec, or the reason it could not be had. */
export function describeMirror(
  namespace: string,
  name: string,
  got: { spec: MirrorSpec; generation: number; sink?: string; key?: string } | { error: string },
): MirrorDescription {
  if ("error" in got) {
    return { comment: `ovntap mirror ${namespace}/${name}; its spec could not be read: ${got.error}` };
  }
  const { spec } = got;
  const parts = [
    `ovntap mirror ${namespace}/${name} generation ${got.generation}`,
    `${spec.direction} of ${spec.sources.type}`,
    `${spec.target.type}${got.sink !== undefined ? ` to ${got.sink}` : ""}${got.key !== undefined && got.key !== "-" ? ` key ${got.key}` : ""}`,
  ];
  if (spec.snaplen !== undefined) parts.push(`snaplen ${spec.snaplen}`);
  return { description: JSON.stringify(spec), comment: parts.join(", ") };
}

/** What `stoppedBy` reads as in the summary line. */
export function stopText(why: StopReason, count?: number, durationMs?: number): string {
  switch (why) {
    case "count":
      return `${plural(count ?? 0, "packet")} reached`;
    case "duration":
      return `${(durationMs ?? 0) / 1000}s elapsed`;
    case "interrupted":
      return "interrupted";
    case "closed":
      return "the connection closed";
  }
}
