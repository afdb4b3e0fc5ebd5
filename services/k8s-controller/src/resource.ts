/**
 * The TrafficMirror resource as the controller reads and writes it, the Kubernetes API calls it
 * makes (the deployment's ClusterRole grants exactly these), and its status conditions.
 */
import type { ApiCall } from "@ovntap/k8s";
import { CRD_GROUP, CRD_PLURAL } from "./crd.js";

/**
 * Every Kubernetes API call of the controller: the informer (list, watch in every namespace),
 * the finalizer (a merge patch on the resource) and `.status` (a JSON patch on the status
 * subresource). test/k8s-rbac.test.ts holds the ClusterRole to exactly this list, and the
 * integration test holds it to the calls a fake API server saw.
 */
export const CONTROLLER_API_CALLS: readonly ApiCall[] = [
  { verb: "list", group: CRD_GROUP, resource: CRD_PLURAL },
  { verb: "watch", group: CRD_GROUP, resource: CRD_PLURAL },
  { verb: "patch", group: CRD_GROUP, resource: CRD_PLURAL },
  { verb: "patch", group: CRD_GROUP, resource: CRD_PLURAL, subresource: "status" },
];

export type ConditionStatus = "True" | "False" | "Unknown";

/** metav1.Condition. */
export interface Condition {
  type: "Accepted" | "Ready";
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration: number;
}

export interface TrafficMirrorStatus {
  /** The mirror's phase, or Rejected when intake refused it. */
  phase?: string;
  observedGeneration?: number;
  conditions?: Condition[];
  attachedPorts?: string[];
  key?: number;
  sessionId?: number;
  sink?: string;
  nodes?: string[];
  expiresAt?: string;
  mirrorGeneration?: number;
  message?: string;
}

export interface TrafficMirror {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    generation?: number;
    resourceVersion?: string;
    deletionTimestamp?: string;
    finalizers?: string[];
    [k: string]: unknown;
  };
  spec?: Record<string, unknown>;
  status?: TrafficMirrorStatus;
}

/** `namespace/name`: the work queue's key. */
export function keyOf(tm: { metadata: { namespace?: string; name?: string } }): string {
  return `${tm.metadata.namespace ?? ""}/${tm.metadata.name ?? ""}`;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf("/");
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
