/**
 * What the page shows, computed here so the page only lays text out: a row per mirror from the
 * store, a line per lifecycle event. Every value is plain data; the page puts it in the DOM with
 * `textContent`, never as markup.
 *
 *     mirrorView(await store.getMirror("shop", "web"));
 *     // { id: "shop/web", phase: "Active", owner: "alice", sink: "10.0.0.9", key: "gre 42", … }
 */
import type { AuditRecord, MirrorSource, MirrorTarget } from "@ovntap/contracts";
import type { StoredMirror } from "@ovntap/store";

export interface MirrorView {
  /** `<namespace>/<name>`. */
  id: string;
  namespace: string;
  name: string;
  phase: string;
  /** Being deleted (a delete request or its expiry was accepted). */
  deleting: boolean;
  reason?: string;
  message?: string;
  owner: string;
  /** The sink address in use, or what the spec names. */
  sink: string;
  target: string;
  /** GRE key(s) / ERSPAN session id(s), e.g. `gre 42` or `erspan 7`; "" before allocation. */
  key: string;
  direction: string;
  sources: string;
  ports: string[];
  generation: number;
  observedGeneration: number;
  /** RFC 3339. */
  expiresAt: string;
  updatedAt: string;
}

export interface EventView {
  /** Stream sequence. */
  seq: number;
  time: string;
  /** `<namespace>/<mirror>`. */
  mirror: string;
  type: string;
  principal: string;
  generation: number;
  /** One line about `detail`. */
  summary: string;
}

function describeSources(s: MirrorSource): string {
  switch (s.type) {
    case "pods":
      return `pods ${s.names.join(", ")}`;
    case "ports":
      return `ports ${s.names.join(", ")}`;
    case "selector": {
      const terms = [
        ...Object.entries(s.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`),
        ...(s.matchExpressions ?? []).map(
          (e) => `${e.key} ${e.operator}${e.values?.length ? ` (${e.values.join(", ")})` : ""}`,
        ),
      ];
      return `selector ${terms.join(", ")}`;
    }
    case "ovs": {
      const parts = [
        ...(s.ports ? [`ports ${s.ports.join(", ")}`] : []),
        ...(s.vlans ? [`vlans ${s.vlans.join(", ")}`] : []),
      ];
      return `ovs ${s.node}/${s.bridge} ${parts.join("; ")}`;
    }
  }
}

function specSink(t: MirrorTarget): string {
  switch (t.type) {
    case "gre":
    case "erspan":
      return typeof t.sink === "string" ? t.sink : `pod ${t.sink.pod.namespace}/${t.sink.pod.name}`;
    case "collector":
      return "collector";
    case "ovsPort":
      return `${t.node}/${t.bridge} port ${t.port}`;
    case "ovsVlan":
      return `${t.node}/${t.bridge} vlan ${t.vlan}`;
  }
}

export function mirrorView(m: StoredMirror): MirrorView {
  const { record, status } = m;
  const { spec } = record;
  const keys =
    status.tunnels && status.tunnels.length > 0
      ? status.tunnels.map((t) => `${t.type} ${t.index}`)
      : status.key !== undefined
        ? [`gre ${status.key}`]
        : status.sessionId !== undefined
          ? [`erspan ${status.sessionId}`]
          : [];
  return {
    id: `${spec.namespace}/${spec.name}`,
    namespace: spec.namespace,
    name: spec.name,
    phase: status.phase,
    deleting: m.deleting,
    ...(status.reason !== undefined ? { reason: status.reason } : {}),
    ...(status.message !== undefined ? { message: status.message } : {}),
    owner: record.owner,
    sink: status.sink ?? specSink(spec.target),
    target: spec.target.type,
    key: keys.join(", "),
    direction: spec.direction,
    sources: describeSources(spec.sources),
    ports: status.ports,
    generation: record.generation,
    observedGeneration: status.observedGeneration,
    expiresAt: status.expiresAt ?? record.expiresAt,
    updatedAt: status.updatedAt,
  };
}

/** One line about an event's detail: what an operator scanning the list wants to know. */
export function eventSummary(e: AuditRecord): string {
  switch (e.type) {
    case "requested":
      return e.detail.op;
    case "accepted":
      return e.detail.expiresAt ? `${e.detail.op}, expires ${e.detail.expiresAt}` : e.detail.op;
    case "rejected":
      return `${e.detail.error.code}: ${e.detail.error.message}`;
    case "applying":
      return `${e.detail.reason}, attempt ${e.detail.attempt}${e.detail.node ? ` on ${e.detail.node}` : ""}`;
    case "applied": {
      const parts = [
        e.detail.rows.length ? `rows ${e.detail.rows.join(", ")}` : "",
        e.detail.key !== undefined ? `key ${e.detail.key}` : "",
        e.detail.sessionId !== undefined ? `session ${e.detail.sessionId}` : "",
        e.detail.sink ? `sink ${e.detail.sink}` : "",
      ];
      return parts.filter(Boolean).join(", ");
    }
    case "active":
      return e.detail.ports.length ? `ports ${e.detail.ports.join(", ")}` : "";
    case "degraded":
      return `${e.detail.reason}: ${e.detail.message}`;
    case "failed":
      return `${e.detail.code}: ${e.detail.message}${e.detail.retryable ? " (retrying)" : ""}`;
    case "expired":
      return `expired at ${e.detail.expiresAt}`;
    case "deleted":
      return e.detail.reason;
    case "drift_repaired":
      return e.detail.repairs.map((r) => `${r.table}${r.name ? ` ${r.name}` : ""} ${r.action}`).join(", ");
    case "port_attached":
      return e.detail.port;
    case "port_detached":
      return `${e.detail.port} (${e.detail.reason})`;
    case "extended":
      return `${e.detail.ttlSeconds} s, until ${e.detail.expiresAt}`;
    case "capture_drops":
      return `${e.detail.drops} dropped on ${e.detail.node}`;
    case "dataplane_error":
      return `${e.detail.component}: ${e.detail.message}`;
    case "dataplane_ok":
      return `${e.detail.component} ok${e.detail.previous ? ` (was: ${e.detail.previous})` : ""}`;
  }
}

export function eventView(e: AuditRecord, seq: number): EventView {
  return {
    seq,
    time: e.time,
    mirror: `${e.namespace}/${e.mirror}`,
    type: e.type,
    principal: e.principal,
    generation: e.generation,
    summary: eventSummary(e),
  };
}
