/**
 * OVS-level mirrors (`ovs` sources) on this node: a BullMQ worker on `node.<node>` and the loops
 * that keep OVS converged without a job. Level-based: every reconcile reads the latest record
 * from the store (the job payload only names the mirror) and makes OVS hold exactly its rows.
 *
 *   const svc = await createMirrorService({ node, ovs, sb, ip, redis, workerRedis, store, events, … });
 *   await svc.start();
 *   await svc.reconcile({ namespace: "shop", name: "web" });   // as a job does it
 *
 * One reconcile (serialized per mirror within the process; one agent per node):
 *   record absent             → rows it still owns here removed (orphan)
 *   other node / not ovs      → rows removed here (the mirror moved)
 *   expired, not yet marked   → store.applyExpire (publishes `expired`), then as deleting
 *   deleting                  → rows removed, keys released → Deleted|Expired, `deleted`, purge
 *   otherwise                 → `applying` (new generation) → key → preflight → plan → one OVS
 *                               transaction (guarded, re-planned on conflicts) → ovs-vswitchd
 *                               caught up (cur_cfg ≥ next_cfg) → Active | Degraded | Failed
 *
 * Drift: every OVS change touching Mirror/Port/Interface/Bridge rows (and a timer) re-plans each
 * known mirror against the monitor's cache; a plan with operations is repaired at once
 * (`drift_repaired`). So `ovs-vsctl clear bridge br-int mirrors` — Kube-OVN's daemon runs it at
 * start — is undone within the debounce plus one transaction. A full resync with the store runs
 * at start and every RESYNC_INTERVAL_MS: new, changed, expired and deleted mirrors of this node,
 * even when no job was queued for them, and rows of mirrors the store no longer has.
 */
import { UnrecoverableError, Worker, type Job } from "bullmq";
import {
  canonicalIp,
  ERROR_CODE_INFO,
  NodeApplyJob,
  nodeQueue,
  targetEncapsulation,
  transportFamily,
  type ErrorCode,
  type EventDetail,
  type EventType,
  type JobReason,
  type MirrorCondition,
  type MirrorPhase,
  type MirrorRecord,
  type MirrorStatus,
  type MirrorTunnel,
  type ReceiverLink,
} from "@ovntap/contracts";
import { ovsOp, TransactionError, vswitchCapabilities, type Operation } from "@ovntap/ovsdb";
import { createLoops, type Logger, type Metrics } from "@ovntap/runtime";
import {
  DEFAULT_PREFIX,
  eventId,
  makeEvent,
  type EventLog,
  type Store,
  type StoredMirror,
} from "@ovntap/store";
import type { Redis } from "ioredis";
import type { AgentConfig } from "../config.js";
import { mirrorId, parseMirrorId, type MirrorKey } from "../names.js";
import { IpCommandError, type Ip, type IpRoute } from "../net/ip.js";
import {
  LinkOwnedElsewhereError,
  LinkTypeUnsupportedError,
  ReceivingLinks,
  type ReceivingLinkType,
} from "../net/links.js";
import type { SbState } from "../ovn/sb.js";
import { OVS_DB, type OvsState } from "../ovs/state.js";
import { preflight, type PreflightIssue } from "../preflight.js";
import { routeMtu, type TransportInfo } from "../probe.js";
import { KeyAllocator, KeyError } from "./keys.js";
import {
  leftoverRevalidatePorts,
  ownerIds,
  planOvsMirror,
  planRemoval,
  planRevalidateCleanup,
  tunnelState,
  type Change,
  type DesiredOvsMirror,
  type OvsSourceSpec,
  type Plan,
  type PlanFailure,
  type TunnelWant,
} from "./plan.js";

export interface MirrorServiceDeps {
  node: string;
  ovs: OvsState;
  sb?: SbState | undefined;
  /** iproute2 in the node's namespace (route MTU towards a sink). */
  ip: Ip;
  redis: Redis;
  workerRedis: Redis;
  store: Store;
  events?: Pick<EventLog, "publish"> | undefined;
  logger: Logger;
  metrics?: Metrics | undefined;
  config: AgentConfig;
  principal: string;
  storePrefix?: string | undefined;
  /** The transport the last probe found. */
  transport: () => TransportInfo | undefined;
  kernelRelease: () => string | undefined;
  now?: () => Date;
}

export type ReconcileOutcome =
  | { type: "active" | "degraded" | "failed"; status: MirrorStatus }
  | { type: "deleted" | "expired" | "absent" | "foreign"; removed: readonly Change[] };

export interface MirrorService {
  readonly queueName: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  running(): boolean;
  /** Mirrors this agent holds rows for. */
  ownedCount(): number;
  /** One reconcile of a mirror, as a job does it. */
  reconcile(ref: MirrorKey, reason?: JobReason): Promise<ReconcileOutcome>;
  /** The full resync with the store, as at start. */
  resync(): Promise<void>;
  /** Re-plans every known mirror against the cache and repairs those that drifted. */
  checkDrift(): Promise<void>;
}

/** A failure of one reconcile step, with the status reason it becomes. */
class StepError extends Error {
  override name = "StepError";
  constructor(
    readonly code: ErrorCode,
    readonly reason: string,
    message: string,
    readonly retryable: boolean = ERROR_CODE_INFO[code].retryable,
  ) {
    super(message);
  }
}

