/**
 * The exporter on the lab, live: a GRE mirror of pod-a made in OVN Northbound with the real
 * ovn-nbctl, recorded in the store the way the applier leaves it, libpcap (`cap`) capturing on
 * LAB_CAPTURE_IF in the root namespace; pod-a pings pod-b and the echo requests arrive, decapsulated,
 * as batches of that mirror.
 */
import { randomUUID } from "node:crypto";
import { captureSubject, MirrorSpec, parseCaptureHeaders } from "@ovntap/contracts";
import type { CaptureBatchHeader } from "@ovntap/contracts";
import { LAB_TOPOLOGY, startLab, waitFor } from "@ovntap/lab";
import type { Lab } from "@ovntap/lab";
import { decodeFrame, decodePcap, encodePcapHeader, formatIp } from "@ovntap/packet";
import { connectNats, connectRedis, createLogger } from "@ovntap/runtime";
import type { NatsClient, RedisClient } from "@ovntap/runtime";
import { createStore, requestHash } from "@ovntap/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, DEFAULT_ENCAP_BPF } from "./config.js";
import { createExporter } from "./exporter.js";
import type { Exporter } from "./exporter.js";
import { LiveCaptureSource } from "./live-source.js";

const logger = createLogger({
  name: "exporter-live-test",
  level: (process.env.TEST_LOG_LEVEL as "info") ?? "silent",
});
const KEY = 4242;
const NAME = "live";
const NS = "default";

let lab: Lab;
let nats: NatsClient;
let redis: RedisClient;
let exporter: Exporter | undefined;

beforeAll(async () => {
  lab = await startLab({ services: false });
  nats = await connectNats({ url: lab.env.NATS_URL, name: "exporter-live-test", logger });
  redis = await connectRedis({ url: lab.env.REDIS_URL, logger, role: "client", name: "exporter-live-test" });
});
afterAll(async () => {
  await exporter?.stop();
  await nats?.close();
  await redis?.close();
  await lab?.stop();
});

describe("capture exporter on the lab", () => {
  it("captures pod-a's mirrored pings on LAB_CAPTURE_IF and publishes them as the mirror's batches", async () => {
    const row = `ovntap-${NAME}`;
    await lab.nbctl("mirror-add", row, "gre", String(KEY), "from-lport", lab.env.LAB_SINK_IP);
    await lab.nbctl("lsp-attach-mirror", LAB_TOPOLOGY.podA.lsp, row);
    await lab.nbctl("--timeout=30", "--wait=hv", "sync");

    const store = createStore({ redis: redis.redis, prefix: `{live-${randomUUID().slice(0, 8)}}` });
    const spec = MirrorSpec.parse({
      name: NAME,
      namespace: NS,
      sources: { type: "pods", names: ["pod-a"] },
      direction: "egress",
      target: { type: "gre", sink: lab.env.LAB_SINK_IP, key: KEY },
    });
    const created = await store.applyCreate({
      spec,
      owner: "alice",
      requestId: randomUUID(),
      requestHash: requestHash({ op: "create", spec }),
    });
    if (created.type !== "created") throw new Error(`create: ${created.type}`);
    await store.setStatus(NS, NAME, {
      phase: "Active",
      generation: created.record.generation,
      observedGeneration: created.record.generation,
      sink: lab.env.LAB_SINK_IP,
      key: KEY,
      tunnels: [{ type: "gre", index: KEY, direction: "egress" }],
      ports: [LAB_TOPOLOGY.podA.lsp],
      updatedAt: new Date().toISOString(),
    });

    const node = lab.env.LAB_NODE;
    const batches: { header: CaptureBatchHeader; payload: Buffer }[] = [];
    nats.nc.subscribe(captureSubject(NS, NAME, node), {
      callback: (_err, msg) => {
        const h = parseCaptureHeaders(msg.headers ?? {});
        if (h.ok) batches.push({ header: h.value, payload: Buffer.from(msg.data) });
      },
    });
    await nats.nc.flush();

    exporter = createExporter({
      nc: nats.nc,
      store,
      logger,
      config: { ...DEFAULT_CONFIG, node, batch: { ...DEFAULT_CONFIG.batch, maxDelayMs: 20 } },
      source: new LiveCaptureSource({ device: lab.env.LAB_CAPTURE_IF, filter: DEFAULT_ENCAP_BPF }),
    });
    await exporter.start();

    // Ping until echo requests have come through (the first may race the capture's start).
    await waitFor(
      async () => {
        await lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP, { count: 2, intervalS: 0.2, timeoutS: 1 });
        return batches.reduce((n, b) => n + b.header.count, 0) >= 2;
      },
      { what: "mirrored pings as capture batches", timeoutMs: 60_000, intervalMs: 200 },
    );

    expect(batches[0]!.header).toMatchObject({
      namespace: NS,
      mirror: NAME,
      node,
      encap: "gre",
      key: KEY,
      linkType: 1,
    });
    const file = decodePcap(
      Buffer.concat([encodePcapHeader({ linkType: 1 }), ...batches.map((b) => b.payload)]),
    );
    if (!file.ok) throw new Error(`batches are no pcap records: ${file.reason}`);
    const echoes = file.records
      .map((r) => decodeFrame(r.data))
      .filter((f) => f.ok && f.l4?.protocol === "icmp" && f.l4.type === 8);
    expect(echoes.length).toBeGreaterThanOrEqual(2);
    for (const f of echoes) {
      if (!f.ok || f.ip === undefined) throw new Error("not IP");
      expect([formatIp(f.ip.src), formatIp(f.ip.dst)]).toEqual([LAB_TOPOLOGY.podA.ip, LAB_TOPOLOGY.podB.ip]);
    }
    // Timestamps are the capture's wall clock, in this run's time.
    const first = BigInt(batches[0]!.header.firstNs);
    expect(first > BigInt(Date.now() - 120_000) * 1_000_000n).toBe(true);
    expect(exporter.pipeline.counters().unknown).toBe(0);
  });
});
