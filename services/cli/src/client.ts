/**
 * The CLI's NATS side: connect (or use a connection the caller owns), send one request on
 * `ovntap.v1.req.<ns>` and check the reply against the contract.
 *
 *   const session = await openSession({ url: "nats://127.0.0.1:4222", source: "--nats" }, env, { timeoutMs: 5000 });
 *   const reply = await request(session, { requestId, op: "get", namespace: "shop", name: "web" }, 5000);
 *   await session.close();
 */
import { readFileSync } from "node:fs";
import {
  ListReply,
  MirrorReply,
  requestNamespace,
  reqSubject,
  validate,
  type ListReply as ListReplyType,
  type MirrorReply as MirrorReplyType,
  type MirrorRequest,
} from "@ovntap/contracts";
import {
  connect,
  credsAuthenticator,
  errors,
  type ConnectionOptions,
  type NatsConnection,
} from "@nats-io/transport-node";
import type { Env, NatsTarget } from "./config.js";
import { redactUrl } from "./config.js";
import {
  describeCause,
  InvalidReplyError,
  NatsUnreachableError,
  NoReplyError,
  ReplyError,
} from "./errors.js";
import { timeoutText } from "./format.js";
import type { MirrorView } from "./format.js";

export interface Session {
  readonly nc: NatsConnection;
  /** Closes the connection when the CLI opened it; leaves a caller's connection alone. */
  close(): Promise<void>;
}

export interface SessionOptions {
  /** Connection handshake timeout. */
  timeoutMs: number;
  /** Keep reconnecting (for `events --follow` and `--wait`); one-shot requests fail instead. */
  longLived?: boolean;
}

function authFromEnv(env: Env): Partial<ConnectionOptions> {
  const out: Partial<ConnectionOptions> = {};
  const creds = env.NATS_CREDS_FILE?.trim();
  if (creds) {
    // Read at connect time, so a rotated file is used by the next invocation.
    out.authenticator = credsAuthenticator(() => new Uint8Array(readFileSync(creds)));
  }
  if (env.NATS_USER) out.user = env.NATS_USER;
  if (env.NATS_PASSWORD) out.pass = env.NATS_PASSWORD;
  if (env.NATS_TOKEN) out.token = env.NATS_TOKEN;
  return out;
}

/** `nats://a:4222,nats://b:4222` → servers, with credentials in a URL passed as options (nats.js drops them). */
function serversFrom(url: string): { servers: string[]; auth: Partial<ConnectionOptions>; tls: boolean } {
  const servers: string[] = [];
  const auth: Partial<ConnectionOptions> = {};
  let tls = false;
  for (const part of url
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    let u: URL | undefined;
    try {
      u = new URL(part.includes("://") ? part : `nats://${part}`);
    } catch {
      servers.push(part);
      continue;
    }
    if (u.protocol === "tls:") tls = true;
    if (u.username && u.password) {
      auth.user = decodeURIComponent(u.username);
      auth.pass = decodeURIComponent(u.password);
    } else if (u.username) {
      auth.token = decodeURIComponent(u.username);
    }
    servers.push(
      `${u.hostname.includes(":") && !u.hostname.startsWith("[") ? `[${u.hostname}]` : u.hostname}:${u.port || "4222"}`,
    );
  }
  return { servers, auth, tls };
}

export async function openSession(
  target: NatsTarget,
  env: Env,
  opts: SessionOptions,
  existing?: NatsConnection,
): Promise<Session> {
  if (existing) return { nc: existing, close: () => Promise.resolve() };
  const { servers, auth, tls } = serversFrom(target.url);
  const shown = redactUrl(target.url);
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: "ovntap-cli",
      timeout: opts.timeoutMs,
      ...(opts.longLived
        ? { reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 1000 }
        : { reconnect: false }),
      ...auth,
      ...authFromEnv(env),
      ...(tls ? { tls: {} } : {}),
    });
  } catch (err) {
    throw new NatsUnreachableError(shown, target.source, err);
  }
  return {
    nc,
    async close() {
      if (nc.isClosed()) return;
      try {
        await nc.drain();
      } catch {
        await nc.close();
      }
    },
  };
}

function isNoResponders(err: unknown): boolean {
  if (err instanceof errors.NoRespondersError) return true;
  if (err instanceof errors.RequestError) return err.isNoResponders();
  return false;
}

/** Sends `body` to `ovntap.v1.req.<its namespace>` and returns the reply, checked against the contract. */
export async function request(session: Session, body: MirrorRequest, timeoutMs: number): Promise<unknown> {
  const subject = reqSubject(requestNamespace(body).namespace);
  let msg;
  try {
    msg = await session.nc.request(subject, JSON.stringify(body), { timeout: timeoutMs });
  } catch (err) {
    if (isNoResponders(err)) {
      throw new NoReplyError(subject, body.requestId, "no-responders", "", { cause: err });
    }
    if (err instanceof errors.TimeoutError) {
      throw new NoReplyError(
        subject,
        body.requestId,
        "timeout",
        `no reply on ${subject} within ${timeoutText(timeoutMs)} (raise --request-timeout if intake is slow)`,
        { cause: err },
      );
    }
    const permission = err instanceof errors.PermissionViolationError ? err : (err as Error).cause;
    if (permission instanceof errors.PermissionViolationError) {
      throw new ReplyError({
        code: "FORBIDDEN",
        message: `NATS does not allow this user to publish to ${subject}: ask for access to namespace ${requestNamespace(body).namespace}`,
      });
    }
    throw new NoReplyError(
      subject,
      body.requestId,
      "connection",
      `the request on ${subject} failed: ${describeCause(err)}`,
      {
        cause: err,
      },
    );
  }
  try {
    return msg.json<unknown>();
  } catch (err) {
    throw new InvalidReplyError(subject, `not JSON (${describeCause(err)})`);
  }
}

/** The reply to create, delete, get or extend; an error reply throws ReplyError. */
export async function mirrorRequest(
  session: Session,
  body: MirrorRequest,
  timeoutMs: number,
): Promise<MirrorView> {
  const raw = await request(session, body, timeoutMs);
  const r = validate(MirrorReply, raw, "reply");
  if (!r.ok) throw invalidReply(body, raw, r.error.message);
  const reply: MirrorReplyType = r.value;
  if (!reply.ok) throw new ReplyError(reply.error);
  return { mirror: reply.mirror, status: reply.status };
}

export async function listRequest(
  session: Session,
  body: MirrorRequest,
  timeoutMs: number,
): Promise<MirrorView[]> {
  const raw = await request(session, body, timeoutMs);
  const r = validate(ListReply, raw, "reply");
  if (!r.ok) throw invalidReply(body, raw, r.error.message);
  const reply: ListReplyType = r.value;
  if (!reply.ok) throw new ReplyError(reply.error);
  return reply.items;
}

function invalidReply(body: MirrorRequest, raw: unknown, message: string): Error {
  // An error reply that fails the schema (an unknown code from a newer intake) is still an error.
  const o = raw as { ok?: unknown; error?: { code?: unknown; message?: unknown } } | null;
  if (o?.ok === false && typeof o.error?.message === "string") {
    return new ReplyError({ code: String(o.error.code), message: o.error.message });
  }
  return new InvalidReplyError(reqSubject(requestNamespace(body).namespace), message);
}
