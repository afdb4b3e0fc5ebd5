/**
 * The OVSDB client: one JSON-RPC session at a time to one of the configured remotes,
 * re-established with exponential backoff and jitter when it drops; transactions encoded
 * against the server's live schema; monitors that feed `client.cache` and are re-issued
 * on every new session, each reply reloading the cache in full (the difference is emitted
 * as events, so rows deleted while we were away are reported deleted).
 *
 *   const client = await OvsdbClient.connect({ remote: "unix:/run/ovn/ovnnb_db.sock", logger });
 *   const mon = await client.monitor("OVN_Northbound", { Mirror: {}, Logical_Switch_Port: { columns: ["name", "mirror_rules"] } });
 *   client.cache.table("OVN_Northbound", "Mirror").on("change", (ev) => …);
 *   const [{ uuid }] = await client.transact("OVN_Northbound", [nbOp.insert("Mirror", row)]);
 *   await client.close();
 *
 * Requests made while no session is up fail at once with NotConnectedError (retryable);
 * requests cut off by a disconnect fail with ConnectionClosedError (outcome unknown).
 */
import { EventEmitter } from "node:events";
import { OvsdbCache, type ResyncEvent, type TableCache } from "../cache/cache.js";
import type { RowOf, TablesOf } from "../databases.js";
import {
  ClientClosedError,
  NotConnectedError,
  NotationError,
  OvsdbError,
  OvsdbServerError,
  ProtocolError,
  UnknownDatabaseError,
  UnknownMethodError,
  serverError,
} from "../errors.js";
import type { WireCondition } from "../ovsdb/notation.js";
import {
  decodeResults,
  encodeOperation,
  type Condition,
  type Operation,
  type TransactResults,
} from "../ovsdb/operations.js";
import {
  columnNames,
  columnType,
  isDatabaseSchema,
  tableSchema,
  type DatabaseSchema,
} from "../ovsdb/schema.js";
import type { TableUpdates, TableUpdates2 } from "../ovsdb/updates.js";
import { valueToWire } from "../ovsdb/values.js";
import { RpcSession, type Logger, type RequestOptions, type RpcStats } from "../wire/jsonrpc.js";
import { openTransport, type Remote } from "../wire/transport.js";
import type { TypedCondition } from "./op.js";
import { Backoff, parseClientOptions, type OvsdbClientOptions, type ParsedClientOptions } from "./options.js";

/** RFC 7047 §4.1.5 `<monitor-select>`: which kinds of change to receive (all by default). */
export interface MonitorSelect {
  initial?: boolean;
  insert?: boolean;
  delete?: boolean;
  modify?: boolean;
}

/** What to monitor in one table. `where` needs monitor_cond (ovsdb-server ≥ 2.6). */
export interface TableMonitorRequest<R = Record<string, unknown>> {
  /** Columns to replicate; all of the schema's columns when omitted. */
  columns?: readonly (keyof R & string)[];
  /** Rows to replicate (monitor_cond); all when omitted. */
  where?: readonly TypedCondition<R>[];
  select?: MonitorSelect;
}

export type MonitorRequests<T> = { readonly [N in keyof T & string]?: TableMonitorRequest<T[N]> };

export type MonitorMethod = "monitor_cond" | "monitor";

export interface MonitorOptions {
  /** Default monitor_cond, falling back to monitor on servers without it. */
  method?: MonitorMethod;
}

export type TransactOptions = RequestOptions;

export type ClientEvents = {
  /** A session is up and every monitor has been re-issued and its cache reloaded. */
  connected: [{ remote: string; reconnect: boolean }];
  /** The session dropped (the error says why); the client reconnects unless closed. */
  disconnected: [{ remote: string; error: Error | undefined }];
  /** Waiting before the next connection attempt. */
  reconnecting: [{ attempt: number; delayMs: number }];
  /** A monitor could not be (re-)established and was dropped. */
  monitorError: [{ monitorId: string; database: string; error: Error }];
  /** The server cancelled a monitor (its database was removed, ovsdb-server(7) §4.1.7). */
  monitorCanceled: [{ monitorId: string; database: string }];
  /** RFC 7047 §4.1.9: a lock we asked for was granted. */
  locked: [lockId: string];
  /** RFC 7047 §4.1.10: another client stole a lock we held. */
  stolen: [lockId: string];
};

