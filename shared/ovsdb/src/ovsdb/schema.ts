/**
 * RFC 7047 §3.2 database schemas, as `get_schema` returns them and as the `.ovsschema`
 * files hold them, plus the normalised column type every conversion works from.
 *
 *   const t = columnType(schema, "Mirror", "filter");
 *   t.kind === "scalar"; t.key.enum  // ["from-lport", "to-lport"] on OVN 23.03
 */
import { NotationError } from "../errors.js";
import type { WireValue } from "./notation.js";

export type AtomicType = "integer" | "real" | "boolean" | "string" | "uuid";

/** RFC 7047 §3.2 `<base-type>` as JSON. */
export type BaseTypeJson =
  | AtomicType
  | {
      type: AtomicType;
      enum?: WireValue;
      minInteger?: number;
      maxInteger?: number;
      minReal?: number;
      maxReal?: number;
      minLength?: number;
      maxLength?: number;
      refTable?: string;
      refType?: "strong" | "weak";
    };

/** RFC 7047 §3.2 `<type>` as JSON. */
export type ColumnTypeJson =
  AtomicType | { key: BaseTypeJson; value?: BaseTypeJson; min?: number; max?: number | "unlimited" };

export interface ColumnSchema {
  type: ColumnTypeJson;
  ephemeral?: boolean;
  mutable?: boolean;
}

export interface TableSchema {
  columns: Record<string, ColumnSchema>;
  maxRows?: number;
  isRoot?: boolean;
  indexes?: string[][];
}

/** RFC 7047 §3.2 `<database-schema>`. */
export interface DatabaseSchema {
  name: string;
  version: string;
  cksum?: string;
  tables: Record<string, TableSchema>;
}

export interface BaseType {
  readonly type: AtomicType;
  /** The allowed values, when the schema restricts them. */
  readonly enum?: readonly (string | number | boolean)[];
  readonly minInteger?: number;
  readonly maxInteger?: number;
  readonly minReal?: number;
  readonly maxReal?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly refTable?: string;
  readonly refType?: "strong" | "weak";
}

/**
 * How a column's value looks once converted to JS (see values.ts):
 * - scalar: exactly one atom (min 1, max 1, no value type)
 * - optional: zero or one atom (min 0, max 1) → the atom or null
 * - set: any other key-only type → array
 * - map: has a value type → record
 */
export type ColumnKind = "scalar" | "optional" | "set" | "map";

export interface ColumnType {
  readonly key: BaseType;
  readonly value?: BaseType;
  readonly min: number;
  /** Infinity for "unlimited". */
  readonly max: number;
  readonly kind: ColumnKind;
}

function parseBase(json: BaseTypeJson, where: string): BaseType {
  if (typeof json === "string") return { type: json };
  if (json === null || typeof json !== "object" || typeof json.type !== "string") {
    throw new NotationError(`${where}: malformed base type ${JSON.stringify(json)}`);
  }
  const { enum: enumJson, ...rest } = json;
  const base: { -readonly [K in keyof BaseType]: BaseType[K] } = { ...rest };
  if (enumJson !== undefined) {
    // RFC 7047 §3.2: "enum" is a <value>, a set of atoms (or a single atom).
    const atoms =
      Array.isArray(enumJson) && enumJson[0] === "set" ? (enumJson[1] as unknown[]) : [enumJson as unknown];
    base.enum = atoms.map((a) => {
      if (typeof a === "string" || typeof a === "number" || typeof a === "boolean") return a;
      throw new NotationError(`${where}: unsupported enum atom ${JSON.stringify(a)}`);
    });
  }
  return base;
}

/** Normalises a `<type>`; `where` names the column in error messages. */
export function parseColumnType(json: ColumnTypeJson, where = "column"): ColumnType {
  if (typeof json === "string") return { key: { type: json }, min: 1, max: 1, kind: "scalar" };
  const key = parseBase(json.key, `${where} key`);
  const value = json.value === undefined ? undefined : parseBase(json.value, `${where} value`);
  const min = json.min ?? 1;
  const max = json.max === "unlimited" ? Number.POSITIVE_INFINITY : (json.max ?? 1);
  const kind: ColumnKind = value
    ? "map"
    : min === 1 && max === 1
      ? "scalar"
      : min === 0 && max === 1
        ? "optional"
        : "set";
  return value ? { key, value, min, max, kind } : { key, min, max, kind };
}

/**
 * ovsdb-server's `ovsdb_type_is_composite`: only types that can hold more than one element
 * are diffed element-wise in update2 `modify` (ovsdb-server(7) §4.1.14); the others carry
 * the new value.
 */
export function isComposite(t: ColumnType): boolean {
  return t.max > 1;
}

const UUID_TYPE: ColumnType = { key: { type: "uuid" }, min: 1, max: 1, kind: "scalar" };

/** RFC 7047 §3.2: every table implicitly has `_uuid` and `_version`, both uuids. */
export const IMPLICIT_COLUMNS: readonly string[] = ["_uuid", "_version"];

const cache = new WeakMap<TableSchema, Map<string, ColumnType>>();

export function tableSchema(schema: DatabaseSchema, table: string): TableSchema {
  const t = schema.tables[table];
  if (!t) throw new NotationError(`table ${table} is not in the ${schema.name} ${schema.version} schema`);
  return t;
}

/** The normalised type of a column (including `_uuid` and `_version`); throws NotationError for unknown ones. */
export function columnType(schema: DatabaseSchema, table: string, column: string): ColumnType {
  const t = tableSchema(schema, table);
  let types = cache.get(t);
  if (!types) {
    types = new Map();
    cache.set(t, types);
  }
  let ct = types.get(column);
  if (ct) return ct;
  if (IMPLICIT_COLUMNS.includes(column)) ct = UUID_TYPE;
  else {
    const c = t.columns[column];
    if (!c) {
      throw new NotationError(
        `column ${table}.${column} is not in the ${schema.name} ${schema.version} schema; check capabilities(schema)`,
      );
    }
    ct = parseColumnType(c.type, `${table}.${column}`);
  }
  types.set(column, ct);
  return ct;
}

/** The schema's columns of a table, in schema order (without `_uuid` / `_version`). */
export function columnNames(schema: DatabaseSchema, table: string): string[] {
  return Object.keys(tableSchema(schema, table).columns);
}

/** Checks that a value is a plausible `<database-schema>` (as get_schema returns it). */
export function isDatabaseSchema(v: unknown): v is DatabaseSchema {
  return (
    v !== null &&
    typeof v === "object" &&
    typeof (v as DatabaseSchema).name === "string" &&
    typeof (v as DatabaseSchema).tables === "object" &&
    (v as DatabaseSchema).tables !== null
  );
}
