/**
 * NATS for ovntap services: one connection that never gives up reconnecting, logs every
 * status change, and answers readiness; plus `ensureStream` for the JetStream streams a
 * service owns (the `OVNTAP_EVENTS` audit stream).
 *
 *   const nats = await connectNats({ url: config.NATS_URL, name: "intake", logger });
 *   http.addCheck("nats", () => nats.isConnected());
 *   await ensureStream(nats.nc, {
 *     name: "OVNTAP_EVENTS", subjects: ["ovntap.v1.events.>"], denyDelete: true, denyPurge: true,
 *   }, { logger });
 *   shutdown.onShutdown("nats", () => nats.close());
 */
import { readFileSync } from "node:fs";
import {
  jetstreamManager,
  JetStreamApiError,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import {
  connect,
  credsAuthenticator,
  nanos,
  type Authenticator,
  type ConnectionOptions,
  type NatsConnection,
  type Status,
} from "@nats-io/transport-node";
import { jitteredBackoff } from "./backoff.js";
import type { NatsEnv } from "./config.js";
import type { Logger } from "./logger.js";
import { redactUrl } from "./redact.js";

export interface NatsOptions {
  /** One or more nats:// URLs (an array or a comma-separated string). Credentials in the URL are honoured. */
  url: string | readonly string[];
  /** Client name, shown by the server's monitoring (`connz`). */
  name: string;
  logger: Logger;
  /** A `.creds` file (JWT + nkey seed); re-read on every connect so a rotated file is picked up. */
  credsFile?: string;
  user?: string;
  pass?: string;
  token?: string;
  tls?: ConnectionOptions["tls"];
  /** First reconnect delay before jitter; default 250 ms. */
  reconnectBaseMs?: number;
  /** Longest reconnect delay; default 5 s. */
  reconnectMaxMs?: number;
  /** Handshake timeout of one connection attempt; default 10 s. */
  connectTimeoutMs?: number;
  /** Client pings; a connection is declared stale after `maxPingOut` unanswered ones. Default 20 s × 3. */
  pingIntervalMs?: number;
  maxPingOut?: number;
  /** Anything else for the nats.js client; wins over the options above. */
  connectionOptions?: Partial<ConnectionOptions>;
}

export interface NatsClient {
  readonly nc: NatsConnection;
  /** True while the connection is up: false from a disconnect until the reconnect, and after close. */
  isConnected(): boolean;
  /** Drains (pending publishes flushed, subscriptions finish their messages), then closes. */
  close(): Promise<void>;
}

export class NatsConnectError extends Error {
  override name = "NatsConnectError";
  constructor(servers: readonly string[], cause: unknown) {
    super(
      `could not connect to NATS at ${servers.join(", ")}: ${cause instanceof Error ? cause.message : String(cause)}; ` +
        "check NATS_URL, the credentials, and that nats-server is running",
      { cause },
    );
  }
}

/**
 * Connects, or throws NatsConnectError when the first connection fails (so a
 * misconfigured service fails at start, visibly, and its supervisor restarts it).
 * Once connected, reconnects forever with jittered exponential backoff.
 */
export async function connectNats(opts: NatsOptions): Promise<NatsClient> {
  const log = opts.logger.child({ component: "nats" });
  const { servers, auth, tls } = parseServers(opts.url);
  const shown = servers.map(redactUrl);

  // Attempts since the last successful connection, counted from the client's own
  // "reconnecting" statuses (one per dial), so the delay grows while the server is down.
  let attempts = 0;
  const backoff = { baseMs: opts.reconnectBaseMs ?? 250, maxMs: opts.reconnectMaxMs ?? 5_000 };

  const authenticator = opts.credsFile ? credsFromFile(opts.credsFile) : undefined;
  const user = opts.user ?? auth.user;
  const pass = opts.pass ?? auth.pass;
  const token = opts.token ?? auth.token;
  const options: ConnectionOptions = {
    servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnect: true,
    // nats.js gives up after the same auth error twice; rotated credentials or a server
    // restarting with new accounts would then leave the service disconnected for good.
    ignoreAuthErrorAbort: true,
    reconnectDelayHandler: () => jitteredBackoff(attempts, backoff),
    timeout: opts.connectTimeoutMs ?? 10_000,
    pingInterval: opts.pingIntervalMs ?? 20_000,
    maxPingOut: opts.maxPingOut ?? 3,
    // Every request and JetStream publish otherwise builds an Error up front, to give a later
    // timeout the caller's stack: measurable CPU per message on the services' hot paths, for a
    // stack that names our own call sites, which the log lines around a failure name already.
    noAsyncTraces: true,
    ...(authenticator ? { authenticator } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(pass !== undefined ? { pass } : {}),
    ...(token !== undefined ? { token } : {}),
    // nats.js strips the scheme; a tls:// URL means "require TLS" as in the Go client.
    ...(opts.tls !== undefined ? { tls: opts.tls } : tls ? { tls: {} } : {}),
    ...opts.connectionOptions,
  };

  let nc: NatsConnection;
  try {
    nc = await connect(options);
  } catch (err) {
    throw new NatsConnectError(shown, err);
  }

  let connected = true;
  let downSince = 0;
  log.info({ server: redactUrl(nc.getServer()), servers: shown }, "nats connected");

  const statusLoop = (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          connected = false;
          downSince = Date.now();
          log.warn({ server: redactUrl(s.server) }, "nats disconnected");
          break;
        case "reconnecting":
          attempts++;
          log.info({ attempt: attempts }, "nats reconnecting");
          break;
        case "reconnect":
          connected = true;
          log.info(
            { server: redactUrl(s.server), attempts, downMs: downSince ? Date.now() - downSince : 0 },
            "nats reconnected",
          );
          attempts = 0;
          break;
        default:
          logStatus(log, s);
      }
    }
  })().catch((err: unknown) => log.error({ err }, "nats status loop failed"));

  const closed = nc.closed().then((err) => {
    connected = false;
    if (err) log.error({ err }, "nats connection closed with an error");
    else log.info("nats connection closed");
  });

  return {
    nc,
    isConnected: () => connected && !nc.isClosed(),
    async close() {
      if (!nc.isClosed()) {
        try {
          await nc.drain();
        } catch (err) {
          // Draining needs a live connection; when the server is gone, close without it.
          log.warn({ err }, "nats drain failed, closing");
          await nc.close();
        }
      }
      await closed;
      await statusLoop;
    },
  };
}

