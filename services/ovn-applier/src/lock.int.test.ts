/**
 * The mirror lock across a Redis outage (real redis-server with its append-only file, stopped and
 * started on the same port): a lock let go of while Redis is down is released as soon as Redis is
 * back, not when its TTL ends, and never one that another holder has taken since.
 */
import { startRedisServer, waitFor, type RedisServer } from "@ovntap/lab";
import { connectRedis, createLogger, type RedisClient } from "@ovntap/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MirrorLocks } from "./lock.js";

const logger = createLogger({ name: "lock-test", level: "silent" });
let server: RedisServer;
let client: RedisClient;
let other: RedisClient;

beforeAll(async () => {
  server = await startRedisServer();
  client = await connectRedis({ url: server.url, logger, role: "client" });
  other = await connectRedis({ url: server.url, logger, role: "client" });
});

afterAll(async () => {
  await client?.close();
  await other?.close();
  await server?.stop();
});

describe("MirrorLocks across a Redis outage", () => {
  it("a release that failed is made once Redis is back, long before the TTL", async () => {
    const ttlMs = 60_000;
    const locks = new MirrorLocks(client.redis, { prefix: "t1", ttlMs, logger });
    await locks.withLock("shop/web", { waitMs: 1_000 }, async () => {
      await server.halt(); // Redis writes its append-only file: the lock key survives
    });
    expect(locks.owedReleases).toBe(1);
    await server.start();
    await waitFor(() => Promise.resolve(locks.owedReleases === 0), {
      what: "the owed release",
      timeoutMs: 30_000,
    });
    // Gone now, 59 s before it would have expired: someone else takes it at once.
    const rival = new MirrorLocks(other.redis, { prefix: "t1", ttlMs, logger });
    await waitFor(async () => (await rival.tryAcquire("shop/web")) !== undefined, {
      what: "the lock free for another holder",
      timeoutMs: 10_000,
    });
  });

  it("an owed release never removes a lock another holder took after it expired", async () => {
    const locks = new MirrorLocks(client.redis, { prefix: "t2", ttlMs: 1_000, logger });
    await locks.withLock("shop/db", { waitMs: 1_000 }, async () => {
      await server.halt();
    });
    expect(locks.owedReleases).toBe(1);
    await server.start();
    // Before our client reconnects, the old lock expires and another holder takes it.
    const rival = new MirrorLocks(other.redis, { prefix: "t2", ttlMs: 60_000, logger });
    const token = await waitFor(async () => rival.tryAcquire("shop/db"), {
      what: "the expired lock taken by another holder",
      timeoutMs: 30_000,
    });
    await waitFor(() => Promise.resolve(locks.owedReleases === 0), {
      what: "the owed release settled",
      timeoutMs: 30_000,
    });
    expect(await other.redis.get(rival.key("shop/db"))).toBe(token);
  });
});
