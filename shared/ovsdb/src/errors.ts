/**
 * Every failure the client reports, one class per cause.
 *
 * Server errors are the RFC 7047 error strings (§3.1 `<error>`, §4.1.3, §5.2) plus the
 * extensions ovsdb-server documents in ovsdb-server(7) §3.1. Each keeps the index of
 * the operation that failed (`index`), the server's `details` and `syntax`, and says
 * whether retrying the same request can succeed (`retryable`): a constraint violation
 * stays one, a `wait` that timed out or a lost connection may not.
 *
 *   try {
 *     await client.transact("OVN_Northbound", ops);
 *   } catch (err) {
 *     if (err instanceof TransactionError && err.cause instanceof ConstraintViolationError) …
 *   }
 *
 * This module imports nothing, so every layer (wire, notation, cache, client) can use it.
 */

/** Base class of everything this package throws. */
export class OvsdbError extends Error {
  override name = "OvsdbError";
  /** Whether sending the same request again can succeed without changing it. */
  readonly retryable: boolean = false;
}

// ---------------------------------------------------------------------------------------
// Errors reported by the server
// ---------------------------------------------------------------------------------------

/** The `<error>` object of RFC 7047 §3.1: `{"error": <string>, "details": <string>}`. */
export interface ServerErrorObject {
  error: string;
  details?: string;
  /** ovsdb-server adds the JSON it could not parse (ovsdb-server(7) §3.1). */
  syntax?: string;
}

export interface ServerErrorContext {
  /** Index of the failed operation in the transaction; equals the number of operations when the commit failed. */
  index?: number;
  /** The operation that failed, when there is one (a describing string: "insert into Mirror"). */
  operation?: string;
  /** The JSON-RPC method whose request failed. */
  method?: string;
}

/** An error string the server returned, with its details. Subclassed per string. */
export class OvsdbServerError extends OvsdbError {
  override name = "OvsdbServerError";
  /** The RFC 7047 error string, e.g. "constraint violation". */
  readonly error: string;
  readonly details: string | undefined;
  readonly syntax: string | undefined;
  readonly index: number | undefined;
  readonly operation: string | undefined;
  readonly method: string | undefined;
  constructor(obj: ServerErrorObject, ctx: ServerErrorContext = {}, advice = "") {
    const where =
      ctx.index !== undefined
        ? ` in operation ${ctx.index}${ctx.operation ? ` (${ctx.operation})` : ""}`
        : ctx.method
          ? ` from ${ctx.method}`
          : "";
    super(`${obj.error}${where}${obj.details ? `: ${obj.details}` : ""}${advice ? `. ${advice}` : ""}`);
    this.error = obj.error;
    this.details = obj.details;
    this.syntax = obj.syntax;
    this.index = ctx.index;
    this.operation = ctx.operation;
    this.method = ctx.method;
  }
}

/** RFC 7047 §4.1.3: a reference to a row that does not exist, found at commit. */
export class ReferentialIntegrityViolationError extends OvsdbServerError {
  static readonly errorString = "referential integrity violation";
  override name = "ReferentialIntegrityViolationError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "a row refers to a row that does not exist; insert the target in the same transaction");
  }
}

/** RFC 7047 §4.1.3, §5.2.1: a value outside the column's constraints, or a duplicate in a unique index. */
export class ConstraintViolationError extends OvsdbServerError {
  static readonly errorString = "constraint violation";
  override name = "ConstraintViolationError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "fix the value, or look up the existing row that holds this index");
  }
}

/** RFC 7047 §4.1.3: the server ran out of memory or another resource. */
export class ResourcesExhaustedError extends OvsdbServerError {
  static readonly errorString = "resources exhausted";
  override name = "ResourcesExhaustedError";
  override readonly retryable = true;
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "the server is out of resources; retry later");
  }
}

/** RFC 7047 §4.1.3: the server could not write the transaction to disk. */
export class IoError extends OvsdbServerError {
  static readonly errorString = "I/O error";
  override name = "IoError";
  override readonly retryable = true;
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "the server failed to write its database; retry, and check its disk");
  }
}

/** RFC 7047 §5.2.1: two inserts in one transaction used the same uuid-name. */
export class DuplicateUuidNameError extends OvsdbServerError {
  static readonly errorString = "duplicate uuid-name";
  override name = "DuplicateUuidNameError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "give each insert in a transaction its own uuid-name");
  }
}

/** RFC 7047 §5.2.4: a mutation's result is undefined (division by zero). */
export class DomainError extends OvsdbServerError {
  static readonly errorString = "domain error";
  override name = "DomainError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "the mutation has no defined result (e.g. division by zero)");
  }
}

/** RFC 7047 §5.2.4: a mutation's result does not fit the column's type. */
export class OvsdbRangeError extends OvsdbServerError {
  static readonly errorString = "range error";
  override name = "OvsdbRangeError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "the mutation's result is out of range for the column");
  }
}

