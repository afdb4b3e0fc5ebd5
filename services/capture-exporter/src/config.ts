/**
 * The capture exporter's environment, validated at start (exit 78 naming every bad variable).
 * Every variable is described in the README with an example.
 *
 *   NATS_URL=nats://nats:4222 REDIS_URL=redis://redis:6379 NODE_NAME=node-1 \
 *   CAPTURE_INTERFACE=eth1 node services/capture-exporter/dist/main.js
 */
import { PCAP_OVER_IP_PORT } from "@ovntap/contracts";
import { ConfigError, envVar, natsEnv, nodeEnv, redisEnv } from "@ovntap/runtime";
import type { ConfigProblem } from "@ovntap/runtime";
import { z } from "zod";

/** What the exporter captures by default on a transport interface: every GRE packet (ERSPAN rides on GRE). */
export const DEFAULT_ENCAP_BPF = "ip proto 47 or ip6 proto 47";

const MIRROR_REF = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const ExporterEnv = z.object({
  ...natsEnv,
  ...redisEnv,
  ...nodeEnv,
  /** `encap`: GRE/ERSPAN on a transport interface; `ethernet`: plain frames of one local mirror interface. */
  CAPTURE_MODE: z.enum(["encap", "ethernet"]).default("encap"),
  /** Interface to capture on with libpcap. */
  CAPTURE_INTERFACE: envVar.string().optional(),
  /** A pcap/pcapng file to replay instead of a live capture. */
  CAPTURE_FILE: envVar.string().optional(),
  /** `fast` (as fast as it can be published) or `original` (the file's timing). */
  CAPTURE_REPLAY_TIMING: z.enum(["fast", "original"]).default("fast"),
  /** BPF filter; default `ip proto 47 or ip6 proto 47` in encap mode, none in ethernet mode. */
  CAPTURE_BPF: z.string().optional(),
  /** libpcap kernel buffer. */
  CAPTURE_BUFFER_BYTES: envVar.integer({ min: 65536, max: 2 ** 31 - 1 }).default(32 << 20),
  /** ethernet mode: `<namespace>/<name>` of the mirror every frame belongs to. */
  CAPTURE_MIRROR: envVar
    .string()
    .regex(MIRROR_REF, "must be <namespace>/<name> (DNS-1123 labels)")
    .optional(),
  BATCH_MAX_PACKETS: envVar.integer({ min: 1, max: 1_000_000 }).default(1024),
  BATCH_MAX_BYTES: envVar.integer({ min: 1024, max: 64 << 20 }).default(256 * 1024),
  BATCH_MAX_DELAY_MS: envVar.integer({ min: 1, max: 60_000 }).default(50),
  /** Sealed batches waiting for NATS, in bytes, before new ones are dropped. */
  QUEUE_MAX_BYTES: envVar.integer({ min: 1 << 20, max: 2 ** 40 }).default(64 << 20),
  /** Bytes handed to NATS and not yet acknowledged (PING/PONG) before batches wait in the queue. */
  NATS_MAX_INFLIGHT_BYTES: envVar.integer({ min: 65536, max: 2 ** 40 }).default(8 << 20),
  /** Drop a frame identical to one seen in the same mirror this recently; 0 turns dedup off. */
  DEDUP_WINDOW_MS: envVar.integer({ min: 0, max: 60_000 }).default(0),
  DEDUP_CAPACITY: envVar.integer({ min: 1024, max: 1 << 26 }).default(1 << 18),
  /** Flow summaries every this often; 0 turns them off. */
  FLOW_INTERVAL_MS: envVar
    .integer({ min: 0, max: 3_600_000 })
    .refine(
      (v) => v === 0 || v >= 1000,
      "must be 0 (off) or at least 1000 (FlowSummary intervals are whole seconds)",
    )
    .default(5_000),
  FLOW_MAX_PER_MIRROR: envVar.integer({ min: 1, max: 10_000_000 }).default(100_000),
  /** MirrorStats (kind exporter) every this often; 0 turns them off. */
  STATS_INTERVAL_MS: envVar.integer({ min: 0, max: 3_600_000 }).default(10_000),
  /** At most one capture_drops event per mirror this often. */
  DROP_EVENT_INTERVAL_MS: envVar.integer({ min: 1000, max: 86_400_000 }).default(60_000),
  /** Unknown keys with a batch stream of their own on `_unknown`. */
  UNKNOWN_MAX_KEYS: envVar.integer({ min: 0, max: 65536 }).default(64),
  /** Full re-read of the key map from the store, besides the one lifecycle events trigger. */
  KEYMAP_REFRESH_MS: envVar.integer({ min: 1000, max: 3_600_000 }).default(30_000),
  /** Wait this long after a lifecycle event for more before re-reading the store. */
  KEYMAP_DEBOUNCE_MS: envVar.integer({ min: 0, max: 60_000 }).default(200),
  /** PCAP-over-IP listener; 0 turns it off. */
  PCAP_OVER_IP_PORT: envVar.port().default(PCAP_OVER_IP_PORT),
  PCAP_OVER_IP_HOST: envVar.host().default("0.0.0.0"),
  PCAP_OVER_IP_CLIENT_BUFFER_BYTES: envVar.integer({ min: 65536, max: 2 ** 31 - 1 }).default(16 << 20),
  PCAP_OVER_IP_MAX_CLIENTS: envVar.integer({ min: 1, max: 10_000 }).default(64),
  /** Keep batches in the JetStream stream OVNTAP_CAPTURE this long for replay; 0: no stream. */
  CAPTURE_STREAM_MAX_AGE_MS: envVar.integer({ min: 0 }).default(0),
  CAPTURE_STREAM_MAX_BYTES: envVar.integer({ min: 1 << 20 }).default(1 << 30),
  CAPTURE_STREAM_STORAGE: z.enum(["file", "memory"]).default("file"),
  /** Store key prefix (default `{ovntap}`), as intake and the applier use. */
  STORE_PREFIX: envVar.string().optional(),
});

