/**
 * Internals for use inside the repository (tests, tools): the framing parser, the JSON-RPC
 * session, transports, the update-format helpers. Not a stable API.
 */
export { JsonStreamParser, type JsonStreamParserOptions } from "./wire/framing.js";
export {
  RpcSession,
  silentLogger,
  type RpcSessionOptions,
  type RpcStats,
  type JsonRpcMessage,
} from "./wire/jsonrpc.js";
export { openTransport, parseRemotes, validateSslOptions, OVSDB_DEFAULT_PORT } from "./wire/transport.js";
export { applyColumnDiff, applyRowDiff, classifyUpdate, classifyUpdate2 } from "./ovsdb/updates.js";
export type { RowUpdate, RowUpdate2, TableUpdates, TableUpdates2 } from "./ovsdb/updates.js";
export { encodeOperation, decodeResults, describeOperation } from "./ovsdb/operations.js";
export { atomToWire, atomFromWire, defaultValue, valuesEqual } from "./ovsdb/values.js";
export { isComposite, columnNames, isDatabaseSchema } from "./ovsdb/schema.js";
export * from "./ovsdb/notation.js";
export { Backoff, parseClientOptions, type ParsedClientOptions } from "./client/options.js";
