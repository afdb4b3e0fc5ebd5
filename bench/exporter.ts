/**
 * `npm run bench -- exporter`: how fast the capture exporter turns tunnel packets into capture
 * batches on NATS, against the transport's own ceiling on this machine.
 *
 *   npm run bench -- exporter                           # 1 000 000 packets, 5 paired runs
 *   npm run bench -- exporter --packets 2000000 --runs 5 --keep <dir>
 *
 * 1. A child process writes `--packets` transport frames to a temp pcap with @ovntap/packet's
 *    builders: GRE with a key, ERSPAN II (what OVN sends) and ERSPAN III, each towards one of eight
 *    mirrors on the lab's sink address, carrying lab-sized frames (ping 98 octets, TCP handshakes,
 *    ACKs, small and full-size segments, UDP, ARP) of 4096 flows. The same child runs the pipeline
 *    once into a file of batch payloads, for the baseline.
 * 2. nats-server (no JetStream) on loopback; one subscriber in its own process counts packets
 *    (the batches' Ovntap-Count) and payload bytes.
 * 3. `nats_raw_pps`: the batch payloads published as they are, with no decoding — the same bytes,
 *    the same message sizes and the same flow control (NatsPublisher) — so this is the transport's
 *    ceiling with this subscriber on this machine.
 * 4. `pps`: FileReplaySource (file speed, lossless) → CapturePipeline (decap, key map, flows,
 *    batching with the service's defaults) → NatsPublisher, from the first read to the subscriber
 *    receiving the last packet. Each measured run is a process of its own (the subscriber runs
 *    in another); `rss_mb` is that process's peak resident set.
 * 5. `tcpdump_copy_pps`: `tcpdump -r in.pcap -w /dev/null` on the same file, timed.
 *
 * Each run is a pair — the baseline, then the exporter, back to back, so both meet the same load
 * on a shared machine — and --runs pairs are made (default 5). The pair with the median ratio is
 * reported (its pps, nats_raw_pps and their ratio); every pair's ratio goes to stderr. `rss_mb` is
 * the largest of the exporter runs, `tcpdump_copy_pps` the best of --runs. Progress goes to stderr;
 * the last line on stdout is the result:
 *
 *   {"bench":"exporter","packets":…,"pps":…,"mbps":…,"nats_raw_pps":…,"ratio_vs_nats_raw":…,
 *    "tcpdump_copy_pps":…,"rss_mb":…}
 */
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createInterface } from "node:readline";
import { connect, headers } from "@nats-io/transport-node";
import type { MsgHdrs } from "@nats-io/transport-node";
import { CapturePipeline, FileReplaySource, NatsPublisher } from "@ovntap/capture-exporter";
import type { BatchPublisher, MirrorBinding } from "@ovntap/capture-exporter";
import { findRepoRoot } from "@ovntap/lab/internal";
import { startNatsServer } from "@ovntap/lab";
import type { NatsServer } from "@ovntap/lab";
import { buildErspan2, buildErspan3, buildGre, buildTransportFrame } from "@ovntap/packet";
import { createLogger } from "@ovntap/runtime";
import { BenchFailure, now, progress, round1, round2 } from "./_stats.js";
import { innerFrame, rng } from "./_traffic.js";

const { values: args } = parseArgs({
  options: {
    packets: { type: "string", default: "1000000" },
    runs: { type: "string", default: "5" },
    /** Keep the temp dir (pcap, batches) here instead of removing it. */
    keep: { type: "string" },
    /** Internal: the generator child (its temp dir). */
    generate: { type: "string" },
    /** Internal: a measured phase in a process of its own (raw | exporter), with --dir and --url. */
    phase: { type: "string" },
    dir: { type: "string" },
    url: { type: "string" },
  },
  strict: true,
});

function int(name: "packets" | "runs", min: number): number {
  const v = Number(args[name]);
  if (!Number.isSafeInteger(v) || v < min) {
    process.stderr.write(`✗ --${name} must be an integer ≥ ${min} (got ${String(args[name])})\n`);
    process.exit(2);
  }
  return v;
}

const PACKETS = int("packets", 1);
const RUNS = int("runs", 1);
const SINK = "198.51.100.2";
const TUNNEL_SRC = "198.51.100.1";
const NODE = "bench-node";
const NS = "bench";
const FLOWS = 4096;
const logger = createLogger({ name: "bench-exporter", level: "warn", destination: process.stderr });

