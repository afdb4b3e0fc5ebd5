/**
 * Data-plane truth for OVN mirrors: for every ovntap OVN mirror that ovn-controller must program
 * on this node (SB says so: a port bound here carries it in `mirror_rules`), whether the node's
 * OVS really holds it — an OVS `Mirror` row on the integration bridge, its tunnel port
 * `ovn-<row>` added by ovs-vswitchd without error, and a mirror slot — or the reason it does not.
 *
 *   const states = evaluateOvnMirrors({ expected, ovs, now, firstSeen, graceMs });
 *   // [{ mirror: "shop/web", row: "ovntap.shop.web", state: "error",
 *   //    message: "could not add network device ovn-ovntap.shop.web to ofproto (File exists)", … }]
 *
 * Nobody else reports these failures: NB accepts a second mirror to the same sink with the same
 * key, ovn-controller creates the rows, and ovs-vswitchd only writes `Interface.error` ("could
 * not add network device … (File exists)") and logs "outputs to port not on bridge"; past 32
 * mirrors on a bridge it logs "maximum of 32 port mirrors reached" and drops the mirror without
 * a trace in OVSDB but for its empty `statistics`; `ovs-vsctl clear bridge br-int mirrors`
 * (Kube-OVN's daemon runs it at start) removes the rows and ovn-controller does not put them
 * back until it recomputes.
 *
 * `DataplaneWatcher` re-evaluates on every OVS or SB change (and on a timer, for grace periods),
 * keeps the per-node record `ovntap_dataplane[<node>]` (contracts `DataplaneRecord`) in a
 * JetStream KV bucket current, and publishes a `dataplane_error` lifecycle event when a mirror
 * enters an error (or its error text changes) and `dataplane_ok` when it is programmed again.
 */
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import type { KV } from "@nats-io/kv";
import {
  DATAPLANE_KV_BUCKET,
  DATAPLANE_REFRESH_MS as CONTRACT_REFRESH_MS,
  DataplaneRecord,
  DataplaneState,
  MAX_MIRRORS_PER_BRIDGE,
  MESSAGE_MAX,
  MirrorDataplane,
} from "@ovntap/contracts";
import type { Logger } from "@ovntap/runtime";
import { eventId, makeEvent, type EventLog, type Store } from "@ovntap/store";
import { mirrorId, OVN_OWNED_KEY, ovnTunnelPort, parseOvnRowName } from "./names.js";
import type { ExpectedMirror } from "./ovn/sb.js";
import type { InterfaceRow, MirrorRow, OvsState } from "./ovs/state.js";

export { DATAPLANE_KV_BUCKET, DataplaneRecord, DataplaneState, MirrorDataplane };

/** The data-plane record is rewritten at least this often, changed or not (contracts). */
export const DATAPLANE_REFRESH_MS = CONTRACT_REFRESH_MS;

/** ovs-vswitchd refreshes `Mirror.statistics` this often unless `other_config:stats-update-interval` says otherwise. */
export const DEFAULT_STATS_UPDATE_MS = 5_000;

export interface EvaluateInput {
  /** SB: the mirrors this chassis must program, by row name. */
  expected: ReadonlyMap<string, ExpectedMirror>;
  ovs: OvsState;
  /** The integration bridge (`external_ids:ovn-bridge`, default br-int). */
  integrationBridge: string;
  now: number;
  /** When each row first appeared in `expected` (the caller keeps it across evaluations). */
  expectedSince: ReadonlyMap<string, number>;
  /** When each OVS Mirror row (by uuid) was first seen. */
  ovsSince: ReadonlyMap<string, number>;
  /** How long ovn-controller and ovs-vswitchd may take before a missing row is an error. */
  graceMs: number;
  /** `other_config:stats-update-interval` of the node's OVS. */
  statsUpdateMs: number;
}

type Verdict = Omit<MirrorDataplane, "since">;

