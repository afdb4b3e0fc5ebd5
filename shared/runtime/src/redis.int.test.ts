import { randomUUID } from "node:crypto";
import { freePort, startRedisServer, waitFor, type RedisServer } from "@ovntap/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { connectRedis, RedisConnectError, type RedisClient } from "./redis.js";
import { captureLogs } from "./testing/log-capture.js";

function testLogger() {
  const logs = captureLogs();
  return { logs, logger: createLogger({ name: "redis-test", level: "debug", destination: logs.stream }) };
}

describe("connectRedis against redis-server", () => {
  let redis: RedisServer;
  const clients: RedisClient[] = [];
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await redis?.stop();
  });

  it("sets maxRetriesPerRequest null for the worker role only", async () => {
    const { logger } = testLogger();
    const worker = await connectRedis({ url: redis.url, logger, role: "worker" });
    const client = await connectRedis({ url: redis.url, logger, role: "client", name: "ovntap-test" });
    clients.push(worker, client);
    expect(worker.redis.options.maxRetriesPerRequest).toBeNull();
    expect(client.redis.options.maxRetriesPerRequest).not.toBeNull();
    expect(worker.redis.options.enableReadyCheck).toBe(true);
    expect(client.isReady()).toBe(true);
    expect(await client.redis.client("GETNAME")).toBe("ovntap-test");
  });

  it("across a restart: the client fails fast while down, the worker waits, both resume", async () => {
    const { logger, logs } = testLogger();
    const opts = { url: redis.url, logger, retryBaseMs: 50, retryMaxMs: 300 };
    const worker = await connectRedis({ ...opts, role: "worker" });
    const client = await connectRedis({ ...opts, role: "client" });
    clients.push(worker, client);
    const key = `t:${randomUUID()}`;
    await client.redis.set(key, "before");

    await redis.daemon.stop();
    await waitFor(() => !client.isReady() && !worker.isReady(), {
      what: "readiness to turn false",
      timeoutMs: 10_000,
    });
    await logs.waitFor((r) => r.msg === "redis disconnected", 10_000);
    await logs.waitFor((r) => r.msg === "redis reconnecting" && typeof r.delayMs === "number", 10_000);

    const t = Date.now();
    await expect(client.redis.get(key)).rejects.toThrow();
    expect(Date.now() - t).toBeLessThan(1_000);
    // Issued while Redis is down: queued, and completed after the restart.
    const queued = worker.redis.set(key, "written while down");

    await redis.restart();
    await expect(queued).resolves.toBe("OK");
    await waitFor(() => client.isReady() && worker.isReady(), {
      what: "readiness to return",
      timeoutMs: 20_000,
    });
    expect(await client.redis.get(key)).toBe("written while down");
    expect(
      logs
        .messages("redis reconnected")
        .map((r) => r.role)
        .sort(),
    ).toEqual(["client", "worker"]);
  });

  it("fails the first connection with RedisConnectError instead of retrying forever", async () => {
    const { logger } = testLogger();
    const port = await freePort();
    const t = Date.now();
    const err = await connectRedis({ url: `redis://127.0.0.1:${port}`, logger, role: "worker" }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RedisConnectError);
    expect((err as Error).message).toContain(`redis://127.0.0.1:${port}`);
    expect((err as Error).message).toContain("ECONNREFUSED");
    expect(Date.now() - t).toBeLessThan(5_000);
  });

  it("authenticates with a password in the URL and never logs it", async () => {
    const own = await startRedisServer();
    try {
      const { logger, logs } = testLogger();
      const admin = await connectRedis({ url: own.url, logger, role: "client" });
      await admin.redis.config("SET", "requirepass", "s3cr3t-pw");
      const authed = await connectRedis({
        url: `redis://:s3cr3t-pw@127.0.0.1:${own.port}`,
        logger,
        role: "client",
      });
      expect(await authed.redis.ping()).toBe("PONG");
      const bad = await connectRedis({
        url: `redis://:wrong-pw@127.0.0.1:${own.port}`,
        logger,
        role: "client",
      }).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(Error);
      expect((bad as Error).message).not.toContain("wrong-pw");
      await authed.close();
      await admin.close();
      const text = JSON.stringify(logs.records);
      expect(text).not.toContain("s3cr3t-pw");
      expect(text).toContain("redis://:***@127.0.0.1");
    } finally {
      await own.stop();
    }
  });
});
