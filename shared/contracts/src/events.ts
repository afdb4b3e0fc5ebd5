/**
 * Lifecycle events on `ovntap.v1.events.<ns>.<mirror>`, stored in the `OVNTAP_EVENTS` stream (the
 * audit trail). A discriminated union on `type`; `detail` is typed per type.
 *
 *     const e = LifecycleEvent.parse(JSON.parse(msg.string()));
 *     if (e.type === "failed") log.warn({ code: e.detail.code }, "mirror failed");
 *
 * Publish with the `Nats-Msg-Id` header set to `eventId`, so JetStream drops a duplicate publish
 * inside its duplicate window (a retried job re-emitting the same event).
 *
 * For what ovntap does on its own (expiry, drift repair) `principal` is `system:ovntap:<service>`
 * and `requestId` is that of the request which set the current generation. A request rejected
 * before it named a mirror is reported under the mirror name `_unnamed` (not a DNS label, so it
 * cannot collide); `generation` is 0 for anything about a mirror never stored.
 */
import { z } from "zod";
import { ErrorBody, ErrorCode } from "./errors.js";
import {
  BridgeName,
  counter,
  intIn,
  MirrorName,
  Namespace,
  NodeName,
  PodName,
  portName,
  Principal,
  Reason,
  RequestId,
  text,
  Timestamp,
} from "./fields.js";
import { JobReason } from "./jobs.js";
import { REQUEST_OPS } from "./requests.js";
import { ERSPAN_SESSION_MAX, GRE_KEY_MAX, TTL_MAX_SECONDS } from "./limits.js";
import { LabelSelector, MirrorSpec, SinkAddress } from "./spec.js";

/** Mirror name used for events about a request that never named a valid mirror. */
export const UNNAMED_MIRROR = "_unnamed";

const OpName = z.enum(REQUEST_OPS);

/** Where in the data plane something failed or recovered. */
const DataplaneComponent = z.enum(["ovn-nb", "ovn-controller", "ovs", "kernel", "exporter"]);

const PodRef = z.object({ namespace: Namespace, name: PodName });

