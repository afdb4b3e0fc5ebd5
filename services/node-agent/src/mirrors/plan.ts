/**
 * The planner of OVS-level mirrors (`ovs` sources): from a mirror's desired state and the node's
 * OVS as the monitor shows it, the one Open_vSwitch transaction that makes OVS hold exactly the
 * mirror's rows — or why it cannot. Pure over the OVS view; `transact` is the caller's.
 *
 *   const plan = planOvsMirror(ovs, desired, { tunnel: { type: "gre", remoteIp, key } });
 *   if (plan.type === "failure") …  // plan.code: BRIDGE_MIRROR_LIMIT, ALREADY_EXISTS, PORT_NOT_FOUND…
 *   else if (plan.ops.length) await client.transact("Open_vSwitch", plan.ops);
 *
 * What a mirror owns: one `Mirror` row on its bridge (select_src_port / select_dst_port by
 * direction, select_vlan, output_port or output_vlan, snaplen) and, for gre/erspan/collector
 * targets, one tunnel `Port` + `Interface` (type gre|erspan, remote_ip, key, erspan_ver,
 * erspan_idx) on the same bridge, all marked `external_ids:ovntap/mirror` and
 * `ovntap/generation`. Rows carrying another owner (or none) are never updated or deleted.
 *
 * The transaction asserts what the plan assumed (`wait` ops with timeout 0): the set of rows
 * the mirror owns and, when it adds a Mirror row, the bridge's `mirrors` — so a stale cache or a
 * concurrent writer fails it ("timed out") instead of duplicating a row or passing the limit;
 * the caller re-plans on the cache the other write left.
 */
import { randomBytes } from "node:crypto";
import { MAX_MIRRORS_PER_BRIDGE, type ErrorCode, type MirrorSpec } from "@ovntap/contracts";
import { ovsOp as op, type Operation } from "@ovntap/ovsdb";
import {
  GENERATION_KEY,
  KEY_KEY,
  mirrorId,
  NODE_KEY,
  OWNER_KEY,
  ownerOf,
  ovsRowName,
  REVALIDATE_KEY,
} from "../names.js";
import {
  datapathOf,
  type BridgeRow,
  type InterfaceRow,
  type MirrorRow,
  type OvsState,
  type PortRow,
} from "../ovs/state.js";

export type OvsSourceSpec = MirrorSpec & { sources: Extract<MirrorSpec["sources"], { type: "ovs" }> };

export interface DesiredOvsMirror {
  namespace: string;
  name: string;
  generation: number;
  spec: OvsSourceSpec;
}

/** The tunnel a gre/erspan/collector target needs, its key already chosen. */
export interface TunnelWant {
  type: "gre" | "erspan";
  remoteIp: string;
  /** GRE key, or ERSPAN session id. */
  key: number;
  /** ERSPAN only: 1 = type II, 2 = type III. */
  erspanVersion?: 1 | 2;
}

export interface PlanOptions {
  tunnel?: TunnelWant | undefined;
  /** Write no rows (a blocking preflight issue): remove whatever the mirror owns. */
  suppress?: boolean;
  /** The node name recorded in external_ids. */
  node: string;
  /** Whether the server's Mirror table has `snaplen` (OVS ≥ 2.15). */
  hasSnaplen: boolean;
}

export interface Change {
  table: "Mirror" | "Port" | "Interface" | "Bridge";
  name: string;
  action: "created" | "updated" | "deleted";
}

export interface PlanFailure {
  type: "failure";
  code: ErrorCode;
  reason: string;
  message: string;
  retryable: boolean;
}

