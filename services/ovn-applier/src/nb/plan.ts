/**
 * The reconcile plan: a pure function from (desired mirror, NB state) to what must change in
 * NB, with no I/O, so the whole decision is unit-testable and the same code decides both
 * "apply" and "is there drift?".
 *
 *   const resolved = resolveSpec(desired, { filters, types, collectorSink });
 *   const plan = planMirror(mirrorId(desired), desired.generation, resolved, view);
 *   if (plan.changed) await client.transact(NB, planOperations(plan).ops);
 *
 * Level-based (controller-runtime style): the plan compares the whole desired state with the
 * whole observed state every time, so a retried, duplicated or reordered job converges on
 * the same rows. Only rows whose external_ids name this mirror are ever updated or deleted;
 * an unowned row in the way is an error, never a target.
 */
import type { LabelSelector, MirrorSpec } from "@ovntap/contracts";
import type { NbLogicalSwitchPort, NbMirror } from "@ovntap/ovsdb";
import { ReconcileError } from "./errors.js";
import { canonicalSink, FIRST_ALLOCATED_KEY, keySpace, lowestFree } from "./keys.js";
import {
  GENERATION_KEY,
  KEY_KEY,
  OWNER_KEY,
  ownerOf,
  rowName,
  type MirrorKey,
  type RowPart,
} from "./names.js";

/** A mirror as the store holds it, reduced to what NB reconcile needs. */
export interface DesiredMirror extends MirrorKey {
  readonly generation: number;
  readonly spec: MirrorSpec;
}

/**
 * NB Mirror row. `filter` and `type` are typed by the pinned 23.03 schema; newer servers
 * add values ("both", "local", "lport"), so they are read as plain strings here.
 */
export type MirrorRow = Pick<NbMirror, "_uuid" | "name" | "sink" | "index" | "external_ids"> & {
  readonly filter: string;
  readonly type: string;
};
export type PortRow = Pick<NbLogicalSwitchPort, "_uuid" | "name" | "mirror_rules">;
export interface GlobalRow {
  readonly nb_cfg: number;
  readonly hv_cfg: number;
}

/** Read access to NB that the planner needs; NbState implements it over the monitor cache. */
export interface NbView {
  mirrors(): Iterable<MirrorRow>;
  port(name: string): PortRow | undefined;
  /** Ports whose mirror_rules contain this Mirror row. */
  portsReferencing(mirrorUuid: string): readonly PortRow[];
  global(): GlobalRow | undefined;
  // Indexes over mirrors() (NbState keeps them); without them the planner scans every row.
  /** The Mirror row with this name (names are unique in NB). */
  mirrorByName?(name: string): MirrorRow | undefined;
  /** Rows whose external_ids name this ovntap mirror id. */
  mirrorsOwnedBy?(id: string): Iterable<MirrorRow>;
  /** Rows towards this sink, given and compared in canonical form (canonicalSink). */
  mirrorsTowards?(sink: string): Iterable<MirrorRow>;
}

/** A view over plain arrays (unit tests, one-off checks). */
export function arrayView(state: {
  mirrors: readonly MirrorRow[];
  ports: readonly PortRow[];
  global?: GlobalRow;
}): NbView {
  return {
    mirrors: () => state.mirrors,
    port: (name) => state.ports.find((p) => p.name === name),
    portsReferencing: (uuid) => state.ports.filter((p) => p.mirror_rules.includes(uuid)),
    global: () => state.global,
  };
}

export interface PlanOptions {
  /** Values the live schema's Mirror.filter accepts (capabilities). */
  readonly filters: readonly string[];
  /** Values the live schema's Mirror.type accepts. */
  readonly types: readonly string[];
  /** The capture exporter's transport address, for `collector` targets (COLLECTOR_SINK). */
  readonly collectorSink?: string | undefined;
  /** Pods and sink pods from Kubernetes (KUBERNETES); without it selectors and pod sinks are UNSUPPORTED. */
  readonly kubernetes?: KubeView | undefined;
}

