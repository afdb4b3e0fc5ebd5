/**
 * What ovn-controller on this node is told to mirror, read where ovn-controller reads it: OVN
 * Southbound. northd copies every NB `Mirror` row to SB `Mirror`, and each `Port_Binding` carries
 * its `mirror_rules`; ovn-controller creates an OVS Mirror (and a tunnel port `ovn-<name>`) on
 * br-int for each mirror of each port bound to its chassis (controller/mirror.c). That set, per
 * chassis, is what the data-plane check compares the node's OVS with.
 *
 *   const sb = await SbState.start(client, { logger });
 *   sb.expectedMirrors("node-1");   // Map name → { row, ports }
 */
import { EventEmitter } from "node:events";
import type { Monitor, OvsdbClient, sb } from "@ovntap/ovsdb";
import type { Logger } from "@ovntap/runtime";

export const SB_DB = "OVN_Southbound";

const MONITOR = {
  Chassis: { columns: ["name"] },
  Port_Binding: { columns: ["logical_port", "chassis", "mirror_rules"] },
  Mirror: {},
} as const;

type Mon = Monitor<"OVN_Southbound", typeof MONITOR>;
export type SbMirrorRow = sb.Mirror;

/** One SB mirror that ovn-controller must program on a chassis, and the local ports that use it. */
export interface ExpectedMirror {
  readonly row: SbMirrorRow;
  /** Logical ports bound to the chassis that carry this mirror in `mirror_rules`. */
  readonly ports: readonly string[];
}

export class SbState extends EventEmitter<{ change: []; resync: [] }> {
  private constructor(
    readonly client: OvsdbClient,
    private readonly monitor: Mon,
  ) {
    super();
  }

  static async start(client: OvsdbClient, opts: { logger: Logger }): Promise<SbState> {
    void opts;
    const monitor = await client.monitor(SB_DB, MONITOR);
    const state = new SbState(client, monitor);
    const db = client.cache.db(SB_DB);
    db.on("change", () => state.emit("change"));
    db.on("resync", () => state.emit("resync"));
    return state;
  }

  get ready(): boolean {
    return this.client.connected;
  }

  mirrors(): SbMirrorRow[] {
    return this.monitor.table("Mirror").rows();
  }

  /** The mirrors ovn-controller on `chassis` (its system-id) must program, by SB row name. */
  expectedMirrors(chassis: string): Map<string, ExpectedMirror> {
    const ch = this.monitor.table("Chassis").find((c) => c.name === chassis);
    const out = new Map<string, { row: SbMirrorRow; ports: string[] }>();
    if (!ch) return out;
    const mirrors = this.monitor.table("Mirror");
    for (const pb of this.monitor.table("Port_Binding").rows()) {
      if (pb.chassis !== ch._uuid || pb.mirror_rules.length === 0) continue;
      for (const uuid of pb.mirror_rules) {
        const row = mirrors.get(uuid);
        if (!row) continue;
        const e = out.get(row.name) ?? { row, ports: [] };
        e.ports.push(pb.logical_port);
        out.set(row.name, e);
      }
    }
    return out;
  }

  async stop(): Promise<void> {
    this.removeAllListeners();
    await this.monitor.cancel().catch(() => undefined);
  }
}