export const EVENT_TYPES = [
  "requested",
  "accepted",
  "rejected",
  "applying",
  "applied",
  "active",
  "degraded",
  "failed",
  "expired",
  "deleted",
  "drift_repaired",
  "port_attached",
  "port_detached",
  "extended",
  "capture_drops",
  "dataplane_error",
  "dataplane_ok",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** `detail` of each event type. */
export const EVENT_DETAILS = {
  /** A well-formed request arrived (before policy). */
  requested: z.object({
    op: OpName,
    spec: MirrorSpec.optional(),
    ttlSeconds: intIn(0, TTL_MAX_SECONDS, "ttlSeconds").optional(),
    selector: LabelSelector.optional(),
  }),
  /** Intake stored the desired state and queued work. */
  accepted: z.object({ op: OpName, expiresAt: Timestamp.optional() }),
  /** Intake refused the request; `error` is what the requester was told. */
  rejected: z.object({ op: OpName.optional(), error: ErrorBody }),
  /** An applier started on this generation. */
  applying: z.object({
    reason: JobReason,
    attempt: intIn(1, 1_000_000, "attempt counts from 1"),
    node: NodeName.optional(),
  }),
  /** The dataplane rows were written: OVN NB committed, or the node agent's OVS transaction. */
  applied: z.object({
    /** Names of the OVN NB Mirror rows or OVS Mirror rows written. */
    rows: z.array(text("row name", 256)),
    key: intIn(0, GRE_KEY_MAX, "GRE key is 32 bits").optional(),
    sessionId: intIn(0, ERSPAN_SESSION_MAX, "ERSPAN session id is 10 bits").optional(),
    sink: SinkAddress.optional(),
    /** NB_Global.nb_cfg after the transaction, for OVN mirrors. */
    nbCfg: counter("nb_cfg").optional(),
    node: NodeName.optional(),
  }),
  /** The chassis caught up (`hv_cfg ≥ nb_cfg`) or the agent confirmed the OVS mirror. */
  active: z.object({ ports: z.array(portName("a port name")), hvCfg: counter("hv_cfg").optional() }),
  /** Running, but not everything: some ports missing, a node behind. */
  degraded: z.object({
    reason: Reason,
    message: text("message"),
    ports: z.array(portName("a port name")).optional(),
  }),
  failed: z.object({ code: ErrorCode, message: text("message"), retryable: z.boolean() }),
  expired: z.object({ expiresAt: Timestamp }),
  /** The dataplane rows and the record are gone. */
  deleted: z.object({ reason: z.enum(["request", "expired", "orphan"]) }),
  /** The applier found the dataplane different from the desired state and fixed it. */
  drift_repaired: z.object({
    repairs: z
      .array(
        z.object({
          /** OVSDB table: Mirror, Logical_Switch_Port, Bridge, Port, Interface. */
          table: z.string().max(64),
          name: text("row name", 256).optional(),
          action: z.enum(["created", "updated", "deleted"]),
        }),
      )
      .min(1),
  }),
  port_attached: z.object({
    port: portName("a port name"),
    pod: PodRef.optional(),
    node: NodeName.optional(),
  }),
  port_detached: z.object({
    port: portName("a port name"),
    pod: PodRef.optional(),
    node: NodeName.optional(),
    reason: z.enum(["pod_deleted", "selector_changed", "spec_changed", "port_missing", "mirror_deleted"]),
  }),
  extended: z.object({
    ttlSeconds: intIn(0, TTL_MAX_SECONDS, "ttlSeconds"),
    previousExpiresAt: Timestamp,
    expiresAt: Timestamp,
  }),
  /** Packets the exporter (or the kernel under it) lost for this mirror between `since` and `until`. */
  capture_drops: z.object({ node: NodeName, drops: counter("drops"), since: Timestamp, until: Timestamp }),
  /**
   * OVS or the kernel refused something, e.g. `Interface.error` "could not add network device …
   * (File exists)". The node agent publishes one per node, row, generation and error text.
   */
  dataplane_error: z.object({
    component: DataplaneComponent,
    code: ErrorCode.optional(),
    message: text("message"),
    node: NodeName.optional(),
    bridge: BridgeName.optional(),
    port: portName("a port name").optional(),
    /** The OVN/OVS Mirror row concerned (a `both` mirror on OVN < 23.06 has two). */
    row: text("row name", 256).optional(),
  }),
  /**
   * What a `dataplane_error` reported is over: the data plane of `node` carries the row again
   * (OVN mirrors: ovn-controller's rows in place and accepted by ovs-vswitchd).
   */
  dataplane_ok: z.object({
    component: DataplaneComponent,
    node: NodeName.optional(),
    bridge: BridgeName.optional(),
    port: portName("a port name").optional(),
    row: text("row name", 256).optional(),
    /** The error that ended. */
    previous: text("message").optional(),
  }),
} as const satisfies Record<EventType, z.ZodType>;

export type EventDetail<T extends EventType> = z.infer<(typeof EVENT_DETAILS)[T]>;

const eventBase = {
  /** Unique per event; also the JetStream `Nats-Msg-Id`. */
  eventId: RequestId,
  time: Timestamp,
  /** The mirror's name, or `_unnamed`. */
  mirror: z.union([MirrorName, z.literal(UNNAMED_MIRROR)]),
  namespace: Namespace,
  /** The desired-state generation this is about; 0 when the mirror was never stored. */
  generation: counter("generation"),
  principal: Principal,
  requestId: RequestId,
};

function eventOf<T extends EventType>(type: T) {
  return z.object({ ...eventBase, type: z.literal(type), detail: EVENT_DETAILS[type] });
}

export const LifecycleEvent = z.discriminatedUnion("type", [
  eventOf("requested"),
  eventOf("accepted"),
  eventOf("rejected"),
  eventOf("applying"),
  eventOf("applied"),
  eventOf("active"),
  eventOf("degraded"),
  eventOf("failed"),
  eventOf("expired"),
  eventOf("deleted"),
  eventOf("drift_repaired"),
  eventOf("port_attached"),
  eventOf("port_detached"),
  eventOf("extended"),
  eventOf("capture_drops"),
  eventOf("dataplane_error"),
  eventOf("dataplane_ok"),
]);
export type LifecycleEvent = z.infer<typeof LifecycleEvent>;
export type LifecycleEventOf<T extends EventType> = Extract<LifecycleEvent, { type: T }>;

const seq = intIn(1, Number.MAX_SAFE_INTEGER, "a stream sequence counts from 1")
  .optional()
  .meta({ description: "JetStream stream sequence of the stored event." });

function auditOf<T extends EventType>(type: T) {
  return eventOf(type).extend({ seq });
}

/** An event as read back from the stream, with its JetStream sequence when known. */
export const AuditRecord = z.discriminatedUnion("type", [
  auditOf("requested"),
  auditOf("accepted"),
  auditOf("rejected"),
  auditOf("applying"),
  auditOf("applied"),
  auditOf("active"),
  auditOf("degraded"),
  auditOf("failed"),
  auditOf("expired"),
  auditOf("deleted"),
  auditOf("drift_repaired"),
  auditOf("port_attached"),
  auditOf("port_detached"),
  auditOf("extended"),
  auditOf("capture_drops"),
  auditOf("dataplane_error"),
  auditOf("dataplane_ok"),
]);
export type AuditRecord = z.infer<typeof AuditRecord>;

/** JetStream headers an event is published with. */
export const EventHeaders = z.object({
  "Nats-Msg-Id": RequestId.meta({ description: "Equals eventId, for JetStream de-duplication." }),
});
export type EventHeaders = z.infer<typeof EventHeaders>;
