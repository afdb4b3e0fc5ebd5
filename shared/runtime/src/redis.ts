/**
 * Redis (ioredis) for ovntap services, in one of two roles:
 *
 * - "client": commands fail fast while Redis is unreachable (no offline queue, one
 *   retry), so a request handler answers "unavailable" instead of hanging.
 * - "worker": commands wait for the reconnection (`maxRetriesPerRequest: null`), which
 *   BullMQ requires of Worker connections — and only of those.
 *
 *   const redis = await connectRedis({ url: config.REDIS_URL, logger, role: "client" });
 *   http.addCheck("redis", () => redis.isReady());
 *   shutdown.onShutdown("redis", () => redis.close());
 */
import { Redis, type RedisOptions as IORedisOptions } from "ioredis";
import { jitteredBackoff } from "./backoff.js";
import type { Logger } from "./logger.js";
import { redactUrl } from "./redact.js";

export type RedisRole = "client" | "worker";

export interface RedisOptions {
  /** redis:// or rediss:// URL; credentials and database number may be in it. */
  url: string;
  logger: Logger;
  role: RedisRole;
  /** CLIENT SETNAME, shown by CLIENT LIST. */
  name?: string;
  /** TCP connect timeout of one attempt; default 5 s. */
  connectTimeoutMs?: number;
  /** First reconnect delay before jitter; default 100 ms. */
  retryBaseMs?: number;
  /** Longest reconnect delay; default 5 s. */
  retryMaxMs?: number;
  /** Anything else for ioredis; wins over the role's settings. */
  redisOptions?: IORedisOptions;
}

export interface RedisClient {
  readonly redis: Redis;
  readonly role: RedisRole;
  /** True when the connection is up and past its ready check. */
  isReady(): boolean;
  /** QUIT (pending replies arrive first), or a hard disconnect when Redis is unreachable. */
  close(): Promise<void>;
}

export class RedisConnectError extends Error {
  override name = "RedisConnectError";
  constructor(url: string, cause: unknown) {
    super(
      `could not connect to Redis at ${url}: ${cause instanceof Error ? cause.message : String(cause)}; ` +
        "check REDIS_URL, the password, and that redis-server is running",
      { cause },
    );
  }
}

/** The ioredis options a role implies; exported for services that build BullMQ connections themselves. */
export function redisRoleOptions(role: RedisRole): IORedisOptions {
  return role === "worker"
    ? { maxRetriesPerRequest: null, enableOfflineQueue: true }
    : { maxRetriesPerRequest: 1, enableOfflineQueue: false };
}

/**
 * Connects and waits for the ready check, or throws RedisConnectError when the first
 * connection fails. Afterwards reconnects forever with jittered exponential backoff.
 */
export async function connectRedis(opts: RedisOptions): Promise<RedisClient> {
  const shown = redactUrl(opts.url);
  const log = opts.logger.child({ component: "redis", role: opts.role, url: shown });
  const backoff = { baseMs: opts.retryBaseMs ?? 100, maxMs: opts.retryMaxMs ?? 5_000 };

  const redis = new Redis(opts.url, {
    lazyConnect: true,
    enableReadyCheck: true,
    connectTimeout: opts.connectTimeoutMs ?? 5_000,
    // ioredis counts attempts from 1 and resets them on every successful connection.
    retryStrategy: (times) => jitteredBackoff(times - 1, backoff),
    ...(opts.name ? { connectionName: opts.name } : {}),
    ...redisRoleOptions(opts.role),
    ...opts.redisOptions,
  });

  let wasReady = false;
  let downSince = 0;
  let lastError: Error | undefined;
  // ioredis prints "[ioredis] Unhandled error event" to the console when no listener exists.
  redis.on("error", (err: Error) => {
    lastError = err;
    log.warn({ err }, "redis error");
  });
  redis.on("close", () => {
    if (wasReady && !downSince) {
      downSince = Date.now();
      log.warn("redis disconnected");
    }
  });
  redis.on("reconnecting", (delayMs: number) => log.info({ delayMs }, "redis reconnecting"));
  redis.on("ready", () => {
    if (wasReady) log.info({ downMs: downSince ? Date.now() - downSince : 0 }, "redis reconnected");
    else log.info("redis connected");
    wasReady = true;
    downSince = 0;
  });
  redis.on("end", () => log.info("redis connection ended"));

  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect(); // stop the retry loop ioredis started
    // connect() rejects with "Connection is closed."; the socket error says why.
    throw new RedisConnectError(shown, lastError ?? err);
  }

  return {
    redis,
    role: opts.role,
    isReady: () => redis.status === "ready",
    async close() {
      if (redis.status === "end") return;
      if (redis.status === "ready") {
        try {
          await redis.quit();
          return;
        } catch (err) {
          log.warn({ err }, "redis quit failed, disconnecting");
        }
      }
      redis.disconnect();
    },
  };
}
