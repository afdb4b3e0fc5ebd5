/**
 * One JSON-RPC 1.0 session over a byte stream (RFC 7047 §4): request/response matching by
 * id, notifications in arrival order, the `echo` keepalive in both directions, and an
 * inactivity probe. Knows nothing of databases; the client layers OVSDB on top.
 *
 *   const session = new RpcSession(stream, { probeIntervalMs: 5000, onNotification });
 *   const dbs = await session.request("list_dbs", []);
 *   session.closed.then((err) => reconnect(err));
 *
 * Keepalive, as Open vSwitch's reconnect FSM does it: when nothing has been received for
 * `probeIntervalMs` we send an `echo` request (RFC 7047 §4.1.11); if still nothing arrives
 * within another `probeIntervalMs`, the peer is declared dead and the session closes with
 * InactivityTimeoutError. The server's own `echo` requests are answered with their params.
 */
import type { Duplex } from "node:stream";
import {
  ConnectionClosedError,
  InactivityTimeoutError,
  OvsdbError,
  ProtocolError,
  RequestTimeoutError,
} from "../errors.js";
import { JsonStreamParser } from "./framing.js";

/** A logger with pino's call shape; every method is optional to call, never required to exist elsewhere. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

export type JsonRpcId = string | number;

/** RFC 7047 §4: request (id non-null), notification (id null), response (result + error). */
export type JsonRpcMessage =
  | { method: string; params: unknown[]; id: JsonRpcId }
  | { method: string; params: unknown[]; id: null }
  | { result: unknown; error: unknown; id: JsonRpcId | null };

export interface RequestOptions {
  /** Reject with RequestTimeoutError after this long, and send `cancel` (RFC 7047 §4.1.4). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface RpcSessionOptions {
  /** Inactivity probe interval; 0 disables our probe (server echoes are still answered). */
  probeIntervalMs: number;
  /** Notifications (id null), synchronously and in arrival order. Must not throw. */
  onNotification?: (method: string, params: unknown[]) => void;
  /** Turns a response's non-null `error` into an Error. */
  mapError?: (method: string, error: unknown) => Error;
  maxValueBytes?: number;
  logger?: Logger;
  /** Label for logs (the remote). */
  label?: string;
}

export interface RpcStats {
  /** Echo requests from the server that we answered. */
  echoRequestsAnswered: number;
  /** Echo probes we sent because the connection was idle. */
  probesSent: number;
  messagesReceived: number;
  messagesSent: number;
}

interface Pending {
  method: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  cleanup: () => void;
}

const ECHO_ID_PREFIX = "echo-probe-";

export class RpcSession {
  /** Resolves (never rejects) when the session ends, with the reason (undefined: closed by us cleanly). */
  readonly closed: Promise<Error | undefined>;
  readonly stats: RpcStats = { echoRequestsAnswered: 0, probesSent: 0, messagesReceived: 0, messagesSent: 0 };