/** The connectNats options given by the `natsEnv` variables: `connectNats({ ...natsOptionsFromEnv(config), name, logger })`. */
export function natsOptionsFromEnv(
  env: NatsEnv,
): Pick<NatsOptions, "url" | "credsFile" | "user" | "pass" | "token"> {
  return {
    url: env.NATS_URL,
    ...(env.NATS_CREDS_FILE !== undefined ? { credsFile: env.NATS_CREDS_FILE } : {}),
    ...(env.NATS_USER !== undefined ? { user: env.NATS_USER } : {}),
    ...(env.NATS_PASSWORD !== undefined ? { pass: env.NATS_PASSWORD } : {}),
    ...(env.NATS_TOKEN !== undefined ? { token: env.NATS_TOKEN } : {}),
  };
}

function logStatus(log: Logger, s: Status): void {
  switch (s.type) {
    case "error":
      log.error({ err: s.error }, "nats server error");
      break;
    case "ldm":
      // Lame duck mode: the server is about to shut down and will move clients off.
      log.warn({ server: redactUrl(s.server) }, "nats server entering lame duck mode");
      break;
    case "staleConnection":
      log.warn("nats connection stale, reconnecting");
      break;
    case "slowConsumer":
      log.warn({ subject: s.sub.getSubject(), pending: s.pending }, "nats slow consumer");
      break;
    case "forceReconnect":
      log.info("nats forced reconnect");
      break;
    case "update":
      // Sent on every (re)connect, mostly empty outside a cluster.
      if (s.added?.length || s.deleted?.length)
        log.info({ added: s.added, deleted: s.deleted }, "nats cluster update");
      break;
    case "ping":
      log.debug({ pendingPings: s.pendingPings }, "nats ping outstanding");
      break;
    case "close":
      // Reported once by nc.closed() with its reason.
      break;
    default:
      log.info({ status: (s as { type: string }).type }, "nats status");
  }
}

function credsFromFile(path: string): Authenticator {
  return credsAuthenticator(() => readFileSync(path));
}

interface UrlAuth {
  user?: string;
  pass?: string;
  token?: string;
}

/**
 * nats.js ignores credentials written in server URLs; the Go client and the nats CLI
 * honour them (`nats://user:pass@host`, `nats://token@host`), so ovntap does too: they
 * are lifted out into options and the URLs passed on without them.
 */
export function parseServers(url: string | readonly string[]): {
  servers: string[];
  auth: UrlAuth;
  tls: boolean;
} {
  const list = (typeof url === "string" ? url.split(",") : url).map((s) => s.trim()).filter(Boolean);
  const auth: UrlAuth = {};
  let tls = false;
  const servers = list.map((s) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      return s; // host:port without a scheme: nats.js accepts it as is
    }
    if (u.protocol === "tls:") tls = true;
    if (u.username || u.password) {
      const user = decodeURIComponent(u.username);
      const pass = decodeURIComponent(u.password);
      if (auth.user === undefined && auth.token === undefined) {
        if (u.password) Object.assign(auth, { user, pass });
        else auth.token = user;
      }
      u.username = "";
      u.password = "";
    }
    return u.toString().replace(/\/$/, "");
  });
  return { servers, auth, tls };
}

// ---------------------------------------------------------------------------------------
// JetStream

