/**
 * Packet capture for tests: tcpdump writes pcap to a pipe (it says "listening on" once
 * the socket is open, so a test knows when to send), tshark decodes it independently
 * of ovntap's own decoders.
 *
 *   const gre = await captureGre({
 *     netns: lab.env.LAB_SINK_NS, iface: "eth0", count: 3, timeoutMs: 5_000,
 *     traffic: () => lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP),
 *   });
 *   // gre[0] → { key: 77, greProto: 0x6558, inner: { src: "10.16.0.11", … }, … }
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir, removeDir, requireBinary, run, sleep } from "./proc.js";

export interface CaptureOptions {
  iface: string;
  /** Capture inside this network namespace; the root namespace when omitted. */
  netns?: string;
  /** BPF filter. */
  filter?: string;
  /** Stop after this many packets. */
  count?: number;
  /** Stop after this long, whatever was seen (default 10 s). */
  timeoutMs?: number;
  snaplen?: number;
}

export interface Capture {
  /** The pcap file (global header + records) once tcpdump ends: count reached, timeout, or stop(). */
  readonly pcap: Promise<Buffer>;
  /** Whether the capture ended (count reached or timed out). */
  readonly ended: boolean;
  /** Ends the capture now; resolves with what was captured. */
  stop(): Promise<Buffer>;
}

/** Starts tcpdump and resolves once it is capturing. */
export async function startCapture(opts: CaptureOptions): Promise<Capture> {
  const tcpdump = await requireBinary("tcpdump", "tcpdump");
  const args = [
    ...["-i", opts.iface, "-n", "-U", "--immediate-mode", "-w", "-"],
    // Debian's tcpdump drops to user `tcpdump` after opening the device; stay root so a
    // capture inside a namespace behaves the same as in the root one.
    ...["-Z", "root", "-s", String(opts.snaplen ?? 262_144)],
    ...(opts.count !== undefined ? ["-c", String(opts.count)] : []),
    ...(opts.filter ? [opts.filter] : []),
  ];
  const [cmd, argv] = opts.netns ? ["ip", ["netns", "exec", opts.netns, tcpdump, ...args]] : [tcpdump, args];
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  const chunks: Buffer[] = [];
  let stderr = "";
  let ended = false;
  child.stdout.on("data", (d: Buffer) => chunks.push(d));
  const exited = new Promise<Buffer>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      ended = true;
      clearTimeout(timer);
      const pcap = Buffer.concat(chunks);
      // Stopped by us (signal) or count reached (0): both are a complete capture.
      if (code === 0 || signal !== null || pcap.length >= 24) resolve(pcap);
      else reject(new Error(`tcpdump on ${opts.iface} exited with ${code}: ${stderr.trim()}`));
    });
  });
  const stop = async () => {
    if (!ended) child.kill("SIGINT");
    return exited;
  };
  const timer = setTimeout(() => void stop().catch(() => {}), opts.timeoutMs ?? 10_000);
  exited.catch(() => {
    /* surfaced through listening or pcap */
  });

  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      stderr += d.toString();
      // tcpdump prints this after pcap_activate and the filter are in place.
      if (stderr.includes("listening on")) {
        resolve();
      }
    };
    child.stderr.on("data", onData);
    exited.then(
      () => reject(new Error(`tcpdump on ${opts.iface} ended before capturing: ${stderr.trim()}`)),
      reject,
    );
  });
  return {
    pcap: exited,
    get ended() {
      return ended;
    },
    stop,
  };
}

/** One GRE packet (GRE with key, ERSPAN II or III), as tshark decodes it. */
export interface GrePacket {
  /** Seconds since the epoch. */
  time: number;
  /** Frame length on the wire. */
  length: number;
  outer: { src: string; dst: string };
  /** GRE protocol type: 0x6558 transparent Ethernet, 0x88be ERSPAN II, 0x22eb ERSPAN III. */
  greProto: number;
  /** GRE key, when the K flag is set. */
  key?: number;
  /** ERSPAN header: version 1 = type II, 2 = type III. */
  erspan?: { version: number; spanId: number };
  /** The mirrored frame. */
  inner?: { srcMac: string; dstMac: string; src?: string; dst?: string; ipProto?: number };
}

