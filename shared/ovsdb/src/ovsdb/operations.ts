/**
 * RFC 7047 §5.2 database operations, in two forms:
 * - `WireOperation`: the JSON sent in `transact` params (values in wire notation);
 * - `Operation`: the same operation with plain JS values (values.ts), as the op builder
 *   makes them. `encodeOperation` turns one into the other against the server's schema, and
 *   `decodeResults` turns the `transact` reply into typed per-operation results or a
 *   TransactionError.
 */
import type { OvsdbServerError } from "../errors.js";
import { ProtocolError, TransactionError, serverError, NotationError } from "../errors.js";
import {
  isWireUuid,
  type ConditionFunction,
  type Mutator,
  type WireCondition,
  type WireMutation,
  type WireRow,
  type WireValue,
} from "./notation.js";
import { columnType, tableSchema, type ColumnType, type DatabaseSchema } from "./schema.js";
import { atomToWire, rowFromWire, rowToWire, setToWire, valueToWire, type NativeValue } from "./values.js";

// ---------------------------------------------------------------------------------------
// Wire form (RFC 7047 §5.2)
// ---------------------------------------------------------------------------------------

export type WireOperation =
  | { op: "insert"; table: string; row: WireRow; "uuid-name"?: string }
  | { op: "select"; table: string; where: WireCondition[]; columns?: string[] }
  | { op: "update"; table: string; where: WireCondition[]; row: WireRow }
  | { op: "mutate"; table: string; where: WireCondition[]; mutations: WireMutation[] }
  | { op: "delete"; table: string; where: WireCondition[] }
  | {
      op: "wait";
      table: string;
      where: WireCondition[];
      columns: string[];
      until: "==" | "!=";
      rows: WireRow[];
      timeout?: number;
    }
  | { op: "commit"; durable: boolean }
  | { op: "abort" }
  | { op: "comment"; comment: string }
  | { op: "assert"; lock: string };

// ---------------------------------------------------------------------------------------
// JS form
// ---------------------------------------------------------------------------------------

/** `[column, function, value]` with a JS value (RFC 7047 §5.1 `<condition>`). */
export type Condition = readonly [column: string, fn: ConditionFunction, value: unknown];
/** `[column, mutator, value]` with a JS value (RFC 7047 §5.1 `<mutation>`). */
export type Mutation = readonly [column: string, mutator: Mutator, value: unknown];

declare const rowType: unique symbol;

export interface InsertOp {
  readonly op: "insert";
  readonly table: string;
  readonly row: object;
  /** RFC 7047 §5.2.1 uuid-name: other operations of the transaction may refer to the row by it. */
  readonly uuidName?: string | undefined;
}
export interface SelectOp<R = Record<string, NativeValue>> {
  readonly op: "select";
  readonly table: string;
  readonly where: readonly Condition[];
  readonly columns?: readonly string[] | undefined;
  /** Type only: the row type of the result. */
  readonly [rowType]?: R;
}
export interface UpdateOp {
  readonly op: "update";
  readonly table: string;
  readonly where: readonly Condition[];
  readonly row: object;
}
export interface MutateOp {
  readonly op: "mutate";
  readonly table: string;
  readonly where: readonly Condition[];
  readonly mutations: readonly Mutation[];
}
export interface DeleteOp {
  readonly op: "delete";
  readonly table: string;
  readonly where: readonly Condition[];
}
export interface WaitOp {
  readonly op: "wait";
  readonly table: string;
  readonly where: readonly Condition[];
  readonly columns: readonly string[];
  readonly until: "==" | "!=";
  readonly rows: readonly object[];
  /** Milliseconds; 0 fails at once when the condition does not hold (RFC 7047 §5.2.6). */
  readonly timeout?: number | undefined;
}
export interface CommitOp {
  readonly op: "commit";
  readonly durable: boolean;
}
export interface AbortOp {
  readonly op: "abort";
}
export interface CommentOp {
  readonly op: "comment";
  readonly comment: string;
}
export interface AssertOp {
  readonly op: "assert";
  readonly lock: string;
}

