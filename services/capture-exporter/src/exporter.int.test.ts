/**
 * The exporter against real servers (nats-server with JetStream, redis-server): mirrors recorded
 * in the store as intake and the applier leave them, a pcap of GRE / ERSPAN frames replayed, and
 * what arrives on NATS checked byte for byte — by our own comparison and by tshark reading the
 * pcap assembled from the batches. Also: two subscribers see the same stream, unknown keys,
 * flows and stats, the key map following lifecycle events, drops with their event, and the
 * OVNTAP_CAPTURE stream.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import {
  CAPTURE_STREAM,
  captureSubject,
  FlowSummary,
  MirrorStats,
  unknownCaptureSubject,
} from "@ovntap/contracts";
import { waitFor } from "@ovntap/lab";
import { decodePcap, LINKTYPE_ETHERNET } from "@ovntap/packet";
import { makeEvent } from "@ovntap/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createExporter } from "./exporter.js";
import { FileReplaySource } from "./file-source.js";
import { expectedRecords, innerFrames, tunnelFrame, writePcap } from "./testing/frames.js";
import type { TimedFrame, Tunnel } from "./testing/frames.js";
import { NODE, NS, pcapOf, startHarness, tsharkFields } from "./testing/harness.js";
import type { Batch, Harness } from "./testing/harness.js";

let h: Harness;
/** Flow summaries and stats, kept by a plain subscriber. */
const sideMessages: { subject: string; body: unknown }[] = [];
beforeAll(async () => {
  h = await startHarness();
  const nc = h.natsClient.nc;
  for (const subject of ["ovntap.v1.flows.>", "ovntap.v1.stats.>"]) {
    nc.subscribe(subject, {
      callback: (_e, m) => {
        sideMessages.push({ subject: m.subject, body: m.json() });
      },
    });
  }
  await nc.flush();
});
afterAll(async () => {
  await h?.stop();
});

interface Planned {
  readonly tunnel: Tunnel;
  readonly inner: Buffer;
  readonly sec: number;
  readonly nsec: number;
}

/** Frames interleaved round-robin over `groups`, timestamps increasing. */
function interleave(groups: readonly { tunnel: Tunnel; inner: Buffer[] }[]): Planned[] {
  const out: Planned[] = [];
  const max = Math.max(...groups.map((g) => g.inner.length));
  let t = 0;
  for (let i = 0; i < max; i++) {
    for (const g of groups) {
      const inner = g.inner[i];
      if (inner === undefined) continue;
      t++;
      out.push({ tunnel: g.tunnel, inner, sec: 1_750_000_000, nsec: t * 1000 });
    }
  }
  return out;
}

async function pcapFile(name: string, planned: readonly Planned[]): Promise<string> {
  const path = join(h.dir, name);
  const frames: TimedFrame[] = planned.map((p) => ({
    frame: tunnelFrame(p.tunnel, p.inner),
    sec: p.sec,
    nsec: p.nsec,
  }));
  await writePcap(path, frames);
  return path;
}

const bytesOf = (batches: readonly Batch[]) => Buffer.concat(batches.map((b) => b.payload));

