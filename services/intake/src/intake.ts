/**
 * The intake service: answers mirror requests on `ovntap.v1.req.<ns>` in the queue group
 * `ovntap-intake` (replicas share the load), validates, authorizes, dedupes by `requestId`,
 * stores desired state, enqueues the work — `ovn-apply` for OVN mirrors, `node.<node>` for
 * mirrors whose sources are `ovs` (that node's agent applies them) — and records `requested` /
 * `accepted` / `rejected` events.
 *
 *     const intake = createIntake({ nc, redis, logger, policy: staticPolicy(), metrics });
 *     await intake.start();     // ensures OVNTAP_EVENTS, subscribes
 *     await intake.stop();      // drains: in-flight requests finish
 *
 * Per request, in order: JSON → `validateRequest(raw, { subject })` → identity (principal.ts) →
 * dedupe lookup (a duplicate gets its first reply again; another body under the same id is a
 * CONFLICT) → `requested` event (mutating ops) → policy → the store's atomic write → `accepted`
 * events → enqueue → reply. Every refusal is a `rejected` event and changes nothing else. Reads
 * (get, list) record only refusals. A request without a reply subject is processed the same way.
 *
 * Store, then enqueue (no transaction spans Redis keys and a BullMQ add, and none is needed):
 * the job id is `<ns>/<name>@<generation>`, so a repeated add is the same job, and a crash in
 * between loses nothing — the record stays with `observedGeneration < generation` until an
 * applier applies it. For `ovn-apply` the applier's pending sweep (`store.pendingReconcile`)
 * enqueues it; for `node.<node>` the node agent's periodic resync (RESYNC_INTERVAL_MS, 30 s by
 * default, and at its start) reconciles every `ovs` mirror of its node in the store, queued or not.
 */
import { performance } from "node:perf_hooks";
import type { MsgHdrs, NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  ERROR_CODES,
  matchesLabelSelector,
  MESSAGE_MAX,
  parseSubject,
  Principal,
  RequestId,
  requestNamespace,
  reqWildcard,
  TTL_DEFAULT_SECONDS,
  UNNAMED_MIRROR,
  validateRequest,
} from "@ovntap/contracts";
import type {
  CreateRequest,
  DeleteRequest,
  ErrorBody,
  ErrorCode,
  ErrorIssue,
  EventType,
  ExtendRequest,
  GetRequest,
  LifecycleEvent,
  ListRequest,
  MirrorRecord,
  MirrorRequest,
  NodeApplyJob,
  OvnApplyJob,
  Reply,
  RequestOp,
} from "@ovntap/contracts";
import type { Logger, Metrics, RedisClient } from "@ovntap/runtime";
import {
  createApplyQueue,
  createEventLog,
  createStore,
  enqueueApply,
  eventId,
  makeEvent,
  requestHash,
  StoreContentionError,
} from "@ovntap/store";
import type { ApplyQueue, EventFields, EventLog, Store, StoredRequest } from "@ovntap/store";
import { createHash } from "node:crypto";
import type { CompiledPolicy, Grant, Identity } from "./policy.js";
import { staticPolicy } from "./policy-source.js";
import type { PolicySource } from "./policy-source.js";
import { createNodeQueues, type NodeQueues } from "./node-queues.js";
import { resolveIdentity } from "./principal.js";
import type { PrincipalResolver } from "./principal.js";

/** The NATS queue group every intake replica joins. */
export const INTAKE_QUEUE_GROUP = "ovntap-intake";

/** The principal intake publishes its own events under when no requester is known. */
export const INTAKE_PRINCIPAL = "system:ovntap:intake";

/** Issues kept in a reply or event: enough to fix a request, bounded for a message. */
const MAX_ISSUES = 50;

export type Outcome = "accepted" | "ok" | "duplicate" | "rejected" | "invalid" | "error";