interface MonitorState {
  readonly id: string;
  readonly database: string;
  readonly method: MonitorMethod;
  readonly tables: readonly string[];
  readonly columns: ReadonlyMap<string, readonly string[]>;
  readonly request: Readonly<Record<string, TableMonitorRequest>>;
  /** Until the reply is applied, notifications are queued (they may be dispatched first). */
  pending: boolean;
  queue: { format: "update" | "update2"; updates: unknown }[];
  /** Re-issued on reconnect once established. */
  established: boolean;
}

export interface ClientStats extends RpcStats {
  /** Sessions established after the first. */
  reconnects: number;
}

/** The row type a monitor delivers for one table: only the requested columns, plus `_uuid`. */
export type MonitoredRow<D extends string, T extends string, Req> = Req extends {
  columns: readonly (infer C)[];
}
  ? Pick<RowOf<D, T>, (C | "_uuid") & keyof RowOf<D, T>>
  : RowOf<D, T>;

/** A running monitor; `table()` gives its tables' caches typed by the columns requested. */
export class Monitor<D extends string = string, R = Record<string, TableMonitorRequest>> {
  constructor(
    private readonly client: OvsdbClient,
    readonly id: string,
    readonly database: D,
    readonly tables: readonly string[],
  ) {}

  /** The cache of one monitored table (the same object as `client.cache.table(database, name)`). */
  table<T extends keyof R & string>(name: T): TableCache<MonitoredRow<D, T, R[T]>> {
    return this.client.cache.db(this.database).table(name) as unknown as TableCache<MonitoredRow<D, T, R[T]>>;
  }

  /** RFC 7047 §4.1.7 monitor_cancel; the monitored tables are dropped from the cache (no events). */
  cancel(): Promise<void> {
    return this.client.monitorCancel(this.id);
  }
}

type State = "connecting" | "connected" | "closed";

function remoteLabel(r: Remote): string {
  return r.text;
}

export class OvsdbClient extends EventEmitter<ClientEvents> {
  /** Rows of every monitored table, kept current by the monitors. */
  readonly cache: OvsdbCache;

  private readonly options: ParsedClientOptions;
  private readonly logger: Logger;
  private state: State = "connecting";
  private session: RpcSession | undefined;
  private handshaking: RpcSession | undefined;
  private currentRemote: Remote | undefined;
  private readonly schemas = new Map<string, DatabaseSchema>();
  private readonly monitors = new Map<string, MonitorState>();
  private readonly wantedLocks = new Set<string>();
  private monitorSeq = 0;
  private monitorCondSupported = true;
  private readonly backoff: Backoff;
  private wakeSleep: (() => void) | undefined;
  private runLoop: Promise<void> | undefined;
  private readonly closedStats: ClientStats = {
    echoRequestsAnswered: 0,
    probesSent: 0,
    messagesReceived: 0,
    messagesSent: 0,
    reconnects: 0,
  };

  private constructor(options: ParsedClientOptions) {
    super();
    this.options = options;
    this.logger = options.logger;
    this.cache = new OvsdbCache(this.logger);
    this.backoff = new Backoff(options.backoff);
  }

  /**
   * Connects and resolves once a session is up (retrying with backoff for up to
   * `initialConnectTimeoutMs`). Rejects at once with UnknownDatabaseError when `database`
   * is not served.
   */
  static async connect(options: OvsdbClientOptions): Promise<OvsdbClient> {
    const client = new OvsdbClient(parseClientOptions(options));
    await client.start();
    return client;
  }

  get connected(): boolean {
    return this.state === "connected";
  }

  /** The remote of the live session. */
  get remote(): string | undefined {
    return this.state === "connected" && this.currentRemote ? remoteLabel(this.currentRemote) : undefined;
  }

  /** Counters over every session of this client (echoes answered, probes sent, reconnects). */
  get stats(): ClientStats {
    const s = this.session?.stats;
    const c = this.closedStats;
    return {
      echoRequestsAnswered: c.echoRequestsAnswered + (s?.echoRequestsAnswered ?? 0),
      probesSent: c.probesSent + (s?.probesSent ?? 0),
      messagesReceived: c.messagesReceived + (s?.messagesReceived ?? 0),
      messagesSent: c.messagesSent + (s?.messagesSent ?? 0),
      reconnects: c.reconnects,
    };
  }