/** Pure: the data-plane state of every ovntap OVN mirror in `expected`, sorted by row. */
export function evaluateOvnMirrors(input: EvaluateInput): Verdict[] {
  const { ovs, now, graceMs } = input;
  const out: Verdict[] = [];
  const bridge = ovs.bridge(input.integrationBridge);
  // ovn-controller's own rows by name (an agent-owned row of the same name is not it).
  const byName = new Map<string, MirrorRow>();
  for (const m of ovs.mirrors()) {
    if (m.external_ids[OVN_OWNED_KEY] === "true" || !byName.has(m.name)) byName.set(m.name, m);
  }
  for (const [row] of [...input.expected].sort(([a], [b]) => a.localeCompare(b))) {
    const ref = parseOvnRowName(row);
    if (!ref) continue;
    const base = {
      namespace: ref.namespace,
      mirror: ref.name,
      row,
      bridge: input.integrationBridge,
      port: ovnTunnelPort(row),
    };
    const inGrace = now - (input.expectedSince.get(row) ?? now) < graceMs;
    const pendingOr = (message: string, component: "ovs" | "ovn-controller"): Verdict =>
      inGrace ? { ...base, state: "pending" } : { ...base, state: "error", message, component };
    if (!bridge) {
      out.push(
        pendingOr(
          `integration bridge ${input.integrationBridge} does not exist on this node`,
          "ovn-controller",
        ),
      );
      continue;
    }
    const m = byName.get(row);
    if (!m || !bridge.mirrors.includes(m._uuid)) {
      const leftover = ovs.portOn(bridge, ovnTunnelPort(row));
      out.push(
        pendingOr(
          leftover
            ? // After `clear bridge <br> mirrors` ovn-controller re-creates the Mirror *and* the
              // port; the port's unique name fails its transaction ("constraint violation" in its
              // log) — the whole transaction, so none of its OVS changes land — again and again,
              // until every such port is removed.
              `no OVS Mirror ${row} on ${bridge.name} while its tunnel port ${leftover.name} remains: ` +
                `ovn-controller's re-creation fails on the port's name (constraint violation in its log), ` +
                `and with it every OVS change ovn-controller makes, until the port is removed ` +
                `(mirrors removed out of band, e.g. 'ovs-vsctl clear bridge ${bridge.name} mirrors')`
            : `no OVS Mirror ${row} on ${bridge.name}: ovn-controller has not created it`,
          "ovn-controller",
        ),
      );
      continue;
    }
    // The tunnel port: an Interface error is ovs-vswitchd refusing it (e.g. a second tunnel to
    // the same sink with the same key: "could not add network device … (File exists)").
    const tunnel = ovs.portOn(bridge, ovnTunnelPort(row)) ?? ovs.portByName(ovnTunnelPort(row));
    const ifaces = tunnel ? ovs.interfacesOf(tunnel) : [];
    const failed = ifaces.find((i) => i.error);
    if (failed?.error) {
      out.push({ ...base, state: "error", component: "ovs", message: failed.error });
      continue;
    }
    // Ours was added first, and OVS refused the other tunnel to the same sink with the same key
    // (someone's mirror put on our key by hand). Ours carries the traffic for now, but which of
    // the two OVS keeps is not defined — it may flip when ovs-vswitchd restarts — and a receiver
    // cannot tell two streams with one key apart: a person has to settle it.
    const rival = ifaces.length > 0 ? contendedBy(ifaces[0]!, ovs.interfaces()) : undefined;
    if (rival) {
      out.push({
        ...base,
        state: "error",
        component: "ovs",
        message:
          `tunnel key contention: OVS refused ${rival.name}, another tunnel to ` +
          `${rival.options.remote_ip ?? "the same sink"} with the same key ${rival.options.key ?? ""} ` +
          `(${rival.error}); which of the two OVS keeps is not defined and the sink cannot tell ` +
          `them apart: delete one of the two mirrors or give one another key`,
      });
      continue;
    }
    if (!tunnel || !m.output_port || m.output_port !== tunnel._uuid) {
      out.push(
        pendingOr(
          m.output_port
            ? `OVS Mirror ${row} outputs to a port other than its tunnel port ${ovnTunnelPort(row)}`
            : `OVS Mirror ${row} has no output port: its tunnel port ${ovnTunnelPort(row)} is missing ` +
                `(ovs-vswitchd logs "outputs to port not on bridge")`,
          "ovn-controller",
        ),
      );
      continue;
    }
    if (!bridge.ports.includes(tunnel._uuid)) {
      out.push(pendingOr(`tunnel port ${tunnel.name} is not on ${bridge.name}`, "ovn-controller"));
      continue;
    }
    if (ifaces.some((i) => i.ofport === -1)) {
      out.push({
        ...base,
        state: "error",
        component: "ovs",
        message: `ovs-vswitchd could not add tunnel port ${tunnel.name} (ofport -1)`,
      });
      continue;
    }
    if (ifaces.some((i) => i.ofport === null)) {
      out.push(pendingOr(`ovs-vswitchd has not added tunnel port ${tunnel.name} yet`, "ovs"));
      continue;
    }
    // ofproto-dpif-mirror keeps 32 mirrors per bridge and drops the next with only a log line
    // ("maximum of 32 port mirrors reached, cannot create …"). What it realizes gets statistics
    // at the next stats update; a dropped mirror never does.
    const rows = bridge.mirrors.length;
    const seenFor = now - (input.ovsSince.get(m._uuid) ?? now);
    if (
      rows > MAX_MIRRORS_PER_BRIDGE &&
      Object.keys(m.statistics).length === 0 &&
      seenFor >= input.statsUpdateMs + graceMs
    ) {
      out.push({
        ...base,
        state: "error",
        component: "ovs",
        message:
          `ovs-vswitchd dropped the mirror: maximum of ${MAX_MIRRORS_PER_BRIDGE} port mirrors reached on ` +
          `bridge ${bridge.name} (${rows} Mirror rows; OVS keeps ${MAX_MIRRORS_PER_BRIDGE} per bridge)`,
      });
      continue;
    }
    out.push({ ...base, state: "programmed" });
  }
  return out;
}

