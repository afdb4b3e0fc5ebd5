/**
 * The ovn-applier service against real servers from one lab: OVN NB (with northd and a real
 * chassis), Redis (store, BullMQ, locks) and NATS JetStream (the event log). Jobs are enqueued
 * the way intake does it (store record first, then `enqueueApply`), and the assertions read
 * the results back: NB rows with ovn-nbctl, status and purge from the store, the audit trail
 * from JetStream.
 */
import { randomUUID } from "node:crypto";
import { mirrorJobId, MirrorSpec, type AuditRecord, type MirrorStatus } from "@ovntap/contracts";
import { startLab, waitFor, type Lab } from "@ovntap/lab";
import { OvsdbClient } from "@ovntap/ovsdb";
import {
  connectNats,
  connectRedis,
  createLogger,
  createMetrics,
  type Metrics,
  type NatsClient,
  type RedisClient,
} from "@ovntap/runtime";
import {
  createApplyQueue,
  createEventLog,
  createStore,
  enqueueApply,
  requestHash,
  type ApplyQueue,
  type EventLog,
  type Store,
} from "@ovntap/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApplier, type Applier } from "./applier.js";
import { MirrorLocks } from "./lock.js";
import { OWNER_KEY } from "./nb/names.js";

const logger = createLogger({
  name: "ovn-applier-test",
  level: (process.env.TEST_LOG_LEVEL as "info") ?? "silent",
});
const NS = "default";
const run = randomUUID().slice(0, 8);
const storePrefix = `{ovntap-${run}}`;
const bullmqPrefix = `bull-${run}`;
const measured: Record<string, number[]> = {
  activeAfterEnqueueMs: [],
  expiryLateMs: [],
  expiryAfterRestartMs: [],
  deleteMs: [],
};

let lab: Lab;
let redis: RedisClient;
let workerRedis: RedisClient;
let nats: NatsClient;
let nb: OvsdbClient;
let store: Store;
let events: EventLog;
let producer: ApplyQueue;
let metrics: Metrics | undefined;
const extraNb: OvsdbClient[] = [];
const statuses: { id: string; status: MirrorStatus; at: number }[] = [];
let applier: Applier | undefined;

/** The store, with every status write recorded (purge removes the last status with the record). */
function recordingStore(s: Store): Store {
  return {
    ...s,
    setStatus: async (ns, name, status) => {
      const r = await s.setStatus(ns, name, status);
      if (r.type === "updated") statuses.push({ id: `${ns}/${name}`, status, at: Date.now() });
      return r;
    },
  };
}

/**
 * Mirrors whose next `applied` publish fails as if NATS were down after the NB commit (the ack
 * never came): the event log the appliers get refuses it once.
 */
const failAppliedOnce = new Set<string>();
function flakyEvents(log: EventLog): EventLog {
  return {
    ...log,
    publish: async (event) => {
      if (event.type === "applied" && failAppliedOnce.delete(event.mirror)) {
        throw new Error("TIMEOUT: no JetStream ack (NATS down)");
      }
      return log.publish(event);
    },
  };
}

/** An applier replica; `ownNb` gives it its own NB connection, as a separate process has. */
async function newApplier(opts: { ownNb?: boolean } = {}): Promise<Applier> {
  let client = nb;
  // One registry per replica, as one per process; the first one's is asserted on.
  const registry = createMetrics({ defaultMetrics: false });
  metrics ??= registry;
  if (opts.ownNb) {
    client = await OvsdbClient.connect({ remote: lab.nbTcp, database: "OVN_Northbound", logger });
    extraNb.push(client);
  }
  const a = await createApplier({
    nb: client,
    redis: redis.redis,
    workerRedis: workerRedis.redis,
    store: recordingStore(store),
    events: flakyEvents(events),
    logger,
    metrics: registry,
    natsConnected: () => nats.isConnected(),
    storePrefix,
    config: {
      concurrency: 4,
      hvTimeoutMs: 10_000,
      expirySweepMs: 500,
      pendingSweepMs: 1_000,
      resyncIntervalMs: 5_000,
      driftCheckMs: 1_000,
      bullmqPrefix,
    },
  });
  await a.start();
  return a;
}

function spec(name: string, extra: Partial<MirrorSpec> = {}): MirrorSpec {
  return MirrorSpec.parse({
    name,
    namespace: NS,
    sources: { type: "pods", names: ["pod-a"] },
    direction: "egress",
    target: { type: "gre", sink: lab.env.LAB_SINK_IP },
    ttlSeconds: 3600,
    ...extra,
  });
}

