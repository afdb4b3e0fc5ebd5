/**
 * What the node agents report, as the applier uses it, against real servers (a lab's NB with
 * northd and a chassis, Redis, NATS JetStream): a data-plane record written to the
 * `ovntap_dataplane` bucket the way an agent writes it turns an Active OVN mirror Degraded with
 * the OVS text, and programmed again makes it Active; a key an agent holds towards a sink (its
 * claim in Redis) is never allocated to an OVN mirror.
 */
import { randomUUID } from "node:crypto";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import {
  DATAPLANE_KV_BUCKET,
  DataplaneRecord,
  formatKeyClaim,
  MirrorSpec,
  nodeKeyClaimsKey,
  type AuditRecord,
  type MirrorDataplane,
  type MirrorStatus,
} from "@ovntap/contracts";
import { startLab, waitFor, type Lab } from "@ovntap/lab";
import { OvsdbClient } from "@ovntap/ovsdb";
import { connectNats, connectRedis, createLogger, type NatsClient, type RedisClient } from "@ovntap/runtime";
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
import { createApplier, DATAPLANE_REASON, type Applier } from "./applier.js";

const logger = createLogger({
  name: "ovn-applier-test",
  level: (process.env.TEST_LOG_LEVEL as "info") ?? "silent",
});
const NS = "default";
const run = randomUUID().slice(0, 8);
const storePrefix = `{ovntap-dp-${run}}`;
const bullmqPrefix = `bull-dp-${run}`;
const FILE_EXISTS = (row: string) => `could not add network device ovn-${row} to ofproto (File exists)`;

let lab: Lab;
let redis: RedisClient;
let workerRedis: RedisClient;
let nats: NatsClient;
let nb: OvsdbClient;
let store: Store;
let events: EventLog;
let producer: ApplyQueue;
let applier: Applier | undefined;
let js: JetStreamClient;

beforeAll(async () => {
  lab = await startLab({ services: false });
  redis = await connectRedis({ url: lab.env.REDIS_URL, logger, role: "client" });
  workerRedis = await connectRedis({ url: lab.env.REDIS_URL, logger, role: "worker" });
  nats = await connectNats({ url: lab.env.NATS_URL, name: "ovn-applier-dataplane-test", logger });
  nb = await OvsdbClient.connect({ remote: lab.nbTcp, database: "OVN_Northbound", logger });
  store = createStore({ redis: redis.redis, prefix: storePrefix });
  events = createEventLog({ nc: nats.nc, logger });
  await events.ensure();
  producer = createApplyQueue({ connection: redis.redis, prefix: bullmqPrefix });
  js = jetstream(nats.nc);
  applier = await createApplier({
    nb,
    redis: redis.redis,
    workerRedis: workerRedis.redis,
    store,
    events,
    logger,
    nc: nats.nc,
    storePrefix,
    config: { concurrency: 4, hvTimeoutMs: 10_000, resyncIntervalMs: 5_000, bullmqPrefix },
  });
  // Started before any agent made the bucket: it keeps looking until one does.
  await applier.start();
  const jsm = await jetstreamManager(nats.nc);
  // The bucket as an agent's Kvm.create({ history: 1 }) makes it: one value per key.
  await jsm.streams.add({
    name: `KV_${DATAPLANE_KV_BUCKET}`,
    subjects: [`$KV.${DATAPLANE_KV_BUCKET}.>`],
    max_msgs_per_subject: 1,
    allow_rollup_hdrs: true,
    deny_delete: true,
    allow_direct: true,
  });
  await waitFor(() => applier?.dataplane?.ready, {
    what: "the applier watching the bucket",
    timeoutMs: 10_000,
  });
}, 120_000);

afterAll(async () => {
  await applier?.stop();
  await producer?.close();
  await nb?.close();
  await nats?.close();
  await workerRedis?.close();
  await redis?.close();
  await lab?.stop();
});

function spec(name: string, target: Record<string, unknown> = {}): MirrorSpec {
  return MirrorSpec.parse({
    name,
    namespace: NS,
    sources: { type: "pods", names: ["pod-a"] },
    direction: "egress",
    target: { type: "gre", sink: lab.env.LAB_SINK_IP, ...target },
    ttlSeconds: 3600,
  });
}

async function create(s: MirrorSpec) {
  const r = await store.applyCreate({
    spec: s,
    owner: "alice",
    requestId: randomUUID(),
    requestHash: requestHash({ op: "create", spec: s }),
  });
  if (r.type !== "created") throw new Error(`create ${s.name}: ${r.type}`);
  await enqueueApply(producer, { namespace: NS, name: s.name, generation: 1, reason: "create" });
  return r.record;
}

const waitStatus = (name: string, ok: (s: MirrorStatus) => boolean, what: string, timeoutMs = 20_000) =>
  waitFor(
    async () => {
      const s = await store.getStatus(NS, name);
      return s && ok(s) ? s : undefined;
    },
    { what: `${name}: ${what}`, timeoutMs, intervalMs: 20 },
  );

