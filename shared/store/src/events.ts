/**
 * The audit trail: lifecycle events in the JetStream stream `OVNTAP_EVENTS`.
 *
 *     const events = createEventLog({ nc, logger });
 *     await events.ensure();                       // file storage, no delete, no purge
 *     await events.publish(makeEvent("accepted", { namespace, mirror, generation, principal,
 *       requestId, eventId: eventId(requestId, "accepted"), detail: { op: "create" } }));
 *     const trail = await events.history("shop", "web");   // oldest first, with stream sequences
 *
 * Every publish carries `Nats-Msg-Id: <eventId>`, and JetStream drops a second publish of the same
 * id inside the stream's duplicate window (EVENTS_DUPLICATE_WINDOW_MS): a step that is retried
 * re-publishes its event under the same deterministic id (`eventId(...)`) and the trail keeps one.
 */
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { createHash, randomUUID } from "node:crypto";
import {
  AuditRecord,
  EVENTS_STREAM,
  EVENTS_STREAM_SUBJECTS,
  eventSubject,
  LifecycleEvent,
  REQUEST_ID_MAX,
  reqSubject,
  SUBJECT_PREFIX,
  UNNAMED_MIRROR,
} from "@ovntap/contracts";
import type { EventDetail, EventType, LifecycleEventOf } from "@ovntap/contracts";
import { ensureStream } from "@ovntap/runtime";
import type { EnsureStreamResult, Logger, NatsClient, StreamSpec } from "@ovntap/runtime";

/**
 * One hour: longer than the whole backoff of an `ovn-apply` job (about 17 min), so a retried job's
 * events are still recognised as duplicates. JetStream keeps the ids of that window in memory.
 */
export const EVENTS_DUPLICATE_WINDOW_MS = 60 * 60 * 1000;

/** The stream every service that publishes events ensures; one definition so they never fight. */
export const EVENTS_STREAM_SPEC: StreamSpec = {
  name: EVENTS_STREAM,
  subjects: [EVENTS_STREAM_SUBJECTS],
  storage: "file",
  retention: "limits",
  denyDelete: true,
  denyPurge: true,
  duplicateWindowMs: EVENTS_DUPLICATE_WINDOW_MS,
  description: "ovntap lifecycle events: the audit trail (no delete, no purge)",
};

const EVENT_ID_RE = /^[A-Za-z0-9._:-]+$/;

/**
 * A deterministic event id from its parts, joined with ':' (`eventId(requestId, "accepted")` →
 * `<requestId>:accepted`). When that would exceed the RequestId limit or use other characters, the
 * id is `sha256:` and the first 64 hex digits of the joined parts' hash: still deterministic.
 */
export function eventId(...parts: readonly (string | number)[]): string {
  const joined = parts.map(String).join(":");
  if (joined.length > 0 && joined.length <= REQUEST_ID_MAX && EVENT_ID_RE.test(joined)) return joined;
  return `sha256:${createHash("sha256").update(joined).digest("hex")}`;
}

/** The subject of a mirror's events; `_unnamed` (not a DNS label, so eventSubject refuses it) is allowed. */
export function eventSubjectOf(namespace: string, mirror: string): string {
  if (mirror !== UNNAMED_MIRROR) return eventSubject(namespace, mirror);
  reqSubject(namespace); // validates the namespace token
  return `${SUBJECT_PREFIX}.events.${namespace}.${UNNAMED_MIRROR}`;
}

export interface EventFields<T extends EventType> {
  namespace: string;
  mirror: string;
  generation: number;
  principal: string;
  requestId: string;
  detail: EventDetail<T>;
  /** Deterministic id for idempotent steps; a random one when absent (then a retry is a new event). */
  eventId?: string;
  /** Default now. */
  time?: Date | string;
}