export type ExporterEnv = z.output<typeof ExporterEnv>;

export type SourceConfig =
  | { kind: "live"; device: string; bpf: string; bufferBytes: number }
  | { kind: "file"; path: string; timing: "fast" | "original" };

/** The exporter's settings beyond its connections (what createExporter takes). */
export interface ExporterConfig {
  node: string;
  mode: "encap" | "ethernet";
  /** ethernet mode: the mirror every frame belongs to. */
  localMirror?: { namespace: string; name: string } | undefined;
  batch: { maxPackets: number; maxBytes: number; maxDelayMs: number };
  queueMaxBytes: number;
  natsMaxInFlightBytes: number;
  dedupWindowMs: number;
  dedupCapacity: number;
  flowIntervalMs: number;
  maxFlowsPerMirror: number;
  statsIntervalMs: number;
  dropEventIntervalMs: number;
  unknownMaxKeys: number;
  keymapRefreshMs: number;
  keymapDebounceMs: number;
  /** Port 0 = an ephemeral port; undefined = no listener. */
  pcapOverIp?: { host: string; port: number; clientBufferBytes: number; maxClients: number } | undefined;
  captureStream?: { maxAgeMs: number; maxBytes: number; storage: "file" | "memory" } | undefined;
}

export const DEFAULT_CONFIG: Omit<ExporterConfig, "node"> = {
  mode: "encap",
  batch: { maxPackets: 1024, maxBytes: 256 * 1024, maxDelayMs: 50 },
  queueMaxBytes: 64 << 20,
  natsMaxInFlightBytes: 8 << 20,
  dedupWindowMs: 0,
  dedupCapacity: 1 << 18,
  flowIntervalMs: 5_000,
  maxFlowsPerMirror: 100_000,
  statsIntervalMs: 10_000,
  dropEventIntervalMs: 60_000,
  unknownMaxKeys: 64,
  keymapRefreshMs: 30_000,
  keymapDebounceMs: 200,
};

/**
 * Settings and source from a validated environment; throws ConfigError for combinations one
 * variable alone cannot refuse (a source is needed, ethernet mode needs CAPTURE_MIRROR, …).
 */
