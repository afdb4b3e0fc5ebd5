/**
 * Status and event ids from reconcile outcomes: pure functions, so the job code only decides
 * *when* to write and publish.
 *
 *   const status = buildStatus({ phase: "Active", record, observedGeneration: record.generation,
 *     result, previous, now });
 *   if (!sameStatus(previous, status)) await store.setStatus(ns, name, status);
 *
 * Event ids are deterministic (JetStream drops a re-publish of the same `Nats-Msg-Id` inside
 * the stream's duplicate window), so a retried job never duplicates an event: per generation
 * for applying/applied/failed/expired/deleted, per transition (the status it moves away
 * from) for active/degraded, per NB transaction (nb_cfg) for drift_repaired.
 */
import type { MirrorCondition, MirrorPhase, MirrorRecord, MirrorStatus } from "@ovntap/contracts";
import { eventId } from "@ovntap/store";
import type { ConvergeResult } from "./nb/reconciler.js";

/** Who events say acted when ovntap acts on its own (contracts events.ts). */
export const PRINCIPAL = "system:ovntap:ovn-applier";

export interface StatusInput {
  phase: MirrorPhase;
  record: MirrorRecord;
  observedGeneration: number;
  previous?: MirrorStatus | undefined;
  result?: ConvergeResult | undefined;
  reason?: string | undefined;
  message?: string | undefined;
  /** Conditions beyond the converge result's (e.g. DataplaneProgrammed). */
  conditions?: readonly MirrorCondition[] | undefined;
  now: Date;
}

export function condition(
  type: string,
  status: MirrorCondition["status"],
  generation: number,
  now: Date,
  previous: MirrorStatus | undefined,
  extra: { reason?: string; message?: string } = {},
): MirrorCondition {
  const before = previous?.conditions?.find((c) => c.type === type);
  return {
    type,
    status,
    ...(extra.reason ? { reason: extra.reason } : {}),
    ...(extra.message ? { message: extra.message } : {}),
    // Kubernetes semantics: the time the status last flipped, not the time of this write.
    lastTransitionTime: before && before.status === status ? before.lastTransitionTime : now.toISOString(),
    observedGeneration: generation,
  };
}

/** The conditions a converge result implies: KeyAllocated, PortsAttached, ChassisSynced. */
export function conditionsOf(
  result: ConvergeResult,
  generation: number,
  previous: MirrorStatus | undefined,
  now: Date,
): MirrorCondition[] {
  const keys = result.rows.map((r) => `${r.name}=${r.index}`).join(", ");
  const out = [
    condition("KeyAllocated", result.rows.length > 0 ? "True" : "False", generation, now, previous, {
      ...(keys ? { message: `${result.sink ?? ""} ${keys}`.trim() } : {}),
    }),
    condition(
      "PortsAttached",
      result.missingPorts.length === 0 ? "True" : "False",
      generation,
      now,
      previous,
      {
        ...(result.missingPorts.length
          ? { reason: "PortNotFound", message: `missing: ${result.missingPorts.join(", ")}` }
          : {}),
      },
    ),
  ];
  if (result.missingPorts.length === 0) {
    const synced = result.phase === "Active";
    out.push(
      condition("ChassisSynced", synced ? "True" : "False", generation, now, previous, {
        ...(synced
          ? { message: `hv_cfg ${result.hvCfg ?? ""} ≥ nb_cfg ${result.nbCfg ?? ""}` }
          : { reason: result.reason ?? "ChassisNotSynced" }),
      }),
    );
  }
  return out;
}

export function buildStatus(input: StatusInput): MirrorStatus {
  const { record, result, now, previous } = input;
  const base = {
    generation: record.generation,
    observedGeneration: input.observedGeneration,
    ports: result ? [...result.ports] : input.phase === "Applying" ? (previous?.ports ?? []) : [],
    expiresAt: record.expiresAt,
    updatedAt: now.toISOString(),
    ...(result?.key !== undefined ? { key: result.key } : {}),
    ...(result?.sessionId !== undefined ? { sessionId: result.sessionId } : {}),
    ...(result?.sink !== undefined ? { sink: result.sink } : {}),
    ...(result && result.tunnels.length > 0 ? { tunnels: [...result.tunnels] } : {}),
    ...(result || input.conditions?.length
      ? {
          conditions: [
            ...(result ? conditionsOf(result, record.generation, previous, now) : []),
            ...(input.conditions ?? []),
          ],
        }
      : {}),
  };
  const reason = input.reason ?? result?.reason;
  const message = input.message ?? result?.message;
  switch (input.phase) {
    case "Degraded":
    case "Failed":
      return {
        ...base,
        phase: input.phase,
        reason: reason ?? "Unknown",
        message: message ?? "no detail",
      };
    default:
      return {
        ...base,
        phase: input.phase,
        ...(reason ? { reason } : {}),
        ...(message ? { message } : {}),
      };
  }
}

/** Equal but for the write time: no need to write it again. */
export function sameStatus(a: MirrorStatus | undefined, b: MirrorStatus): boolean {
  if (!a) return false;
  const strip = (s: MirrorStatus) => ({ ...s, updatedAt: "" });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

/** Deterministic event ids (see the module comment). */
export const eventIds = {
  perGeneration: (ns: string, name: string, generation: number, type: string) =>
    eventId(ns, name, generation, type),
  /** One event per transition away from `previous` (its write time identifies it). */
  transition: (
    ns: string,
    name: string,
    generation: number,
    type: string,
    previous: MirrorStatus | undefined,
  ) => eventId(ns, name, generation, type, previous ? Date.parse(previous.updatedAt) : 0),
  perTransaction: (ns: string, name: string, generation: number, type: string, nbCfg: number | undefined) =>
    eventId(ns, name, generation, type, nbCfg ?? 0),
};
