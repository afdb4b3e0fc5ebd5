/**
 * Desired state (`MirrorRecord`, written by intake) and observed state (`MirrorStatus`, written by the
 * appliers), both kept in Redis and returned in replies.
 *
 * Phases: Pending → Applying → Active | Degraded | Failed, then Expired or Deleted. `Active` means
 * the chassis caught up (`hv_cfg ≥ nb_cfg`, what `ovn-nbctl --wait=hv` waits for).
 *
 * Readers are tolerant (unknown fields are dropped, not refused) so a newer writer does not break
 * an older reader; only requests are strict.
 */
import { z } from "zod";
import {
  counter,
  intIn,
  MirrorName,
  Namespace,
  NodeName,
  portName,
  Principal,
  Reason,
  RequestId,
  text,
  Timestamp,
} from "./fields.js";
import { ERSPAN_SESSION_MAX, GRE_KEY_MAX } from "./limits.js";
import { MirrorSpec, SinkAddress } from "./spec.js";

export const MIRROR_PHASES = [
  "Pending",
  "Applying",
  "Active",
  "Degraded",
  "Failed",
  "Expired",
  "Deleted",
] as const;
export type MirrorPhase = (typeof MIRROR_PHASES)[number];

/** Phases after which nothing more happens to a mirror. */
export const TERMINAL_PHASES: readonly MirrorPhase[] = ["Expired", "Deleted"];

export const Generation = intIn(1, Number.MAX_SAFE_INTEGER, "generation counts from 1").meta({
  description: "Bumped by every change of desired state.",
});

/**
 * One tunnel the mirror sends through: a GRE key or an ERSPAN session id towards `sink`. A `both`
 * mirror emulated by two OVN rows has two, each with its own key (keys are unique per sink). The
 * capture exporter attributes packets to mirrors by (sink, type, index).
 */
export const MirrorTunnel = z.object({
  type: z.enum(["gre", "erspan"]),
  /** GRE key (gre) or ERSPAN session id (erspan). */
  index: intIn(0, GRE_KEY_MAX, "GRE key is 32 bits"),
  /** Traffic this tunnel carries, from the pod's point of view. */
  direction: z.enum(["ingress", "egress", "both"]),
});
export type MirrorTunnel = z.infer<typeof MirrorTunnel>;

/** Kubernetes-style condition (metav1.Condition), e.g. SinkResolved, KeyAllocated, ChassisSynced. */
export const MirrorCondition = z.object({
  type: z.string().regex(/^[A-Z][A-Za-z0-9]*$/, { error: "must be CamelCase (condition type)" }),
  status: z.enum(["True", "False", "Unknown"]),
  reason: Reason.optional(),
  message: text("condition message").optional(),
  lastTransitionTime: Timestamp,
  observedGeneration: counter("observedGeneration").optional(),
});
export type MirrorCondition = z.infer<typeof MirrorCondition>;

const statusBase = {
  /** Generation of the desired state this status was computed for. */
  generation: Generation,
  /** Generation last applied to the dataplane; 0 before the first apply. */
  observedGeneration: counter("observedGeneration"),
  reason: Reason.optional(),
  message: text("status message").optional(),
  /** Allocated GRE key (gre, collector targets). */
  key: intIn(0, GRE_KEY_MAX, "GRE key is 32 bits").optional(),
  /** Allocated ERSPAN session id (erspan targets). */
  sessionId: intIn(0, ERSPAN_SESSION_MAX, "ERSPAN session id is 10 bits").optional(),
  /** The sink IP in use (a pod sink resolved through ips.kubeovn.io). */
  sink: SinkAddress.optional(),
  /** Every tunnel towards `sink` (`key`/`sessionId` name only the first). */
  tunnels: z.array(MirrorTunnel).optional(),
  /** Attached logical switch ports (OVN sources) or OVS ports (ovs sources). */
  ports: z.array(portName("a port name")),
  /** Nodes whose dataplane carries part of this mirror. */
  nodes: z.array(NodeName).optional(),
  expiresAt: Timestamp.optional(),
  updatedAt: Timestamp,
  conditions: z.array(MirrorCondition).optional(),
};

const phase = <P extends MirrorPhase>(p: P) => z.literal(p);

/** Degraded and Failed must say why; the other phases may. */
export const MirrorStatus = z.discriminatedUnion("phase", [
  z.object({ phase: phase("Pending"), ...statusBase }),
  z.object({ phase: phase("Applying"), ...statusBase }),
  z.object({ phase: phase("Active"), ...statusBase }),
  z.object({ phase: phase("Degraded"), ...statusBase, reason: Reason, message: text("status message") }),
  z.object({ phase: phase("Failed"), ...statusBase, reason: Reason, message: text("status message") }),
  z.object({ phase: phase("Expired"), ...statusBase }),
  z.object({ phase: phase("Deleted"), ...statusBase }),
]);
export type MirrorStatus = z.infer<typeof MirrorStatus>;

/** The desired state of one mirror as intake stores it. */
export const MirrorRecord = z.object({
  spec: MirrorSpec,
  generation: Generation,
  /** The principal that created the mirror; policy may let only the owner delete or extend it. */
  owner: Principal,
  createdAt: Timestamp,
  updatedAt: Timestamp.optional(),
  expiresAt: Timestamp,
  /** The request that produced this generation. */
  requestId: RequestId,
  /** Set by a delete request; the applier removes the dataplane rows, then the record. */
  deletionRequestedAt: Timestamp.optional(),
});
export type MirrorRecord = z.infer<typeof MirrorRecord>;

/** A mirror's identity, as used in job payloads and events. */
export const MirrorRef = z.object({ namespace: Namespace, name: MirrorName });
export type MirrorRef = z.infer<typeof MirrorRef>;
