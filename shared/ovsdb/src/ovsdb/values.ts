/**
 * Conversion between the wire notation (notation.ts) and plain JS values, driven by the
 * column's schema type. The JS form is chosen to be JSON-serialisable (it goes into logs,
 * Redis and NATS events unchanged) and natural to write as an object literal:
 *
 *   | schema type                         | JS value                          |
 *   |-------------------------------------|-----------------------------------|
 *   | integer, real                       | number                            |
 *   | boolean                             | boolean                           |
 *   | string                              | string (enum: the literal union)  |
 *   | uuid                                | string                            |
 *   | optional (min 0, max 1)             | the atom, or null when empty      |
 *   | set (max > 1, or min 0 … )          | array                             |
 *   | map                                 | record (object)                   |
 *
 * Decisions:
 * - uuids are strings. When writing, a string in a uuid column that is a UUID becomes
 *   `["uuid", s]`, and any other string must be an RFC 7047 `<id>` and becomes
 *   `["named-uuid", s]` — an `<id>` cannot contain '-', so the two never collide. This is
 *   libovsdb's rule too. An explicit `["uuid", s]` / `["named-uuid", s]` atom is also accepted.
 * - map keys are the key atom's text: for integer keys `{ 5: "x" }` means key 5; the column's
 *   key type turns the text back into the atom on the way out.
 * - integers are JS numbers: exact up to 2^53, as JSON.parse gives them anyway.
 * - when writing, a bare atom is accepted for a set (a one-element set) and a one-element
 *   array for an optional; a JS Map is accepted for a map column.
 */
import { NotationError } from "../errors.js";
import {
  ZERO_UUID,
  isId,
  isUuidString,
  isWireNamedUuid,
  isWireUuid,
  setElements,
  uuid,
  namedUuid,
  type WireAtom,
  type WireRow,
  type WireValue,
} from "./notation.js";
import { columnType, type BaseType, type ColumnType, type DatabaseSchema } from "./schema.js";

export type NativeAtom = string | number | boolean;
export type NativeValue = NativeAtom | null | readonly NativeAtom[] | Readonly<Record<string, NativeAtom>>;
export type NativeRow = Readonly<Record<string, NativeValue>>;

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** A JS atom → its wire atom, checked against the base type. */
export function atomToWire(base: BaseType, v: unknown, where: string): WireAtom {
  switch (base.type) {
    case "integer":
      if (typeof v === "number" && Number.isInteger(v)) return v;
      break;
    case "real":
      if (typeof v === "number" && Number.isFinite(v)) return v;
      break;
    case "boolean":
      if (typeof v === "boolean") return v;
      break;
    case "string":
      if (typeof v === "string") return v;
      break;
    case "uuid":
      if (typeof v === "string") {
        if (isUuidString(v)) return uuid(v);
        if (isId(v)) return namedUuid(v);
        throw new NotationError(
          `${where}: "${v}" is neither a UUID nor a uuid-name ([_a-zA-Z][_a-zA-Z0-9]*)`,
        );
      }
      if (isWireUuid(v) || isWireNamedUuid(v)) return v;
      break;
  }
  throw new NotationError(`${where}: expected ${base.type}, got ${describe(v)}`);
}

/** A wire atom → its JS atom; uuids become their string. */
export function atomFromWire(base: BaseType, a: unknown, where: string): NativeAtom {
  if (base.type === "uuid") {
    if (isWireUuid(a) || isWireNamedUuid(a)) return a[1];
  } else if (base.type === "integer" || base.type === "real") {
    if (typeof a === "number") return a;
  } else if (typeof a === base.type) {
    return a as string | boolean;
  }
  throw new NotationError(`${where}: expected a ${base.type} atom, got ${describe(a)}`);
}

function keyFromText(base: BaseType, k: string, where: string): WireAtom {
  switch (base.type) {
    case "integer":
    case "real": {
      const n = Number(k);
      if (k.trim() === "" || Number.isNaN(n))
        throw new NotationError(`${where}: map key "${k}" is not a number`);
      return atomToWire(base, n, where);
    }
    case "boolean":
      if (k === "true" || k === "false") return k === "true";
      throw new NotationError(`${where}: map key "${k}" is not a boolean`);
    default:
      return atomToWire(base, k, where);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Map);
}

