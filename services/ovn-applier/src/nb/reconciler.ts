/**
 * The NB reconcile core: desired mirror + monitored NB state → one transaction → chassis.
 *
 *   const state = await NbState.start(client, { logger });
 *   const nb = await NbReconciler.create({ state, logger, collectorSink: "192.0.2.9" });
 *   const r = await nb.converge(desired, { hvTimeoutMs: 10_000, onApplied: (a) => publish(a) });
 *   // r.phase === "Active": rows written, ports attached, hv_cfg ≥ the nb_cfg we set
 *   await nb.remove({ namespace: "shop", name: "web" });
 *
 * Each call plans against the monitor cache and commits everything in ONE transaction. Key
 * allocation is optimistic: the transaction carries `wait` guards asserting the rows
 * towards the sink are what the plan saw; when another writer got there first the
 * transaction fails with "timed out" and nothing of it is applied, and we re-plan on the
 * fresher cache. Calls for one mirror are serialized within the process (across replicas
 * the worker holds a per-mirror lock).
 */
import {
  ConstraintViolationError,
  OvsdbError,
  TimedOutError,
  TransactionError,
  type NbCapabilities,
} from "@ovntap/ovsdb";
import type { Logger } from "@ovntap/runtime";
import type { MirrorTunnel } from "@ovntap/contracts";
import { ReconcileError } from "./errors.js";
import { mirrorId, ownerOf, type MirrorKey, type RowPart } from "./names.js";
import { planOperations } from "./ops.js";
import {
  ownedRows,
  planMirror,
  resolveSpec,
  type Change,
  type DesiredMirror,
  type KubeView,
  type Plan,
  type PlanOptions,
  type Resolution,
} from "./plan.js";
import { NB, type NbState } from "./state.js";

export interface NbReconcilerOptions {
  state: NbState;
  logger: Logger;
  /** Transport address of the capture exporter, for `collector` targets. */
  collectorSink?: string | undefined;
  /** Attempts of one reconcile when concurrent writers keep winning the key race. Default 25. */
  maxAttempts?: number;
  /** Timeout of one transact request. Default 15 s. */
  transactTimeoutMs?: number;
  /** Default for converge(): how long to wait for hv_cfg. Default 30 s. */
  hvTimeoutMs?: number;
  /**
   * Keys towards a (canonical) sink held outside NB, e.g. node agents' tunnel ports, by key with
   * who holds them; read before each plan, avoided like NB rows' keys (planMirror `reserved`).
   */
  reservedKeys?: (sink: string, id: string) => Promise<ReadonlyMap<number, string>>;
  /** Pods and sink pods from Kubernetes, for selector sources and pod sinks (absent: they are UNSUPPORTED). */
  kubernetes?: KubeView | undefined;
}

export interface AppliedRow {
  readonly name: string;
  readonly uuid: string;
  readonly part: RowPart | undefined;
  readonly filter: string;
  readonly type: string;
  readonly sink: string;
  readonly index: number;
}

export interface ApplyResult {
  readonly id: string;
  readonly generation: number;
  /** applied: a transaction committed; unchanged: NB already matched; foreign: not an NB mirror. */
  readonly outcome: "applied" | "unchanged" | "foreign";
  /**
   * nb_cfg to wait for: the value our transaction set; when unchanged, the value set by the
   * transaction that last wrote this mirror from this process while nothing has touched its
   * rows or attachments since, else the current one.
   */
  readonly nbCfg: number | undefined;
  /** When the transaction that set `nbCfg` committed (epoch ms), if this process knows. */
  readonly committedAt?: number | undefined;
  readonly rows: readonly AppliedRow[];
  /** GRE key of the first row (gre, collector). */
  readonly key: number | undefined;
  /** ERSPAN session id of the first row. */
  readonly sessionId: number | undefined;
  readonly sink: string | undefined;
  /** Every row's tunnel towards `sink` (both rows of an emulated `both`). */
  readonly tunnels: readonly MirrorTunnel[];
  /** Desired ports present in NB (all attached after the commit). */
  readonly ports: readonly string[];
  readonly missingPorts: readonly string[];
  readonly changes: readonly Change[];
  /** Changes made while NB should already have matched this generation. */
  readonly drift: boolean;
  readonly keysAllocated: number;
  readonly attempts: number;
  /** From the call to the commit. */
  readonly appliedMs: number;
}