export interface Plan {
  type: "plan";
  ops: Operation[];
  changes: Change[];
  bridge: string;
  /** The Mirror row name written (or kept), undefined when the mirror has none. */
  row: string | undefined;
  /** The tunnel port, when the target needs one. */
  tunnelPort: string | undefined;
  /** Source ports found on the bridge. */
  attached: string[];
  /** Source ports not on the bridge (the mirror runs without them). */
  missing: string[];
  /** The output port (ovsPort target) is not on the bridge: no Mirror row. */
  missingOutput: string | undefined;
  /** Index in `ops` of the `select` of `next_cfg`, when the plan writes. */
  nextCfgIndex: number | undefined;
  /** Transient ports added to make ovs-vswitchd revalidate its datapath flows; remove once applied. */
  revalidatePorts: string[];
  /** The spec's snaplen is left to the receiver (a tunnel on the userspace datapath, see planOvsMirror). */
  snaplenDeferred: boolean;
}

function failure(code: ErrorCode, reason: string, message: string, retryable: boolean): PlanFailure {
  return { type: "failure", code, reason, message, retryable };
}

const sameSet = (a: readonly unknown[], b: readonly unknown[]) => {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
};
const sameMap = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) => {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
};

/** The tunnel Interface's `type` and `options` (as ovn-controller writes them for OVN mirrors). */
export function tunnelInterface(t: TunnelWant): { type: string; options: Record<string, string> } {
  const options: Record<string, string> = { remote_ip: t.remoteIp, key: String(t.key) };
  if (t.type === "erspan") {
    const v = t.erspanVersion ?? 1;
    options.erspan_ver = String(v);
    // Type II carries a 20-bit index; ovn-controller writes the session id there too.
    if (v === 1) options.erspan_idx = String(t.key);
    else {
      options.erspan_dir = "0";
      options.erspan_hwid = "0";
    }
  }
  return { type: t.type, options };
}

/** Every row the mirror owns in the view. */
export function ownedRows(ovs: OvsState, id: string) {
  return {
    mirrors: ovs.mirrors().filter((m) => ownerOf(m) === id),
    ports: ovs.ports().filter((p) => ownerOf(p) === id),
  };
}

/**
 * Guards of a transaction on a mirror's rows: the Mirror and Port rows the plan saw as this
 * mirror's are exactly its rows (no duplicate insert from a stale cache or a concurrent agent).
 */
function ownershipGuards(id: string, owned: ReturnType<typeof ownedRows>): Operation[] {
  return [
    op.wait(
      "Mirror",
      [["external_ids", "includes", { [OWNER_KEY]: id }]],
      ["name"],
      "==",
      owned.mirrors.map((m) => ({ name: m.name })),
      0,
    ),
    op.wait(
      "Port",
      [["external_ids", "includes", { [OWNER_KEY]: id }]],
      ["name"],
      "==",
      owned.ports.map((p) => ({ name: p.name })),
      0,
    ),
  ];
}