/** Eight mirrors: four GRE keys, two ERSPAN II sessions, two ERSPAN III sessions. */
const MIRRORS: readonly { name: string; type: "gre" | "erspan"; index: number; erspan3?: boolean }[] = [
  { name: "gre-1", type: "gre", index: 1 },
  { name: "gre-2", type: "gre", index: 2 },
  { name: "gre-3", type: "gre", index: 3 },
  { name: "gre-4", type: "gre", index: 4 },
  { name: "erspan2-1", type: "erspan", index: 11 },
  { name: "erspan2-2", type: "erspan", index: 12 },
  { name: "erspan3-1", type: "erspan", index: 21, erspan3: true },
  { name: "erspan3-2", type: "erspan", index: 22, erspan3: true },
];

const BINDINGS: MirrorBinding[] = MIRRORS.map((m) => ({
  namespace: NS,
  name: m.name,
  generation: 1,
  requestId: `bench-${m.name}`,
  sink: SINK,
  tunnels: [{ type: m.type, index: m.index }],
}));

function transportFrame(m: (typeof MIRRORS)[number], inner: Buffer, seq: number): Buffer {
  const gre =
    m.type === "gre"
      ? buildGre({ key: m.index, inner })
      : m.erspan3
        ? buildErspan3({ sessionId: m.index, seq, hwId: 1, inner })
        : buildErspan2({ sessionId: m.index, index: 1, seq, inner });
  return buildTransportFrame({ src: TUNNEL_SRC, dst: SINK }, gre);
}