describe("capture exporter", () => {
  it("publishes each mirror's frames exactly, to every subscriber alike, readable by tshark", async () => {
    await h.recordMirror({ name: "web", tunnels: [{ type: "gre", index: 7 }] });
    await h.recordMirror({ name: "db", tunnels: [{ type: "erspan", index: 9 }] });
    await h.recordMirror({
      name: "both",
      tunnels: [
        { type: "gre", index: 11 },
        { type: "gre", index: 12 },
      ],
    });
    const web = innerFrames(60);
    const db = innerFrames(30, 100);
    const both11 = innerFrames(10, 200);
    const both12 = innerFrames(10, 300);
    const unknown = innerFrames(5, 400);
    const tWeb: Tunnel = { type: "gre", key: 7 };
    const tDb: Tunnel = { type: "erspan2", session: 9 };
    const t11: Tunnel = { type: "gre", key: 11 };
    const t12: Tunnel = { type: "gre", key: 12 };
    const t99: Tunnel = { type: "gre", key: 99 };
    const planned = interleave([
      { tunnel: tWeb, inner: web },
      { tunnel: tDb, inner: db },
      { tunnel: t11, inner: both11 },
      { tunnel: t12, inner: both12 },
      { tunnel: t99, inner: unknown },
    ]);
    const path = await pcapFile("first.pcap", planned);
    const a = await h.subscribe("ovntap.v1.capture.>");
    const b = await h.subscribe("ovntap.v1.capture.>");
    const exporter = createExporter({
      nc: h.natsClient.nc,
      store: h.store,
      events: h.events,
      logger: h.logger,
      config: h.config({ batch: { maxPackets: 16, maxBytes: 256 * 1024, maxDelayMs: 50 } }),
      source: new FileReplaySource({ path }),
    });
    await exporter.start();
    expect((await exporter.sourceDone())?.frames).toBe(planned.length);
    await waitFor(() => a.packets() === planned.length && b.packets() === planned.length, {
      what: "every packet at both subscribers",
      timeoutMs: 20_000,
    });

    // Exactly the mirrored frames, in order, per mirror (and per key of the two-key mirror).
    const of = (name: string, key?: number) =>
      a.batches.filter(
        (x) => x.subject === captureSubject(NS, name, NODE) && (key === undefined || x.header.key === key),
      );
    const expected = (t: Tunnel) => expectedRecords(planned.filter((p) => p.tunnel === t));
    expect(bytesOf(of("web"))).toEqual(expected(tWeb));
    expect(bytesOf(of("db"))).toEqual(expected(tDb));
    expect(bytesOf(of("both", 11))).toEqual(expected(t11));
    expect(bytesOf(of("both", 12))).toEqual(expected(t12));
    expect(of("web").map((x) => x.header.sequence)).toEqual(of("web").map((_, i) => i));
    expect(
      of("web").every((x) => x.header.drops === 0 && x.header.encap === "gre" && x.header.count <= 16),
    ).toBe(true);
    expect(of("db").every((x) => x.header.encap === "erspan2" && x.header.key === 9)).toBe(true);
    expect(new Set(of("both").map((x) => x.header.sequence)).size).toBe(of("both").length);

    // Unknown keys, with the key and without a mirror.
    const unk = a.batches.filter((x) => x.subject === unknownCaptureSubject(NODE));
    expect(unk.map((x) => [x.header.namespace, x.header.mirror, x.header.key])).toEqual(
      unk.map(() => [undefined, undefined, 99]),
    );
    expect(bytesOf(unk)).toEqual(expected(t99));

    // Two subscribers, one stream.
    expect(b.batches).toEqual(a.batches);
    expect(a.invalid).toEqual([]);

    // What `ovntap capture -w` would write, read by tshark and by our reader.
    const file = join(h.dir, "web.pcap");
    pcapOf(of("web"), file);
    const rows = await tsharkFields(file, ["frame.len", "frame.cap_len", "frame.time_epoch"]);
    expect(rows.map((r) => Number(r[0]))).toEqual(web.map((f) => f.length));
    expect(rows[0]![2]).toBe("1750000000.000001000");
    const read = decodePcap(readFileSync(file));
    if (!read.ok) throw new Error(`unreadable pcap: ${read.reason}`);
    expect(read.header.linkType).toBe(LINKTYPE_ETHERNET);
    expect(read.records.map((r) => Buffer.from(r.data))).toEqual(web);

    // Flow summaries and stats follow within an interval (ARP frames are no flows).
    const flowPackets = () =>
      sideMessages
        .filter((m) => m.subject === `ovntap.v1.flows.${NS}.web`)
        .map((m) => FlowSummary.parse(m.body))
        .reduce((n, s) => n + s.flows.reduce((k, f) => k + f.packets, 0), 0);
    await waitFor(() => flowPackets() === web.filter((_, i) => i % 5 !== 3).length, {
      what: "flow summaries of web",
      timeoutMs: 10_000,
    });
    const stats = await waitFor(
      () =>
        sideMessages
          .filter((m) => m.subject === `ovntap.v1.stats.${NS}.db`)
          .map((m) => MirrorStats.parse(m.body))
          .find((x) => x.kind === "exporter" && x.packets === db.length),
      { what: "exporter stats of db", timeoutMs: 10_000 },
    );
    expect(stats).toMatchObject({ node: NODE, drops: 0, filtered: 0 });
    await exporter.stop();
  });

  it("follows lifecycle events: a mirror recorded after start gets its frames", async () => {
    const exporter = createExporter({
      nc: h.natsClient.nc,
      store: h.store,
      events: h.events,
      logger: h.logger,
      config: h.config(),
    });
    await exporter.start();
    const sub = await h.subscribe(captureSubject(NS, "late", NODE));
    const record = await h.recordMirror({ name: "late", tunnels: [{ type: "gre", index: 21 }] });
    await h.events.publish(
      makeEvent("active", {
        namespace: NS,
        mirror: "late",
        generation: record.generation,
        principal: "system:ovntap:ovn-applier",
        requestId: record.requestId,
        detail: { ports: ["pod-a.shop"] },
      }),
    );
    await waitFor(() => exporter.pipeline.counters().mirrors.some((m) => m.mirror === "shop/late"), {
      what: "the key map to take the new mirror",
      timeoutMs: 10_000,
    });
    const frames = innerFrames(3);
    for (const [i, f] of frames.entries()) {
      const t = tunnelFrame({ type: "gre", key: 21 }, f);
      exporter.pipeline.ingest(t, 0, t.length, t.length, 1, i);
    }
    exporter.pipeline.sealAll();
    await waitFor(() => sub.packets() === 3, { what: "the late mirror's frames", timeoutMs: 10_000 });
    expect(bytesOf(sub.batches)).toEqual(
      expectedRecords(frames.map((inner, i) => ({ inner, sec: 1, nsec: i }))),
    );
    await exporter.stop();
  });

  it("drops while NATS is backed up, says so in the next batch and in a capture_drops event", async () => {
    const record = await h.recordMirror({ name: "busy", tunnels: [{ type: "gre", index: 31 }] });
    let connected = false;
    const exporter = createExporter({
      nc: h.natsClient.nc,
      natsConnected: () => connected,
      store: h.store,
      events: h.events,
      logger: h.logger,
      config: h.config({
        batch: { maxPackets: 4, maxBytes: 4096, maxDelayMs: 20 },
        queueMaxBytes: 16 * 1024,
        dropEventIntervalMs: 1,
      }),
    });
    await exporter.start();
    const sub = await h.subscribe(captureSubject(NS, "busy", NODE));
    const frames = innerFrames(400);
    frames.forEach((f, i) => {
      const t = tunnelFrame({ type: "gre", key: 31 }, f);
      exporter.pipeline.ingest(t, 0, t.length, t.length, 2, i);
    });
    const dropped = exporter.pipeline.counters().drops.queue_full;
    expect(dropped).toBeGreaterThan(0);
    const event = await waitFor(
      async () => (await h.events.history(NS, "busy")).find((e) => e.type === "capture_drops"),
      { what: "a capture_drops event", timeoutMs: 15_000 },
    );
    expect(event).toMatchObject({
      type: "capture_drops",
      generation: record.generation,
      requestId: record.requestId,
      principal: "system:ovntap:capture-exporter",
      detail: { node: NODE, drops: dropped },
    });
    connected = true;
    exporter.pipeline.drain();
    await exporter.stop();
    await waitFor(() => sub.packets() + dropped === frames.length, {
      what: "the rest of the frames",
      timeoutMs: 10_000,
    });
    expect(sub.batches[0]!.header.drops).toBe(dropped);
    expect(sub.batches.map((x) => x.header.sequence)).toEqual(sub.batches.map((_, i) => i));
  });

  it("keeps batches in OVNTAP_CAPTURE when asked to", async () => {
    await h.recordMirror({ name: "kept", tunnels: [{ type: "erspan", index: 41 }] });
    const frames = innerFrames(40);
    const path = await pcapFile(
      "kept.pcap",
      frames.map((inner, i) => ({
        tunnel: { type: "erspan3", session: 41 },
        inner,
        sec: 5,
        nsec: i,
      })),
    );
    const sub = await h.subscribe(captureSubject(NS, "kept", NODE));
    const exporter = createExporter({
      nc: h.natsClient.nc,
      store: h.store,
      logger: h.logger,
      config: h.config({
        batch: { maxPackets: 10, maxBytes: 65536, maxDelayMs: 50 },
        captureStream: { maxAgeMs: 60_000, maxBytes: 64 << 20, storage: "memory" },
      }),
      source: new FileReplaySource({ path }),
    });
    await exporter.start();
    await exporter.sourceDone();
    await waitFor(() => sub.packets() === frames.length, { what: "the frames", timeoutMs: 10_000 });
    const jsm = await jetstreamManager(h.natsClient.nc);
    const info = await jsm.streams.info(CAPTURE_STREAM);
    expect(info.config.max_age).toBe(60_000 * 1_000_000);
    expect(info.config.subjects).toEqual(["ovntap.v1.capture.>"]);
    const stored = await jsm.streams.getMessage(CAPTURE_STREAM, {
      last_by_subj: captureSubject(NS, "kept", NODE),
    });
    expect(Buffer.from(stored!.data)).toEqual(sub.batches.at(-1)!.payload);
    await exporter.stop();
  });
});