export interface IntakeDeps {
  nc: NatsConnection;
  /** A "client" role ioredis connection (fails fast while Redis is down). */
  redis: RedisClient["redis"];
  logger: Logger;
  /** Default: the built-in DEFAULT_POLICY. */
  policy?: PolicySource;
  metrics?: Metrics;
  /** Tried first, in order, before the policy's own sources (principal.ts). */
  principalResolvers?: readonly PrincipalResolver[];
  store?: Store;
  events?: EventLog;
  queue?: ApplyQueue;
  /** Store key prefix (when `store` is not given). */
  storePrefix?: string;
  /** BullMQ prefix (when `queue` is not given). */
  queuePrefix?: string;
  /** Replaces `enqueueApply(queue, job)`; tests inject failures here. */
  enqueue?: (job: OvnApplyJob) => Promise<unknown>;
  /** Producers of the `node.<node>` queues (default: made on `redis` with `queuePrefix`). */
  nodeQueues?: NodeQueues;
  /** Replaces `nodeQueues.enqueue(job)` for mirrors with `ovs` sources; tests inject failures here. */
  enqueueNode?: (job: NodeApplyJob) => Promise<unknown>;
  /** Default `ovntap.v1.req.>`. */
  subject?: string;
  /** Default INTAKE_QUEUE_GROUP. */
  queueGroup?: string;
  /** Requests handled at once; default 64. */
  maxInFlight?: number;
  now?: () => Date;
}

export interface IncomingRequest {
  subject: string;
  data: Uint8Array;
  headers?: MsgHdrs | undefined;
}

export interface Handled {
  reply: Reply;
  op: RequestOp | "unknown";
  outcome: Outcome;
}

export interface Intake {
  readonly store: Store;
  readonly events: EventLog;
  readonly queue: ApplyQueue;
  /** The `node.<node>` queues of mirrors with `ovs` sources. */
  readonly nodeQueues: NodeQueues;
  /** Ensures the events stream (retrying a few times) and subscribes. */
  start(): Promise<void>;
  /** Stops taking requests and waits for those in flight. */
  stop(): Promise<void>;
  /** Stream ensured and subscribed. */
  isReady(): boolean;
  /** Handles one request without NATS (the subscription uses this too). Never throws. */
  handle(request: IncomingRequest): Promise<Handled>;
}

interface Ctx {
  request: MirrorRequest;
  requestId: string;
  namespace: string;
  mirror: string;
  identity: Identity;
  hash: string;
  /** Short hash in event ids, so a conflicting body's events never share ids with the first's. */
  tag: string;
  generation: number;
  now: Date;
}

/** Bounded, and without NUL (the contract's text fields refuse it; zod echoes request values). */
function truncate(s: string, max = MESSAGE_MAX): string {
  const clean = s.includes("\u0000") ? s.replaceAll("\u0000", "\\u0000") : s;
  return clean.length <= max ? clean : `${clean.slice(0, max - 1)}…`;
}

/** An error body that fits the contract's limits whatever the request contained. */
export function boundedError(code: ErrorCode, message: string, issues?: readonly ErrorIssue[]): ErrorBody {
  const kept = issues?.slice(0, MAX_ISSUES).map((i) => ({
    path: truncate(i.path, 512),
    message: truncate(i.message, 1024),
  }));
  if (issues && issues.length > MAX_ISSUES) {
    kept?.push({ path: "", message: `and ${issues.length - MAX_ISSUES} more problems` });
  }
  return { code, message: truncate(message), ...(kept ? { issues: kept } : {}) };
}

function isDns(s: unknown): s is string {
  return typeof s === "string" && /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(s);
}

function lsPortNamespace(port: string): string | undefined {
  // Kube-OVN names a pod's logical switch port `<pod>.<namespace>`.
  const dot = port.lastIndexOf(".");
  return dot > 0 ? port.slice(dot + 1) : undefined;
}

function isUnavailable(err: unknown): boolean {
  if (err instanceof StoreContentionError) return true;
  const text = err instanceof Error ? `${err.name} ${err.message}` : String(err);
  return /ECONNREFUSED|ECONNRESET|Connection is closed|Stream isn't writeable|max retries|timeout|TIMEOUT|disconnect|CONNECTION_CLOSED|no responders/i.test(
    text,
  );
}

