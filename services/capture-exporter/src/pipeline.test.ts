/**
 * The pipeline on its own: frames in, batches out (through a publisher that keeps what it gets).
 * Each test asserts the published bytes and headers: attribution by key, thresholds, snaplen,
 * filters, dedup, unknown keys, drops and their accounting, flows and stats.
 */
import {
  captureSubject,
  FlowSummary,
  MirrorStats,
  parseCaptureHeaders,
  unknownCaptureSubject,
} from "@ovntap/contracts";
import type { CaptureBatchHeader } from "@ovntap/contracts";
import { waitFor } from "@ovntap/lab";
import { buildTcpFrame, LINKTYPE_ETHERNET } from "@ovntap/packet";
import { createLogger } from "@ovntap/runtime";
import { describe, expect, it } from "vitest";
import type { MirrorBinding } from "./keymap.js";
import { CapturePipeline } from "./pipeline.js";
import type { DropReport, PipelineOptions } from "./pipeline.js";
import { expectedRecords, innerFrames, RecordingPublisher, SINK, tunnelFrame } from "./testing/frames.js";
import type { Published, Tunnel } from "./testing/frames.js";

const logger = createLogger({ name: "pipeline-test", level: "silent" });
const NODE = "node-1.example";

function binding(
  name: string,
  tunnels: MirrorBinding["tunnels"],
  extra: Partial<MirrorBinding> = {},
): MirrorBinding {
  return { namespace: "shop", name, generation: 2, requestId: `req-${name}`, sink: SINK, tunnels, ...extra };
}

function make(opts: Partial<PipelineOptions> = {}): { p: CapturePipeline; pub: RecordingPublisher } {
  const pub = new RecordingPublisher();
  const p = new CapturePipeline({
    node: NODE,
    publisher: pub,
    logger,
    flowIntervalMs: 0,
    statsIntervalMs: 0,
    ...opts,
  });
  return { p, pub };
}

/** Ingests `frame` from the middle of a scratch buffer that is overwritten afterwards, as libpcap's is. */
const scratch = Buffer.alloc(70000);
function feed(p: CapturePipeline, frame: Buffer, sec: number, nsec: number): void {
  frame.copy(scratch, 100);
  p.ingest(scratch, 100, 100 + frame.length, frame.length, sec, nsec);
  scratch.fill(0xa5, 100, 100 + frame.length);
}

function header(m: Published): CaptureBatchHeader {
  const r = parseCaptureHeaders(m.headers);
  if (!r.ok) throw new Error(`bad headers ${JSON.stringify(m.headers)}: ${r.error.message}`);
  return r.value;
}

const gre7: Tunnel = { type: "gre", key: 7 };

