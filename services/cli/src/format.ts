/**
 * What the CLI prints: mirror tables, json/yaml documents, and one line per lifecycle event.
 *
 *   NAME  NAMESPACE  PHASE   SINK      KEY  DIRECTION  PORTS       EXPIRES  AGE
 *   web   shop       Active  10.0.0.9  7    both       web-0.shop  in 59m   1m
 *
 *   2025-01-31T12:00:00.000Z  shop/web  accepted  gen=1  alice  op=create expires=2025-01-31T13:00:00.000Z
 */
import type { LifecycleEvent, MirrorRecord, MirrorStatus, MirrorTarget } from "@ovntap/contracts";
import { stringify } from "yaml";
import type { ReplyErrorBody } from "./errors.js";

export const OUTPUT_FORMATS = ["table", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface MirrorView {
  readonly mirror: MirrorRecord;
  readonly status: MirrorStatus;
}

const NONE = "-";

/** kubectl's short human durations: 45s, 5m, 3h, 12d, 2y. */
export function shortDuration(ms: number): string {
  const s = Math.floor(Math.max(0, ms) / 1000);
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 && h < 8 ? `${h}h${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

/** For messages about timeouts: `0.3s`, `7.5s` under ten seconds, then as shortDuration. */
export function timeoutText(ms: number): string {
  return ms < 10_000 ? `${Number((ms / 1000).toFixed(1))}s` : shortDuration(ms);
}

export function sinkText(target: MirrorTarget, status?: MirrorStatus): string {
  if (status?.sink !== undefined) return status.sink;
  switch (target.type) {
    case "gre":
    case "erspan":
      return typeof target.sink === "string"
        ? target.sink
        : `pod:${target.sink.pod.namespace}/${target.sink.pod.name}`;
    case "collector":
      return "collector";
    case "ovsPort":
      return `${target.node}/${target.bridge}/${target.port}`;
    case "ovsVlan":
      return `${target.node}/${target.bridge}/vlan${target.vlan}`;
  }
}

/** The GRE key or ERSPAN session id in use, else the one asked for. */
export function keyText(target: MirrorTarget, status?: MirrorStatus): string {
  if (status?.key !== undefined) return String(status.key);
  if (status?.sessionId !== undefined) return String(status.sessionId);
  if (target.type === "gre" && target.key !== undefined) return String(target.key);
  if (target.type === "erspan" && target.sessionId !== undefined) return String(target.sessionId);
  return NONE;
}

/** At most two names, then "+N". */
export function portsText(ports: readonly string[]): string {
  if (ports.length === 0) return NONE;
  const shown = ports.slice(0, 2).join(",");
  return ports.length > 2 ? `${shown} +${ports.length - 2}` : shown;
}

export function expiresText(expiresAt: string | undefined, now: number): string {
  if (expiresAt === undefined) return NONE;
  const left = Date.parse(expiresAt) - now;
  return left <= 0 ? "expired" : `in ${shortDuration(left)}`;
}

export const TABLE_COLUMNS = [
  "NAME",
  "NAMESPACE",
  "PHASE",
  "SINK",
  "KEY",
  "DIRECTION",
  "PORTS",
  "EXPIRES",
  "AGE",
] as const;

export function tableRow(view: MirrorView, now: number): string[] {
  const { mirror, status } = view;
  const { spec } = mirror;
  return [
    spec.name,
    spec.namespace,
    mirror.deletionRequestedAt !== undefined && status.phase !== "Deleted" ? "Deleting" : status.phase,
    sinkText(spec.target, status),
    keyText(spec.target, status),
    spec.direction,
    portsText(status.ports),
    expiresText(status.expiresAt ?? mirror.expiresAt, now),
    shortDuration(now - Date.parse(mirror.createdAt)),
  ];
}

/** Columns padded to their widest cell, separated by three spaces as kubectl does. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("   ")
      .trimEnd();
  return [line(header), ...rows.map(line)].map((l) => `${l}\n`).join("");
}

export function formatMirrorTable(views: readonly MirrorView[], now: number): string {
  return formatTable(
    TABLE_COLUMNS,
    views.map((v) => tableRow(v, now)),
  );
}

export function formatDocument(value: unknown, format: "json" | "yaml"): string {
  return format === "json" ? `${JSON.stringify(value, null, 2)}\n` : stringify(value, { lineWidth: 0 });
}

/** `INVALID_REQUEST: invalid request: …` and one indented line per issue. */
export function formatErrorBody(error: ReplyErrorBody): string {
  const lines = [`${error.code}: ${error.message}`];
  for (const issue of error.issues ?? []) lines.push(`  ${issue.path || "(request)"}: ${issue.message}`);
  return `${lines.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------------
// Events

function kv(entries: readonly (readonly [string, unknown])[]): string {
  return entries
    .filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : String(v)}`)
    .join(" ");
}

/** The detail of an event as one short line. */
export function eventSummary(event: LifecycleEvent): string {
  switch (event.type) {
    case "requested": {
      const d = event.detail;
      return kv([
        ["op", d.op],
        ["ttl", d.ttlSeconds === undefined ? undefined : `${d.ttlSeconds}s`],
        ["sink", d.spec ? sinkText(d.spec.target) : undefined],
        ["direction", d.spec?.direction],
      ]);
    }
    case "accepted":
      return kv([
        ["op", event.detail.op],
        ["expires", event.detail.expiresAt],
      ]);
    case "rejected":
      return `${kv([["op", event.detail.op]])} ${event.detail.error.code}: ${event.detail.error.message}`.trim();
    case "applying":
      return kv([
        ["reason", event.detail.reason],
        ["attempt", event.detail.attempt],
        ["node", event.detail.node],
      ]);
    case "applied":
      return kv([
        ["rows", event.detail.rows],
        ["key", event.detail.key],
        ["session", event.detail.sessionId],
        ["sink", event.detail.sink],
        ["nb_cfg", event.detail.nbCfg],
        ["node", event.detail.node],
      ]);
    case "active":
      return kv([
        ["ports", event.detail.ports],
        ["hv_cfg", event.detail.hvCfg],
      ]);
    case "degraded":
      return `${event.detail.reason}: ${event.detail.message}${event.detail.ports?.length ? ` ${kv([["ports", event.detail.ports]])}` : ""}`;
    case "failed":
      return `${event.detail.code}: ${event.detail.message}${event.detail.retryable ? " (retrying)" : ""}`;
    case "expired":
      return kv([["expired", event.detail.expiresAt]]);
    case "deleted":
      return kv([["reason", event.detail.reason]]);
    case "drift_repaired":
      return event.detail.repairs
        .map((r) => `${r.table}${r.name === undefined ? "" : `/${r.name}`} ${r.action}`)
        .join(", ");
    case "port_attached":
      return kv([
        ["port", event.detail.port],
        ["pod", event.detail.pod ? `${event.detail.pod.namespace}/${event.detail.pod.name}` : undefined],
        ["node", event.detail.node],
      ]);
    case "port_detached":
      return kv([
        ["port", event.detail.port],
        ["pod", event.detail.pod ? `${event.detail.pod.namespace}/${event.detail.pod.name}` : undefined],
        ["node", event.detail.node],
        ["reason", event.detail.reason],
      ]);
    case "extended":
      return kv([
        ["ttl", `${event.detail.ttlSeconds}s`],
        ["expires", event.detail.expiresAt],
        ["was", event.detail.previousExpiresAt],
      ]);
    case "capture_drops":
      return kv([
        ["node", event.detail.node],
        ["drops", event.detail.drops],
        ["since", event.detail.since],
        ["until", event.detail.until],
      ]);
    case "dataplane_error": {
      const where = kv([
        ["node", event.detail.node],
        ["bridge", event.detail.bridge],
        ["port", event.detail.port],
        ["row", event.detail.row],
      ]);
      return `${event.detail.component}${event.detail.code ? ` ${event.detail.code}` : ""}: ${event.detail.message}${where ? ` (${where})` : ""}`;
    }
    case "dataplane_ok": {
      const where = kv([
        ["node", event.detail.node],
        ["bridge", event.detail.bridge],
        ["port", event.detail.port],
        ["row", event.detail.row],
      ]);
      return `${event.detail.component}: programmed again${where ? ` (${where})` : ""}${event.detail.previous ? `; was: ${event.detail.previous}` : ""}`;
    }
  }
}

/** Longest event type name, so the detail column lines up. */
const TYPE_WIDTH = 15;

/** `time  namespace/mirror  type  gen=N  principal  detail` */
export function formatEventLine(event: LifecycleEvent): string {
  return `${[
    event.time,
    `${event.namespace}/${event.mirror}`,
    event.type.padEnd(TYPE_WIDTH),
    `gen=${event.generation}`,
    event.principal,
    eventSummary(event),
  ]
    .join("  ")
    .trimEnd()}\n`;
}

/**
 * An event this CLI's contracts do not know (a newer writer, a new type): the base fields when
 * present and the detail as JSON, so `events` never drops a record of the audit trail.
 */
export function formatUnknownEventLine(raw: unknown, subject: string): string {
  const o = (raw !== null && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" || typeof v === "number" ? String(v) : "?");
  const who =
    typeof o.namespace === "string" && typeof o.mirror === "string" ? `${o.namespace}/${o.mirror}` : subject;
  return `${[str(o.time), who, str(o.type).padEnd(TYPE_WIDTH), `gen=${str(o.generation)}`, str(o.principal), JSON.stringify(o.detail ?? raw)].join("  ")}\n`;
}