/**
 * What resolving a spec reads from Kubernetes: the applier's informer caches, read synchronously
 * so that planning stays a pure function of what they hold right now.
 */
export interface KubeView {
  /** Both caches (pods, ips.kubeovn.io) have been listed once. */
  readonly synced: boolean;
  /** Kube-OVN ports (`<pod>.<namespace>`) of the scheduled, live pods `selector` selects, sorted. */
  portsFor(namespace: string, selector: LabelSelector): readonly string[];
  /** A sink pod's address from ips.kubeovn.io (canonical IP), or undefined when Kube-OVN has none. */
  sinkAddress(pod: { namespace: string; name: string; provider?: string | undefined }): string | undefined;
}

/** The setting that turns Kubernetes on, for messages. */
const KUBERNETES_HINT =
  "set KUBERNETES=in-cluster on the ovn-applier (or KUBERNETES=kubeconfig with KUBECONFIG)";

function kubeOrThrow(options: PlanOptions, what: string, instead: string): KubeView {
  const kube = options.kubernetes;
  if (!kube) {
    throw unsupported(
      `${what} need Kubernetes, which is off on this ovn-applier: ${KUBERNETES_HINT}; or ${instead}`,
    );
  }
  if (!kube.synced) {
    throw new ReconcileError(
      "UNAVAILABLE",
      `${what} need the pod and ips.kubeovn.io caches, which have not been listed from the Kubernetes API yet; retrying`,
      { retryable: true },
    );
  }
  return kube;
}

export interface DesiredRow {
  readonly name: string;
  readonly filter: string;
  readonly part: RowPart | undefined;
}

/** What a spec means for OVN NB, or that it is not this service's to apply. */
export type Resolution =
  | {
      readonly kind: "ovn";
      readonly type: string;
      /** Canonical IP text. */
      readonly sink: string;
      readonly requestedKey: number | undefined;
      readonly rows: readonly DesiredRow[];
      /** Logical switch port names, deduplicated, in spec order. */
      readonly ports: readonly string[];
    }
  | { readonly kind: "foreign"; readonly reason: string };

const unsupported = (message: string) => new ReconcileError("UNSUPPORTED", message);

/**
 * Maps a spec onto NB: sources → logical switch ports, direction → Mirror rows and filters,
 * target → type, sink and requested key. Throws ReconcileError (terminal) for what this
 * applier cannot do, and a retryable one while the Kubernetes caches are not listed yet or a
 * sink pod has no address.
 */
