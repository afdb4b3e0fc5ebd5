/**
 * The recent capture batches of every mirror, for "download the last N seconds". Memory is bounded
 * three ways, each checked on every push:
 *
 * - by age: a batch received more than `maxAgeMs` ago is dropped (times come from a monotonic
 *   clock, so each mirror's batches are in time order);
 * - per mirror: past `maxBytesPerMirror`, the mirror's oldest batches are dropped;
 * - in total: past `maxTotalBytes`, the oldest batch of any mirror is dropped, so one busy mirror
 *   cannot starve the others of their recent seconds beyond their share of age.
 *
 * A batch is charged its payload plus BATCH_OVERHEAD_BYTES for its bookkeeping, so a flood of tiny
 * batches is bounded too. A batch larger than the per-mirror bound is not kept at all.
 *
 *     const ring = new CaptureRing({ maxAgeMs: 120_000, maxBytesPerMirror: 32 << 20, maxTotalBytes: 128 << 20 });
 *     ring.push("shop/web", { receivedAtMs: Date.now(), stream, linkType: 1, snaplen, count, payload });
 *     ring.since("shop/web", Date.now() - 30_000);   // batches of the last 30 s, oldest first
 */

/** Charged per batch on top of its payload: the object, its fields, the deque slot. */
export const BATCH_OVERHEAD_BYTES = 256;

export interface RingBatch {
  /** When the console received it (its clock): what age and "the last N seconds" are measured by. */
  readonly receivedAtMs: number;
  /**
   * The run of batches this one continues, in time order (the exporter's node, encap and key: a
   * `both` mirror emulated by two tunnels makes two runs on one node).
   */
  readonly stream: string;
  readonly linkType: number;
  readonly snaplen: number;
  /** Records in `payload`. */
  readonly count: number;
  /** Whole pcap records (a copy the ring owns). */
  readonly payload: Buffer;
}

export interface CaptureRingOptions {
  maxAgeMs: number;
  maxBytesPerMirror: number;
  maxTotalBytes: number;
}

export type EvictReason = "age" | "mirror_bytes" | "total_bytes" | "too_large";

export interface RingStats {
  mirrors: number;
  batches: number;
  /** Charged bytes (payloads plus overhead). */
  bytes: number;
  /** Batches dropped so far, by reason. */
  evicted: Record<EvictReason, number>;
}

const charge = (b: RingBatch): number => b.payload.length + BATCH_OVERHEAD_BYTES;

/** A FIFO over an array with a moving head, compacted now and then: O(1) amortised at both ends. */
class Deque<T> {
  #items: T[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined as T; // let it be collected now
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Items from the first one `keep` accepts to the end (items are in time order). */
  tailFrom(keep: (item: T) => boolean): T[] {
    let lo = this.#head;
    let hi = this.#items.length;
    // Binary search for the first kept item: `keep` is monotonic over a time-ordered deque.
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keep(this.#items[mid] as T)) hi = mid;
      else lo = mid + 1;
    }
    return this.#items.slice(lo);
  }
}

interface MirrorRing {
  batches: Deque<RingBatch>;
  bytes: number;
}

export class CaptureRing {
  readonly #opts: CaptureRingOptions;
  readonly #mirrors = new Map<string, MirrorRing>();
  #bytes = 0;
  #batches = 0;
  readonly #evicted: Record<EvictReason, number> = {
    age: 0,
    mirror_bytes: 0,
    total_bytes: 0,
    too_large: 0,
  };

  constructor(opts: CaptureRingOptions) {
    for (const k of ["maxAgeMs", "maxBytesPerMirror", "maxTotalBytes"] as const) {
      if (!Number.isFinite(opts[k]) || opts[k] <= 0) {
        throw new RangeError(`CaptureRingOptions.${k} must be a positive number, got ${opts[k]}`);
      }
    }
    this.#opts = { ...opts };
  }

  get maxAgeMs(): number {
    return this.#opts.maxAgeMs;
  }

  /** Keeps `batch` for `mirror` and drops what the bounds require; false when it was too large to keep. */
  push(mirror: string, batch: RingBatch): boolean {
    const size = charge(batch);
    if (size > this.#opts.maxBytesPerMirror || size > this.#opts.maxTotalBytes) {
      this.#evicted.too_large++;
      return false;
    }
    const held = this.#mirrors.get(mirror);
    if (held !== undefined) this.#expireRing(mirror, held, batch.receivedAtMs - this.#opts.maxAgeMs);
    let ring = this.#mirrors.get(mirror); // gone if expiry emptied it
    if (ring === undefined) {
      ring = { batches: new Deque(), bytes: 0 };
      this.#mirrors.set(mirror, ring);
    }
    ring.batches.push(batch);
    ring.bytes += size;
    this.#bytes += size;
    this.#batches++;
    while (ring.bytes > this.#opts.maxBytesPerMirror) this.#dropOldest(mirror, ring, "mirror_bytes");
    while (this.#bytes > this.#opts.maxTotalBytes) {
      const oldest = this.#oldestMirror();
      if (oldest === undefined) break;
      this.#dropOldest(oldest[0], oldest[1], "total_bytes");
    }
    return true;
  }

  /** Drops every batch received before `nowMs - maxAgeMs` (push does so for its own mirror; call this every second). */
  expire(nowMs: number): void {
    const cutoff = nowMs - this.#opts.maxAgeMs;
    for (const [mirror, ring] of this.#mirrors) this.#expireRing(mirror, ring, cutoff);
  }

  /** The mirror's batches received at or after `sinceMs`, oldest first. */
  since(mirror: string, sinceMs: number): RingBatch[] {
    const ring = this.#mirrors.get(mirror);
    if (ring === undefined) return [];
    return ring.batches.tailFrom((b) => b.receivedAtMs >= sinceMs);
  }

  has(mirror: string): boolean {
    return this.#mirrors.has(mirror);
  }

  /** Charged bytes held for one mirror. */
  bytesOf(mirror: string): number {
    return this.#mirrors.get(mirror)?.bytes ?? 0;
  }

  stats(): RingStats {
    return {
      mirrors: this.#mirrors.size,
      batches: this.#batches,
      bytes: this.#bytes,
      evicted: { ...this.#evicted },
    };
  }

  #expireRing(mirror: string, ring: MirrorRing, cutoff: number): void {
    for (let b = ring.batches.peek(); b !== undefined && b.receivedAtMs < cutoff; b = ring.batches.peek()) {
      this.#dropOldest(mirror, ring, "age");
    }
  }

  #dropOldest(mirror: string, ring: MirrorRing, reason: EvictReason): void {
    const b = ring.batches.shift();
    if (b === undefined) return;
    const size = charge(b);
    ring.bytes -= size;
    this.#bytes -= size;
    this.#batches--;
    this.#evicted[reason]++;
    if (ring.batches.length === 0) this.#mirrors.delete(mirror);
  }

  /** The mirror whose oldest batch is the oldest of all (mirrors are few: a scan is enough). */
  #oldestMirror(): [string, MirrorRing] | undefined {
    let best: [string, MirrorRing] | undefined;
    let bestAt = Infinity;
    for (const entry of this.#mirrors) {
      const at = entry[1].batches.peek()?.receivedAtMs ?? Infinity;
      if (at < bestAt) {
        bestAt = at;
        best = entry;
      }
    }
    return best;
  }
}
