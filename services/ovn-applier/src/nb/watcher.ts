/**
 * Turns NB changes into "reconcile this mirror" triggers, so drift is repaired within
 * milliseconds of an out-of-band `ovn-nbctl mirror-del`, an edit of an owned row, a detach,
 * or a port appearing — not only at the next periodic sweep.
 *
 *   const watcher = new NbWatcher(state, reconciler, { logger });
 *   watcher.on("trigger", (id, reason) => enqueue(id, reason));
 *   watcher.start();
 *
 * Candidates are collected from change events and checked after a short debounce against the
 * planner (`needsReconcile`): our own transactions also produce change events, but by the time
 * the check runs the cache holds the whole transaction, the plan is empty, and nothing fires.
 * A periodic check over every known mirror catches anything an event could not attribute.
 */
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import type { RowEvent } from "@ovntap/ovsdb";
import type { Logger } from "@ovntap/runtime";
import { canonicalSink } from "./keys.js";
import { ownerOf } from "./names.js";
import type { GlobalRow, MirrorRow, PortRow } from "./plan.js";
import type { NbReconciler } from "./reconciler.js";
import type { NbState } from "./state.js";

/** drift: an owned row or attachment changed; port: a wanted port appeared or went; chassis: hv_cfg caught up; resync: periodic check. */
export type TriggerReason = "drift" | "port" | "chassis" | "resync";

export interface NbWatcherOptions {
  logger: Logger;
  /** Events are gathered for this long before checking. Default 25 ms. */
  debounceMs?: number;
  /** Period of the check over every known mirror. Default 5 s; 0 disables it. */
  checkIntervalMs?: number;
}

export class NbWatcher extends EventEmitter<{ trigger: [id: string, reason: TriggerReason] }> {
  private readonly pending = new Map<string, TriggerReason>();
  /** Mirrors waiting for hv_cfg to reach a value (Applying, or Degraded: ChassisNotSynced). */
  private readonly chassisWaits = new Map<string, { target: number; timer: NodeJS.Timeout | undefined }>();
  private timer: NodeJS.Timeout | undefined;
  private interval: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly debounceMs: number;
  private readonly checkIntervalMs: number;
  private started = false;

  private readonly onMirror = (ev: RowEvent<MirrorRow>) => {
    const rows = ev.type === "update" ? [ev.old, ev.new] : ev.type === "insert" ? [ev.new] : [ev.old];
    for (const r of rows) {
      const o = ownerOf(r);
      if (o) this.candidate(o, "drift");
      // A row (ours or not) now using a key towards a sink may collide with one of ours: only
      // rows holding that same key towards that sink can be affected. (Keys are sticky — a row
      // keeps the key recorded in its external_ids — so a key freed elsewhere changes no plan.)
      // Checking every mirror of the sink instead made each insert re-plan all of them.
      const s = canonicalSink(r.sink);
      if (s === undefined) continue;
      for (const other of this.state.mirrorsTowards(s)) {
        const owner = other.index === r.index ? ownerOf(other) : undefined;
        if (owner) this.candidate(owner, "drift");
      }
    }
  };

  private readonly onPort = (ev: RowEvent<PortRow>) => {
    const before = ev.type === "insert" ? undefined : ev.old;
    const after = ev.type === "delete" ? undefined : ev.new;
    if (before?.name !== after?.name) {
      for (const name of [before?.name, after?.name]) {
        if (name === undefined) continue;
        for (const id of this.reconciler.mirrorsWantingPort(name)) this.candidate(id, "port");
      }
    }
    const a = new Set(before?.mirror_rules ?? []);
    const b = new Set(after?.mirror_rules ?? []);
    for (const u of [...a, ...b]) {
      if (a.has(u) && b.has(u)) continue;
      // A detached row still exists (only a deleted row is gone, and its own event says so).
      const row = this.state.mirror(u);
      const o = row && ownerOf(row);
      if (o) this.candidate(o, "drift");
    }
  };

  private readonly onGlobal = (g: GlobalRow) => {
    for (const [id, w] of this.chassisWaits) {
      if (g.hv_cfg >= w.target) {
        clearTimeout(w.timer);
        this.chassisWaits.delete(id);
        this.candidate(id, "chassis");
      }
    }
  };

