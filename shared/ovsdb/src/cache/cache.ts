/**
 * The client's local copy of monitored tables, filled only by monitor replies and
 * update/update2 notifications, never by our own writes (ovsdb-server sends the update
 * for our own transaction before the transaction's reply, ovsdb-server(7) §4.1.5, so the
 * cache is current when `transact` resolves).
 *
 *   const mirrors = client.cache.table("OVN_Northbound", "Mirror");
 *   mirrors.on("change", (ev) => { if (ev.type === "delete") forget(ev.old.name); });
 *   for (const m of mirrors.rows()) …
 *
 * Rows are frozen. Events fire after a whole update has been applied, so a listener sees
 * the cache in the state the server had after the transaction. A full reload (the monitor
 * reply after a reconnect) replaces the table's rows and fires the difference: a delete
 * for each row that vanished while we were away, an insert for each new row and an update
 * for each changed one — consumers converge without knowing a reconnect happened
 * (libovsdb issue #250: a cache kept across a reconnect without resync misses deletions).
 */
import { EventEmitter } from "node:events";
import type { AnyRow, RowOf, TableOf } from "../databases.js";
import { NotationError } from "../errors.js";
import { columnNames, columnType, type DatabaseSchema } from "../ovsdb/schema.js";
import {
  applyRowDiff,
  classifyUpdate,
  classifyUpdate2,
  type TableUpdates,
  type TableUpdates2,
} from "../ovsdb/updates.js";
import { defaultValue, rowFromWire, valuesEqual, type NativeValue } from "../ovsdb/values.js";
import type { Logger } from "../wire/jsonrpc.js";

interface EventBase {
  readonly database: string;
  readonly table: string;
  readonly uuid: string;
}

/** A change to one cached row. `update` carries the whole old and new rows. */
export type RowEvent<R = AnyRow> =
  | (EventBase & { readonly type: "insert"; readonly new: R })
  | (EventBase & { readonly type: "update"; readonly old: R; readonly new: R })
  | (EventBase & { readonly type: "delete"; readonly old: R });

/** A table (or tables) of a database were reloaded in full from a monitor reply. */
export interface ResyncEvent {
  readonly database: string;
  readonly tables: readonly string[];
  readonly inserted: number;
  readonly updated: number;
  readonly deleted: number;
}

type TableEvents<R> = { change: [RowEvent<R>]; resync: [ResyncEvent] };

type MutableRow = Record<string, NativeValue>;

function freezeRow(row: MutableRow): AnyRow {
  for (const v of Object.values(row)) if (v !== null && typeof v === "object") Object.freeze(v);
  return Object.freeze(row) as AnyRow;
}

/** The cached rows of one table. */
export class TableCache<R = AnyRow> extends EventEmitter<TableEvents<R>> {
  /** @internal */ rowsByUuid = new Map<string, R>();
  /** @internal Columns the monitor asked for; undefined until the table is monitored. */
  monitoredColumns: readonly string[] | undefined;

  constructor(
    readonly database: string,
    readonly name: string,
  ) {
    super();
  }

  get size(): number {
    return this.rowsByUuid.size;
  }
  /** Whether a monitor currently feeds this table. */
  get monitored(): boolean {
    return this.monitoredColumns !== undefined;
  }
  get(uuid: string): R | undefined {
    return this.rowsByUuid.get(uuid);
  }
  has(uuid: string): boolean {
    return this.rowsByUuid.has(uuid);
  }
  rows(): R[] {
    return [...this.rowsByUuid.values()];
  }
  uuids(): string[] {
    return [...this.rowsByUuid.keys()];
  }
  find(pred: (row: R) => boolean): R | undefined {
    for (const r of this.rowsByUuid.values()) if (pred(r)) return r;
    return undefined;
  }
  filter(pred: (row: R) => boolean): R[] {
    return this.rows().filter(pred);
  }
  [Symbol.iterator](): IterableIterator<R> {
    return this.rowsByUuid.values();
  }
}

type DbEvents = { change: [RowEvent]; resync: [ResyncEvent] };

/** The cached tables of one database. */
export class DatabaseCache extends EventEmitter<DbEvents> {
  private readonly tables = new Map<string, TableCache>();
  private currentSchema: DatabaseSchema | undefined;