export function resolveSpec(desired: DesiredMirror, options: PlanOptions): Resolution {
  const { spec, namespace } = desired;
  let ports: string[];
  switch (spec.sources.type) {
    case "pods":
      // Kube-OVN names a pod's logical switch port `<pod>.<namespace>`.
      ports = spec.sources.names.map((pod) => `${pod}.${namespace}`);
      break;
    case "ports":
      ports = [...spec.sources.names];
      break;
    case "selector": {
      // The pods selected now; the applier reconciles again whenever that set changes. A
      // selector that selects nothing yet is not an error (see the applier's NoMatchingPods).
      const kube = kubeOrThrow(options, "selector sources", "list the pods with sources.type=pods");
      ports = [...kube.portsFor(namespace, spec.sources)];
      break;
    }
    case "ovs":
      // OVS-level mirrors are the node agent's (queue node.<node>); NB holds nothing for them.
      return { kind: "foreign", reason: "ovs sources are applied by the node agent" };
  }

  let type: string;
  let sinkText: string;
  let requestedKey: number | undefined;
  const target = spec.target;
  switch (target.type) {
    case "gre":
    case "erspan": {
      if (target.type === "erspan" && target.version === 2) {
        throw unsupported("OVN mirrors emit ERSPAN type II only (ovn-controller sets erspan_ver=1)");
      }
      if (typeof target.sink === "string") {
        sinkText = target.sink;
      } else {
        // The receiving pod's address from Kube-OVN's ips.kubeovn.io; the applier reconciles
        // again when it changes. Until Kube-OVN has one the mirror waits (retryable): its rows,
        // if any, stay as they were.
        const pod = target.sink.pod;
        const kube = kubeOrThrow(
          options,
          "pod sinks (resolved through Kube-OVN's ips.kubeovn.io)",
          "give the sink's IP address",
        );
        const address = kube.sinkAddress(pod);
        if (address === undefined) {
          const provider = pod.provider ? ` on provider ${pod.provider}` : "";
          throw new ReconcileError(
            "NOT_FOUND",
            `sink pod ${pod.namespace}/${pod.name} has no address${provider} in ips.kubeovn.io yet (is it running on a Kube-OVN network?); the mirror is applied when it has one`,
            { retryable: true },
          );
        }
        sinkText = address;
      }
      type = target.type;
      requestedKey = target.type === "gre" ? target.key : target.sessionId;
      break;
    }
    case "collector":
      if (!options.collectorSink) {
        throw unsupported(
          "collector targets need the capture exporter's transport address: set COLLECTOR_SINK on the ovn-applier",
        );
      }
      type = "gre";
      sinkText = options.collectorSink;
      break;
    case "ovsPort":
    case "ovsVlan":
      throw new ReconcileError(
        "INVALID_REQUEST",
        `target ${target.type} outputs on an OVS bridge and needs an ovs source`,
      );
  }
  const sink = canonicalSink(sinkText);
  if (sink === undefined)
    throw new ReconcileError("INVALID_REQUEST", `sink ${sinkText} is not an IP address`);
  if (!options.types.includes(type)) {
    throw unsupported(`this OVN's Mirror.type accepts ${options.types.join(", ") || "nothing"}, not ${type}`);
  }

  const single = (filter: string): DesiredRow[] => [{ name: rowName(desired), filter, part: undefined }];
  let rows: DesiredRow[];
  switch (spec.direction) {
    case "ingress":
      rows = single("to-lport"); // towards the pod
      break;
    case "egress":
      rows = single("from-lport"); // what the pod sends
      break;
    case "both":
      rows = options.filters.includes("both")
        ? single("both")
        : [
            // OVN < 23.06: two rows, each its own tunnel, hence its own key.
            { name: rowName(desired, "out"), filter: "from-lport", part: "out" },
            { name: rowName(desired, "in"), filter: "to-lport", part: "in" },
          ];
      break;
  }
  for (const r of rows) {
    if (!options.filters.includes(r.filter)) {
      throw unsupported(`this OVN's Mirror.filter accepts ${options.filters.join(", ")}, not ${r.filter}`);
    }
  }
  if (rows.length > 1 && requestedKey !== undefined) {
    throw unsupported(
      `direction both on this OVN takes two Mirror rows (Mirror.filter has no "both" before OVN 23.06), and OVS refuses two tunnels to ${sink} with the same key ${requestedKey}; leave the key out to get two allocated keys, or mirror one direction`,
    );
  }
  return { kind: "ovn", type, sink, requestedKey, rows, ports: [...new Set(ports)] };
}

export type RowAction = "create" | "update" | "keep";

export interface PlannedRow {
  readonly name: string;
  readonly part: RowPart | undefined;
  readonly filter: string;
  readonly type: string;
  readonly sink: string;
  readonly index: number;
  readonly externalIds: Readonly<Record<string, string>>;
  readonly action: RowAction;
  /** The existing row's UUID (update, keep). */
  readonly uuid: string | undefined;
  /** How mutations refer to the row: its UUID, or the insert's uuid-name. */
  readonly ref: string;
  readonly key: "kept" | "allocated" | "requested";
  /** Columns an update changes. */
  readonly changed: readonly string[];
}

