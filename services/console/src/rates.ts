/**
 * Packet and byte rates per mirror: counts of the capture batches received, in one-second buckets
 * over a sliding window (the sparklines), and a rate averaged over the last few complete seconds
 * (the number shown beside them, steadier than a single second of ping-sized traffic).
 *
 *     const rates = new RateBoard();
 *     rates.add("shop/web", Date.now(), batch.count, wireBytes);
 *     rates.tick(Math.floor(Date.now() / 1000) - 1);   // every second: the second that just closed
 *     rates.snapshot(lastClosedSecond);                // for a page that just connected
 */

/** Seconds of history: the sparklines' width. */
export const RATE_WINDOW_SECONDS = 120;
/** Complete seconds the shown rate averages over. */
export const RATE_AVERAGE_SECONDS = 5;

/** One-second buckets of packets and bytes over the last `window` seconds. */
export class RateSeries {
  readonly window: number;
  readonly #packets: Float64Array;
  readonly #bytes: Float64Array;
  /** The newest second with a bucket; buckets cover (newest - window, newest]. */
  #newest: number | undefined;
  packetsTotal = 0;
  bytesTotal = 0;

  constructor(window = RATE_WINDOW_SECONDS) {
    if (!Number.isInteger(window) || window < 1)
      throw new RangeError(`window must be a positive integer, got ${window}`);
    this.window = window;
    this.#packets = new Float64Array(window);
    this.#bytes = new Float64Array(window);
  }

  /** The newest second anything was counted in. */
  get newest(): number | undefined {
    return this.#newest;
  }

  /** Counts `packets` and `bytes` in `second` (Unix seconds); a second older than the window is ignored. */
  add(second: number, packets: number, bytes: number): void {
    this.packetsTotal += packets;
    this.bytesTotal += bytes;
    if (this.#newest === undefined || second > this.#newest) {
      // Clear the buckets the window moves over (at most all of them).
      const from =
        this.#newest === undefined
          ? second - this.window + 1
          : Math.max(this.#newest + 1, second - this.window + 1);
      for (let s = from; s <= second; s++) {
        const i = this.#slot(s);
        this.#packets[i] = 0;
        this.#bytes[i] = 0;
      }
      this.#newest = second;
    } else if (second <= this.#newest - this.window) {
      return;
    }
    const i = this.#slot(second);
    this.#packets[i] = (this.#packets[i] ?? 0) + packets;
    this.#bytes[i] = (this.#bytes[i] ?? 0) + bytes;
  }

  /** [packets, bytes] counted in `second`; 0 outside what the buckets hold. */
  at(second: number): [number, number] {
    if (this.#newest === undefined || second > this.#newest || second <= this.#newest - this.window)
      return [0, 0];
    const i = this.#slot(second);
    return [this.#packets[i] ?? 0, this.#bytes[i] ?? 0];
  }

  /** The `window` seconds ending at `endSecond`, oldest first. */
  series(endSecond: number): { start: number; packets: number[]; bytes: number[] } {
    const start = endSecond - this.window + 1;
    const packets: number[] = [];
    const bytes: number[] = [];
    for (let s = start; s <= endSecond; s++) {
      const [p, b] = this.at(s);
      packets.push(p);
      bytes.push(b);
    }
    return { start, packets, bytes };
  }

  /** Packets and bytes per second, averaged over the `seconds` seconds ending at `endSecond`. */
  rate(endSecond: number, seconds = RATE_AVERAGE_SECONDS): { pps: number; bps: number } {
    let p = 0;
    let b = 0;
    for (let s = endSecond - seconds + 1; s <= endSecond; s++) {
      const [ps, bs] = this.at(s);
      p += ps;
      b += bs;
    }
    return { pps: p / seconds, bps: b / seconds };
  }

  #slot(second: number): number {
    return ((second % this.window) + this.window) % this.window;
  }
}

/** What a page is sent every second for one mirror. */
export interface RateTick {
  /** Packets and bytes counted in the second. */
  packets: number;
  bytes: number;
  /** The averaged rates ending at that second. */
  pps: number;
  bps: number;
  packetsTotal: number;
  bytesTotal: number;
}

export interface RateSnapshot {
  /** The Unix second of the first bucket. */
  start: number;
  packets: number[];
  bytes: number[];
  pps: number;
  bps: number;
  packetsTotal: number;
  bytesTotal: number;
}

/** Every mirror's RateSeries, by `<ns>/<name>`. */
export class RateBoard {
  readonly window: number;
  readonly #series = new Map<string, RateSeries>();
  readonly #maxSeries: number;

  constructor(opts: { window?: number; maxSeries?: number } = {}) {
    this.window = opts.window ?? RATE_WINDOW_SECONDS;
    this.#maxSeries = opts.maxSeries ?? 10_000;
  }

  /** Counts a batch received at `nowMs`; false when the board is full of other mirrors. */
  add(mirror: string, nowMs: number, packets: number, bytes: number): boolean {
    let s = this.#series.get(mirror);
    if (s === undefined) {
      if (this.#series.size >= this.#maxSeries) return false;
      s = new RateSeries(this.window);
      this.#series.set(mirror, s);
    }
    s.add(Math.floor(nowMs / 1000), packets, bytes);
    return true;
  }

  has(mirror: string): boolean {
    return this.#series.has(mirror);
  }

  /** The values of `second` for every mirror with a series. */
  tick(second: number): Record<string, RateTick> {
    const out: Record<string, RateTick> = {};
    for (const [id, s] of this.#series) {
      const [packets, bytes] = s.at(second);
      out[id] = { packets, bytes, ...s.rate(second), packetsTotal: s.packetsTotal, bytesTotal: s.bytesTotal };
    }
    return out;
  }

  /** Every series over the window ending at `endSecond`. */
  snapshot(endSecond: number): Record<string, RateSnapshot> {
    const out: Record<string, RateSnapshot> = {};
    for (const [id, s] of this.#series) {
      out[id] = {
        ...s.series(endSecond),
        ...s.rate(endSecond),
        packetsTotal: s.packetsTotal,
        bytesTotal: s.bytesTotal,
      };
    }
    return out;
  }

  /**
   * Forgets the series of mirrors that saw nothing for the whole window ending at `second` and that
   * `keep` does not name (mirrors that still exist keep their totals).
   */
  prune(second: number, keep: (mirror: string) => boolean): string[] {
    const removed: string[] = [];
    for (const [id, s] of this.#series) {
      if (keep(id)) continue;
      if (s.newest === undefined || s.newest <= second - this.window) {
        this.#series.delete(id);
        removed.push(id);
      }
    }
    return removed;
  }
}