/** A lifecycle event of `type`, validated. */
export function makeEvent<T extends EventType>(type: T, fields: EventFields<T>): LifecycleEventOf<T> {
  const time = fields.time ?? new Date();
  return LifecycleEvent.parse({
    eventId: fields.eventId ?? randomUUID(),
    time: typeof time === "string" ? time : time.toISOString(),
    mirror: fields.mirror,
    namespace: fields.namespace,
    generation: fields.generation,
    principal: fields.principal,
    requestId: fields.requestId,
    type,
    detail: fields.detail,
  }) as LifecycleEventOf<T>;
}

export interface PublishResult {
  /** Stream sequence of the stored event (of the first copy, for a duplicate). */
  seq: number;
  /** True when JetStream had this eventId already and stored nothing. */
  duplicate: boolean;
}

export interface HistoryOptions {
  /** Stop after this many events; default 10 000. */
  limit?: number;
  /** Per-fetch timeout; default 5 s. */
  timeoutMs?: number;
}

export interface EventLog {
  /** Creates or updates the stream per EVENTS_STREAM_SPEC; safe from every replica at every start. */
  ensure(): Promise<EnsureStreamResult>;
  /** True once `ensure` succeeded (for /readyz). */
  isEnsured(): boolean;
  /** Validates and publishes; the publish is acknowledged by JetStream before this resolves. */
  publish(event: LifecycleEvent): Promise<PublishResult>;
  /** The events of one mirror (or of `_unnamed` in a namespace), oldest first. */
  history(namespace: string, mirror: string, options?: HistoryOptions): Promise<AuditRecord[]>;
}

export interface EventLogOptions {
  nc: NatsClient["nc"];
  logger: Logger;
  /** Override for tests; default EVENTS_STREAM_SPEC. */
  stream?: StreamSpec;
  /** Publish acknowledgement timeout; default 5 s. */
  publishTimeoutMs?: number;
}

export function createEventLog(opts: EventLogOptions): EventLog {
  const log = opts.logger.child({ component: "events" });
  const spec = opts.stream ?? EVENTS_STREAM_SPEC;
  const js: JetStreamClient = jetstream(opts.nc);
  let jsm: JetStreamManager | undefined;
  let ensured = false;
  const manager = async () => (jsm ??= await jetstreamManager(opts.nc));

  return {
    async ensure() {
      const result = await ensureStream(await manager(), spec, { logger: log });
      ensured = true;
      return result;
    },
    isEnsured: () => ensured,
    async publish(event) {
      const e = LifecycleEvent.parse(event);
      const subject = eventSubjectOf(e.namespace, e.mirror);
      const ack = await js.publish(subject, JSON.stringify(e), {
        msgID: e.eventId,
        expect: { streamName: spec.name },
        timeout: opts.publishTimeoutMs ?? 5_000,
      });
      log.debug(
        { eventId: e.eventId, type: e.type, subject, seq: ack.seq, duplicate: ack.duplicate },
        "event published",
      );
      return { seq: ack.seq, duplicate: ack.duplicate };
    },
    async history(namespace, mirror, options = {}) {
      const subject = eventSubjectOf(namespace, mirror);
      const limit = options.limit ?? 10_000;
      const m = await manager();
      const info = await m.streams.info(spec.name, { subjects_filter: subject });
      if (!info.state.subjects?.[subject]) return [];
      // An ordered consumer: ephemeral, in stream order, recreated by the client on a gap.
      const consumer = await js.consumers.get(spec.name, {
        filter_subjects: subject,
        deliver_policy: DeliverPolicy.All,
      });
      const out: AuditRecord[] = [];
      let pending = 1;
      while (pending > 0 && out.length < limit) {
        const batch = await consumer.fetch({
          max_messages: Math.min(limit - out.length, 256),
          expires: options.timeoutMs ?? 5_000,
        });
        let received = 0;
        for await (const msg of batch) {
          received++;
          out.push(AuditRecord.parse({ ...msg.json<Record<string, unknown>>(), seq: msg.seq }));
          pending = msg.info.pending;
          if (pending === 0 || out.length >= limit) break;
        }
        if (received === 0) break;
      }
      return out;
    },
  };
}