/** One change the transaction makes, as drift_repaired reports it. */
export interface Change {
  readonly table: "Mirror" | "Logical_Switch_Port";
  readonly name: string;
  readonly action: "created" | "updated" | "deleted";
  readonly detail?: string;
}

/**
 * Optimistic concurrency for keys: the rows towards one sink spelling, projected on
 * [name, index], as we saw them. A `wait` with timeout 0 makes the transaction fail if any
 * writer changed that set in between (RFC 7047 §5.2.6).
 */
export interface KeyGuard {
  readonly sink: string;
  readonly rows: readonly { readonly name: string; readonly index: number }[];
}

export interface Plan {
  readonly id: string;
  /** 0 for a removal. */
  readonly generation: number;
  readonly rows: readonly PlannedRow[];
  readonly deletes: readonly MirrorRow[];
  readonly attach: readonly { readonly port: PortRow; readonly refs: readonly string[] }[];
  readonly detach: readonly { readonly port: PortRow; readonly uuids: readonly string[] }[];
  readonly guards: readonly KeyGuard[];
  /** Desired ports that exist in NB. */
  readonly ports: readonly string[];
  /** Desired ports NB does not have (yet). */
  readonly missingPorts: readonly string[];
  readonly changes: readonly Change[];
  readonly keysAllocated: number;
  /** Whether a transaction is needed. */
  readonly changed: boolean;
  readonly type: string | undefined;
  readonly sink: string | undefined;
}

/** Rows owned by `id`. */
export function ownedRows(view: NbView, id: string): MirrorRow[] {
  if (view.mirrorsOwnedBy) return [...view.mirrorsOwnedBy(id)];
  const out: MirrorRow[] = [];
  for (const r of view.mirrors()) if (ownerOf(r) === id) out.push(r);
  return out;
}