  private readonly pending = new Map<JsonRpcId, Pending>();
  private readonly parser: JsonStreamParser;
  private readonly logger: Logger;
  private nextId = 1;
  private isClosed = false;
  private closeReason: Error | undefined;
  private resolveClosed!: (err: Error | undefined) => void;
  private lastReceived = Date.now();
  private probing = false;
  private probeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: Duplex,
    private readonly options: RpcSessionOptions,
  ) {
    this.logger = options.logger ?? silentLogger;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.parser = new JsonStreamParser((v) => this.dispatch(v), {
      ...(options.maxValueBytes !== undefined ? { maxValueBytes: options.maxValueBytes } : {}),
    });
    stream.on("data", (chunk: Buffer) => {
      this.lastReceived = Date.now();
      this.probing = false;
      try {
        this.parser.push(chunk);
      } catch (err) {
        this.close(err as Error);
      }
    });
    stream.on("end", () => {
      try {
        this.parser.end();
      } catch (err) {
        this.close(err as Error);
        return;
      }
      this.close(new ConnectionClosedError("the server closed the connection"));
    });
    stream.on("error", (err) => this.close(new ConnectionClosedError(err.message, { cause: err })));
    stream.on("close", () => this.close(new ConnectionClosedError("the connection closed")));
    this.scheduleProbe();
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** Sends a request and resolves with its `result`, or rejects with the mapped `error`. */
  request(method: string, params: unknown[], options: RequestOptions = {}): Promise<unknown> {
    if (this.isClosed) {
      return Promise.reject(
        new ConnectionClosedError(`session closed before ${method}`, { cause: this.closeReason }),
      );
    }
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        this.cancel(id);
        reject(options.signal?.reason instanceof Error ? options.signal.reason : new Error("aborted"));
      };
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      if (options.signal?.aborted) {
        reject(options.signal.reason instanceof Error ? options.signal.reason : new Error("aborted"));
        return;
      }
      this.pending.set(id, { method, resolve, reject, cleanup });
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.cancel(id);
          reject(new RequestTimeoutError(method, options.timeoutMs as number));
        }, options.timeoutMs);
      }
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.send({ method, params, id });
    });
  }

  /** Sends a notification (no reply expected). */
  notify(method: string, params: unknown[]): void {
    if (!this.isClosed) this.send({ method, params, id: null });
  }

  /** Ends the session; pending requests reject with ConnectionClosedError carrying `reason`. */
  close(reason?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeReason = reason;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    const err =
      reason instanceof ConnectionClosedError
        ? reason
        : new ConnectionClosedError(reason ? `connection lost: ${reason.message}` : "connection closed", {
            cause: reason,
          });
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.cleanup();
      p.reject(
        new ConnectionClosedError(`${p.method} interrupted: ${err.message}; its outcome is unknown`, {
          cause: reason,
        }),
      );
    }
    this.stream.destroy();
    this.resolveClosed(reason);
  }

  // RFC 7047 §4.1.4: "cancel" is a notification naming the request id to abandon.
  private cancel(id: JsonRpcId): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.cleanup();
    this.notify("cancel", [id]);
  }

  private send(msg: JsonRpcMessage): void {
    this.stats.messagesSent++;
    this.stream.write(JSON.stringify(msg));
  }

  private dispatch(value: unknown): void {
    this.stats.messagesReceived++;
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      this.close(new ProtocolError("a JSON-RPC message must be an object"));
      return;
    }
    const msg = value as Record<string, unknown>;
    if (typeof msg.method === "string") {
      const params = Array.isArray(msg.params) ? (msg.params as unknown[]) : [];
      const id = msg.id;
      if (id === null || id === undefined) {
        try {
          this.options.onNotification?.(msg.method, params);
        } catch (err) {
          this.logger.error({ err, method: msg.method }, "notification handler failed");
        }
        return;
      }
      if (msg.method === "echo") {
        // RFC 7047 §4.1.11: the reply's result is the request's params.
        this.stats.echoRequestsAnswered++;
        this.send({ result: params, error: null, id: id as JsonRpcId });
        return;
      }
      this.logger.warn({ method: msg.method, remote: this.options.label }, "unknown request from server");
      this.send({ result: null, error: "unknown method", id: id as JsonRpcId });
      return;
    }
    if (!("id" in msg) || (typeof msg.id !== "number" && typeof msg.id !== "string")) {
      if (msg.id === null && msg.error !== undefined && msg.error !== null) {
        // JSON-RPC 1.0: a response to a request the server could not identify.
        this.logger.warn({ error: msg.error, remote: this.options.label }, "error response without id");
        return;
      }
      this.close(new ProtocolError(`unexpected JSON-RPC message ${JSON.stringify(msg).slice(0, 200)}`));
      return;
    }
    if (typeof msg.id === "string" && msg.id.startsWith(ECHO_ID_PREFIX)) return; // our probe's reply
    const p = this.pending.get(msg.id);
    if (!p) {
      // Answer to a request we cancelled or timed out: dropped on purpose.
      this.logger.debug({ id: msg.id, remote: this.options.label }, "response to an abandoned request");
      return;
    }
    this.pending.delete(msg.id);
    p.cleanup();
    if (msg.error !== null && msg.error !== undefined) {
      p.reject(
        this.options.mapError?.(p.method, msg.error) ??
          new OvsdbError(`${p.method} failed: ${JSON.stringify(msg.error)}`),
      );
    } else {
      p.resolve(msg.result);
    }
  }

  private scheduleProbe(): void {
    const interval = this.options.probeIntervalMs;
    if (interval <= 0 || this.isClosed) return;
    const idle = Date.now() - this.lastReceived;
    const wait = Math.max(10, (this.probing ? 2 * interval : interval) - idle);
    this.probeTimer = setTimeout(() => this.onProbeTimer(), wait);
    this.probeTimer.unref();
  }

  private onProbeTimer(): void {
    if (this.isClosed) return;
    const interval = this.options.probeIntervalMs;
    const idle = Date.now() - this.lastReceived;
    if (this.probing && idle >= 2 * interval) {
      this.logger.warn({ idleMs: idle, remote: this.options.label }, "inactivity probe failed");
      this.close(new InactivityTimeoutError(idle));
      return;
    }
    if (!this.probing && idle >= interval) {
      this.probing = true;
      this.stats.probesSent++;
      this.logger.debug({ idleMs: idle, remote: this.options.label }, "sending echo probe");
      this.send({ method: "echo", params: [], id: `${ECHO_ID_PREFIX}${this.nextId++}` });
    }
    this.scheduleProbe();
  }
}