  constructor(readonly name: string) {
    super();
  }

  get schema(): DatabaseSchema | undefined {
    return this.currentSchema;
  }

  /** @internal */
  setSchema(schema: DatabaseSchema): void {
    this.currentSchema = schema;
  }

  /** The table's cache, created empty if nothing monitors it yet (so listeners can attach early). */
  table(name: string): TableCache {
    let t = this.tables.get(name);
    if (!t) {
      t = new TableCache(this.name, name);
      this.tables.set(name, t);
    }
    return t;
  }

  tableNames(): string[] {
    return [...this.tables.keys()];
  }

  private requireSchema(): DatabaseSchema {
    if (!this.currentSchema) throw new NotationError(`no schema for ${this.name}: monitor it first`);
    return this.currentSchema;
  }

  /** @internal Starts feeding `table` with these columns (all schema columns when undefined). */
  track(table: string, columns: readonly string[] | undefined): void {
    const schema = this.requireSchema();
    this.table(table).monitoredColumns = columns ?? columnNames(schema, table);
  }

  /** @internal Stops feeding `table` and forgets its rows (no events: nothing was deleted). */
  untrack(table: string): void {
    const t = this.tables.get(table);
    if (!t) return;
    t.monitoredColumns = undefined;
    t.rowsByUuid.clear();
  }

  private fullRow(table: TableCache, uuid: string, decoded: MutableRow): AnyRow {
    const schema = this.requireSchema();
    const row: MutableRow = { _uuid: uuid };
    // ovsdb-server(7) §4.1.14: initial and insert rows omit columns equal to the default.
    for (const col of table.monitoredColumns ?? []) {
      row[col] = defaultValue(columnType(schema, table.name, col));
    }
    Object.assign(row, decoded);
    return freezeRow(row);
  }

  /** @internal Applies an update2 (or update3) notification; returns the events to dispatch. */
  applyUpdates2(updates: TableUpdates2): RowEvent[] {
    const schema = this.requireSchema();
    const events: RowEvent[] = [];
    for (const [tableName, rows] of Object.entries(updates)) {
      const table = this.table(tableName);
      const base = { database: this.name, table: tableName };
      for (const [uuid, u] of Object.entries(rows)) {
        const change = classifyUpdate2(u, `${tableName} ${uuid}`);
        const old = table.rowsByUuid.get(uuid);
        if (change.kind === "delete") {
          if (!old) continue;
          table.rowsByUuid.delete(uuid);
          events.push({ ...base, uuid, type: "delete", old });
        } else if (change.kind === "modify") {
          if (!old) throw new NotationError(`${tableName}: modify for unknown row ${uuid}`);
          const next = freezeRow({ ...applyRowDiff(schema, tableName, old, change.diff), _uuid: uuid });
          table.rowsByUuid.set(uuid, next);
          events.push({ ...base, uuid, type: "update", old, new: next });
        } else {
          const next = this.fullRow(table, uuid, rowFromWire(schema, tableName, change.row));
          table.rowsByUuid.set(uuid, next);
          events.push(
            old
              ? { ...base, uuid, type: "update", old, new: next }
              : { ...base, uuid, type: "insert", new: next },
          );
        }
      }
    }
    return events;
  }

  /** @internal Applies an RFC 7047 §4.1.6 update notification (the `monitor` method). */
  applyUpdates(updates: TableUpdates): RowEvent[] {
    const schema = this.requireSchema();
    const events: RowEvent[] = [];
    for (const [tableName, rows] of Object.entries(updates)) {
      const table = this.table(tableName);
      const base = { database: this.name, table: tableName };
      for (const [uuid, u] of Object.entries(rows)) {
        const change = classifyUpdate(u, `${tableName} ${uuid}`);
        const old = table.rowsByUuid.get(uuid);
        if (change.kind === "delete") {
          if (!old) continue;
          table.rowsByUuid.delete(uuid);
          events.push({ ...base, uuid, type: "delete", old });
          continue;
        }
        if (change.kind === "modify") continue; // not produced by classifyUpdate
        // "new" holds every monitored column; merge over the old row to be safe.
        const decoded = rowFromWire(schema, tableName, change.row);
        const next = old
          ? freezeRow({ ...(old as MutableRow), ...decoded, _uuid: uuid })
          : this.fullRow(table, uuid, decoded);
        table.rowsByUuid.set(uuid, next);
        events.push(
          old
            ? { ...base, uuid, type: "update", old, new: next }
            : { ...base, uuid, type: "insert", new: next },
        );
      }
    }
    return events;
  }