/** Reasons a later reconcile may clear by itself: the drift loop keeps trying those. */
const TRANSIENT_REASONS = new Set([
  "PortNotFound",
  "BridgeNotFound",
  "BridgeMirrorLimit",
  "VswitchdNotSynced",
  "TunnelPortError",
  "Unavailable",
  "KeySpaceExhausted",
  "ReceivingLinkFailed",
]);

const MAX_PLAN_ATTEMPTS = 20;

const ovsSelectNextCfg = (rootUuid: string): Operation =>
  ovsOp.select("Open_vSwitch", [["_uuid", "==", rootUuid]], ["next_cfg"]);

function isOvsSpec(record: MirrorRecord): record is MirrorRecord & { spec: OvsSourceSpec } {
  return record.spec.sources.type === "ovs";
}

export async function createMirrorService(deps: MirrorServiceDeps): Promise<MirrorService> {
  const { ovs, store, config, node } = deps;
  const log = deps.logger.child({ component: "mirrors" });
  const now = deps.now ?? (() => new Date());
  const queueName = nodeQueue(node);
  const keys = new KeyAllocator({
    redis: deps.redis,
    prefix: deps.storePrefix ?? DEFAULT_PREFIX,
    node,
    ovs,
    sb: deps.sb,
  });
  const hasSnaplen = vswitchCapabilities(await ovs.client.schema(OVS_DB)).mirrorSnaplen;
  const links = new ReceivingLinks({ ip: deps.ip, logger: log, node });

  /** Mirrors of this node known from the store: what the drift loop checks. */
  const desired = new Map<string, DesiredOvsMirror>();
  /** The tunnel each mirror got at its last reconcile (the drift check re-plans with it). */
  const tunnels = new Map<string, TunnelWant | undefined>();
  /** Whether the last reconcile suppressed the rows (blocking preflight). */
  const suppressed = new Map<string, boolean>();
  /** Last outcome per mirror: phase, reason, generation. */
  const last = new Map<string, { phase: MirrorPhase; reason?: string | undefined; generation: number }>();
  const applyingSent = new Map<string, number>();
  const expiryTimers = new Map<string, NodeJS.Timeout>();
  const chains = new Map<string, Promise<unknown>>();

  const m = deps.metrics;
  const metrics = m && {
    reconciles: m.counter({
      name: "node_agent_reconciles_total",
      help: "Reconciles of OVS-level mirrors by outcome (active, degraded, failed, deleted, expired, absent, foreign, error)",
      labelNames: ["outcome"],
    }),
    latency: m.histogram({
      name: "node_agent_reconcile_duration_seconds",
      help: "Time of one reconcile of an OVS-level mirror, including ovs-vswitchd catching up",
      labelNames: ["outcome"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    }),
    drift: m.counter({
      name: "node_agent_drift_repairs_total",
      help: "Reconciles that put back OVS rows changed or removed out of band",
    }),
    conflicts: m.counter({
      name: "node_agent_plan_conflicts_total",
      help: "OVS transactions re-planned because the rows changed under them",
    }),
  };

  /** Runs `fn` after any reconcile of the same mirror in this process has finished. */
  function serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = chains.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    chains.set(id, tail);
    void tail.finally(() => {
      if (chains.get(id) === tail) chains.delete(id);
    });
    return run;
  }

  async function publish<T extends EventType>(
    type: T,
    record: MirrorRecord,
    id: string,
    detail: EventDetail<T>,
  ): Promise<void> {
    if (!deps.events) return;
    await deps.events.publish(
      makeEvent(type, {
        namespace: record.spec.namespace,
        mirror: record.spec.name,
        generation: record.generation,
        principal: deps.principal,
        requestId: record.requestId,
        eventId: id,
        detail,
        time: now(),
      }),
    );
  }

  async function writeStatus(
    ns: string,
    name: string,
    previous: MirrorStatus | undefined,
    next: MirrorStatus,
  ) {
    if (previous && sameStatus(previous, next)) return previous;
    const r = await store.setStatus(ns, name, next);
    if (r.type !== "updated") log.info({ mirror: `${ns}/${name}`, outcome: r.type }, "status not written");
    return next;
  }

  // ---------------------------------------------------------------------------------------
  // Applying

  /** Transacts plans until one commits or there is nothing to do; re-plans on guard conflicts. */
  async function converge(
    d: DesiredOvsMirror,
    tunnel: TunnelWant | undefined,
    suppress: boolean,
  ): Promise<{ plan: Plan | PlanFailure; nextCfg: number | undefined }> {
    for (let attempt = 1; ; attempt++) {
      const plan = planOvsMirror(ovs, d, { tunnel, suppress, node, hasSnaplen });
      if (plan.type === "failure" || plan.ops.length === 0) return { plan, nextCfg: undefined };
      for (const n of plan.revalidatePorts) revalidating.add(n);
      try {
        const results = await ovs.client.transact(OVS_DB, plan.ops);
        const sel = plan.nextCfgIndex !== undefined ? results[plan.nextCfgIndex] : undefined;
        const rows = (sel as { rows?: { next_cfg?: number }[] } | undefined)?.rows;
        return { plan, nextCfg: rows?.[0]?.next_cfg };
      } catch (err) {
        for (const n of plan.revalidatePorts) revalidating.delete(n);
        // A guard failed ("timed out"): the rows changed since the cache showed them. The
        // monitor delivers the other write before our reply, so the next plan sees it.
        if (err instanceof TransactionError && err.error === "timed out" && attempt < MAX_PLAN_ATTEMPTS) {
          metrics?.conflicts.inc();
          log.debug({ mirror: mirrorId(d), attempt }, "OVS rows changed under the plan, re-planning");
          await new Promise((r) => setTimeout(r, Math.min(200, 10 * attempt)));
          continue;
        }
        throw err;
      }
    }
  }

  /** Ports added to make vswitchd revalidate, not yet removed: the leftover sweep spares them. */
  const revalidating = new Set<string>();

  /** Removes the transient revalidation ports once vswitchd has applied what they were for. */
  async function dropRevalidatePorts(names: readonly string[], nextCfg: number | undefined): Promise<void> {
    if (names.length === 0) return;
    if (nextCfg !== undefined) await ovs.waitApplied(nextCfg, config.vswitchdTimeoutMs);
    try {
      const ops = planRevalidateCleanup(ovs, names);
      if (ops.length) await ovs.client.transact(OVS_DB, ops);
    } catch (err) {
      log.warn({ err, ports: names }, "revalidation ports not removed; the drift loop retries");
    } finally {
      for (const n of names) revalidating.delete(n);
    }
  }

  async function removeOwned(id: string): Promise<Change[]> {
    for (let attempt = 1; ; attempt++) {
      const r = planRemoval(ovs, id, node);
      if (r.ops.length === 0) return [];
      for (const n of r.revalidatePorts) revalidating.add(n);
      try {
        const results = await ovs.client.transact(OVS_DB, [
          ...r.ops,
          ...(ovs.root() ? [ovsSelectNextCfg(ovs.root()!._uuid)] : []),
        ]);
        const sel = results[results.length - 1] as { rows?: { next_cfg?: number }[] } | undefined;
        await dropRevalidatePorts(r.revalidatePorts, sel?.rows?.[0]?.next_cfg);
        for (const s of r.sinks) {
          const sink = canonicalIp(s);
          if (sink) await keys.releaseAll(id, sink);
        }
        log.info({ mirror: id, removed: r.changes.map((c) => `${c.table} ${c.name}`) }, "OVS rows removed");
        return r.changes;
      } catch (err) {
        for (const n of r.revalidatePorts) revalidating.delete(n);
        if (err instanceof TransactionError && err.error === "timed out" && attempt < MAX_PLAN_ATTEMPTS) {
          await new Promise((res) => setTimeout(res, 20));
          continue;
        }
        throw err;
      }
    }
  }

  /** The target's tunnel, its key chosen and claimed; undefined for local outputs. */
  async function tunnelFor(d: DesiredOvsMirror): Promise<{ tunnel: TunnelWant; sink: string } | undefined> {
    const t = d.spec.target;
    if (t.type === "ovsPort" || t.type === "ovsVlan") return undefined;
    let sink: string | undefined;
    if (t.type === "collector") {
      sink = config.collectorSink;
      if (!sink) {
        throw new StepError(
          "UNSUPPORTED",
          "CollectorNotConfigured",
          `a collector target needs the capture exporter's address: set COLLECTOR_SINK on the node agent of ${node}`,
        );
      }
    } else if (typeof t.sink === "string") {
      sink = canonicalIp(t.sink);
    } else {
      throw new StepError(
        "UNSUPPORTED",
        "Unsupported",
        `target.sink: a pod sink (${t.sink.pod.namespace}/${t.sink.pod.name}) needs the Kubernetes integration; give its IP`,
      );
    }
    if (!sink) throw new StepError("INVALID_REQUEST", "InvalidRequest", `target.sink is not an IP address`);
    const type = t.type === "erspan" ? "erspan" : "gre";
    const requested = t.type === "gre" ? t.key : t.type === "erspan" ? t.sessionId : undefined;
    const current = tunnels.get(mirrorId(d));
    const previousKey =
      current && current.remoteIp === sink && current.type === type ? current.key : currentKey(d);
    try {
      const key = await keys.choose({ id: mirrorId(d), sink, type, requested, current: previousKey });
      return {
        sink,
        tunnel: {
          type,
          remoteIp: sink,
          key,
          ...(t.type === "erspan" ? { erspanVersion: t.version ?? 1 } : {}),
        },
      };
    } catch (err) {
      if (err instanceof KeyError) {
        throw new StepError(
          err.code,
          err.code === "KEY_IN_USE" ? "KeyInUse" : "KeySpaceExhausted",
          err.message,
        );
      }
      throw err;
    }
  }

  /** The key the mirror's tunnel interface carries now (after a restart, memory is empty). */
  function currentKey(d: DesiredOvsMirror): number | undefined {
    const iface = tunnelState(ovs, `ovntap.${d.namespace}.${d.name}`);
    const k = iface?.external_ids["ovntap/key"];
    return k !== undefined && /^\d+$/.test(k) ? Number(k) : undefined;
  }

  /** The address tunnels towards `sink` leave from (`ip route get`), the far end of an ERSPAN link. */
  async function tunnelSource(sink: string): Promise<string | undefined> {
    const routes = await deps.ip.json<IpRoute[]>(["route", "get", sink]).catch(() => [] as IpRoute[]);
    const family = transportFamily(sink);
    return (
      routes[0]?.prefsrc ??
      deps.transport()?.addresses.find((a) => transportFamily(a) === family) ??
      undefined
    );
  }

  /**
   * The receiving link the target asks for (`target.receiver`), made once the key is known:
   * the Kube-OVN guide's `ip link add … type gretap|erspan …` in the receiver's namespace.
   */
  async function ensureReceiver(
    d: DesiredOvsMirror,
    r: ReceiverLink,
    t: { tunnel: TunnelWant; sink: string },
  ): Promise<string> {
    if (r.netns === undefined) {
      throw new StepError(
        "UNSUPPORTED",
        "Unsupported",
        `target.receiver.pod (${r.pod?.namespace ?? "?"}/${r.pod?.name ?? "?"}): finding a pod's network namespace needs the Kubernetes integration; give target.receiver.netns`,
      );
    }
    const v6 = transportFamily(t.sink) === 6;
    const type: ReceivingLinkType =
      t.tunnel.type === "erspan" ? (v6 ? "ip6erspan" : "erspan") : v6 ? "ip6gretap" : "gretap";
    // ERSPAN links need the sending end; a gretap takes GRE from anyone with the key.
    const remote = t.tunnel.type === "erspan" ? await tunnelSource(t.sink) : undefined;
    try {
      const { action } = await links.ensure({
        name: r.link,
        netns: r.netns,
        type,
        local: t.sink,
        remote,
        key: t.tunnel.key,
        erspanIndex: t.tunnel.key,
        erspanVersion: t.tunnel.erspanVersion,
        dev: r.dev,
        owner: mirrorId(d),
        generation: d.generation,
      });
      if (action !== "unchanged")
        log.info({ mirror: mirrorId(d), link: r.link, netns: r.netns, type, action }, "receiving link");
      return `${type} link ${r.link} in network namespace ${r.netns}, key ${t.tunnel.key}`;
    } catch (err) {
      if (err instanceof LinkTypeUnsupportedError)
        throw new StepError("LINK_TYPE_UNSUPPORTED", "LinkTypeUnsupported", err.message);
      if (err instanceof LinkOwnedElsewhereError)
        throw new StepError("ALREADY_EXISTS", "LinkOwnedElsewhere", err.message);
      if (err instanceof IpCommandError)
        throw new StepError("INTERNAL", "ReceivingLinkFailed", `target.receiver: ${err.message}`);
      throw err;
    }
  }

  /** Removes the mirror's receiving link, if it asked for one; a namespace already gone is fine. */
  async function removeReceiver(record: MirrorRecord): Promise<void> {
    const t = record.spec.target;
    const r = t.type === "gre" || t.type === "erspan" ? t.receiver : undefined;
    if (r?.netns === undefined) return;
    try {
      await links.remove({ name: r.link, netns: r.netns, owner: mirrorId(record.spec) });
    } catch (err) {
      log.warn(
        { err, mirror: mirrorId(record.spec), link: r.link, netns: r.netns },
        "receiving link not removed",
      );
    }
  }

  async function runPreflight(d: DesiredOvsMirror, sink: string | undefined): Promise<PreflightIssue[]> {
    const src = d.spec.sources;
    const bridge = ovs.bridge(src.bridge);
    const ports = (src.ports ?? []).flatMap((name) => {
      const p = bridge ? ovs.portOn(bridge, name) : undefined;
      const iface = p ? ovs.interfacesOf(p)[0] : undefined;
      return p ? [{ name, mtu: iface?.mtu ?? null }] : [];
    });
    let transport: { interface: string; mtu: number } | undefined;
    if (sink) {
      const route = await routeMtu(deps.ip, sink);
      const t = deps.transport();
      transport = route
        ? { interface: route.dev, mtu: route.mtu }
        : t
          ? { interface: t.interface, mtu: t.mtu }
          : undefined;
    }
    const target = d.spec.target;
    return preflight({
      encapsulation: targetEncapsulation(target),
      family: sink ? transportFamily(sink) : undefined,
      transport,
      ports,
      datapathType: bridge ? bridge.datapath_type || "system" : "system",
      kernelRelease: deps.kernelRelease(),
      outputPort: target.type === "ovsPort" ? target.port : undefined,
      outputVlan: target.type === "ovsVlan" ? target.vlan : undefined,
      sourceVlans: src.vlans,
    });
  }

  function scheduleExpiry(record: MirrorRecord): void {
    const id = mirrorId(record.spec);
    const old = expiryTimers.get(id);
    if (old) clearTimeout(old);
    const delay = Math.max(0, Date.parse(record.expiresAt) - now().getTime());
    if (delay > 2 ** 31 - 1) return; // the resync gets there first
    const t = setTimeout(() => {
      expiryTimers.delete(id);
      reconcile(record.spec, "expire").catch((err: unknown) =>
        log.warn({ err, mirror: id }, "expiry failed"),
      );
    }, delay);
    t.unref();
    expiryTimers.set(id, t);
  }

  async function applyMirror(
    stored: StoredMirror & { record: MirrorRecord & { spec: OvsSourceSpec } },
    ctx: { reason: JobReason; attempt: number },
  ): Promise<ReconcileOutcome> {
    const { record } = stored;
    const { namespace: ns, name } = record.spec;
    const id = mirrorId(record.spec);
    const gen = record.generation;
    const d: DesiredOvsMirror = { namespace: ns, name, generation: gen, spec: record.spec };
    desired.set(id, d);
    scheduleExpiry(record);
    let previous: MirrorStatus = stored.status;
    const newGeneration = previous.observedGeneration < gen;
    if (newGeneration && applyingSent.get(id) !== gen) {
      await publish("applying", record, eventId(ns, name, gen, "applying"), {
        reason: ctx.reason,
        attempt: Math.min(Math.max(1, ctx.attempt), 1_000_000),
        node,
      });
      previous = await writeStatus(
        ns,
        name,
        previous,
        buildStatus({
          phase: "Applying",
          record,
          observedGeneration: previous.observedGeneration,
          previous,
          now: now(),
          node,
        }),
      );
      applyingSent.set(id, gen);
    }

    const fail = async (e: StepError): Promise<ReconcileOutcome> => {
      const status = buildStatus({
        phase: "Failed",
        record,
        observedGeneration: gen,
        previous,
        reason: e.reason,
        message: e.message.slice(0, 4000),
        now: now(),
        node,
      });
      const before = last.get(id);
      if (
        newGeneration ||
        before?.phase !== "Failed" ||
        before.reason !== e.reason ||
        before.generation !== gen
      ) {
        await publish("failed", record, eventId(ns, name, gen, `failed-${e.code}`), {
          code: e.code,
          message: e.message.slice(0, 4000),
          retryable: e.retryable,
        });
      }
      last.set(id, {
        phase: "Failed",
        reason: e.retryable ? e.reason : `terminal:${e.reason}`,
        generation: gen,
      });
      await writeStatus(ns, name, previous, status);
      log.warn({ mirror: id, code: e.code, retryable: e.retryable, err: e.message }, "OVS mirror failed");
      return { type: "failed", status };
    };

    let tunnel: { tunnel: TunnelWant; sink: string } | undefined;
    let receiverReady: string | undefined;
    try {
      tunnel = await tunnelFor(d);
      const target = record.spec.target;
      const receiver = target.type === "gre" || target.type === "erspan" ? target.receiver : undefined;
      if (receiver && tunnel) {
        try {
          receiverReady = await ensureReceiver(d, receiver, tunnel);
        } catch (err) {
          // No link, no mirror: a mirror that holds no OVS rows yet gives its key back.
          if (!ownerIds(ovs).has(id)) await keys.releaseAll(id, tunnel.sink);
          throw err;
        }
      }
    } catch (err) {
      if (err instanceof StepError) return fail(err);
      throw err;
    }
    const issues = await runPreflight(d, tunnel?.sink);
    const blocking = issues.find((i) => i.blocking);
    const { plan, nextCfg } = await converge(d, tunnel?.tunnel, blocking !== undefined);
    if (plan.type === "failure") {
      if (tunnel && plan.code !== "BRIDGE_MIRROR_LIMIT") await keys.releaseAll(id, tunnel.sink);
      return fail(new StepError(plan.code, plan.reason, plan.message, plan.retryable));
    }
    tunnels.set(id, blocking || !plan.row ? undefined : tunnel?.tunnel);
    suppressed.set(id, blocking !== undefined);
    if (!plan.row && tunnel) await keys.releaseAll(id, tunnel.sink);
    const applied = nextCfg === undefined ? true : await ovs.waitApplied(nextCfg, config.vswitchdTimeoutMs);
    await dropRevalidatePorts(plan.revalidatePorts, undefined);
    if (nextCfg !== undefined) {
      log.info(
        { mirror: id, generation: gen, changes: plan.changes.map((c) => `${c.action} ${c.table} ${c.name}`) },
        "OVS mirror written",
      );
    }

    // What the mirror is now, worst first.
    const iface = plan.tunnelPort ? tunnelState(ovs, plan.tunnelPort) : undefined;
    let degraded: { reason: string; message: string } | undefined;
    if (blocking) degraded = { reason: blocking.reason, message: blocking.message };
    else if (plan.missingOutput)
      degraded = {
        reason: "PortNotFound",
        message: `output port ${plan.missingOutput} is not on bridge ${plan.bridge}; no mirror until it is`,
      };
    else if (!plan.row)
      degraded = {
        reason: "PortNotFound",
        message: `none of the source ports (${plan.missing.join(", ")}) is on bridge ${plan.bridge}; no mirror until one is`,
      };
    else if (!applied)
      degraded = {
        reason: "VswitchdNotSynced",
        message: `ovs-vswitchd has not applied the configuration within ${config.vswitchdTimeoutMs} ms (cur_cfg < ${nextCfg})`,
      };
    else if (iface?.error)
      degraded = { reason: "TunnelPortError", message: `tunnel port ${iface.name}: ${iface.error}` };
    else if (iface && iface.ofport === -1)
      degraded = {
        reason: "TunnelPortError",
        message: `ovs-vswitchd could not add tunnel port ${iface.name} (ofport -1)`,
      };
    else if (plan.missing.length)
      degraded = {
        reason: "PortNotFound",
        message: `source ports not on bridge ${plan.bridge}: ${plan.missing.join(", ")}; mirroring the others`,
      };
    else {
      const soft = issues.find((i) => !i.blocking);
      if (soft) degraded = { reason: soft.reason, message: soft.message };
    }
    const phase: MirrorPhase = degraded ? "Degraded" : "Active";
    const t = plan.row ? tunnel : undefined;
    const tunnelsOut: MirrorTunnel[] | undefined = t
      ? [{ type: t.tunnel.type, index: t.tunnel.key, direction: record.spec.direction }]
      : undefined;
    const conditions = buildConditions({ plan, applied, issues, generation: gen, previous, now: now() });
    if (receiverReady)
      conditions.push(condition("ReceiverReady", "True", gen, now(), previous, { message: receiverReady }));
    const status = buildStatus({
      phase,
      record,
      observedGeneration: gen,
      previous,
      reason: degraded?.reason,
      message: degraded?.message,
      ports: plan.attached,
      ...(t
        ? {
            sink: t.sink,
            tunnels: tunnelsOut,
            ...(t.tunnel.type === "gre" ? { key: t.tunnel.key } : { sessionId: t.tunnel.key }),
          }
        : {}),
      conditions,
      now: now(),
      node,
    });

    const committed = nextCfg !== undefined;
    // Once per generation: also when an earlier reconcile of it failed before writing.
    if (newGeneration || previous.phase === "Failed" || previous.phase === "Applying") {
      await publish("applied", record, eventId(ns, name, gen, "applied"), {
        rows: [plan.row, plan.tunnelPort].filter((r): r is string => r !== undefined),
        ...(t?.tunnel.type === "gre" ? { key: t.tunnel.key } : {}),
        ...(t?.tunnel.type === "erspan" ? { sessionId: t.tunnel.key } : {}),
        ...(t ? { sink: t.sink } : {}),
        node,
      });
    } else if (
      committed &&
      plan.changes.length > 0 &&
      (previous.phase === "Active" || previous.phase === "Degraded")
    ) {
      metrics?.drift.inc();
      await publish("drift_repaired", record, eventId(ns, name, gen, "drift_repaired", nextCfg), {
        repairs: plan.changes.map((c) => ({ table: c.table, name: c.name, action: c.action })),
      });
      log.info({ mirror: id, repairs: plan.changes.length }, "OVS mirror repaired");
    }
    const transitionId = (type: string) =>
      eventId(ns, name, gen, type, previous ? Date.parse(previous.updatedAt) : 0);
    if (phase === "Active" && (newGeneration || previous.phase !== "Active")) {
      await publish("active", record, transitionId("active"), { ports: plan.attached });
    } else if (
      phase === "Degraded" &&
      degraded &&
      (newGeneration || previous.phase !== "Degraded" || previous.reason !== degraded.reason)
    ) {
      await publish("degraded", record, transitionId("degraded"), {
        reason: degraded.reason,
        message: degraded.message.slice(0, 4000),
        ...(plan.missing.length ? { ports: plan.missing } : {}),
      });
    }
    await writeStatus(ns, name, previous, status);
    last.set(id, { phase, reason: degraded?.reason, generation: gen });
    return { type: phase === "Active" ? "active" : "degraded", status };
  }

  async function deleteMirror(stored: StoredMirror): Promise<ReconcileOutcome> {
    const { record } = stored;
    const { namespace: ns, name } = record.spec;
    const id = mirrorId(record.spec);
    const expired = stored.deleteReason === "expired";
    if (expired) {
      await publish("expired", record, eventId(ns, name, record.generation, "expired"), {
        expiresAt: record.expiresAt,
      });
    }
    const removed = await removeOwned(id);
    await removeReceiver(record);
    forget(id);
    await publish("deleted", record, eventId(ns, name, record.generation, "deleted"), {
      reason: expired ? "expired" : "request",
    });
    await writeStatus(
      ns,
      name,
      stored.status,
      buildStatus({
        phase: expired ? "Expired" : "Deleted",
        record,
        observedGeneration: record.generation,
        previous: stored.status,
        now: now(),
        node,
      }),
    );
    const purged = await store.purge(ns, name, record.generation);
    if (purged.type === "generation_mismatch")
      throw new Error(`mirror ${id} changed while it was being deleted; retrying`);
    log.info({ mirror: id, generation: record.generation, removed: removed.length }, "OVS mirror deleted");
    return { type: expired ? "expired" : "deleted", removed };
  }

  function forget(id: string): void {
    desired.delete(id);
    tunnels.delete(id);
    suppressed.delete(id);
    last.delete(id);
    applyingSent.delete(id);
    const t = expiryTimers.get(id);
    if (t) clearTimeout(t);
    expiryTimers.delete(id);
  }

  async function reconcileNow(
    ref: MirrorKey,
    ctx: { reason: JobReason; attempt: number },
  ): Promise<ReconcileOutcome> {
    const id = mirrorId(ref);
    const started = Date.now();
    let outcome = "error";
    try {
      let stored = await store.getMirror(ref.namespace, ref.name);
      if (stored && !stored.deleting && Date.parse(stored.record.expiresAt) <= now().getTime()) {
        const r = await store.applyExpire(ref.namespace, ref.name, now());
        if (r.type === "expired") {
          log.info({ mirror: id, expiresAt: r.record.expiresAt }, "mirror expired");
          await publish(
            "expired",
            r.record,
            eventId(ref.namespace, ref.name, r.record.generation, "expired"),
            {
              expiresAt: r.record.expiresAt,
            },
          );
        }
        stored = await store.getMirror(ref.namespace, ref.name);
      }
      let result: ReconcileOutcome;
      if (!stored) {
        const removed = await removeOwned(id);
        forget(id);
        result = { type: "absent", removed };
      } else if (!isOvsSpec(stored.record) || stored.record.spec.sources.node !== node) {
        // Not this agent's (an OVN mirror, or an OVS mirror of another node): nothing of it stays here.
        const removed = await removeOwned(id);
        forget(id);
        result = { type: "foreign", removed };
      } else if (stored.deleting) {
        result = await deleteMirror(stored);
      } else {
        result = await applyMirror(
          stored as StoredMirror & { record: MirrorRecord & { spec: OvsSourceSpec } },
          ctx,
        );
      }
      outcome = result.type;
      return result;
    } finally {
      metrics?.reconciles.inc({ outcome });
      metrics?.latency.observe({ outcome }, (Date.now() - started) / 1000);
    }
  }

  function reconcile(ref: MirrorKey, reason: JobReason = "resync", attempt = 1): Promise<ReconcileOutcome> {
    return serial(mirrorId(ref), () => reconcileNow(ref, { reason, attempt }));
  }

  // ---------------------------------------------------------------------------------------
  // Worker

  async function processJob(job: Job<NodeApplyJob>): Promise<string> {
    const parsed = NodeApplyJob.safeParse(job.data);
    if (!parsed.success)
      throw new UnrecoverableError(`invalid ${queueName} job ${job.id}: ${parsed.error.message}`);
    const data = parsed.data;
    if (data.node !== node) {
      throw new UnrecoverableError(`job ${job.id} is for node ${data.node}, this is ${node}'s queue`);
    }
    const r = await reconcile(data, data.reason, job.attemptsMade + 1);
    if (r.type === "failed" && r.status.reason && last.get(mirrorId(data))?.reason?.startsWith("terminal:")) {
      throw new UnrecoverableError(r.status.message ?? r.status.reason);
    }
    return r.type;
  }

  const worker = new Worker<NodeApplyJob, string>(queueName, processJob, {
    connection: deps.workerRedis,
    concurrency: config.concurrency,
    // A job held by an agent that died (kill -9) comes back once its lock lapses.
    lockDuration: config.jobLockMs,
    stalledInterval: Math.max(1_000, Math.round(config.jobLockMs / 3)),
    autorun: false,
    ...(config.bullmqPrefix !== undefined ? { prefix: config.bullmqPrefix } : {}),
  });
  worker.on("failed", (job, err) =>
    log.warn({ jobId: job?.id, attempts: job?.attemptsMade, err: err.message }, `${queueName} job failed`),
  );
  worker.on("error", (err) => log.error({ err }, `${queueName} worker error`));

  // ---------------------------------------------------------------------------------------
  // Drift and resync

  /** Whether the mirror's rows differ from its desired state (no Redis, no transaction). */
  function needsWork(id: string): boolean {
    const d = desired.get(id);
    if (!d) return false;
    const l = last.get(id);
    if (l?.phase === "Failed" && l.generation === d.generation && l.reason?.startsWith("terminal:"))
      return false;
    if (
      l &&
      (l.phase === "Failed" || l.phase === "Degraded") &&
      l.reason &&
      TRANSIENT_REASONS.has(l.reason)
    ) {
      return true;
    }
    const plan = planOvsMirror(ovs, d, {
      tunnel: tunnels.get(id),
      suppress: suppressed.get(id) ?? false,
      node,
      hasSnaplen,
    });
    return plan.type === "failure" || plan.ops.length > 0;
  }

  let driftRunning: Promise<void> | undefined;
  let driftAgain = false;
  async function checkDrift(): Promise<void> {
    if (driftRunning) {
      driftAgain = true;
      return driftRunning;
    }
    driftRunning = (async () => {
      do {
        driftAgain = false;
        for (const id of [...desired.keys()]) {
          if (!needsWork(id) || chains.has(id)) continue;
          const ref = parseMirrorId(id);
          if (ref)
            await reconcile(ref, "drift").catch((err: unknown) =>
              log.warn({ err, mirror: id }, "repair failed"),
            );
        }
        const leftovers = leftoverRevalidatePorts(ovs, node).filter((n) => !revalidating.has(n));
        if (leftovers.length) await dropRevalidatePorts(leftovers, undefined);
        // Rows of mirrors this agent no longer knows (a restart, a purge elsewhere) go too.
        for (const id of ownerIds(ovs)) {
          if (desired.has(id) || chains.has(id) || !resynced) continue;
          const ref = parseMirrorId(id);
          if (ref)
            await reconcile(ref, "resync").catch((err: unknown) =>
              log.warn({ err, mirror: id }, "orphan removal failed"),
            );
        }
      } while (driftAgain);
    })().finally(() => (driftRunning = undefined));
    return driftRunning;
  }

  let driftTimer: NodeJS.Timeout | undefined;
  const onOvsChange = (table: string) => {
    if (!["Mirror", "Port", "Interface", "Bridge"].includes(table) || driftTimer) return;
    driftTimer = setTimeout(() => {
      driftTimer = undefined;
      void checkDrift();
    }, 100);
    driftTimer.unref();
  };

  let resynced = false;
  async function resync(): Promise<void> {
    const mirrors = await store.listMirrors();
    const mine = new Set<string>();
    for (const s of mirrors) {
      if (!isOvsSpec(s.record) || s.record.spec.sources.node !== node) continue;
      const id = mirrorId(s.record.spec);
      mine.add(id);
      const l = last.get(id);
      // Settled: this process applied this generation and it is Active, or failed for good.
      // Anything else (Degraded by a preflight issue the node may have fixed since, written by
      // another process, pending, expiring) is reconciled again.
      const settled =
        !s.deleting &&
        Date.parse(s.record.expiresAt) > now().getTime() &&
        s.status.observedGeneration >= s.record.generation &&
        l?.generation === s.record.generation &&
        l.phase === s.status.phase &&
        (l.phase === "Active" || (l.phase === "Failed" && l.reason?.startsWith("terminal:") === true));
      desired.set(id, {
        namespace: s.record.spec.namespace,
        name: s.record.spec.name,
        generation: s.record.generation,
        spec: s.record.spec,
      });
      // Level-based: anything not known settled here is reconciled (a plan with no change costs
      // a store read and the preflight).
      if (!settled)
        await reconcile(s.record.spec, "resync").catch((err: unknown) =>
          log.warn({ err, mirror: id }, "resync reconcile failed"),
        );
    }
    for (const id of [...desired.keys()]) if (!mine.has(id)) forget(id);
    resynced = true;
    await checkDrift();
  }

  const loops = createLoops(log);
  const every = loops.every;

  let started = false;
  return {
    queueName,
    running: () => started && worker.isRunning(),
    ownedCount: () => ownerIds(ovs).size,
    reconcile: (ref, reason = "resync") => reconcile(ref, reason),
    resync,
    checkDrift,
    async start() {
      if (started) return;
      started = true;
      ovs.on("change", onOvsChange);
      ovs.on("resync", () => onOvsChange("Mirror"));
      void worker.run().catch((err: unknown) => log.error({ err }, `${queueName} worker stopped`));
      await worker.waitUntilReady();
      every("resync", config.resyncIntervalMs, resync);
      every("drift", config.reconcileIntervalMs, checkDrift);
      log.info({ queue: queueName, concurrency: config.concurrency }, "OVS mirror worker started");
    },
    async stop() {
      if (!started) return;
      started = false;
      loops.stop();
      if (driftTimer) clearTimeout(driftTimer);
      ovs.off("change", onOvsChange);
      for (const t of expiryTimers.values()) clearTimeout(t);
      expiryTimers.clear();
      await worker.close();
      await driftRunning;
      await Promise.allSettled([...chains.values()]);
    },
  };
}

