/**
 * `--wait`: follow one mirror until it reaches the phase asked for, or fails.
 *
 * The mirror's event subject is subscribed BEFORE the request is sent (NATS delivers in order on
 * one connection, so no event of this request can slip past), and `get` is polled as a backstop
 * for events that never come (an applier that only writes status, a subscription lost in a
 * reconnect). Events and statuses of an older generation are about an earlier mirror of the same
 * name and are ignored.
 *
 *   const watch = watchMirror(nc, "shop", "web");            // before the request
 *   const view = await mirrorRequest(session, create, timeout);
 *   const final = await waitForMirror(watch, { goal: "active", generation: view.mirror.generation, ... });
 */
import { eventSubject, LifecycleEvent, validate } from "@ovntap/contracts";
import type { MirrorStatus } from "@ovntap/contracts";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { ReplyError, WaitFailedError } from "./errors.js";
import { eventSummary, shortDuration, timeoutText } from "./format.js";
import type { MirrorView } from "./format.js";

/** A subscription to one mirror's events that keeps what arrives until someone listens. */
export class MirrorWatch {
  private readonly sub: Subscription;
  private readonly buffered: LifecycleEvent[] = [];
  private handler: ((e: LifecycleEvent) => void) | undefined;

  constructor(nc: NatsConnection, namespace: string, name: string) {
    this.sub = nc.subscribe(eventSubject(namespace, name), {
      callback: (err, msg) => {
        if (err) return;
        let raw: unknown;
        try {
          raw = msg.json<unknown>();
        } catch {
          return;
        }
        const r = validate(LifecycleEvent, raw, "event");
        if (!r.ok) return;
        if (this.handler) this.handler(r.value);
        else this.buffered.push(r.value);
      },
    });
  }

  /** Delivers what was buffered, then every new event. */
  onEvent(handler: (e: LifecycleEvent) => void): void {
    this.handler = handler;
    for (const e of this.buffered.splice(0)) handler(e);
  }

  close(): void {
    this.handler = undefined;
    this.sub.unsubscribe();
  }
}

export interface WaitOptions {
  readonly namespace: string;
  readonly name: string;
  /** `active`: Active (exit 0), or Failed/Degraded/gone (exit 1). `deleted`: the mirror is gone. */
  readonly goal: "active" | "deleted";
  /** The generation the request produced; anything older is ignored. */
  readonly generation: number;
  readonly timeoutMs: number;
  readonly pollMs: number;
  /** `get` the mirror; resolves undefined when it is NOT_FOUND. */
  readonly poll: () => Promise<MirrorView | undefined>;
  readonly progress: (line: string) => void;
  readonly signal?: AbortSignal;
  /** The view the request's reply carried; judged first (it may already be final). */
  readonly initial?: MirrorView;
}

type Outcome = { done: true; view?: MirrorView } | { done: false; error: string } | undefined;

function phaseOfEvent(e: LifecycleEvent): string | undefined {
  switch (e.type) {
    case "applying":
    case "applied":
      return "Applying";
    case "active":
      return "Active";
    case "degraded":
      return "Degraded";
    case "failed":
      return "Failed";
    case "expired":
      return "Expired";
    case "deleted":
      return "Deleted";
    default:
      return undefined;
  }
}

function statusWhy(status: MirrorStatus): string {
  const parts = [status.reason, status.message].filter((s) => s !== undefined && s !== "");
  return parts.length ? `: ${parts.join(": ")}` : "";
}

/**
 * Resolves with the last view seen when the goal is reached (undefined for a deleted mirror), or
 * rejects with WaitFailedError saying why not. Closes the watch either way.
 */