export interface StreamSpec {
  name: string;
  subjects: readonly string[];
  /** Default "file". Cannot be changed once the stream exists. */
  storage?: "file" | "memory";
  retention?: "limits" | "interest" | "workqueue";
  discard?: "old" | "new";
  /** Messages cannot be deleted one by one (an audit trail keeps everything). */
  denyDelete?: boolean;
  /** The stream cannot be purged. */
  denyPurge?: boolean;
  maxAgeMs?: number;
  maxBytes?: number;
  maxMsgs?: number;
  maxMsgSize?: number;
  maxMsgsPerSubject?: number;
  duplicateWindowMs?: number;
  replicas?: number;
  description?: string;
}

export interface EnsureStreamResult {
  action: "created" | "updated" | "unchanged";
  info: StreamInfo;
}

export class StreamConfigError extends Error {
  override name = "StreamConfigError";
}

/** JetStream API error code for "stream name already in use with a different configuration". */
const STREAM_NAME_EXISTS = 10058;

/**
 * Creates the stream, or updates it when the fields given in `spec` differ from the
 * server's, or leaves it alone: safe to call from every replica at every start.
 * Throws StreamConfigError for a change the server cannot make (storage type, or
 * turning denyDelete/denyPurge off).
 */
export async function ensureStream(
  nc: NatsConnection | JetStreamManager,
  spec: StreamSpec,
  opts: { logger?: Logger } = {},
): Promise<EnsureStreamResult> {
  const jsm = "streams" in nc ? nc : await jetstreamManager(nc);
  const log = opts.logger?.child({ component: "jetstream", stream: spec.name });
  const want = streamConfig(spec);

  for (let attempt = 0; ; attempt++) {
    const existing = await streamInfo(jsm, spec.name);
    if (!existing) {
      try {
        const info = await jsm.streams.add({ name: spec.name, ...want });
        log?.info({ subjects: spec.subjects }, "jetstream stream created");
        return { action: "created", info };
      } catch (err) {
        // Another replica created it between our info and add: compare with theirs.
        if (attempt === 0 && err instanceof JetStreamApiError && err.code === STREAM_NAME_EXISTS) continue;
        throw err;
      }
    }
    const changed = diffConfig(existing.config, want);
    if (changed.length === 0) return { action: "unchanged", info: existing };
    if (changed.includes("storage")) {
      throw new StreamConfigError(
        `stream ${spec.name} has ${existing.config.storage} storage, the spec wants ${want.storage}; ` +
          "storage cannot change in place: move the data to a new stream, or keep the old storage",
      );
    }
    try {
      // The client merges this over the current config; storage was checked equal above.
      const { storage: _storage, ...update } = want;
      const info = await jsm.streams.update(spec.name, update);
      log?.info({ changed }, "jetstream stream updated");
      return { action: "updated", info };
    } catch (err) {
      if (err instanceof JetStreamApiError) {
        throw new StreamConfigError(
          `stream ${spec.name} cannot be updated (${changed.join(", ")}): ${err.message}`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === 10059 /* stream not found */) return undefined;
    throw err;
  }
}

type WantedConfig = Partial<StreamConfig> & Pick<StreamConfig, "subjects" | "storage">;

function streamConfig(spec: StreamSpec): WantedConfig {
  const c: WantedConfig = { subjects: [...spec.subjects], storage: spec.storage ?? "file" };
  if (spec.retention !== undefined) c.retention = spec.retention;
  if (spec.discard !== undefined) c.discard = spec.discard;
  if (spec.denyDelete !== undefined) c.deny_delete = spec.denyDelete;
  if (spec.denyPurge !== undefined) c.deny_purge = spec.denyPurge;
  if (spec.maxAgeMs !== undefined) c.max_age = nanos(spec.maxAgeMs);
  if (spec.maxBytes !== undefined) c.max_bytes = spec.maxBytes;
  if (spec.maxMsgs !== undefined) c.max_msgs = spec.maxMsgs;
  if (spec.maxMsgSize !== undefined) c.max_msg_size = spec.maxMsgSize;
  if (spec.maxMsgsPerSubject !== undefined) c.max_msgs_per_subject = spec.maxMsgsPerSubject;
  if (spec.duplicateWindowMs !== undefined) c.duplicate_window = nanos(spec.duplicateWindowMs);
  if (spec.replicas !== undefined) c.num_replicas = spec.replicas;
  if (spec.description !== undefined) c.description = spec.description;
  return c;
}

/** Names of the wanted fields whose value differs on the server (subjects compared as sets). */
function diffConfig(have: StreamConfig, want: WantedConfig): string[] {
  const current = have as Record<string, unknown>;
  return Object.entries(want as Record<string, unknown>)
    .filter(([key, value]) => !sameValue(value, current[key]))
    .map(([key]) => key);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    const set = (x: unknown[]) => x.map(String).sort().join("\n");
    return set(a) === set(b);
  }
  return a === b;
}
