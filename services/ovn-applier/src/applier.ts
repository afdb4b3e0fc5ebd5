/**
 * The ovn-applier service: a BullMQ worker on `ovn-apply` that reconciles one mirror per job,
 * level-based, from the LATEST desired record in the store (never from the job payload, which
 * only names the mirror), plus the loops that keep NB and the store converged without a
 * request: monitor-driven drift triggers, TTL expiry, and sweeps.
 *
 *   const applier = await createApplier({ nb, redis, workerRedis, store, events, logger, metrics });
 *   await applier.start();
 *   http.addCheck("nb", applier.checks.nb);
 *   …
 *   await applier.stop();
 *
 * One job:
 *   lock(mirror) → record = store.getMirror()
 *     absent            → remove any NB rows it still owns (orphan)
 *     expired, not yet  → store.applyExpire() (atomic; publishes `expired`), then as deleting
 *     deleting          → NB rows removed → status Deleted|Expired → `deleted` → store.purge()
 *     otherwise         → Applying (new generation) → one NB transaction (`applied`)
 *                         → hv_cfg ≥ nb_cfg already (or within HV_INLINE_WAIT_MS)?
 *                             yes → Active (`active`); a delayed job at expiresAt
 *                             no  → the job ends, still Applying; when hv_cfg gets there the
 *                                   watcher runs a follow-up reconcile here that finds NB
 *                                   unchanged → Active; HV_TIMEOUT_MS after the commit → Degraded
 *                         `drift_repaired` when NB had drifted from an applied generation
 *   terminal error      → status Failed, `failed`, BullMQ UnrecoverableError (no retry)
 *   retryable error     → thrown: BullMQ retries with exponential backoff and jitter; on the
 *                         last attempt status Failed (retryable), and the pending sweep retries it
 *
 * Concurrency: a Redis lock per mirror (lock.ts) makes one replica reconcile a mirror at a
 * time; BullMQ's own job ids (`<ns>/<name>@<generation>`) fold duplicate enqueues.
 *
 * The nodes' data plane (with `nc`): the node agents report each ovntap OVN mirror row on their
 * node in KV `ovntap_dataplane` (dataplane.ts). A mirror NB and the chassis are done with but
 * some node's OVS refused is Degraded `DataplaneError` with the OVS text; a change there runs a
 * follow-up reconcile at once (beside the worker, like the chassis catching up), so the status
 * follows the node within a second or so, both ways. Keys: besides every NB Mirror row's,
 * allocation avoids the keys node agents hold for their own tunnels towards the same sink
 * (contracts `nodeKeyClaimsKey`).
 *
 * Kubernetes (with `kubernetes`, KUBERNETES=in-cluster|kubeconfig; kube.ts): selector sources
 * resolve to the ports of the pods they select and sink pods to their address in
 * ips.kubeovn.io, both read from informer caches. When a selector's pods or a sink pod's address
 * change, the mirror is reconciled again through the queue, as drift is; its ports that come and
 * go are `port_attached` / `port_detached` events, and the mirrored pods get Kubernetes Events
 * (attached, detached, and Warnings when the mirror fails or degrades).
 */
import { randomBytes } from "node:crypto";
import { Worker, UnrecoverableError, type Job, type JobsOptions } from "bullmq";
import type { Redis } from "ioredis";
import {
  MIRROR_PHASES,
  mirrorJobId,
  nodeKeyClaimsKey,
  OVN_APPLY_QUEUE,
  OvnApplyJob,
  parseKeyClaim,
  type JobReason,
  type MirrorCondition,
  type MirrorRecord,
  type MirrorStatus,
} from "@ovntap/contracts";
import type { NatsConnection } from "@nats-io/transport-node";
import { hasLogicalPort, type Kubernetes } from "@ovntap/k8s";
import type { OvsdbClient } from "@ovntap/ovsdb";
import { createLoops, type Logger, type Metrics } from "@ovntap/runtime";
import {
  APPLY_JOB_NAME,
  createApplyQueue,
  DEFAULT_PREFIX,
  enqueueApply,
  makeEvent,
  type ApplyQueue,
  type EventLog,
  type Store,
  type StoredMirror,
} from "@ovntap/store";
import type { EventDetail, EventType } from "@ovntap/contracts";
import { DEFAULT_CONFIG, type ApplierConfig } from "./config.js";
import { DataplaneView, describeProblems } from "./dataplane.js";
import {
  describeTarget,
  digest,
  KubeFollower,
  kubeView,
  podOfPort,
  selectionStatus,
  selectorOf,
} from "./kube.js";
import { LockBusyError, MirrorLocks } from "./lock.js";
import { ReconcileError } from "./nb/errors.js";
import { mirrorId, parseMirrorId } from "./nb/names.js";
import type { DesiredMirror } from "./nb/plan.js";
import { NbReconciler, toReconcileError, type ConvergeResult } from "./nb/reconciler.js";
import { NbState } from "./nb/state.js";
import { NbWatcher, type TriggerReason } from "./nb/watcher.js";
import { buildStatus, condition, eventIds, PRINCIPAL, sameStatus } from "./status.js";

export interface ApplierDeps {
  /** A connected OVN NB client; the applier monitors through it. The caller closes it. */
  nb: OvsdbClient;
  /** Store, lock and queue producer ("client" role connection). */
  redis: Redis;
  /** For the BullMQ Worker ("worker" role: maxRetriesPerRequest null); BullMQ duplicates it for blocking calls. */
  workerRedis: Redis;
  store: Store;
  events: Pick<EventLog, "publish">;
  logger: Logger;
  metrics?: Metrics | undefined;
  config?: Partial<ApplierConfig>;
  /** Readiness of NATS (main passes `nats.isConnected`). */
  natsConnected?: () => boolean;
  /**
   * NATS, to watch the node agents' data-plane records (KV `ovntap_dataplane`): an OVN mirror
   * whose rows a node's OVS refused is Degraded with the OVS text. Without it that check is off.
   */
  nc?: NatsConnection | undefined;
  /** Store key prefix, for the lock keys (default "{ovntap}", a Redis Cluster hash tag). */
  storePrefix?: string | undefined;
  /**
   * Kubernetes (started and stopped by the caller): selector sources, pod sinks, Events on the
   * mirrored pods. Without it those specs are UNSUPPORTED, naming the setting.
   */
  kubernetes?: Kubernetes | undefined;
  now?: () => Date;
}

