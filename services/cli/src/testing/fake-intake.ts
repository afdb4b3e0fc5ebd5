/**
 * A stand-in for intake in the CLI's tests: answers `ovntap.v1.req.*` per the contract (replies are
 * checked against the reply schemas before they are sent), dedupes by requestId, keeps mirrors in
 * memory, and publishes `requested`/`accepted` events. Tests steer it through `status()` and hooks.
 */
import { randomUUID } from "node:crypto";
import {
  eventSubject,
  LifecycleEvent,
  ListReply,
  MirrorRecord,
  MirrorReply,
  MirrorStatus,
  reqWildcard,
  validateRequest,
} from "@ovntap/contracts";
import type { ErrorCode, MirrorRequest, MirrorSpec } from "@ovntap/contracts";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";

type View = { mirror: MirrorRecord; status: MirrorStatus };

export interface FakeIntakeOptions {
  /** Called after a reply is sent, e.g. to publish lifecycle events. */
  afterReply?: (request: MirrorRequest, reply: unknown) => void | Promise<void>;
  /** Replaces the reply to a request (an error, garbage, or nothing with `null`). */
  override?: (request: MirrorRequest) => unknown;
}

export interface FakeIntake {
  readonly requests: MirrorRequest[];
  readonly mirrors: Map<string, View>;
  /** Sets the status `get` returns from now on. */
  setStatus(namespace: string, name: string, status: Partial<MirrorStatus>): void;
  publishEvent(event: Record<string, unknown>): Promise<void>;
  stop(): void;
}

const key = (ns: string, name: string) => `${ns}/${name}`;

export function startFakeIntake(nc: NatsConnection, opts: FakeIntakeOptions = {}): FakeIntake {
  const requests: MirrorRequest[] = [];
  const mirrors = new Map<string, View>();
  const replies = new Map<string, { body: string; reply: unknown }>();

  const error = (code: ErrorCode, message: string, issues?: { path: string; message: string }[]) => ({
    ok: false,
    error: { code, message, ...(issues ? { issues } : {}) },
  });

  const publishEvent = async (event: Record<string, unknown>) => {
    const e = LifecycleEvent.parse(event);
    nc.publish(eventSubject(e.namespace, e.mirror), JSON.stringify(e));
    await nc.flush();
  };

  const event = (
    request: MirrorRequest,
    ns: string,
    name: string,
    generation: number,
    type: string,
    detail: unknown,
  ) =>
    publishEvent({
      eventId: randomUUID(),
      time: new Date().toISOString(),
      mirror: name,
      namespace: ns,
      generation,
      principal: request.principal ?? "anonymous",
      requestId: request.requestId,
      type,
      detail,
    });

  function handle(request: MirrorRequest): unknown {
    const now = new Date();
    switch (request.op) {
      case "create": {
        const { spec } = request;
        const k = key(spec.namespace, spec.name);
        if (mirrors.has(k)) return error("ALREADY_EXISTS", `mirror ${k} already exists`);
        const mirror = MirrorRecord.parse({
          spec: spec satisfies MirrorSpec,
          generation: 1,
          owner: request.principal ?? "anonymous",
          createdAt: now.toISOString(),
          expiresAt: new Date(now.getTime() + (spec.ttlSeconds ?? 3600) * 1000).toISOString(),
          requestId: request.requestId,
        });
        const status = MirrorStatus.parse({
          phase: "Pending",
          generation: 1,
          observedGeneration: 0,
          ports: [],
          updatedAt: now.toISOString(),
        });
        mirrors.set(k, { mirror, status });
        return { ok: true, mirror, status };
      }
      case "get": {
        const v = mirrors.get(key(request.namespace, request.name));
        return v
          ? { ok: true, ...v }
          : error("NOT_FOUND", `mirror ${key(request.namespace, request.name)} not found`);
      }
      case "delete": {
        const k = key(request.namespace, request.name);
        const v = mirrors.get(k);
        if (!v) return error("NOT_FOUND", `mirror ${k} not found`);
        v.mirror = { ...v.mirror, deletionRequestedAt: now.toISOString() };
        return { ok: true, ...v };
      }
      case "extend": {
        const k = key(request.namespace, request.name);
        const v = mirrors.get(k);
        if (!v) return error("NOT_FOUND", `mirror ${k} not found`);
        v.mirror = {
          ...v.mirror,
          expiresAt: new Date(now.getTime() + request.ttlSeconds * 1000).toISOString(),
        };
        return { ok: true, ...v };
      }
      case "list": {
        const want = request.selector?.matchLabels ?? {};
        const items = [...mirrors.values()].filter(
          (v) =>
            v.mirror.spec.namespace === request.namespace &&
            Object.entries(want).every(([k, val]) => v.mirror.spec.labels?.[k] === val),
        );
        return { ok: true, items };
      }
    }
  }

  const sub: Subscription = nc.subscribe(reqWildcard, {
    callback: (_err, msg) => {
      void (async () => {
        let raw: unknown;
        try {
          raw = msg.json<unknown>();
        } catch {
          msg.respond(JSON.stringify(error("INVALID_REQUEST", "not JSON")));
          return;
        }
        const r = validateRequest(raw, { subject: msg.subject });
        if (!r.ok) {
          msg.respond(JSON.stringify({ ok: false, error: r.error }));
          return;
        }
        const request = r.value;
        requests.push(request);
        if (opts.override) {
          const o = opts.override(request);
          if (o === null) return;
          if (o !== undefined) {
            msg.respond(typeof o === "string" ? o : JSON.stringify(o));
            return;
          }
        }
        const body = JSON.stringify({ ...request, requestId: undefined });
        const seen = replies.get(request.requestId);
        let reply: unknown;
        if (seen) {
          reply =
            seen.body === body
              ? seen.reply
              : error("CONFLICT", `requestId ${request.requestId} was used for another request`);
        } else {
          reply = handle(request);
          replies.set(request.requestId, { body, reply });
          const ns = request.op === "create" ? request.spec.namespace : request.namespace;
          const name =
            request.op === "create" ? request.spec.name : request.op === "list" ? undefined : request.name;
          const ok = (reply as { ok: boolean }).ok;
          if (name !== undefined && request.op !== "get") {
            await event(request, ns, name, 0, "requested", { op: request.op });
            if (ok) {
              const gen = (reply as View).mirror.generation;
              await event(request, ns, name, gen, "accepted", { op: request.op });
            }
          }
        }
        // Every reply is checked against the contract, so a test cannot pass on a malformed one.
        (request.op === "list" ? ListReply : MirrorReply).parse(reply);
        msg.respond(JSON.stringify(reply));
        await opts.afterReply?.(request, reply);
      })();
    },
  });

  return {
    requests,
    mirrors,
    setStatus(namespace, name, status) {
      const v = mirrors.get(key(namespace, name));
      if (!v) throw new Error(`no mirror ${key(namespace, name)}`);
      v.status = MirrorStatus.parse({ ...v.status, updatedAt: new Date().toISOString(), ...status });
    },
    publishEvent,
    stop: () => sub.unsubscribe(),
  };
}
