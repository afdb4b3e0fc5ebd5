/**
 * `ovntap capture` in-process against a real nats-server: a test publisher sends batches exactly as
 * the contract says (pcap records in the payload, `formatCaptureHeaders` headers) from one or more
 * nodes, and the files the CLI writes are read back with the packet library and with tshark and
 * tcpdump as independent readers. Covers --count (cut inside a batch), --duration, Ctrl-C, --filter,
 * -w - with and without a terminal, --pcapng with the spec from intake, and every loss the CLI must
 * report: exporter drops, sequence gaps, restarts, malformed batches, batches dropped because the
 * output stalled, and a subscription NATS refuses.
 */
import { execFile, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { captureSubject, formatCaptureHeaders } from "@ovntap/contracts";
import type { CaptureBatchHeader } from "@ovntap/contracts";
import {
  buildArpFrame,
  buildIcmpEchoFrame,
  buildTcpFrame,
  buildUdpFrame,
  decodePcap,
  decodePcapng,
  encodePcapRecord,
  TCP_SYN,
} from "@ovntap/packet";
import { connect, headers } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { startNatsServer, waitFor } from "@ovntap/lab";
import type { NatsServer } from "@ovntap/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { newStats, runCapture } from "./capture.js";
import type { BatchRecord, CaptureOutput } from "./capture.js";
import { runCli } from "./cli.js";
import type { CliIo, Output } from "./cli.js";
import { EXIT } from "./errors.js";
import { startFakeIntake } from "./testing/fake-intake.js";
import type { FakeIntake } from "./testing/fake-intake.js";

const exec = promisify(execFile);
let nats: NatsServer;
let nc: NatsConnection;
let dir: string;
let intake: FakeIntake | undefined;

beforeAll(async () => {
  for (const tool of ["tshark", "tcpdump"]) {
    if (spawnSync(tool, ["--version"], { stdio: "ignore" }).error !== undefined)
      throw new Error(`${tool} is not installed: apt-get install tshark tcpdump`);
  }
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  dir = mkdtempSync(join(tmpdir(), "ovntap-capture-int-"));
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  intake?.stop();
  intake = undefined;
});

/** Each test its own namespace, so nothing one publishes reaches another's capture. */
const ns = () => `t-${randomUUID().slice(0, 8)}`;
const file = (name: string) => join(dir, `${randomUUID().slice(0, 8)}-${name}`);

// ---------------------------------------------------------------------------------------------
// The publisher: batches as an exporter sends them

const T0 = 1_760_000_000; // seconds; each frame i gets T0 + i s and i µs
const tcp = (i: number) =>
  buildTcpFrame({
    src: "10.16.0.11",
    dst: "10.16.0.12",
    srcPort: 40000 + i,
    dstPort: 80,
    flags: TCP_SYN,
    seq: i,
  });

interface BatchSpec {
  readonly namespace: string;
  readonly mirror?: string;
  readonly node?: string;
  readonly sequence: number;
  readonly frames: readonly Buffer[];
  /** Index of the first frame, for its timestamp. */
  readonly first?: number;
  readonly drops?: number;
  readonly linkType?: number;
  /** Change the headers after they are formatted (to send malformed ones). */
  readonly edit?: (h: Record<string, string>) => void;
  /** Change the payload (to damage it). */
  readonly payload?: (p: Buffer) => Buffer;
}

function records(frames: readonly Buffer[], first = 0): Buffer {
  return Buffer.concat(
    frames.map((data, i) =>
      encodePcapRecord({ seconds: T0 + first + i, nanos: (first + i) * 1000 + 7, data }),
    ),
  );
}

async function publish(b: BatchSpec): Promise<void> {
  const node = b.node ?? "node-1";
  const first = b.first ?? 0;
  const header: CaptureBatchHeader = {
    namespace: b.namespace,
    mirror: b.mirror ?? "web",
    node,
    linkType: b.linkType ?? 1,
    snaplen: 65535,
    count: b.frames.length,
    firstNs: `${T0 + first}000000000`,
    lastNs: `${T0 + first + b.frames.length - 1}000000000`,
    drops: b.drops ?? 0,
    sequence: b.sequence,
    encap: "gre",
    key: 7,
  };
  const h = formatCaptureHeaders(header);
  b.edit?.(h);
  const hdrs = headers();
  for (const [k, v] of Object.entries(h)) hdrs.set(k, v);
  const payload = records(b.frames, first);
  nc.publish(captureSubject(b.namespace, b.mirror ?? "web", node), b.payload ? b.payload(payload) : payload, {
    headers: hdrs,
  });
  await nc.flush();
}

// ---------------------------------------------------------------------------------------------
// Running the CLI

interface Io {
  readonly io: Pick<CliIo, "stdout" | "stderr">;
  out(): string;
  bytes(): Buffer;
  err(): string;
}

/** stdout as a real Writable (bytes and text), stderr as text; a terminal when asked. */
function stdio(opts: { tty?: boolean; stdout?: Writable } = {}): Io {
  const chunks: Buffer[] = [];
  let err = "";
  const stdout =
    opts.stdout ??
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(Buffer.from(chunk));
        cb();
      },
    });
  const stderr: Output = {
    write: (s: string | Uint8Array) => (err += typeof s === "string" ? s : Buffer.from(s).toString()),
    ...(opts.tty ? { isTTY: true } : {}),
  };
  return {
    io: { stdout, stderr },
    out: () => Buffer.concat(chunks).toString(),
    bytes: () => Buffer.concat(chunks),
    err: () => err,
  };
}

