/**
 * Monitor update formats and the pure functions that apply them to rows.
 *
 * - `monitor` (RFC 7047 §4.1.5/§4.1.6): `<table-updates>`, each row `{old?, new?}`;
 *   `new` carries the monitored columns, `old` only those that changed.
 * - `monitor_cond` (ovsdb-server(7) §4.1.12/§4.1.14): `<table-updates2>`, each row one of
 *   `initial`, `insert`, `delete` (null) or `modify` (a diff). Initial and insert rows omit
 *   columns equal to their default. A modify row holds only changed columns, as a diff:
 *   for a column that can hold one value, the new value; for a set, the elements in exactly
 *   one of old and new (so each toggles); for a map, the pairs whose key is in exactly one
 *   of old and new (each toggles) plus, for keys in both, the new value.
 * - `update3` (ovsdb-server(7) §4.1.16) carries `<table-updates2>` after a transaction id.
 */
import { NotationError } from "../errors.js";
import { setElements, type WireRow, type WireValue } from "./notation.js";
import { columnType, isComposite, type BaseType, type ColumnType, type DatabaseSchema } from "./schema.js";
import { atomFromWire, valueFromWire, type NativeAtom, type NativeValue } from "./values.js";

export type RowUpdate2 = { initial: WireRow } | { insert: WireRow } | { delete: null } | { modify: WireRow };
export type TableUpdate2 = Readonly<Record<string, RowUpdate2>>;
export type TableUpdates2 = Readonly<Record<string, TableUpdate2>>;

export interface RowUpdate {
  old?: WireRow;
  new?: WireRow;
}
export type TableUpdate = Readonly<Record<string, RowUpdate>>;
export type TableUpdates = Readonly<Record<string, TableUpdate>>;

/** A row update of either format, classified. */
export type RowChange =
  | { kind: "initial" | "insert"; row: WireRow }
  | { kind: "modify"; diff: WireRow }
  | { kind: "replace"; row: WireRow }
  | { kind: "delete" };

/** Classifies an update2 row (`initial` / `insert` / `modify` / `delete`). */
export function classifyUpdate2(u: unknown, where: string): RowChange {
  if (u !== null && typeof u === "object") {
    const o = u as Record<string, unknown>;
    if ("initial" in o) return { kind: "initial", row: (o.initial ?? {}) as WireRow };
    if ("insert" in o) return { kind: "insert", row: (o.insert ?? {}) as WireRow };
    if ("modify" in o) return { kind: "modify", diff: (o.modify ?? {}) as WireRow };
    if ("delete" in o) return { kind: "delete" };
  }
  throw new NotationError(`${where}: malformed <row-update2> ${JSON.stringify(u)}`);
}

/** Classifies an RFC 7047 §4.1.6 `<row-update>`: new only → insert, both → replace, old only → delete. */
export function classifyUpdate(u: unknown, where: string): RowChange {
  if (u !== null && typeof u === "object") {
    const o = u as RowUpdate;
    if (o.new && !o.old) return { kind: "insert", row: o.new };
    if (o.new && o.old) return { kind: "replace", row: o.new };
    if (!o.new && o.old) return { kind: "delete" };
  }
  throw new NotationError(`${where}: malformed <row-update> ${JSON.stringify(u)}`);
}

/** Applies one column's update2 diff to its old JS value (see the module comment). */
export function applyColumnDiff(
  t: ColumnType,
  old: NativeValue | undefined,
  diff: unknown,
  where: string,
): NativeValue {
  if (!isComposite(t)) return valueFromWire(t, diff, where);
  if (t.kind === "map") {
    if (!Array.isArray(diff) || diff[0] !== "map" || !Array.isArray(diff[1])) {
      throw new NotationError(`${where}: expected a map diff, got ${JSON.stringify(diff)}`);
    }
    const out: Record<string, NativeAtom> = {
      ...((old ?? {}) as Readonly<Record<string, NativeAtom>>),
    };
    for (const pair of diff[1] as unknown[]) {
      if (!Array.isArray(pair) || pair.length !== 2) throw new NotationError(`${where}: malformed map pair`);
      const k = String(atomFromWire(t.key, pair[0], where));
      const v = atomFromWire(t.value as BaseType, pair[1], where);
      if (!Object.hasOwn(out, k)) out[k] = v;
      else if (out[k] === v) delete out[k];
      else out[k] = v;
    }
    return out;
  }
  const current = new Set<NativeAtom>((old ?? []) as readonly NativeAtom[]);
  for (const a of setElements(diff as WireValue)) {
    const x = atomFromWire(t.key, a, where);
    if (current.has(x)) current.delete(x);
    else current.add(x);
  }
  return [...current];
}

/** Applies an update2 `modify` diff row to a JS row; returns a new row. */
export function applyRowDiff(
  schema: DatabaseSchema,
  table: string,
  old: Readonly<Record<string, NativeValue>>,
  diff: WireRow,
): Record<string, NativeValue> {
  const next: Record<string, NativeValue> = { ...old };
  for (const [col, d] of Object.entries(diff)) {
    next[col] = applyColumnDiff(columnType(schema, table, col), old[col], d, `${table}.${col}`);
  }
  return next;
}
