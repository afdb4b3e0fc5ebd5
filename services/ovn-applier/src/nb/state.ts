/**
 * What the applier knows of OVN Northbound: one monitor (Mirror rows, the name and
 * mirror_rules of every Logical_Switch_Port, NB_Global's nb_cfg/hv_cfg) feeding the
 * client's cache, plus the indexes the planner needs (port by name, ports by referenced
 * Mirror row), kept current from the cache's change events — including the difference
 * events of a full resync after a reconnect.
 *
 *   const state = await NbState.start(client, { logger });
 *   state.view().port("pod-a.default");
 *   await state.waitHvCfg(nbCfg, { timeoutMs: 10_000 });   // what `ovn-nbctl --wait=hv` waits for
 */
import { EventEmitter } from "node:events";
import {
  capabilities,
  type NbCapabilities,
  type OvsdbClient,
  type RowEvent,
  type TableCache,
} from "@ovntap/ovsdb";
import type { Logger } from "@ovntap/runtime";
import { canonicalSink } from "./keys.js";
import { ownerOf } from "./names.js";
import type { GlobalRow, MirrorRow, NbView, PortRow } from "./plan.js";

export const NB = "OVN_Northbound";

export type NbStateEvents = {
  /** A Mirror row changed (any row, ours or not). */
  mirror: [RowEvent<MirrorRow>];
  /** A Logical_Switch_Port changed (name or mirror_rules). */
  port: [RowEvent<PortRow>];
  /** NB_Global changed (nb_cfg / hv_cfg). */
  global: [GlobalRow];
};

export interface ChassisWait {
  /** hv_cfg reached the target before the deadline. */
  readonly synced: boolean;
  readonly hvCfg: number | undefined;
  readonly waitedMs: number;
}

export class NbState extends EventEmitter<NbStateEvents> {
  private readonly mirrorsTable: TableCache<MirrorRow>;
  private readonly portsTable: TableCache<PortRow>;
  private readonly globalTable: TableCache<GlobalRow & { _uuid: string }>;
  private readonly portsByName = new Map<string, PortRow>();
  /** Mirror row uuid → uuids of the ports whose mirror_rules hold it. */
  private readonly referencedBy = new Map<string, Set<string>>();
  /**
   * Mirror rows by name (unique: the table's index), by canonical sink and by owner, so that
   * a plan looks at the rows towards its sink and its own rows instead of every row: with a
   * thousand mirrors, scanning them all for every plan and drift check kept the applier busy.
   */
  private readonly mirrorsByName = new Map<string, MirrorRow>();
  private readonly mirrorsBySink = new Map<string, Map<string, MirrorRow>>();
  private readonly mirrorsByOwner = new Map<string, Map<string, MirrorRow>>();
  private monitoring = false;
  private monitorHandle: { cancel(): Promise<void> } | undefined;
  private readonly detach: (() => void)[] = [];

  private constructor(
    readonly client: OvsdbClient,
    private readonly logger: Logger,
  ) {
    super();
    this.setMaxListeners(0);
    const cache = client.cache.db(NB);
    this.mirrorsTable = cache.table("Mirror") as unknown as TableCache<MirrorRow>;
    this.portsTable = cache.table("Logical_Switch_Port") as unknown as TableCache<PortRow>;
    this.globalTable = cache.table("NB_Global") as unknown as TableCache<GlobalRow & { _uuid: string }>;
  }

  /** Starts the monitor and resolves once its initial rows are in the cache. */
  static async start(client: OvsdbClient, options: { logger: Logger }): Promise<NbState> {
    const state = new NbState(client, options.logger);
    // Listeners first: the monitor reply is delivered as insert events.
    const onMirror = (ev: RowEvent<MirrorRow>) => state.onMirror(ev);
    const onPort = (ev: RowEvent<PortRow>) => state.onPort(ev);
    const onGlobal = (ev: RowEvent<GlobalRow>) => {
      if (ev.type !== "delete") state.emit("global", ev.new);
    };
    state.mirrorsTable.on("change", onMirror);
    state.portsTable.on("change", onPort);
    state.globalTable.on("change", onGlobal);
    state.detach.push(
      () => state.mirrorsTable.off("change", onMirror),
      () => state.portsTable.off("change", onPort),
      () => state.globalTable.off("change", onGlobal),
    );
    state.monitorHandle = await client.monitor(NB, {
      Mirror: {},
      Logical_Switch_Port: { columns: ["name", "mirror_rules"] },
      NB_Global: { columns: ["nb_cfg", "hv_cfg"] },
    });
    state.monitoring = true;
    options.logger.info(
      { mirrors: state.mirrorsTable.size, ports: state.portsTable.size },
      "nb monitor synced",
    );
    return state;
  }

  /** NB connected and the monitor's cache current (it is reloaded on every reconnect). */
  get ready(): boolean {
    return this.monitoring && this.client.connected && this.mirrorsTable.monitored;
  }

  async capabilities(): Promise<NbCapabilities> {
    return capabilities(await this.client.schema(NB));
  }