export interface ConvergeResult extends ApplyResult {
  /**
   * undefined for foreign mirrors (not this service's to report). "Applying": committed, and
   * the chassis has not caught up within `inlineWaitMs`, but its deadline (`chassisDeadline`)
   * has not passed yet either.
   */
  readonly phase: "Active" | "Degraded" | "Applying" | undefined;
  readonly reason?: string;
  readonly message?: string;
  readonly hvCfg?: number | undefined;
  /** From the call to hv_cfg ≥ nbCfg. */
  readonly activeMs?: number;
  /** Phase "Applying": when the chassis wait runs out (epoch ms) and the mirror is Degraded. */
  readonly chassisDeadline?: number;
}

export interface RemoveResult {
  readonly id: string;
  readonly removed: readonly string[];
  readonly changes: readonly Change[];
  readonly nbCfg: number | undefined;
  readonly attempts: number;
}

export interface ApplyOptions {
  /** Generation NB was last brought to (status.observedGeneration); decides what counts as drift. */
  observedGeneration?: number;
  signal?: AbortSignal;
}

export interface ConvergeOptions extends ApplyOptions {
  /** How long after the commit the chassis may take before the mirror is Degraded. */
  hvTimeoutMs?: number;
  /**
   * How long this call waits for the chassis (default: until the deadline). Shorter, and the
   * call returns phase "Applying" with `chassisDeadline` when the chassis is not there yet: the
   * caller follows up when hv_cfg reaches nbCfg (NbWatcher.awaitChassis) instead of holding a
   * worker for the whole wait.
   */
  inlineWaitMs?: number;
  /** Called after the commit, before the chassis wait (the `applied` event). */
  onApplied?: (r: ApplyResult) => unknown;
}

interface Known {
  readonly desired: DesiredMirror;
  readonly ports: ReadonlySet<string>;
}

const sleepOr = (state: NbState, ms: number) => state.nextMirrorChange(ms);

export class NbReconciler {
  private caps: NbCapabilities;
  private readonly known = new Map<string, Known>();
  private readonly appliedGeneration = new Map<string, number>();
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Per canonical sink: the tail of this process's commits that allocate keys there. */
  private readonly sinkLocks = new Map<string, Promise<void>>();
  /**
   * The last commit this process made for each mirror, forgotten as soon as any monitor event
   * touches the mirror's rows or attachments (ovsdb-server sends our own transaction's update
   * before its reply, so those events land before the entry is written). While it stands, NB
   * holds exactly what that transaction left, and hv_cfg ≥ its nb_cfg means the chassis have it.
   */
  private readonly commits = new Map<string, { generation: number; nbCfg: number; at: number }>();
  /** What each mirror last resolved to: the ports and sink a selector or a sink pod gave it. */
  private readonly lastResolved = new Map<string, { ports: ReadonlySet<string>; sink: string }>();
  private readonly log: Logger;
  private readonly maxAttempts: number;
  private readonly transactTimeoutMs: number;
  readonly hvTimeoutMs: number;
  /** Counters for metrics. */
  readonly counters = { keysAllocated: 0, keyConflicts: 0 };

  private constructor(
    readonly state: NbState,
    private readonly options: NbReconcilerOptions,
    caps: NbCapabilities,
  ) {
    this.caps = caps;
    this.log = options.logger.child({ component: "nb-reconciler" });
    this.maxAttempts = options.maxAttempts ?? 25;
    this.transactTimeoutMs = options.transactTimeoutMs ?? 15_000;
    this.hvTimeoutMs = options.hvTimeoutMs ?? 30_000;
  }

  static async create(options: NbReconcilerOptions): Promise<NbReconciler> {
    const r = new NbReconciler(options.state, options, await options.state.capabilities());
    options.state.on("mirror", (ev) => {
      for (const row of ev.type === "update"
        ? [ev.old, ev.new]
        : ev.type === "insert"
          ? [ev.new]
          : [ev.old]) {
        const owner = ownerOf(row);
        if (owner) r.commits.delete(owner);
      }
    });
    options.state.on("port", (ev) => {
      const before = new Set(ev.type === "insert" ? [] : ev.old.mirror_rules);
      const after = new Set(ev.type === "delete" ? [] : ev.new.mirror_rules);
      for (const u of [...before, ...after]) {
        if (before.has(u) && after.has(u)) continue;
        const row = options.state.mirror(u);
        const owner = row && ownerOf(row);
        if (owner) r.commits.delete(owner);
      }
    });
    // The schema is re-read on every reconnect (an upgrade may add "both").
    options.state.client.on("connected", () => {
      options.state.capabilities().then(
        (c) => (r.caps = c),
        (err: unknown) => r.log.warn({ err }, "nb capabilities refresh failed"),
      );
    });
    return r;
  }