export function planOvsMirror(
  ovs: OvsState,
  desired: DesiredOvsMirror,
  opts: PlanOptions,
): Plan | PlanFailure {
  const id = mirrorId(desired);
  const { spec } = desired;
  const src = spec.sources;
  const rowName = ovsRowName(desired);
  const owned = ownedRows(ovs, id);
  const root = ovs.root();
  if (!root) return failure("UNAVAILABLE", "Unavailable", "the Open_vSwitch table has no row yet", true);
  const bridge = ovs.bridge(src.bridge);
  if (!bridge) {
    return failure(
      "PORT_NOT_FOUND",
      "BridgeNotFound",
      `bridge ${src.bridge} does not exist on node ${opts.node}`,
      true,
    );
  }
  if (spec.snaplen !== undefined && !opts.hasSnaplen) {
    return failure(
      "UNSUPPORTED",
      "Unsupported",
      `snaplen needs OVS Mirror.snaplen (Open vSwitch ≥ 2.15); this node's schema has no such column`,
      false,
    );
  }

  // Sources.
  const attached: PortRow[] = [];
  const missing: string[] = [];
  for (const name of src.ports ?? []) {
    const p = ovs.portOn(bridge, name);
    if (p) attached.push(p);
    else missing.push(name);
  }
  const ownedPortUuids = new Set(owned.ports.map((p) => p._uuid));
  const ownedMirrorUuids = new Set(owned.mirrors.map((m) => m._uuid));

  // Output.
  const target = spec.target;
  let missingOutput: string | undefined;
  let outputPort: PortRow | undefined;
  if (target.type === "ovsPort") {
    outputPort = ovs.portOn(bridge, target.port);
    if (!outputPort) missingOutput = target.port;
    else {
      // ovs-cni: a mirror has one consumer, and a consumer port serves one mirror. A producer
      // port may feed several mirrors (nothing to check for those).
      const taken = ovs
        .mirrorsOn(bridge)
        .find((m) => m.output_port === outputPort?._uuid && !ownedMirrorUuids.has(m._uuid));
      if (taken) {
        const by = ownerOf(taken);
        return failure(
          "ALREADY_EXISTS",
          "ConsumerTaken",
          `port ${target.port} on ${bridge.name} is already the output (consumer) of mirror ${taken.name}` +
            `${by ? ` (ovntap mirror ${by})` : ""}: a port consumes one mirror; pick another port or delete that mirror`,
          false,
        );
      }
    }
  }

  const selectsSomething = attached.length > 0 || (src.vlans?.length ?? 0) > 0;
  const wantRow = !opts.suppress && selectsSomething && missingOutput === undefined;
  const tunnel = wantRow ? opts.tunnel : undefined;

  // The 32 slots: every Mirror row on the bridge counts, ovn-controller's included.
  const othersOnBridge = bridge.mirrors.filter((u) => !ownedMirrorUuids.has(u)).length;
  const haveRowHere = owned.mirrors.some((m) => bridge.mirrors.includes(m._uuid));
  if (wantRow && !haveRowHere && othersOnBridge >= MAX_MIRRORS_PER_BRIDGE) {
    return failure(
      "BRIDGE_MIRROR_LIMIT",
      "BridgeMirrorLimit",
      `bridge ${bridge.name} already holds ${othersOnBridge} mirrors: Open vSwitch keeps at most ` +
        `${MAX_MIRRORS_PER_BRIDGE} per bridge (ofproto-dpif-mirror MAX_MIRRORS; OVN's own mirrors count too), ` +
        `so ovs-vswitchd would drop one more`,
      true,
    );
  }

  const ops: Operation[] = [];
  const changes: Change[] = [];
  const extIds = (extra: Record<string, string> = {}) => ({
    [OWNER_KEY]: id,
    [GENERATION_KEY]: String(desired.generation),
    [NODE_KEY]: opts.node,
    ...extra,
  });
  // Guards: the rows the plan saw as ours are exactly ours (no duplicate insert from a stale
  // cache or a concurrent agent), and, when a row is added, the bridge's mirror set (the limit).
  ops.push(...ownershipGuards(id, owned));
  const guards = ops.length;

  // Tunnel port: keep the owned one on this bridge, update its interface in place, else create.
  let tunnelRef: string | undefined;
  let keptTunnel: PortRow | undefined;
  if (tunnel) {
    const want = tunnelInterface(tunnel);
    keptTunnel = owned.ports.find((p) => p.name === rowName && bridge.ports.includes(p._uuid));
    if (keptTunnel) {
      tunnelRef = keptTunnel._uuid;
      const ifaces = ovs.interfacesOf(keptTunnel);
      const iface: InterfaceRow | undefined = ifaces[0];
      const ifaceIds = extIds({ [KEY_KEY]: String(tunnel.key) });
      if (
        !iface ||
        iface.type !== want.type ||
        !sameMap(iface.options, want.options) ||
        !sameMap(iface.external_ids, ifaceIds)
      ) {
        if (iface) {
          ops.push(
            op.update("Interface", [["_uuid", "==", iface._uuid]], {
              type: want.type,
              options: want.options,
              external_ids: ifaceIds,
            }),
          );
          changes.push({ table: "Interface", name: iface.name, action: "updated" });
        }
      }
      if (!sameMap(keptTunnel.external_ids, extIds())) {
        ops.push(op.update("Port", [["_uuid", "==", keptTunnel._uuid]], { external_ids: extIds() }));
      }
    } else {
      const clash = ovs.portByName(rowName);
      if (clash && !ownedPortUuids.has(clash._uuid)) {
        return failure(
          "ALREADY_EXISTS",
          "AlreadyExists",
          `an OVS port named ${rowName} exists and is not ovntap's (${ownerOf(clash) ?? "no ovntap/mirror mark"}); it is never touched`,
          false,
        );
      }
      ops.push(
        op.insert(
          "Interface",
          {
            name: rowName,
            type: want.type,
            options: want.options,
            external_ids: extIds({ [KEY_KEY]: String(tunnel.key) }),
          },
          "tiface",
        ),
        op.insert("Port", { name: rowName, interfaces: ["tiface"], external_ids: extIds() }, "tport"),
        op.mutate("Bridge", [["_uuid", "==", bridge._uuid]], [["ports", "insert", ["tport"]]]),
      );
      tunnelRef = "tport";
      changes.push({ table: "Port", name: rowName, action: "created" });
    }
  }

  // snaplen: ovs-vswitchd's userspace (netdev) datapath applies the truncation to the packet it
  // sends, which for a tunnel is the encapsulated one: the GRE packet leaves cut short with its
  // outer IP length unchanged ("truncated-ip") and the sink drops it. There the frame is sent
  // whole and the receiver (the capture exporter) cuts it; the kernel datapath truncates the
  // inner frame before encapsulating, as it should.
  const snaplenDeferred =
    spec.snaplen !== undefined && tunnel !== undefined && datapathOf(bridge) === "netdev";
  const snaplen = snaplenDeferred ? null : (spec.snaplen ?? null);

  // The Mirror row.
  let keptMirror: MirrorRow | undefined;
  if (wantRow) {
    const dir = spec.direction;
    const portUuids = attached.map((p) => p._uuid);
    const row = {
      name: rowName,
      // VLAN-only selection: every port, restricted to the VLANs (vswitch.xml Mirror select_vlan).
      select_all: (src.ports?.length ?? 0) === 0,
      select_src_port: dir === "egress" || dir === "both" ? portUuids : [],
      select_dst_port: dir === "ingress" || dir === "both" ? portUuids : [],
      select_vlan: [...(src.vlans ?? [])],
      output_port: target.type === "ovsPort" ? (outputPort?._uuid ?? null) : (tunnelRef ?? null),
      output_vlan: target.type === "ovsVlan" ? target.vlan : null,
      ...(opts.hasSnaplen ? { snaplen } : {}),
      external_ids: extIds(),
    };
    keptMirror = owned.mirrors.find((m) => bridge.mirrors.includes(m._uuid));
    if (keptMirror) {
      const m = keptMirror;
      const differs =
        m.name !== row.name ||
        m.select_all !== row.select_all ||
        !sameSet(m.select_src_port, row.select_src_port) ||
        !sameSet(m.select_dst_port, row.select_dst_port) ||
        !sameSet(m.select_vlan, row.select_vlan) ||
        m.output_port !== row.output_port ||
        m.output_vlan !== row.output_vlan ||
        (opts.hasSnaplen && m.snaplen !== snaplen) ||
        !sameMap(m.external_ids, row.external_ids);
      if (differs) {
        ops.push(op.update("Mirror", [["_uuid", "==", m._uuid]], row));
        changes.push({ table: "Mirror", name: row.name, action: "updated" });
      }
    } else {
      ops.push(
        op.wait(
          "Bridge",
          [["_uuid", "==", bridge._uuid]],
          ["mirrors"],
          "==",
          [{ mirrors: [...bridge.mirrors] }],
          0,
        ),
        op.insert("Mirror", row, "mrow"),
        op.mutate("Bridge", [["_uuid", "==", bridge._uuid]], [["mirrors", "insert", ["mrow"]]]),
      );
      changes.push({ table: "Mirror", name: row.name, action: "created" });
    }
  }

  // Everything else the mirror owns goes: Mirror rows elsewhere or duplicated, tunnel ports no
  // longer wanted. Removing the reference from the bridge deletes the row (non-root tables).
  for (const m of owned.mirrors) {
    if (m === keptMirror) continue;
    const b = ovs.bridgeOfMirror(m._uuid);
    if (b) ops.push(op.mutate("Bridge", [["_uuid", "==", b._uuid]], [["mirrors", "delete", [m._uuid]]]));
    changes.push({ table: "Mirror", name: m.name, action: "deleted" });
  }
  for (const p of owned.ports) {
    if (p === keptTunnel) continue;
    const b = ovs.bridgeOfPort(p._uuid);
    if (b) ops.push(op.mutate("Bridge", [["_uuid", "==", b._uuid]], [["ports", "delete", [p._uuid]]]));
    changes.push({ table: "Port", name: p.name, action: "deleted" });
  }

  const mirrorBridges = new Set<BridgeRow>();
  for (const c of changes) {
    if (c.table !== "Mirror") continue;
    const m = owned.mirrors.find((x) => x.name === c.name);
    const b = (m && ovs.bridgeOfMirror(m._uuid)) ?? bridge;
    mirrorBridges.add(b);
  }
  const revalidatePorts = revalidationOps(ops, mirrorBridges, changes, opts.node);

  let nextCfgIndex: number | undefined;
  if (ops.length > guards) {
    // As ovs-vsctl does without --no-wait: bump next_cfg, then wait for cur_cfg to reach it.
    ops.push(
      op.mutate("Open_vSwitch", [["_uuid", "==", root._uuid]], [["next_cfg", "+=", 1]]),
      op.select("Open_vSwitch", [["_uuid", "==", root._uuid]], ["next_cfg"]),
      op.comment(`ovntap node-agent: mirror ${id} generation ${desired.generation}`),
    );
    nextCfgIndex = ops.length - 2;
  }
  return {
    type: "plan",
    ops: ops.length > guards ? ops : [],
    changes,
    bridge: bridge.name,
    row: wantRow ? rowName : undefined,
    tunnelPort: tunnel ? rowName : undefined,
    attached: attached.map((p) => p.name),
    missing,
    missingOutput,
    nextCfgIndex,
    revalidatePorts,
    snaplenDeferred: wantRow && snaplenDeferred,
  };
}

