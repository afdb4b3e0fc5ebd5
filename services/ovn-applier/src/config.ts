/**
 * The ovn-applier's environment, validated once at start (runMain exits 78 naming every bad
 * variable). Durations are milliseconds.
 *
 *   OVN_NB_DB=tcp:10.0.0.5:6641 NATS_URL=nats://nats:4222 REDIS_URL=redis://redis:6379 \
 *   COLLECTOR_SINK=172.19.0.30 node services/ovn-applier/dist/main.js
 */
import { canonicalIp } from "@ovntap/contracts";
import { KUBERNETES_MODES } from "@ovntap/k8s";
import { envVar, natsEnv, redisEnv } from "@ovntap/runtime";
import { z } from "zod";

export const ApplierEnv = z.object({
  ...natsEnv,
  ...redisEnv,
  /** OVN Northbound remote(s), as ovn-nbctl's --db: unix:PATH, tcp:HOST:PORT, ssl:HOST:PORT, comma-separated. */
  OVN_NB_DB: envVar.string(),
  /** Transport address of the capture exporter: the sink of `collector` targets. */
  COLLECTOR_SINK: envVar
    .string()
    .refine((s) => canonicalIp(s) !== undefined, "must be an IPv4 or IPv6 address")
    .optional(),
  /** Jobs processed at once by this replica. */
  APPLIER_CONCURRENCY: envVar.integer({ min: 1, max: 256 }).default(8),
  /** How long after a commit the chassis may take (hv_cfg ≥ nb_cfg) before the mirror is Degraded (ChassisNotSynced). */
  HV_TIMEOUT_MS: envVar.durationMs().default(30_000),
  /**
   * How long a job itself waits for the chassis before it ends and leaves the rest to the NB
   * watcher (the mirror stays Applying until hv_cfg catches up). 0: jobs never hold a worker
   * for the chassis, so APPLIER_CONCURRENCY bounds NB work, not chassis latency.
   */
  HV_INLINE_WAIT_MS: envVar.durationMs().default(0),
  /** Expiry of the per-mirror Redis lock; renewed every third of it while a reconcile runs. */
  LOCK_TTL_MS: envVar.integer({ min: 1_000 }).default(15_000),
  /** How long a job waits for another replica's lock on the same mirror before retrying later. */
  LOCK_WAIT_MS: envVar.durationMs().default(60_000),
  /** Period of the TTL sweep (store.dueExpiries); bounds how late an expiry lands after a restart. */
  EXPIRY_SWEEP_MS: envVar.integer({ min: 100 }).default(1_000),
  /** Period of the sweep re-enqueuing mirrors whose generation is not applied (store.pendingReconcile). */
  PENDING_SWEEP_MS: envVar.integer({ min: 100 }).default(10_000),
  /** Period of the full resync: every record re-read, orphan NB rows removed. */
  RESYNC_INTERVAL_MS: envVar.integer({ min: 1_000 }).default(60_000),
  /** Period of the local drift check over every known mirror (monitor events catch most drift at once). */
  DRIFT_CHECK_MS: envVar.integer({ min: 100 }).default(5_000),
  /** BullMQ key prefix (default BullMQ's "bull"); intake must use the same. */
  BULLMQ_PREFIX: envVar.string().optional(),
  /** Store key prefix (default "{ovntap}"). */
  STORE_PREFIX: envVar.string().optional(),
  /**
   * Kubernetes, for selector sources, sink pods and Events on the mirrored pods: in-cluster (the
   * pod's service account), kubeconfig (KUBECONFIG) or off. Default: in-cluster when
   * KUBERNETES_SERVICE_HOST is set (in a pod), else off.
   */
  KUBERNETES: z.enum(KUBERNETES_MODES, { error: `must be one of ${KUBERNETES_MODES.join(", ")}` }).optional(),
  /** The kubeconfig file for KUBERNETES=kubeconfig (default ~/.kube/config). */
  KUBECONFIG: envVar.string().optional(),
});

export type ApplierEnv = z.output<typeof ApplierEnv>;

/** The applier's own settings (what createApplier needs beyond its connections). */
export interface ApplierConfig {
  concurrency: number;
  collectorSink?: string | undefined;
  hvTimeoutMs: number;
  hvInlineWaitMs: number;
  lockTtlMs: number;
  lockWaitMs: number;
  expirySweepMs: number;
  pendingSweepMs: number;
  resyncIntervalMs: number;
  driftCheckMs: number;
  bullmqPrefix?: string | undefined;
}

export const DEFAULT_CONFIG: ApplierConfig = {
  concurrency: 8,
  hvTimeoutMs: 30_000,
  hvInlineWaitMs: 0,
  lockTtlMs: 15_000,
  lockWaitMs: 60_000,
  expirySweepMs: 1_000,
  pendingSweepMs: 10_000,
  resyncIntervalMs: 60_000,
  driftCheckMs: 5_000,
};

export function applierConfig(env: ApplierEnv): ApplierConfig {
  return {
    concurrency: env.APPLIER_CONCURRENCY,
    collectorSink: env.COLLECTOR_SINK !== undefined ? canonicalIp(env.COLLECTOR_SINK) : undefined,
    hvTimeoutMs: env.HV_TIMEOUT_MS,
    hvInlineWaitMs: env.HV_INLINE_WAIT_MS,
    lockTtlMs: env.LOCK_TTL_MS,
    lockWaitMs: env.LOCK_WAIT_MS,
    expirySweepMs: env.EXPIRY_SWEEP_MS,
    pendingSweepMs: env.PENDING_SWEEP_MS,
    resyncIntervalMs: env.RESYNC_INTERVAL_MS,
    driftCheckMs: env.DRIFT_CHECK_MS,
    bullmqPrefix: env.BULLMQ_PREFIX,
  };
}