// -----------------------------------------------------------------------------------------
// Status

interface StatusInput {
  phase: MirrorPhase;
  record: MirrorRecord;
  observedGeneration: number;
  previous?: MirrorStatus | undefined;
  reason?: string | undefined;
  message?: string | undefined;
  ports?: readonly string[];
  key?: number;
  sessionId?: number;
  sink?: string;
  tunnels?: MirrorTunnel[] | undefined;
  conditions?: MirrorCondition[];
  node: string;
  now: Date;
}

export function buildStatus(input: StatusInput): MirrorStatus {
  const { record, previous } = input;
  const base = {
    generation: record.generation,
    observedGeneration: input.observedGeneration,
    ports: input.ports ? [...input.ports] : input.phase === "Applying" ? [...(previous?.ports ?? [])] : [],
    nodes: [input.node],
    expiresAt: record.expiresAt,
    updatedAt: input.now.toISOString(),
    ...(input.key !== undefined ? { key: input.key } : {}),
    ...(input.sessionId !== undefined ? { sessionId: input.sessionId } : {}),
    ...(input.sink !== undefined ? { sink: input.sink } : {}),
    ...(input.tunnels?.length ? { tunnels: input.tunnels } : {}),
    ...(input.conditions?.length ? { conditions: input.conditions } : {}),
  };
  if (input.phase === "Degraded" || input.phase === "Failed") {
    return {
      ...base,
      phase: input.phase,
      reason: input.reason ?? "Unknown",
      message: input.message ?? "no detail",
    };
  }
  return {
    ...base,
    phase: input.phase,
    ...(input.reason ? { reason: input.reason } : {}),
    ...(input.message ? { message: input.message } : {}),
  };
}

