/**
 * The OVSDB wire notation of RFC 7047 §5.1, exactly as it travels in JSON: atoms,
 * `["uuid", …]`, `["named-uuid", …]`, `["set", […]]`, `["map", [[k, v], …]]`, rows,
 * conditions and mutations. Nothing here knows about schemas or caches; converting to
 * and from plain JS values by column type lives in values.ts.
 *
 *   const row: WireRow = { name: "ls0", ports: wireSet([namedUuid("p0")]), other_config: wireMap([["k", "v"]]) };
 */

/** RFC 7047 §5.1 `<uuid>`. */
export type WireUuid = readonly ["uuid", string];
/** RFC 7047 §5.1 `<named-uuid>`: refers to a row inserted earlier in the same transaction. */
export type WireNamedUuid = readonly ["named-uuid", string];
/** RFC 7047 §5.1 `<atom>`: integer and real are both JSON numbers. */
export type WireAtom = string | number | boolean | WireUuid | WireNamedUuid;
/** RFC 7047 §5.1 `<set>`; a one-element set may also be sent as the bare atom. */
export type WireSet = readonly ["set", readonly WireAtom[]];
/** RFC 7047 §5.1 `<map>`. */
export type WireMap = readonly ["map", readonly (readonly [WireAtom, WireAtom])[]];
/** RFC 7047 §5.1 `<value>`. */
export type WireValue = WireAtom | WireSet | WireMap;
/** RFC 7047 §5.1 `<row>`: column name → value. */
export type WireRow = Readonly<Record<string, WireValue>>;

/** RFC 7047 §5.1 `<function>` of a condition. */
export type ConditionFunction = "<" | "<=" | "==" | "!=" | ">=" | ">" | "includes" | "excludes";
export const CONDITION_FUNCTIONS: readonly ConditionFunction[] = [
  "<",
  "<=",
  "==",
  "!=",
  ">=",
  ">",
  "includes",
  "excludes",
];
/** RFC 7047 §5.1 `<condition>`: `[column, function, value]`. ovsdb-server also accepts `true`/`false` in monitor_cond. */
export type WireCondition = readonly [column: string, fn: ConditionFunction, value: WireValue];

/** RFC 7047 §5.1 `<mutator>`. */
export type Mutator = "+=" | "-=" | "*=" | "/=" | "%=" | "insert" | "delete";
export const MUTATORS: readonly Mutator[] = ["+=", "-=", "*=", "/=", "%=", "insert", "delete"];
/** RFC 7047 §5.1 `<mutation>`: `[column, mutator, value]`. */
export type WireMutation = readonly [column: string, mutator: Mutator, value: WireValue];

/** RFC 4122 text form, as ovsdb-server prints it. */
export const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** RFC 7047 §3.1 `<id>`: what a uuid-name must look like. It can never look like a UUID (no '-'). */
export const ID_PATTERN = /^[_a-zA-Z][_a-zA-Z0-9]*$/;

export const ZERO_UUID = "00000000-0000-0000-0000-000000000000";

export function uuid(value: string): WireUuid {
  return ["uuid", value];
}

export function namedUuid(name: string): WireNamedUuid {
  return ["named-uuid", name];
}

export function wireSet(atoms: readonly WireAtom[]): WireSet {
  return ["set", atoms];
}

export function wireMap(pairs: readonly (readonly [WireAtom, WireAtom])[]): WireMap {
  return ["map", pairs];
}

export function isUuidString(s: string): boolean {
  return UUID_PATTERN.test(s);
}

export function isId(s: string): boolean {
  return ID_PATTERN.test(s);
}

function isTagged(v: unknown, tag: string): v is readonly [string, unknown] {
  return Array.isArray(v) && v.length === 2 && v[0] === tag;
}

export function isWireUuid(v: unknown): v is WireUuid {
  return isTagged(v, "uuid") && typeof v[1] === "string";
}

export function isWireNamedUuid(v: unknown): v is WireNamedUuid {
  return isTagged(v, "named-uuid") && typeof v[1] === "string";
}

export function isWireAtom(v: unknown): v is WireAtom {
  return (
    typeof v === "string" ||
    (typeof v === "number" && Number.isFinite(v)) ||
    typeof v === "boolean" ||
    isWireUuid(v) ||
    isWireNamedUuid(v)
  );
}

export function isWireSet(v: unknown): v is WireSet {
  return isTagged(v, "set") && Array.isArray(v[1]) && (v[1] as unknown[]).every(isWireAtom);
}

export function isWireMap(v: unknown): v is WireMap {
  return (
    isTagged(v, "map") &&
    Array.isArray(v[1]) &&
    (v[1] as unknown[]).every(
      (p) => Array.isArray(p) && p.length === 2 && isWireAtom(p[0]) && isWireAtom(p[1]),
    )
  );
}

export function isWireValue(v: unknown): v is WireValue {
  return isWireAtom(v) || isWireSet(v) || isWireMap(v);
}

/** The elements of a set value; a bare atom is a one-element set (RFC 7047 §5.1). */
export function setElements(v: WireValue): readonly WireAtom[] {
  if (isTagged(v, "set")) return (v as WireSet)[1];
  return [v];
}
