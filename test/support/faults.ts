/**
 * What the fault tests share: a seeded PRNG (a failing schedule is replayed from its seed), a
 * requester that keeps asking under the same requestId until intake answers (what a client does
 * when NATS, intake or Redis is away), a watch over one mirror's capture stream that timestamps
 * every packet as captured and as received, the whole audit trail in one pass, continuous pod
 * traffic, and the figures table.
 *
 *   const watch = CaptureWatch.start(nc, captureSubject("default", "tap", node));
 *   await lab.killService("capture-exporter"); …; await lab.startService("capture-exporter");
 *   const back = Date.now();
 *   const first = await watch.resumedAfter(back, 60_000);   // first packet captured after `back`
 *   console.log(first.receivedMs - back, watch.longestHole(killedAt - 1_000, first.capturedMs));
 */
import { type ChildProcess, spawn } from "node:child_process";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { errors, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { AuditRecord, PCAP_RECORD_HEADER_BYTES, parseCaptureHeaders, type Reply } from "@ovntap/contracts";
import { type Lab, removeDir, sleep, waitFor } from "@ovntap/lab";

/** mulberry32: a small seeded PRNG, so a failing schedule can be replayed (FAULT_SEED). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The seed of this run: FAULT_SEED when given (a replay), else a fresh one. */
export const faultSeed = (): number => Number(process.env.FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** Error codes intake answers with when a dependency is away: "retry with the same requestId". */
const RETRYABLE_CODES = new Set(["UNAVAILABLE", "INTERNAL"]);

export interface Answer {
  /** The reply that ended the exchange (ok, or a refusal that retrying cannot change). */
  reply?: Reply;
  /** Why no reply came before the deadline. */
  error?: string;
  attempts: number;
  /** Why each further attempt was needed: "no responders", "timeout", "UNAVAILABLE", … */
  retries: string[];
  answeredAt: number;
}

export interface AnswerOptions {
  /** Per attempt. */
  timeoutMs: number;
  /** Pause between attempts. */
  retryMs: number;
  /** Give up this long after the first attempt. */
  deadlineMs: number;
}

function retryReason(err: unknown): string {
  if (err instanceof errors.NoRespondersError) return "no responders";
  if (err instanceof errors.RequestError && err.isNoResponders()) return "no responders";
  if (err instanceof errors.TimeoutError) return "timeout";
  return err instanceof Error ? err.name : "error";
}

/**
 * Sends one request and sends it again, the same body under the same requestId, until intake
 * answers something that retrying cannot change: no responder (intake down), a timeout (NATS
 * restarting) or an UNAVAILABLE/INTERNAL reply (Redis or JetStream away) mean "ask again", as
 * DESIGN.md tells a client to. Intake's dedupe by requestId makes the retries safe.
 */
export async function requestUntilAnswered(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  opts: AnswerOptions,
): Promise<Answer> {
  const payload = JSON.stringify(body);
  const deadline = Date.now() + opts.deadlineMs;
  const retries: string[] = [];
  for (let attempt = 1; ; attempt++) {
    let why: string;
    try {
      const reply = (await nc.request(subject, payload, { timeout: opts.timeoutMs })).json<Reply>();
      if (reply.ok || !RETRYABLE_CODES.has(reply.error.code)) {
        return { reply, attempts: attempt, retries, answeredAt: Date.now() };
      }
      why = reply.error.code;
    } catch (err) {
      why = retryReason(err);
    }
    if (Date.now() >= deadline) {
      return {
        error: `no answer after ${attempt} attempts, the last: ${why}`,
        attempts: attempt,
        retries,
        answeredAt: Date.now(),
      };
    }
    retries.push(why);
    await sleep(opts.retryMs);
  }
}

/** One mirrored packet: when the exporter's capture stamped it, and when this process received it. */
export interface WatchedPacket {
  capturedMs: number;
  receivedMs: number;
}

export interface WatchedBatch {
  receivedMs: number;
  sequence: number;
  count: number;
  drops: number;
}

/**
 * A subscriber of one mirror's capture subject, as any consumer would be (core NATS, the
 * connection's own reconnects). Each batch's pcap records are read for their timestamps.
 */
export class CaptureWatch {
  readonly packets: WatchedPacket[] = [];
  readonly batches: WatchedBatch[] = [];
  readonly invalid: string[] = [];
  private readonly loop: Promise<void>;

  private constructor(private readonly sub: Subscription) {
    this.loop = (async () => {
      for await (const msg of sub) {
        const receivedMs = Date.now();
        const header = parseCaptureHeaders(msg.headers ?? {});
        if (!header.ok) {
          this.invalid.push(header.error.message);
          continue;
        }
        const { sequence, count, drops } = header.value;
        this.batches.push({ receivedMs, sequence, count, drops });
        const data = Buffer.from(msg.data);
        // contracts capture.ts: u32 LE ts_sec, u32 LE ts_nsec, u32 LE incl_len, u32 LE orig_len, frame.
        for (let at = 0; at + PCAP_RECORD_HEADER_BYTES <= data.length;) {
          const capturedMs = data.readUInt32LE(at) * 1_000 + data.readUInt32LE(at + 4) / 1e6;
          this.packets.push({ capturedMs, receivedMs });
          at += PCAP_RECORD_HEADER_BYTES + data.readUInt32LE(at + 8);
        }
      }
    })();
  }

  static start(nc: NatsConnection, subject: string): CaptureWatch {
    return new CaptureWatch(nc.subscribe(subject));
  }

  /** The packet captured at or after `t` that arrived first. */
  firstAfter(t: number): WatchedPacket | undefined {
    let best: WatchedPacket | undefined;
    for (let i = this.packets.length - 1; i >= 0; i--) {
      const p = this.packets[i]!;
      if (p.receivedMs < t) break; // received before t, so captured before t as well
      if (p.capturedMs >= t && (!best || p.receivedMs <= best.receivedMs)) best = p;
    }
    return best;
  }

  /** Waits for a packet captured at or after `t` to arrive. */
  resumedAfter(t: number, timeoutMs: number): Promise<WatchedPacket> {
    return waitFor(() => this.firstAfter(t), {
      what: `a packet captured after ${new Date(t).toISOString()}`,
      timeoutMs,
      intervalMs: 20,
    });
  }

  /** The longest stretch in [from, to] without a captured packet (packets stamped in that window). */
  longestHole(from: number, to: number): number {
    const ts = this.packets
      .map((p) => p.capturedMs)
      .filter((t) => t >= from && t <= to)
      .sort((a, b) => a - b);
    let longest = 0;
    let prev = from;
    for (const t of [...ts, to]) {
      longest = Math.max(longest, t - prev);
      prev = t;
    }
    return longest;
  }

  /** Batches missing by sequence number (core NATS is at most once); a smaller number starts a new exporter run. */
  lostBatches(): number {
    let lost = 0;
    for (let i = 1; i < this.batches.length; i++) {
      const gap = this.batches[i]!.sequence - this.batches[i - 1]!.sequence;
      if (gap > 1) lost += gap - 1;
    }
    return lost;
  }

  /** Exporter runs seen (the sequence starts again at each start). */
  runs(): number {
    return this.batches.filter((b, i) => i === 0 || b.sequence < this.batches[i - 1]!.sequence).length;
  }

  async stop(): Promise<void> {
    this.sub.unsubscribe();
    await this.loop;
  }
}

/** Every record of `stream` on `filter`, in stream order, read once with an ordered consumer. */
export async function streamRecords(
  nc: NatsConnection,
  stream: string,
  filter: string,
): Promise<AuditRecord[]> {
  const consumer = await jetstream(nc).consumers.get(stream, {
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.All,
  });
  const out: AuditRecord[] = [];
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 1_000, expires: 5_000 });
    let received = 0;
    let pending = 0;
    for await (const msg of batch) {
      received++;
      out.push(AuditRecord.parse({ ...msg.json<Record<string, unknown>>(), seq: msg.seq }));
      pending = msg.info.pending;
      if (pending === 0) break;
    }
    if (received === 0 || pending === 0) return out;
  }
}

