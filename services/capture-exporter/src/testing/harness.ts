/**
 * Integration-test harness: real nats-server (JetStream) and redis-server from @ovntap/lab, the
 * store with a prefix of the test's own, mirrors recorded the way intake and the applier leave
 * them, subscribers that keep every batch, and tshark to read what came out.
 *
 *     const h = await startHarness();
 *     await h.recordMirror({ name: "web", tunnels: [{ type: "gre", index: 7 }] });
 *     const sub = h.subscribe("ovntap.v1.capture.>");
 *     …
 *     await h.stop();
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { MirrorSpec, parseCaptureHeaders } from "@ovntap/contracts";
import type { CaptureBatchHeader, MirrorFilter, MirrorRecord, MirrorTunnel } from "@ovntap/contracts";
import { startNatsServer, startRedisServer } from "@ovntap/lab";
import type { NatsServer, RedisServer } from "@ovntap/lab";
import { connectNats, connectRedis, createLogger } from "@ovntap/runtime";
import type { Logger, NatsClient, RedisClient } from "@ovntap/runtime";
import { createEventLog, createStore, requestHash } from "@ovntap/store";
import type { EventLog, Store } from "@ovntap/store";
import { DEFAULT_CONFIG } from "../config.js";
import type { ExporterConfig } from "../config.js";
import { SINK } from "./frames.js";

export const NS = "shop";
export const NODE = "node-1";

export interface Batch {
  readonly subject: string;
  readonly header: CaptureBatchHeader;
  readonly payload: Buffer;
}

export interface Subscriber {
  readonly batches: Batch[];
  /** Messages whose headers broke the contract. */
  readonly invalid: string[];
  /** Records received so far (sum of Ovntap-Count). */
  packets(): number;
  close(): Promise<void>;
}

export interface Harness {
  readonly nats: NatsServer;
  readonly redis: RedisServer;
  readonly natsClient: NatsClient;
  readonly redisClient: RedisClient;
  readonly store: Store;
  readonly events: EventLog;
  readonly logger: Logger;
  /** A temp dir of the test's own. */
  readonly dir: string;
  /** Exporter settings for tests: the defaults, node NODE, no PCAP-over-IP, flows and stats every second. */
  config(over?: Partial<ExporterConfig>): ExporterConfig;
  recordMirror(m: {
    name: string;
    tunnels: Pick<MirrorTunnel, "type" | "index">[];
    sink?: string;
    filter?: MirrorFilter;
    snaplen?: number;
  }): Promise<MirrorRecord>;
  /** A subscriber on its own connection, keeping every batch (headers checked against the contract). */
  subscribe(subject: string): Promise<Subscriber>;
  stop(): Promise<void>;
}

export async function startHarness(opts: { natsConfig?: string } = {}): Promise<Harness> {
  const logger = createLogger({
    name: "exporter-test",
    level: (process.env.TEST_LOG_LEVEL as "info") ?? "silent",
  });
  const nats = await startNatsServer(opts.natsConfig === undefined ? {} : { config: opts.natsConfig });
  const redis = await startRedisServer();
  const natsClient = await connectNats({ url: nats.url, name: "exporter-test", logger });
  const redisClient = await connectRedis({ url: redis.url, logger, role: "client", name: "exporter-test" });
  const store = createStore({ redis: redisClient.redis, prefix: `{exporter-${randomUUID().slice(0, 8)}}` });
  const events = createEventLog({ nc: natsClient.nc, logger });
  const dir = mkdtempSync(join(tmpdir(), "ovntap-exporter-"));
  const subs: Subscriber[] = [];

  return {
    nats,
    redis,
    natsClient,
    redisClient,
    store,
    events,
    logger,
    dir,
    config: (over = {}) => ({
      ...DEFAULT_CONFIG,
      node: NODE,
      flowIntervalMs: 1000,
      statsIntervalMs: 1000,
      keymapDebounceMs: 50,
      ...over,
    }),
    async recordMirror(m) {
      const gre = m.tunnels.every((t) => t.type === "gre");
      const spec = MirrorSpec.parse({
        name: m.name,
        namespace: NS,
        sources: { type: "pods", names: ["pod-a"] },
        direction: "egress",
        target: gre ? { type: "gre", sink: m.sink ?? SINK } : { type: "erspan", sink: m.sink ?? SINK },
        ...(m.filter ? { filter: m.filter } : {}),
        ...(m.snaplen ? { snaplen: m.snaplen } : {}),
      });
      const r = await store.applyCreate({
        spec,
        owner: "alice",
        requestId: randomUUID(),
        requestHash: requestHash({ op: "create", spec }),
      });
      if (r.type !== "created") throw new Error(`create ${m.name}: ${r.type}`);
      const first = m.tunnels[0];
      const s = await store.setStatus(NS, m.name, {
        phase: "Active",
        generation: r.record.generation,
        observedGeneration: r.record.generation,
        sink: m.sink ?? SINK,
        ...(first?.type === "gre" ? { key: first.index } : first ? { sessionId: first.index } : {}),
        tunnels: m.tunnels.map((t) => ({ ...t, direction: "egress" as const })),
        ports: ["pod-a.shop"],
        updatedAt: new Date().toISOString(),
      });
      if (s.type !== "updated") throw new Error(`status ${m.name}: ${s.type}`);
      return r.record;
    },
    async subscribe(subject) {
      const c = await connectNats({ url: nats.url, name: `exporter-test-sub-${subs.length}`, logger });
      const batches: Batch[] = [];
      const invalid: string[] = [];
      let packets = 0;
      c.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err !== null) return;
          const h = parseCaptureHeaders(msg.headers ?? {});
          if (!h.ok) {
            invalid.push(`${msg.subject}: ${h.error.message}`);
            return;
          }
          batches.push({ subject: msg.subject, header: h.value, payload: Buffer.from(msg.data) });
          packets += h.value.count;
        },
      });
      await c.nc.flush();
      const sub: Subscriber = { batches, invalid, packets: () => packets, close: () => c.close() };
      subs.push(sub);
      return sub;
    },
    async stop() {
      await Promise.allSettled(subs.map((s) => s.close()));
      await natsClient.close().catch(() => undefined);
      await redisClient.close().catch(() => undefined);
      await nats.stop();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Payloads of `batches` in order, as one pcap file (what `ovntap capture -w` writes). */
export function pcapOf(batches: readonly Batch[], path: string): void {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b23c4d, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeUInt32LE(Math.max(...batches.map((b) => b.header.snaplen), 14), 16);
  h.writeUInt32LE(batches[0]?.header.linkType ?? 1, 20);
  writeFileSync(path, Buffer.concat([h, ...batches.map((b) => b.payload)]));
}

const execFileP = promisify(execFile);

/** tshark's fields, one row per frame, split on "|". */
export async function tsharkFields(file: string, fields: readonly string[]): Promise<string[][]> {
  const args = ["-n", "-r", file, "-T", "fields", "-E", "separator=|", ...fields.flatMap((f) => ["-e", f])];
  const { stdout } = await execFileP("tshark", args, { maxBuffer: 64 << 20 });
  return stdout
    .trimEnd()
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.split("|"));
}