/** What one reconcile of a mirror ended in. */
export type ReconcileOutcome =
  | { type: "active" | "degraded"; result: ConvergeResult }
  /** Committed; the watcher reconciles it again when the chassis catches up (or at the deadline). */
  | { type: "applying"; result: ConvergeResult }
  | { type: "deleted" | "expired"; removed: readonly string[] }
  | { type: "absent"; removed: readonly string[] }
  | { type: "foreign" };

export interface Applier {
  readonly state: NbState;
  readonly reconciler: NbReconciler;
  readonly watcher: NbWatcher;
  readonly queue: ApplyQueue;
  /** The node agents' data-plane records (when `nc` was given). */
  readonly dataplane: DataplaneView | undefined;
  /** Starts the worker, the watcher and the sweeps (the NB monitor is up after createApplier). */
  start(): Promise<void>;
  /** Stops taking jobs, waits for running ones, stops the loops (connections stay open). */
  stop(): Promise<void>;
  /** Readiness checks for /readyz. */
  readonly checks: Readonly<Record<string, () => boolean>>;
  /** One reconcile of a mirror, as a job does it (holding the lock). */
  reconcile(ref: { namespace: string; name: string }, reason?: JobReason): Promise<ReconcileOutcome>;
  /** Runs the TTL sweep once. */
  sweepExpiries(): Promise<void>;
}

/** Our own enqueues (triggers, expiry, retries) back off exponentially with jitter. */
const OWN_JOB_OPTIONS = {
  attempts: 8,
  backoff: { type: "exponential", delay: 500, jitter: 0.5 },
  removeOnComplete: true,
  removeOnFail: true,
} as const satisfies JobsOptions;

/** BullMQ priority of chassis triggers (0, no priority, comes first; higher numbers later). */
const CHASSIS_PRIORITY = 10;

/**
 * What makes the applier look at a mirror again: the NB watcher's reasons, a node's data plane,
 * and Kubernetes (a selector's pods, a sink pod's address).
 */
type Trigger = TriggerReason | "dataplane" | "pods";

const TRIGGER_REASON: Record<Trigger, JobReason> = {
  drift: "drift",
  port: "pods_changed",
  chassis: "resync",
  resync: "resync",
  dataplane: "drift",
  pods: "pods_changed",
};

/** Pods that get a Warning Event when their mirror fails, at most (a selector may select thousands). */
const WARNED_PODS_MAX = 50;

/**
 * The periodic scans over every mirror (resync, pending sweep) pause between Redis pipelines:
 * with thousands of mirrors they otherwise take the process in bursts from the jobs in flight.
 */
const BACKGROUND_SCAN = { pauseMs: 10 } as const;

/** Status reason of an OVN mirror a node's data plane does not carry. */
export const DATAPLANE_REASON = "DataplaneError";

