/**
 * Kubernetes Events (core/v1 Event) on the objects ovntap acts on — the mirrored pods — so that
 * `kubectl describe pod` and `kubectl get events` show that a pod is being mirrored, stopped
 * being mirrored, or that its mirror failed:
 *
 *   const recorder = new EventRecorder({ kubeConfig: kc, logger, instance: os.hostname() });
 *   recorder.event({ kind: "Pod", namespace: "shop", name: "web-1", uid }, "Normal",
 *     "MirrorAttached", "attached to ovntap mirror shop/web (gre key 7 to 198.51.100.2)");
 *   await recorder.flush();
 *
 * Like client-go's recorder (k8s.io/client-go/tools/record, events_cache.go):
 * - a repeat of an identical event (same object, type, reason, message) within the cache's
 *   memory is not a new object: the existing Event's `count` and `lastTimestamp` are patched;
 * - more than `similarLimit` similar events (same object, type and reason, other messages)
 *   within `similarWindowMs` are combined into one, its message prefixed
 *   "(combined from similar events): ";
 * - a token bucket per object (burst 25, one token per 5 minutes) drops event storms;
 * - every cache is bounded (LRU), writes go out one at a time from a bounded queue, and
 *   recording never throws or blocks the caller: Events are best effort, failures are logged.
 */
import {
  CoreV1Api,
  type CoreV1Event,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import type { Logger } from "@ovntap/runtime";

/** The object an Event is about. */
export interface InvolvedObject {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string | undefined;
  readonly apiVersion?: string;
}

export type EventType = "Normal" | "Warning";

export interface EventRecorderOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** source.component and reportingComponent. Default "ovntap". */
  component?: string;
  /** source.host and reportingInstance (the pod or host name). */
  instance?: string;
  /** Distinct events remembered for repeats (client-go: 4096). */
  cacheSize?: number;
  /** Similar events before they are combined (client-go: 10) … */
  similarLimit?: number;
  /** … within this window (client-go: 10 minutes). */
  similarWindowMs?: number;
  /** Events per object at once (client-go: 25) … */
  burst?: number;
  /** … and one more per this many ms (client-go: 5 minutes). */
  refillMs?: number;
  /** Writes waiting at most; beyond, events are dropped and counted. Default 1000. */
  queueSize?: number;
  now?: () => Date;
}

export interface EventRecorderStats {
  created: number;
  patched: number;
  /** Dropped by the spam filter or a full queue. */
  dropped: number;
  failed: number;
}

interface Remembered {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: Date;
}

interface Write {
  readonly key: string;
  readonly event: CoreV1Event;
}

