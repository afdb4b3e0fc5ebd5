/**
 * What the connected server can do, read from its own schema rather than from version
 * numbers: an OVN built from a distribution branch may carry a backport, and the schema
 * is what ovsdb-server enforces.
 *
 *   const caps = capabilities(await client.schema("OVN_Northbound"));
 *   if (!caps.mirrorFilters.includes("both")) … two rows, from-lport and to-lport
 */
import { parseColumnType, type DatabaseSchema } from "../ovsdb/schema.js";

/** The enum of a string column, or [] when the table or column does not exist. */
export function columnEnum(schema: DatabaseSchema, table: string, column: string): string[] {
  const c = schema.tables[table]?.columns[column];
  if (!c) return [];
  const t = parseColumnType(c.type, `${table}.${column}`);
  return (t.key.enum ?? []).filter((v): v is string => typeof v === "string");
}

export function hasColumn(schema: DatabaseSchema, table: string, column: string): boolean {
  return schema.tables[table]?.columns[column] !== undefined;
}

export interface NbCapabilities {
  readonly database: string;
  readonly version: string;
  /** NB has a Mirror table (OVN ≥ 22.12). */
  readonly hasMirror: boolean;
  /** Values `Mirror.filter` accepts: from-lport, to-lport, and `both` on OVN ≥ 23.06. */
  readonly mirrorFilters: readonly string[];
  /** Values `Mirror.type` accepts: gre, erspan, and `local` on OVN ≥ 23.06. */
  readonly mirrorTypes: readonly string[];
  /** `Mirror.filter` accepts "both" (one row mirrors both directions). */
  readonly mirrorFilterBoth: boolean;
  /** `Mirror.type` accepts "local" (mirror to a local port, no tunnel). */
  readonly mirrorTypeLocal: boolean;
  /** NB has a Mirror_Rule table (mirror filtering rules, newer OVN). */
  readonly hasMirrorRule: boolean;
  /** `Logical_Switch_Port.mirror_rules` exists (ports can be attached to mirrors). */
  readonly lspMirrorRules: boolean;
}

/** Mirror-related capabilities of an OVN_Northbound schema. */
export function capabilities(schema: DatabaseSchema): NbCapabilities {
  const mirrorFilters = columnEnum(schema, "Mirror", "filter");
  const mirrorTypes = columnEnum(schema, "Mirror", "type");
  return {
    database: schema.name,
    version: schema.version,
    hasMirror: schema.tables.Mirror !== undefined,
    mirrorFilters,
    mirrorTypes,
    mirrorFilterBoth: mirrorFilters.includes("both"),
    mirrorTypeLocal: mirrorTypes.includes("local"),
    hasMirrorRule: schema.tables.Mirror_Rule !== undefined,
    lspMirrorRules: hasColumn(schema, "Logical_Switch_Port", "mirror_rules"),
  };
}

export interface VswitchCapabilities {
  readonly database: string;
  readonly version: string;
  /** Columns of the OVS Mirror table. */
  readonly mirrorColumns: readonly string[];
  /** `Mirror.snaplen` (truncate mirrored packets). */
  readonly mirrorSnaplen: boolean;
  /** `Mirror.filter` (an OpenFlow match restricting what is mirrored, OVS ≥ 3.6). */
  readonly mirrorFilter: boolean;
}

/** Mirror-related capabilities of an Open_vSwitch schema. */
export function vswitchCapabilities(schema: DatabaseSchema): VswitchCapabilities {
  return {
    database: schema.name,
    version: schema.version,
    mirrorColumns: Object.keys(schema.tables.Mirror?.columns ?? {}),
    mirrorSnaplen: hasColumn(schema, "Mirror", "snaplen"),
    mirrorFilter: hasColumn(schema, "Mirror", "filter"),
  };
}
