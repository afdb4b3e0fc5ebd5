/**
 * Timestamps of each benchmark mirror's life, as a user sees it: the request leaving, intake's
 * reply, and the lifecycle events arriving on core NATS (`ovntap.v1.events.>`, the same
 * messages JetStream stores as the audit trail).
 *
 *   const tracker = new Tracker(nc);
 *   tracker.expect("bench-03/m-0001");
 *   tracker.sent("bench-03/m-0001");  … await nc.request(…) … tracker.replied(id, reply);
 *   tracker.get(id)?.applied        // performance.now() at the `applied` event's arrival
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { now } from "./_stats.js";

export interface MirrorTimes {
  sent?: number;
  /** Date.now() when sent: to compare with the events' own `time` (wall clock, same machine). */
  sentWall?: number;
  /** Each event type's `time` (ms since the epoch), as its publisher stamped it. */
  stamped?: Record<string, number>;
  replied?: number;
  applied?: number;
  active?: number;
  /** Why the mirror can never reach applied/active (a refusal or a failed event). */
  failure?: string;
  /** Last degraded reason seen (ChassisNotSynced is transient: active may follow). */
  degraded?: string;
}

interface EventLike {
  type?: unknown;
  time?: unknown;
  namespace?: unknown;
  mirror?: unknown;
  detail?: { code?: unknown; message?: unknown; reason?: unknown; error?: { message?: unknown } };
}

/** A field of an event's detail as text (they are strings in the contract; anything else as JSON). */
function text(v: unknown, fallback: string): string {
  return typeof v === "string" ? v : v === undefined ? fallback : JSON.stringify(v);
}

export class Tracker {
  private readonly times = new Map<string, MirrorTimes>();
  private readonly sub: Subscription;
  /** Events seen by type, for the report. */
  readonly counts = new Map<string, number>();

  constructor(nc: NatsConnection) {
    // A callback subscription: the arrival time is taken as the message is read off the socket,
    // not when an async iterator gets round to it.
    this.sub = nc.subscribe("ovntap.v1.events.>", {
      callback: (err, msg) => {
        if (err) return;
        const at = now();
        let e: EventLike;
        try {
          e = msg.json<EventLike>();
        } catch {
          return;
        }
        const type = typeof e.type === "string" ? e.type : "?";
        this.counts.set(type, (this.counts.get(type) ?? 0) + 1);
        if (typeof e.namespace !== "string" || typeof e.mirror !== "string") return;
        const t = this.times.get(`${e.namespace}/${e.mirror}`);
        if (!t) return; // not one of ours (the ovn-nbctl baseline's rows have no events)
        if (typeof e.time === "string") (t.stamped ??= {})[type] ??= Date.parse(e.time);
        switch (type) {
          case "applied":
            t.applied ??= at;
            break;
          case "active":
            t.active ??= at;
            break;
          case "degraded":
            t.degraded = text(e.detail?.reason, "?");
            break;
          case "failed":
            t.failure ??= `failed ${text(e.detail?.code, "?")}: ${text(e.detail?.message, "")}`;
            break;
          case "rejected":
            t.failure ??= `rejected: ${text(e.detail?.error?.message, "")}`;
            break;
        }
      },
    });
  }

  expect(id: string): void {
    if (!this.times.has(id)) this.times.set(id, {});
  }

  sent(id: string): void {
    const t = this.times.get(id);
    if (!t) return;
    t.sent = now();
    t.sentWall = Date.now();
  }

  /**
   * Milliseconds between two stamps of each mirror (`"sent"` = the request leaving): where the
   * time between a request and its `applied` goes, from the services' own event times.
   */
  stages(ids: readonly string[], from: string, to: string): number[] {
    const out: number[] = [];
    for (const id of ids) {
      const t = this.times.get(id);
      const a = from === "sent" ? t?.sentWall : t?.stamped?.[from];
      const b = t?.stamped?.[to];
      if (a !== undefined && b !== undefined) out.push(b - a);
    }
    return out;
  }

  replied(id: string, ok: boolean, error?: string): void {
    const t = this.times.get(id);
    if (!t) return;
    t.replied = now();
    if (!ok) t.failure ??= `intake refused: ${error ?? "?"}`;
  }

  fail(id: string, why: string): void {
    const t = this.times.get(id);
    if (t) t.failure ??= why;
  }

  get(id: string): MirrorTimes | undefined {
    return this.times.get(id);
  }

  /** How many of `ids` have each milestone. */
  tally(ids: readonly string[]): {
    sent: number;
    replied: number;
    applied: number;
    active: number;
    failed: number;
  } {
    const out = { sent: 0, replied: 0, applied: 0, active: 0, failed: 0 };
    for (const id of ids) {
      const t = this.times.get(id);
      if (!t) continue;
      if (t.sent !== undefined) out.sent++;
      if (t.replied !== undefined) out.replied++;
      if (t.applied !== undefined) out.applied++;
      if (t.active !== undefined) out.active++;
      if (t.failure !== undefined) out.failed++;
    }
    return out;
  }

  /** Milliseconds from `sent` to `milestone` for each of `ids` that has both. */
  latencies(ids: readonly string[], milestone: "replied" | "applied" | "active"): number[] {
    const out: number[] = [];
    for (const id of ids) {
      const t = this.times.get(id);
      const end = t?.[milestone];
      if (t?.sent !== undefined && end !== undefined) out.push(end - t.sent);
    }
    return out;
  }

  close(): void {
    this.sub.unsubscribe();
  }
}