/** What an agent writes to `ovntap_dataplane[<node>]`. */
async function report(node: string, mirrors: Omit<MirrorDataplane, "since">[]) {
  const now = new Date().toISOString();
  const record = DataplaneRecord.parse({
    node,
    chassis: node,
    time: now,
    mirrors: mirrors.map((m) => ({ ...m, since: now })),
  });
  await js.publish(`$KV.${DATAPLANE_KV_BUCKET}.${node}`, JSON.stringify(record));
}

const trail = (name: string): Promise<AuditRecord[]> => events.history(NS, name, { timeoutMs: 2_000 });

describe("the nodes' data plane in the applier", () => {
  it("turns a node's OVS error into Degraded with its text within 5 s, and back to Active", async () => {
    await create(spec("dp-web"));
    await waitStatus("dp-web", (s) => s.phase === "Active", "Active");
    const row = "ovntap.default.dp-web";
    const node = lab.env.LAB_NODE;
    const where = { namespace: NS, mirror: "dp-web", row, bridge: "br-int", port: `ovn-${row}` } as const;

    await report(node, [{ ...where, state: "programmed" }]);
    const programmed = await waitStatus(
      "dp-web",
      (s) => s.conditions?.some((c) => c.type === "DataplaneProgrammed" && c.status === "True") ?? false,
      "DataplaneProgrammed True",
      5_000,
    );
    expect(programmed.phase).toBe("Active");
    expect(programmed.conditions?.find((c) => c.type === "DataplaneProgrammed")?.message).toBe(
      `programmed on ${node}`,
    );

    const t0 = Date.now();
    await report(node, [{ ...where, state: "error", component: "ovs", message: FILE_EXISTS(row) }]);
    const degraded = await waitStatus("dp-web", (s) => s.phase === "Degraded", "Degraded", 5_000);
    console.log(`data-plane error → Degraded in ${Date.now() - t0} ms`);
    expect(degraded).toMatchObject({
      reason: DATAPLANE_REASON,
      message: `ovs on node ${node} (${row}): ${FILE_EXISTS(row)}`,
    });
    expect(degraded.conditions?.find((c) => c.type === "DataplaneProgrammed")).toMatchObject({
      status: "False",
      reason: DATAPLANE_REASON,
    });
    // NB is not touched for it: the row and its key stay.
    expect(degraded.key).toBe(programmed.key);

    await report(node, [{ ...where, state: "programmed" }]);
    await waitStatus("dp-web", (s) => s.phase === "Active", "Active again", 5_000);
    const t = await trail("dp-web");
    const d = t.find((e) => e.type === "degraded");
    expect(d?.detail).toMatchObject({ reason: DATAPLANE_REASON });
    expect((d?.detail as { message: string }).message).toContain(FILE_EXISTS(row));
    expect(t.map((e) => e.type).filter((x) => x === "active" || x === "degraded")).toEqual([
      "active",
      "degraded",
      "active",
    ]);
  });

  it("ignores pending rows, other mirrors' rows and records of other nodes being fine", async () => {
    await create(spec("dp-calm"));
    await waitStatus("dp-calm", (s) => s.phase === "Active", "Active");
    await report("other-node", [
      { namespace: NS, mirror: "dp-calm", row: "ovntap.default.dp-calm", state: "pending" },
      {
        namespace: NS,
        mirror: "not-stored",
        row: "ovntap.default.not-stored",
        state: "error",
        message: "x",
      },
    ]);
    await report(lab.env.LAB_NODE, [
      { namespace: NS, mirror: "dp-calm", row: "ovntap.default.dp-calm", state: "programmed" },
    ]);
    await waitStatus(
      "dp-calm",
      (s) => s.conditions?.some((c) => c.type === "DataplaneProgrammed") ?? false,
      "DataplaneProgrammed",
      5_000,
    );
    expect((await store.getStatus(NS, "dp-calm"))?.phase).toBe("Active");
  });

  it("allocates no key a node agent holds towards the sink; a requested one is KEY_IN_USE naming it", async () => {
    const sink = "203.0.113.77";
    const claims = nodeKeyClaimsKey(storePrefix, sink);
    await redis.redis.hset(claims, {
      "1": formatKeyClaim({ node: "worker-9", namespace: "ops", name: "tap" }),
      "2": formatKeyClaim({ node: "worker-9", namespace: "ops", name: "tap2" }),
    });
    await create(spec("dp-keys", { sink }));
    const s = await waitStatus("dp-keys", (x) => x.phase === "Active", "Active");
    expect(s.key).toBe(3);

    await create(spec("dp-asked", { sink, key: 2 }));
    const failed = await waitStatus("dp-asked", (x) => x.phase === "Failed", "Failed");
    expect(failed.reason).toBe("KeyInUse");
    expect(failed.message).toContain(
      `GRE key 2 is already used towards ${sink} by the tunnel of ovs mirror ops/tap2 on node worker-9`,
    );
  });
});