/**
 * Another tunnel interface of the same type to the same remote with the same key as `tunnel`,
 * which OVS refused (an `error`): the two collide and ours is the one OVS kept.
 */
export function contendedBy(tunnel: InterfaceRow, all: readonly InterfaceRow[]): InterfaceRow | undefined {
  const remote = tunnel.options.remote_ip;
  if (remote === undefined) return undefined;
  const key = tunnel.options.key ?? "0";
  return all.find(
    (i) =>
      i._uuid !== tunnel._uuid &&
      i.type === tunnel.type &&
      i.error !== undefined &&
      i.options.remote_ip === remote &&
      (i.options.key ?? "0") === key,
  );
}

export interface DataplaneWatcherDeps {
  node: string;
  ovs: OvsState;
  /** SB mirrors this chassis must program; undefined when SB is not available. */
  expected: () => ReadonlyMap<string, ExpectedMirror> | undefined;
  /** Called when either source changed, to re-evaluate. */
  subscribe: (onChange: () => void) => () => void;
  kv?: KV | undefined;
  events?: Pick<EventLog, "publish"> | undefined;
  store?: Pick<Store, "getRecord"> | undefined;
  logger: Logger;
  graceMs: number;
  principal: string;
  now?: () => Date;
}

export type DataplaneEvents = {
  /** A mirror row's state changed (also its first evaluation). */
  transition: [next: MirrorDataplane, previous: MirrorDataplane | undefined];
};

const shortHash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);

export class DataplaneWatcher extends EventEmitter<DataplaneEvents> {
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly expectedSince = new Map<string, number>();
  private readonly ovsSince = new Map<string, number>();
  private current = new Map<string, MirrorDataplane>();
  /** Rows in an error announced by this process, until they are programmed again. */
  private readonly failing = new Map<string, MirrorDataplane>();
  private published: string | undefined;
  private publishedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private scheduled: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(private readonly deps: DataplaneWatcherDeps) {
    super();
    this.log = deps.logger.child({ component: "dataplane" });
    this.now = deps.now ?? (() => new Date());
  }

  /** The latest state of every ovntap OVN mirror row on this node. */
  states(): MirrorDataplane[] {
    return [...this.current.values()];
  }

  state(row: string): MirrorDataplane | undefined {
    return this.current.get(row);
  }

  /** The record as it would be written now. */
  record(): DataplaneRecord {
    const root = this.deps.ovs.root();
    return {
      node: this.deps.node,
      chassis: root?.external_ids["system-id"] ?? this.deps.node,
      time: this.now().toISOString(),
      mirrors: this.states(),
    };
  }

  start(): void {
    this.unsubscribe = this.deps.subscribe(() => this.schedule());
    // Grace periods end without any change to observe.
    this.timer = setInterval(() => this.schedule(), Math.max(250, Math.min(1_000, this.deps.graceMs / 2)));
    this.timer.unref();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    if (this.scheduled) clearTimeout(this.scheduled);
    await this.running;
  }

  /** Evaluates now (tests and the first run); concurrent calls fold into one more run. */
  evaluate(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.evaluateOnce().catch((err: unknown) => this.log.warn({ err }, "data-plane check failed"));
      } while (this.again);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  private schedule(): void {
    if (this.scheduled) return;
    // Debounced: one OVS transaction is several row events.
    this.scheduled = setTimeout(() => {
      this.scheduled = undefined;
      void this.evaluate();
    }, 50);
    this.scheduled.unref();
  }