  /** Resolves when a session is up (at once if it is); rejects after `timeoutMs` or when closed. */
  waitConnected(timeoutMs = 30_000): Promise<void> {
    if (this.state === "connected") return Promise.resolve();
    if (this.state === "closed") return Promise.reject(new ClientClosedError());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off("connected", onConnected);
        reject(new NotConnectedError(`still not connected after ${timeoutMs} ms`));
      }, timeoutMs);
      const onConnected = () => {
        clearTimeout(timer);
        resolve();
      };
      this.once("connected", onConnected);
    });
  }

  // -------------------------------------------------------------------------------------
  // RFC 7047 methods
  // -------------------------------------------------------------------------------------

  /** RFC 7047 §4.1.1. */
  async listDbs(): Promise<string[]> {
    return (await this.request(this.requireSession(), "list_dbs", [])) as string[];
  }

  /** RFC 7047 §4.1.2: fetches the schema from the server (and remembers it). */
  async getSchema(database: string): Promise<DatabaseSchema> {
    return this.fetchSchema(this.requireSession(), database);
  }

  /** The schema of `database`: fetched on first use, refreshed on every reconnect. */
  async schema(database: string): Promise<DatabaseSchema> {
    return this.schemas.get(database) ?? this.fetchSchema(this.requireSession(), database);
  }

  /**
   * RFC 7047 §4.1.3 transact: encodes the operations against the server's schema, sends
   * them as one transaction and resolves with one typed result per operation, or rejects
   * with TransactionError (whose `cause` is the failed operation's error class and
   * `index` its position; `index === ops.length` when the commit failed).
   */
  async transact<const O extends readonly Operation[]>(
    database: string,
    operations: O,
    options: TransactOptions = {},
  ): Promise<TransactResults<O>> {
    const session = this.requireSession();
    const schema = this.schemas.get(database) ?? (await this.fetchSchema(session, database));
    const wire = operations.map((o, i) => encodeOperation(schema, o, i));
    const raw = await this.request(session, "transact", [database, ...wire], options);
    return decodeResults(schema, operations, raw);
  }

  /**
   * Monitors tables (monitor_cond by default, RFC 7047 §4.1.5 / ovsdb-server(7) §4.1.12)
   * and feeds `client.cache`. Resolves once the initial rows are in the cache. The monitor
   * is re-issued on every reconnect until cancelled. A table can be in one monitor at a time.
   */
  async monitor<D extends string, const R extends MonitorRequests<TablesOf<D>>>(
    database: D,
    requests: R,
    options: MonitorOptions = {},
  ): Promise<Monitor<D, R>> {
    const session = this.requireSession();
    const schema = this.schemas.get(database) ?? (await this.fetchSchema(session, database));
    const request = requests as Readonly<Record<string, TableMonitorRequest | undefined>>;
    const tables = Object.keys(request).filter((t) => request[t] !== undefined);
    if (tables.length === 0) throw new OvsdbError("monitor: name at least one table");
    const columns = new Map<string, readonly string[]>();
    for (const t of tables) {
      tableSchema(schema, t);
      const cols = request[t]?.columns;
      for (const c of cols ?? []) columnType(schema, t, c);
      columns.set(t, cols ? [...cols] : columnNames(schema, t));
      for (const m of this.monitors.values()) {
        if (m.database === database && m.tables.includes(t)) {
          throw new OvsdbError(
            `monitor: ${database} table ${t} is already monitored by ${m.id}; cancel it first`,
          );
        }
      }
    }
    const wantsWhere = tables.some((t) => (request[t]?.where?.length ?? 0) > 0);
    let method: MonitorMethod = options.method ?? "monitor_cond";
    if (method === "monitor_cond" && !this.monitorCondSupported && !wantsWhere) method = "monitor";
    if (method === "monitor" && wantsWhere) {
      throw new OvsdbError(
        "monitor: `where` needs monitor_cond; the plain monitor method replicates whole tables",
      );
    }
    const state: MonitorState = {
      id: `ovntap-${database}-${++this.monitorSeq}`,
      database,
      method,
      tables,
      columns,
      request: request as Record<string, TableMonitorRequest>,
      pending: true,
      queue: [],
      established: false,
    };
    this.monitors.set(state.id, state);
    try {
      await this.issueMonitor(session, state);
    } catch (err) {
      this.monitors.delete(state.id);
      if (
        err instanceof UnknownMethodError &&
        method === "monitor_cond" &&
        options.method === undefined &&
        !wantsWhere
      ) {
        // ovsdb-server < 2.6 has no monitor_cond: fall back to RFC 7047 monitor.
        this.monitorCondSupported = false;
        return this.monitor<D, R>(database, requests, { method: "monitor" });
      }
      throw err;
    }
    state.established = true;
    return new Monitor<D, R>(this, state.id, database, tables);
  }

  /** RFC 7047 §4.1.7. The monitor's tables are dropped from the cache without events. */
  async monitorCancel(monitorId: string): Promise<void> {
    const m = this.monitors.get(monitorId);
    if (!m) return;
    this.monitors.delete(monitorId);
    for (const t of m.tables) this.cache.db(m.database).untrack(t);
    if (this.session?.isOpen) await this.request(this.session, "monitor_cancel", [monitorId]);
  }

  /** RFC 7047 §4.1.11: round trip; resolves with the params echoed back. */
  async echo(...params: unknown[]): Promise<unknown[]> {
    return (await this.request(this.requireSession(), "echo", params)) as unknown[];
  }

  /**
   * RFC 7047 §4.1.8 lock: resolves true when granted now; otherwise the `locked` event
   * fires when it is. Locks are re-requested after a reconnect.
   */
  async lock(lockId: string): Promise<boolean> {
    this.wantedLocks.add(lockId);
    const r = (await this.request(this.requireSession(), "lock", [lockId])) as { locked?: boolean };
    return r.locked === true;
  }

  /** RFC 7047 §4.1.8 steal: takes the lock from its owner (who gets `stolen`). */
  async steal(lockId: string): Promise<void> {
    this.wantedLocks.add(lockId);
    await this.request(this.requireSession(), "steal", [lockId]);
  }

  /** RFC 7047 §4.1.8 unlock. */
  async unlock(lockId: string): Promise<void> {
    this.wantedLocks.delete(lockId);
    await this.request(this.requireSession(), "unlock", [lockId]);
  }

  /** Stops reconnecting, closes the session (outstanding requests fail) and waits for the loop to end. */
  async close(): Promise<void> {
    if (this.state === "closed") {
      await this.runLoop;
      return;
    }
    this.state = "closed";
    this.wakeSleep?.();
    this.session?.close(new ClientClosedError());
    this.handshaking?.close(new ClientClosedError());
    await this.runLoop;
  }

  // -------------------------------------------------------------------------------------
  // Sessions
  // -------------------------------------------------------------------------------------

  private isClosed(): boolean {
    return this.state === "closed";
  }

  private requireSession(): RpcSession {
    if (this.state === "closed") throw new ClientClosedError();
    if (this.state !== "connected" || !this.session?.isOpen) throw new NotConnectedError("reconnecting");
    return this.session;
  }

  private request(session: RpcSession, method: string, params: unknown[], options: RequestOptions = {}) {
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs;
    return session.request(method, params, {
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  private async fetchSchema(session: RpcSession, database: string): Promise<DatabaseSchema> {
    const raw = await this.request(session, "get_schema", [database]);
    if (!isDatabaseSchema(raw)) throw new ProtocolError(`get_schema ${database} returned no schema`);
    this.schemas.set(database, raw);
    this.cache.db(database).setSchema(raw);
    return raw;
  }

  private start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + this.options.initialConnectTimeoutMs;
      let settled = false;
      this.runLoop = this.run({
        onConnected: () => {
          if (!settled) {
            settled = true;
            resolve();
          }
        },
        onInitialFailure: (err, terminal) => {
          if (settled) return false;
          if (terminal || this.state === "closed" || Date.now() >= deadline) {
            settled = true;
            reject(err);
            return true;
          }
          return false;
        },
      });
      this.runLoop.then(
        () => {
          if (!settled) {
            settled = true;
            reject(new ClientClosedError());
          }
        },
        (err: unknown) => {
          if (!settled) {
            settled = true;
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        },
      );
    });
  }

  private async run(hooks: {
    onConnected: () => void;
    onInitialFailure: (err: Error, terminal: boolean) => boolean;
  }): Promise<void> {
    let everConnected = false;
    let attempt = 0;
    let next = 0;
    while (!this.isClosed()) {
      const remote = this.options.remotes[next % this.options.remotes.length] as Remote;
      next++;
      let session: RpcSession | undefined;
      try {
        const stream = await openTransport(remote, {
          connectTimeoutMs: this.options.connectTimeoutMs,
          ssl: this.options.ssl,
        });
        if (this.isClosed()) {
          stream.destroy();
          break;
        }
        const s = new RpcSession(stream, {
          probeIntervalMs: this.options.probeIntervalMs,
          onNotification: (method, params) => this.onNotification(s, method, params),
          mapError: (method, error) => serverError(error, { method }),
          logger: this.logger,
          label: remoteLabel(remote),
          ...(this.options.maxMessageBytes !== undefined
            ? { maxValueBytes: this.options.maxMessageBytes }
            : {}),
        });
        session = s;
        this.handshaking = s;
        await this.handshake(s);
        this.handshaking = undefined;
        if (this.isClosed()) {
          s.close(new ClientClosedError());
          break;
        }
        this.session = s;
        this.currentRemote = remote;
        this.state = "connected";
        attempt = 0;
        this.backoff.reset();
        if (everConnected) this.closedStats.reconnects++;
        this.logger.info({ remote: remote.text, reconnect: everConnected }, "ovsdb connected");
        this.emit("connected", { remote: remote.text, reconnect: everConnected });
        everConnected = true;
        hooks.onConnected();
        const reason = await s.closed;
        this.session = undefined;
        this.accumulate(s.stats);
        if (!this.isClosed()) this.state = "connecting";
        for (const m of this.monitors.values()) m.pending = true;
        if (this.isClosed()) this.logger.debug({ remote: remote.text }, "ovsdb session closed");
        else this.logger.warn({ remote: remote.text, err: reason }, "ovsdb disconnected");
        this.emit("disconnected", { remote: remote.text, error: reason });
      } catch (err) {
        this.handshaking = undefined;
        session?.close(err as Error);
        if (session) this.accumulate(session.stats);
        const error = err as Error;
        this.logger.warn({ remote: remote.text, err: error }, "ovsdb connection attempt failed");
        if (!everConnected) {
          const terminal = error instanceof UnknownDatabaseError || error instanceof ClientClosedError;
          if (hooks.onInitialFailure(error, terminal)) {
            this.state = "closed";
            break;
          }
        }
      }
      if (this.isClosed()) break;
      if (!this.options.reconnect && everConnected) {
        this.state = "closed";
        break;
      }
      const delayMs = this.backoff.next();
      attempt++;
      this.emit("reconnecting", { attempt, delayMs });
      await this.sleep(delayMs);
    }
    this.session = undefined;
  }

  private accumulate(s: RpcStats): void {
    this.closedStats.echoRequestsAnswered += s.echoRequestsAnswered;
    this.closedStats.probesSent += s.probesSent;
    this.closedStats.messagesReceived += s.messagesReceived;
    this.closedStats.messagesSent += s.messagesSent;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleep = done;
    });
  }

  /**
   * Brings a new session to the client's state: checks the database, reloads the schemas
   * in use (the server may have been upgraded), re-requests locks and re-issues every
   * monitor, reloading the cache from each reply.
   */
  private async handshake(session: RpcSession): Promise<void> {
    const dbs = await this.request(session, "list_dbs", []);
    if (!Array.isArray(dbs)) throw new ProtocolError("list_dbs did not return an array");
    const wanted = new Set<string>([
      ...this.schemas.keys(),
      ...[...this.monitors.values()].map((m) => m.database),
    ]);
    if (this.options.database !== undefined) {
      if (!dbs.includes(this.options.database)) {
        throw new UnknownDatabaseError(
          { error: "unknown database", details: `${this.options.database} is not among ${dbs.join(", ")}` },
          { method: "list_dbs" },
        );
      }
      wanted.add(this.options.database);
    }
    for (const db of wanted) {
      if (dbs.includes(db)) await this.fetchSchema(session, db);
    }
    for (const lockId of this.wantedLocks) {
      await this.request(session, "lock", [lockId]);
    }
    for (const m of [...this.monitors.values()]) {
      if (!m.established) continue;
      try {
        await this.issueMonitor(session, m);
      } catch (err) {
        if (!(err instanceof OvsdbServerError) && !(err instanceof NotationError)) {
          throw err;
        }
        // The server no longer accepts this monitor (e.g. the table left the schema).
        this.monitors.delete(m.id);
        for (const t of m.tables) this.cache.db(m.database).untrack(t);
        this.logger.error(
          { err, monitorId: m.id, database: m.database },
          "monitor could not be re-established",
        );
        this.emit("monitorError", { monitorId: m.id, database: m.database, error: err });
      }
    }
  }

  private monitorParams(m: MonitorState, schema: DatabaseSchema): unknown[] {
    const requests: Record<string, unknown[]> = {};
    for (const t of m.tables) {
      const r = m.request[t] ?? {};
      const one: Record<string, unknown> = { columns: m.columns.get(t) };
      if (r.select) one.select = r.select;
      if (m.method === "monitor_cond" && r.where && r.where.length > 0) {
        one.where = (r.where as readonly Condition[]).map(([col, fn, value]): WireCondition => [
          col,
          fn,
          valueToWire(columnType(schema, t, col), value, `monitor where ${t}.${col}`),
        ]);
      }
      requests[t] = [one];
    }
    return [m.database, m.id, requests];
  }

  private async issueMonitor(session: RpcSession, m: MonitorState): Promise<void> {
    const schema = this.schemas.get(m.database) ?? (await this.fetchSchema(session, m.database));
    m.pending = true;
    m.queue = [];
    const result = await this.request(session, m.method, this.monitorParams(m, schema));
    if (result === null || typeof result !== "object" || Array.isArray(result)) {
      throw new ProtocolError(`${m.method} reply is not an object`);
    }
    const db = this.cache.db(m.database);
    db.setSchema(schema);
    for (const t of m.tables) db.track(t, m.columns.get(t));
    const format = m.method === "monitor_cond" ? "update2" : "update";
    const { events, resync } = db.replace(m.tables, result as TableUpdates2 & TableUpdates, format);
    m.pending = false;
    this.cache.dispatch(m.database, events, resync);
    this.logger.debug({ monitorId: m.id, ...summary(resync) }, "monitor reply applied");
    const queued = m.queue;
    m.queue = [];
    for (const q of queued) this.applyUpdate(session, m, q.format, q.updates);
  }

  private onNotification(session: RpcSession, method: string, params: unknown[]): void {
    switch (method) {
      case "update":
      case "update2":
      case "update3": {
        // update3 (monitor_cond_since): [id, last-txn-id, table-updates2].
        const id = params[0];
        const updates = method === "update3" ? params[2] : params[1];
        const m = typeof id === "string" ? this.monitors.get(id) : undefined;
        if (!m) {
          this.logger.debug({ method, monitorId: id }, "update for an unknown monitor");
          return;
        }
        const format = method === "update" ? "update" : "update2";
        if (m.pending) m.queue.push({ format, updates });
        else this.applyUpdate(session, m, format, updates);
        return;
      }
      case "locked":
      case "stolen": {
        const lockId = params[0];
        if (typeof lockId === "string") {
          if (method === "stolen") this.logger.warn({ lockId }, "ovsdb lock stolen");
          this.emit(method, lockId);
        }
        return;
      }
      case "monitor_canceled": {
        const id = params[0];
        const m = typeof id === "string" ? this.monitors.get(id) : undefined;
        if (!m) return;
        this.monitors.delete(m.id);
        for (const t of m.tables) this.cache.db(m.database).untrack(t);
        this.logger.warn({ monitorId: m.id, database: m.database }, "server cancelled monitor");
        this.emit("monitorCanceled", { monitorId: m.id, database: m.database });
        return;
      }
      default:
        this.logger.debug({ method }, "ignored notification");
    }
  }

  private applyUpdate(
    session: RpcSession,
    m: MonitorState,
    format: "update" | "update2",
    updates: unknown,
  ): void {
    const db = this.cache.db(m.database);
    try {
      if (updates === null || typeof updates !== "object") throw new ProtocolError("malformed table-updates");
      const events =
        format === "update2"
          ? db.applyUpdates2(updates as TableUpdates2)
          : db.applyUpdates(updates as TableUpdates);
      this.cache.dispatch(m.database, events);
    } catch (err) {
      // The cache no longer matches the server: drop the session; the reconnect reloads it.
      this.logger.error({ err, monitorId: m.id }, "monitor update could not be applied; resynchronising");
      session.close(new ProtocolError(`monitor update could not be applied: ${(err as Error).message}`));
    }
  }
}

function summary(r: ResyncEvent) {
  return {
    database: r.database,
    tables: r.tables,
    inserted: r.inserted,
    updated: r.updated,
    deleted: r.deleted,
  };
}