  /**
   * @internal Replaces `tables` with the content of a monitor reply (a full initial load)
   * and returns the difference as events, plus a resync event.
   */
  replace(
    tables: readonly string[],
    initial: TableUpdates2 | TableUpdates,
    format: "update2" | "update",
  ): { events: RowEvent[]; resync: ResyncEvent } {
    const schema = this.requireSchema();
    const events: RowEvent[] = [];
    let inserted = 0;
    let updated = 0;
    let deleted = 0;
    for (const tableName of tables) {
      const table = this.table(tableName);
      const base = { database: this.name, table: tableName };
      const fresh = new Map<string, AnyRow>();
      for (const [uuid, u] of Object.entries(initial[tableName] ?? {})) {
        const change =
          format === "update2"
            ? classifyUpdate2(u, `${tableName} ${uuid}`)
            : classifyUpdate(u, `${tableName} ${uuid}`);
        if (change.kind === "delete" || change.kind === "modify") continue;
        fresh.set(uuid, this.fullRow(table, uuid, rowFromWire(schema, tableName, change.row)));
      }
      for (const [uuid, old] of table.rowsByUuid) {
        if (!fresh.has(uuid)) {
          events.push({ ...base, uuid, type: "delete", old });
          deleted++;
        }
      }
      for (const [uuid, next] of fresh) {
        const old = table.rowsByUuid.get(uuid);
        if (!old) {
          events.push({ ...base, uuid, type: "insert", new: next });
          inserted++;
        } else if (!rowsEqual(old, next)) {
          events.push({ ...base, uuid, type: "update", old, new: next });
          updated++;
        } else {
          fresh.set(uuid, old); // keep identity for unchanged rows
        }
      }
      table.rowsByUuid = fresh;
    }
    return { events, resync: { database: this.name, tables: [...tables], inserted, updated, deleted } };
  }
}

function rowsEqual(a: AnyRow, b: AnyRow): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => valuesEqual(a[k], b[k]));
}

type CacheEvents = { change: [RowEvent]; resync: [ResyncEvent] };

/** Every database's cache; `change` relays every row event of every database. */
export class OvsdbCache extends EventEmitter<CacheEvents> {
  private readonly dbs = new Map<string, DatabaseCache>();

  constructor(private readonly logger?: Logger) {
    super();
  }

  /** The cache of one database (created empty on first use). */
  db(name: string): DatabaseCache {
    let d = this.dbs.get(name);
    if (!d) {
      d = new DatabaseCache(name);
      this.dbs.set(name, d);
    }
    return d;
  }

  databases(): string[] {
    return [...this.dbs.keys()];
  }

  /** A table's cache, typed by the database and table names when they are known. */
  table<D extends string, T extends TableOf<D>>(database: D, table: T): TableCache<RowOf<D, T>> {
    return this.db(database).table(table) as unknown as TableCache<RowOf<D, T>>;
  }

  /** @internal Fires events on the table, the database and this cache; listener errors are logged, not thrown. */
  dispatch(database: string, events: readonly RowEvent[], resync?: ResyncEvent): void {
    const db = this.db(database);
    const safe = (f: () => void, ev: { table?: string }) => {
      try {
        f();
      } catch (err) {
        this.logger?.error({ err, database, table: ev.table }, "cache listener threw");
      }
    };
    for (const ev of events) {
      const table = db.table(ev.table);
      safe(() => table.emit("change", ev), ev);
      safe(() => db.emit("change", ev), ev);
      safe(() => this.emit("change", ev), ev);
    }
    if (resync) {
      for (const t of resync.tables) safe(() => db.table(t).emit("resync", resync), { table: t });
      safe(() => db.emit("resync", resync), {});
      safe(() => this.emit("resync", resync), {});
    }
  }
}