/** Records of the pcap in 4 MiB writes. */
class RecordWriter {
  readonly #fd: number;
  readonly #buf = Buffer.allocUnsafe(4 << 20);
  #used = 0;
  constructor(path: string, header: Buffer) {
    this.#fd = openSync(path, "w");
    writeSync(this.#fd, header);
  }
  write(parts: readonly Uint8Array[]): void {
    let n = 0;
    for (const p of parts) n += p.length;
    if (this.#used + n > this.#buf.length) this.flush();
    if (n > this.#buf.length) {
      for (const p of parts) writeSync(this.#fd, p);
      return;
    }
    for (const p of parts) {
      this.#buf.set(p, this.#used);
      this.#used += p.length;
    }
  }
  flush(): void {
    if (this.#used > 0) writeSync(this.#fd, this.#buf, 0, this.#used);
    this.#used = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.#fd);
  }
}

/** The child: writes in.pcap, then the pipeline's batches (for the baseline) into batches.bin. */
async function generate(dir: string): Promise<void> {
  const r = rng(42);
  // A pool of distinct transport frames in runs of one mirror (as a busy mirror's packets come).
  const pool: Buffer[] = [];
  let seq = 0;
  while (pool.length < FLOWS) {
    const m = MIRRORS[(r() * MIRRORS.length) | 0]!;
    const run = 1 + ((r() * 16) | 0);
    for (let i = 0; i < run && pool.length < FLOWS; i++)
      pool.push(transportFrame(m, innerFrame(pool.length, r), seq++));
  }
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b23c4d, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20);
  const w = new RecordWriter(join(dir, "in.pcap"), header);
  const rec = Buffer.alloc(16);
  let sec = 1_700_000_000;
  let nsec = 0;
  let wireBytes = 0;
  for (let i = 0; i < PACKETS; i++) {
    const frame = pool[i % pool.length]!;
    nsec += 1000;
    if (nsec >= 1e9) {
      sec++;
      nsec -= 1e9;
    }
    rec.writeUInt32LE(sec, 0);
    rec.writeUInt32LE(nsec, 4);
    rec.writeUInt32LE(frame.length, 8);
    rec.writeUInt32LE(frame.length, 12);
    w.write([rec, frame]);
    wireBytes += frame.length;
  }
  w.close();

  // The baseline's input: exactly the batches the pipeline makes of this file.
  const out = new RecordWriter(join(dir, "batches.bin"), Buffer.alloc(0));
  const frame = Buffer.alloc(8);
  let batches = 0;
  const recorder: BatchPublisher = {
    canPublish: () => true,
    inFlightBytes: 0,
    maxPayload: undefined,
    flush: () => Promise.resolve(),
    publish(_subject: string, payload: Uint8Array, h: MsgHdrs) {
      frame.writeUInt32LE(payload.length, 0);
      frame.writeUInt32LE(Number(h.get("Ovntap-Count")), 4);
      out.write([frame, payload]);
      batches++;
    },
  };
  const pipeline = new CapturePipeline({
    node: NODE,
    publisher: recorder,
    logger,
    flowIntervalMs: 0,
    statsIntervalMs: 0,
  });
  pipeline.setBindings(BINDINGS);
  await new FileReplaySource({ path: join(dir, "in.pcap") }).run(pipeline);
  await pipeline.stop();
  out.close();
  const c = pipeline.counters();
  const published = c.mirrors.reduce((n, m) => n + m.published, 0);
  process.stdout.write(`${JSON.stringify({ packets: PACKETS, published, batches, wireBytes })}\n`);
}

// ---------------------------------------------------------------------------------------------

const SUBSCRIBER = `
import { connect } from "@nats-io/transport-node";
const nc = await connect({ servers: process.env.BENCH_NATS_URL, name: "bench-subscriber" });
let packets = 0, bytes = 0, msgs = 0, last = 0, expect = Infinity, done = false;
const report = () => {
  if (done || packets < expect) return;
  done = true;
  process.stdout.write(JSON.stringify({ done: true, packets, bytes, msgs, last }) + "\\n");
};
nc.subscribe("ovntap.v1.capture.>", { callback: (err, m) => {
  if (err) { process.stdout.write(JSON.stringify({ error: String(err) }) + "\\n"); return; }
  msgs++;
  packets += Number(m.headers?.get("Ovntap-Count") || 0);
  bytes += m.data.length;
  last = performance.timeOrigin + performance.now();
  report();
}});
await nc.flush();
process.stdout.write(JSON.stringify({ ready: true }) + "\\n");
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => {
  for (const line of d.split("\\n")) {
    const m = /^expect (\\d+)/.exec(line);
    if (m) { expect = Number(m[1]); report(); }
    if (line === "quit") { void nc.close().then(() => process.exit(0)); }
  }
});
`;

interface Received {
  packets: number;
  bytes: number;
  msgs: number;
  /** Wall time (ms since the epoch, sub-ms) of the last message. */
  last: number;
}

class Subscriber {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;
  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    this.#lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    child.stderr.on("data", (d: Buffer) => process.stderr.write(`subscriber: ${d.toString()}`));
    // A subscriber that is already gone does not fail the run on its way out.
    child.stdin.on("error", () => undefined);
  }
  static async start(url: string): Promise<Subscriber> {
    const child = spawn(process.execPath, ["--input-type=module", "-e", SUBSCRIBER], {
      cwd: findRepoRoot(),
      env: { ...process.env, BENCH_NATS_URL: url },
    });
    const s = new Subscriber(child);
    const first = await s.#next(30_000);
    if (!(first as { ready?: boolean }).ready)
      throw new BenchFailure(`subscriber did not start: ${JSON.stringify(first)}`);
    return s;
  }
  async #next(timeoutMs: number): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const line = await Promise.race([
        this.#lines.next(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new BenchFailure(`subscriber silent for ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
      if (line.done) throw new BenchFailure("subscriber exited");
      return JSON.parse(line.value) as unknown;
    } finally {
      clearTimeout(timer);
    }
  }
  /** Waits until `packets` have arrived. */
  async expect(packets: number, timeoutMs: number): Promise<Received> {
    this.#child.stdin.write(`expect ${packets}\n`);
    const r = (await this.#next(timeoutMs)) as Received & { done?: boolean; error?: string };
    if (!r.done) throw new BenchFailure(`subscriber: ${JSON.stringify(r)}`);
    return r;
  }
  stop(): void {
    this.#child.stdin.write("quit\n");
    setTimeout(() => this.#child.kill("SIGKILL"), 2_000).unref();
  }
}

const wallNow = (): number => performance.timeOrigin + performance.now();

/** What a phase child reports: when it started, what it published, its peak resident set. */
interface PhaseResult {
  t0: number;
  published: number;
  rssMb: number;
  detail: string;
}

/** Samples this process's resident set; `peak()` is the largest seen, with the heap/external split at that moment. */
function rssSampler(): { peak(): { mb: number; detail: string }; stop(): void } {
  let peak = 0;
  let detail = "";
  const sample = () => {
    // rss() alone reads one number; memoryUsage() walks the heap spaces too.
    const rss = process.memoryUsage.rss();
    if (rss > peak) {
      const u = process.memoryUsage();
      peak = rss;
      detail = `heap ${round1(u.heapTotal / 2 ** 20)} MiB, array buffers ${round1(u.arrayBuffers / 2 ** 20)} MiB`;
    }
  };
  sample();
  const timer = setInterval(sample, 10);
  return {
    peak: () => {
      sample();
      return { mb: peak / 2 ** 20, detail };
    },
    stop: () => clearInterval(timer),
  };
}

/** The baseline: batches.bin published as it is, same flow control, no decoding. */
async function natsRaw(url: string, dir: string): Promise<PhaseResult> {
  const nc = await connect({ servers: url, name: "bench-raw" });
  const rss = rssSampler();
  try {
    let wake: (() => void) | undefined;
    const publisher = new NatsPublisher({ nc, onWritable: () => wake?.() });
    const fd = openSync(join(dir, "batches.bin"), "r");
    const buf = Buffer.allocUnsafe(8 << 20);
    let pos = 0;
    let have = 0;
    let sent = 0;
    const t0 = wallNow();
    for (;;) {
      const n = readSync(fd, buf, have, buf.length - have, pos);
      pos += n;
      have += n;
      let p = 0;
      while (have - p >= 8) {
        const len = buf.readUInt32LE(p);
        const count = buf.readUInt32LE(p + 4);
        if (have - p < 8 + len) break;
        while (!publisher.canPublish()) await new Promise<void>((r) => (wake = r));
        const h = headers();
        h.set("Ovntap-Count", String(count));
        // A copy: nats.js keeps a reference until it packs its outbound buffer.
        publisher.publish(
          "ovntap.v1.capture.bench.raw.bench-node",
          Buffer.from(buf.subarray(p + 8, p + 8 + len)),
          h,
        );
        sent += count;
        p += 8 + len;
      }
      buf.copyWithin(0, p, have);
      have -= p;
      if (n === 0) {
        if (have > 0) throw new BenchFailure("batches.bin ends inside a batch");
        break;
      }
    }
    closeSync(fd);
    await publisher.flush();
    const peak = rss.peak();
    return { t0, published: sent, rssMb: peak.mb, detail: peak.detail };
  } finally {
    rss.stop();
    await nc.close();
  }
}

/** The measured run: file → pipeline → NATS. */
async function exporterRun(url: string, dir: string): Promise<PhaseResult> {
  const nc = await connect({ servers: url, name: "bench-exporter" });
  const rss = rssSampler();
  try {
    const publisher: NatsPublisher = new NatsPublisher({ nc, onWritable: () => pipeline.drain() });
    const pipeline: CapturePipeline = new CapturePipeline({
      node: NODE,
      publisher,
      logger,
      send: (subject, payload) => nc.publish(subject, payload),
    });
    pipeline.setBindings(BINDINGS);
    pipeline.start();
    const t0 = wallNow();
    const src = await new FileReplaySource({ path: join(dir, "in.pcap") }).run(pipeline);
    await pipeline.stop(60_000);
    const c = pipeline.counters();
    const published = c.mirrors.reduce((n, m) => n + m.published, 0);
    const dropped = c.drops.queue_full + c.drops.publish_error;
    const decapErrors = Object.values(c.decapErrors).reduce((a, b) => a + (b ?? 0), 0);
    if (published + dropped + decapErrors + c.unknown !== src.frames) {
      throw new BenchFailure(
        `accounting: ${src.frames} frames, ${published} published, ${dropped} dropped, ${decapErrors} not decapsulated, ${c.unknown} unknown`,
      );
    }
    if (published !== src.frames) {
      throw new BenchFailure(
        `${src.frames} frames read, ${published} published (${dropped} dropped, ${decapErrors} decap errors, ${c.unknown} unknown)`,
      );
    }
    const peak = rss.peak();
    return { t0, published, rssMb: peak.mb, detail: peak.detail };
  } finally {
    rss.stop();
    await nc.close();
  }
}

/** Runs a phase in a child process (its own heap and resident set) while `sub` counts what arrives. */
async function phase(
  name: "raw" | "exporter",
  url: string,
  dir: string,
): Promise<{ pps: number; mbps: number; seconds: number; rssMb: number; detail: string }> {
  const sub = await Subscriber.start(url);
  try {
    const child = spawnSync(
      process.execPath,
      [...process.execArgv, process.argv[1]!, "--phase", name, "--dir", dir, "--url", url],
      { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20 },
    );
    if (child.status !== 0) throw new BenchFailure(`${name} phase failed (exit ${child.status})`);
    const r = JSON.parse(child.stdout.trim().split("\n").pop() ?? "{}") as PhaseResult;
    const got = await sub.expect(r.published, 120_000);
    const seconds = (got.last - r.t0) / 1000;
    return {
      pps: got.packets / seconds,
      mbps: ((got.bytes - 16 * got.packets) * 8) / seconds / 1e6,
      seconds,
      rssMb: r.rssMb,
      detail: r.detail,
    };
  } finally {
    sub.stop();
  }
}

function tcpdumpCopy(dir: string): number {
  const t0 = now();
  const r = spawnSync("tcpdump", ["-r", join(dir, "in.pcap"), "-w", "/dev/null"], { encoding: "utf8" });
  const ms = now() - t0;
  if (r.error !== undefined || r.status !== 0) {
    throw new BenchFailure(
      `tcpdump -r failed (${r.error?.message ?? r.stderr.trim()}); install tcpdump (Debian package tcpdump)`,
    );
  }
  return PACKETS / (ms / 1000);
}

async function main(): Promise<Record<string, unknown>> {
  const dir = args.keep ?? mkdtempSync(join(tmpdir(), "ovntap-bench-exporter-"));
  let nats: NatsServer | undefined;
  try {
    progress(
      "generate",
      `${PACKETS} GRE / ERSPAN II / ERSPAN III packets of ${FLOWS} flows to ${MIRRORS.length} mirrors`,
    );
    const t = now();
    const gen = spawnSync(
      process.execPath,
      [...process.execArgv, process.argv[1]!, "--generate", dir, "--packets", String(PACKETS)],
      {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
        maxBuffer: 1 << 20,
      },
    );
    if (gen.status !== 0) throw new BenchFailure(`generator failed (exit ${gen.status})`);
    const info = JSON.parse(gen.stdout.trim().split("\n").pop() ?? "{}") as {
      published: number;
      batches: number;
      wireBytes: number;
    };
    if (info.published !== PACKETS)
      throw new BenchFailure(`generator's pipeline published ${info.published} of ${PACKETS}`);
    progress(
      "generate",
      `in.pcap ${round1(statSync(join(dir, "in.pcap")).size / 2 ** 20)} MiB (avg ${round1(info.wireBytes / PACKETS)} octets per transport frame), ${info.batches} batches, in ${round1((now() - t) / 1000)} s`,
    );

    nats = await startNatsServer({ jetstream: false });
    // Each run is a pair, the baseline then the exporter, back to back, so both see the same
    // load on this shared machine; the pair with the median ratio is reported.
    const pairs: { raw: Awaited<ReturnType<typeof phase>>; exporter: Awaited<ReturnType<typeof phase>> }[] =
      [];
    let peakRss = 0;
    for (let run = 1; run <= RUNS; run++) {
      const r = await phase("raw", nats.url, dir);
      progress(`nats_raw run ${run}`, `${Math.round(r.pps)} pps (${round1(r.seconds)} s)`);
      const e = await phase("exporter", nats.url, dir);
      progress(
        `exporter run ${run}`,
        `${Math.round(e.pps)} pps, ${Math.round(e.mbps)} Mbit/s (${round1(e.seconds)} s); peak rss ${round1(e.rssMb)} MiB (${e.detail}); ratio ${round2(e.pps / r.pps)}`,
      );
      peakRss = Math.max(peakRss, e.rssMb);
      pairs.push({ raw: r, exporter: e });
    }
    let tcpdump = 0;
    for (let run = 1; run <= RUNS; run++) tcpdump = Math.max(tcpdump, tcpdumpCopy(dir));
    progress("tcpdump -r in.pcap -w /dev/null", `${Math.round(tcpdump)} pps`);
    if (pairs.length === 0) throw new BenchFailure("no run");
    pairs.sort((a, b) => a.exporter.pps / a.raw.pps - b.exporter.pps / b.raw.pps);
    progress("ratios", pairs.map((p) => round2(p.exporter.pps / p.raw.pps)).join(" "));
    const median = pairs[(pairs.length - 1) >> 1]!;
    return {
      bench: "exporter",
      packets: PACKETS,
      pps: Math.round(median.exporter.pps),
      mbps: Math.round(median.exporter.mbps),
      nats_raw_pps: Math.round(median.raw.pps),
      ratio_vs_nats_raw: round2(median.exporter.pps / median.raw.pps),
      tcpdump_copy_pps: Math.round(tcpdump),
      rss_mb: Math.round(peakRss),
    };
  } finally {
    await nats?.stop();
    if (args.keep === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

if (args.generate !== undefined) {
  await generate(args.generate);
} else if (args.phase !== undefined) {
  const dir = args.dir ?? "";
  const url = args.url ?? "";
  const r = args.phase === "raw" ? await natsRaw(url, dir) : await exporterRun(url, dir);
  process.stdout.write(`${JSON.stringify(r)}\n`);
} else {
  let exitCode = 0;
  try {
    const result = await main();
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (err) {
    exitCode = 1;
    const message =
      err instanceof Error
        ? err instanceof BenchFailure
          ? err.message
          : (err.stack ?? err.message)
        : String(err);
    process.stderr.write(`✗ bench exporter failed: ${message}\n`);
  }
  process.exit(exitCode);
}
