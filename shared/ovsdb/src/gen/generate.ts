/**
 * Generates typed rows from the installed `.ovsschema` files:
 *
 *   cd shared/ovsdb && npx tsx src/gen/generate.ts        # rewrites src/generated/*.ts
 *
 * One interface per table, with each column typed as values.ts converts it (integer/real →
 * number, uuid → string, enum → literal union, optional → `T | null`, set → array, map →
 * record), and a `Tables` interface mapping table names to rows. The unit test
 * generate.test.ts regenerates in memory and fails when the committed files differ from
 * the schemas installed on this host (an OVN/OVS upgrade changed them: rerun this).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { format, resolveConfig } from "prettier";
import { parseColumnType, type BaseType, type ColumnType, type DatabaseSchema } from "../ovsdb/schema.js";

export interface Target {
  /** The installed schema file. */
  schema: string;
  /** Output file name under src/generated. */
  out: string;
  /** Debian package that installs the schema (for the hint when it is missing). */
  debianPackage: string;
}

export const TARGETS: readonly Target[] = [
  { schema: "/usr/share/ovn/ovn-nb.ovsschema", out: "ovn-nb.ts", debianPackage: "ovn-common" },
  { schema: "/usr/share/ovn/ovn-sb.ovsschema", out: "ovn-sb.ts", debianPackage: "ovn-common" },
  {
    schema: "/usr/share/openvswitch/vswitch.ovsschema",
    out: "vswitch.ts",
    debianPackage: "openvswitch-common",
  },
];

export const GENERATED_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "generated");

/** "Logical_Switch_Port" → "LogicalSwitchPort", "NB_Global" → "NbGlobal", "Open_vSwitch" → "OpenVSwitch". */
export function interfaceName(table: string): string {
  return table
    .split("_")
    .filter((p) => p !== "")
    .map((p) => {
      const word = p.length > 1 && p === p.toUpperCase() ? p[0] + p.slice(1).toLowerCase() : p;
      return word.charAt(0).toUpperCase() + word.slice(1);
    })
    .join("");
}

function literal(v: string | number | boolean): string {
  return JSON.stringify(v);
}

function baseTs(b: BaseType): string {
  if (b.enum) return b.enum.map(literal).join(" | ");
  switch (b.type) {
    case "integer":
    case "real":
      return "number";
    case "boolean":
      return "boolean";
    case "string":
    case "uuid":
      return "string";
  }
}

function paren(ts: string): string {
  return ts.includes("|") ? `(${ts})` : ts;
}

/** The TypeScript type of a column's JS value (see values.ts). */
export function columnTs(t: ColumnType): string {
  const key = baseTs(t.key);
  switch (t.kind) {
    case "scalar":
      return key;
    case "optional":
      return `${key} | null`;
    case "set":
      return `readonly ${paren(key)}[]`;
    case "map": {
      const value = baseTs(t.value as BaseType);
      if (t.key.enum && t.key.type === "string") return `Readonly<Partial<Record<${key}, ${value}>>>`;
      const k = t.key.type === "integer" || t.key.type === "real" ? "number" : "string";
      return `Readonly<Record<${k}, ${value}>>`;
    }
  }
}

function range(lo: number | undefined, hi: number | undefined): string | undefined {
  if (lo === undefined && hi === undefined) return undefined;
  return `${lo ?? "…"} to ${hi ?? "…"}`;
}

function baseNotes(b: BaseType, role: string): string[] {
  const notes: string[] = [];
  if (b.refTable) notes.push(`${role}refers to ${b.refTable} (${b.refType ?? "strong"})`);
  const r =
    b.type === "integer"
      ? range(b.minInteger, b.maxInteger)
      : b.type === "real"
        ? range(b.minReal, b.maxReal)
        : undefined;
  if (r) notes.push(`${role}${b.type} ${r}`);
  const len = range(b.minLength, b.maxLength);
  if (len) notes.push(`${role}length ${len}`);
  return notes;
}

