/**
 * `ovntap events`: the audit trail, read from the `OVNTAP_EVENTS` JetStream stream with an ordered
 * consumer (ephemeral, in memory, no acks) filtered on one mirror, one namespace or everything.
 * Without `follow` it stops at the last event stored when it started; with it, it keeps printing
 * until the signal aborts.
 */
import {
  AuditRecord,
  EVENTS_STREAM,
  EVENTS_STREAM_SUBJECTS,
  eventSubject,
  SUBJECT_PREFIX,
  UNNAMED_MIRROR,
  validate,
} from "@ovntap/contracts";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { Consumer, ConsumerMessages } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { describeCause, EventsError } from "./errors.js";

/** The subject filter for a mirror, a namespace, or every event. */
export function eventFilter(namespace?: string, mirror?: string): string {
  if (namespace === undefined) return EVENTS_STREAM_SUBJECTS;
  if (mirror === undefined) return `${SUBJECT_PREFIX}.events.${namespace}.>`;
  // `_unnamed` (requests rejected before they named a mirror) is not a DNS label, so eventSubject refuses it.
  return mirror === UNNAMED_MIRROR
    ? `${SUBJECT_PREFIX}.events.${namespace}.${UNNAMED_MIRROR}`
    : eventSubject(namespace, mirror);
}

export interface StoredEvent {
  /** The record as stored, with `seq`. */
  readonly raw: unknown;
  /** The record checked against the contract; undefined for one this CLI does not know. */
  readonly event: AuditRecord | undefined;
  readonly subject: string;
  readonly seq: number;
}

export interface ReadEventsOptions {
  readonly filter: string;
  readonly follow: boolean;
  /** Only events stored at or after this time. */
  readonly since?: Date;
  readonly signal?: AbortSignal;
  readonly onEvent: (e: StoredEvent) => void;
}

function explain(err: unknown): EventsError {
  const why = describeCause(err);
  if (/stream not found/i.test(why)) {
    return new EventsError(
      `the event stream ${EVENTS_STREAM} does not exist on this NATS server: intake creates it when it starts`,
      { cause: err },
    );
  }
  if (/jetstream not enabled|503/i.test(why)) {
    return new EventsError(`JetStream is not enabled on this NATS server (${why}); events need it`, {
      cause: err,
    });
  }
  return new EventsError(`cannot read ${EVENTS_STREAM}: ${why}`, { cause: err });
}

/** Prints stored events in stream order; resolves when done (or aborted). */
export async function readEvents(nc: NatsConnection, opts: ReadEventsOptions): Promise<void> {
  if (opts.signal?.aborted) return;
  const js = jetstream(nc);
  let consumer: Consumer;
  try {
    consumer = await js.consumers.get(EVENTS_STREAM, {
      filter_subjects: opts.filter,
      ...(opts.since ? { opt_start_time: opts.since.toISOString() } : { deliver_policy: DeliverPolicy.All }),
    });
  } catch (err) {
    throw explain(err);
  }
  let messages: ConsumerMessages | undefined;
  const stop = () => void messages?.stop();
  try {
    // The consumer's info at creation counts what is stored; nothing to read means done.
    if (!opts.follow && (await consumer.info(true)).num_pending === 0) return;
    messages = await consumer.consume({ max_messages: 256 });
    opts.signal?.addEventListener("abort", stop, { once: true });
    if (opts.signal?.aborted) return;
    for await (const m of messages) {
      let raw: unknown;
      try {
        raw = m.json<unknown>();
      } catch {
        raw = { undecodable: m.string() };
      }
      const seq = m.seq;
      const withSeq = raw !== null && typeof raw === "object" && !Array.isArray(raw) ? { ...raw, seq } : raw;
      const r = validate(AuditRecord, withSeq, "event");
      opts.onEvent({ raw: withSeq, event: r.ok ? r.value : undefined, subject: m.subject, seq });
      if (!opts.follow && m.info.pending === 0) break;
    }
  } catch (err) {
    throw explain(err);
  } finally {
    opts.signal?.removeEventListener("abort", stop);
    if (messages) await messages.close().catch(() => undefined);
    await consumer.delete().catch(() => undefined);
  }
}
