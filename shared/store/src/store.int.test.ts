import { randomUUID } from "node:crypto";
import { mirrorJobId, MirrorSpec, OVN_APPLY_QUEUE } from "@ovntap/contracts";
import type { MirrorStatus } from "@ovntap/contracts";
import { startRedisServer, waitFor, type RedisServer } from "@ovntap/lab";
import { connectRedis, createLogger, type RedisClient } from "@ovntap/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestHash } from "./hash.js";
import { APPLY_JOB_OPTIONS, createApplyQueue, enqueueApply } from "./queue.js";
import { createStore, type Store } from "./store.js";
import { makeEvent } from "./events.js";

const logger = createLogger({ name: "store-test", level: "silent" });
const T0 = new Date("2030-01-01T00:00:00.000Z");

function spec(name: string, namespace = "shop", extra: Partial<MirrorSpec> = {}): MirrorSpec {
  return MirrorSpec.parse({
    name,
    namespace,
    sources: { type: "pods", names: ["web-0"] },
    direction: "both",
    target: { type: "gre", sink: "10.0.0.9" },
    ttlSeconds: 3600,
    ...extra,
  });
}

function request(s: MirrorSpec, requestId = randomUUID()) {
  return { spec: s, owner: "alice", requestId, requestHash: requestHash({ op: "create", spec: s }), now: T0 };
}

