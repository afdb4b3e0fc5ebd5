/**
 * `npm run bench -- decap`: how fast `ovntap decap` strips GRE / ERSPAN from a capture file into
 * another, against tcpdump merely copying the same file.
 *
 *   npm run bench -- decap                                # 1 000 000 packets, best of 3 runs
 *   npm run bench -- decap --packets 2000000 --runs 5 --format pcapng --keep /tmp/x
 *
 * 1. `--packets` transport frames are written to a temp pcap with @ovntap/packet's builders: GRE
 *    with a key, ERSPAN II (what OVN sends) and ERSPAN III, over IPv4 (one tunnel in eight over
 *    IPv6), carrying lab-sized frames (ping 98 octets, TCP handshakes, ACKs, small and full-size
 *    segments, UDP, ARP) of 4096 flows.
 * 2. `pps`: `decapCapture` (the path behind `ovntap decap in.pcap -w out.pcap`) from opening the
 *    input to closing the output (a new file each run); every packet must come out, and a sample
 *    of the output is checked against `decapsulate`.
 * 3. `tcpdump_copy_pps`: `tcpdump -r in.pcap -w /dev/null` on the same file, timed.
 *
 * Each measurement runs `--runs` times, alternating, and the best is reported (this machine is
 * shared; the best run is the one least disturbed). Progress goes to stderr; the last line on
 * stdout is the result:
 *
 *   {"bench":"decap","packets":…,"pps":…,"tcpdump_copy_pps":…}
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  buildErspan2,
  buildErspan3,
  buildGre,
  buildTransportFrame,
  decapCapture,
  decapsulate,
  decodePcap,
  decodePcapng,
} from "@ovntap/packet";
import type { DecapStats } from "@ovntap/packet";
import { BenchFailure, now, progress, round1 } from "./_stats.js";
import { innerFrame, rng } from "./_traffic.js";

const { values: args } = parseArgs({
  options: {
    packets: { type: "string", default: "1000000" },
    runs: { type: "string", default: "3" },
    /** Output format of the decap runs. */
    format: { type: "string", default: "pcap" },
    /** Keep the temp dir (in.pcap, out.pcap) here instead of removing it. */
    keep: { type: "string" },
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
const FORMAT = args.format === "pcapng" ? "pcapng" : "pcap";
if (args.format !== FORMAT) {
  process.stderr.write(`✗ --format must be pcap or pcapng (got ${args.format})\n`);
  process.exit(2);
}
const FLOWS = 4096;
/** The flow of the i-th packet: a fixed scramble, so neighbours differ in size and kind. */
const flowOf = (i: number): number => (Math.imul(i, 0x9e3779b1) >>> 0) % FLOWS;

/** GRE key, ERSPAN II or ERSPAN III (a third each), IPv6 transport for one tunnel in eight. */
function transportFrame(f: number, inner: Buffer, seq: number): Buffer {
  const kind = f % 3;
  const gre =
    kind === 0
      ? buildGre({ key: 1 + (f % 4), inner })
      : kind === 1
        ? buildErspan2({ sessionId: 11 + (f % 4), index: 1, seq, inner })
        : buildErspan3({ sessionId: 21 + (f % 4), seq, hwId: 1, inner });
  const v6 = f % 8 === 7;
  return buildTransportFrame(
    v6 ? { src: "2001:db8::21", dst: "2001:db8::22" } : { src: "198.51.100.21", dst: "198.51.100.22" },
    gre,
  );
}

function generate(path: string): { frames: Buffer[]; bytes: number } {
  const r = rng(42);
  const frames: Buffer[] = [];
  for (let f = 0; f < FLOWS; f++) frames.push(transportFrame(f, innerFrame(f, r), f));
  const fd = openSync(path, "w");
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b23c4d, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16);
  header.writeUInt32LE(1, 20);
  writeSync(fd, header);
  const buf = Buffer.allocUnsafe(8 << 20);
  let used = 0;
  let bytes = 24;
  let sec = 1_700_000_000;
  let nsec = 0;
  for (let i = 0; i < PACKETS; i++) {
    const frame = frames[flowOf(i)]!;
    if (used + 16 + frame.length > buf.length) {
      writeSync(fd, buf, 0, used);
      used = 0;
    }
    nsec += 1000;
    if (nsec >= 1e9) {
      sec++;
      nsec -= 1e9;
    }
    buf.writeUInt32LE(sec, used);
    buf.writeUInt32LE(nsec, used + 4);
    buf.writeUInt32LE(frame.length, used + 8);
    buf.writeUInt32LE(frame.length, used + 12);
    frame.copy(buf, used + 16);
    used += 16 + frame.length;
    bytes += 16 + frame.length;
  }
  writeSync(fd, buf, 0, used);
  closeSync(fd);
  return { frames, bytes };
}

