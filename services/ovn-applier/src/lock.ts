/**
 * One reconcile of a mirror at a time across replicas: a Redis lock per mirror with a random
 * token and an expiry (SET NX PX), renewed while held and released only by its holder
 * (compare-and-delete in Lua), as in the single-instance Redis locking pattern.
 *
 *   const lock = new MirrorLocks(redis, { prefix: "{ovntap}", ttlMs: 15_000, logger });
 *   await lock.withLock("shop/web", { waitMs: 60_000 }, async (signal) => reconcile(signal));
 *
 * Why a lock rather than BullMQ groups: per-group concurrency is a BullMQ Pro feature; a lock
 * also covers work started outside the queue. The expiry bounds how long a crashed replica
 * blocks a mirror. If a renewal finds the lock gone (expired during a long stall, taken by
 * another replica), `signal` aborts; the NB write is one atomic transaction and status
 * writes are generation-guarded by the store, so the worst case is a redundant reconcile.
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "@ovntap/runtime";

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;

/** The lock stayed with another holder for the whole wait; retry later. */
export class LockBusyError extends Error {
  override name = "LockBusyError";
  constructor(
    readonly id: string,
    waitedMs: number,
  ) {
    super(`mirror ${id} is being reconciled by another replica (waited ${waitedMs} ms); retry later`);
  }
}

export interface MirrorLocksOptions {
  /** Key prefix; the key is `<prefix>:ovn-applier:lock:<id>`. */
  prefix: string;
  ttlMs: number;
  logger: Logger;
  /** Told how long each acquisition waited (for this process's holders and other replicas'). */
  observeWait?: (seconds: number) => void;
}

export class MirrorLocks {
  private readonly log: Logger;
  /**
   * Locks this process let go of but could not release (Redis unreachable at that moment), by
   * mirror: released as soon as Redis is back, and before this process next takes the same
   * lock, instead of making every holder wait out the TTL. Releasing is by token, so a lock
   * that expired and was taken by someone else meanwhile is left alone.
   */
  private readonly owed = new Map<string, string>();
  /**
   * Per mirror: the last of this process's holders and waiters, as a promise that settles when
   * it lets go. A second reconcile of a mirror in the same process (a job and a drift trigger
   * at once, say) queues behind the first here and takes the lock the moment it is released,
   * instead of polling Redis with a growing back-off tuned for other replicas: polling, the
   * later one waited hundreds of milliseconds for a lock held for ten.
   */
  private readonly local = new Map<string, Promise<void>>();
  constructor(
    private readonly redis: Redis,
    private readonly options: MirrorLocksOptions,
  ) {
    this.log = options.logger.child({ component: "lock" });
    redis.on("ready", () => void this.settleOwed());
  }

  /** Locks still owed a release (see `owed`). */
  get owedReleases(): number {
    return this.owed.size;
  }

  private async settleOwed(only?: string): Promise<void> {
    for (const [id, token] of [...this.owed]) {
      if (only !== undefined && id !== only) continue;
      try {
        await this.release(id, token);
        if (this.owed.get(id) === token) this.owed.delete(id);
      } catch {
        // Still unreachable: the next `ready` or acquire tries again (the TTL ends it anyway).
      }
    }
  }

  key(id: string): string {
    return `${this.options.prefix}:ovn-applier:lock:${id}`;
  }

  /** Tries once; returns the token when acquired. */
  async tryAcquire(id: string): Promise<string | undefined> {
    const token = randomBytes(16).toString("hex");
    const ok = await this.redis.set(this.key(id), token, "PX", this.options.ttlMs, "NX");
    return ok === "OK" ? token : undefined;
  }

  async release(id: string, token: string): Promise<boolean> {
    return (await this.redis.eval(RELEASE, 1, this.key(id), token)) === 1;
  }