const FIELDS = [
  "frame.time_epoch",
  "frame.len",
  "ip.src",
  "ip.dst",
  "ip.proto",
  "gre.proto",
  "gre.key",
  "erspan.version",
  "erspan.spanid",
  "eth.src",
  "eth.dst",
] as const;

/** Decodes every GRE/ERSPAN packet of a pcap with tshark (`-T fields`). */
export async function decodeGre(pcap: Buffer): Promise<GrePacket[]> {
  if (pcap.length <= 24) return [];
  const tshark = await requireBinary("tshark", "tshark");
  // tshark reads a file or a FIFO, not the socket Node gives a child as stdin.
  const dir = makeTempDir("ovntap-capture-");
  const file = join(dir, "capture.pcap");
  let out: string;
  try {
    writeFileSync(file, pcap);
    const args = [
      "-r",
      file,
      "-n",
      "-T",
      "fields",
      "-E",
      "separator=/t",
      "-E",
      "occurrence=a",
      "-E",
      "aggregator=,",
    ];
    for (const f of FIELDS) args.push("-e", f);
    out = (await run(tshark, args)).stdout;
  } finally {
    removeDir(dir);
  }
  const packets: GrePacket[] = [];
  for (const line of out.split("\n")) {
    if (!line.trim()) continue;
    const col = line.split("\t");
    const at = (i: number) => (col[i] ?? "").split(",").filter(Boolean);
    const [time, len, src, dst, proto, greProto, key, erVer, erSpan, ethSrc, ethDst] = FIELDS.map((_, i) =>
      at(i),
    );
    if (!greProto?.length) continue; // not GRE (an ARP for the sink, an ICMP error…)
    const p: GrePacket = {
      time: Number(time?.[0]),
      length: Number(len?.[0]),
      outer: { src: src?.[0] ?? "", dst: dst?.[0] ?? "" },
      greProto: Number(greProto[0]),
    };
    if (key?.[0]) p.key = Number(key[0]);
    if (erVer?.[0]) p.erspan = { version: Number(erVer[0]), spanId: Number(erSpan?.[0] ?? 0) };
    // Occurrences are listed outer first: the inner frame's are the second ones.
    if (ethSrc?.[1] && ethDst?.[1]) {
      p.inner = { srcMac: ethSrc[1], dstMac: ethDst[1] };
      if (src?.[1]) p.inner.src = src[1];
      if (dst?.[1]) p.inner.dst = dst[1];
      if (proto?.[1]) p.inner.ipProto = Number(proto[1]);
    }
    packets.push(p);
  }
  return packets;
}

export interface CaptureGreOptions extends Omit<CaptureOptions, "filter"> {
  /** Default `ip proto 47` (GRE, which carries ERSPAN too). */
  filter?: string;
  /**
   * Called again and again (every `trafficIntervalMs`) while the capture runs, until
   * `count` packets were seen or the timeout: the traffic that should be mirrored.
   * Repeating it removes any race between the capture opening and the first packet.
   */
  traffic?: () => Promise<unknown>;
  trafficIntervalMs?: number;
}

/**
 * Captures GRE/ERSPAN packets and returns them decoded. Never throws for too few
 * packets (a test asserting that nothing arrives needs the empty list): compare the
 * length with what you expected.
 */
export async function captureGre(opts: CaptureGreOptions): Promise<GrePacket[]> {
  const cap = await startCapture({ ...opts, filter: opts.filter ?? "ip proto 47" });
  if (opts.traffic) {
    while (!cap.ended) {
      await opts.traffic();
      await Promise.race([cap.pcap.catch(() => undefined), sleep(opts.trafficIntervalMs ?? 100)]);
    }
  }
  return decodeGre(await cap.pcap);
}