/** What intake does: store the desired state, then enqueue its generation. */
async function create(s: MirrorSpec, now?: Date) {
  const requestId = randomUUID();
  const r = await store.applyCreate({
    spec: s,
    owner: "alice",
    requestId,
    requestHash: requestHash({ op: "create", spec: s }),
    ...(now ? { now } : {}),
  });
  if (r.type !== "created") throw new Error(`create ${s.name}: ${r.type}`);
  const job = { namespace: NS, name: s.name, generation: r.record.generation, reason: "create" as const };
  await enqueueApply(producer, job);
  return { record: r.record, jobId: mirrorJobId(job), enqueuedAt: Date.now() };
}

async function requestDelete(name: string) {
  const requestId = randomUUID();
  const r = await store.applyDelete({
    namespace: NS,
    name,
    requestId,
    requestHash: requestHash({ op: "delete", name }),
  });
  if (r.type !== "deleted") throw new Error(`delete ${name}: ${r.type}`);
  await enqueueApply(producer, { namespace: NS, name, generation: r.record.generation, reason: "delete" });
  return r.record;
}

async function statusOf(name: string): Promise<MirrorStatus | undefined> {
  return store.getStatus(NS, name);
}

async function waitPhase(
  name: string,
  phase: MirrorStatus["phase"],
  timeoutMs = 20_000,
): Promise<MirrorStatus> {
  return waitFor(
    async () => {
      const s = await statusOf(name);
      return s?.phase === phase ? s : undefined;
    },
    { what: `${name} ${phase}`, timeoutMs, intervalMs: 20 },
  );
}

async function nbRows(
  prefix: string,
): Promise<{ uuid: string; name: string; index: number; owner?: string }[]> {
  const out = JSON.parse(
    await lab.nbctl("--format=json", "--columns=_uuid,name,index,external_ids", "list", "Mirror"),
  ) as { data: [[string, string], string, number, [string, [string, string][]]][] };
  return out.data
    .map(([u, name, index, ids]) => {
      const owner = Object.fromEntries(ids[1])[OWNER_KEY];
      return { uuid: u[1], name, index, ...(owner ? { owner } : {}) };
    })
    .filter((r) => r.name.startsWith(prefix));
}

async function trail(name: string): Promise<AuditRecord[]> {
  return events.history(NS, name, { timeoutMs: 2_000 });
}
const types = (t: AuditRecord[]) => t.map((e) => e.type);

beforeAll(async () => {
  lab = await startLab({ services: false });
  redis = await connectRedis({ url: lab.env.REDIS_URL, logger, role: "client" });
  workerRedis = await connectRedis({ url: lab.env.REDIS_URL, logger, role: "worker" });
  nats = await connectNats({ url: lab.env.NATS_URL, name: "ovn-applier-test", logger });
  nb = await OvsdbClient.connect({ remote: lab.nbTcp, database: "OVN_Northbound", logger });
  store = createStore({ redis: redis.redis, prefix: storePrefix });
  events = createEventLog({ nc: nats.nc, logger });
  await events.ensure();
  producer = createApplyQueue({ connection: redis.redis, prefix: bullmqPrefix });
  applier = await newApplier();
}, 120_000);

afterAll(async () => {
  await applier?.stop();
  await producer?.close();
  await nb?.close();
  for (const c of extraNb) await c.close();
  await nats?.close();
  await workerRedis?.close();
  await redis?.close();
  await lab?.stop();
  console.log("ovn-applier service timings (ms)", JSON.stringify(measured));
});

