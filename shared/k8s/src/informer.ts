/**
 * An informer: a local cache of one kind of Kubernetes object, kept in sync by list-then-watch,
 * with add/update/delete callbacks. The reflector protocol of client-go
 * (k8s.io/client-go/tools/cache/reflector.go):
 *
 * 1. list the collection; the list's resourceVersion is where the watch starts;
 * 2. watch from that version with `allowWatchBookmarks` (bookmarks move the version on without
 *    an event, so a reconnect does not replay or, worse, ask for an expired version) and a
 *    server-side `timeoutSeconds` (randomised, so a fleet does not reconnect in step);
 * 3. a watch that ends — timeout, a cut connection, an error — is resumed from the last version
 *    seen, after an exponential backoff with jitter when it failed; a watch that is silent for
 *    longer than its timeout is presumed dead and abandoned;
 * 4. 410 Gone (an ERROR event with a Status of code 410, or HTTP 410): the version is no longer
 *    in the server's history, so list again and diff the new list against the cache — objects
 *    that changed while nobody watched get `update`, those gone get `delete`. No change is
 *    missed, only coalesced.
 *
 * client-node's own ListWatch does not do all of this (it stops at the first watch error, sends
 * no allowWatchBookmarks, has no backoff and no dead-watch detection), so the watch transport is
 * client-node's `Watch` (its KubeConfig authentication included) and the loop is here.
 *
 *   const pods = new Informer({
 *     name: "pods", kubeConfig: kc, path: "/api/v1/pods",
 *     list: () => core.listPodForAllNamespaces(), transform: podInfo, logger,
 *   });
 *   pods.on("update", (pod, old) => …);
 *   pods.start();
 *   await pods.waitForSync(30_000);
 */
import { EventEmitter } from "node:events";
import { type KubeConfig, Watch } from "@kubernetes/client-node";
import type { Logger } from "@ovntap/runtime";
import { jitteredBackoff } from "@ovntap/runtime/internal";

/** What the cache needs of an object. */
export interface Keyed {
  readonly metadata: {
    readonly name?: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
  };
}

export interface ListResult {
  readonly items: readonly unknown[];
  readonly metadata?: { readonly resourceVersion?: string };
}

export interface InformerOptions<T extends Keyed> {
  /** For logs: "pods", "ips.kubeovn.io". */
  name: string;
  kubeConfig: KubeConfig;
  /** The collection's path, for the watch: /api/v1/pods, /apis/kubeovn.io/v1/ips. */
  path: string;
  /** One list of the whole collection (client-node's typed list call). */
  list: () => Promise<ListResult>;
  /**
   * Reduces an object to what is kept. Lists come back from client-node deserialized (Date
   * objects) while watch events are plain JSON, so this must take both.
   */
  transform: (raw: unknown) => T;
  labelSelector?: string;
  fieldSelector?: string;
  logger: Logger;
  /** Backoff between failed lists and watches (equal jitter). Default 200 ms doubling to 30 s. */
  backoff?: { baseMs: number; maxMs: number };
  /** `timeoutSeconds` of each watch. Default a random 300–600 s (client-go's 5 min × [1, 2)). */
  watchTimeoutSeconds?: number | (() => number);
  /** A watch with no event and no bookmark for this long is abandoned. Default: its timeout + 30 s. */
  idleTimeoutMs?: number;
}

export interface InformerEvents<T> {
  add: [obj: T];
  update: [obj: T, old: T];
  delete: [obj: T];
  /** The first list is in the cache. */
  synced: [];
  /** A list or watch failed (it is retried). */
  error: [err: Error];
}

/** Counters, for logs, metrics and tests. */
export interface InformerStats {
  lists: number;
  /** Lists after 410 Gone. */
  relists: number;
  watches: number;
  watchErrors: number;
  bookmarks: number;
  events: number;
}

type WatchEnd =
  | { type: "closed" }
  | { type: "gone"; message: string }
  | { type: "error"; err: Error }
  | { type: "stopped" };

const keyOf = (o: Keyed) => `${o.metadata.namespace ?? ""}/${o.metadata.name ?? ""}`;