function sameStatus(a: MirrorStatus, b: MirrorStatus): boolean {
  const strip = (s: MirrorStatus) => ({ ...s, updatedAt: "" });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

function condition(
  type: string,
  status: MirrorCondition["status"],
  generation: number,
  now: Date,
  previous: MirrorStatus | undefined,
  extra: { reason?: string | undefined; message?: string | undefined } = {},
): MirrorCondition {
  const before = previous?.conditions?.find((c) => c.type === type);
  return {
    type,
    status,
    ...(extra.reason ? { reason: extra.reason } : {}),
    ...(extra.message ? { message: extra.message.slice(0, 4000) } : {}),
    lastTransitionTime: before && before.status === status ? before.lastTransitionTime : now.toISOString(),
    observedGeneration: generation,
  };
}

/** PortsAttached, Preflight, VswitchdApplied: what each part of the reconcile found. */
function buildConditions(input: {
  plan: Plan;
  applied: boolean;
  issues: readonly PreflightIssue[];
  generation: number;
  previous: MirrorStatus | undefined;
  now: Date;
}): MirrorCondition[] {
  const { plan, generation, previous, now } = input;
  const missing = [...plan.missing, ...(plan.missingOutput ? [plan.missingOutput] : [])];
  const first = input.issues[0];
  return [
    condition("PortsAttached", missing.length === 0 ? "True" : "False", generation, now, previous, {
      ...(missing.length
        ? { reason: "PortNotFound", message: `missing on ${plan.bridge}: ${missing.join(", ")}` }
        : {}),
    }),
    condition("Preflight", first ? "False" : "True", generation, now, previous, {
      ...(first ? { reason: first.reason, message: input.issues.map((i) => i.message).join("; ") } : {}),
    }),
    condition("VswitchdApplied", input.applied ? "True" : "False", generation, now, previous, {
      ...(input.applied ? {} : { reason: "VswitchdNotSynced" }),
    }),
    ...(plan.snaplenDeferred
      ? [
          condition("SnaplenInOvs", "False", generation, now, previous, {
            reason: "SnaplenAtReceiver",
            message:
              "the userspace (netdev) datapath would truncate the encapsulated packet, not the mirrored frame, and send malformed tunnel packets: frames go whole and the receiver cuts them to snaplen",
          }),
        ]
      : []),
  ];
}