export function waitForMirror(watch: MirrorWatch, opts: WaitOptions): Promise<MirrorView | undefined> {
  const who = `${opts.namespace}/${opts.name}`;
  const want = opts.goal === "active" ? "Active" : "deleted";
  const started = Date.now();
  let phase: string | undefined;
  let lastView: MirrorView | undefined;
  let lastWhy = "";

  return new Promise<MirrorView | undefined>((resolve, reject) => {
    let settled = false;
    // Armed first, so every path below can clear it; it fires only after this function returns.
    const deadline = setTimeout(() => onTimeout(), opts.timeoutMs);
    let pollTimer: NodeJS.Timeout | undefined;
    let polling = false;
    let pollFailures = 0;

    const finish = (outcome: NonNullable<Outcome>) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(pollTimer);
      opts.signal?.removeEventListener("abort", onAbort);
      watch.close();
      if (outcome.done) resolve(outcome.view ?? lastView);
      else reject(new WaitFailedError(outcome.error));
    };

    const setPhase = (next: string, why: string) => {
      lastWhy = why;
      if (next === phase) return;
      phase = next;
      opts.progress(`${who}: ${next}${why}`);
    };

    const judgeEvent = (e: LifecycleEvent): Outcome => {
      if (e.generation < opts.generation) return undefined;
      const next = phaseOfEvent(e);
      const summary = eventSummary(e);
      opts.progress(`${who}: ${e.type}${summary ? ` ${summary}` : ""}`);
      if (next) {
        phase = next;
        lastWhy = "";
      }
      if (opts.goal === "deleted") {
        if (e.type === "deleted" || e.type === "expired") return { done: true };
        if (e.type === "failed" && !e.detail.retryable) {
          return { done: false, error: `deleting ${who} failed: ${e.detail.code}: ${e.detail.message}` };
        }
        return undefined;
      }
      switch (e.type) {
        case "active":
          return { done: true };
        case "failed":
          return { done: false, error: `${who} failed: ${e.detail.code}: ${e.detail.message}` };
        case "degraded":
          return { done: false, error: `${who} is Degraded: ${e.detail.reason}: ${e.detail.message}` };
        case "rejected":
          return {
            done: false,
            error: `${who} was rejected: ${e.detail.error.code}: ${e.detail.error.message}`,
          };
        case "expired":
          return { done: false, error: `${who} expired before it became Active` };
        case "deleted":
          return { done: false, error: `${who} was deleted (${e.detail.reason}) before it became Active` };
        default:
          return undefined;
      }
    };

    const judgeView = (view: MirrorView | undefined): Outcome => {
      if (view === undefined) {
        return opts.goal === "deleted" ? { done: true } : { done: false, error: `${who} no longer exists` };
      }
      lastView = view;
      const { status } = view;
      if (status.generation < opts.generation || view.mirror.generation < opts.generation) return undefined;
      setPhase(status.phase, statusWhy(status));
      if (opts.goal === "deleted") {
        return status.phase === "Deleted" || status.phase === "Expired" ? { done: true, view } : undefined;
      }
      switch (status.phase) {
        case "Active":
          return { done: true, view };
        case "Failed":
        case "Degraded":
          return { done: false, error: `${who} is ${status.phase}${statusWhy(status)}` };
        case "Expired":
        case "Deleted":
          return { done: false, error: `${who} is ${status.phase}` };
        default:
          return undefined;
      }
    };

    const schedulePoll = () => {
      if (settled) return;
      pollTimer = setTimeout(() => void poll(), opts.pollMs);
    };

    const poll = async () => {
      if (settled || polling) return;
      polling = true;
      try {
        let view: MirrorView | undefined;
        try {
          view = await opts.poll();
          pollFailures = 0;
        } catch (err) {
          if (err instanceof ReplyError) {
            finish({ done: false, error: `checking ${who} failed: ${err.message}` });
            return;
          }
          // Transient (no reply, reconnecting): events may still arrive; say so once.
          if (pollFailures++ === 0)
            opts.progress(`${who}: cannot check the status (${(err as Error).message}); still waiting`);
          return;
        }
        if (settled) return;
        const outcome = judgeView(view);
        if (outcome) finish(outcome);
      } finally {
        polling = false;
        schedulePoll();
      }
    };

    const onAbort = () => {
      finish({
        done: false,
        error: `stopped waiting for ${who} after ${shortDuration(Date.now() - started)}; it ${opts.goal === "active" ? "is still being applied" : "is still being deleted"} (ovntap get ${opts.name} -n ${opts.namespace})`,
      });
    };

    const onTimeout = () => {
      finish({
        done: false,
        error: `timed out after ${timeoutText(opts.timeoutMs)} waiting for ${who} to be ${want}${phase ? `; it is ${phase}${lastWhy}` : ""}`,
      });
    };

    if (opts.signal?.aborted) {
      onAbort();
      return;
    }
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    if (opts.initial) {
      const outcome = judgeView(opts.initial);
      if (outcome) {
        finish(outcome);
        return;
      }
    }
    watch.onEvent((e) => {
      const outcome = judgeEvent(e);
      if (outcome) finish(outcome);
    });
    schedulePoll();
  });
}
