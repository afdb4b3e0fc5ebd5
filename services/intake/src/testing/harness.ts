/**
 * Test harness for intake's integration tests: real nats-server and redis-server on ephemeral
 * ports, an intake built with `createIntake` against them (no process spawned), and a requester.
 * Each intake gets its own store and queue prefixes, and tests use their own namespaces.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { MirrorSpec, reqSubject, Reply } from "@ovntap/contracts";
import type { MirrorRequest } from "@ovntap/contracts";
import { startNatsServer, startRedisServer, type NatsServer, type RedisServer } from "@ovntap/lab";
import { connectNats, connectRedis, createLogger, createMetrics } from "@ovntap/runtime";
import type { Logger, Metrics, NatsClient, RedisClient } from "@ovntap/runtime";
import { captureLogs, type LogCapture } from "@ovntap/runtime/internal";
import { createApplyQueue } from "@ovntap/store";
import type { ApplyQueue } from "@ovntap/store";
import { createIntake, type Intake, type IntakeDeps } from "../intake.js";

export interface Servers {
  nats: NatsServer;
  redis: RedisServer;
  /** The requester's connection. */
  client: NatsClient;
  /** Intake's connections. */
  intakeNats: NatsClient;
  intakeRedis: RedisClient;
  stop(): Promise<void>;
}

export async function startServers(
  opts: { natsConfig?: string; natsUrl?: (url: string) => string } = {},
): Promise<Servers> {
  const logger = createLogger({ name: "intake-test", level: "silent" });
  const nats = await startNatsServer(opts.natsConfig ? { config: opts.natsConfig } : {});
  const redis = await startRedisServer();
  const url = opts.natsUrl?.(nats.url) ?? nats.url;
  const client = await connectNats({ url: nats.url, name: "requester", logger });
  const intakeNats = await connectNats({ url, name: "intake", logger });
  const intakeRedis = await connectRedis({
    url: redis.url,
    logger,
    role: "client",
    retryBaseMs: 50,
    retryMaxMs: 300,
  });
  return {
    nats,
    redis,
    client,
    intakeNats,
    intakeRedis,
    async stop() {
      await client.close();
      await intakeNats.close();
      await intakeRedis.close();
      await nats.stop();
      await redis.stop();
    },
  };
}

export interface Built {
  intake: Intake;
  queue: ApplyQueue;
  storePrefix: string;
  queuePrefix: string;
  metrics: Metrics;
  logs: LogCapture;
  logger: Logger;
  stop(): Promise<void>;
}

/** An intake on `servers`, with its own prefixes; started. */
export async function buildIntake(
  servers: Servers,
  deps: Partial<Omit<IntakeDeps, "nc" | "redis" | "logger">> = {},
  opts: { nc?: NatsClient } = {},
): Promise<Built> {
  const logs = captureLogs();
  const logger = createLogger({ name: "intake", level: "debug", destination: logs.stream });
  const storePrefix = `{t-${randomUUID()}}`;
  const queuePrefix = `{q-${randomUUID()}}`;
  const metrics = createMetrics({ defaultMetrics: false });
  const queue = createApplyQueue({ connection: servers.intakeRedis.redis, prefix: queuePrefix, logger });
  const intake = createIntake({
    nc: (opts.nc ?? servers.intakeNats).nc,
    redis: servers.intakeRedis.redis,
    logger,
    storePrefix,
    queue,
    queuePrefix,
    metrics,
    ...deps,
  });
  await intake.start();
  return {
    intake,
    queue,
    storePrefix,
    queuePrefix,
    metrics,
    logs,
    logger,
    async stop() {
      await intake.stop();
      await queue.close();
    },
  };
}

/** A random namespace, so events and records of different tests never meet. */
export function randomNs(prefix = "t"): string {
  return `${prefix}-${randomBytes(5).toString("hex")}`;
}

export function spec(namespace: string, name: string, extra: Record<string, unknown> = {}): MirrorSpec {
  return MirrorSpec.parse({
    name,
    namespace,
    sources: { type: "pods", names: ["web-0"] },
    direction: "both",
    target: { type: "gre", sink: "198.51.100.2" },
    ttlSeconds: 3600,
    ...extra,
  });
}

export function create(
  namespace: string,
  name: string,
  extra: Record<string, unknown> = {},
  requestId = randomUUID(),
) {
  return { requestId, op: "create" as const, spec: spec(namespace, name, extra) };
}

/** Sends a request (any body) and parses the reply against the contract. */
export async function send(
  servers: Servers,
  namespace: string,
  body: MirrorRequest | Record<string, unknown> | string | Uint8Array,
  timeoutMs = 10_000,
): Promise<Reply> {
  const payload = typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body);
  const msg = await servers.client.nc.request(reqSubject(namespace), payload, { timeout: timeoutMs });
  return Reply.parse(msg.json());
}

/** Every key under the given prefixes with its content: to assert a refusal changed nothing. */
export async function snapshot(
  redis: RedisClient["redis"],
  prefixes: readonly string[],
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const prefix of prefixes) {
    for (const key of (await redis.keys(`${prefix}*`)).sort()) {
      const type = await redis.type(key);
      out[key] =
        type === "hash"
          ? await redis.hgetall(key)
          : type === "set"
            ? (await redis.smembers(key)).sort()
            : type === "zset"
              ? await redis.zrange(key, 0, -1, "WITHSCORES")
              : type === "list"
                ? await redis.lrange(key, 0, -1)
                : type === "string"
                  ? await redis.get(key)
                  : type;
    }
  }
  return out;
}
