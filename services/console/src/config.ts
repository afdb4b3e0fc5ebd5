/**
 * The console's environment, validated at start (exit 78 naming every bad variable). Every variable
 * is described in the README.
 *
 *   NATS_URL=nats://nats:4222 REDIS_URL=redis://redis:6379 HTTP_HOST=0.0.0.0 \
 *   node services/console/dist/main.js
 *
 * HTTP_HOST defaults to 127.0.0.1 here, unlike the other services: the page serves the mirrored
 * packets themselves (pcap downloads), so exposing it beyond the host is a decision the deployment
 * makes (the Deployment sets HTTP_HOST=0.0.0.0 for its probes, behind a NetworkPolicy).
 */
import { ConfigError, envVar, natsEnv, redisEnv } from "@ovntap/runtime";
import type { ConfigProblem } from "@ovntap/runtime";
import { z } from "zod";

const MIB = 1 << 20;

export const ConsoleEnv = z.object({
  ...natsEnv,
  ...redisEnv,
  /** Loopback by default: see the module comment. */
  HTTP_HOST: envVar.host().default("127.0.0.1"),
  /**
   * Host names the page may be reached by, besides IP literals and `localhost` (comma-separated;
   * `*` allows any): the name of an ingress or proxy in front of it.
   */
  CONSOLE_ALLOWED_HOSTS: z
    .string()
    .trim()
    .regex(/^(\*|[A-Za-z0-9.-]+(\s*,\s*[A-Za-z0-9.-]+)*)$/, "must be * or comma-separated host names")
    .optional(),
  /** Store key prefix (default `{ovntap}`), as intake and the applier use. */
  STORE_PREFIX: envVar.string().optional(),
  /** How far back the pcap download reaches: batches older than this are dropped. */
  CONSOLE_RING_SECONDS: envVar.integer({ min: 10, max: 3600 }).default(120),
  /** Bytes of capture batches kept per mirror; the oldest go first. */
  CONSOLE_RING_MIRROR_BYTES: envVar.integer({ min: MIB, max: 2 ** 40 }).default(32 * MIB),
  /** Bytes of capture batches kept for all mirrors together; the oldest batch of any mirror goes first. */
  CONSOLE_RING_TOTAL_BYTES: envVar.integer({ min: MIB, max: 2 ** 40 }).default(128 * MIB),
  /** Lifecycle events read from the stream at start and kept for new pages. */
  CONSOLE_EVENTS: envVar.integer({ min: 1, max: 10_000 }).default(200),
  /** Full re-read of the mirrors from the store, besides the ones lifecycle events trigger. */
  CONSOLE_REFRESH_MS: envVar.integer({ min: 1000, max: 3_600_000 }).default(30_000),
  /** Pages connected to the live stream at once; more are refused with 503. */
  CONSOLE_MAX_CLIENTS: envVar.integer({ min: 1, max: 10_000 }).default(32),
  /** Unsent bytes a page's stream may hold before the page is cut off (it reconnects and resyncs). */
  CONSOLE_CLIENT_BUFFER_BYTES: envVar.integer({ min: 64 * 1024, max: 1 << 30 }).default(MIB),
});

export type ConsoleEnv = z.output<typeof ConsoleEnv>;

/** What createConsole takes beyond its connections. */
export interface ConsoleConfig {
  ring: { maxAgeMs: number; maxBytesPerMirror: number; maxTotalBytes: number };
  /** Events kept in memory and read from the stream at start. */
  events: number;
  refreshMs: number;
  maxClients: number;
  clientBufferBytes: number;
}

/** CONSOLE_ALLOWED_HOSTS as the server takes it. */
export function allowedHosts(env: Pick<ConsoleEnv, "CONSOLE_ALLOWED_HOSTS">): string[] | "*" {
  const v = env.CONSOLE_ALLOWED_HOSTS;
  if (v === undefined) return [];
  if (v === "*") return "*";
  return v
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean);
}

export const DEFAULT_CONFIG: ConsoleConfig = {
  ring: { maxAgeMs: 120_000, maxBytesPerMirror: 32 * MIB, maxTotalBytes: 128 * MIB },
  events: 200,
  refreshMs: 30_000,
  maxClients: 32,
  clientBufferBytes: MIB,
};

/** Settings from a validated environment; throws ConfigError for combinations one variable cannot refuse. */
export function consoleConfig(env: ConsoleEnv): ConsoleConfig {
  const problems: ConfigProblem[] = [];
  if (env.CONSOLE_RING_MIRROR_BYTES > env.CONSOLE_RING_TOTAL_BYTES) {
    problems.push({
      variable: "CONSOLE_RING_MIRROR_BYTES",
      message: `must not exceed CONSOLE_RING_TOTAL_BYTES (${env.CONSOLE_RING_TOTAL_BYTES})`,
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    ring: {
      maxAgeMs: env.CONSOLE_RING_SECONDS * 1000,
      maxBytesPerMirror: env.CONSOLE_RING_MIRROR_BYTES,
      maxTotalBytes: env.CONSOLE_RING_TOTAL_BYTES,
    },
    events: env.CONSOLE_EVENTS,
    refreshMs: env.CONSOLE_REFRESH_MS,
    maxClients: env.CONSOLE_MAX_CLIENTS,
    clientBufferBytes: env.CONSOLE_CLIENT_BUFFER_BYTES,
  };
}