export class Informer<T extends Keyed> extends EventEmitter<InformerEvents<T>> {
  readonly stats: InformerStats = {
    lists: 0,
    relists: 0,
    watches: 0,
    watchErrors: 0,
    bookmarks: 0,
    events: 0,
  };
  private cache = new Map<string, T>();
  private rv = "";
  private running = false;
  private loop: Promise<void> | undefined;
  private stopCurrent: (() => void) | undefined;
  private wake: (() => void) | undefined;
  private isSynced = false;
  private readonly log: Logger;
  private readonly backoff: { baseMs: number; maxMs: number };

  constructor(private readonly options: InformerOptions<T>) {
    super();
    this.log = options.logger.child({ component: "informer", resource: options.name });
    this.backoff = options.backoff ?? { baseMs: 200, maxMs: 30_000 };
    // An "error" event without a listener would throw; failures are logged and retried anyway.
    this.on("error", () => undefined);
  }

  get synced(): boolean {
    return this.isSynced;
  }

  /** The resourceVersion the cache is at. */
  get resourceVersion(): string {
    return this.rv;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(`${namespace ?? ""}/${name}`);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops watching (a list in flight is not waited for longer than `graceMs`). */
  async stop(graceMs = 2_000): Promise<void> {
    this.running = false;
    this.stopCurrent?.();
    this.wake?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.loop, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.loop = undefined;
  }

  /** Resolves once the first list is in the cache; rejects after `timeoutMs`. */
  waitForSync(timeoutMs?: number): Promise<void> {
    if (this.isSynced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              this.off("synced", done);
              reject(
                new Error(
                  `${this.options.name}: not synced after ${timeoutMs} ms (is the API server reachable?)`,
                ),
              );
            }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.once("synced", done);
    });
  }

  private async run(): Promise<void> {
    let failures = 0;
    let needList = true;
    /** The previous watch ended in 410 Gone. */
    let wasGone = false;
    while (this.running) {
      if (needList) {
        try {
          const list = await this.options.list();
          if (!this.running) break;
          this.stats.lists++;
          this.replace(list);
          needList = false;
          failures = 0;
        } catch (err) {
          if (!this.running) break;
          this.stats.watchErrors++;
          const backoffMs = jitteredBackoff(failures++, this.backoff);
          this.log.warn({ err, attempt: failures, backoffMs }, "list failed, retrying");
          this.emit("error", err as Error);
          await this.sleep(backoffMs);
          continue;
        }
      }
      const started = Date.now();
      const before = this.stats.events + this.stats.bookmarks;
      const end = await this.watchOnce();
      if (end.type === "stopped") break;
      const healthy = this.stats.events + this.stats.bookmarks > before || Date.now() - started > 5_000;
      if (healthy) failures = 0;
      const goneAgain = wasGone && !healthy;
      wasGone = end.type === "gone";
      switch (end.type) {
        case "gone":
          // The version fell out of the server's history: only a new list can tell what changed.
          this.stats.relists++;
          this.log.info(
            { resourceVersion: this.rv, message: end.message },
            "watch expired (410 Gone), listing again",
          );
          needList = true;
          // At once (what changed meanwhile is waiting), unless the list before was just as
          // stale: a server that answers every watch with 410 must not be hammered.
          if (goneAgain) await this.sleep(jitteredBackoff(failures++, this.backoff));
          break;
        case "error": {
          this.stats.watchErrors++;
          const backoffMs = jitteredBackoff(failures++, this.backoff);
          this.log.warn(
            { err: end.err, resourceVersion: this.rv, attempt: failures, backoffMs },
            "watch failed, resuming",
          );
          this.emit("error", end.err);
          await this.sleep(backoffMs);
          break;
        }
        case "closed":
          this.log.debug({ resourceVersion: this.rv }, "watch ended, resuming");
          // A server that ends every watch at once must not be hammered.
          if (!healthy) await this.sleep(jitteredBackoff(failures++, this.backoff));
          break;
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** The cache becomes `list`: adds, updates (a new resourceVersion) and deletes for the difference. */
  private replace(list: ListResult): void {
    const next = new Map<string, T>();
    for (const raw of list.items) {
      const o = this.options.transform(raw);
      next.set(keyOf(o), o);
    }
    const old = this.cache;
    this.cache = next;
    this.rv = list.metadata?.resourceVersion ?? "";
    for (const [k, o] of next) {
      const before = old.get(k);
      if (!before) this.emit("add", o);
      else if (before.metadata.resourceVersion !== o.metadata.resourceVersion) this.emit("update", o, before);
    }
    for (const [k, o] of old) if (!next.has(k)) this.emit("delete", o);
    this.log.debug({ items: next.size, resourceVersion: this.rv }, "listed");
    if (!this.isSynced) {
      this.isSynced = true;
      this.emit("synced");
    }
  }

  private timeoutSeconds(): number {
    const t = this.options.watchTimeoutSeconds;
    if (typeof t === "function") return t();
    return t ?? Math.floor(300 * (1 + Math.random()));
  }

  private watchOnce(): Promise<WatchEnd> {
    const timeoutSeconds = this.timeoutSeconds();
    const idleMs = this.options.idleTimeoutMs ?? timeoutSeconds * 1000 + 30_000;
    this.stats.watches++;
    return new Promise<WatchEnd>((resolve) => {
      let ended = false;
      let controller: AbortController | undefined;
      let idle: NodeJS.Timeout | undefined;
      const finish = (end: WatchEnd) => {
        if (ended) return;
        ended = true;
        clearTimeout(idle);
        this.stopCurrent = undefined;
        controller?.abort();
        resolve(end);
      };
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(
          () => finish({ type: "error", err: new Error(`watch silent for ${idleMs} ms, presumed dead`) }),
          idleMs,
        );
        idle.unref();
      };
      this.stopCurrent = () => finish({ type: "stopped" });
      arm();
      const query: Record<string, string | number | boolean> = {
        resourceVersion: this.rv,
        allowWatchBookmarks: true,
        timeoutSeconds,
        ...(this.options.labelSelector ? { labelSelector: this.options.labelSelector } : {}),
        ...(this.options.fieldSelector ? { fieldSelector: this.options.fieldSelector } : {}),
      };
      new Watch(this.options.kubeConfig)
        .watch(
          this.options.path,
          query,
          (type: string, obj: unknown) => {
            if (ended) return;
            arm();
            this.onEvent(type, obj, finish);
          },
          (err: unknown) => {
            if (!err) return finish({ type: "closed" });
            const e = err instanceof Error ? err : new Error(JSON.stringify(err));
            const code = (err as { statusCode?: number }).statusCode;
            finish(code === 410 ? { type: "gone", message: e.message } : { type: "error", err: e });
          },
        )
        .then(
          (c) => {
            controller = c;
            if (ended) c.abort();
          },
          (err: unknown) =>
            finish({ type: "error", err: err instanceof Error ? err : new Error(String(err)) }),
        );
    });
  }

  private onEvent(type: string, obj: unknown, finish: (end: WatchEnd) => void): void {
    const rvOf = (o: unknown) =>
      (o as { metadata?: { resourceVersion?: string } } | null)?.metadata?.resourceVersion ?? undefined;
    switch (type) {
      case "ADDED":
      case "MODIFIED": {
        this.stats.events++;
        const o = this.options.transform(obj);
        const k = keyOf(o);
        const before = this.cache.get(k);
        this.cache.set(k, o);
        if (!before) this.emit("add", o);
        else if (before.metadata.resourceVersion !== o.metadata.resourceVersion)
          this.emit("update", o, before);
        break;
      }
      case "DELETED": {
        this.stats.events++;
        const o = this.options.transform(obj);
        const k = keyOf(o);
        if (this.cache.delete(k)) this.emit("delete", o);
        break;
      }
      case "BOOKMARK":
        this.stats.bookmarks++;
        break;
      case "ERROR": {
        const status = obj as { code?: number; message?: string; reason?: string } | null;
        if (status?.code === 410) finish({ type: "gone", message: status.message ?? "Gone" });
        else
          finish({
            type: "error",
            err: new Error(`watch error: ${status?.reason ?? ""} ${status?.message ?? JSON.stringify(obj)}`),
          });
        return;
      }
      default:
        return;
    }
    const rv = rvOf(obj);
    if (rv) this.rv = rv;
  }
}
