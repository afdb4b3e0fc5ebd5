/**
 * A small builder for RFC 7047 §5.2 operations, typed by the generated row types:
 *
 *   import { nbOp as op } from "@ovntap/ovsdb";
 *   const [ls] = await client.transact("OVN_Northbound", [
 *     op.insert("Logical_Switch_Port", { name: "pod.ns" }, "lsp"),
 *     op.insert("Logical_Switch", { name: "ls0", ports: ["lsp"] }),      // "lsp" → named-uuid
 *     op.mutate("Mirror", [["name", "==", "m1"]], [["external_ids", "insert", { "ovntap/mirror": "m1" }]]),
 *     op.select("Mirror", [["index", ">=", 100]], ["name", "index"]),
 *   ]);
 *
 * Values are plain JS (see ovsdb/values.ts); the client encodes them against the live
 * schema in `transact`. `op` is the untyped builder for any database.
 */
import type { AnyTables } from "../databases.js";
import type { Tables as NbTables } from "../generated/ovn-nb.js";
import type { Tables as SbTables } from "../generated/ovn-sb.js";
import type { Tables as VswitchTables } from "../generated/vswitch.js";
import type { ConditionFunction, Mutator } from "../ovsdb/notation.js";
import type {
  AbortOp,
  AssertOp,
  CommentOp,
  CommitOp,
  DeleteOp,
  InsertOp,
  MutateOp,
  SelectOp,
  UpdateOp,
  WaitOp,
} from "../ovsdb/operations.js";

type ElementOf<V> = V extends readonly (infer E)[] ? E : never;

/** A row to write: every column optional, `_uuid` excluded. */
export type RowInput<R> = { readonly [K in Exclude<keyof R, "_uuid" | "_version">]?: R[K] };

/** `[column, function, value]`: the value is the column's type or, for sets, one element. */
export type TypedCondition<R> = {
  [C in keyof R & string]: readonly [C, ConditionFunction, R[C] | ElementOf<R[C]>];
}[keyof R & string];

type MutationValue<V> = V extends readonly unknown[]
  ? V | ElementOf<V>
  : V extends number | null
    ? number
    : V extends object
      ? V | readonly (keyof V & (string | number))[]
      : V;

/** `[column, mutator, value]`: sets take elements; maps take pairs to insert/delete or keys to delete. */
export type TypedMutation<R> = {
  [C in keyof R & string]: readonly [C, Mutator, MutationValue<R[C]>];
}[keyof R & string];

type Selected<R, C> = C extends readonly (infer K extends keyof R)[]
  ? Pick<R, K>
  : R & { readonly _version: string };

export interface OpBuilder<T> {
  /** RFC 7047 §5.2.1. `uuidName` lets later operations refer to the row before it has a UUID. */
  insert<N extends keyof T & string>(table: N, row: RowInput<T[N]>, uuidName?: string): InsertOp;
  /** RFC 7047 §5.2.2. Without `columns`, rows carry every column plus `_uuid` and `_version`. */
  select<
    N extends keyof T & string,
    const C extends readonly (keyof T[N] & string)[] | undefined = undefined,
  >(
    table: N,
    where?: readonly TypedCondition<T[N]>[],
    columns?: C,
  ): SelectOp<Selected<T[N], C>>;
  /** RFC 7047 §5.2.3. */
  update<N extends keyof T & string>(
    table: N,
    where: readonly TypedCondition<T[N]>[],
    row: RowInput<T[N]>,
  ): UpdateOp;
  /** RFC 7047 §5.2.4. */
  mutate<N extends keyof T & string>(
    table: N,
    where: readonly TypedCondition<T[N]>[],
    mutations: readonly TypedMutation<T[N]>[],
  ): MutateOp;
  /** RFC 7047 §5.2.5. */
  delete<N extends keyof T & string>(table: N, where: readonly TypedCondition<T[N]>[]): DeleteOp;
  /**
   * RFC 7047 §5.2.6: waits until the rows matching `where`, projected on `columns`, are
   * (`until: "=="`) or are not (`"!="`) exactly `rows`; fails with "timed out" after
   * `timeout` ms (0: at once).
   */
  wait<N extends keyof T & string, const C extends readonly (keyof T[N] & string)[]>(
    table: N,
    where: readonly TypedCondition<T[N]>[],
    columns: C,
    until: "==" | "!=",
    rows: readonly Partial<Pick<T[N], C[number]>>[],
    timeout?: number,
  ): WaitOp;
  /** RFC 7047 §5.2.7. */
  commit(durable?: boolean): CommitOp;
  /** RFC 7047 §5.2.8: the transaction fails with "aborted". */
  abort(): AbortOp;
  /** RFC 7047 §5.2.9: recorded in the server's log with the transaction. */
  comment(comment: string): CommentOp;
  /** RFC 7047 §5.2.10: fails with "not owner" unless this session holds `lock`. */
  assert(lock: string): AssertOp;
}

/** A builder typed for a table map (e.g. the generated `Tables` of a database). */
export function opsFor<T = AnyTables>(): OpBuilder<T> {
  return {
    insert: (table, row, uuidName) => ({ op: "insert", table, row, uuidName }),
    select: (table, where = [], columns) => ({ op: "select", table, where, columns }),
    update: (table, where, row) => ({ op: "update", table, where, row }),
    mutate: (table, where, mutations) => ({ op: "mutate", table, where, mutations }),
    delete: (table, where) => ({ op: "delete", table, where }),
    wait: (table, where, columns, until, rows, timeout) => ({
      op: "wait",
      table,
      where,
      columns,
      until,
      rows,
      timeout,
    }),
    commit: (durable = false) => ({ op: "commit", durable }),
    abort: () => ({ op: "abort" }),
    comment: (comment) => ({ op: "comment", comment }),
    assert: (lock) => ({ op: "assert", lock }),
  };
}

/** Untyped: any table, any column. */
export const op: OpBuilder<AnyTables> = opsFor<AnyTables>();
/** Typed for OVN_Northbound. */
export const nbOp: OpBuilder<NbTables> = opsFor<NbTables>();
/** Typed for OVN_Southbound. */
export const sbOp: OpBuilder<SbTables> = opsFor<SbTables>();
/** Typed for Open_vSwitch. */
export const ovsOp: OpBuilder<VswitchTables> = opsFor<VswitchTables>();