  constructor(
    private readonly state: NbState,
    private readonly reconciler: NbReconciler,
    options: NbWatcherOptions,
  ) {
    super();
    this.log = options.logger.child({ component: "nb-watcher" });
    this.debounceMs = options.debounceMs ?? 25;
    this.checkIntervalMs = options.checkIntervalMs ?? 5_000;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.state.on("mirror", this.onMirror);
    this.state.on("port", this.onPort);
    this.state.on("global", this.onGlobal);
    if (this.checkIntervalMs > 0) {
      this.interval = setInterval(() => this.checkAll(), this.checkIntervalMs);
      this.interval.unref();
    }
  }

  stop(): void {
    if (!this.started) return;
    this.started = false;
    this.state.off("mirror", this.onMirror);
    this.state.off("port", this.onPort);
    this.state.off("global", this.onGlobal);
    clearTimeout(this.timer);
    clearInterval(this.interval);
    this.timer = undefined;
    this.pending.clear();
    for (const w of this.chassisWaits.values()) clearTimeout(w.timer);
    this.chassisWaits.clear();
  }

  /**
   * Fire a `chassis` trigger for `id` once hv_cfg reaches `nbCfg`, or at `deadline` (epoch ms)
   * if that comes first. Replaces an earlier wait for `id`.
   */
  awaitChassis(id: string, nbCfg: number, deadline?: number): void {
    this.cancelChassis(id);
    const g = this.state.global();
    if (g && g.hv_cfg >= nbCfg) {
      this.candidate(id, "chassis");
      return;
    }
    const w = { target: nbCfg, timer: undefined as NodeJS.Timeout | undefined };
    if (deadline !== undefined) {
      w.timer = setTimeout(
        () => {
          if (this.chassisWaits.get(id) !== w) return;
          this.chassisWaits.delete(id);
          this.candidate(id, "chassis");
        },
        Math.max(0, deadline - Date.now()),
      );
      w.timer.unref();
    }
    this.chassisWaits.set(id, w);
  }

  cancelChassis(id: string): void {
    clearTimeout(this.chassisWaits.get(id)?.timer);
    this.chassisWaits.delete(id);
  }

  /** Whether a chassis wait is registered for `id`. */
  awaitingChassis(id: string): boolean {
    return this.chassisWaits.has(id);
  }

  /** Checks every known mirror now. */
  checkAll(): void {
    for (const id of this.reconciler.knownIds()) this.candidate(id, "resync");
  }

  private candidate(id: string, reason: TriggerReason): void {
    if (!this.started) return;
    // The most specific reason wins: chassis and port say more than drift, drift more than resync.
    const prev = this.pending.get(id);
    if (!prev || rank(reason) > rank(prev)) this.pending.set(id, reason);
    this.timer ??= setTimeout(() => this.flush(), this.debounceMs);
  }

  private flush(): void {
    this.timer = undefined;
    const batch = [...this.pending];
    this.pending.clear();
    this.check(batch, 0);
  }

  /**
   * Checks `batch` from `from` on for at most CHECK_SLICE_MS, then yields to the event loop and
   * goes on: the periodic check over a thousand mirrors takes a few hundred milliseconds, and in
   * one piece (or in pieces of tens of milliseconds) it held up every running job's next step.
   */
  private check(batch: readonly (readonly [string, TriggerReason])[], from: number): void {
    if (!this.started) return;
    const until = performance.now() + CHECK_SLICE_MS;
    let i = from;
    while (i < batch.length) {
      const [id, reason] = batch[i++]!;
      let fire: boolean;
      try {
        // A port coming or going changes the status (Degraded ⇄ Active) even when NB
        // needs no write, and a chassis catching up always does.
        fire = reason === "chassis" || reason === "port" || this.reconciler.needsReconcile(id);
      } catch (err) {
        this.log.error({ err, mirror: id }, "drift check failed");
        fire = true;
      }
      if (fire) {
        this.log.debug({ mirror: id, reason }, "reconcile triggered");
        this.emit("trigger", id, reason);
      }
      if (performance.now() >= until) break;
    }
    if (i < batch.length) setImmediate(() => this.check(batch, i));
  }
}

/** How long drift checks may run before the watcher lets the event loop turn. */
const CHECK_SLICE_MS = 2;

function rank(r: TriggerReason): number {
  return r === "chassis" ? 3 : r === "port" ? 2 : r === "drift" ? 1 : 0;
}
