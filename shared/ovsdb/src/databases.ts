/**
 * Which row types belong to which database name, so that `client.monitor("OVN_Northbound", …)`
 * and `client.cache.table("OVN_Northbound", "Mirror")` are typed without naming types.
 * Databases not listed here are untyped (`AnyTables`).
 */
import type { Tables as NbTables } from "./generated/ovn-nb.js";
import type { Tables as SbTables } from "./generated/ovn-sb.js";
import type { Tables as VswitchTables } from "./generated/vswitch.js";
import type { NativeValue } from "./ovsdb/values.js";

export interface KnownDatabases {
  OVN_Northbound: NbTables;
  OVN_Southbound: SbTables;
  Open_vSwitch: VswitchTables;
}

/** A row as the cache and select return it when nothing more is known: column → JS value, plus `_uuid`. */
export type AnyRow = { readonly _uuid: string } & Readonly<Record<string, NativeValue>>;
export type AnyTables = Readonly<Record<string, AnyRow>>;

export type TablesOf<D extends string> = D extends keyof KnownDatabases ? KnownDatabases[D] : AnyTables;
export type TableOf<D extends string> = keyof TablesOf<D> & string;
export type RowOf<D extends string, T extends string> = T extends keyof TablesOf<D> ? TablesOf<D>[T] : AnyRow;