export async function createApplier(deps: ApplierDeps): Promise<Applier> {
  const config: ApplierConfig = { ...DEFAULT_CONFIG, ...deps.config };
  const log = deps.logger;
  const now = deps.now ?? (() => new Date());
  const { store } = deps;

  const state = await NbState.start(deps.nb, { logger: log });
  const storePrefix = deps.storePrefix ?? DEFAULT_PREFIX;
  const reconciler = await NbReconciler.create({
    state,
    logger: log,
    collectorSink: config.collectorSink,
    hvTimeoutMs: config.hvTimeoutMs,
    kubernetes: deps.kubernetes ? kubeView(deps.kubernetes) : undefined,
    // The node agents' own tunnels towards the sink (their claims): OVS refuses a second
    // tunnel to one sink with one key whoever made the first.
    reservedKeys: async (sink, id) => {
      const claims = await deps.redis.hgetall(nodeKeyClaimsKey(storePrefix, sink));
      const out = new Map<number, string>();
      for (const [key, value] of Object.entries(claims)) {
        const c = parseKeyClaim(value);
        if (c && `${c.namespace}/${c.name}` === id) continue;
        if (!/^\d+$/.test(key)) continue;
        out.set(
          Number(key),
          c
            ? `the tunnel of ovs mirror ${c.namespace}/${c.name} on node ${c.node}`
            : `a node agent (${value})`,
        );
      }
      return out;
    },
  });
  const dataplane = deps.nc ? new DataplaneView({ logger: log }) : undefined;
  const kube = deps.kubernetes;
  // A selector's pods or a sink pod's address changed: reconcile through the queue, the job id
  // naming the new state, so replicas that saw the same change enqueue one job and a change
  // made while that job runs still gets its own.
  const follower = kube
    ? new KubeFollower(kube, (id, state) => {
        enqueueTrigger(id, "pods", state).catch((err: unknown) =>
          log.warn({ err, mirror: id }, "kubernetes trigger enqueue failed"),
        );
      })
    : undefined;
  /** Per mirror: the generation whose `applying` event and status this process wrote. */
  const applyingSent = new Map<string, number>();
  /** Per mirror: the generation whose `applied` event this process published (acknowledged). */
  const appliedSent = new Map<string, number>();
  const watcher = new NbWatcher(state, reconciler, { logger: log, checkIntervalMs: config.driftCheckMs });
  const queue = createApplyQueue({
    connection: deps.redis,
    ...(config.bullmqPrefix !== undefined ? { prefix: config.bullmqPrefix } : {}),
  });

  const m = deps.metrics;
  const metrics = m && {
    reconciles: m.counter({
      name: "ovn_applier_reconciles_total",
      help: "Mirror reconciles by outcome (active, applying: committed and waiting for the chassis, degraded, deleted, expired, absent, foreign, failed, error)",
      labelNames: ["outcome"],
    }),
    latency: m.histogram({
      name: "ovn_applier_reconcile_duration_seconds",
      help: "Time of one reconcile, lock held, by outcome (includes the wait for the chassis)",
      labelNames: ["outcome"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    }),
    applied: m.histogram({
      name: "ovn_applier_commit_seconds",
      help: "From the start of a reconcile to its NB commit (reconciles that committed)",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    }),
    keys: m.counter({
      name: "ovn_applier_keys_allocated_total",
      help: "GRE keys / ERSPAN session ids allocated",
    }),
    conflicts: m.counter({
      name: "ovn_applier_key_conflicts_total",
      help: "NB transactions re-planned because a concurrent writer changed the rows towards a sink",
    }),
    lockWait: m.histogram({
      name: "ovn_applier_lock_wait_seconds",
      help: "How long a reconcile waited for its mirror's lock (held by another reconcile of the same mirror, here or in another replica)",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 15, 60],
    }),
    drift: m.counter({
      name: "ovn_applier_drift_repairs_total",
      help: "Reconciles that repaired drift in NB",
    }),
    phases: m.gauge({
      name: "ovn_applier_mirrors",
      help: "Mirrors in the store by phase (deleting ones as Deleting), counted at every resync (RESYNC_INTERVAL_MS); every replica reports the same figures",
      labelNames: ["phase"],
    }),
    nbConnected: m.gauge({
      name: "ovn_applier_nb_connected",
      help: "1 while the NB connection is up and its monitor in sync, else 0",
      collect() {
        this.set(state.ready ? 1 : 0);
      },
    }),
  };
  const locks = new MirrorLocks(deps.redis, {
    prefix: storePrefix,
    ttlMs: config.lockTtlMs,
    logger: log,
    ...(metrics ? { observeWait: (s: number) => metrics.lockWait.observe(s) } : {}),
  });
  let conflictsSeen = 0;
  const countConflicts = () => {
    const c = reconciler.counters.keyConflicts;
    metrics?.conflicts.inc(c - conflictsSeen);
    conflictsSeen = c;
  };

  async function publish<T extends EventType>(
    type: T,
    record: MirrorRecord,
    eventId: string,
    detail: EventDetail<T>,
  ): Promise<void> {
    const ev = makeEvent(type, {
      namespace: record.spec.namespace,
      mirror: record.spec.name,
      generation: record.generation,
      principal: PRINCIPAL,
      requestId: record.requestId,
      eventId,
      detail,
      time: now(),
    });
    await deps.events.publish(ev);
  }

  async function writeStatus(
    ns: string,
    name: string,
    previous: MirrorStatus | undefined,
    next: MirrorStatus,
  ) {
    if (sameStatus(previous, next)) return previous ?? next;
    const r = await store.setStatus(ns, name, next);
    if (r.type !== "updated") log.info({ mirror: `${ns}/${name}`, outcome: r.type }, "status not written");
    return next;
  }

  /**
   * Per mirror: the expiry job this process queued (`generation@expiresAt`). Queueing the same
   * job id again is a no-op in BullMQ but still a script run in Redis, once per reconcile.
   */
  const expiryQueued = new Map<string, string>();

  /** A delayed job at expiresAt: the expiry lands on time even with no sweep running. */
  async function scheduleExpiry(record: MirrorRecord): Promise<void> {
    const id = mirrorId(record.spec);
    const memo = `${record.generation}@${record.expiresAt}`;
    if (expiryQueued.get(id) === memo) return;
    const delay = Math.max(0, Date.parse(record.expiresAt) - now().getTime());
    const data: OvnApplyJob = {
      namespace: record.spec.namespace,
      name: record.spec.name,
      generation: record.generation,
      reason: "expire",
    };
    await queue.add(APPLY_JOB_NAME, data, {
      ...OWN_JOB_OPTIONS,
      delay,
      jobId: `${mirrorJobId(data)}/expire`,
    });
    expiryQueued.set(id, memo);
  }

  /** What the node agents report of the mirror: problems, and the DataplaneProgrammed condition. */
  function dataplaneOf(
    id: string,
    generation: number,
    previous: MirrorStatus | undefined,
  ): { problems: ReturnType<DataplaneView["problems"]>; conditions: MirrorCondition[] } {
    if (!dataplane) return { problems: [], conditions: [] };
    const v = dataplane.mirror(id);
    if (v.problems.length > 0) {
      return {
        problems: v.problems,
        conditions: [
          condition("DataplaneProgrammed", "False", generation, now(), previous, {
            reason: DATAPLANE_REASON,
            message: describeProblems(v.problems),
          }),
        ],
      };
    }
    if (v.programmedOn.length === 0) return { problems: [], conditions: [] };
    return {
      problems: [],
      conditions: [
        condition("DataplaneProgrammed", "True", generation, now(), previous, {
          message: `programmed on ${v.programmedOn.join(", ")}`,
        }),
      ],
    };
  }

  /**
   * The ports a status gained and lost, as lifecycle events for a selector mirror (whose ports
   * follow pods; a pods or ports mirror's ports are its spec's, reported by `applied`/`active`)
   * and as Kubernetes Events on the pods of selector and pods mirrors. Event ids are per port
   * and per status transition, so a retried reconcile does not repeat them.
   */
  async function announcePorts(
    record: MirrorRecord,
    previous: MirrorStatus | undefined,
    next: MirrorStatus,
    why: { newGeneration: boolean; missingPorts?: readonly string[]; deleted?: boolean },
  ): Promise<void> {
    const sources = record.spec.sources.type;
    if (sources !== "selector" && sources !== "pods") return;
    const before = new Set(previous?.ports ?? []);
    const after = new Set(next.ports);
    const attached = next.ports.filter((p) => !before.has(p));
    const detached = [...before].filter((p) => !after.has(p));
    const { namespace: ns, name } = record.spec;
    const gen = record.generation;
    const missing = new Set(why.missingPorts ?? []);
    const podOf = (port: string) => {
      const pod = podOfPort(port, ns);
      const info = pod !== undefined ? kube?.pods.pod(ns, pod) : undefined;
      return { pod, info };
    };
    for (const port of attached) {
      const { pod, info } = podOf(port);
      if (sources === "selector") {
        await publish(
          "port_attached",
          record,
          eventIds.transition(ns, name, gen, `port_attached:${port}`, previous),
          {
            port,
            ...(pod !== undefined ? { pod: { namespace: ns, name: pod } } : {}),
            ...(info?.nodeName ? { node: info.nodeName } : {}),
          },
        );
      }
      if (kube && pod !== undefined) {
        kube.events.event(
          { kind: "Pod", namespace: ns, name: pod, uid: info?.metadata.uid },
          "Normal",
          "MirrorAttached",
          `attached to ovntap mirror ${ns}/${name} (${record.spec.direction}, ${describeTarget(record, next)})`,
          "Attach",
        );
      }
    }
    for (const port of detached) {
      const { pod, info } = podOf(port);
      const alive = info !== undefined && hasLogicalPort(info);
      const reason = why.deleted
        ? "mirror_deleted"
        : why.newGeneration
          ? "spec_changed"
          : missing.has(port)
            ? "port_missing"
            : !alive
              ? "pod_deleted"
              : "selector_changed";
      if (sources === "selector") {
        await publish(
          "port_detached",
          record,
          eventIds.transition(ns, name, gen, `port_detached:${port}`, previous),
          {
            port,
            ...(pod !== undefined ? { pod: { namespace: ns, name: pod } } : {}),
            ...(info?.nodeName ? { node: info.nodeName } : {}),
            reason,
          },
        );
      }
      // A pod that is gone has nobody to tell.
      if (kube && pod !== undefined && alive) {
        kube.events.event(
          { kind: "Pod", namespace: ns, name: pod, uid: info.metadata.uid },
          "Normal",
          "MirrorDetached",
          `detached from ovntap mirror ${ns}/${name} (${reason.replace("_", " ")})`,
          "Detach",
        );
      }
    }
  }

  /** A Warning Event on each pod a mirror mirrors (bounded), when it fails or degrades. */
  function warnPods(record: MirrorRecord, reason: string, message: string): void {
    if (!kube) return;
    const { namespace: ns, sources } = record.spec;
    let pods: string[];
    if (sources.type === "pods") pods = [...sources.names];
    else if (sources.type === "selector" && kube.pods.synced)
      pods = kube.pods.selected(ns, selectorOf(record.spec)!).map((p) => p.metadata.name);
    else return;
    for (const pod of pods.slice(0, WARNED_PODS_MAX)) {
      const uid = kube.pods.pod(ns, pod)?.metadata.uid;
      kube.events.event({ kind: "Pod", namespace: ns, name: pod, uid }, "Warning", reason, message);
    }
  }

  async function deleteMirror(stored: StoredMirror, started: number): Promise<ReconcileOutcome> {
    const { record } = stored;
    const { namespace: ns, name } = record.spec;
    const id = mirrorId({ namespace: ns, name });
    const expired = stored.deleteReason === "expired";
    if (expired) {
      // Also published by whoever expired it; the id makes the two one event.
      await publish("expired", record, eventIds.perGeneration(ns, name, record.generation, "expired"), {
        expiresAt: record.expiresAt,
      });
    }
    watcher.cancelChassis(id);
    applyingSent.delete(id);
    appliedSent.delete(id);
    expiryQueued.delete(id);
    follower?.untrack(id);
    const removed = await reconciler.remove(id);
    if (removed.nbCfg !== undefined && removed.changes.length > 0) {
      // Deleted means the chassis dropped the tunnels too; not waiting forever for it.
      const w = await state.waitHvCfg(removed.nbCfg, { timeoutMs: config.hvTimeoutMs });
      if (!w.synced)
        log.warn({ mirror: id, nbCfg: removed.nbCfg, hvCfg: w.hvCfg }, "chassis not synced after delete");
    }
    const phase = expired ? "Expired" : "Deleted";
    await announcePorts(
      record,
      stored.status,
      { ...stored.status, ports: [] },
      { newGeneration: false, deleted: true },
    );
    await publish("deleted", record, eventIds.perGeneration(ns, name, record.generation, "deleted"), {
      reason: expired ? "expired" : "request",
    });
    await writeStatus(
      ns,
      name,
      stored.status,
      buildStatus({
        phase,
        record,
        observedGeneration: record.generation,
        previous: stored.status,
        now: now(),
      }),
    );
    const purged = await store.purge(ns, name, record.generation);
    if (purged.type === "generation_mismatch") {
      throw new ReconcileError("UNAVAILABLE", `mirror ${id} changed while it was being deleted; retrying`);
    }
    log.info(
      {
        mirror: id,
        generation: record.generation,
        phase,
        removed: removed.removed,
        ms: Date.now() - started,
      },
      "mirror deleted",
    );
    return { type: expired ? "expired" : "deleted", removed: removed.removed };
  }

  async function applyMirror(
    stored: StoredMirror,
    ctx: { attempt: number; final: boolean; reason: JobReason; signal?: AbortSignal | undefined },
  ): Promise<ReconcileOutcome> {
    const { record } = stored;
    const { namespace: ns, name } = record.spec;
    const id = mirrorId({ namespace: ns, name });
    const gen = record.generation;
    let previous: MirrorStatus | undefined = stored.status;
    const newGeneration = previous.observedGeneration < gen;
    // An earlier job of this process committed this generation and ended while the chassis
    // caught up: `applying` and `applied` are out already, the status says Applying.
    const committedHere =
      newGeneration && reconciler.committedGeneration(id) === gen && applyingSent.get(id) === gen;
    // The `applying` event and status go out while the NB transaction is under way rather
    // than before it: `applied` waits for them (so the stream keeps its order), and a failure
    // of either fails the job like a failed commit does (the retry publishes them again; the
    // event id makes that one event).
    let applyingDone: Promise<void> | undefined;
    if (newGeneration && !committedHere) {
      const before = previous;
      const applying = buildStatus({
        phase: "Applying",
        record,
        observedGeneration: before.observedGeneration,
        previous: before,
        now: now(),
      });
      applyingDone = Promise.all([
        publish("applying", record, eventIds.perGeneration(ns, name, gen, "applying"), {
          reason: ctx.reason,
          attempt: Math.min(ctx.attempt, 1_000_000),
        }),
        writeStatus(ns, name, before, applying),
      ]).then(() => {
        applyingSent.set(id, gen);
      });
      // Observed below; this keeps an early failure from being an unhandled rejection.
      applyingDone.catch(() => undefined);
      previous = sameStatus(before, applying) ? before : applying;
    }
    const desired: DesiredMirror = { namespace: ns, name, generation: gen, spec: record.spec };
    // Subscribed before resolving, so a change during this reconcile triggers another.
    follower?.track(desired);
    let result: ConvergeResult;
    try {
      result = await reconciler.converge(desired, {
        observedGeneration: stored.status.observedGeneration,
        hvTimeoutMs: config.hvTimeoutMs,
        inlineWaitMs: config.hvInlineWaitMs,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        onApplied: async (a) => {
          if (a.outcome === "applied") metrics?.applied.observe(a.appliedMs / 1000);
          await applyingDone;
          // Once per generation (a write to an already applied generation is drift, reported
          // as drift_repaired below); also when this generation's commit happened in an
          // earlier attempt whose publish failed or was never acknowledged — NATS down
          // between the commit and the event — for then NB has nothing left to write and
          // only this says the event is still owed (the id makes a repeat one event).
          if (newGeneration && (!committedHere || a.outcome === "applied" || appliedSent.get(id) !== gen)) {
            await publish("applied", record, eventIds.perGeneration(ns, name, gen, "applied"), {
              rows: a.rows.map((r) => r.name),
              ...(a.key !== undefined ? { key: a.key } : {}),
              ...(a.sessionId !== undefined ? { sessionId: a.sessionId } : {}),
              ...(a.sink !== undefined ? { sink: a.sink } : {}),
              ...(a.nbCfg !== undefined ? { nbCfg: a.nbCfg } : {}),
            });
            appliedSent.set(id, gen);
          }
        },
      });
    } catch (err) {
      countConflicts();
      // The Failed status below must come after the Applying one.
      await applyingDone?.catch(() => undefined);
      const re = err instanceof ReconcileError ? err : asReconcileError(err);
      if (!re.retryable || ctx.final) {
        await publish("failed", record, eventIds.perGeneration(ns, name, gen, `failed-${re.code}`), {
          code: re.code,
          message: re.message.slice(0, 4000),
          retryable: re.retryable,
        });
        if (previous?.phase !== "Failed" || previous.reason !== re.reason) {
          warnPods(record, "MirrorFailed", `ovntap mirror ${ns}/${name} failed: ${re.code}: ${re.message}`);
        }
        await writeStatus(
          ns,
          name,
          previous,
          buildStatus({
            phase: "Failed",
            record,
            // A terminal failure is this generation's outcome; a retryable one stays pending
            // so the sweep tries it again.
            observedGeneration: re.retryable ? stored.status.observedGeneration : gen,
            previous,
            reason: re.reason,
            message: re.message.slice(0, 4000),
            now: now(),
          }),
        );
      }
      throw re;
    }
    // Before any later status write (Active, Degraded), and it fails the job if it failed.
    await applyingDone;
    countConflicts();
    metrics?.keys.inc(result.keysAllocated);
    if (result.phase === undefined) return { type: "foreign" };

    if (result.drift) {
      metrics?.drift.inc();
      await publish(
        "drift_repaired",
        record,
        eventIds.perTransaction(ns, name, gen, "drift_repaired", result.nbCfg),
        {
          repairs: result.changes.map((c) => ({
            table: c.table,
            name: c.name,
            action: c.action,
          })),
        },
      );
    }
    if (result.phase === "Applying" && result.nbCfg !== undefined) {
      // Committed, and the chassis is not there yet: rather than hold a worker (and this
      // mirror's lock) until it is, the job ends here and the watcher triggers the next
      // reconcile when hv_cfg reaches nbCfg, or at the deadline (then Degraded). The status
      // stays Applying; a restart finds it through resync().
      watcher.awaitChassis(id, result.nbCfg, result.chassisDeadline);
      return { type: "applying", result };
    }
    // NB and the chassis may be done while a node's OVS refused the rows (its agent says so).
    const dp = dataplaneOf(id, gen, previous);
    const refused = result.phase === "Active" && dp.problems.length > 0;
    const phase = refused ? "Degraded" : result.phase;
    // A selector that selects no pod yet: Active, saying so (kube.ts selectionStatus).
    const selection = selectionStatus(record.spec, result, gen, previous, now());
    const next = buildStatus({
      phase,
      record,
      observedGeneration: gen,
      previous,
      result,
      ...(refused
        ? { reason: DATAPLANE_REASON, message: describeProblems(dp.problems) }
        : phase === "Active" && selection.idle
          ? selection.idle
          : {}),
      conditions: [...dp.conditions, ...selection.conditions],
      now: now(),
    });
    // Phase events on transitions only (and once per generation), not on every no-op resync.
    if (phase === "Active" && (newGeneration || previous?.phase !== "Active")) {
      await publish("active", record, eventIds.transition(ns, name, gen, "active", previous), {
        ports: [...result.ports],
        ...(result.hvCfg !== undefined ? { hvCfg: result.hvCfg } : {}),
      });
    } else if (
      phase === "Degraded" &&
      (newGeneration ||
        previous?.phase !== "Degraded" ||
        previous.reason !== next.reason ||
        (refused && previous.message !== next.message))
    ) {
      await publish("degraded", record, eventIds.transition(ns, name, gen, "degraded", previous), {
        reason: next.reason ?? "Unknown",
        message: next.message ?? "",
        ...(result.missingPorts.length ? { ports: [...result.missingPorts] } : {}),
      });
      warnPods(
        record,
        "MirrorDegraded",
        `ovntap mirror ${ns}/${name} is degraded: ${next.reason ?? "Unknown"}: ${next.message ?? ""}`,
      );
    }
    await announcePorts(record, previous, next, { newGeneration, missingPorts: result.missingPorts });
    await writeStatus(ns, name, previous, next);
    if (result.phase === "Degraded" && result.reason === "ChassisNotSynced" && result.nbCfg !== undefined) {
      watcher.awaitChassis(id, result.nbCfg);
    }
    await scheduleExpiry(record);
    return { type: phase === "Active" ? "active" : "degraded", result };
  }

  async function reconcileNow(
    ref: { namespace: string; name: string },
    ctx: { attempt: number; final: boolean; reason: JobReason; signal?: AbortSignal | undefined },
    /** The record as read right behind the lock's acquisition (MirrorLocks.withLock prefetch). */
    prefetched?: Promise<StoredMirror | undefined>,
  ): Promise<ReconcileOutcome> {
    const id = mirrorId(ref);
    const started = Date.now();
    let outcome = "error";
    try {
      let stored = await (prefetched ?? store.getMirror(ref.namespace, ref.name));
      if (stored && !stored.deleting && Date.parse(stored.record.expiresAt) <= now().getTime()) {
        // Level-based expiry: whatever brought us here, an expired mirror is expired now.
        const r = await store.applyExpire(ref.namespace, ref.name, now());
        if (r.type === "expired") await announceExpired(r.record);
        stored = await store.getMirror(ref.namespace, ref.name);
      }
      let result: ReconcileOutcome;
      if (stored?.record.spec.sources.type === "ovs") {
        // OVS-level mirrors are the node agent's: their status, their purge. NB holds
        // nothing of them; anything it still holds under this name goes.
        await reconciler.remove(id);
        result = { type: "foreign" };
      } else if (!stored) {
        // No record: whatever NB still holds for it is an orphan.
        follower?.untrack(id);
        expiryQueued.delete(id);
        const removed = await reconciler.remove(id);
        result = { type: "absent", removed: removed.removed };
      } else if (stored.deleting) {
        result = await deleteMirror(stored, started);
      } else {
        result = await applyMirror(stored, ctx);
      }
      outcome = result.type;
      return result;
    } catch (err) {
      outcome = err instanceof ReconcileError && !err.retryable ? "failed" : "error";
      throw err;
    } finally {
      metrics?.reconciles.inc({ outcome });
      metrics?.latency.observe({ outcome }, (Date.now() - started) / 1000);
    }
  }

  async function announceExpired(record: MirrorRecord): Promise<void> {
    const { namespace: ns, name } = record.spec;
    log.info(
      { mirror: `${ns}/${name}`, expiresAt: record.expiresAt, generation: record.generation },
      "mirror expired",
    );
    await publish("expired", record, eventIds.perGeneration(ns, name, record.generation, "expired"), {
      expiresAt: record.expiresAt,
    });
  }

  async function processJob(job: Job<OvnApplyJob>): Promise<string> {
    const parsed = OvnApplyJob.safeParse(job.data);
    if (!parsed.success)
      throw new UnrecoverableError(`invalid ovn-apply job ${job.id}: ${parsed.error.message}`);
    const data = parsed.data;
    const attempt = job.attemptsMade + 1;
    const final = attempt >= (job.opts.attempts ?? 1);
    try {
      const r = await locks.withLock(
        mirrorId(data),
        { waitMs: config.lockWaitMs, prefetch: () => store.getMirror(data.namespace, data.name) },
        (signal, prefetched) =>
          reconcileNow(data, { attempt, final, reason: data.reason, signal }, prefetched),
      );
      return r.type;
    } catch (err) {
      if (err instanceof ReconcileError && !err.retryable) throw new UnrecoverableError(err.message);
      if (err instanceof LockBusyError)
        log.info({ mirror: mirrorId(data), jobId: job.id }, "mirror busy, retrying later");
      throw err;
    }
  }

  const worker = new Worker<OvnApplyJob, string>(OVN_APPLY_QUEUE, processJob, {
    connection: deps.workerRedis,
    concurrency: config.concurrency,
    // A job held by a worker that died (kill -9) is handed back once its lock lapses: with
    // BullMQ's defaults (30 s lock, 30 s stall checks, two checks) that took up to two minutes
    // in the fault suite, and no sweep can rescue it meanwhile (the job id is still taken).
    // A live worker renews the lock every lockDuration/2, so long jobs are unaffected.
    lockDuration: config.lockTtlMs,
    stalledInterval: Math.max(1_000, Math.round(config.lockTtlMs / 3)),
    autorun: false,
    ...(config.bullmqPrefix !== undefined ? { prefix: config.bullmqPrefix } : {}),
  });
  worker.on("failed", (job, err) =>
    log.warn({ jobId: job?.id, attempts: job?.attemptsMade, err: err.message }, "ovn-apply job failed"),
  );
  worker.on("error", (err) => log.error({ err }, "ovn-apply worker error"));

  // ---------------------------------------------------------------------------------------
  // Triggers and sweeps

  /** `state`: what the trigger saw (Kubernetes): the job id carries its digest. */
  async function enqueueTrigger(id: string, reason: Trigger, state?: string): Promise<void> {
    const ref = parseMirrorId(id);
    if (!ref) return;
    // The payload only names the mirror (the job reads the latest record); a mirror known
    // nowhere (an orphan) still needs a valid generation in the payload.
    const generation =
      reconciler.desiredOf(id)?.generation ??
      (await store.getRecord(ref.namespace, ref.name))?.generation ??
      1;
    const data: OvnApplyJob = { ...ref, generation, reason: TRIGGER_REASON[reason] };
    // One queued trigger per mirror and reason; removed when done so the next one can queue.
    // Except the chassis: it fires once per wait, and a job of that id still finishing (it may
    // be the one that registered this very wait) would swallow it. Its NB work is done, only
    // the status is left to flip, and hv_cfg catching up releases many mirrors at once: those
    // jobs yield to requests and repairs (BullMQ takes jobs without a priority first).
    // A data-plane change likewise must not fold into a job of the same id still running (it
    // may have read the view just before the change).
    // A Kubernetes change names its new state: the replicas that all saw it make one job, and
    // a later change is a job of its own even while that one runs.
    const unique = reason === "chassis" || reason === "dataplane";
    const suffix =
      state !== undefined ? `@${digest(state)}` : unique ? `@${randomBytes(6).toString("hex")}` : "";
    await queue.add(APPLY_JOB_NAME, data, {
      ...OWN_JOB_OPTIONS,
      ...(reason === "chassis" ? { priority: CHASSIS_PRIORITY } : {}),
      jobId: `${ref.namespace}/${ref.name}/${reason}${suffix}`,
    });
  }
  // Chassis follow-ups run here, beside the worker, a few at a time: when hv_cfg catches up it
  // releases every mirror committed meanwhile at once, and as BullMQ jobs they filled the worker's
  // slots ahead of new requests (a priority only orders jobs not started yet). A follow-up that
  // fails goes to the queue, where BullMQ retries it; one lost with this process is found by
  // resync().
  const followUps = new Map<string, "chassis" | "dataplane">();
  const followUpsRunning = new Set<Promise<void>>();
  /** The mirrors of the follow-ups running now. */
  const followingUp = new Set<string>();
  const followUpLimit = Math.max(1, Math.ceil(config.concurrency / 4));
  let followUpsOpen = true;
  function pumpFollowUps(): void {
    while (followUpsOpen && followUpsRunning.size < followUpLimit && followUps.size > 0) {
      const [id, reason] = followUps.entries().next().value as [string, "chassis" | "dataplane"];
      followUps.delete(id);
      const ref = parseMirrorId(id);
      if (!ref) continue;
      followingUp.add(id);
      const run: Promise<void> = locks
        .withLock(id, { waitMs: config.lockWaitMs }, (signal) =>
          reconcileNow(ref, { attempt: 1, final: false, reason: TRIGGER_REASON[reason], signal }),
        )
        .then(
          () => undefined,
          async (err: unknown) => {
            if (err instanceof ReconcileError && !err.retryable) return; // reported as Failed
            log.warn({ err, mirror: id, reason }, "follow-up failed, queued for retries");
            await enqueueTrigger(id, reason);
          },
        )
        .catch((err: unknown) => log.warn({ err, mirror: id, reason }, "follow-up enqueue failed"))
        .finally(() => {
          followUpsRunning.delete(run);
          followingUp.delete(id);
          pumpFollowUps();
        });
      followUpsRunning.add(run);
    }
  }

  /** A follow-up reconcile here, beside the worker (a chassis wait takes precedence in the queue of them). */
  function followUp(id: string, reason: "chassis" | "dataplane"): void {
    if (followUps.get(id) !== "chassis") followUps.set(id, reason);
    pumpFollowUps();
  }

  // A node's data plane changed for a mirror: its status may flip (Active ⇄ Degraded) with no
  // NB work at all, so it is a follow-up like the chassis catching up. Mirrors whose sources
  // are ovs are the agent's own: the reconcile finds them foreign and writes nothing.
  dataplane?.on("change", (id) => followUp(id, "dataplane"));

  watcher.on("trigger", (id, reason) => {
    if (reason === "chassis") {
      followUp(id, "chassis");
      return;
    }
    enqueueTrigger(id, reason).catch((err: unknown) =>
      log.warn({ err, mirror: id, reason }, "trigger enqueue failed"),
    );
  });

  async function sweepExpiries(): Promise<void> {
    for (const due of await store.dueExpiries(now())) {
      const r = await store.applyExpire(due.namespace, due.name, now());
      if (r.type !== "expired") continue;
      await announceExpired(r.record);
      await enqueueApply(
        queue,
        { namespace: due.namespace, name: due.name, generation: r.record.generation, reason: "expire" },
        { backoff: OWN_JOB_OPTIONS.backoff },
      );
    }
  }

  async function sweepPending(): Promise<void> {
    for (const p of await store.pendingReconcile(BACKGROUND_SCAN)) {
      // Committed here and waiting for the chassis, or the chassis is there and its follow-up
      // is queued or running here: that reconcile writes the status. Queueing it again would
      // only crowd out new work (when hv_cfg catches up it releases a hundred mirrors at once).
      const id = mirrorId(p);
      if (!p.deleting && (watcher.awaitingChassis(id) || followUps.has(id) || followingUp.has(id))) continue;
      const { jobId } = await enqueueApply(
        queue,
        { namespace: p.namespace, name: p.name, generation: p.generation, reason: p.reason },
        { backoff: OWN_JOB_OPTIONS.backoff },
      );
      // BullMQ keeps a failed job's id, so the add above was a no-op; a generation left
      // pending by a retryable failure is retried here.
      const job = await queue.getJob(jobId);
      if (job && (await job.isFailed())) {
        log.info({ jobId }, "retrying failed ovn-apply job");
        await job.retry("failed");
      }
    }
  }

  let firstResync = true;
  async function resync(): Promise<void> {
    const byPhase = new Map<string, number>(MIRROR_PHASES.map((p) => [p, 0]));
    byPhase.set("Deleting", 0);
    const live = new Set<string>();
    // A pipeline of records at a time, each let go before the next: with thousands of mirrors
    // the whole list at once was a burst of long-lived garbage, and the major GC it brought
    // stalled the jobs in flight.
    for await (const chunk of store.scanMirrors(undefined, BACKGROUND_SCAN)) {
      for (const s of chunk) {
        const phase = s.deleting ? "Deleting" : s.status.phase;
        byPhase.set(phase, (byPhase.get(phase) ?? 0) + 1);
        const id = mirrorId(s.record.spec);
        live.add(id);
        if (s.deleting) continue;
        // Waiting for the chassis with nobody here waiting for it — a replica that ended
        // between its commit and the chassis catching up: look again. At start, any; later,
        // those that have waited longer than the chassis may take (the others are in some
        // job's hands).
        const waiting =
          s.status.phase === "Applying" ||
          (s.status.phase === "Degraded" && s.status.reason === "ChassisNotSynced");
        const stale = firstResync || now().getTime() - Date.parse(s.status.updatedAt) > config.hvTimeoutMs;
        if (waiting && stale && !watcher.awaitingChassis(id)) await enqueueTrigger(id, "chassis");
        // A status that disagrees with what the nodes report (a change missed, a record gone stale).
        if (dataplane?.ready && s.record.spec.sources.type !== "ovs") {
          const refused = dataplane.problems(id).length > 0;
          const says = s.status.phase === "Degraded" && s.status.reason === DATAPLANE_REASON;
          if (refused !== says && (s.status.phase === "Active" || says)) followUp(id, "dataplane");
        }
        const desired: DesiredMirror = {
          namespace: s.record.spec.namespace,
          name: s.record.spec.name,
          generation: s.record.generation,
          spec: s.record.spec,
        };
        reconciler.remember(desired);
        follower?.track(desired);
      }
    }
    if (metrics) for (const [phase, n] of byPhase) metrics.phases.set({ phase }, n);
    const first = firstResync;
    firstResync = false;
    for (const id of reconciler.knownIds()) if (!live.has(id)) reconciler.forget(id);
    follower?.retain(live);
    // NB rows owned by mirrors the store no longer has: remove them.
    for (const id of reconciler.ownedIds()) if (!live.has(id)) await enqueueTrigger(id, "resync");
    // At start, every mirror at once; later the watcher's periodic check (DRIFT_CHECK_MS) looks
    // at the mirrors remembered here anyway, and a second pass over thousands of mirrors, every
    // resync, only took the CPU from the requests in flight.
    if (first) watcher.checkAll();
  }

  const loops = createLoops(log);
  const every = loops.every;

  let started = false;
  return {
    state,
    reconciler,
    watcher,
    queue,
    dataplane,
    checks: {
      nb: () => state.ready,
      redis: () => deps.redis.status === "ready",
      nats: () => deps.natsConnected?.() ?? true,
      worker: () => started && worker.isRunning(),
      ...(kube ? { kubernetes: () => kube.synced } : {}),
    },
    async start() {
      if (started) return;
      started = true;
      followUpsOpen = true;
      watcher.start();
      void worker.run().catch((err: unknown) => log.error({ err }, "ovn-apply worker stopped"));
      await worker.waitUntilReady();
      if (dataplane && deps.nc) await dataplane.start(deps.nc);
      // At once, then periodically: a restart lands overdue expiries immediately.
      every("expiry", config.expirySweepMs, sweepExpiries);
      every("pending", config.pendingSweepMs, sweepPending);
      every("resync", config.resyncIntervalMs, resync);
      log.info({ concurrency: config.concurrency }, "ovn-applier started");
    },
    async stop() {
      loops.stop();
      watcher.stop();
      followUpsOpen = false;
      followUps.clear();
      follower?.stop();
      await dataplane?.stop();
      await Promise.allSettled([...followUpsRunning]);
      await worker.close();
      await queue.close();
      await state.stop();
      started = false;
      log.info({}, "ovn-applier stopped");
    },
    reconcile: (ref, reason = "resync") =>
      locks.withLock(mirrorId(ref), { waitMs: config.lockWaitMs }, (signal) =>
        reconcileNow(ref, { attempt: 1, final: false, reason, signal }),
      ),
    sweepExpiries,
  };
}

/** Store/NATS/unknown failures: retryable unless known otherwise. */
function asReconcileError(err: unknown): ReconcileError {
  const mapped = toReconcileError(err);
  if (mapped instanceof ReconcileError) return mapped;
  const message = mapped instanceof Error ? mapped.message : String(mapped);
  return new ReconcileError("UNAVAILABLE", message, { cause: err, retryable: true });
}