/** A JS value → its wire value, for a column of type `t`. `where` names the column in errors. */
export function valueToWire(t: ColumnType, v: unknown, where: string): WireValue {
  switch (t.kind) {
    case "scalar":
      return atomToWire(t.key, v, where);
    case "optional":
      if (v === null || v === undefined) return ["set", []];
      if (Array.isArray(v)) {
        if (v.length > 1) throw new NotationError(`${where}: holds at most one value, got ${v.length}`);
        return ["set", v.map((a) => atomToWire(t.key, a, where))];
      }
      return atomToWire(t.key, v, where);
    case "set":
      if (Array.isArray(v)) return ["set", v.map((a) => atomToWire(t.key, a, where))];
      return ["set", [atomToWire(t.key, v, where)]];
    case "map": {
      const value = t.value as BaseType;
      const entries: [unknown, unknown][] =
        v instanceof Map
          ? [...(v as Map<unknown, unknown>).entries()]
          : isPlainObject(v)
            ? Object.entries(v)
            : (() => {
                throw new NotationError(`${where}: expected a map (object), got ${describe(v)}`);
              })();
      return [
        "map",
        entries.map(([k, val]): [WireAtom, WireAtom] => [
          typeof k === "string" ? keyFromText(t.key, k, where) : atomToWire(t.key, k, where),
          atomToWire(value, val, `${where}[${String(k)}]`),
        ]),
      ];
    }
  }
}

/** The elements of a set-typed mutation or condition value given as JS: array or single atom. */
export function setToWire(t: ColumnType, v: unknown, where: string): WireValue {
  return Array.isArray(v)
    ? ["set", v.map((a) => atomToWire(t.key, a, where))]
    : ["set", [atomToWire(t.key, v, where)]];
}

/** A wire value → its JS value, for a column of type `t`. */
export function valueFromWire(t: ColumnType, w: unknown, where: string): NativeValue {
  switch (t.kind) {
    case "scalar": {
      if (Array.isArray(w) && w[0] === "set") {
        const els = setElements(w as unknown as WireValue);
        if (els.length !== 1) throw new NotationError(`${where}: expected one value, got ${els.length}`);
        return atomFromWire(t.key, els[0], where);
      }
      return atomFromWire(t.key, w, where);
    }
    case "optional": {
      const els = setElements(w as WireValue);
      return els.length === 0 ? null : atomFromWire(t.key, els[0], where);
    }
    case "set":
      return setElements(w as WireValue).map((a) => atomFromWire(t.key, a, where));
    case "map": {
      if (!Array.isArray(w) || w[0] !== "map" || !Array.isArray(w[1])) {
        throw new NotationError(`${where}: expected ["map", …], got ${describe(w)}`);
      }
      const out: Record<string, NativeAtom> = {};
      for (const pair of w[1] as unknown[]) {
        if (!Array.isArray(pair) || pair.length !== 2) {
          throw new NotationError(`${where}: malformed map pair ${describe(pair)}`);
        }
        out[String(atomFromWire(t.key, pair[0], where))] = atomFromWire(t.value as BaseType, pair[1], where);
      }
      return out;
    }
  }
}

/** The default value of a type (RFC 7047 §5.2.1), which update2 rows omit (ovsdb-server(7) §4.1.14). */
export function defaultValue(t: ColumnType): NativeValue {
  switch (t.kind) {
    case "scalar":
      switch (t.key.type) {
        case "integer":
        case "real":
          return 0;
        case "boolean":
          return false;
        case "string":
          return "";
        case "uuid":
          return ZERO_UUID;
      }
      break;
    case "optional":
      return null;
    case "set":
      return [];
    case "map":
      return {};
  }
}

/**
 * A JS row → wire row for `table`. Undefined columns are left out; `_uuid` and `_version`
 * are dropped (RFC 7047 §5.2.1 forbids writing them), so a cached row can be passed back.
 */
export function rowToWire(schema: DatabaseSchema, table: string, row: object): WireRow {
  const out: Record<string, WireValue> = {};
  for (const [col, v] of Object.entries(row)) {
    if (v === undefined || col === "_uuid" || col === "_version") continue;
    out[col] = valueToWire(columnType(schema, table, col), v, `${table}.${col}`);
  }
  return out;
}

/** A wire row of `table` → JS row (only the columns present). */
export function rowFromWire(
  schema: DatabaseSchema,
  table: string,
  row: unknown,
): Record<string, NativeValue> {
  if (row === null || typeof row !== "object" || Array.isArray(row)) {
    throw new NotationError(`${table}: expected a row object, got ${describe(row)}`);
  }
  const out: Record<string, NativeValue> = {};
  for (const [col, v] of Object.entries(row)) {
    out[col] = valueFromWire(columnType(schema, table, col), v, `${table}.${col}`);
  }
  return out;
}

/** Structural equality of two JS column values (atoms, arrays as sets, records). */
export function valuesEqual(a: NativeValue | undefined, b: NativeValue | undefined): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    const set = new Set<NativeAtom>(a as readonly NativeAtom[]);
    return (b as readonly NativeAtom[]).every((x) => set.has(x));
  }
  if (typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    const ra = a as Readonly<Record<string, NativeAtom>>;
    const rb = b as Readonly<Record<string, NativeAtom>>;
    return ka.every((k) => Object.hasOwn(rb, k) && ra[k] === rb[k]);
  }
  return false;
}