function sameMap(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/**
 * The plan that makes NB match `resolved` (or, with `undefined`, removes everything `id`
 * owns). Throws ReconcileError: ALREADY_EXISTS when an unowned row holds one of our names,
 * KEY_IN_USE for a requested key used towards the sink, KEY_SPACE_EXHAUSTED.
 *
 * `reserved`: keys towards the resolved sink used outside NB — the node agents' own tunnel
 * ports (their claims in Redis, contracts `nodeKeyClaimsKey`) — by key, with who holds it.
 * They are avoided like NB rows' keys (OVS refuses the second tunnel either way), and a row
 * whose key an agent holds moves to a free one.
 */
export function planMirror(
  id: string,
  generation: number,
  resolved: Resolution | undefined,
  view: NbView,
  reserved?: ReadonlyMap<number, string>,
): Plan {
  const owned = ownedRows(view, id);
  const ovn = resolved?.kind === "ovn" ? resolved : undefined;
  const desiredRows = ovn?.rows ?? [];
  const desiredNames = new Set(desiredRows.map((r) => r.name));
  let scanned: MirrorRow[] | undefined;
  const all = () => (scanned ??= [...view.mirrors()]);
  let names: Map<string, MirrorRow> | undefined;
  const byName = (name: string) =>
    view.mirrorByName
      ? view.mirrorByName(name)
      : (names ??= new Map(all().map((r) => [r.name, r]))).get(name);
  const changes: Change[] = [];

  for (const r of desiredRows) {
    const existing = byName(r.name);
    if (existing && ownerOf(existing) !== id) {
      const owner = ownerOf(existing);
      throw new ReconcileError(
        "ALREADY_EXISTS",
        `NB Mirror ${r.name} exists and belongs to ${owner ? `ovntap mirror ${owner}` : "someone else (no ovntap/mirror external_id)"}; ovntap never touches rows it does not own: delete or rename that row`,
      );
    }
  }

  const rows: PlannedRow[] = [];
  const guards: KeyGuard[] = [];
  let keysAllocated = 0;
  if (ovn) {
    const sinkRows = view.mirrorsTowards
      ? [...view.mirrorsTowards(ovn.sink)]
      : all().filter((r) => canonicalSink(r.sink) === ovn.sink);
    const space = keySpace(ovn.type);
    const chosen = new Set<number>();
    let guarded = false;
    desiredRows.forEach((d, i) => {
      const existing = byName(d.name);
      let index: number;
      let key: PlannedRow["key"];
      const inSpace = (k: number | undefined): k is number =>
        k !== undefined && Number.isSafeInteger(k) && k >= space.min && k <= space.max;
      // The key this row should have: the requested one, else the one allocated to it
      // before (recorded in external_ids, so an out-of-band edit of `index` is drift and is
      // put back), else whatever it has.
      const recorded = existing?.external_ids[KEY_KEY];
      const preferred =
        ovn.requestedKey ??
        (recorded !== undefined && /^\d+$/.test(recorded) ? Number(recorded) : existing?.index);
      // A key is part of what the user was told (status.key): the receivers at the sink are
      // set up with it. So a row keeps the key it holds when a row ovntap does not own takes
      // the same key towards the same sink by hand: moving ours would silently cut our
      // receivers off, and which of the two tunnels OVS keeps is then reported by the node
      // agents (Degraded with OVS's own text) for a person to settle. Only a row still to get
      // its key there avoids foreign keys.
      const holds =
        existing !== undefined && canonicalSink(existing.sink) === ovn.sink && existing.index === preferred;
      // Keys towards this sink held by any other row (ours or not, stale or not: a row
      // deleted in this transaction may still hold its tunnel on a chassis), by a node agent's
      // tunnel (reserved), or given to this plan's earlier rows. Keys of rows ovntap does not
      // own count unless the row holds its key already. Checked for the one key this row
      // should have without building the whole set: the periodic drift check plans every
      // mirror, and a sink may have thousands of rows.
      const usedByOthers = (k: number, countForeign: boolean): boolean => {
        if (chosen.has(k) || reserved?.has(k)) return true;
        for (const r of sinkRows) {
          if (r.index !== k || r.name === d.name) continue;
          if (countForeign || r.external_ids[OWNER_KEY] !== undefined) return true;
        }
        return false;
      };
      if (inSpace(preferred) && !usedByOthers(preferred, !holds)) {
        index = preferred;
        key = ovn.requestedKey !== undefined ? "requested" : "kept";
      } else if (ovn.requestedKey !== undefined) {
        const requested = ovn.requestedKey;
        let holder = reserved?.get(requested);
        for (const r of sinkRows) {
          if (r.name !== d.name && r.index === requested) holder = `NB Mirror ${r.name}`;
        }
        throw new ReconcileError(
          "KEY_IN_USE",
          `${ovn.type === "erspan" ? "ERSPAN session id" : "GRE key"} ${requested} is already used towards ${ovn.sink}${holder ? ` by ${holder}` : ""}, and OVS refuses a second tunnel to one sink with the same key; choose another or leave it out to have one allocated`,
        );
      } else {
        // A new key for this row: every key in use there is out, foreign ones included.
        const used = new Set(chosen);
        for (const k of reserved?.keys() ?? []) used.add(k);
        for (const r of sinkRows) if (r.name !== d.name) used.add(r.index);
        const free = lowestFree(used, { min: FIRST_ALLOCATED_KEY, max: space.max });
        if (free === undefined) {
          throw new ReconcileError(
            "KEY_SPACE_EXHAUSTED",
            `no free ${ovn.type === "erspan" ? `ERSPAN session id (${FIRST_ALLOCATED_KEY}-${space.max})` : "GRE key"} towards ${ovn.sink}: every one is used by a Mirror row or a node agent's tunnel; delete some or use another sink`,
          );
        }
        index = free;
        key = "allocated";
        keysAllocated++;
      }
      // A key that is new towards this sink must be guarded against concurrent allocators;
      // one this row already holds there is ours (every other writer sees it).
      if (!(existing && canonicalSink(existing.sink) === ovn.sink && existing.index === index))
        guarded = true;
      chosen.add(index);

      const externalIds = {
        ...existing?.external_ids,
        [OWNER_KEY]: id,
        [GENERATION_KEY]: String(generation),
        [KEY_KEY]: String(index),
      };
      const changed: string[] = [];
      if (existing) {
        if (existing.filter !== d.filter) changed.push("filter");
        if (existing.sink !== ovn.sink) changed.push("sink");
        if (existing.type !== ovn.type) changed.push("type");
        if (existing.index !== index) changed.push("index");
        if (!sameMap(existing.external_ids, externalIds)) changed.push("external_ids");
      }
      const action: RowAction = !existing ? "create" : changed.length > 0 ? "update" : "keep";
      rows.push({
        name: d.name,
        part: d.part,
        filter: d.filter,
        type: ovn.type,
        sink: ovn.sink,
        index,
        externalIds,
        action,
        uuid: existing?._uuid,
        ref: existing?._uuid ?? `row${i}`,
        key,
        changed,
      });
      if (action === "create") changes.push({ table: "Mirror", name: d.name, action: "created" });
      if (action === "update")
        changes.push({ table: "Mirror", name: d.name, action: "updated", detail: changed.join(",") });
    });
    if (guarded) {
      // One wait per spelling of the sink seen in NB, and one for ours (maybe no row yet):
      // a concurrent allocator writes the canonical spelling, so that wait catches it.
      const spellings = new Set([ovn.sink, ...sinkRows.map((r) => r.sink)]);
      for (const s of spellings) {
        guards.push({
          sink: s,
          rows: sinkRows.filter((r) => r.sink === s).map((r) => ({ name: r.name, index: r.index })),
        });
      }
    }
  }

  const deletes = owned.filter((r) => !desiredNames.has(r.name));
  for (const r of deletes) changes.push({ table: "Mirror", name: r.name, action: "deleted" });

  // Attachments. Desired rows are referenced from every desired port; any owned row left
  // in any other port's mirror_rules (or a stale row in a desired port) is detached.
  const keptUuids = new Set(rows.flatMap((r) => (r.uuid ? [r.uuid] : [])));
  const ownedUuids = new Set(owned.map((r) => r._uuid));
  const attach: { port: PortRow; refs: string[] }[] = [];
  const detach = new Map<string, { port: PortRow; uuids: string[] }>();
  const present: string[] = [];
  const missingPorts: string[] = [];
  const wanted = new Set(ovn?.ports ?? []);
  for (const name of ovn?.ports ?? []) {
    const port = view.port(name);
    if (!port) {
      missingPorts.push(name);
      continue;
    }
    present.push(name);
    const refs = rows
      .filter((r) => r.uuid === undefined || !port.mirror_rules.includes(r.uuid))
      .map((r) => r.ref);
    if (refs.length > 0) attach.push({ port, refs });
  }
  for (const u of ownedUuids) {
    for (const port of view.portsReferencing(u)) {
      if (wanted.has(port.name) && keptUuids.has(u)) continue;
      const d = detach.get(port._uuid) ?? { port, uuids: [] };
      d.uuids.push(u);
      detach.set(port._uuid, d);
    }
  }
  const touched = new Set([
    ...attach.map((a) => a.port.name),
    ...[...detach.values()].map((d) => d.port.name),
  ]);
  for (const name of touched) changes.push({ table: "Logical_Switch_Port", name, action: "updated" });

  const changed = rows.some((r) => r.action !== "keep") || deletes.length > 0 || touched.size > 0;
  return {
    id,
    generation,
    rows,
    deletes,
    attach,
    detach: [...detach.values()],
    guards,
    ports: present,
    missingPorts,
    changes,
    keysAllocated,
    changed,
    type: ovn?.type,
    sink: ovn?.sink,
  };
}