describe("CapturePipeline", () => {
  it("publishes each mirror's decapsulated frames as pcap records with the contract headers", async () => {
    const { p, pub } = make({ batch: { maxPackets: 3 } });
    p.setBindings([
      binding("web", [{ type: "gre", index: 7 }]),
      binding("db", [{ type: "erspan", index: 9 }]),
    ]);
    const web = innerFrames(7);
    const db = innerFrames(2, 100);
    web.forEach((f, i) => feed(p, tunnelFrame(gre7, f), 1000, i));
    db.forEach((f, i) => feed(p, tunnelFrame({ type: "erspan2", session: 9 }, f), 1001, i));
    await p.stop();

    const webBatches = pub.published.filter((m) => m.subject === captureSubject("shop", "web", NODE));
    expect(webBatches.map((m) => header(m).count)).toEqual([3, 3, 1]);
    expect(Buffer.concat(webBatches.map((m) => m.payload))).toEqual(
      expectedRecords(web.map((inner, i) => ({ inner, sec: 1000, nsec: i }))),
    );
    expect(webBatches.map((m) => header(m))).toEqual([
      {
        namespace: "shop",
        mirror: "web",
        node: NODE,
        linkType: 1,
        snaplen: 65535,
        count: 3,
        firstNs: "1000000000000",
        lastNs: "1000000000002",
        drops: 0,
        sequence: 0,
        encap: "gre",
        key: 7,
      },
      expect.objectContaining({ sequence: 1, firstNs: "1000000000003", lastNs: "1000000000005" }),
      expect.objectContaining({ sequence: 2, count: 1 }),
    ]);
    const dbBatches = pub.published.filter((m) => m.subject === captureSubject("shop", "db", NODE));
    expect(dbBatches.map((m) => [header(m).encap, header(m).key, header(m).count])).toEqual([
      ["erspan2", 9, 2],
    ]);
    expect(dbBatches[0]!.payload).toEqual(
      expectedRecords(db.map((inner, i) => ({ inner, sec: 1001, nsec: i }))),
    );
  });

  it("seals at maxBytes before a frame would not fit, and after maxDelayMs", async () => {
    const frames = innerFrames(4).map((f) => Buffer.concat([f, Buffer.alloc(200 - f.length)]));
    const { p, pub } = make({ batch: { maxBytes: 2 * 216 + 100, maxPackets: 1000, maxDelayMs: 20 } });
    p.setBindings([binding("web", [{ type: "gre", index: 7 }])]);
    p.start();
    frames.forEach((f, i) => feed(p, tunnelFrame(gre7, f), 5, i));
    // Two records fit in maxBytes; the third starts a batch, the fourth joins it.
    expect(pub.published.map((m) => header(m).count)).toEqual([2]);
    await waitFor(() => pub.published.length === 2, { what: "the batch sealed by age", timeoutMs: 10_000 });
    expect(header(pub.published[1]!).count).toBe(2);
    await p.stop();
  });

  it("cuts frames to the mirror's snaplen and keeps their wire length", async () => {
    const { p, pub } = make();
    p.setBindings([binding("cut", [{ type: "erspan", index: 3 }], { snaplen: 40 })]);
    const frames = innerFrames(3);
    frames.forEach((f, i) => feed(p, tunnelFrame({ type: "erspan3", session: 3 }, f), 9, i));
    await p.stop();
    expect(pub.published).toHaveLength(1);
    expect(pub.published[0]!.payload).toEqual(
      expectedRecords(
        frames.map((inner, i) => ({ inner, sec: 9, nsec: i })),
        40,
      ),
    );
    expect(header(pub.published[0]!)).toMatchObject({ snaplen: 40, encap: "erspan3", key: 3 });
  });

  it("applies the mirror's filter and counts what it left out", async () => {
    const { p, pub } = make();
    p.setBindings([binding("tcp-only", [{ type: "gre", index: 7 }], { filter: { protocols: ["tcp"] } })]);
    const frames = innerFrames(10);
    frames.forEach((f, i) => feed(p, tunnelFrame(gre7, f), 1, i));
    await p.stop();
    const kept = frames.map((inner, i) => ({ inner, sec: 1, nsec: i })).filter((_, i) => i % 5 === 0);
    expect(Buffer.concat(pub.published.map((m) => m.payload))).toEqual(expectedRecords(kept));
    const c = p.counters().mirrors.find((m) => m.mirror === "shop/tcp-only")!;
    expect([c.packets, c.filtered, c.published]).toEqual([10, 8, 2]);
  });

  it("drops a second copy within the dedup window (a both mirror's two tunnels)", async () => {
    const { p, pub } = make({ dedupWindowMs: 50 });
    p.setBindings([
      binding("both", [
        { type: "gre", index: 7 },
        { type: "gre", index: 8 },
      ]),
    ]);
    const out = buildTcpFrame({
      src: "10.16.0.11",
      dst: "10.16.0.12",
      srcPort: 1,
      dstPort: 2,
      seq: 1,
      ack: 0,
      flags: 2,
      ttl: 64,
    });
    const hop = buildTcpFrame({
      src: "10.16.0.11",
      dst: "10.16.0.12",
      srcPort: 1,
      dstPort: 2,
      seq: 1,
      ack: 0,
      flags: 2,
      ttl: 63,
    });
    feed(p, tunnelFrame(gre7, out), 1, 0);
    feed(p, tunnelFrame({ type: "gre", key: 8 }, hop), 1, 1000);
    feed(p, tunnelFrame({ type: "gre", key: 8 }, hop), 1, 900_000_000); // after the window: kept
    await p.stop();
    const counts = pub.published.map((m) => [header(m).key, header(m).count, header(m).sequence]);
    expect(counts).toEqual([
      [7, 1, 0],
      [8, 1, 1],
    ]);
    expect(p.counters().mirrors.find((m) => m.mirror === "shop/both")!.duplicates).toBe(1);
  });

  it("sends frames of unknown keys to _unknown, one stream per key, the key in the headers", async () => {
    const { p, pub } = make();
    p.setBindings([binding("web", [{ type: "gre", index: 7 }])]);
    const f = innerFrames(3);
    feed(p, tunnelFrame({ type: "gre", key: 99 }, f[0]!), 1, 0);
    feed(p, tunnelFrame({ type: "gre" }, f[1]!), 1, 1);
    feed(p, tunnelFrame(gre7, f[2]!, "203.0.113.9"), 1, 2); // the right key towards another sink
    await p.stop();
    expect(pub.published.every((m) => m.subject === unknownCaptureSubject(NODE))).toBe(true);
    const hs = pub.published.map((m) => header(m));
    expect(hs.map((h) => [h.namespace, h.mirror, h.encap, h.key, h.count])).toEqual([
      [undefined, undefined, "gre", 99, 1],
      [undefined, undefined, "gre", undefined, 1],
      [undefined, undefined, "gre", 7, 1],
    ]);
    expect(p.counters().unknown).toBe(3);
  });

  it("drops what does not fit the queue, counts it, reports it, and says so in the next batch", async () => {
    const reports: DropReport[] = [];
    const { p, pub } = make({
      batch: { maxPackets: 2, maxBytes: 4096 },
      queueMaxBytes: 3 * 4096,
      dropReportIntervalMs: 1,
      onDrops: (r) => reports.push(r),
    });
    p.setBindings([binding("web", [{ type: "gre", index: 7 }])]);
    p.start();
    pub.open = false; // the connection is backed up
    const frames = innerFrames(20);
    frames.forEach((f, i) => feed(p, tunnelFrame(gre7, f), 2, i));
    // 10 batches of ~150 octets each: the queue (12 KiB) takes them all. Fill it with big frames.
    const big = Buffer.concat([innerFrames(1)[0]!, Buffer.alloc(1900)]);
    for (let i = 0; i < 30; i++) feed(p, tunnelFrame(gre7, big), 3, i);
    const dropped = p.counters().drops.queue_full;
    expect(dropped).toBeGreaterThan(0);
    await waitFor(() => reports.length > 0, { what: "a drop report", timeoutMs: 10_000 });
    expect(reports[0]).toMatchObject({
      drops: dropped,
      binding: { namespace: "shop", name: "web", generation: 2 },
    });
    pub.open = true;
    p.drain();
    feed(p, tunnelFrame(gre7, frames[0]!), 4, 0);
    await p.stop();
    const hs = pub.published.map((m) => header(m));
    // Queued batches go out in order with consecutive sequences; the first published after the
    // drops carries them, and the counts add up.
    expect(hs.map((h) => h.sequence)).toEqual(hs.map((_, i) => i));
    expect(hs.reduce((n, h) => n + h.drops, 0)).toBe(dropped);
    expect(hs[0]!.drops).toBe(dropped);
    const published = hs.reduce((n, h) => n + h.count, 0);
    expect(published + dropped).toBe(20 + 30 + 1);
  });

  it("attributes every frame of a plain-Ethernet mirror interface to its mirror, encap none", async () => {
    const { p, pub } = make({ mode: "ethernet" });
    p.linkType = LINKTYPE_ETHERNET;
    p.setLocalMirror(binding("local", [], { sink: undefined, snaplen: 64 }));
    const frames = innerFrames(4);
    frames.forEach((f, i) => feed(p, f, 3, i));
    await p.stop();
    expect(pub.published).toHaveLength(1);
    const h = header(pub.published[0]!);
    expect(h).toMatchObject({ mirror: "local", encap: "none", snaplen: 64, count: 4 });
    expect(h.key).toBeUndefined();
    expect(pub.published[0]!.payload).toEqual(
      expectedRecords(
        frames.map((inner, i) => ({ inner, sec: 3, nsec: i })),
        64,
      ),
    );
  });

  it("keeps sequences across key map updates and flushes a mirror that leaves", async () => {
    const { p, pub } = make({ batch: { maxPackets: 2 } });
    p.setBindings([binding("web", [{ type: "gre", index: 7 }])]);
    const f = innerFrames(3);
    f.forEach((x, i) => feed(p, tunnelFrame(gre7, x), 1, i));
    expect(pub.published).toHaveLength(1);
    p.setBindings([binding("web", [{ type: "gre", index: 7 }], { generation: 3 })]);
    feed(p, tunnelFrame(gre7, f[0]!), 1, 9);
    expect(pub.published.map((m) => header(m).sequence)).toEqual([0, 1]);
    feed(p, tunnelFrame(gre7, f[1]!), 1, 10);
    p.setBindings([]); // web was deleted: its open batch goes out, its frames are unknown from now on
    expect(pub.published.map((m) => header(m).count)).toEqual([2, 2, 1]);
    feed(p, tunnelFrame(gre7, f[2]!), 1, 11);
    await p.stop();
    expect(pub.published.at(-1)!.subject).toBe(unknownCaptureSubject(NODE));
  });

  it("publishes flow summaries and exporter stats that the contracts accept", async () => {
    const sent: { subject: string; body: unknown }[] = [];
    const { p } = make({
      flowIntervalMs: 60_000,
      statsIntervalMs: 60_000,
      send: (subject, payload) => sent.push({ subject, body: JSON.parse(Buffer.from(payload).toString()) }),
    });
    p.setBindings([binding("web", [{ type: "gre", index: 7 }], { filter: { protocols: ["tcp", "udp"] } })]);
    const frames = innerFrames(10);
    frames.forEach((f, i) => feed(p, tunnelFrame(gre7, f), 1, i));
    p.publishStats();
    p.publishFlows();
    await p.stop();
    const stats = sent
      .filter((s) => s.subject === "ovntap.v1.stats.shop.web")
      .map((s) => MirrorStats.parse(s.body));
    expect(stats[0]).toMatchObject({ kind: "exporter", node: NODE, packets: 10, filtered: 4, drops: 0 });
    const flows = sent
      .filter((s) => s.subject === "ovntap.v1.flows.shop.web")
      .map((s) => FlowSummary.parse(s.body));
    expect(flows).toHaveLength(1);
    expect(flows[0]!.flows.reduce((n, f) => n + f.packets, 0)).toBe(6);
    expect(flows[0]!.flows.every((f) => f.protocol === 6 || f.protocol === 17)).toBe(true);
  });
});