  view(): NbView {
    return {
      mirrors: () => this.mirrorsTable.rows(),
      mirrorByName: (name) => this.mirrorsByName.get(name),
      mirrorsOwnedBy: (id) => this.mirrorsByOwner.get(id)?.values() ?? [],
      mirrorsTowards: (sink) => this.mirrorsBySink.get(sink)?.values() ?? [],
      port: (name) => this.portsByName.get(name),
      portsReferencing: (uuid) => {
        const ids = this.referencedBy.get(uuid);
        if (!ids) return [];
        const out: PortRow[] = [];
        for (const id of ids) {
          const p = this.portsTable.get(id);
          if (p) out.push(p);
        }
        return out;
      },
      global: () => this.global(),
    };
  }

  mirror(uuid: string): MirrorRow | undefined {
    return this.mirrorsTable.get(uuid);
  }

  mirrors(): MirrorRow[] {
    return this.mirrorsTable.rows();
  }

  /** Mirror rows towards a sink, by its canonical form (keys.ts canonicalSink). */
  mirrorsTowards(sink: string): Iterable<MirrorRow> {
    return this.mirrorsBySink.get(sink)?.values() ?? [];
  }

  private onMirror(ev: RowEvent<MirrorRow>): void {
    if (ev.type !== "insert") this.unindexMirror(ev.old);
    if (ev.type !== "delete") this.indexMirror(ev.new);
    this.emit("mirror", ev);
  }

  private indexMirror(r: MirrorRow): void {
    this.mirrorsByName.set(r.name, r);
    addTo(this.mirrorsBySink, canonicalSink(r.sink) ?? r.sink, r);
    const owner = ownerOf(r);
    if (owner) addTo(this.mirrorsByOwner, owner, r);
  }

  private unindexMirror(r: MirrorRow): void {
    if (this.mirrorsByName.get(r.name)?._uuid === r._uuid) this.mirrorsByName.delete(r.name);
    removeFrom(this.mirrorsBySink, canonicalSink(r.sink) ?? r.sink, r);
    const owner = ownerOf(r);
    if (owner) removeFrom(this.mirrorsByOwner, owner, r);
  }

  global(): GlobalRow | undefined {
    for (const g of this.globalTable) return g;
    return undefined;
  }

  private onPort(ev: RowEvent<PortRow>): void {
    if (ev.type !== "insert") this.unindex(ev.old);
    if (ev.type !== "delete") this.index(ev.new);
    this.emit("port", ev);
  }

  private index(p: PortRow): void {
    // Port names are unique in NB (Logical_Switch_Port index ["name"]).
    this.portsByName.set(p.name, p);
    for (const u of p.mirror_rules) {
      let s = this.referencedBy.get(u);
      if (!s) this.referencedBy.set(u, (s = new Set()));
      s.add(p._uuid);
    }
  }

  private unindex(p: PortRow): void {
    if (this.portsByName.get(p.name)?._uuid === p._uuid) this.portsByName.delete(p.name);
    for (const u of p.mirror_rules) {
      const s = this.referencedBy.get(u);
      s?.delete(p._uuid);
      if (s?.size === 0) this.referencedBy.delete(u);
    }
  }

  /**
   * Resolves once NB_Global.hv_cfg ≥ target (every chassis has processed the NB change that
   * set nb_cfg to target, ovn-nb(5)), or at the deadline with `synced: false`.
   */
  waitHvCfg(target: number, options: { timeoutMs: number; signal?: AbortSignal }): Promise<ChassisWait> {
    const started = Date.now();
    const current = () => this.global()?.hv_cfg;
    const done = (synced: boolean): ChassisWait => ({
      synced,
      hvCfg: current(),
      waitedMs: Date.now() - started,
    });
    if ((current() ?? -1) >= target) return Promise.resolve(done(true));
    return new Promise((resolve) => {
      const finish = (synced: boolean) => {
        clearTimeout(timer);
        this.off("global", onGlobal);
        options.signal?.removeEventListener("abort", onAbort);
        resolve(done(synced));
      };
      const onGlobal = (g: GlobalRow) => {
        if (g.hv_cfg >= target) finish(true);
      };
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), options.timeoutMs);
      this.on("global", onGlobal);
      options.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Resolves at the next Mirror change, or after `timeoutMs` (whichever comes first). */
  nextMirrorChange(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.off("mirror", finish);
        resolve();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.on("mirror", finish);
    });
  }

  /** Stops feeding the cache (the client stays open; its owner closes it). */
  async stop(): Promise<void> {
    if (!this.monitoring) return;
    this.monitoring = false;
    for (const d of this.detach.splice(0)) d();
    this.removeAllListeners();
    try {
      if (this.client.connected) await this.monitorHandle?.cancel();
    } catch (err) {
      // The session may be going away at the same time; the monitor dies with it.
      this.logger.debug({ err }, "nb monitor cancel failed");
    }
  }
}

function addTo(index: Map<string, Map<string, MirrorRow>>, key: string, r: MirrorRow): void {
  let rows = index.get(key);
  if (!rows) index.set(key, (rows = new Map<string, MirrorRow>()));
  rows.set(r._uuid, r);
}

function removeFrom(index: Map<string, Map<string, MirrorRow>>, key: string, r: MirrorRow): void {
  const rows = index.get(key);
  rows?.delete(r._uuid);
  if (rows?.size === 0) index.delete(key);
}