function columnNotes(name: string, json: DatabaseSchema["tables"][string]["columns"][string]): string[] {
  const t = parseColumnType(json.type, name);
  const notes: string[] = [];
  if (t.kind === "map") {
    notes.push(...baseNotes(t.key, "key "), ...baseNotes(t.value as BaseType, "value "));
  } else {
    notes.push(...baseNotes(t.key, ""));
  }
  if ((t.kind === "set" || t.kind === "map") && (t.min > 0 || Number.isFinite(t.max))) {
    notes.push(`${t.min} to ${Number.isFinite(t.max) ? t.max : "unlimited"} elements`);
  }
  if (json.ephemeral) notes.push("ephemeral");
  if (json.mutable === false) notes.push("immutable");
  return notes;
}

/** Renders the module for one schema (unformatted). */
export function renderSchema(schema: DatabaseSchema, source: string): string {
  const names = new Map<string, string>();
  for (const table of Object.keys(schema.tables)) {
    const n = interfaceName(table);
    const clash = [...names.entries()].find(([, v]) => v === n);
    if (clash || n === "Tables") throw new Error(`tables ${clash?.[0] ?? ""} and ${table} both map to ${n}`);
    names.set(table, n);
  }
  const out: string[] = [];
  out.push(
    "/**",
    ` * Rows of the ${schema.name} database, schema version ${schema.version}.`,
    ` * Generated by src/gen/generate.ts from ${source}; do not edit.`,
    " * Regenerate with `npx tsx src/gen/generate.ts` (in shared/ovsdb) after an OVN/OVS upgrade.",
    " */",
    "",
    `export const DATABASE = ${literal(schema.name)};`,
    `export const SCHEMA_VERSION = ${literal(schema.version)};`,
    `export const SCHEMA_CKSUM: string | undefined = ${schema.cksum ? literal(schema.cksum) : "undefined"};`,
    "",
  );
  for (const [table, ts] of Object.entries(schema.tables)) {
    const facts = [
      ts.isRoot ? "root table" : "non-root (garbage-collected when unreferenced)",
      ts.maxRows !== undefined ? `at most ${ts.maxRows} row${ts.maxRows === 1 ? "" : "s"}` : undefined,
      ts.indexes && ts.indexes.length > 0
        ? `unique ${ts.indexes.map((ix) => `(${ix.join(", ")})`).join(", ")}`
        : undefined,
    ].filter((f) => f !== undefined);
    out.push(`/** ${schema.name} table ${table}: ${facts.join("; ")}. */`);
    out.push(`export interface ${names.get(table)} {`);
    out.push("  readonly _uuid: string;");
    for (const [col, cs] of Object.entries(ts.columns)) {
      const notes = columnNotes(`${table}.${col}`, cs);
      if (notes.length > 0) out.push(`  /** ${notes.join("; ")} */`);
      out.push(`  readonly ${col}: ${columnTs(parseColumnType(cs.type, `${table}.${col}`))};`);
    }
    out.push("}", "");
  }
  out.push(`/** Table name → row type for ${schema.name}. */`, "export interface Tables {");
  for (const table of Object.keys(schema.tables)) out.push(`  readonly ${table}: ${names.get(table)};`);
  out.push("}", "", "export type TableName = keyof Tables;", "");
  return out.join("\n");
}

/** Renders and formats the module for a target exactly as it is committed. */
export async function generateTarget(target: Target): Promise<string> {
  const schema = JSON.parse(readFileSync(target.schema, "utf8")) as DatabaseSchema;
  const path = join(GENERATED_DIR, target.out);
  const config = (await resolveConfig(path)) ?? {};
  return format(renderSchema(schema, target.schema), { ...config, parser: "typescript", filepath: path });
}

async function main(): Promise<void> {
  for (const t of TARGETS) {
    writeFileSync(join(GENERATED_DIR, t.out), await generateTarget(t));
    process.stdout.write(`wrote src/generated/${t.out} from ${t.schema}\n`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exitCode = 1;
  });
}