export type Operation =
  | InsertOp
  | SelectOp<unknown>
  | UpdateOp
  | MutateOp
  | DeleteOp
  | WaitOp
  | CommitOp
  | AbortOp
  | CommentOp
  | AssertOp;

/** RFC 7047 §5.2.1: the insert's result. */
export interface InsertResult {
  readonly uuid: string;
}
/** RFC 7047 §5.2.2. */
export interface SelectResult<R> {
  readonly rows: R[];
}
/** RFC 7047 §5.2.3–5.2.5: rows updated, mutated or deleted. */
export interface CountResult {
  readonly count: number;
}
/** wait, commit, abort, comment, assert. */
export type EmptyResult = Readonly<Record<string, never>>;

export type OperationResult<O> = O extends InsertOp
  ? InsertResult
  : O extends SelectOp<infer R>
    ? SelectResult<R>
    : O extends UpdateOp | MutateOp | DeleteOp
      ? CountResult
      : EmptyResult;

/** One result per operation, typed by operation: `transact(db, [insert, select])` → `[InsertResult, SelectResult]`. */
export type TransactResults<O extends readonly Operation[]> = {
  -readonly [K in keyof O]: OperationResult<O[K]>;
};

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

/** "insert into Mirror": how errors name an operation. */
export function describeOperation(op: Operation): string {
  switch (op.op) {
    case "insert":
      return `insert into ${op.table}${op.uuidName ? ` as ${op.uuidName}` : ""}`;
    case "select":
      return `select from ${op.table}`;
    case "update":
    case "mutate":
      return `${op.op} ${op.table}`;
    case "delete":
      return `delete from ${op.table}`;
    case "wait":
      return `wait on ${op.table}`;
    case "assert":
      return `assert lock ${op.lock}`;
    default:
      return op.op;
  }
}

function conditionToWire(schema: DatabaseSchema, table: string, c: Condition, where: string): WireCondition {
  if (!Array.isArray(c) || c.length !== 3) {
    throw new NotationError(`${where}: a condition is [column, function, value], got ${JSON.stringify(c)}`);
  }
  const [column, fn, value] = c;
  const t = columnType(schema, table, column);
  return [column, fn, valueToWire(t, value, `${where} ${table}.${column}`)];
}

/** The value of a mutation depends on the mutator (RFC 7047 §5.1 `<mutation>`). */
function mutationValue(t: ColumnType, mutator: Mutator, v: unknown, where: string): WireValue {
  switch (mutator) {
    case "insert":
      return t.kind === "map" ? valueToWire(t, v, where) : setToWire(t, v, where);
    case "delete":
      // "If <column> is a map, <value> may be a map or a set of keys".
      if (t.kind === "map") {
        if (Array.isArray(v) || typeof v !== "object" || v === null) {
          return setToWire({ key: t.key, min: 0, max: Number.POSITIVE_INFINITY, kind: "set" }, v, where);
        }
        return valueToWire(t, v, where);
      }
      return setToWire(t, v, where);
    default:
      // Arithmetic applies to each element of an integer/real column: the value is one atom.
      return atomToWire(t.key, v, where);
  }
}

function mutationToWire(schema: DatabaseSchema, table: string, m: Mutation, where: string): WireMutation {
  if (!Array.isArray(m) || m.length !== 3) {
    throw new NotationError(`${where}: a mutation is [column, mutator, value], got ${JSON.stringify(m)}`);
  }
  const [column, mutator, value] = m;
  const t = columnType(schema, table, column);
  return [column, mutator, mutationValue(t, mutator, value, `${where} ${table}.${column}`)];
}