/** Starts `ovntap capture …` and resolves once it is subscribed (its "capturing" line). */
async function startCapture(argv: string[], extra: Partial<CliIo> & { io?: Io } = {}) {
  const io = extra.io ?? stdio();
  const code = runCli(["capture", ...argv], {
    ...io.io,
    env: { NATS_URL: nats.url, OVNTAP_PRINCIPAL: "alice" },
    cwd: dir,
    ...extra,
  });
  let ended = false;
  void code.finally(() => (ended = true));
  await waitFor(() => io.err().includes("capturing") || ended, {
    what: "the capture to subscribe",
    timeoutMs: 20_000,
    intervalMs: 10,
  });
  return { io, code };
}

async function tsharkFields(path: string, fields: readonly string[]): Promise<string[][]> {
  const { stdout } = await exec("tshark", [
    "-n",
    "-r",
    path,
    "-T",
    "fields",
    "-E",
    "separator=|",
    ...fields.flatMap((f) => ["-e", f]),
  ]);
  return stdout
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.split("|"));
}

// ---------------------------------------------------------------------------------------------

describe("ovntap capture -w FILE", () => {
  it("--count N writes exactly N packets, the last batch cut; tshark and tcpdump read the file", async () => {
    const n = ns();
    const path = file("count.pcap");
    const frames = Array.from({ length: 12 }, (_, i) => tcp(i));
    const { io, code } = await startCapture(["web", "-n", n, "-w", path, "--count", "10"]);
    for (let b = 0; b < 3; b++)
      await publish({ namespace: n, sequence: b, frames: frames.slice(b * 4, b * 4 + 4), first: b * 4 });
    expect(await code).toBe(EXIT.OK);

    const pcap = decodePcap(readFileSync(path));
    if (!pcap.ok) throw new Error(pcap.reason);
    expect(pcap.error).toBeUndefined();
    expect(pcap.header).toMatchObject({ byteOrder: "le", precision: "ns", linkType: 1 });
    expect(pcap.records.map((r) => Buffer.from(r.data))).toEqual(frames.slice(0, 10));
    expect(pcap.records.map((r) => [r.seconds, r.nanos])).toEqual(
      frames.slice(0, 10).map((_, i) => [T0 + i, i * 1000 + 7]),
    );

    const rows = await tsharkFields(path, ["ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "frame.len"]);
    expect(rows).toEqual(
      frames
        .slice(0, 10)
        .map((f, i) => ["10.16.0.11", "10.16.0.12", String(40000 + i), "80", String(f.length)]),
    );
    const { stdout } = await exec("tcpdump", ["-n", "-r", path]);
    expect(stdout.trim().split("\n")).toHaveLength(10);

    expect(io.err()).toMatch(
      /10 packets captured \(\d+ bytes\) from 1 node; nothing lost \(stopped: 10 packets reached\)/,
    );
  });

  it("--duration ends an idle capture with a valid, empty pcap", async () => {
    const path = file("idle.pcap");
    const { io, code } = await startCapture(["web", "-n", ns(), "-w", path, "--duration", "300ms"]);
    expect(await code).toBe(EXIT.OK);
    const pcap = decodePcap(readFileSync(path));
    expect(pcap).toMatchObject({
      ok: true,
      records: [],
      error: undefined,
      header: { linkType: 1, precision: "ns" },
    });
    expect(await tsharkFields(path, ["frame.number"])).toEqual([]);
    expect(io.err()).toMatch(/0 packets captured .*stopped: 0\.3s elapsed/);
  });

  it("Ctrl-C ends the capture cleanly: every packet so far in a valid file", async () => {
    const n = ns();
    const path = file("interrupt.pcap");
    const abort = new AbortController();
    const { io, code } = await startCapture(["web", "-n", n, "-w", path], { signal: abort.signal });
    const frames = Array.from({ length: 6 }, (_, i) => tcp(i));
    await publish({ namespace: n, sequence: 0, frames: frames.slice(0, 3) });
    await publish({ namespace: n, sequence: 1, frames: frames.slice(3), first: 3 });
    // Each batch is flushed to the file when written: wait for both, then interrupt.
    const size = 24 + frames.reduce((s, f) => s + 16 + f.length, 0);
    await waitFor(() => statSync(path).size >= size, { what: "both batches in the file", timeoutMs: 10_000 });
    abort.abort();
    expect(await code).toBe(EXIT.OK);
    const pcap = decodePcap(readFileSync(path));
    if (!pcap.ok) throw new Error(pcap.reason);
    expect(pcap.records.map((r) => Buffer.from(r.data))).toEqual(frames);
    expect((await tsharkFields(path, ["tcp.srcport"])).flat()).toEqual(
      frames.map((_, i) => String(40000 + i)),
    );
    expect(io.err()).toMatch(/6 packets captured .*stopped: interrupted/);
  });

  it("--filter keeps the matching frames only and counts the rest", async () => {
    const n = ns();
    const path = file("filter.pcap");
    const mixed = [
      tcp(0),
      buildUdpFrame({ src: "10.16.0.11", dst: "10.16.0.12", srcPort: 5353, dstPort: 53 }),
      buildIcmpEchoFrame({ src: "10.16.0.11", dst: "10.16.0.12", id: 1, seq: 1 }),
      buildArpFrame({ senderMac: "00:00:00:00:00:01", senderIp: "10.16.0.11", targetIp: "10.16.0.12" }),
      buildTcpFrame({ src: "10.16.0.12", dst: "10.16.0.11", srcPort: 22, dstPort: 50000 }),
      tcp(1),
    ];
    const { io, code } = await startCapture([
      "web",
      ...["-n", n, "-w", path, "--count", "3"],
      ...["--filter", "tcp dst port 80 or arp"],
    ]);
    await publish({ namespace: n, sequence: 0, frames: mixed });
    expect(await code).toBe(EXIT.OK);
    const pcap = decodePcap(readFileSync(path));
    if (!pcap.ok) throw new Error(pcap.reason);
    expect(pcap.records.map((r) => Buffer.from(r.data))).toEqual([mixed[0], mixed[3], mixed[5]]);
    // tcpdump applies the same expression to the written file and keeps all of it.
    const { stdout } = await exec("tcpdump", ["-n", "-r", path, "tcp dst port 80 or arp"]);
    expect(stdout.trim().split("\n")).toHaveLength(3);
    expect(io.err()).toMatch(/3 packets captured .*3 filtered out/);
  });

  it("a file that cannot be created fails with exit 1 before subscribing", async () => {
    const io = stdio();
    const code = await runCli(["capture", "web", "-n", ns(), "-w", join(dir, "no-such-dir", "x.pcap")], {
      ...io.io,
      env: { NATS_URL: nats.url },
      cwd: dir,
    });
    expect(code).toBe(EXIT.FAILED);
    expect(io.err()).toMatch(/ovntap capture: cannot write .*x\.pcap: .*ENOENT/);
  });
});

describe("ovntap capture: printing and standard output", () => {
  it("without -w prints one tcpdump-style line per packet", async () => {
    const n = ns();
    const { io, code } = await startCapture(["web", "-n", n, "--count", "2"]);
    await publish({
      namespace: n,
      sequence: 0,
      frames: [tcp(0), buildIcmpEchoFrame({ src: "10.16.0.11", dst: "10.16.0.12", id: 5, seq: 9 })],
    });
    expect(await code).toBe(EXIT.OK);
    const lines = io.out().trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^\d\d:\d\d:\d\d\.000000 IP 10\.16\.0\.11\.40000 > 10\.16\.0\.12\.80: Flags \[S\], seq 0, win 65535, length 0$/,
    );
    expect(lines[1]).toMatch(
      /^\d\d:\d\d:\d\d\.000001 IP 10\.16\.0\.11 > 10\.16\.0\.12: ICMP echo request, id 5, seq 9, length 64$/,
    );
  });

  it("-w - writes a pcap to stdout that tshark reads, and only a summary line to a stderr that is not a terminal", async () => {
    const n = ns();
    const frames = Array.from({ length: 5 }, (_, i) => tcp(i));
    const { io, code } = await startCapture(["web", "-n", n, "-w", "-", "--count", "5"]);
    await publish({ namespace: n, sequence: 0, frames });
    expect(await code).toBe(EXIT.OK);
    const pcap = decodePcap(io.bytes());
    if (!pcap.ok) throw new Error(pcap.reason);
    expect(pcap.records.map((r) => Buffer.from(r.data))).toEqual(frames);
    const path = file("stdout.pcap");
    writeFileSync(path, io.bytes());
    expect(await tsharkFields(path, ["tcp.srcport"])).toHaveLength(5);
    expect(io.err()).not.toContain("\r");
    expect(io.err().trimEnd().split("\n").at(-1)).toMatch(/^ovntap capture: 5 packets captured/);
  });

  it("-w - with a terminal on stderr draws a live packets/bytes/drops counter", async () => {
    const n = ns();
    const io = stdio({ tty: true });
    const { code } = await startCapture(["web", "-n", n, "-w", "-", "--count", "4"], { io });
    await publish({ namespace: n, sequence: 0, frames: [tcp(0), tcp(1)], drops: 3 });
    await publish({ namespace: n, sequence: 1, frames: [tcp(2), tcp(3)], first: 2 });
    expect(await code).toBe(EXIT.OK);
    expect(io.err()).toContain("\r\x1b[K0 packets, 0 bytes, 0 dropped, 0 batches lost");
    // The closing summary replaces the counter line.
    expect(io.err()).toContain("\r\x1b[Kovntap capture: 4 packets captured");
    expect(io.err()).toMatch(/4 packets captured .*3 dropped by the exporters/);
    expect(decodePcap(io.bytes())).toMatchObject({ ok: true, records: { length: 4 } });
  });
});

describe("ovntap capture --pcapng", () => {
  it("writes one interface per mirror: if_name NS/MIRROR, the spec from intake, a comment; packets from every node", async () => {
    const n = ns();
    intake = startFakeIntake(nc);
    const created = await runCli(
      [
        "create",
        "web",
        "-n",
        n,
        "--pod",
        "web-0",
        "--direction",
        "egress",
        "--gre-sink",
        "198.51.100.9",
        "--key",
        "7",
      ],
      { ...stdio().io, env: { NATS_URL: nats.url, OVNTAP_PRINCIPAL: "alice" }, cwd: dir },
    );
    expect(created).toBe(EXIT.OK);
    const path = file("web.pcapng");
    const { code } = await startCapture(["web", "-n", n, "-w", path, "--pcapng", "--count", "4"]);
    await publish({ namespace: n, node: "node-1", sequence: 0, frames: [tcp(0), tcp(1)] });
    await publish({
      namespace: n,
      node: "ip-10-0-0-1.ec2.internal",
      sequence: 0,
      frames: [tcp(2), tcp(3)],
      first: 2,
    });
    expect(await code).toBe(EXIT.OK);

    const png = decodePcapng(readFileSync(path));
    if (!png.ok) throw new Error(png.reason);
    expect(png.error).toBeUndefined();
    expect(png.interfaces).toHaveLength(1);
    const iface = png.interfaces[0]!;
    expect(iface.name).toBe(`${n}/web`);
    expect(JSON.parse(iface.description ?? "null")).toEqual(intake.mirrors.get(`${n}/web`)?.mirror.spec);
    expect(iface.comments[0]).toMatch(
      new RegExp(`^ovntap mirror ${n}/web generation 1, egress of pods, gre to 198\\.51\\.100\\.9 key 7`),
    );
    expect(png.packets.map((p) => Buffer.from(p.data))).toEqual([0, 1, 2, 3].map(tcp));
    expect(png.packets.map((p) => p.nanos)).toEqual([7, 1007, 2007, 3007]);

    const rows = await tsharkFields(path, [
      "frame.interface_name",
      "frame.interface_description",
      "tcp.srcport",
    ]);
    expect(rows).toHaveLength(4);
    for (const [name, description] of rows) {
      expect(name).toBe(`${n}/web`);
      expect(JSON.parse(description!)).toMatchObject({ name: "web", namespace: n, direction: "egress" });
    }
  });

  it("says in the interface comment when the spec could not be read", async () => {
    const n = ns();
    const path = file("nospec.pcapng");
    const { code } = await startCapture([
      "web",
      "-n",
      n,
      "-w",
      path,
      "--pcapng",
      "--count",
      "1",
      "--request-timeout",
      "2s",
    ]);
    await publish({ namespace: n, sequence: 0, frames: [tcp(0)] });
    expect(await code).toBe(EXIT.OK);
    const png = decodePcapng(readFileSync(path));
    if (!png.ok) throw new Error(png.reason);
    expect(png.interfaces[0]).toMatchObject({ name: `${n}/web`, description: undefined });
    expect(png.interfaces[0]!.comments[0]).toMatch(/its spec could not be read: no intake is answering/);
    expect(png.packets).toHaveLength(1);
  });
});

describe("ovntap capture: losses are reported, never silent", () => {
  it("exporter drops, sequence gaps, restarts and malformed batches: announced and summed up", async () => {
    const n = ns();
    const path = file("losses.pcap");
    const f = (i: number) => [tcp(i)];
    // 1 + 1 + 1 + 1 + 1 + 1 (cut short: its first record) = 6 packets written.
    const { io, code } = await startCapture(["web", "-n", n, "-w", path, "--count", "6"]);
    await publish({ namespace: n, node: "node-a", sequence: 0, frames: f(0) });
    await publish({ namespace: n, node: "node-a", sequence: 1, frames: f(1), drops: 5 });
    await publish({ namespace: n, node: "node-a", sequence: 4, frames: f(2) }); // 2 and 3 lost
    await publish({ namespace: n, node: "node-b", sequence: 7, frames: f(3) }); // first seen: no gap
    await publish({ namespace: n, node: "node-a", sequence: 0, frames: f(4) }); // restarted
    await publish({
      namespace: n,
      node: "node-a",
      sequence: 1,
      frames: f(5),
      edit: (h) => delete h["Ovntap-Count"],
    });
    await publish({
      namespace: n,
      node: "node-a",
      sequence: 1,
      frames: f(6),
      edit: (h) => (h["Ovntap-Mirror"] = "db"),
    });
    await publish({
      namespace: n,
      node: "node-b",
      sequence: 8,
      frames: [tcp(7), tcp(8)],
      payload: (p) => p.subarray(0, p.length - 5),
    });
    expect(await code).toBe(EXIT.OK);

    const err = io.err();
    expect(err).toContain("node node-a: the exporter dropped 5 packets before batch 1");
    expect(err).toContain("node node-a: 2 batches lost in transit (sequence 1 → 4)");
    expect(err).toContain("node node-a: the exporter restarted (batch 0 after 4)");
    expect(err).toMatch(/refused a batch on ovntap\.v1\.capture\.\S+\.web\.node-a: .*count/);
    expect(err).toMatch(/refused a batch on .*: its headers name \S+\/db, not \S+\/web/);
    expect(err).toContain("node node-b: batch 8 is damaged (record 2 says");
    expect(err).not.toMatch(/node-b: .*lost in transit/);
    expect(err).toMatch(
      /6 packets captured \(\d+ bytes\) from 2 nodes; 5 dropped by the exporters, 2 batches lost in transit \(packets unknown\), 3 malformed batches \(refused or cut short\), 1 exporter restart \(stopped: 6 packets reached\)/,
    );
    const pcap = decodePcap(readFileSync(path));
    if (!pcap.ok) throw new Error(pcap.reason);
    expect(pcap.records.map((r) => Buffer.from(r.data))).toEqual([0, 1, 2, 3, 4, 7].map(tcp));
  });

  it("a stalled output: batches are dropped here and counted, and their gap is not a transit loss", async () => {
    const n = ns();
    let release: () => void = () => {};
    const released = new Promise<void>((r) => (release = r));
    const written: BatchRecord[] = [];
    const output: CaptureOutput = {
      kind: "pcap",
      async write(_h, records) {
        await released;
        written.push(...records);
        return records.length;
      },
      close: () => Promise.resolve(),
    };
    const stats = newStats();
    const notices: string[] = [];
    let subscribed!: () => void;
    const ready = new Promise<void>((r) => (subscribed = r));
    const done = runCapture(nc, {
      namespace: n,
      mirror: "web",
      output,
      count: 6,
      maxPendingBatches: 3,
      stats,
      notice: (l) => notices.push(l),
      onSubscribed: () => subscribed(),
    });
    await ready;
    // Batch 0 is taken and blocks in the output; 1-3 wait; 4-9 find the queue full.
    for (let s = 0; s < 10; s++)
      await publish({ namespace: n, sequence: s, frames: [tcp(s)], first: s, drops: s === 6 ? 2 : 0 });
    await waitFor(() => stats.localDroppedBatches === 6, {
      what: "6 batches dropped here",
      timeoutMs: 10_000,
    });
    release();
    await waitFor(() => written.length === 4, { what: "the 4 queued batches written", timeoutMs: 10_000 });
    await publish({ namespace: n, sequence: 10, frames: [tcp(10)], first: 10 }); // after 4-9 dropped here
    await publish({ namespace: n, sequence: 12, frames: [tcp(12)], first: 12 }); // 11 lost in transit
    const { stats: final, stoppedBy } = await done;
    expect(stoppedBy).toBe("count");
    expect(written.map((r) => r.data)).toEqual([0, 1, 2, 3, 10, 12].map(tcp));
    expect(final).toMatchObject({
      packets: 6,
      localDroppedBatches: 6,
      localDroppedPackets: 6,
      drops: 2,
      lostBatches: 1,
    });
    expect(notices[0]).toMatch(
      /the output does not keep up: 3 batches waiting; dropped 1 batch \(1 packet\) here so far/,
    );
    expect(notices.filter((l) => l.includes("lost in transit"))).toEqual([
      "node node-1: 1 batch lost in transit (sequence 10 → 12); their packets are not in the capture",
    ]);
  });

  it("a subscription NATS refuses fails with exit 1, naming the subject", async () => {
    const locked = await startNatsServer({
      config: `authorization { users = [ { user: cli, password: secret, permissions: { subscribe: { deny: ["ovntap.v1.capture.>"] } } } ] }`,
    });
    try {
      const io = stdio();
      const code = await runCli(["capture", "web", "-n", "shop", "-w", file("denied.pcap")], {
        ...io.io,
        env: { NATS_URL: `nats://cli:secret@127.0.0.1:${locked.port}` },
        cwd: dir,
      });
      expect(code).toBe(EXIT.FAILED);
      expect(io.err()).toMatch(
        /NATS does not allow this user to subscribe to ovntap\.v1\.capture\.shop\.web\.\*/,
      );
    } finally {
      await locked.stop();
    }
  });

  it("NATS unreachable: exit 3", async () => {
    const io = stdio();
    const code = await runCli(["capture", "web", "-n", "shop", "--nats", "nats://127.0.0.1:1"], {
      ...io.io,
      env: {},
      cwd: dir,
    });
    expect(code).toBe(EXIT.UNAVAILABLE);
    expect(io.err()).toMatch(/cannot reach NATS/);
  });
});
