/**
 * The NB watcher's trigger decisions, over a fake NbState and reconciler (the monitor-driven
 * behaviour against a real NB is in reconciler.int.test.ts).
 */
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import type { RowEvent } from "@ovntap/ovsdb";
import { createLogger } from "@ovntap/runtime";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { canonicalSink } from "./keys.js";
import { OWNER_KEY } from "./names.js";
import type { GlobalRow, MirrorRow } from "./plan.js";
import type { NbReconciler } from "./reconciler.js";
import type { NbState } from "./state.js";
import { NbWatcher, type TriggerReason } from "./watcher.js";

const logger = createLogger({ name: "watcher-test", level: "silent" });

let seq = 0;
function row(owner: string | undefined, sink: string, index: number): MirrorRow {
  seq++;
  return {
    _uuid: `00000000-0000-4000-8000-${String(seq).padStart(12, "0")}`,
    name: owner ? `ovntap.${owner.replace("/", ".")}` : `manual${seq}`,
    filter: "from-lport",
    type: "gre",
    sink,
    index,
    external_ids: owner ? { [OWNER_KEY]: owner } : {},
  };
}

class FakeState extends EventEmitter<{
  mirror: [RowEvent<MirrorRow>];
  port: [RowEvent<never>];
  global: [GlobalRow];
}> {
  rows: MirrorRow[] = [];
  hv = { nb_cfg: 10, hv_cfg: 10 };
  global = () => this.hv;
  mirrors = () => this.rows;
  mirror = (uuid: string) => this.rows.find((r) => r._uuid === uuid);
  mirrorsTowards = (sink: string) => this.rows.filter((r) => canonicalSink(r.sink) === sink);
  insert(r: MirrorRow) {
    this.rows.push(r);
    this.emit("mirror", {
      type: "insert",
      database: "OVN_Northbound",
      table: "Mirror",
      uuid: r._uuid,
      new: r,
    });
  }
  setHv(hv: number) {
    this.hv = { ...this.hv, hv_cfg: hv };
    this.emit("global", this.hv);
  }
}

const reconciler = {
  needsReconcile: () => true,
  mirrorsWantingPort: () => [],
  knownIds: () => [],
} as unknown as NbReconciler;

let state: FakeState;
let watcher: NbWatcher;
let fired: [string, TriggerReason][];

beforeEach(() => {
  vi.useFakeTimers();
  state = new FakeState();
  watcher = new NbWatcher(state as unknown as NbState, reconciler, { logger, checkIntervalMs: 0 });
  fired = [];
  watcher.on("trigger", (id, reason) => fired.push([id, reason]));
  watcher.start();
});

afterEach(() => {
  watcher.stop();
  vi.useRealTimers();
});

describe("NbWatcher", () => {
  it("a row taking a key towards a sink triggers only the mirror holding that key there", () => {
    const sink = "2001:db8::7";
    state.rows.push(
      row("shop/a", sink, 1),
      row("shop/b", sink, 2),
      row("shop/c", "198.51.100.9", 1),
      row("shop/d", "2001:DB8::7", 3),
    );
    // Someone else's row with key 1 to the sink (spelled differently): shop/a is checked.
    state.insert(row(undefined, "2001:DB8:0::7", 1));
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([["shop/a", "drift"]]);

    // A key nobody of ours uses there: nothing to do for anyone.
    fired = [];
    state.insert(row(undefined, sink, 9));
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([]);

    // Our own new row: its owner is checked, and whoever it collides with (shop/d, key 3).
    state.insert(row("shop/e", sink, 3));
    vi.advanceTimersByTime(100);
    expect(fired.sort()).toEqual([
      ["shop/d", "drift"],
      ["shop/e", "drift"],
    ]);
  });

  it("awaitChassis fires when hv_cfg reaches the target, or at the deadline, once", () => {
    watcher.awaitChassis("shop/a", 12, Date.now() + 5_000);
    watcher.awaitChassis("shop/b", 15, Date.now() + 5_000);
    expect(watcher.awaitingChassis("shop/a")).toBe(true);
    state.setHv(12);
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([["shop/a", "chassis"]]);
    expect(watcher.awaitingChassis("shop/a")).toBe(false);

    // shop/b: hv_cfg never gets to 15; the deadline fires it (the reconcile reports Degraded).
    vi.advanceTimersByTime(5_000);
    expect(fired).toEqual([
      ["shop/a", "chassis"],
      ["shop/b", "chassis"],
    ]);
    state.setHv(20);
    vi.advanceTimersByTime(100);
    expect(fired).toHaveLength(2);
  });

  it("a new wait replaces the old one; a cancelled wait never fires; reached already fires now", () => {
    watcher.awaitChassis("shop/a", 30, Date.now() + 1_000);
    watcher.awaitChassis("shop/a", 40); // no deadline: the earlier timer must not fire
    vi.advanceTimersByTime(2_000);
    expect(fired).toEqual([]);
    state.setHv(35);
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([]);

    watcher.cancelChassis("shop/a");
    state.setHv(40);
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([]);

    watcher.awaitChassis("shop/b", 40, Date.now() + 1_000);
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([["shop/b", "chassis"]]);
    expect(watcher.awaitingChassis("shop/b")).toBe(false);
  });

  it("checks a large batch in chunks, yielding to the event loop in between", async () => {
    vi.useRealTimers();
    const ids = Array.from({ length: 200 }, (_, i) => `shop/m${i}`);
    // Each check takes 0.2 ms: 40 ms in all, far more than one slice.
    const slowCheck = () => {
      const t = performance.now();
      while (performance.now() - t < 0.2);
      return true;
    };
    const w = new NbWatcher(
      state as unknown as NbState,
      { ...reconciler, knownIds: () => ids, needsReconcile: slowCheck } as unknown as NbReconciler,
      { logger, checkIntervalMs: 0, debounceMs: 1 },
    );
    const seen: string[] = [];
    let atFirstYield: number | undefined;
    w.on("trigger", (id) => {
      // Queued during the first chunk, so it runs as soon as the watcher yields.
      if (seen.length === 0) setImmediate(() => (atFirstYield = seen.length));
      seen.push(id);
    });
    w.start();
    try {
      w.checkAll();
      await new Promise<void>((resolve) => {
        const poll = () => (seen.length === ids.length ? resolve() : setTimeout(poll, 5));
        poll();
      });
      expect(seen).toEqual(ids);
      expect(atFirstYield).toBeGreaterThan(0);
      expect(atFirstYield).toBeLessThan(ids.length);
    } finally {
      w.stop();
    }
  });
});
