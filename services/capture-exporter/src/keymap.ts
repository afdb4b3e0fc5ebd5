/**
 * Which mirror a tunnel packet belongs to: (outer destination = the sink, tunnel type, GRE key or
 * ERSPAN session id) → mirror. Built from the store's mirrors — `status.sink` and
 * `status.tunnels` (every tunnel, two for an emulated `both`), falling back to `status.key` /
 * `status.sessionId` for statuses written before tunnels existed.
 *
 *     const { bindings, conflicts } = bindingsFromStore(await store.listMirrors());
 *     const index = new TunnelIndex<MirrorState>();
 *     for (const b of bindings) for (const t of b.tunnels) index.add(b.sink, t.type, t.index, stateOf(b));
 *     index.get(4, dst, 0, 0, 0, ENCAP_GRE, 42);     // the state, or undefined
 *
 * Sinks are compared in canonical form (an IPv4-mapped IPv6 sink is its IPv4 address, as OVS
 * tunnels to it). Mirrors in a terminal phase (Expired, Deleted) are left out: their packets are
 * nobody's, and go to `_unknown`.
 */
import { canonicalIp, TERMINAL_PHASES } from "@ovntap/contracts";
import type { MirrorFilter, MirrorTunnel } from "@ovntap/contracts";
import { parseIp } from "@ovntap/packet";
import type { StoredMirror } from "@ovntap/store";
import { ENCAP_GRE } from "./tunnel.js";

/** What the exporter needs of one mirror. */
export interface MirrorBinding {
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  /** The request behind the current generation (events carry it). */
  readonly requestId: string;
  /** Canonical sink address; absent for a mirror attributed by configuration (plain-Ethernet mode). */
  readonly sink?: string | undefined;
  readonly tunnels: readonly Pick<MirrorTunnel, "type" | "index">[];
  readonly filter?: MirrorFilter | undefined;
  readonly snaplen?: number | undefined;
}

export interface BindingConflict {
  readonly sink: string;
  readonly type: "gre" | "erspan";
  readonly index: number;
  /** `<ns>/<name>` of the mirror that keeps the tunnel, and of the one left without it. */
  readonly kept: string;
  readonly dropped: string;
}

export const mirrorKey = (namespace: string, name: string): string => `${namespace}/${name}`;

/** The tunnels a status names: `tunnels`, else the first key / session id it carries. */
function tunnelsOf(m: StoredMirror): Pick<MirrorTunnel, "type" | "index">[] {
  const s = m.status;
  if (s.tunnels !== undefined && s.tunnels.length > 0)
    return s.tunnels.map((t) => ({ type: t.type, index: t.index }));
  if (s.key !== undefined) return [{ type: "gre", index: s.key }];
  if (s.sessionId !== undefined) return [{ type: "erspan", index: s.sessionId }];
  return [];
}

/**
 * The mirrors that can carry packets now: a sink and at least one tunnel in their status, not
 * Expired or Deleted. Two mirrors claiming one tunnel (the applier never allocates that; a
 * hand-edited store could) keep the first by `<ns>/<name>`; the other is reported in `conflicts`.
 */
export function bindingsFromStore(mirrors: readonly StoredMirror[]): {
  bindings: MirrorBinding[];
  conflicts: BindingConflict[];
} {
  const sorted = [...mirrors].sort((a, b) =>
    mirrorKey(a.record.spec.namespace, a.record.spec.name).localeCompare(
      mirrorKey(b.record.spec.namespace, b.record.spec.name),
    ),
  );
  const claimed = new Map<string, string>();
  const bindings: MirrorBinding[] = [];
  const conflicts: BindingConflict[] = [];
  for (const m of sorted) {
    if (TERMINAL_PHASES.includes(m.status.phase)) continue;
    const sink = m.status.sink === undefined ? undefined : canonicalIp(m.status.sink);
    if (sink === undefined) continue;
    const id = mirrorKey(m.record.spec.namespace, m.record.spec.name);
    const tunnels: Pick<MirrorTunnel, "type" | "index">[] = [];
    for (const t of tunnelsOf(m)) {
      const k = `${sink} ${t.type} ${t.index}`;
      const owner = claimed.get(k);
      if (owner !== undefined && owner !== id) {
        conflicts.push({ sink, type: t.type, index: t.index, kept: owner, dropped: id });
        continue;
      }
      claimed.set(k, id);
      tunnels.push(t);
    }
    if (tunnels.length === 0) continue;
    bindings.push({
      namespace: m.record.spec.namespace,
      name: m.record.spec.name,
      generation: m.record.generation,
      requestId: m.record.requestId,
      sink,
      tunnels,
      filter: m.record.spec.filter,
      snaplen: m.record.spec.snaplen,
    });
  }
  return { bindings, conflicts };
}

class Tunnels<T> {
  readonly gre = new Map<number, T>();
  readonly erspan = new Map<number, T>();
}

function v6Key(d0: number, d1: number, d2: number, d3: number): string {
  return `${d0}:${d1}:${d2}:${d3}`;
}

/** (sink, tunnel type, key) → T, looked up from a TunnelParser's fields without building strings for IPv4. */
export class TunnelIndex<T> {
  readonly #v4 = new Map<number, Tunnels<T>>();
  readonly #v6 = new Map<string, Tunnels<T>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(sink: string, type: "gre" | "erspan", index: number, value: T): void {
    const canonical = canonicalIp(sink);
    const bytes = canonical === undefined ? undefined : parseIp(canonical);
    if (bytes === undefined) throw new TypeError(`sink ${JSON.stringify(sink)} is not an IP address`);
    let t: Tunnels<T> | undefined;
    if (bytes.length === 4) {
      const k = bytes.readUInt32BE(0);
      t = this.#v4.get(k);
      if (t === undefined) this.#v4.set(k, (t = new Tunnels<T>()));
    } else {
      const k = v6Key(
        bytes.readUInt32BE(0),
        bytes.readUInt32BE(4),
        bytes.readUInt32BE(8),
        bytes.readUInt32BE(12),
      );
      t = this.#v6.get(k);
      if (t === undefined) this.#v6.set(k, (t = new Tunnels<T>()));
    }
    (type === "gre" ? t.gre : t.erspan).set(index, value);
    this.#size++;
  }

  /** `kind` is ENCAP_GRE or one of the ERSPAN kinds (both look up `erspan` tunnels). */
  get(
    family: 4 | 6,
    d0: number,
    d1: number,
    d2: number,
    d3: number,
    kind: number,
    id: number,
  ): T | undefined {
    const t = family === 4 ? this.#v4.get(d0) : this.#v6.get(v6Key(d0, d1, d2, d3));
    if (t === undefined) return undefined;
    return (kind === ENCAP_GRE ? t.gre : t.erspan).get(id);
  }
}