  private async evaluateOnce(): Promise<void> {
    const expected = this.deps.expected();
    if (!expected) return;
    const nowMs = this.now().getTime();
    for (const row of expected.keys()) if (!this.expectedSince.has(row)) this.expectedSince.set(row, nowMs);
    for (const row of this.expectedSince.keys()) if (!expected.has(row)) this.expectedSince.delete(row);
    const mirrors = this.deps.ovs.mirrors();
    for (const m of mirrors) if (!this.ovsSince.has(m._uuid)) this.ovsSince.set(m._uuid, nowMs);
    const live = new Set(mirrors.map((m) => m._uuid));
    for (const u of this.ovsSince.keys()) if (!live.has(u)) this.ovsSince.delete(u);

    const root = this.deps.ovs.root();
    const statsUpdateMs = Number(root?.other_config["stats-update-interval"] ?? DEFAULT_STATS_UPDATE_MS);
    const verdicts = evaluateOvnMirrors({
      expected,
      ovs: this.deps.ovs,
      integrationBridge: root?.external_ids["ovn-bridge"] || "br-int",
      now: nowMs,
      expectedSince: this.expectedSince,
      ovsSince: this.ovsSince,
      graceMs: this.deps.graceMs,
      statsUpdateMs:
        Number.isFinite(statsUpdateMs) && statsUpdateMs > 0 ? statsUpdateMs : DEFAULT_STATS_UPDATE_MS,
    });
    const next = new Map<string, MirrorDataplane>();
    const changed: [MirrorDataplane, MirrorDataplane | undefined][] = [];
    const iso = new Date(nowMs).toISOString();
    for (const verdict of verdicts) {
      // The record's messages are bounded like every contract text.
      const v = verdict.message ? { ...verdict, message: verdict.message.slice(0, MESSAGE_MAX) } : verdict;
      const prev = this.current.get(v.row);
      const same = prev && prev.state === v.state && prev.message === v.message;
      const entry: MirrorDataplane = same ? prev : { ...v, since: iso };
      next.set(v.row, entry);
      if (!same) changed.push([entry, prev]);
    }
    this.current = next;
    for (const row of this.failing.keys()) if (!next.has(row)) this.failing.delete(row);
    // The record first: the applier turns an error into Degraded from it, events or not.
    await this.publishRecord();
    for (const [entry, prev] of changed) {
      const fields = { mirror: `${entry.namespace}/${entry.mirror}`, row: entry.row, state: entry.state };
      if (entry.state === "error")
        this.log.warn({ ...fields, message: entry.message }, "mirror not programmed");
      else this.log.info({ ...fields, previous: prev?.state }, "mirror data-plane state");
      this.emit("transition", entry, prev);
      if (entry.state === "error") {
        this.failing.set(entry.row, entry);
        await this.announce("dataplane_error", entry);
      } else if (entry.state === "programmed") {
        const ended = this.failing.get(entry.row);
        this.failing.delete(entry.row);
        if (ended) await this.announce("dataplane_ok", entry, ended);
      }
    }
  }

  private async publishRecord(): Promise<void> {
    if (!this.deps.kv) return;
    const rec = this.record();
    // Written when the mirrors' states change, and refreshed now and then so that a reader can
    // tell a live record from one a gone agent left (`time`).
    const key = JSON.stringify(rec.mirrors);
    const nowMs = Date.parse(rec.time);
    if (key === this.published && nowMs - this.publishedAt < DATAPLANE_REFRESH_MS) return;
    await this.deps.kv.put(this.deps.node, JSON.stringify(DataplaneRecord.parse(rec)));
    this.published = key;
    this.publishedAt = nowMs;
  }

  /**
   * `dataplane_error` when a row enters an error (or its text changes); `dataplane_ok` when a
   * row this process saw failing is programmed again.
   */
  private async announce(
    type: "dataplane_error" | "dataplane_ok",
    entry: MirrorDataplane,
    ended?: MirrorDataplane,
  ): Promise<void> {
    const { events, store } = this.deps;
    if (!events || !store) return;
    const record = await store.getRecord(entry.namespace, entry.mirror);
    // Only mirrors ovntap stores (the row name could be anyone's, but then there is no one to tell).
    if (!record) return;
    const where = {
      node: this.deps.node,
      ...(entry.bridge ? { bridge: entry.bridge } : {}),
      ...(entry.port ? { port: entry.port } : {}),
      row: entry.row,
    };
    const base = {
      namespace: entry.namespace,
      mirror: entry.mirror,
      generation: record.generation,
      principal: this.deps.principal,
      requestId: record.requestId,
      time: this.now(),
    };
    const id = (hashed: string) =>
      eventId(entry.namespace, entry.mirror, record.generation, type, this.deps.node, shortHash(hashed));
    if (type === "dataplane_error") {
      const message = entry.message ?? "not programmed";
      await events.publish(
        makeEvent("dataplane_error", {
          ...base,
          // One event per node, row, generation and error text: a re-evaluation or a restart
          // repeats it into JetStream's duplicate window instead of the audit trail.
          eventId: id(`${entry.row}\n${message}`),
          detail: { component: entry.component ?? "ovs", message, ...where },
        }),
      );
    } else {
      await events.publish(
        makeEvent("dataplane_ok", {
          ...base,
          // One per error that ended (its text and when it began).
          eventId: id(`${entry.row}\n${ended?.message ?? ""}\n${ended?.since ?? ""}`),
          detail: {
            component: ended?.component ?? "ovs",
            ...where,
            ...(ended?.message ? { previous: ended.message } : {}),
          },
        }),
      );
    }
    this.log.info(
      { mirror: mirrorId({ namespace: entry.namespace, name: entry.mirror }), row: entry.row, type },
      "data-plane event published",
    );
  }
}