  get capabilities(): NbCapabilities {
    return this.caps;
  }

  planOptions(): PlanOptions {
    return {
      filters: this.caps.mirrorFilters,
      types: this.caps.mirrorTypes,
      collectorSink: this.options.collectorSink,
      kubernetes: this.options.kubernetes,
    };
  }

  /** Remembers a mirror's desired state so drift checks can judge it without applying. */
  remember(desired: DesiredMirror): void {
    const id = mirrorId(desired);
    // The same generation of a pods or ports mirror resolves to the same ports: the periodic
    // resync remembers every mirror again, and replacing each entry with a copy only made
    // long-lived garbage. A selector's ports follow the pods, so it is resolved again.
    const known = this.known.get(id);
    if (
      known?.desired.generation === desired.generation &&
      desired.spec.sources.type !== "selector" &&
      known.desired.spec.sources.type === desired.spec.sources.type
    )
      return;
    let ports: string[] = [];
    try {
      const r = resolveSpec(desired, this.planOptions());
      if (r.kind === "ovn") ports = [...r.ports];
    } catch {
      // Unsupported specs own no ports; their reconcile reports the error.
    }
    this.known.set(id, { desired, ports: new Set(ports) });
  }

  forget(id: string): void {
    this.known.delete(id);
    this.appliedGeneration.delete(id);
    this.commits.delete(id);
    this.lastResolved.delete(id);
  }

  /** The generation this process last committed for `id`, while NB still holds that commit. */
  committedGeneration(id: string): number | undefined {
    return this.commits.get(id)?.generation;
  }

  /** The desired state last applied or remembered for `id`. */
  desiredOf(id: string): DesiredMirror | undefined {
    return this.known.get(id)?.desired;
  }

  knownIds(): string[] {
    return [...this.known.keys()];
  }

  /** Mirrors (by id) that own at least one NB row. */
  ownedIds(): Set<string> {
    const out = new Set<string>();
    for (const r of this.state.mirrors()) {
      const o = ownerOf(r);
      if (o) out.add(o);
    }
    return out;
  }

  /** Known mirrors that want this logical switch port. */
  mirrorsWantingPort(port: string): string[] {
    const out: string[] = [];
    for (const [id, k] of this.known) if (k.ports.has(port)) out.push(id);
    return out;
  }

  /**
   * Whether reconciling `id` would change NB (or fail): the drift check. For a mirror not
   * known here, whether NB holds rows it owns (someone must look its record up).
   */
  needsReconcile(id: string): boolean {
    const k = this.known.get(id);
    const view = this.state.view();
    if (!k) return ownedRows(view, id).length > 0;
    try {
      const resolved = resolveSpec(k.desired, this.planOptions());
      return planMirror(id, k.desired.generation, resolved, view).changed;
    } catch (err) {
      // A terminal spec problem fails the same way every time: no point reconciling again.
      if (err instanceof ReconcileError && err.code === "UNSUPPORTED") return false;
      // Waiting on Kubernetes (caches not listed yet, a sink pod without an address): the
      // applier's Kubernetes follower triggers the reconcile when that ends.
      if (err instanceof ReconcileError && (err.code === "NOT_FOUND" || err.code === "UNAVAILABLE"))
        return false;
      return true;
    }
  }

