/**
 * The controller's environment, validated once at start (runMain exits 78 naming every bad
 * variable). Durations are milliseconds.
 *
 *   NATS_URL=nats://nats:4222 node services/k8s-controller/dist/main.js      # in a pod
 *   KUBECONFIG=~/.kube/config NATS_URL=nats://127.0.0.1:4222 node …/main.js  # outside
 */
import { envVar, natsEnv } from "@ovntap/runtime";
import { z } from "zod";

/** The principal the controller names in its requests (intake's policy decides what it may do). */
export const CONTROLLER_PRINCIPAL = "system:ovntap:k8s-controller";

export const ControllerEnv = z.object({
  ...natsEnv,
  /**
   * How to reach the API server: `in-cluster` (the pod's ServiceAccount) or `kubeconfig`.
   * Default: in-cluster in a pod (KUBERNETES_SERVICE_HOST is set), else kubeconfig.
   */
  KUBERNETES: z.enum(["in-cluster", "kubeconfig"]).optional(),
  /** The kubeconfig file (KUBERNETES=kubeconfig); default ~/.kube/config. */
  KUBECONFIG: envVar.string().optional(),
  /** The `principal` of the controller's requests; intake trusts it only if its policy says so. */
  CONTROLLER_PRINCIPAL: envVar
    .string()
    .max(256, "must be at most 256 characters")
    .regex(/^[^\p{Cc}]+$/u, "must not contain control characters")
    .default(CONTROLLER_PRINCIPAL),
  /** How long a request to intake may take before it is retried. */
  REQUEST_TIMEOUT_MS: envVar.integer({ min: 100, max: 600_000 }).default(10_000),
  /** Every TrafficMirror is reconciled this often, besides the changes and events that trigger it. */
  RESYNC_INTERVAL_MS: envVar.integer({ min: 1_000, max: 86_400_000 }).default(60_000),
  /** First retry of a failed reconcile; doubled per failure up to RETRY_MAX_MS. */
  RETRY_BASE_MS: envVar.integer({ min: 10, max: 600_000 }).default(500),
  RETRY_MAX_MS: envVar.integer({ min: 100, max: 3_600_000 }).default(60_000),
  /** While intake replaces a mirror (a spec change: delete, then create), check back this often. */
  REPLACE_POLL_MS: envVar.integer({ min: 100, max: 600_000 }).default(5_000),
  /** Resources reconciled at once (one resource is never reconciled twice at the same time). */
  CONTROLLER_CONCURRENCY: envVar.integer({ min: 1, max: 64 }).default(4),
});

export type ControllerEnv = z.output<typeof ControllerEnv>;

/** The controller's own settings (what createController takes beyond its connections). */
export interface ControllerConfig {
  principal: string;
  requestTimeoutMs: number;
  resyncIntervalMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  replacePollMs: number;
  concurrency: number;
}

export const DEFAULT_CONFIG: ControllerConfig = {
  principal: CONTROLLER_PRINCIPAL,
  requestTimeoutMs: 10_000,
  resyncIntervalMs: 60_000,
  retryBaseMs: 500,
  retryMaxMs: 60_000,
  replacePollMs: 5_000,
  concurrency: 4,
};

export function controllerConfig(env: ControllerEnv): ControllerConfig {
  return {
    principal: env.CONTROLLER_PRINCIPAL,
    requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
    resyncIntervalMs: env.RESYNC_INTERVAL_MS,
    retryBaseMs: env.RETRY_BASE_MS,
    retryMaxMs: env.RETRY_MAX_MS,
    replacePollMs: env.REPLACE_POLL_MS,
    concurrency: env.CONTROLLER_CONCURRENCY,
  };
}