export function createIntake(deps: IntakeDeps): Intake {
  const log = deps.logger.child({ component: "intake" });
  const now = deps.now ?? (() => new Date());
  const policySource = deps.policy ?? staticPolicy();
  const resolvers = deps.principalResolvers ?? [];
  const store =
    deps.store ??
    createStore({ redis: deps.redis, ...(deps.storePrefix ? { prefix: deps.storePrefix } : {}) });
  const events = deps.events ?? createEventLog({ nc: deps.nc, logger: deps.logger });
  const ownQueue = deps.queue === undefined;
  const queue =
    deps.queue ??
    createApplyQueue({
      connection: deps.redis,
      logger: deps.logger,
      ...(deps.queuePrefix ? { prefix: deps.queuePrefix } : {}),
    });
  const enqueue = deps.enqueue ?? ((job: OvnApplyJob) => enqueueApply(queue, job));
  const ownNodeQueues = deps.nodeQueues === undefined;
  const nodeQueues =
    deps.nodeQueues ??
    createNodeQueues({ connection: deps.redis, prefix: deps.queuePrefix, logger: deps.logger });
  const enqueueNode = deps.enqueueNode ?? ((job: NodeApplyJob) => nodeQueues.enqueue(job));

  const m = deps.metrics;
  const requests = m?.counter({
    name: "intake_requests_total",
    help: "Mirror requests by op and outcome (accepted, ok, duplicate, rejected, invalid, error)",
    labelNames: ["op", "outcome"],
  });
  const rejections = m?.counter({
    name: "intake_rejections_total",
    help: "Refused requests by error code",
    labelNames: ["code"],
  });
  const latency = m?.histogram({
    name: "intake_request_duration_seconds",
    help: "Time from receiving a request to replying",
    labelNames: ["op"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  const enqueueFailures = m?.counter({
    name: "intake_enqueue_failures_total",
    help: "Stored requests whose job could not be enqueued (the applier's sweep or the node agent's resync picks them up)",
  });
  const publishFailures = m?.counter({
    name: "intake_event_publish_failures_total",
    help: "Lifecycle events that could not be published",
    labelNames: ["type"],
  });

  // ---------------------------------------------------------------------------------------------
  // Events

  function event<T extends EventType>(
    ctx: Pick<Ctx, "namespace" | "mirror" | "identity" | "requestId" | "tag" | "now">,
    type: T,
    generation: number,
    detail: EventFields<T>["detail"],
  ): LifecycleEvent {
    return makeEvent(type, {
      namespace: ctx.namespace,
      mirror: ctx.mirror,
      generation,
      principal: ctx.identity.principal,
      requestId: ctx.requestId,
      eventId: eventId(ctx.requestId, ctx.tag, type),
      time: ctx.now,
      detail,
    });
  }

  /** Publishes an event; a failure (building or publishing it) is logged and counted, never thrown. */
  async function publish(e: LifecycleEvent | (() => LifecycleEvent)): Promise<boolean> {
    let built: LifecycleEvent | undefined;
    try {
      built = typeof e === "function" ? e() : e;
      await events.publish(built);
      return true;
    } catch (err) {
      publishFailures?.inc({ type: built?.type ?? "unbuilt" });
      log.error(
        {
          err,
          eventId: built?.eventId,
          type: built?.type,
          namespace: built?.namespace,
          mirror: built?.mirror,
        },
        "event publish failed",
      );
      return false;
    }
  }

  /** Publishes a request's outbox, then marks it published (a duplicate re-publishes otherwise). */
  async function flushOutbox(requestId: string, outbox: readonly LifecycleEvent[]): Promise<void> {
    if (await publishOutbox(outbox)) await store.markEventsPublished(requestId);
  }

  /**
   * Publishes the events back to back on the one connection, so the server stores them in
   * order, and waits for every ack (one round trip, not one per event). True when all landed.
   */
  async function publishOutbox(outbox: readonly LifecycleEvent[]): Promise<boolean> {
    const results = await Promise.all(outbox.map((e) => publish(e)));
    return results.every(Boolean);
  }

  // ---------------------------------------------------------------------------------------------
  // Outcomes

  async function reject(
    ctx: Ctx,
    code: ErrorCode,
    message: string,
    issues?: readonly ErrorIssue[],
  ): Promise<Handled> {
    const error = boundedError(code, message, issues);
    rejections?.inc({ code });
    log.info(
      {
        requestId: ctx.requestId,
        op: ctx.request.op,
        namespace: ctx.namespace,
        mirror: ctx.mirror,
        principal: ctx.identity.principal,
        code,
      },
      "request rejected",
    );
    await publish(() => event(ctx, "rejected", ctx.generation, { op: ctx.request.op, error }));
    return { reply: { ok: false, error }, op: ctx.request.op, outcome: "rejected" };
  }

  async function duplicate(ctx: Ctx, prior: StoredRequest): Promise<Handled> {
    if (!prior.eventsPublished) await flushOutbox(prior.requestId, prior.events);
    log.info({ requestId: ctx.requestId, op: ctx.request.op }, "duplicate request answered");
    return { reply: prior.reply, op: ctx.request.op, outcome: "duplicate" };
  }

  async function accept(
    ctx: Ctx,
    reply: Reply,
    record: MirrorRecord,
    outbox: readonly LifecycleEvent[],
    reason: OvnApplyJob["reason"],
  ): Promise<Handled> {
    const job: OvnApplyJob = {
      namespace: ctx.namespace,
      name: record.spec.name,
      generation: record.generation,
      reason,
    };
    // Mirrors of OVS bridge ports are their node agent's (its queue node.<node>); the others
    // the ovn-applier's.
    const sources = record.spec.sources;
    const node = sources.type === "ovs" ? sources.node : undefined;
    // The audit trail first: an applier may take the job the moment it is queued, and its
    // `applying` must not land in the stream before the `accepted` it acts on.
    const published = await publishOutbox(outbox);
    // Queueing and marking the outbox published are independent: one round trip for both.
    const [queued, marked] = await Promise.allSettled([
      node === undefined ? enqueue(job) : enqueueNode({ ...job, node }),
      published ? store.markEventsPublished(ctx.requestId) : Promise.resolve(false),
    ]);
    if (queued.status === "rejected") {
      // The record is stored with observedGeneration < generation. Nothing is lost: the
      // applier's sweep (store.pendingReconcile) enqueues an OVN mirror under the same job id,
      // and the node agent's periodic resync reconciles an ovs mirror of its node unqueued.
      enqueueFailures?.inc();
      if (node === undefined)
        log.error({ err: queued.reason, ...job }, "enqueue failed, the reconcile sweep will enqueue it");
      else
        log.error(
          { err: queued.reason, ...job, node },
          "enqueue failed, the node agent's resync will apply it",
        );
    }
    if (marked.status === "rejected") {
      // The events are in the stream; a duplicate of this request publishes them again under
      // the same ids, which the stream drops.
      log.warn({ err: marked.reason, requestId: ctx.requestId }, "could not mark the events published");
    }
    log.info(
      {
        requestId: ctx.requestId,
        op: ctx.request.op,
        namespace: ctx.namespace,
        mirror: record.spec.name,
        generation: record.generation,
        principal: ctx.identity.principal,
      },
      "request accepted",
    );
    return { reply, op: ctx.request.op, outcome: "accepted" };
  }

  // ---------------------------------------------------------------------------------------------
  // Ops

  function forbidden(ctx: Ctx, op: RequestOp): Promise<Handled> {
    return reject(
      ctx,
      ERROR_CODES.FORBIDDEN,
      `principal ${JSON.stringify(ctx.identity.principal)} may not ${op} mirrors in namespace ${JSON.stringify(ctx.namespace)}: no policy rule allows it`,
    );
  }

  async function create(
    ctx: Ctx,
    req: CreateRequest,
    policy: CompiledPolicy,
    grant: Grant,
  ): Promise<Handled> {
    const { spec } = req;
    const limits = policy.limits(ctx.namespace);
    const sources = spec.sources;
    // Selector sources follow the namespace's pods by label: the ovn-applier resolves them
    // through the Kubernetes API (KUBERNETES on the applier; without it the mirror fails with
    // UNSUPPORTED naming that setting). They may reach no further than a pods source.
    if (sources.type === "ports") {
      if (!grant.allowPortsSources) {
        return reject(
          ctx,
          ERROR_CODES.FORBIDDEN,
          `principal ${JSON.stringify(ctx.identity.principal)} may not use raw logical switch ports as sources (policy: allowPortsSources is admin only)`,
          [{ path: "spec.sources.type", message: "ports sources need a policy rule with allowPortsSources" }],
        );
      }
      const index = sources.names.findIndex((p) => {
        const ns = lsPortNamespace(p);
        return ns !== undefined && policy.isProtected(ns);
      });
      if (index >= 0) {
        return reject(
          ctx,
          ERROR_CODES.NAMESPACE_PROTECTED,
          `logical switch port ${JSON.stringify(sources.names[index])} belongs to a protected namespace, which may never be mirrored`,
          [{ path: `spec.sources.names[${index}]`, message: "is a port of a protected namespace" }],
        );
      }
    }
    if (sources.type === "ovs" && !grant.allowOvsSources) {
      return reject(
        ctx,
        ERROR_CODES.FORBIDDEN,
        `principal ${JSON.stringify(ctx.identity.principal)} may not mirror OVS bridge ports (policy: allowOvsSources is admin only)`,
        [{ path: "spec.sources.type", message: "ovs sources need a policy rule with allowOvsSources" }],
      );
    }
    const ttl = spec.ttlSeconds ?? TTL_DEFAULT_SECONDS;
    if (ttl > limits.maxTtlSeconds) {
      return reject(
        ctx,
        ERROR_CODES.TTL_TOO_LONG,
        `ttlSeconds ${ttl}${spec.ttlSeconds === undefined ? " (the default)" : ""} exceeds the policy maximum ${limits.maxTtlSeconds} for namespace ${JSON.stringify(ctx.namespace)}`,
        [
          {
            path: "spec.ttlSeconds",
            message: `must be ≤ ${limits.maxTtlSeconds} in namespace ${ctx.namespace} (policy maxTtlSeconds)`,
          },
        ],
      );
    }
    const target = spec.target;
    if (target.type === "gre" || target.type === "erspan") {
      if (typeof target.sink === "string") {
        if (!limits.sinkAllowed(target.sink)) {
          return reject(
            ctx,
            ERROR_CODES.SINK_NOT_ALLOWED,
            `sink ${target.sink} is outside the networks the policy allows for namespace ${JSON.stringify(ctx.namespace)} (${limits.allowedSinkCidrs.join(", ") || "none"})`,
            [
              {
                path: "spec.target.sink",
                message: `must be inside one of ${limits.allowedSinkCidrs.join(", ") || "(no networks allowed)"} (policy allowedSinkCidrs)`,
              },
            ],
          );
        }
      } else if (!limits.allowPodSinks) {
        return reject(
          ctx,
          ERROR_CODES.SINK_NOT_ALLOWED,
          `pod sinks are not allowed in namespace ${JSON.stringify(ctx.namespace)}; give the sink as an IP address`,
          [{ path: "spec.target.sink", message: "must be an IP address (policy allowPodSinks is false)" }],
        );
      } else {
        // A receiving pod's address is only known later (ips.kubeovn.io, followed by the
        // applier), so the CIDR rule cannot hold it; the pod's namespace must instead be one
        // this principal may mirror into: the mirror's own, or one the policy grants it.
        const sinkNs = target.sink.pod.namespace;
        if (
          sinkNs !== ctx.namespace &&
          (policy.isProtected(sinkNs) || !policy.grant(ctx.identity, "create", sinkNs))
        ) {
          return reject(
            ctx,
            ERROR_CODES.SINK_NOT_ALLOWED,
            `the sink pod ${sinkNs}/${target.sink.pod.name} is in a namespace ${ctx.identity.principal} may not create mirrors in; use a receiving pod in ${ctx.namespace} or in a namespace the policy grants`,
            [
              {
                path: "spec.target.sink.pod.namespace",
                message: `must be ${ctx.namespace} or a namespace the policy lets this principal create mirrors in`,
              },
            ],
          );
        }
      }
    }

    // The outbox stored with the record; the callback runs once per compare-and-set attempt.
    let outbox: LifecycleEvent[] = [];
    const outcome = await store.applyCreate({
      spec,
      owner: ctx.identity.principal,
      requestId: ctx.requestId,
      requestHash: ctx.hash,
      now: ctx.now,
      maxActive: limits.maxActiveMirrors,
      events: (record) =>
        (outbox = [event(ctx, "accepted", record.generation, { op: "create", expiresAt: record.expiresAt })]),
    });
    switch (outcome.type) {
      case "created":
        return accept(ctx, outcome.reply, outcome.record, outbox, "create");
      case "duplicate":
        return duplicate(ctx, outcome.request);
      case "conflict":
        return conflict(ctx);
      case "already_exists":
        return reject(
          { ...ctx, generation: outcome.record.generation },
          ERROR_CODES.ALREADY_EXISTS,
          `mirror ${ctx.namespace}/${spec.name} already exists${outcome.record.deletionRequestedAt ? " and is being deleted; retry when it is gone" : ""}`,
          [{ path: "spec.name", message: "is taken in this namespace" }],
        );
      case "quota_exceeded":
        return reject(
          ctx,
          ERROR_CODES.QUOTA_EXCEEDED,
          `namespace ${JSON.stringify(ctx.namespace)} already has ${outcome.active} active mirrors, the policy maximum is ${outcome.limit}; delete one first`,
        );
    }
  }

  function conflict(ctx: Ctx): Promise<Handled> {
    return reject(
      ctx,
      ERROR_CODES.CONFLICT,
      `requestId ${JSON.stringify(ctx.requestId)} was already used for a different request; send a new requestId`,
      [{ path: "requestId", message: "was already used with another body" }],
    );
  }

  async function remove(
    ctx: Ctx,
    req: DeleteRequest,
    grant: Grant,
    current: MirrorRecord | undefined,
  ): Promise<Handled> {
    if (!current) return notFound(ctx, req.name);
    if (grant.ownMirrorsOnly && current.owner !== ctx.identity.principal) return notOwner(ctx, current);
    let outbox: LifecycleEvent[] = [];
    const outcome = await store.applyDelete({
      namespace: ctx.namespace,
      name: req.name,
      requestId: ctx.requestId,
      requestHash: ctx.hash,
      now: ctx.now,
      events: (record) => (outbox = [event(ctx, "accepted", record.generation, { op: "delete" })]),
    });
    switch (outcome.type) {
      case "deleted":
        return accept(ctx, outcome.reply, outcome.record, outbox, "delete");
      case "already_deleting": {
        // Nothing changed; enqueue again (the same job id: a no-op, or a missing job restored).
        const reply: Reply = { ok: true, mirror: outcome.record, status: outcome.status };
        return accept(
          ctx,
          reply,
          outcome.record,
          [event(ctx, "accepted", outcome.record.generation, { op: "delete" })],
          "delete",
        );
      }
      case "not_found":
        return notFound(ctx, req.name);
      case "duplicate":
        return duplicate(ctx, outcome.request);
      case "conflict":
        return conflict(ctx);
    }
  }

  async function extend(
    ctx: Ctx,
    req: ExtendRequest,
    policy: CompiledPolicy,
    grant: Grant,
    current: MirrorRecord | undefined,
  ): Promise<Handled> {
    const limits = policy.limits(ctx.namespace);
    if (req.ttlSeconds > limits.maxTtlSeconds) {
      return reject(
        ctx,
        ERROR_CODES.TTL_TOO_LONG,
        `ttlSeconds ${req.ttlSeconds} exceeds the policy maximum ${limits.maxTtlSeconds} for namespace ${JSON.stringify(ctx.namespace)}`,
        [
          {
            path: "ttlSeconds",
            message: `must be ≤ ${limits.maxTtlSeconds} in namespace ${ctx.namespace} (policy maxTtlSeconds)`,
          },
        ],
      );
    }
    if (!current) return notFound(ctx, req.name);
    if (grant.ownMirrorsOnly && current.owner !== ctx.identity.principal) return notOwner(ctx, current);
    let outbox: LifecycleEvent[] = [];
    const outcome = await store.applyExtend({
      namespace: ctx.namespace,
      name: req.name,
      ttlSeconds: req.ttlSeconds,
      requestId: ctx.requestId,
      requestHash: ctx.hash,
      now: ctx.now,
      events: (record, previous) =>
        (outbox = [
          event(ctx, "accepted", record.generation, { op: "extend", expiresAt: record.expiresAt }),
          event(ctx, "extended", record.generation, {
            ttlSeconds: req.ttlSeconds,
            previousExpiresAt: previous.expiresAt,
            expiresAt: record.expiresAt,
          }),
        ]),
    });
    switch (outcome.type) {
      case "extended":
        return accept(ctx, outcome.reply, outcome.record, outbox, "extend");
      case "deleting":
        return reject(
          { ...ctx, generation: outcome.record.generation },
          ERROR_CODES.NOT_FOUND,
          `mirror ${ctx.namespace}/${req.name} is being deleted and cannot be extended`,
        );
      case "not_found":
        return notFound(ctx, req.name);
      case "duplicate":
        return duplicate(ctx, outcome.request);
      case "conflict":
        return conflict(ctx);
    }
  }

  function notFound(ctx: Ctx, name: string): Promise<Handled> {
    return reject(ctx, ERROR_CODES.NOT_FOUND, `mirror ${ctx.namespace}/${name} does not exist`, [
      { path: "name", message: "names no mirror in this namespace" },
    ]);
  }

  function notOwner(ctx: Ctx, record: MirrorRecord): Promise<Handled> {
    return reject(
      ctx,
      ERROR_CODES.FORBIDDEN,
      `mirror ${ctx.namespace}/${record.spec.name} belongs to ${JSON.stringify(record.owner)}; the policy lets principals change only their own mirrors here`,
    );
  }

  async function get(ctx: Ctx, req: GetRequest): Promise<Handled> {
    const m = await store.getMirror(ctx.namespace, req.name);
    if (!m) return notFound(ctx, req.name);
    return { reply: { ok: true, mirror: m.record, status: m.status }, op: "get", outcome: "ok" };
  }

  async function list(ctx: Ctx, req: ListRequest): Promise<Handled> {
    const items = (await store.listMirrors(ctx.namespace))
      .filter((m) => req.selector === undefined || matchesLabelSelector(m.record.spec.labels, req.selector))
      .map((m) => ({ mirror: m.record, status: m.status }));
    return { reply: { ok: true, items }, op: "list", outcome: "ok" };
  }

  // ---------------------------------------------------------------------------------------------
  // One request

  const decoder = new TextDecoder("utf-8", { fatal: true });

  async function invalid(
    req: IncomingRequest,
    raw: unknown,
    code: ErrorCode,
    message: string,
    issues: readonly ErrorIssue[],
  ): Promise<Handled> {
    const error = boundedError(code, message, issues);
    const body = (raw !== null && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
    const spec = (body.spec !== null && typeof body.spec === "object" ? body.spec : {}) as Record<
      string,
      unknown
    >;
    const op =
      typeof body.op === "string" && ["create", "delete", "get", "list", "extend"].includes(body.op)
        ? (body.op as RequestOp)
        : undefined;
    const parsed = parseSubject(req.subject);
    const namespace = parsed?.kind === "req" ? parsed.namespace : undefined;
    const name = op === "create" ? spec.name : body.name;
    const claimed = Principal.safeParse(body.principal);
    const identity = resolveIdentity(policySource.current(), resolvers, {
      subject: req.subject,
      headers: req.headers,
      claimed: claimed.success ? claimed.data : undefined,
    });
    const rid = RequestId.safeParse(body.requestId);
    const requestId = rid.success
      ? rid.data
      : `invalid:${createHash("sha256").update(req.subject).update("\u0000").update(req.data).digest("hex").slice(0, 40)}`;
    rejections?.inc({ code });
    log.info({ subject: req.subject, requestId, code, issues: error.issues?.length ?? 0 }, "invalid request");
    if (namespace !== undefined) {
      await publish(() =>
        makeEvent("rejected", {
          namespace,
          mirror: isDns(name) ? name : UNNAMED_MIRROR,
          generation: 0,
          principal: identity.principal,
          requestId,
          eventId: eventId(
            requestId,
            createHash("sha256").update(req.data).digest("hex").slice(0, 12),
            "rejected",
          ),
          time: now(),
          detail: { ...(op ? { op } : {}), error },
        }),
      );
    }
    return { reply: { ok: false, error }, op: op ?? "unknown", outcome: "invalid" };
  }

  async function process(req: IncomingRequest): Promise<Handled> {
    let raw: unknown;
    try {
      raw = JSON.parse(decoder.decode(req.data));
    } catch (err) {
      return invalid(
        req,
        undefined,
        ERROR_CODES.INVALID_REQUEST,
        "invalid request: the body must be one JSON object in UTF-8",
        [{ path: "", message: `is not JSON: ${truncate((err as Error).message, 200)}` }],
      );
    }
    const v = validateRequest(raw, { subject: req.subject });
    if (!v.ok) return invalid(req, raw, v.error.code, v.error.message, v.error.issues);

    const request = v.value;
    const policy = policySource.current();
    const identity = resolveIdentity(policy, resolvers, {
      subject: req.subject,
      headers: req.headers,
      claimed: request.principal,
    });
    const { namespace } = requestNamespace(request);
    const hash = requestHash({ principal: identity.principal, request });
    const ctx: Ctx = {
      request,
      requestId: request.requestId,
      namespace,
      mirror:
        request.op === "create" ? request.spec.name : request.op === "list" ? UNNAMED_MIRROR : request.name,
      identity,
      hash,
      tag: hash.slice(0, 12),
      generation: 0,
      now: now(),
    };

    const prior = await store.lookupRequest(request.requestId);
    if (prior) return prior.hash === hash ? duplicate(ctx, prior) : conflict(ctx);

    const mutating = request.op === "create" || request.op === "delete" || request.op === "extend";
    const current =
      request.op === "delete" || request.op === "extend"
        ? await store.getRecord(namespace, request.name)
        : undefined;
    ctx.generation = current?.generation ?? 0;
    if (mutating) {
      const detail =
        request.op === "create"
          ? { op: request.op, spec: request.spec }
          : request.op === "extend"
            ? { op: request.op, ttlSeconds: request.ttlSeconds }
            : { op: request.op };
      // The audit trail comes first: no state changes without a record of the request.
      try {
        await events.publish(event(ctx, "requested", ctx.generation, detail));
      } catch (err) {
        publishFailures?.inc({ type: "requested" });
        log.error({ err, requestId: ctx.requestId }, "event publish failed, refusing the request");
        return {
          reply: {
            ok: false,
            error: boundedError(
              ERROR_CODES.UNAVAILABLE,
              "the audit trail (JetStream) is unavailable; retry with the same requestId",
            ),
          },
          op: request.op,
          outcome: "error",
        };
      }
    }

    if (policy.isProtected(namespace)) {
      return reject(
        ctx,
        ERROR_CODES.NAMESPACE_PROTECTED,
        `namespace ${JSON.stringify(namespace)} is protected by policy and may never be mirrored`,
      );
    }
    const grant = policy.grant(identity, request.op, namespace);
    if (!grant) return forbidden(ctx, request.op);

    switch (request.op) {
      case "create":
        return create(ctx, request, policy, grant);
      case "delete":
        return remove(ctx, request, grant, current);
      case "extend":
        return extend(ctx, request, policy, grant, current);
      case "get":
        return get(ctx, request);
      case "list":
        return list(ctx, request);
    }
  }

  async function handle(req: IncomingRequest): Promise<Handled> {
    try {
      return await process(req);
    } catch (err) {
      const unavailable = isUnavailable(err);
      log.error({ err, subject: req.subject }, "request failed");
      const error = unavailable
        ? boundedError(
            ERROR_CODES.UNAVAILABLE,
            "a dependency (Redis or NATS) is unavailable; retry with the same requestId",
          )
        : boundedError(
            ERROR_CODES.INTERNAL,
            "internal error; retry with the same requestId, and report it if it persists",
          );
      return { reply: { ok: false, error }, op: "unknown", outcome: "error" };
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Subscription

  let sub: Subscription | undefined;
  let loop: Promise<void> | undefined;
  let ready = false;
  const inFlight = new Set<Promise<void>>();
  const maxInFlight = deps.maxInFlight ?? 64;

  async function serve(msg: {
    subject: string;
    data: Uint8Array;
    headers?: MsgHdrs | undefined;
    reply?: string | undefined;
    respond(data: string): boolean;
  }) {
    const started = performance.now();
    const result = await handle(msg);
    try {
      if (msg.reply) msg.respond(JSON.stringify(result.reply));
    } catch (err) {
      log.warn({ err, subject: msg.subject }, "reply failed");
    }
    requests?.inc({ op: result.op, outcome: result.outcome });
    latency?.observe({ op: result.op }, (performance.now() - started) / 1000);
  }

  async function ensureWithRetry(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await events.ensure();
        return;
      } catch (err) {
        if (attempt >= 5) throw err;
        log.warn({ err, attempt }, "events stream not ensured yet, retrying");
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
      }
    }
  }

  return {
    store,
    events,
    queue,
    nodeQueues,
    handle,
    isReady: () => ready && !deps.nc.isClosed(),
    async start() {
      await ensureWithRetry();
      const subscription = deps.nc.subscribe(deps.subject ?? reqWildcard, {
        queue: deps.queueGroup ?? INTAKE_QUEUE_GROUP,
      });
      sub = subscription;
      loop = (async () => {
        for await (const msg of subscription) {
          while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
          const p: Promise<void> = serve(msg).finally(() => inFlight.delete(p));
          inFlight.add(p);
        }
      })().catch((err: unknown) => log.error({ err }, "request subscription ended with an error"));
      // The server has the subscription once a PING after the SUB is answered: only then is a
      // request from another connection sure to find a responder (what /readyz promises).
      await deps.nc.flush();
      ready = true;
      log.info(
        { subject: deps.subject ?? reqWildcard, queue: deps.queueGroup ?? INTAKE_QUEUE_GROUP },
        "intake listening",
      );
    },
    async stop() {
      ready = false;
      if (sub && !sub.isClosed()) {
        try {
          await sub.drain();
        } catch (err) {
          log.warn({ err }, "subscription drain failed");
          sub.unsubscribe();
        }
      }
      await loop;
      await Promise.allSettled([...inFlight]);
      if (ownQueue) await queue.close();
      if (ownNodeQueues) await nodeQueues.close();
      log.info("intake stopped");
    },
  };
}