/** RFC 7047 §5.2.6: a `wait` operation's condition did not hold within its timeout. */
export class TimedOutError extends OvsdbServerError {
  static readonly errorString = "timed out";
  override name = "TimedOutError";
  override readonly retryable = true;
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "the rows did not reach the expected state in time; re-read and retry");
  }
}

/** RFC 7047 §5.2.7: the server cannot honour the request (e.g. a durable commit). */
export class NotSupportedError extends OvsdbServerError {
  static readonly errorString = "not supported";
  override name = "NotSupportedError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "this server does not support the request");
  }
}

/** RFC 7047 §5.2.8: the transaction contained an `abort` operation. */
export class AbortedError extends OvsdbServerError {
  static readonly errorString = "aborted";
  override name = "AbortedError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "the transaction aborted itself");
  }
}

/** RFC 7047 §5.2.9: an `assert` names a lock this session does not own. */
export class NotOwnerError extends OvsdbServerError {
  static readonly errorString = "not owner";
  override name = "NotOwnerError";
  override readonly retryable = true;
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "acquire the lock (client.lock) before asserting it");
  }
}

/** RFC 7047 §4.1.2, §4.1.3: the database named in the request is not served. */
export class UnknownDatabaseError extends OvsdbServerError {
  static readonly errorString = "unknown database";
  override name = "UnknownDatabaseError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "check the database name against list_dbs");
  }
}

/** JSON-RPC: the server does not implement the method (RFC 7047 §4: "unknown method"). */
export class UnknownMethodError extends OvsdbServerError {
  static readonly errorString = "unknown method";
  override name = "UnknownMethodError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "the server is too old for this method");
  }
}

/** ovsdb-server(7) §3.1: the request could not be parsed (bad operation, unknown table, bad type). */
export class OvsdbSyntaxError extends OvsdbServerError {
  static readonly errorString = "syntax error";
  override name = "OvsdbSyntaxError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "the server could not parse the request (check it against the server's schema)");
  }
}

/** ovsdb-server(7) §3.1: a condition, row or mutation names a column the table lacks. */
export class UnknownColumnError extends OvsdbServerError {
  static readonly errorString = "unknown column";
  override name = "UnknownColumnError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "the column is not in the server's schema; check capabilities(schema)");
  }
}

/** ovsdb-server(7) §3.1: the request triggered a bug in ovsdb-server. */
export class ServerInternalError extends OvsdbServerError {
  static readonly errorString = "internal error";
  override name = "ServerInternalError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "ovsdb-server hit a bug; see its log");
  }
}

/** ovsdb-server(7) §3.1: a map or set contains a duplicate key. */
export class OvsdbDataError extends OvsdbServerError {
  static readonly errorString = "ovsdb error";
  override name = "OvsdbDataError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "a set or map holds a duplicate key");
  }
}

/** ovsdb-server(7) §3.1: denied by role-based access control. */
export class PermissionError extends OvsdbServerError {
  static readonly errorString = "permission error";
  override name = "PermissionError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx, "this connection's RBAC role may not make the change");
  }
}

/** RFC 7047 §4.1.4: the request was cancelled (we send `cancel` when a request times out). */
export class CanceledError extends OvsdbServerError {
  static readonly errorString = "canceled";
  override name = "CanceledError";
  override readonly retryable = true;
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx);
  }
}

/** `monitor_cancel` named a monitor the session does not have (RFC 7047 §4.1.7). */
export class UnknownMonitorError extends OvsdbServerError {
  static readonly errorString = "unknown monitor";
  override name = "UnknownMonitorError";
  constructor(obj: ServerErrorObject, ctx?: ServerErrorContext) {
    super(obj, ctx);
  }
}

type ServerErrorClass = (new (obj: ServerErrorObject, ctx?: ServerErrorContext) => OvsdbServerError) & {
  errorString: string;
};

const SERVER_ERRORS: readonly ServerErrorClass[] = [
  ReferentialIntegrityViolationError,
  ConstraintViolationError,
  ResourcesExhaustedError,
  IoError,
  DuplicateUuidNameError,
  DomainError,
  OvsdbRangeError,
  TimedOutError,
  NotSupportedError,
  AbortedError,
  NotOwnerError,
  UnknownDatabaseError,
  UnknownMethodError,
  OvsdbSyntaxError,
  UnknownColumnError,
  ServerInternalError,
  OvsdbDataError,
  PermissionError,
  CanceledError,
  UnknownMonitorError,
];

const BY_STRING = new Map<string, ServerErrorClass>(SERVER_ERRORS.map((c) => [c.errorString, c]));
// libovsdb and some texts spell RFC 7047 §5.2.1's string without the hyphen.
BY_STRING.set("duplicate uuid name", DuplicateUuidNameError);

