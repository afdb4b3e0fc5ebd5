/**
 * The node's Open vSwitch as the agent sees it: one monitor over the tables mirrors touch
 * (Open_vSwitch, Bridge, Port, Interface, Mirror), kept current by @ovntap/ovsdb (which reloads
 * it in full after a reconnect), and lookups over it.
 *
 *   const ovs = await OvsState.start(client, { logger });
 *   ovs.bridge("br-int")?.mirrors.length;
 *   ovs.on("change", (table) => …);        // after every monitor update
 *   await ovs.waitApplied(nextCfg, 10_000); // ovs-vswitchd caught up (cur_cfg ≥ next_cfg)
 */
import { EventEmitter } from "node:events";
import type { Monitor, OvsdbClient, RowEvent, vswitch } from "@ovntap/ovsdb";
import type { Logger } from "@ovntap/runtime";

export const OVS_DB = "Open_vSwitch";

const MONITOR = {
  Open_vSwitch: {
    columns: [
      "bridges",
      "external_ids",
      "other_config",
      "ovs_version",
      "datapath_types",
      "iface_types",
      "next_cfg",
      "cur_cfg",
    ],
  },
  Bridge: { columns: ["name", "datapath_type", "ports", "mirrors", "external_ids"] },
  Port: { columns: ["name", "interfaces", "external_ids", "tag", "trunks"] },
  Interface: {
    columns: [
      "name",
      "type",
      "options",
      "error",
      "ofport",
      "mtu",
      "external_ids",
      "admin_state",
      "link_state",
    ],
  },
  Mirror: {},
} as const;

type Mon = Monitor<"Open_vSwitch", typeof MONITOR>;
export type BridgeRow = Pick<
  vswitch.Bridge,
  "_uuid" | "name" | "datapath_type" | "ports" | "mirrors" | "external_ids"
>;
export type PortRow = Pick<vswitch.Port, "_uuid" | "name" | "interfaces" | "external_ids" | "tag" | "trunks">;
export type InterfaceRow = Pick<
  vswitch.Interface,
  | "_uuid"
  | "name"
  | "type"
  | "options"
  | "error"
  | "ofport"
  | "mtu"
  | "external_ids"
  | "admin_state"
  | "link_state"
>;
export type MirrorRow = vswitch.Mirror;
export type RootRow = Pick<
  vswitch.OpenVSwitch,
  | "_uuid"
  | "bridges"
  | "external_ids"
  | "other_config"
  | "ovs_version"
  | "datapath_types"
  | "iface_types"
  | "next_cfg"
  | "cur_cfg"
>;

export type OvsStateEvents = {
  /** Rows of `table` changed (one event per row change; listeners debounce). */
  change: [table: string, event: RowEvent];
  /** The monitor was reloaded in full (a reconnect). */
  resync: [];
};

/** `Bridge.datapath_type`: empty means the kernel datapath (vswitch.xml). */
export function datapathOf(bridge: Pick<BridgeRow, "datapath_type">): string {
  return bridge.datapath_type === "" ? "system" : bridge.datapath_type;
}

export class OvsState extends EventEmitter<OvsStateEvents> {
  private constructor(
    readonly client: OvsdbClient,
    private readonly monitor: Mon,
    private readonly log: Logger,
  ) {
    super();
  }

  static async start(client: OvsdbClient, opts: { logger: Logger }): Promise<OvsState> {
    const monitor = await client.monitor(OVS_DB, MONITOR);
    const state = new OvsState(client, monitor, opts.logger.child({ component: "ovs" }));
    const db = client.cache.db(OVS_DB);
    db.on("change", (ev) => state.emit("change", ev.table, ev));
    db.on("resync", () => state.emit("resync"));
    return state;
  }

  /** Connected, with the monitor's rows loaded. */
  get ready(): boolean {
    return this.client.connected;
  }

  root(): RootRow | undefined {
    return this.monitor.table("Open_vSwitch").rows()[0];
  }
  bridges(): BridgeRow[] {
    return this.monitor.table("Bridge").rows();
  }
  bridge(name: string): BridgeRow | undefined {
    return this.monitor.table("Bridge").find((b) => b.name === name);
  }
  bridgeByUuid(uuid: string): BridgeRow | undefined {
    return this.monitor.table("Bridge").get(uuid);
  }
  /** The bridge whose `mirrors` holds this Mirror row. */
  bridgeOfMirror(mirrorUuid: string): BridgeRow | undefined {
    return this.bridges().find((b) => b.mirrors.includes(mirrorUuid));
  }
  /** The bridge whose `ports` holds this Port row. */
  bridgeOfPort(portUuid: string): BridgeRow | undefined {
    return this.bridges().find((b) => b.ports.includes(portUuid));
  }
  port(uuid: string): PortRow | undefined {
    return this.monitor.table("Port").get(uuid);
  }
  ports(): PortRow[] {
    return this.monitor.table("Port").rows();
  }
  /** A port of `bridge` by name. */
  portOn(bridge: BridgeRow, name: string): PortRow | undefined {
    for (const uuid of bridge.ports) {
      const p = this.port(uuid);
      if (p?.name === name) return p;
    }
    return undefined;
  }
  portByName(name: string): PortRow | undefined {
    return this.monitor.table("Port").find((p) => p.name === name);
  }
  iface(uuid: string): InterfaceRow | undefined {
    return this.monitor.table("Interface").get(uuid);
  }
  interfaces(): InterfaceRow[] {
    return this.monitor.table("Interface").rows();
  }
  /** The interfaces of a port (one, except for bonds). */
  interfacesOf(port: PortRow): InterfaceRow[] {
    return port.interfaces.map((u) => this.iface(u)).filter((i): i is InterfaceRow => i !== undefined);
  }
  mirror(uuid: string): MirrorRow | undefined {
    return this.monitor.table("Mirror").get(uuid);
  }
  mirrors(): MirrorRow[] {
    return this.monitor.table("Mirror").rows();
  }
  /** The Mirror rows a bridge holds (the 32-slot count of ofproto-dpif-mirror). */
  mirrorsOn(bridge: BridgeRow): MirrorRow[] {
    return bridge.mirrors.map((u) => this.mirror(u)).filter((m): m is MirrorRow => m !== undefined);
  }

  /**
   * Resolves once ovs-vswitchd has applied the database up to `nextCfg` (`cur_cfg ≥ nextCfg`,
   * what ovs-vsctl waits for without --no-wait); false after `timeoutMs`.
   */
  waitApplied(nextCfg: number, timeoutMs: number): Promise<boolean> {
    const done = () => (this.root()?.cur_cfg ?? 0) >= nextCfg;
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.off("change", onChange);
        resolve(ok);
      };
      const onChange = (table: string) => {
        if (table === "Open_vSwitch" && done()) finish(true);
      };
      const timer = setTimeout(() => {
        this.log.warn({ nextCfg, curCfg: this.root()?.cur_cfg }, "ovs-vswitchd did not catch up");
        finish(done());
      }, timeoutMs);
      this.on("change", onChange);
    });
  }

  async stop(): Promise<void> {
    this.removeAllListeners();
    await this.monitor.cancel().catch(() => undefined);
  }
}