/** Peer of the transient patch ports: a name no port has, so the port never links to anything. */
export const REVALIDATE_PEER = "ovntap-rv-none";

/**
 * Open vSwitch before 3.1.6 / 3.2.4 / 3.3.3 does not revalidate datapath flows when a mirror is
 * added, changed or removed (fixed by "ofproto-dpif-mirror: Always revalidate on mirror update",
 * FDP-788): traffic whose datapath flow already exists keeps going unmirrored (or mirrored) until
 * the flow expires, which a steady stream never lets happen (kube-ovn issue 2801). Adding a port
 * does trigger a revalidation of every flow, after the mirrors of the same reconfiguration are in
 * place. So a transaction that changes Mirror rows and adds or removes no port also adds a
 * transient patch port (no kernel device; its peer never exists) to each bridge concerned; the
 * caller removes it once ovs-vswitchd has applied the transaction.
 */
function revalidationOps(
  ops: Operation[],
  bridges: ReadonlySet<BridgeRow>,
  changes: readonly Change[],
  node: string,
): string[] {
  if (bridges.size === 0) return [];
  if (changes.some((c) => c.table === "Port" && c.action !== "updated")) return [];
  const names: string[] = [];
  for (const b of bridges) {
    const name = `ovntap-rv-${randomBytes(3).toString("hex")}`;
    const tag = names.length;
    ops.push(
      op.insert(
        "Interface",
        { name, type: "patch", options: { peer: REVALIDATE_PEER }, external_ids: { [REVALIDATE_KEY]: node } },
        `rviface${tag}`,
      ),
      op.insert(
        "Port",
        { name, interfaces: [`rviface${tag}`], external_ids: { [REVALIDATE_KEY]: node } },
        `rvport${tag}`,
      ),
      op.mutate("Bridge", [["_uuid", "==", b._uuid]], [["ports", "insert", [`rvport${tag}`]]]),
    );
    names.push(name);
  }
  return names;
}

