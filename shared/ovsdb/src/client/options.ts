/**
 * The client's options: one typed object, validated once, with errors that name the field.
 *
 *   parseClientOptions({ remote: "tcp:127.0.0.1:6641", probeIntervalMs: 5000 })
 */
import { OptionsError } from "../errors.js";
import { silentLogger, type Logger } from "../wire/jsonrpc.js";
import { parseRemotes, validateSslOptions, type Remote, type SslOptions } from "../wire/transport.js";

export interface BackoffOptions {
  /** First delay after a lost connection. Default 250 ms. */
  initialMs?: number;
  /** Ceiling of the delay. Default 8000 ms (Open vSwitch's reconnect default). */
  maxMs?: number;
  /** Growth per failed attempt. Default 2. */
  multiplier?: number;
  /** Fraction of each delay that is random (0: none, 1: full jitter). Default 0.5. */
  jitter?: number;
}

export interface OvsdbClientOptions {
  /** `unix:PATH`, `tcp:HOST:PORT`, `ssl:HOST:PORT` (IPv6 as `[addr]`), or several (array or comma-separated), tried in turn. */
  remote: string | readonly string[];
  /** A database the client will use: connect() fails with UnknownDatabaseError if the server lacks it, and loads its schema. */
  database?: string;
  /** pino-compatible logger; the client never writes to the console. */
  logger?: Logger;
  /** Key, certificate and CA for ssl: remotes. */
  ssl?: SslOptions;
  /**
   * Inactivity probe: after this long without a message we send `echo`; after twice this
   * long the connection is declared dead and re-established. Default 5000 ms
   * (ovsdb-server's own default); 0 disables it.
   */
  probeIntervalMs?: number;
  /** Timeout of one connection attempt (TCP/TLS/unix connect). Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** How long `OvsdbClient.connect()` keeps retrying before it gives up. Default 30 000 ms. */
  initialConnectTimeoutMs?: number;
  /** Reconnect after losing the connection. Default true. */
  reconnect?: boolean;
  backoff?: BackoffOptions;
  /** Default timeout of each request (none by default: the inactivity probe catches a dead server). */
  requestTimeoutMs?: number;
  /** Refuse a single message larger than this (default unlimited). */
  maxMessageBytes?: number;
}

export interface ParsedClientOptions {
  remotes: Remote[];
  database: string | undefined;
  logger: Logger;
  ssl: SslOptions | undefined;
  probeIntervalMs: number;
  connectTimeoutMs: number;
  initialConnectTimeoutMs: number;
  reconnect: boolean;
  backoff: Required<BackoffOptions>;
  requestTimeoutMs: number | undefined;
  maxMessageBytes: number | undefined;
}

function num(
  value: unknown,
  field: string,
  fallback: number,
  { min = 0, max = Number.POSITIVE_INFINITY }: { min?: number; max?: number } = {},
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < min || value > max) {
    throw new OptionsError(field, `expected a number in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

function optionalNum(value: unknown, field: string, min: number): number | undefined {
  return value === undefined ? undefined : num(value, field, 0, { min });
}

export function parseClientOptions(options: OvsdbClientOptions): ParsedClientOptions {
  if (options === null || typeof options !== "object")
    throw new OptionsError("options", "expected an object");
  const remote = options.remote as unknown;
  if (typeof remote !== "string" && !(Array.isArray(remote) && remote.every((r) => typeof r === "string"))) {
    throw new OptionsError("remote", "expected a string or an array of strings");
  }
  const remotes = parseRemotes(remote);
  if (remotes.some((r) => r.kind === "ssl")) validateSslOptions(options.ssl);
  if (options.database !== undefined && (typeof options.database !== "string" || options.database === "")) {
    throw new OptionsError("database", "expected a non-empty string");
  }
  const logger = options.logger ?? silentLogger;
  for (const level of ["debug", "info", "warn", "error"] as const) {
    if (typeof logger[level] !== "function") throw new OptionsError(`logger.${level}`, "expected a function");
  }
  if (options.reconnect !== undefined && typeof options.reconnect !== "boolean") {
    throw new OptionsError("reconnect", "expected a boolean");
  }
  const b = options.backoff ?? {};
  const backoff = {
    initialMs: num(b.initialMs, "backoff.initialMs", 250, { min: 1 }),
    maxMs: num(b.maxMs, "backoff.maxMs", 8000, { min: 1 }),
    multiplier: num(b.multiplier, "backoff.multiplier", 2, { min: 1 }),
    jitter: num(b.jitter, "backoff.jitter", 0.5, { min: 0, max: 1 }),
  };
  if (backoff.maxMs < backoff.initialMs)
    throw new OptionsError("backoff.maxMs", "must be >= backoff.initialMs");
  return {
    remotes,
    database: options.database,
    logger,
    ssl: options.ssl,
    probeIntervalMs: num(options.probeIntervalMs, "probeIntervalMs", 5000),
    connectTimeoutMs: num(options.connectTimeoutMs, "connectTimeoutMs", 10_000, { min: 1 }),
    initialConnectTimeoutMs: num(options.initialConnectTimeoutMs, "initialConnectTimeoutMs", 30_000, {
      min: 1,
    }),
    reconnect: options.reconnect ?? true,
    backoff,
    requestTimeoutMs: optionalNum(options.requestTimeoutMs, "requestTimeoutMs", 1),
    maxMessageBytes: optionalNum(options.maxMessageBytes, "maxMessageBytes", 1),
  };
}

/** Exponential backoff with jitter: initial·multiplierⁿ capped at max, minus a random share. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly options: Required<BackoffOptions>,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const { initialMs, maxMs, multiplier, jitter } = this.options;
    const base = Math.min(maxMs, initialMs * multiplier ** this.attempt);
    this.attempt++;
    return Math.round(base * (1 - jitter * this.random()));
  }

  reset(): void {
    this.attempt = 0;
  }
}