describe("ovn-applier service on a real lab", () => {
  it("is ready: NB monitor synced, Redis, NATS, worker", () => {
    const checks = applier!.checks;
    expect(Object.fromEntries(Object.entries(checks).map(([k, f]) => [k, f()]))).toEqual({
      nb: true,
      redis: true,
      nats: true,
      worker: true,
    });
  });

  it("a job for a stored record ends Active with the NB rows; events once each, in order", async () => {
    const { record, enqueuedAt } = await create(spec("svc-active"));
    const status = await waitPhase("svc-active", "Active");
    measured.activeAfterEnqueueMs?.push(Date.now() - enqueuedAt);
    expect(status).toMatchObject({
      generation: record.generation,
      observedGeneration: record.generation,
      ports: ["pod-a.default"],
      sink: lab.env.LAB_SINK_IP,
      expiresAt: record.expiresAt,
    });
    const rows = await nbRows("ovntap.default.svc-active");
    expect(rows).toEqual([
      {
        uuid: expect.any(String) as string,
        name: "ovntap.default.svc-active",
        index: status.key!,
        owner: "default/svc-active",
      },
    ]);
    expect(status.conditions?.map((c) => [c.type, c.status])).toEqual([
      ["KeyAllocated", "True"],
      ["PortsAttached", "True"],
      ["ChassisSynced", "True"],
    ]);
    expect(statuses.filter((s) => s.id === "default/svc-active").map((s) => s.status.phase)).toEqual([
      "Applying",
      "Active",
    ]);
    await waitFor(async () => types(await trail("svc-active")).includes("active"), { what: "active event" });
    expect(types(await trail("svc-active"))).toEqual(["applying", "applied", "active"]);
    const applied = (await trail("svc-active"))[1];
    expect(applied).toMatchObject({
      type: "applied",
      generation: record.generation,
      principal: "system:ovntap:ovn-applier",
      requestId: record.requestId,
      detail: { rows: ["ovntap.default.svc-active"], key: status.key, sink: lab.env.LAB_SINK_IP },
    });

    // A redelivered/duplicated job and a direct reconcile change nothing and add no events.
    await enqueueApply(producer, {
      namespace: NS,
      name: "svc-active",
      generation: record.generation,
      reason: "create",
    });
    await expect(applier!.reconcile({ namespace: NS, name: "svc-active" })).resolves.toMatchObject({
      type: "active",
      result: { outcome: "unchanged" },
    });
    expect(types(await trail("svc-active"))).toEqual(["applying", "applied", "active"]);

    // Metrics are exported.
    const text = await metrics!.registry.metrics();
    expect(text).toMatch(/ovntap_ovn_applier_reconciles_total\{outcome="active"\} [1-9]/);
    expect(text).toMatch(/ovntap_ovn_applier_keys_allocated_total [1-9]/);
    expect(text).toContain("ovntap_ovn_applier_reconcile_duration_seconds_bucket");
    expect(text).toMatch(/^ovntap_ovn_applier_nb_connected 1$/m);
    // Counted at each resync (every 5 s here): this mirror among the Active ones.
    await waitFor(
      async () =>
        /^ovntap_ovn_applier_mirrors\{phase="Active"\} [1-9]/m.test(await metrics!.registry.metrics()),
      { what: "mirrors by phase", timeoutMs: 30_000 },
    );
  });

  it("an `applied` lost after the commit (NATS down) is published by the retry: once, in order", async () => {
    failAppliedOnce.add("svc-lost-applied");
    await create(spec("svc-lost-applied"));
    await waitPhase("svc-lost-applied", "Active");
    const t = await waitFor(
      async () => {
        const t = await trail("svc-lost-applied");
        return types(t).includes("active") ? t : undefined;
      },
      { what: "active event" },
    );
    expect(failAppliedOnce.has("svc-lost-applied")).toBe(false);
    expect(types(t)).toEqual(["applying", "applied", "active"]);
    await requestDelete("svc-lost-applied");
    await waitFor(async () => (await store.getMirror(NS, "svc-lost-applied")) === undefined, {
      what: "purged",
    });
  });

  it("delete: NB rows gone, status Deleted, record purged, `deleted` event", async () => {
    const t0 = Date.now();
    const record = await requestDelete("svc-active");
    await waitFor(async () => (await store.getMirror(NS, "svc-active")) === undefined, {
      what: "svc-active purged",
      timeoutMs: 20_000,
      intervalMs: 20,
    });
    measured.deleteMs?.push(Date.now() - t0);
    expect(await nbRows("ovntap.default.svc-active")).toEqual([]);
    expect(
      (
        await lab.nbctl("--bare", "--columns=mirror_rules", "list", "Logical_Switch_Port", "pod-a.default")
      ).trim(),
    ).toBe("");
    const last = statuses.filter((s) => s.id === "default/svc-active").at(-1)!.status;
    expect(last).toMatchObject({
      phase: "Deleted",
      generation: record.generation,
      observedGeneration: record.generation,
    });
    const t = await trail("svc-active");
    expect(types(t)).toEqual(["applying", "applied", "active", "deleted"]);
    expect(t.at(-1)).toMatchObject({ generation: record.generation, detail: { reason: "request" } });
  });

  it("drift through the service: mirror-del is repaired from the monitor, `drift_repaired` in the trail", async () => {
    await create(spec("svc-drift"));
    await waitPhase("svc-drift", "Active");
    const [row] = await nbRows("ovntap.default.svc-drift");
    await lab.nbctl("mirror-del", row!.name);
    const t0 = Date.now();
    const back = await waitFor(
      async () => (await nbRows("ovntap.default.svc-drift")).find((r) => r.uuid !== row!.uuid),
      { what: "row re-created", timeoutMs: 5_000, intervalMs: 20 },
    );
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(back.index).toBe(row!.index);
    await waitFor(async () => types(await trail("svc-drift")).includes("drift_repaired"), {
      what: "drift_repaired event",
      timeoutMs: 5_000,
    });
    const drift = (await trail("svc-drift")).find((e) => e.type === "drift_repaired");
    expect(drift?.type === "drift_repaired" && drift.detail.repairs).toContainEqual({
      table: "Mirror",
      name: row!.name,
      action: "created",
    });
    await requestDelete("svc-drift");
    await waitFor(async () => (await store.getMirror(NS, "svc-drift")) === undefined, { what: "purged" });
  });

  it("a terminal failure is Failed, `failed`, and not retried (UnrecoverableError)", async () => {
    const { jobId } = await create(
      spec("svc-selector", { sources: { type: "selector", matchLabels: { app: "x" } } }),
    );
    const status = await waitPhase("svc-selector", "Failed");
    expect(status).toMatchObject({ reason: "Unsupported", observedGeneration: status.generation });
    const job = await waitFor(
      async () => {
        const j = await producer.getJob(jobId);
        // Read again once failed: the first read may predate the move to failed.
        return j && (await j.isFailed()) ? producer.getJob(jobId) : undefined;
      },
      { what: "job failed" },
    );
    expect(job?.attemptsMade).toBe(1);
    const t = await trail("svc-selector");
    expect(t.at(-1)).toMatchObject({ type: "failed", detail: { code: "UNSUPPORTED", retryable: false } });
    await requestDelete("svc-selector");
    await waitFor(async () => (await store.getMirror(NS, "svc-selector")) === undefined, { what: "purged" });
  });

  it("TTL expiry lands within 2 s of the deadline: Expired, rows gone, purged", async () => {
    // The shortest TTL is 60 s; a record created 58 s ago expires 2 s from now.
    const { record } = await create(spec("svc-ttl", { ttlSeconds: 60 }), new Date(Date.now() - 58_000));
    await waitPhase("svc-ttl", "Active");
    expect((await nbRows("ovntap.default.svc-ttl")).length).toBe(1);
    const deadline = Date.parse(record.expiresAt);
    await waitFor(async () => (await store.getMirror(NS, "svc-ttl")) === undefined, {
      what: "svc-ttl expired and purged",
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    const expired = statuses.find((s) => s.id === "default/svc-ttl" && s.status.phase === "Expired")!;
    expect(expired).toBeDefined();
    measured.expiryLateMs?.push(expired.at - deadline);
    expect(expired.at - deadline).toBeGreaterThanOrEqual(0);
    expect(expired.at - deadline).toBeLessThan(2_000);
    expect(await nbRows("ovntap.default.svc-ttl")).toEqual([]);
    const t = await trail("svc-ttl");
    expect(types(t)).toEqual(["applying", "applied", "active", "expired", "deleted"]);
    expect(t.at(-1)).toMatchObject({ detail: { reason: "expired" } });
    expect(Date.parse(t.find((e) => e.type === "expired")!.time) - deadline).toBeLessThan(2_000);
  });

  it("TTL expiry across an applier restart: overdue at start → expired at once", async () => {
    const { record } = await create(spec("svc-restart", { ttlSeconds: 60 }), new Date(Date.now() - 57_000));
    await waitPhase("svc-restart", "Active");
    const deadline = Date.parse(record.expiresAt);
    await applier!.stop();
    applier = undefined;
    // Nobody is running: the deadline passes unnoticed.
    await waitFor(() => Date.now() > deadline + 1_000, { what: "deadline passed", timeoutMs: 10_000 });
    expect((await nbRows("ovntap.default.svc-restart")).length).toBe(1);
    expect((await store.getMirror(NS, "svc-restart"))?.deleting).toBe(false);
    const restarted = Date.now();
    applier = await newApplier();
    await waitFor(async () => (await store.getMirror(NS, "svc-restart")) === undefined, {
      what: "svc-restart expired after restart",
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    const expired = statuses.find((s) => s.id === "default/svc-restart" && s.status.phase === "Expired")!;
    measured.expiryAfterRestartMs?.push(expired.at - restarted);
    expect(expired.at - restarted).toBeLessThan(2_000);
    expect(await nbRows("ovntap.default.svc-restart")).toEqual([]);
    expect(types(await trail("svc-restart"))).toEqual([
      "applying",
      "applied",
      "active",
      "expired",
      "deleted",
    ]);
  });

  it("the chassis wait holds no job: Applying until hv_cfg catches up, finished after a restart too", async () => {
    const ctl = lab.state().pids.find((p) => p.name === "ovn-controller.out");
    expect(ctl).toBeDefined();
    process.kill(ctl!.pid, "SIGSTOP");
    try {
      const { record, jobId } = await create(spec("svc-handoff"));
      await waitFor(async () => types(await trail("svc-handoff")).includes("applied"), {
        what: "svc-handoff applied",
        timeoutMs: 10_000,
      });
      // The generation's job is done (no worker held for the chassis); the mirror is Applying.
      await waitFor(async () => (await producer.getJob(jobId))?.isCompleted(), {
        what: `${jobId} completed`,
        timeoutMs: 5_000,
      });
      expect((await statusOf("svc-handoff"))?.phase).toBe("Applying");
      // The replica that was waiting goes away; the next one's start-up resync picks it up.
      await applier!.stop();
      applier = await newApplier();
      process.kill(ctl!.pid, "SIGCONT");
      const status = await waitPhase("svc-handoff", "Active");
      expect(status.observedGeneration).toBe(record.generation);
      await waitFor(async () => types(await trail("svc-handoff")).includes("active"), { what: "active" });
      expect(types(await trail("svc-handoff"))).toEqual(["applying", "applied", "active"]);
      // Applying (perhaps written again by the new replica), then Active; never anything else.
      const phases = statuses.filter((s) => s.id === "default/svc-handoff").map((s) => s.status.phase);
      expect([...new Set(phases)]).toEqual(["Applying", "Active"]);
    } finally {
      process.kill(ctl!.pid, "SIGCONT");
    }
  });

  it("two replicas: many mirrors, each reconciled once at a time, all Active with distinct keys", async () => {
    const second = await newApplier({ ownNb: true });
    try {
      const names = Array.from({ length: 6 }, (_, i) => `svc-rep-${i}`);
      await Promise.all(names.map((n, i) => create(spec(n, i % 2 ? { direction: "both" } : {}))));
      for (const n of names) await waitPhase(n, "Active");
      const rows = await nbRows("ovntap.default.svc-rep-");
      expect(rows).toHaveLength(9);
      expect(new Set(rows.map((r) => r.index)).size).toBe(9);
      for (const n of names) {
        expect(types(await trail(n))).toEqual(["applying", "applied", "active"]);
      }
      for (const n of names) await requestDelete(n);
      for (const n of names) {
        await waitFor(async () => (await store.getMirror(NS, n)) === undefined, { what: `${n} purged` });
      }
      expect(await nbRows("ovntap.default.svc-rep-")).toEqual([]);
    } finally {
      await second.stop();
    }
  });

  it("the mirror lock: one holder at a time, released only by its token, expires", async () => {
    const locks = new MirrorLocks(redis.redis, { prefix: storePrefix, ttlMs: 1_000, logger });
    const a = await locks.tryAcquire("default/lock-test");
    expect(a).toBeDefined();
    expect(await locks.tryAcquire("default/lock-test")).toBeUndefined();
    expect(await locks.release("default/lock-test", "not-the-token")).toBe(false);
    const order: string[] = [];
    const waiter = locks.withLock("default/lock-test", { waitMs: 5_000 }, () => {
      order.push("second");
      return Promise.resolve();
    });
    order.push("first");
    expect(await locks.release("default/lock-test", a!)).toBe(true);
    await waiter;
    expect(order).toEqual(["first", "second"]);
    // An abandoned lock expires by itself.
    expect(await locks.tryAcquire("default/lock-test")).toBeDefined();
    await waitFor(async () => (await locks.tryAcquire("default/lock-test")) !== undefined, {
      what: "lock expiry",
      timeoutMs: 3_000,
    });
  });
});