export function exporterConfig(env: ExporterEnv): { config: ExporterConfig; source: SourceConfig } {
  const problems: ConfigProblem[] = [];
  if (env.CAPTURE_INTERFACE === undefined && env.CAPTURE_FILE === undefined) {
    problems.push({
      variable: "CAPTURE_INTERFACE",
      message: "is required (the interface to capture on), unless CAPTURE_FILE names a file to replay",
    });
  }
  if (env.CAPTURE_INTERFACE !== undefined && env.CAPTURE_FILE !== undefined) {
    problems.push({
      variable: "CAPTURE_FILE",
      message: "must not be set together with CAPTURE_INTERFACE (one source)",
    });
  }
  if (env.CAPTURE_MODE === "ethernet" && env.CAPTURE_MIRROR === undefined) {
    problems.push({
      variable: "CAPTURE_MIRROR",
      message: "is required in ethernet mode: <namespace>/<name> of the mirror the interface carries",
    });
  }
  if (env.CAPTURE_MODE === "encap" && env.CAPTURE_MIRROR !== undefined) {
    problems.push({
      variable: "CAPTURE_MIRROR",
      message: "is only for CAPTURE_MODE=ethernet (encap mode maps keys)",
    });
  }
  if (env.NATS_MAX_INFLIGHT_BYTES < 2 * env.BATCH_MAX_BYTES) {
    problems.push({
      variable: "NATS_MAX_INFLIGHT_BYTES",
      message: `must be at least twice BATCH_MAX_BYTES (${2 * env.BATCH_MAX_BYTES})`,
    });
  }
  if (env.QUEUE_MAX_BYTES < 2 * env.BATCH_MAX_BYTES) {
    problems.push({
      variable: "QUEUE_MAX_BYTES",
      message: `must be at least twice BATCH_MAX_BYTES (${2 * env.BATCH_MAX_BYTES})`,
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const [namespace = "", name = ""] = env.CAPTURE_MIRROR?.split("/") ?? [];
  const config: ExporterConfig = {
    node: env.NODE_NAME,
    mode: env.CAPTURE_MODE,
    localMirror: env.CAPTURE_MIRROR === undefined ? undefined : { namespace, name },
    batch: {
      maxPackets: env.BATCH_MAX_PACKETS,
      maxBytes: env.BATCH_MAX_BYTES,
      maxDelayMs: env.BATCH_MAX_DELAY_MS,
    },
    queueMaxBytes: env.QUEUE_MAX_BYTES,
    natsMaxInFlightBytes: env.NATS_MAX_INFLIGHT_BYTES,
    dedupWindowMs: env.DEDUP_WINDOW_MS,
    dedupCapacity: env.DEDUP_CAPACITY,
    flowIntervalMs: env.FLOW_INTERVAL_MS,
    maxFlowsPerMirror: env.FLOW_MAX_PER_MIRROR,
    statsIntervalMs: env.STATS_INTERVAL_MS,
    dropEventIntervalMs: env.DROP_EVENT_INTERVAL_MS,
    unknownMaxKeys: env.UNKNOWN_MAX_KEYS,
    keymapRefreshMs: env.KEYMAP_REFRESH_MS,
    keymapDebounceMs: env.KEYMAP_DEBOUNCE_MS,
    pcapOverIp:
      env.PCAP_OVER_IP_PORT === 0
        ? undefined
        : {
            host: env.PCAP_OVER_IP_HOST,
            port: env.PCAP_OVER_IP_PORT,
            clientBufferBytes: env.PCAP_OVER_IP_CLIENT_BUFFER_BYTES,
            maxClients: env.PCAP_OVER_IP_MAX_CLIENTS,
          },
    captureStream:
      env.CAPTURE_STREAM_MAX_AGE_MS === 0
        ? undefined
        : {
            maxAgeMs: env.CAPTURE_STREAM_MAX_AGE_MS,
            maxBytes: env.CAPTURE_STREAM_MAX_BYTES,
            storage: env.CAPTURE_STREAM_STORAGE,
          },
  };
  const source: SourceConfig =
    env.CAPTURE_FILE !== undefined
      ? { kind: "file", path: env.CAPTURE_FILE, timing: env.CAPTURE_REPLAY_TIMING }
      : {
          kind: "live",
          device: env.CAPTURE_INTERFACE ?? "",
          bpf: env.CAPTURE_BPF ?? (env.CAPTURE_MODE === "encap" ? DEFAULT_ENCAP_BPF : ""),
          bufferBytes: env.CAPTURE_BUFFER_BYTES,
        };
  return { config, source };
}