/** Encodes one operation against the schema; throws NotationError naming operation `index`. */
export function encodeOperation(schema: DatabaseSchema, op: Operation, index = 0): WireOperation {
  const where = `operation ${index} (${describeOperation(op)})`;
  const wrap = <T>(f: () => T): T => {
    try {
      return f();
    } catch (err) {
      if (err instanceof NotationError && !err.message.startsWith("operation ")) {
        throw new NotationError(`${where}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  };
  return wrap((): WireOperation => {
    const conds = (table: string, w: readonly Condition[]) =>
      w.map((c) => conditionToWire(schema, table, c, "where"));
    switch (op.op) {
      case "insert": {
        tableSchema(schema, op.table);
        const out: WireOperation = {
          op: "insert",
          table: op.table,
          row: rowToWire(schema, op.table, op.row),
        };
        if (op.uuidName !== undefined) out["uuid-name"] = op.uuidName;
        return out;
      }
      case "select": {
        const out: WireOperation = { op: "select", table: op.table, where: conds(op.table, op.where) };
        if (op.columns) {
          for (const c of op.columns) columnType(schema, op.table, c);
          out.columns = [...op.columns];
        }
        return out;
      }
      case "update":
        return {
          op: "update",
          table: op.table,
          where: conds(op.table, op.where),
          row: rowToWire(schema, op.table, op.row),
        };
      case "mutate":
        return {
          op: "mutate",
          table: op.table,
          where: conds(op.table, op.where),
          mutations: op.mutations.map((m) => mutationToWire(schema, op.table, m, "mutation")),
        };
      case "delete":
        return { op: "delete", table: op.table, where: conds(op.table, op.where) };
      case "wait": {
        for (const c of op.columns) columnType(schema, op.table, c);
        const out: WireOperation = {
          op: "wait",
          table: op.table,
          where: conds(op.table, op.where),
          columns: [...op.columns],
          until: op.until,
          rows: op.rows.map((r) => rowToWire(schema, op.table, r)),
        };
        if (op.timeout !== undefined) out.timeout = op.timeout;
        return out;
      }
      case "commit":
        return { op: "commit", durable: op.durable };
      case "abort":
        return { op: "abort" };
      case "comment":
        return { op: "comment", comment: op.comment };
      case "assert":
        return { op: "assert", lock: op.lock };
    }
  });
}

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

function isErrorResult(r: unknown): r is { error: unknown } {
  return r !== null && typeof r === "object" && "error" in r && r.error != null;
}

/**
 * Turns a `transact` result array into one JS result per operation, or throws
 * TransactionError. RFC 7047 §4.1.3: the result has one element per operation; after a
 * failed operation the rest are null; and "if all of the operations succeed, but the
 * results cannot be committed, then "result" will have one more element than "params",
 * with the additional element being an <error>" (ovsdb-server reports referential
 * integrity and unique-index violations that way).
 */
export function decodeResults<O extends readonly Operation[]>(
  schema: DatabaseSchema,
  ops: O,
  raw: unknown,
): TransactResults<O> {
  if (!Array.isArray(raw)) throw new ProtocolError(`transact result is not an array: ${JSON.stringify(raw)}`);
  if (raw.length < ops.length) {
    throw new ProtocolError(`transact returned ${raw.length} results for ${ops.length} operations`);
  }
  const errors: OvsdbServerError[] = [];
  raw.forEach((r: unknown, i) => {
    if (!isErrorResult(r)) return;
    const op = ops[i];
    errors.push(serverError(r, { index: i, ...(op ? { operation: describeOperation(op) } : {}) }));
  });
  if (errors.length > 0) throw new TransactionError(schema.name, ops.length, errors);
  return ops.map((op, i) => {
    const r = raw[i] as Record<string, unknown> | null;
    if (r === null || typeof r !== "object") {
      throw new ProtocolError(`transact result ${i} is ${JSON.stringify(r)} though no operation failed`);
    }
    switch (op.op) {
      case "insert": {
        if (!isWireUuid(r.uuid)) throw new ProtocolError(`insert result ${i} has no uuid`);
        return { uuid: r.uuid[1] };
      }
      case "select": {
        if (!Array.isArray(r.rows)) throw new ProtocolError(`select result ${i} has no rows`);
        return { rows: (r.rows as unknown[]).map((row) => rowFromWire(schema, op.table, row)) };
      }
      case "update":
      case "mutate":
      case "delete":
        if (typeof r.count !== "number") throw new ProtocolError(`${op.op} result ${i} has no count`);
        return { count: r.count };
      default:
        return {};
    }
  }) as TransactResults<O>;
}