async function decapRun(input: string, output: string): Promise<{ pps: number; stats: DecapStats }> {
  // A new file each run, as `ovntap decap` usually writes: truncating the last run's 200 MB
  // (freeing its page cache) is not the decapsulation's cost.
  rmSync(output, { force: true });
  const t0 = now();
  const stats = await decapCapture(input, output, { format: FORMAT });
  const ms = now() - t0;
  if (stats.written !== PACKETS || stats.inputError !== undefined) {
    throw new BenchFailure(
      `decap wrote ${stats.written} of ${PACKETS} packets (failures ${JSON.stringify(stats.failures)}, input error ${JSON.stringify(stats.inputError)})`,
    );
  }
  return { pps: PACKETS / (ms / 1000), stats };
}

function tcpdumpCopy(input: string): number {
  const t0 = now();
  const r = spawnSync("tcpdump", ["-r", input, "-w", "/dev/null"], { encoding: "utf8" });
  const ms = now() - t0;
  if (r.error !== undefined || r.status !== 0) {
    throw new BenchFailure(
      `tcpdump -r failed (${r.error?.message ?? r.stderr.trim()}); install tcpdump (Debian package tcpdump)`,
    );
  }
  return PACKETS / (ms / 1000);
}

/** The first packets of the output are the mirrored frames `decapsulate` finds in the input's. */
function checkSample(input: string, output: string, frames: readonly Buffer[]): void {
  const n = Math.min(PACKETS, 2000);
  const head = Buffer.alloc(4 << 20);
  const fd = openSync(output, "r");
  const got = readSync(fd, head, 0, head.length, 0);
  closeSync(fd);
  const out = FORMAT === "pcap" ? decodePcap(head.subarray(0, got)) : decodePcapng(head.subarray(0, got));
  if (!out.ok) throw new BenchFailure(`the output is not a ${FORMAT} file: ${out.reason}`);
  const data = "records" in out ? out.records.map((r) => r.data) : out.packets.map((p) => p.data);
  for (let i = 0; i < Math.min(n, data.length); i++) {
    const d = decapsulate(frames[flowOf(i)]!);
    if (!d.ok || !d.inner.equals(data[i]!))
      throw new BenchFailure(`output packet ${i + 1} is not the mirrored frame`);
  }
  if (statSync(output).size === 0 || statSync(input).size === 0) throw new BenchFailure("empty file");
}

async function main(): Promise<Record<string, unknown>> {
  const dir = args.keep ?? mkdtempSync(join(tmpdir(), "ovntap-bench-decap-"));
  try {
    const input = join(dir, "in.pcap");
    const output = join(dir, `out.${FORMAT}`);
    progress("generate", `${PACKETS} GRE / ERSPAN II / ERSPAN III packets of ${FLOWS} flows`);
    const t = now();
    const { frames, bytes } = generate(input);
    progress("generate", `${round1(bytes / 2 ** 20)} MiB in ${round1((now() - t) / 1000)} s`);
    // Warm the page cache and the JIT once, unmeasured.
    tcpdumpCopy(input);
    await decapRun(input, output);
    let best = 0;
    let bestTcpdump = 0;
    let stats: DecapStats | undefined;
    for (let i = 0; i < RUNS; i++) {
      const d = await decapRun(input, output);
      stats = d.stats;
      const c = tcpdumpCopy(input);
      progress(`run ${i + 1}/${RUNS}`, `decap ${Math.round(d.pps)} pps, tcpdump copy ${Math.round(c)} pps`);
      best = Math.max(best, d.pps);
      bestTcpdump = Math.max(bestTcpdump, c);
    }
    checkSample(input, output, frames);
    progress(
      "decap",
      `${stats?.tunnels.gre} GRE, ${stats?.tunnels.erspan2} ERSPAN II, ${stats?.tunnels.erspan3} ERSPAN III → ${statSync(output).size} bytes of ${FORMAT}`,
    );
    return {
      bench: "decap",
      packets: PACKETS,
      pps: Math.round(best),
      tcpdump_copy_pps: Math.round(bestTcpdump),
    };
  } finally {
    if (args.keep === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

try {
  const result = await main();
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (err) {
  process.stderr.write(`✗ ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