/** The RFC 7047 error strings this package maps to a class of its own. */
export const SERVER_ERROR_STRINGS: readonly string[] = [...BY_STRING.keys()];

/**
 * Builds the error class for a server `<error>`. JSON-RPC errors may be a bare string
 * (ovsdb-server answers an unknown method with `"error": "unknown method"`) or an object.
 */
export function serverError(raw: unknown, ctx: ServerErrorContext = {}): OvsdbServerError {
  const obj: ServerErrorObject =
    typeof raw === "string"
      ? { error: raw }
      : raw !== null && typeof raw === "object" && typeof (raw as { error?: unknown }).error === "string"
        ? {
            error: (raw as { error: string }).error,
            ...(typeof (raw as { details?: unknown }).details === "string"
              ? { details: (raw as { details: string }).details }
              : {}),
            ...(typeof (raw as { syntax?: unknown }).syntax === "string"
              ? { syntax: (raw as { syntax: string }).syntax }
              : {}),
          }
        : { error: "unknown error", details: JSON.stringify(raw) };
  const Class = BY_STRING.get(obj.error);
  return Class ? new Class(obj, ctx) : new OvsdbServerError(obj, ctx);
}

/**
 * A transaction failed. `cause` is the first failed operation's error (its class names
 * the RFC 7047 error string); `index` is that operation's position, equal to the number
 * of operations when every operation succeeded but the commit failed (RFC 7047 §4.1.3).
 * Nothing of the transaction was applied.
 */
export class TransactionError extends OvsdbError {
  override name = "TransactionError";
  declare readonly cause: OvsdbServerError;
  override readonly retryable: boolean;
  /** Index of the failed operation; `operations` when the commit itself failed. */
  readonly index: number;
  /** Number of operations in the transaction. */
  readonly operations: number;
  /** True when all operations succeeded and the commit failed (the extra result element). */
  readonly commitFailed: boolean;
  /** Every operation error the server reported (ovsdb-server stops at the first). */
  readonly errors: readonly OvsdbServerError[];
  constructor(database: string, operations: number, errors: readonly OvsdbServerError[]) {
    const first = errors[0];
    if (!first) throw new TypeError("TransactionError needs at least one error");
    const index = first.index ?? operations;
    const commitFailed = index >= operations;
    super(
      `transaction on ${database} failed ${commitFailed ? "at commit" : `at operation ${index}`}: ${first.message}`,
      { cause: first },
    );
    this.index = index;
    this.operations = operations;
    this.commitFailed = commitFailed;
    this.errors = errors;
    this.retryable = first.retryable;
  }
  /** The RFC 7047 error string of the failure, e.g. "timed out". */
  get error(): string {
    return this.cause.error;
  }
}

// ---------------------------------------------------------------------------------------
// Errors raised on this side of the connection
// ---------------------------------------------------------------------------------------

/** Options failed validation; the message names the field. */
export class OptionsError extends OvsdbError {
  override name = "OptionsError";
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`invalid option ${field}: ${problem}`);
  }
}

/** A value does not fit its column's type (checked against the server's schema before sending). */
export class NotationError extends OvsdbError {
  override name = "NotationError";
}

/** The byte stream is not a sequence of JSON values, or a message is not JSON-RPC. */
export class ProtocolError extends OvsdbError {
  override name = "ProtocolError";
  override readonly retryable = true;
}

/** A request was made while the client has no live session (it is reconnecting). */
export class NotConnectedError extends OvsdbError {
  override name = "NotConnectedError";
  override readonly retryable = true;
  constructor(detail = "") {
    super(`not connected to ovsdb-server${detail ? ` (${detail})` : ""}; retry once the client reconnects`);
  }
}

/**
 * The connection closed while a request was outstanding. A transaction's outcome is
 * unknown: it may have committed. Re-read the state before retrying.
 */
export class ConnectionClosedError extends OvsdbError {
  override name = "ConnectionClosedError";
  override readonly retryable = true;
}

/** No message arrived within the inactivity probe (the peer is hung or the path is dead). */
export class InactivityTimeoutError extends OvsdbError {
  override name = "InactivityTimeoutError";
  override readonly retryable = true;
  constructor(readonly idleMs: number) {
    super(`no message from the server for ${idleMs} ms (echo unanswered); reconnecting`);
  }
}

/** A request got no answer within its own timeout; it was cancelled (RFC 7047 §4.1.4). */
export class RequestTimeoutError extends OvsdbError {
  override name = "RequestTimeoutError";
  override readonly retryable = true;
  constructor(
    readonly method: string,
    readonly timeoutMs: number,
  ) {
    super(`${method} got no reply within ${timeoutMs} ms; the request was cancelled`);
  }
}

/** The client was closed by its owner. */
export class ClientClosedError extends OvsdbError {
  override name = "ClientClosedError";
  constructor() {
    super("the OVSDB client is closed");
  }
}