/** Removes transient revalidation ports (by name) from whatever bridge holds them. */
export function planRevalidateCleanup(ovs: OvsState, names: readonly string[]): Operation[] {
  const ops: Operation[] = [];
  for (const name of names) {
    const p = ovs.portByName(name);
    const b = p && ovs.bridgeOfPort(p._uuid);
    if (p && b) ops.push(op.mutate("Bridge", [["_uuid", "==", b._uuid]], [["ports", "delete", [p._uuid]]]));
  }
  return ops;
}

/** Transient revalidation ports this node's agent left behind (a crash between the two transactions). */
export function leftoverRevalidatePorts(ovs: OvsState, node: string): string[] {
  return ovs
    .ports()
    .filter((p) => p.external_ids[REVALIDATE_KEY] === node)
    .map((p) => p.name);
}

/**
 * Removes every row `id` owns (any bridge); an empty `ops` when it owns none. Guarded like a
 * plan: the transaction fails if the owned rows are not what the view shows.
 */
export function planRemoval(
  ovs: OvsState,
  id: string,
  node: string,
): { ops: Operation[]; changes: Change[]; sinks: string[]; revalidatePorts: string[] } {
  const owned = ownedRows(ovs, id);
  const ops: Operation[] = [];
  const changes: Change[] = [];
  const sinks = new Set<string>();
  for (const m of owned.mirrors) {
    const b = ovs.bridgeOfMirror(m._uuid);
    if (b) ops.push(op.mutate("Bridge", [["_uuid", "==", b._uuid]], [["mirrors", "delete", [m._uuid]]]));
    changes.push({ table: "Mirror", name: m.name, action: "deleted" });
  }
  for (const p of owned.ports) {
    for (const i of ovs.interfacesOf(p)) if (i.options.remote_ip) sinks.add(i.options.remote_ip);
    const b = ovs.bridgeOfPort(p._uuid);
    if (b) ops.push(op.mutate("Bridge", [["_uuid", "==", b._uuid]], [["ports", "delete", [p._uuid]]]));
    changes.push({ table: "Port", name: p.name, action: "deleted" });
  }
  if (ops.length === 0) return { ops, changes, sinks: [...sinks], revalidatePorts: [] };
  const root = ovs.root();
  const bridges = new Set(
    owned.mirrors.map((m) => ovs.bridgeOfMirror(m._uuid)).filter((b): b is BridgeRow => b !== undefined),
  );
  const revalidatePorts = revalidationOps(ops, bridges, changes, node);
  return {
    revalidatePorts,
    ops: [
      ...ownershipGuards(id, owned),
      ...ops,
      ...(root ? [op.mutate("Open_vSwitch", [["_uuid", "==", root._uuid]], [["next_cfg", "+=", 1]])] : []),
      op.comment(`ovntap node-agent: remove mirror ${id}`),
    ],
    changes,
    sinks: [...sinks],
  };
}

/** Mirror ids owning rows on this node's OVS. */
export function ownerIds(ovs: OvsState): Set<string> {
  const ids = new Set<string>();
  for (const r of [...ovs.mirrors(), ...ovs.ports()]) {
    const o = ownerOf(r);
    if (o) ids.add(o);
  }
  return ids;
}

/** The mirror's rows as OVS holds them now, for status and the data-plane check of its tunnel. */
export function tunnelState(ovs: OvsState, portName: string): InterfaceRow | undefined {
  const p = ovs.portByName(portName);
  return p ? ovs.interfacesOf(p)[0] : undefined;
}

export type { BridgeRow };
