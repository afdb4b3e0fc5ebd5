/**
 * @ovntap/ovsdb — an RFC 7047 OVSDB client for OVN Northbound and Open vSwitch.
 *
 *   import { OvsdbClient, nbOp as op, capabilities } from "@ovntap/ovsdb";
 *
 *   const client = await OvsdbClient.connect({ remote: "tcp:127.0.0.1:6641", database: "OVN_Northbound", logger });
 *   const caps = capabilities(await client.schema("OVN_Northbound"));
 *   await client.monitor("OVN_Northbound", { Mirror: {} });
 *   const [{ uuid }] = await client.transact("OVN_Northbound", [
 *     op.insert("Mirror", { name: "m1", type: "gre", filter: "from-lport", sink: "172.19.0.21", index: 99 }),
 *   ]);
 *   client.cache.table("OVN_Northbound", "Mirror").get(uuid);   // already there
 *
 * Layers (as in ovn-org/libovsdb): wire/ (framing, JSON-RPC session, transports) →
 * ovsdb/ (notation, schema, values, operations, update formats; no cache) → cache/ (filled
 * by monitor updates) → client/ (builds operations, transacts, monitors, reconnects).
 */
export {
  OvsdbClient,
  Monitor,
  type ClientEvents,
  type ClientStats,
  type MonitorMethod,
  type MonitorOptions,
  type MonitorRequests,
  type MonitorSelect,
  type MonitoredRow,
  type TableMonitorRequest,
  type TransactOptions,
} from "./client/client.js";
export type { OvsdbClientOptions, BackoffOptions } from "./client/options.js";
export {
  op,
  nbOp,
  sbOp,
  ovsOp,
  opsFor,
  type OpBuilder,
  type RowInput,
  type TypedCondition,
  type TypedMutation,
} from "./client/op.js";
export {
  capabilities,
  vswitchCapabilities,
  columnEnum,
  hasColumn,
  type NbCapabilities,
  type VswitchCapabilities,
} from "./client/capabilities.js";
export { OvsdbCache, DatabaseCache, TableCache, type RowEvent, type ResyncEvent } from "./cache/cache.js";
export type { KnownDatabases, AnyRow, AnyTables, TablesOf, TableOf, RowOf } from "./databases.js";
export * from "./errors.js";
export {
  uuid,
  namedUuid,
  wireSet,
  wireMap,
  isUuidString,
  UUID_PATTERN,
  ID_PATTERN,
  ZERO_UUID,
  type WireAtom,
  type WireValue,
  type WireRow,
  type WireUuid,
  type WireNamedUuid,
  type WireSet,
  type WireMap,
  type WireCondition,
  type WireMutation,
  type ConditionFunction,
  type Mutator,
} from "./ovsdb/notation.js";
export {
  columnType,
  parseColumnType,
  type DatabaseSchema,
  type TableSchema,
  type ColumnSchema,
  type ColumnType,
  type ColumnKind,
  type BaseType,
  type AtomicType,
} from "./ovsdb/schema.js";
export {
  valueToWire,
  valueFromWire,
  rowToWire,
  rowFromWire,
  type NativeAtom,
  type NativeValue,
  type NativeRow,
} from "./ovsdb/values.js";
export type {
  Operation,
  WireOperation,
  InsertOp,
  SelectOp,
  UpdateOp,
  MutateOp,
  DeleteOp,
  WaitOp,
  CommitOp,
  AbortOp,
  CommentOp,
  AssertOp,
  Condition,
  Mutation,
  InsertResult,
  SelectResult,
  CountResult,
  EmptyResult,
  OperationResult,
  TransactResults,
} from "./ovsdb/operations.js";
export type { Logger } from "./wire/jsonrpc.js";
export { parseRemote, type Remote, type SslOptions } from "./wire/transport.js";

// Typed rows generated from the installed schemas: every table under a namespace, and
// short names for the tables ovntap touches.
export * as nb from "./generated/ovn-nb.js";
export * as sb from "./generated/ovn-sb.js";
export * as vswitch from "./generated/vswitch.js";
export type {
  Tables as NbTables,
  Mirror as NbMirror,
  LogicalSwitchPort as NbLogicalSwitchPort,
  LogicalSwitch as NbLogicalSwitch,
  NbGlobal,
} from "./generated/ovn-nb.js";
export type { Tables as SbTables } from "./generated/ovn-sb.js";
export type {
  Tables as OvsTables,
  OpenVSwitch as OvsOpenVSwitch,
  Bridge as OvsBridge,
  Port as OvsPort,
  Interface as OvsInterface,
  Mirror as OvsMirror,
} from "./generated/vswitch.js";
