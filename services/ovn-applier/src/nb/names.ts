/**
 * How ovntap names and marks what it writes to OVN Northbound.
 *
 *   mirrorId({ namespace: "shop", name: "web" })        // "shop/web"
 *   rowName({ namespace: "shop", name: "web" })         // "ovntap.shop.web"
 *   rowName({ namespace: "shop", name: "web" }, "in")   // "ovntap.shop.web.in"
 *
 * Row names must be unique (NB `Mirror` has a unique index on `name`) and deterministic, so
 * a retried or concurrent reconcile finds the row it made instead of making a second one.
 * Namespace and mirror name are DNS-1123 labels, which never contain '.', so joining them
 * with '.' is injective: `ovntap-a-b-c` would be both a/b-c and a-b/c, `ovntap.a.b-c` is
 * one of them only. The suffixes `.in`/`.out` (direction `both` emulated with two rows)
 * cannot collide with a mirror name for the same reason.
 *
 * ovn-controller names the OVS tunnel port of a mirror `ovn-<row name>`
 * (controller/mirror.c `create_mirror_port`). OVS puts no length limit on port names and a
 * tunnel port is no kernel netdev of its own (the kernel datapath shares one `gre_sys` /
 * `erspan_sys` vport per type; the userspace datapath needs none), so IFNAMSIZ does not
 * apply; the characters [a-z0-9.-] are safe in OVSDB, in ovs-vsctl arguments and in logs.
 *
 * Ownership is never inferred from a name: only rows whose `external_ids` carry
 * `ovntap/mirror` are ovntap's, and only those are ever updated or deleted.
 */

/** external_ids key naming the owning mirror, `<namespace>/<name>`. */
export const OWNER_KEY = "ovntap/mirror";
/** external_ids key holding the desired-state generation the row was written for. */
export const GENERATION_KEY = "ovntap/generation";
/**
 * external_ids key recording the key (Mirror.index) ovntap chose for the row, so that an
 * out-of-band edit of `index` is seen as drift and put back rather than adopted.
 */
export const KEY_KEY = "ovntap/key";
/** Prefix of every Mirror row name ovntap writes. */
export const ROW_PREFIX = "ovntap";

export interface MirrorKey {
  readonly namespace: string;
  readonly name: string;
}

/** Which half of an emulated `both` a row carries; undefined for a single row. */
export type RowPart = "in" | "out";

/** `<namespace>/<name>`: the value of OWNER_KEY, and the key of every per-mirror map here. */
export function mirrorId(ref: MirrorKey): string {
  return `${ref.namespace}/${ref.name}`;
}

/** Inverse of mirrorId, or undefined for anything else. */
export function parseMirrorId(id: string): MirrorKey | undefined {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)$/.exec(id);
  if (!m?.[1] || !m[3]) return undefined;
  return { namespace: m[1], name: m[3] };
}

/** The NB Mirror row name for one row of a mirror. */
export function rowName(ref: MirrorKey, part?: RowPart): string {
  return `${ROW_PREFIX}.${ref.namespace}.${ref.name}${part ? `.${part}` : ""}`;
}

/** The OVS port ovn-controller creates for a mirror row (controller/mirror.c). */
export function tunnelPortName(row: string): string {
  return `ovn-${row}`;
}

/** The owner of a row, or undefined for rows ovntap does not own. */
export function ownerOf(row: {
  readonly external_ids: Readonly<Record<string, string>>;
}): string | undefined {
  const v = row.external_ids[OWNER_KEY];
  return v === undefined || v === "" ? undefined : v;
}