/** A Map used as an LRU of at most `size` entries. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly size: number) {}
  get(k: string): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): void {
    this.map.delete(k);
    this.map.set(k, v);
    while (this.map.size > this.size) this.map.delete(this.map.keys().next().value!);
  }
  delete(k: string): void {
    this.map.delete(k);
  }
}

export const COMBINED_PREFIX = "(combined from similar events): ";

export class EventRecorder {
  readonly stats: EventRecorderStats = { created: 0, patched: 0, dropped: 0, failed: 0 };
  private readonly api: CoreV1Api;
  private readonly log: Logger;
  private readonly component: string;
  private readonly instance: string | undefined;
  private readonly now: () => Date;
  private readonly seen: Lru<Remembered>;
  private readonly similar: Lru<{ messages: Set<string>; since: number }>;
  private readonly buckets: Lru<{ tokens: number; at: number }>;
  private readonly queue: Write[] = [];
  private draining: Promise<void> | undefined;
  private readonly o: Required<
    Pick<EventRecorderOptions, "similarLimit" | "similarWindowMs" | "burst" | "refillMs" | "queueSize">
  >;

  constructor(options: EventRecorderOptions) {
    this.api = options.kubeConfig.makeApiClient(CoreV1Api);
    this.log = options.logger.child({ component: "event-recorder" });
    this.component = options.component ?? "ovntap";
    this.instance = options.instance;
    this.now = options.now ?? (() => new Date());
    const cacheSize = options.cacheSize ?? 4096;
    this.seen = new Lru(cacheSize);
    this.similar = new Lru(cacheSize);
    this.buckets = new Lru(cacheSize);
    this.o = {
      similarLimit: options.similarLimit ?? 10,
      similarWindowMs: options.similarWindowMs ?? 10 * 60_000,
      burst: options.burst ?? 25,
      refillMs: options.refillMs ?? 5 * 60_000,
      queueSize: options.queueSize ?? 1000,
    };
  }

  /** Records an event (asynchronously; never throws). */
  event(object: InvolvedObject, type: EventType, reason: string, message: string, action?: string): void {
    const now = this.now();
    const objectKey = [object.kind, object.namespace, object.name, object.uid ?? ""].join("\u0000");
    if (!this.allow(objectKey, now.getTime())) {
      this.stats.dropped++;
      this.log.debug(
        { object: `${object.namespace}/${object.name}`, reason },
        "event dropped by the spam filter",
      );
      return;
    }
    // Similar events: the same object, type and reason with ever new messages are combined.
    const similarKey = [objectKey, type, reason].join("\u0000");
    let sim = this.similar.get(similarKey);
    if (!sim || now.getTime() - sim.since > this.o.similarWindowMs)
      sim = { messages: new Set(), since: now.getTime() };
    sim.messages.add(message);
    this.similar.set(similarKey, sim);
    const combined = sim.messages.size > this.o.similarLimit;
    const text = truncate(combined ? `${COMBINED_PREFIX}${message}` : message, 1024);
    const key = combined ? `${similarKey}\u0000*` : [similarKey, message].join("\u0000");

    const event: CoreV1Event = {
      metadata: { namespace: object.namespace, name: "" },
      involvedObject: {
        kind: object.kind,
        namespace: object.namespace,
        name: object.name,
        ...(object.uid ? { uid: object.uid } : {}),
        apiVersion: object.apiVersion ?? "v1",
      },
      type,
      reason,
      message: text,
      ...(action ? { action } : {}),
      source: { component: this.component, ...(this.instance ? { host: this.instance } : {}) },
      reportingComponent: this.component,
      ...(this.instance ? { reportingInstance: this.instance } : {}),
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    if (this.queue.length >= this.o.queueSize) {
      this.stats.dropped++;
      this.log.warn({ queued: this.queue.length, reason }, "event queue full, event dropped");
      return;
    }
    this.queue.push({ key, event });
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
  }

  /** Resolves when every event recorded so far has been written (or has failed). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private allow(objectKey: string, now: number): boolean {
    const b = this.buckets.get(objectKey) ?? { tokens: this.o.burst, at: now };
    const refill = Math.floor((now - b.at) / this.o.refillMs);
    if (refill > 0) {
      b.tokens = Math.min(this.o.burst, b.tokens + refill);
      b.at += refill * this.o.refillMs;
    }
    const ok = b.tokens > 0;
    if (ok) b.tokens--;
    this.buckets.set(objectKey, b);
    return ok;
  }

  private async drain(): Promise<void> {
    for (let w = this.queue.shift(); w; w = this.queue.shift()) {
      try {
        await this.write(w);
      } catch (err) {
        this.stats.failed++;
        this.log.warn(
          {
            err,
            object: `${w.event.involvedObject.namespace}/${w.event.involvedObject.name}`,
            reason: w.event.reason,
          },
          "event not written",
        );
      }
    }
  }

  private async write({ key, event }: Write): Promise<void> {
    const prior = this.seen.get(key);
    if (prior) {
      const count = prior.count + 1;
      try {
        // client-go patches count, lastTimestamp and message (a strategic merge patch; a merge
        // patch is the same for these scalar fields).
        await this.api.patchNamespacedEvent(
          {
            namespace: prior.namespace,
            name: prior.name,
            body: { count, lastTimestamp: event.lastTimestamp, message: event.message },
          },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        );
        prior.count = count;
        this.stats.patched++;
        return;
      } catch (err) {
        // Events expire (kube-apiserver --event-ttl, 1 h by default): write a new one.
        if ((err as { code?: number }).code !== 404) throw err;
        this.seen.delete(key);
        event.count = count;
        event.firstTimestamp = prior.firstTimestamp;
      }
    }
    const ns = event.involvedObject.namespace ?? "";
    // client-go's name: the object's name and the time in nanoseconds, in hex.
    const t = event.lastTimestamp ?? this.now();
    const nanos = BigInt(t.getTime()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000));
    const name = `${event.involvedObject.name}.${nanos.toString(16)}`;
    await this.api.createNamespacedEvent({
      namespace: ns,
      body: { ...event, metadata: { namespace: ns, name } },
    });
    this.seen.set(key, {
      name,
      namespace: ns,
      count: event.count ?? 1,
      firstTimestamp: event.firstTimestamp ?? t,
    });
    this.stats.created++;
  }
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}
