/**
 * The mirror lock across a Redis outage (real redis-server with its append-only file, stopped and
 * started on the same port): a lock let go of while Redis is down is released as soon as Redis is
 * back, not when its TTL ends, and never one that another holder has taken since.
 */
import { startRedisServer, waitFor, type RedisServer } from "@ovntap/lab";
import { connectRedis, createLogger, type RedisClient } from "@ovntap/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LockBusyError, MirrorLocks } from "./lock.js";

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

describe("MirrorLocks within one process", () => {
  /** Counts the SET NX attempts: each is a Redis round trip a waiter makes. */
  class CountingLocks extends MirrorLocks {
    attempts = 0;
    override async tryAcquire(id: string): Promise<string | undefined> {
      this.attempts++;
      return super.tryAcquire(id);
    }
  }

  it("a second holder of the same mirror waits behind the first and takes over without polling Redis", async () => {
    const locks = new CountingLocks(client.redis, { prefix: "t0", ttlMs: 15_000, logger });
    const order: string[] = [];
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((r) => (releaseFirst = r));
    const first = locks.withLock("shop/web", { waitMs: 10_000 }, async () => {
      order.push("first in");
      await firstHeld;
      order.push("first out");
    });
    await waitFor(() => Promise.resolve(order.length === 1), { what: "the first holder", timeoutMs: 5_000 });
    const second = locks.withLock("shop/web", { waitMs: 10_000 }, async () => {
      order.push("second in");
      return (await client.redis.get(locks.key("shop/web"))) !== null;
    });
    // Another mirror is not held up by it.
    await locks.withLock("shop/db", { waitMs: 1_000 }, () => Promise.resolve(order.push("other")));
    await new Promise((r) => setTimeout(r, 300));
    expect(order).toEqual(["first in", "other"]);
    releaseFirst();
    await first;
    expect(await second).toBe(true);
    expect(order).toEqual(["first in", "other", "first out", "second in"]);
    // first, other, second: one SET each, none repeated while waiting.
    expect(locks.attempts).toBe(3);
    expect(await client.redis.get(locks.key("shop/web"))).toBeNull();
  });

  it("a waiter behind a local holder gives up after waitMs, and the holder is unaffected", async () => {
    const locks = new MirrorLocks(client.redis, { prefix: "t0b", ttlMs: 15_000, logger });
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((r) => (releaseFirst = r));
    let entered = false;
    const first = locks.withLock("shop/web", { waitMs: 1_000 }, async () => {
      entered = true;
      await firstHeld;
      return "first done";
    });
    await waitFor(() => Promise.resolve(entered), { what: "the first holder", timeoutMs: 5_000 });
    await expect(
      locks.withLock("shop/web", { waitMs: 50 }, () => Promise.resolve("never")),
    ).rejects.toBeInstanceOf(LockBusyError);
    releaseFirst();
    expect(await first).toBe("first done");
    // Free again for the next one.
    expect(await locks.withLock("shop/web", { waitMs: 1_000 }, () => Promise.resolve("third"))).toBe("third");
  });
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