  async renew(id: string, token: string): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.key(id), token, String(this.options.ttlMs))) === 1;
  }

  /**
   * Runs `fn` holding the lock of `id`, waiting up to `waitMs` for it: behind this process's
   * earlier holders in order, handed over as each lets go; for another replica's, by jittered
   * polling. Throws LockBusyError when the wait runs out.
   */
  async withLock<T, P = never>(
    id: string,
    opts: {
      waitMs: number;
      signal?: AbortSignal;
      /**
       * A read sent right behind the first acquire on the same connection, so Redis runs it
       * after the lock is taken and one round trip does both; handed to `fn` when that first
       * acquire won (a later one means another holder wrote in between: `fn` reads again).
       */
      prefetch?: () => Promise<P>;
    },
    fn: (signal: AbortSignal, prefetched: Promise<P> | undefined) => Promise<T>,
  ): Promise<T> {
    const started = Date.now();
    const ahead = this.local.get(id);
    let letGo!: () => void;
    const mine = new Promise<void>((resolve) => (letGo = resolve));
    const tail = ahead ? ahead.then(() => mine) : mine;
    this.local.set(id, tail);
    try {
      if (ahead) await this.waitLocal(id, ahead, started, opts);
      return await this.acquireAndRun(id, started, opts, fn);
    } finally {
      letGo();
      if (this.local.get(id) === tail) this.local.delete(id);
    }
  }

  /** Waits for this process's earlier holders of `id`, within the same `waitMs`. */
  private async waitLocal(
    id: string,
    ahead: Promise<void>,
    started: number,
    opts: { waitMs: number; signal?: AbortSignal },
  ): Promise<void> {
    if (opts.signal?.aborted) throw new LockBusyError(id, Date.now() - started);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const busy = new Promise<"busy">((resolve) => {
      timer = setTimeout(() => resolve("busy"), Math.max(0, opts.waitMs - (Date.now() - started)));
      onAbort = () => resolve("busy");
      opts.signal?.addEventListener("abort", onAbort, { once: true });
    });
    try {
      if ((await Promise.race([ahead.then(() => "free" as const), busy])) === "busy")
        throw new LockBusyError(id, Date.now() - started);
    } finally {
      clearTimeout(timer);
      if (onAbort) opts.signal?.removeEventListener("abort", onAbort);
    }
  }

  private async acquireAndRun<T, P>(
    id: string,
    started: number,
    opts: { waitMs: number; signal?: AbortSignal; prefetch?: () => Promise<P> },
    fn: (signal: AbortSignal, prefetched: Promise<P> | undefined) => Promise<T>,
  ): Promise<T> {
    let token: string | undefined;
    let prefetched: Promise<P> | undefined;
    if (this.owed.has(id)) await this.settleOwed(id);
    for (let attempt = 0; ; attempt++) {
      const acquiring = this.tryAcquire(id);
      if (attempt === 0 && opts.prefetch) {
        prefetched = opts.prefetch();
        prefetched.catch(() => undefined);
      }
      token = await acquiring;
      if (token) break;
      prefetched = undefined;
      const waited = Date.now() - started;
      if (waited >= opts.waitMs || opts.signal?.aborted) throw new LockBusyError(id, waited);
      const delay = Math.min(500, 20 * 2 ** attempt) * (0.5 + Math.random());
      await new Promise((r) => setTimeout(r, Math.min(delay, opts.waitMs - waited)));
    }
    this.options.observeWait?.((Date.now() - started) / 1000);
    const held = token;
    const controller = new AbortController();
    const onOuterAbort = () => controller.abort(opts.signal?.reason);
    opts.signal?.addEventListener("abort", onOuterAbort, { once: true });
    const renewal = setInterval(
      () => {
        this.renew(id, held).then(
          (ok) => {
            if (!ok && !controller.signal.aborted) {
              this.log.warn({ mirror: id }, "mirror lock lost");
              controller.abort(new Error(`lock of ${id} lost`));
            }
          },
          (err: unknown) => this.log.warn({ err, mirror: id }, "mirror lock renewal failed"),
        );
      },
      Math.max(100, Math.floor(this.options.ttlMs / 3)),
    );
    try {
      return await fn(controller.signal, prefetched);
    } finally {
      clearInterval(renewal);
      opts.signal?.removeEventListener("abort", onOuterAbort);
      await this.release(id, held).catch((err: unknown) => {
        // Released once Redis is back (the lock would expire by itself, later).
        this.owed.set(id, held);
        this.log.warn({ err, mirror: id }, "mirror lock release failed; released when Redis is back");
      });
    }
  }
}