  /** Serializes work on one mirror within this process. */
  private serialize<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(id, tail);
    void tail.then(() => {
      if (this.chains.get(id) === tail) this.chains.delete(id);
    });
    return next;
  }

  /** Brings NB to the desired mirror in one transaction; returns after the commit. */
  apply(desired: DesiredMirror, options: ApplyOptions = {}): Promise<ApplyResult> {
    const id = mirrorId(desired);
    return this.serialize(id, () => this.applyNow(id, desired, options));
  }

  /** apply(), then wait until the chassis caught up: Active, or Degraded with the reason. */
  converge(desired: DesiredMirror, options: ConvergeOptions = {}): Promise<ConvergeResult> {
    const id = mirrorId(desired);
    return this.serialize(id, async () => {
      const started = Date.now();
      const applied = await this.applyNow(id, desired, options);
      if (applied.outcome === "foreign") return { ...applied, phase: undefined };
      await options.onApplied?.(applied);
      if (applied.missingPorts.length > 0) {
        const attached = applied.ports.length ? ` (attached: ${applied.ports.join(", ")})` : "";
        return {
          ...applied,
          phase: "Degraded",
          reason: "PortNotFound",
          message: `logical switch ports not in OVN NB: ${applied.missingPorts.join(", ")}${attached}; they are attached when they appear`,
        };
      }
      if (applied.nbCfg === undefined) {
        return {
          ...applied,
          phase: "Degraded",
          reason: "ChassisSyncUnknown",
          message:
            "NB has no NB_Global row, so chassis progress (hv_cfg) cannot be followed; is ovn-northd running?",
        };
      }
      const timeoutMs = options.hvTimeoutMs ?? this.hvTimeoutMs;
      // The chassis has until `timeoutMs` after the commit that set nbCfg (not after this call:
      // a follow-up call for the same commit does not restart the clock).
      const since = applied.committedAt ?? Date.now();
      const deadline = since + timeoutMs;
      const remaining = Math.max(0, deadline - Date.now());
      const wait = await this.state.waitHvCfg(applied.nbCfg, {
        timeoutMs: Math.min(remaining, options.inlineWaitMs ?? remaining),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (wait.synced) {
        const activeMs = Date.now() - started;
        this.log.info({ mirror: id, nbCfg: applied.nbCfg, hvCfg: wait.hvCfg, activeMs }, "mirror active");
        return { ...applied, phase: "Active", hvCfg: wait.hvCfg, activeMs };
      }
      if (Date.now() < deadline && !options.signal?.aborted) {
        return {
          ...applied,
          phase: "Applying",
          reason: "WaitingForChassis",
          message: `NB_Global.hv_cfg ${wait.hvCfg ?? "unset"} has not reached nb_cfg ${applied.nbCfg} yet`,
          hvCfg: wait.hvCfg,
          chassisDeadline: deadline,
        };
      }
      const waitedMs = Date.now() - since;
      this.log.warn({ mirror: id, nbCfg: applied.nbCfg, hvCfg: wait.hvCfg, timeoutMs }, "chassis not synced");
      return {
        ...applied,
        phase: "Degraded",
        reason: "ChassisNotSynced",
        message: `NB_Global.hv_cfg ${wait.hvCfg ?? "unset"} has not reached nb_cfg ${applied.nbCfg} after ${waitedMs} ms: some chassis has not applied the change yet (is ovn-controller running and connected on every node?)`,
        hvCfg: wait.hvCfg,
      };
    });
  }

  /** Removes exactly the rows `ref` owns, and their uuids from every port's mirror_rules. */
  remove(ref: MirrorKey | string): Promise<RemoveResult> {
    const id = typeof ref === "string" ? ref : mirrorId(ref);
    return this.serialize(id, async () => {
      const { plan, committed, attempts } = await this.commit(id, () =>
        planMirror(id, 0, undefined, this.state.view()),
      );
      this.forget(id);
      if (plan.changed) {
        this.log.info({ mirror: id, removed: plan.deletes.map((r) => r.name), attempts }, "mirror removed");
      }
      return {
        id,
        removed: plan.deletes.map((r) => r.name),
        changes: plan.changes,
        nbCfg: committed?.nbCfg ?? this.state.global()?.nb_cfg,
        attempts,
      };
    });
  }

  private async applyNow(id: string, desired: DesiredMirror, options: ApplyOptions): Promise<ApplyResult> {
    const started = Date.now();
    this.remember(desired);
    const observed = options.observedGeneration ?? this.appliedGeneration.get(id);
    let resolved: Resolution | undefined;
    const { plan, committed, attempts } = await this.commit(id, async () => {
      // Re-resolved per attempt: capabilities may change with a reconnect.
      const r = resolveSpec(desired, this.planOptions());
      resolved = r;
      const reserved =
        r.kind === "ovn" && this.options.reservedKeys
          ? await this.options.reservedKeys(r.sink, id)
          : undefined;
      return planMirror(id, desired.generation, r, this.state.view(), reserved);
    });
    const appliedMs = Date.now() - started;
    const foreign = resolved?.kind === "foreign";
    const ovn = resolved?.kind === "ovn" ? resolved : undefined;
    // Within one generation a selector's pods and a sink pod's address still change: what
    // follows them is the mirror following Kubernetes, not drift. Anything else still is.
    const before = this.lastResolved.get(id);
    const follows = (c: Change): boolean => {
      if (!ovn) return false;
      if (c.table === "Logical_Switch_Port" && desired.spec.sources.type === "selector") {
        return !before || before.ports.has(c.name) !== ovn.ports.includes(c.name);
      }
      if (c.table === "Mirror" && c.action === "updated" && hasSinkPod(desired)) {
        return !before || before.sink !== ovn.sink;
      }
      return false;
    };
    const drift = plan.changed && observed === desired.generation && plan.changes.some((c) => !follows(c));
    if (ovn) this.lastResolved.set(id, { ports: new Set(ovn.ports), sink: ovn.sink });
    const rows: AppliedRow[] = plan.rows.map((r) => ({
      name: r.name,
      uuid: r.uuid ?? committed?.inserted.get(r.name) ?? "",
      part: r.part,
      filter: r.filter,
      type: r.type,
      sink: r.sink,
      index: r.index,
    }));
    const first = rows[0];
    this.appliedGeneration.set(id, desired.generation);
    if (committed?.nbCfg !== undefined) {
      this.commits.set(id, { generation: desired.generation, nbCfg: committed.nbCfg, at: Date.now() });
    }
    const memo = committed ? undefined : this.commits.get(id);
    this.counters.keysAllocated += plan.keysAllocated;
    const result: ApplyResult = {
      id,
      generation: desired.generation,
      outcome: foreign ? "foreign" : plan.changed ? "applied" : "unchanged",
      nbCfg: committed?.nbCfg ?? memo?.nbCfg ?? this.state.global()?.nb_cfg,
      committedAt: committed ? Date.now() : memo?.at,
      rows,
      key: first && first.type !== "erspan" ? first.index : undefined,
      sessionId: first?.type === "erspan" ? first.index : undefined,
      sink: plan.sink,
      tunnels: rows.flatMap((r) => tunnelOf(r)),
      ports: plan.ports,
      missingPorts: plan.missingPorts,
      changes: plan.changes,
      drift,
      keysAllocated: plan.keysAllocated,
      attempts,
      appliedMs,
    };
    if (plan.changed) {
      this.log.info(
        {
          mirror: id,
          generation: desired.generation,
          rows: rows.map((r) => `${r.name}=${r.index}`),
          changes: plan.changes.length,
          drift,
          missingPorts: plan.missingPorts,
          nbCfg: result.nbCfg,
          attempts,
          appliedMs,
        },
        drift ? "mirror drift repaired" : "mirror applied",
      );
    }
    return result;
  }

  /**
   * Plans and commits, re-planning when a concurrent writer invalidated the plan (a key
   * guard's wait failed, or an insert lost a unique-name race). Nothing is written when
   * the plan is empty.
   */
  private async commit(
    id: string,
    makePlan: () => Plan | Promise<Plan>,
  ): Promise<{
    plan: Plan;
    committed: { nbCfg: number | undefined; inserted: Map<string, string> } | undefined;
    attempts: number;
  }> {
    for (let attempt = 1; ; attempt++) {
      if (!this.state.ready) {
        throw new ReconcileError(
          "UNAVAILABLE",
          "OVN NB is not connected (or its monitor is resyncing); retry",
        );
      }
      let plan = await makePlan();
      if (!plan.changed) return { plan, committed: undefined, attempts: attempt };
      // A plan that takes a new key towards a sink waits for this process's other commits
      // towards that sink and re-plans on the cache they left (ovsdb-server sends a
      // transaction's update before its reply): concurrent reconciles in one replica would
      // otherwise all pick the same lowest free key and invalidate each other's guards. The
      // guards still settle races with other replicas and other writers.
      const release =
        plan.guards.length > 0 && plan.sink !== undefined ? await this.lockSink(plan.sink) : undefined;
      try {
        if (release) {
          plan = await makePlan();
          if (!plan.changed) return { plan, committed: undefined, attempts: attempt };
        }
        const committed = await this.transactPlan(plan);
        return { plan, committed, attempts: attempt };
      } catch (err) {
        if (!(err instanceof KeyConflict)) throw err;
        this.counters.keyConflicts++;
        if (attempt >= this.maxAttempts) {
          throw new ReconcileError(
            "UNAVAILABLE",
            `gave up after ${attempt} attempts: concurrent writers kept changing the Mirror rows towards ${plan.sink ?? "the sink"}`,
            { cause: err.cause },
          );
        }
        this.log.debug(
          { mirror: id, attempt, err: (err.cause as Error).message },
          "nb write conflict, re-planning",
        );
      } finally {
        release?.();
      }
      // The other writer's update is on its way to our monitor; wait for it (or a
      // short jittered delay) rather than re-planning on the same stale cache.
      await sleepOr(this.state, Math.round(Math.min(200, 5 * 2 ** attempt) * (0.5 + Math.random())));
    }
  }

  /** Serializes commits towards one sink within this process; resolves with the release. */
  private async lockSink(sink: string): Promise<() => void> {
    const prev = this.sinkLocks.get(sink) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.sinkLocks.set(sink, tail);
    await prev;
    return () => {
      release();
      if (this.sinkLocks.get(sink) === tail) this.sinkLocks.delete(sink);
    };
  }

  /** One transaction for `plan`; a lost key race is thrown as KeyConflict. */
  private async transactPlan(
    plan: Plan,
  ): Promise<{ nbCfg: number | undefined; inserted: Map<string, string> }> {
    const tx = planOperations(plan);
    try {
      const results = await this.state.client.transact(NB, tx.ops, { timeoutMs: this.transactTimeoutMs });
      const inserted = new Map<string, string>();
      for (const [name, i] of tx.inserts) {
        const r = results[i] as { uuid?: string } | undefined;
        if (r?.uuid) inserted.set(name, r.uuid);
      }
      const sel =
        tx.select !== undefined ? (results[tx.select] as { rows?: { nb_cfg?: number }[] }) : undefined;
      return { nbCfg: sel?.rows?.[0]?.nb_cfg, inserted };
    } catch (err) {
      const conflict =
        err instanceof TransactionError &&
        ((err.cause instanceof TimedOutError && err.index < tx.guards) ||
          (err.commitFailed && err.cause instanceof ConstraintViolationError));
      throw conflict ? new KeyConflict(err) : toReconcileError(err);
    }
  }
}

/** Whether the mirror's sink is a pod (resolved through ips.kubeovn.io). */
function hasSinkPod(desired: DesiredMirror): boolean {
  const t = desired.spec.target;
  return (t.type === "gre" || t.type === "erspan") && typeof t.sink !== "string";
}

/** A guard failed or an insert lost a unique-name race: re-plan. */
class KeyConflict extends Error {
  override name = "KeyConflict";
  constructor(cause: unknown) {
    super("a concurrent writer changed the Mirror rows towards the sink", { cause });
  }
}

/** Anything from the OVSDB layer as a ReconcileError (connection trouble is retryable). */
export function toReconcileError(err: unknown): unknown {
  if (err instanceof ReconcileError || !(err instanceof OvsdbError)) return err;
  if (err instanceof TransactionError) {
    return new ReconcileError("INTERNAL", `OVN NB refused the transaction: ${err.message}`, {
      cause: err,
      retryable: err.retryable,
    });
  }
  return new ReconcileError("UNAVAILABLE", `OVN NB: ${err.message}`, { cause: err, retryable: true });
}

const DIRECTION_OF_FILTER: Readonly<Record<string, MirrorTunnel["direction"]>> = {
  "from-lport": "egress",
  "to-lport": "ingress",
  both: "both",
};

/** The tunnel a GRE or ERSPAN row sends through; none for other row types. */
function tunnelOf(row: AppliedRow): MirrorTunnel[] {
  const direction = DIRECTION_OF_FILTER[row.filter];
  if ((row.type !== "gre" && row.type !== "erspan") || direction === undefined) return [];
  return [{ type: row.type, index: row.index, direction }];
}