describe("@ovntap/store against redis-server", () => {
  let server: RedisServer;
  let client: RedisClient;
  beforeAll(async () => {
    server = await startRedisServer();
    client = await connectRedis({ url: server.url, logger, role: "client" });
  });
  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });

  /** A store with its own prefix, so tests do not see each other's keys. */
  function fresh(opts: { requestRetentionSeconds?: number } = {}): Store {
    return createStore({ redis: client.redis, prefix: `{t-${randomUUID()}}`, now: () => T0, ...opts });
  }

  /** Every key of a store and its content, to assert that nothing changed. */
  async function snapshot(store: Store): Promise<Record<string, unknown>> {
    const keys = (await client.redis.keys(`${store.keys.prefix}:*`)).sort();
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const type = await client.redis.type(key);
      out[key] =
        type === "hash"
          ? await client.redis.hgetall(key)
          : type === "set"
            ? (await client.redis.smembers(key)).sort()
            : type === "zset"
              ? await client.redis.zrange(key, 0, -1, "WITHSCORES")
              : await client.redis.get(key);
    }
    return out;
  }

  it("create stores the record (generation 1), Pending status, indexes, expiry and dedupe record at once", async () => {
    const store = fresh();
    const input = request(spec("web"));
    const r = await store.applyCreate({ ...input, maxActive: 5 });
    expect(r.type).toBe("created");
    if (r.type !== "created") return;
    expect(r.record).toMatchObject({
      generation: 1,
      owner: "alice",
      requestId: input.requestId,
      createdAt: T0.toISOString(),
      expiresAt: "2030-01-01T01:00:00.000Z",
    });
    expect(r.status).toMatchObject({ phase: "Pending", generation: 1, observedGeneration: 0 });
    expect(r.reply).toEqual({ ok: true, mirror: r.record, status: r.status });

    expect(await store.getRecord("shop", "web")).toEqual(r.record);
    expect(await store.getStatus("shop", "web")).toEqual(r.status);
    expect(await store.countActive("shop")).toBe(1);
    expect(await store.listRecords()).toEqual([r.record]);
    expect(await store.listRecords("shop")).toEqual([r.record]);
    expect(await store.listRecords("other")).toEqual([]);
    expect(await client.redis.zscore(store.keys.expiries, "shop/web")).toBe(
      String(Date.parse("2030-01-01T01:00:00.000Z")),
    );
    const ttl = await client.redis.ttl(store.keys.request(input.requestId));
    expect(ttl).toBeGreaterThan(24 * 3600 - 10);
    expect(ttl).toBeLessThanOrEqual(24 * 3600);
    const remembered = await store.lookupRequest(input.requestId);
    expect(remembered).toMatchObject({ hash: input.requestHash, reply: r.reply, generation: 1 });
  });

  it("a duplicate (same id, same hash) returns the first reply and changes nothing; another hash is a conflict", async () => {
    const store = fresh();
    const input = request(spec("web"));
    const first = await store.applyCreate(input);
    if (first.type !== "created") throw new Error(first.type);
    const before = await snapshot(store);

    const again = await store.applyCreate({ ...input, now: new Date(T0.getTime() + 5000) });
    expect(again.type).toBe("duplicate");
    if (again.type === "duplicate") expect(again.request.reply).toEqual(first.reply);

    const other = await store.applyCreate({ ...request(spec("db"), input.requestId) });
    expect(other).toEqual({ type: "conflict", requestId: input.requestId });
    // The same id on another op (a delete) with its own hash: a conflict too.
    const del = await store.applyDelete({
      namespace: "shop",
      name: "web",
      requestId: input.requestId,
      requestHash: "something-else",
    });
    expect(del.type).toBe("conflict");
    expect(await snapshot(store)).toEqual(before);
  });

  it("refuses a duplicate name, and a create over quota, without writing anything", async () => {
    const store = fresh();
    await store.applyCreate({ ...request(spec("a")), maxActive: 2 });
    await store.applyCreate({ ...request(spec("b")), maxActive: 2 });
    await store.applyCreate({ ...request(spec("x", "other")), maxActive: 2 });
    const before = await snapshot(store);

    const dup = await store.applyCreate({ ...request(spec("a")), maxActive: 2 });
    expect(dup.type).toBe("already_exists");
    if (dup.type === "already_exists") expect(dup.record.spec.name).toBe("a");
    const over = await store.applyCreate({ ...request(spec("c")), maxActive: 2 });
    expect(over).toEqual({ type: "quota_exceeded", active: 2, limit: 2 });
    expect(await snapshot(store)).toEqual(before);

    // A mirror being deleted no longer counts.
    const del = await store.applyDelete({ namespace: "shop", name: "a", requestId: "d1", requestHash: "h" });
    expect(del.type).toBe("deleted");
    expect(await store.countActive("shop")).toBe(1);
    expect((await store.applyCreate({ ...request(spec("c")), maxActive: 2 })).type).toBe("created");
  });

  it("concurrent creates: one name is created once; a quota of 5 admits exactly 5", async () => {
    const store = fresh();
    const same = await Promise.all(Array.from({ length: 20 }, () => store.applyCreate(request(spec("web")))));
    expect(same.filter((r) => r.type === "created")).toHaveLength(1);
    expect(same.filter((r) => r.type === "already_exists")).toHaveLength(19);

    const many = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.applyCreate({ ...request(spec(`m${i}`, "quota")), maxActive: 5 }),
      ),
    );
    expect(many.filter((r) => r.type === "created")).toHaveLength(5);
    expect(many.filter((r) => r.type === "quota_exceeded")).toHaveLength(15);
    expect(await store.countActive("quota")).toBe(5);
    expect(await store.listRecords("quota")).toHaveLength(5);
  });

  it("delete marks the record deleting and bumps the generation; a second delete changes nothing", async () => {
    const store = fresh();
    await store.applyCreate(request(spec("web")));
    const later = new Date(T0.getTime() + 60_000);
    const d = await store.applyDelete({
      namespace: "shop",
      name: "web",
      requestId: "del-1",
      requestHash: "h1",
      now: later,
    });
    expect(d.type).toBe("deleted");
    if (d.type !== "deleted") return;
    expect(d.record).toMatchObject({
      generation: 2,
      requestId: "del-1",
      deletionRequestedAt: later.toISOString(),
      updatedAt: later.toISOString(),
    });
    // The status is the stored one (generation 1, Pending) until the applier writes another.
    expect(d.status).toMatchObject({ phase: "Pending", generation: 1 });
    expect(d.reply).toEqual({ ok: true, mirror: d.record, status: d.status });
    const m = await store.getMirror("shop", "web");
    expect(m).toMatchObject({ deleting: true, deleteReason: "request", record: d.record });
    expect(await client.redis.zscore(store.keys.expiries, "shop/web")).toBeNull();
    expect(await store.countActive("shop")).toBe(0);
    expect(await store.listRecords("shop")).toHaveLength(1);

    const before = await snapshot(store);
    const again = await store.applyDelete({
      namespace: "shop",
      name: "web",
      requestId: "del-2",
      requestHash: "h2",
    });
    expect(again.type).toBe("already_deleting");
    expect(await snapshot(store)).toEqual(before);
    const missing = await store.applyDelete({
      namespace: "shop",
      name: "nope",
      requestId: "del-3",
      requestHash: "h3",
    });
    expect(missing.type).toBe("not_found");
    expect(await snapshot(store)).toEqual(before);
  });

  it("extend sets a new expiry and bumps the generation; refuses deleting and missing mirrors", async () => {
    const store = fresh();
    await store.applyCreate(request(spec("web")));
    const later = new Date(T0.getTime() + 600_000);
    const events = (record: { generation: number; expiresAt: string }, previous: { expiresAt: string }) => [
      makeEvent("extended", {
        namespace: "shop",
        mirror: "web",
        generation: record.generation,
        principal: "alice",
        requestId: "ext-1",
        eventId: "ext-1:extended",
        time: later,
        detail: { ttlSeconds: 7200, previousExpiresAt: previous.expiresAt, expiresAt: record.expiresAt },
      }),
    ];
    const e = await store.applyExtend({
      namespace: "shop",
      name: "web",
      ttlSeconds: 7200,
      requestId: "ext-1",
      requestHash: "h",
      now: later,
      events,
    });
    expect(e.type).toBe("extended");
    if (e.type !== "extended") return;
    expect(e.record.generation).toBe(2);
    expect(e.record.expiresAt).toBe(new Date(later.getTime() + 7_200_000).toISOString());
    expect(e.previous.expiresAt).toBe("2030-01-01T01:00:00.000Z");
    expect(await client.redis.zscore(store.keys.expiries, "shop/web")).toBe(
      String(later.getTime() + 7_200_000),
    );
    const stored = await store.lookupRequest("ext-1");
    expect(stored?.events).toHaveLength(1);
    expect(stored?.events[0]).toMatchObject({ type: "extended", eventId: "ext-1:extended" });
    expect(stored?.eventsPublished).toBe(false);
    expect(await store.markEventsPublished("ext-1")).toBe(true);
    expect((await store.lookupRequest("ext-1"))?.eventsPublished).toBe(true);
    expect(await store.markEventsPublished("never-seen")).toBe(false);
    expect(await client.redis.exists(store.keys.request("never-seen"))).toBe(0);

    await store.applyDelete({ namespace: "shop", name: "web", requestId: "d", requestHash: "d" });
    const x = await store.applyExtend({
      namespace: "shop",
      name: "web",
      ttlSeconds: 60,
      requestId: "ext-2",
      requestHash: "h",
    });
    expect(x.type).toBe("deleting");
    const y = await store.applyExtend({
      namespace: "shop",
      name: "gone",
      ttlSeconds: 60,
      requestId: "ext-3",
      requestHash: "h",
    });
    expect(y.type).toBe("not_found");
  });

  it("concurrent extends each get their own generation (compare-and-set)", async () => {
    const store = fresh();
    await store.applyCreate(request(spec("web")));
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        store.applyExtend({
          namespace: "shop",
          name: "web",
          ttlSeconds: 60 + i,
          requestId: `e${i}`,
          requestHash: `h${i}`,
        }),
      ),
    );
    const gens = results.map((r) => (r.type === "extended" ? r.record.generation : -1)).sort((a, b) => a - b);
    expect(gens).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect((await store.getRecord("shop", "web"))?.generation).toBe(11);
  });

  it("setStatus never goes back to an older generation, nor ahead of the record", async () => {
    const store = fresh();
    await store.applyCreate(request(spec("web")));
    await store.applyExtend({
      namespace: "shop",
      name: "web",
      ttlSeconds: 60,
      requestId: "e",
      requestHash: "e",
    });
    const status = (generation: number, phase: MirrorStatus["phase"] = "Active"): MirrorStatus =>
      ({
        phase,
        generation,
        observedGeneration: generation,
        ports: ["web-0.shop"],
        updatedAt: T0.toISOString(),
      }) as MirrorStatus;

    expect(await store.setStatus("shop", "web", status(2))).toEqual({ type: "updated" });
    expect(await store.setStatus("shop", "web", status(1, "Applying"))).toEqual({
      type: "stale",
      storedGeneration: 2,
    });
    expect(await store.getStatus("shop", "web")).toMatchObject({ phase: "Active", generation: 2 });
    expect(await store.setStatus("shop", "web", status(3))).toEqual({ type: "ahead", recordGeneration: 2 });
    // The same generation may move on (Active → Degraded).
    expect(
      await store.setStatus("shop", "web", {
        ...status(2),
        phase: "Degraded",
        reason: "PortMissing",
        message: "web-0.shop is gone",
      }),
    ).toEqual({ type: "updated" });
    expect(await store.setStatus("shop", "nope", status(1))).toEqual({ type: "not_found" });
    await expect(store.setStatus("shop", "web", { ...status(2), observedGeneration: 3 })).rejects.toThrow(
      /observedGeneration 3 exceeds generation 2/,
    );
  });

  it("listMirrors and pendingReconcile read every mirror across several pipelines, in id order", async () => {
    const store = fresh();
    const names = Array.from({ length: 450 }, (_, i) => `m-${String(i).padStart(3, "0")}`);
    for (const name of names) await store.applyCreate(request(spec(name, "bulk")));
    // One whose hash went between the index read and the hash read (a purge racing the scan),
    // in the middle of the second pipeline: skipped, not an error.
    await client.redis.del(store.keys.mirror("bulk", "m-250"));
    const kept = names.filter((n) => n !== "m-250");
    const listed = await store.listMirrors();
    expect(listed.map((m) => m.record.spec.name)).toEqual(kept);
    expect(listed.every((m) => m.status.phase === "Pending" && m.record.generation === 1)).toBe(true);
    expect((await store.listMirrors("bulk")).length).toBe(449);
    // A pipeline at a time: 100 per chunk, the purged one missing from the third.
    const sizes: number[] = [];
    const scanned: string[] = [];
    for await (const chunk of store.scanMirrors(undefined, { pauseMs: 1 })) {
      sizes.push(chunk.length);
      scanned.push(...chunk.map((m) => m.record.spec.name));
    }
    expect(sizes).toEqual([100, 100, 99, 100, 50]);
    expect(scanned).toEqual(kept);
    // Paced between pipelines, as the applier's background scans are: the same answer.
    expect((await store.listMirrors(undefined, { pauseMs: 2 })).map((m) => m.record.spec.name)).toEqual(kept);
    const pending = await store.pendingReconcile({ pauseMs: 2 });
    expect(pending.map((p) => p.name)).toEqual(kept);
    expect((await store.pendingReconcile()).map((p) => p.name)).toEqual(kept);
    expect(new Set(pending.map((p) => p.reason))).toEqual(new Set(["resync"]));
  });

  it("pendingReconcile lists records whose observedGeneration lags, with the reason to enqueue", async () => {
    const store = fresh();
    await store.applyCreate(request(spec("a")));
    await store.applyCreate(request(spec("b")));
    expect((await store.pendingReconcile()).map((p) => [p.name, p.generation, p.reason])).toEqual([
      ["a", 1, "resync"],
      ["b", 1, "resync"],
    ]);
    await store.setStatus("shop", "a", {
      phase: "Active",
      generation: 1,
      observedGeneration: 1,
      ports: [],
      updatedAt: T0.toISOString(),
    });
    expect((await store.pendingReconcile()).map((p) => p.name)).toEqual(["b"]);
    await store.applyDelete({ namespace: "shop", name: "a", requestId: "d", requestHash: "d" });
    expect(await store.pendingReconcile()).toEqual([
      {
        namespace: "shop",
        name: "a",
        generation: 2,
        observedGeneration: 1,
        deleting: true,
        reason: "delete",
      },
      {
        namespace: "shop",
        name: "b",
        generation: 1,
        observedGeneration: 0,
        deleting: false,
        reason: "resync",
      },
    ]);
  });

  it("purge removes a deleted mirror when the generation matches; a re-created name continues the generations", async () => {
    const store = fresh();
    await store.applyCreate(request(spec("web")));
    expect(await store.purge("shop", "web", 1)).toEqual({ type: "not_deleting" });
    await store.applyDelete({ namespace: "shop", name: "web", requestId: "d", requestHash: "d" });
    expect(await store.purge("shop", "web", 1)).toEqual({ type: "generation_mismatch", generation: 2 });
    const p = await store.purge("shop", "web", 2);
    expect(p.type).toBe("purged");
    if (p.type === "purged") expect(p.record.generation).toBe(2);
    expect(await store.purge("shop", "web", 2)).toEqual({ type: "not_found" });

    expect(await store.getRecord("shop", "web")).toBeUndefined();
    expect(await store.listRecords()).toEqual([]);
    // Only the generation counter (now with a TTL) and the dedupe records remain.
    const left = (await client.redis.keys(`${store.keys.prefix}:*`)).filter((k) => !k.includes(":request:"));
    expect(left).toEqual([store.keys.generation("shop", "web")]);
    expect(await client.redis.ttl(store.keys.generation("shop", "web"))).toBeGreaterThan(29 * 24 * 3600);

    const again = await store.applyCreate(request(spec("web")));
    expect(again.type === "created" && again.record.generation).toBe(3);
    expect(await client.redis.ttl(store.keys.generation("shop", "web"))).toBe(-1);
  });

  it("dueExpiries lists mirrors past their expiry; applyExpire marks them deleting once", async () => {
    const store = fresh();
    await store.applyCreate(request(spec("short", "shop", { ttlSeconds: 60 })));
    await store.applyCreate(request(spec("long", "shop", { ttlSeconds: 7200 })));
    expect(await store.dueExpiries(T0)).toEqual([]);
    const at = new Date(T0.getTime() + 61_000);
    expect(await store.dueExpiries(at)).toEqual([
      { namespace: "shop", name: "short", expiresAt: "2030-01-01T00:01:00.000Z" },
    ]);
    expect(await store.applyExpire("shop", "long", at)).toEqual({
      type: "not_due",
      expiresAt: "2030-01-01T02:00:00.000Z",
    });
    const e = await store.applyExpire("shop", "short", at);
    expect(e.type).toBe("expired");
    if (e.type === "expired") {
      expect(e.record).toMatchObject({ generation: 2, deletionRequestedAt: at.toISOString() });
    }
    expect(await store.getMirror("shop", "short")).toMatchObject({ deleting: true, deleteReason: "expired" });
    expect(await store.dueExpiries(at)).toEqual([]);
    expect(await store.applyExpire("shop", "short", at)).toEqual({ type: "already_deleting" });
    expect((await store.pendingReconcile()).find((p) => p.name === "short")?.reason).toBe("expire");
  });

  it("a dedupe record expires after its retention; the id is then new", async () => {
    const store = fresh({ requestRetentionSeconds: 1 });
    const input = request(spec("web"));
    await store.applyCreate(input);
    expect(await client.redis.ttl(store.keys.request(input.requestId))).toBeLessThanOrEqual(1);
    expect((await store.applyCreate(input)).type).toBe("duplicate");
    await waitFor(async () => (await client.redis.exists(store.keys.request(input.requestId))) === 0, {
      what: "the dedupe record to expire",
      timeoutMs: 5_000,
    });
    expect(await store.lookupRequest(input.requestId)).toBeUndefined();
    // The same id is now a new request: this create meets the existing mirror.
    expect((await store.applyCreate(input)).type).toBe("already_exists");
  });

  it("enqueueApply uses the mirror job id, so the same generation is one job", async () => {
    const prefix = `{q-${randomUUID()}}`;
    const queue = createApplyQueue({ connection: client.redis, prefix });
    try {
      const job = { namespace: "shop", name: "web", generation: 2, reason: "create" as const };
      const a = await enqueueApply(queue, job);
      const b = await enqueueApply(queue, { ...job, reason: "resync" });
      expect(a.jobId).toBe("shop/web@2");
      expect(b.jobId).toBe(mirrorJobId(job));
      expect(await queue.getJobCounts("waiting")).toEqual({ waiting: 1 });
      const stored = await queue.getJob("shop/web@2");
      expect(stored?.data).toEqual(job);
      expect(stored?.opts).toMatchObject({
        attempts: APPLY_JOB_OPTIONS.attempts,
        backoff: APPLY_JOB_OPTIONS.backoff,
      });
      expect(queue.name).toBe(OVN_APPLY_QUEUE);
      await expect(enqueueApply(queue, { ...job, generation: 0 })).rejects.toThrow();
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it("keeps every acknowledged write across a redis-server restart (append-only file)", async () => {
    const store = fresh();
    const r = await store.applyCreate(request(spec("durable")));
    expect(r.type).toBe("created");
    // appendfsync everysec: wait for the fsync before killing.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    await server.restart();
    await waitFor(() => client.isReady(), { what: "the client to reconnect", timeoutMs: 15_000 });
    expect(await store.getRecord("shop", "durable")).toEqual(r.type === "created" ? r.record : undefined);
  });
});