/**
 * `ping -i <interval>` from one namespace to an address until stopped: steady traffic through
 * the pods' ports that costs one process (a busy 2-core machine runs two labs at once). It ends
 * by itself after `maxSeconds`, so a test that dies without stopping it leaves nothing running.
 */
export function steadyPing(
  fromNs: string,
  ip: string,
  opts: { intervalS?: number; maxSeconds?: number } = {},
): { stop(): Promise<void> } {
  const { intervalS = 0.1, maxSeconds = 1_800 } = opts;
  const child: ChildProcess = spawn(
    "ip",
    ["netns", "exec", fromNs, "ping", "-n", "-q", "-i", String(intervalS), "-w", String(maxSeconds), ip],
    {
      stdio: "ignore",
    },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Rows of `[label, value]` as an aligned block under a title. */
export function formatFigures(title: string, rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return `\n${title}\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join("\n")}\n`;
}

/** A table with a header row, columns padded to their widest cell. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), ...rows.map(line)];
}

/**
 * A fault suite's last step: the lab and its scratch directory go, unless OVNTAP_KEEP_LAB is
 * set, which leaves the lab up for inspection and says how to take it down.
 */
export async function stopLabUnlessKept(lab: Lab | undefined, dir: string | undefined): Promise<void> {
  if (process.env.OVNTAP_KEEP_LAB) {
    process.stdout.write(
      `lab kept for inspection: node deploy/lab/dist/cli.js down --state ${lab?.stateFile}\n`,
    );
    return;
  }
  await lab?.stop();
  if (dir) removeDir(dir);
}
