/**
 * Dropping the second copy of a mirrored frame: the same packet mirrored twice (egress of one pod
 * and ingress of another, both in one mirror; or two tunnels of an emulated `both`) arrives as two
 * identical frames, except for what a hop rewrites. As Arkime's capture/dedup.c does, the hash
 * covers the network and transport headers but skips the IPv4 TTL and header checksum and the
 * IPv6 hop limit; it also skips the TCP/UDP/ICMP checksums and takes up to 64 octets of payload so
 * small datagrams (ICMP, DNS) with equal headers are not taken for each other. Non-IP frames hash
 * their first 64 octets. The mirror's number seeds the hash, so two mirrors never dedupe each other.
 *
 * Storage is two generations of an open-addressing table of 64-bit hashes (no allocation per
 * packet): a frame seen within `windowMs` of its twin is always caught (entries live between one
 * and two windows). Time is the packets' own timestamps, so a file replays the same way at any
 * speed. When a generation is full, new frames pass unchecked and `overflows` counts them (Arkime
 * fails open the same way).
 *
 *     const d = new DedupTable({ windowMs: 100, capacity: 1 << 16 });
 *     if (d.isDuplicate(buf, inner, mirrorIndex, tsMs)) duplicates++;
 */
import { L3_IPV4, L3_IPV6 } from "./inner.js";
import type { InnerParser } from "./inner.js";

const PAYLOAD_BYTES = 64;
const MAX_PROBES = 16;

export interface DedupOptions {
  /** Frames closer than this (by their timestamps) are compared. */
  windowMs: number;
  /** Entries per generation; rounded up to a power of two. */
  capacity: number;
}

export class DedupTable {
  readonly windowMs: number;
  /** Frames that could not be remembered because a generation was full. */
  overflows = 0;
  readonly #mask: number;
  readonly #limit: number;
  #cur: Uint32Array;
  #prev: Uint32Array;
  #count = 0;
  #genStart = Number.NEGATIVE_INFINITY;
  // The hash being built (two independent 32-bit FNV-1a style lanes).
  #h1 = 0;
  #h2 = 0;

  constructor(opts: DedupOptions) {
    if (!(opts.windowMs > 0)) throw new RangeError(`dedup windowMs must be > 0 (got ${opts.windowMs})`);
    let slots = 16;
    while (slots < opts.capacity * 2) slots *= 2;
    this.windowMs = opts.windowMs;
    this.#mask = slots - 1;
    this.#limit = Math.floor(slots * 0.5);
    this.#cur = new Uint32Array(slots * 2);
    this.#prev = new Uint32Array(slots * 2);
  }

  #bytes(b: Buffer, from: number, to: number): void {
    let h1 = this.#h1;
    let h2 = this.#h2;
    for (let i = from; i < to; i++) {
      const x = b[i]!;
      h1 = Math.imul(h1 ^ x, 0x01000193);
      h2 = Math.imul(h2 ^ x, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    this.#h1 = h1;
    this.#h2 = h2;
  }

  /** True when an identical frame (per the rules above) was seen in this mirror within the window. */
  isDuplicate(
    b: Buffer,
    frameStart: number,
    frameEnd: number,
    inner: InnerParser,
    seed: number,
    tsMs: number,
  ): boolean {
    this.#h1 = (0x811c9dc5 ^ seed) >>> 0;
    this.#h2 = Math.imul(seed + 1, 0x9e3779b1);
    const l3 = inner.l3Start;
    if (inner.l3 === L3_IPV4) {
      this.#bytes(b, l3, l3 + 8); // version … fragment offset
      this.#bytes(b, l3 + 9, l3 + 10); // protocol (TTL at 8 skipped)
      this.#bytes(b, l3 + 12, inner.l4Start); // addresses, options (checksum at 10-11 skipped)
      this.#transport(b, inner);
    } else if (inner.l3 === L3_IPV6) {
      this.#bytes(b, l3, l3 + 7); // hop limit at 7 skipped
      this.#bytes(b, l3 + 8, inner.l4Start);
      this.#transport(b, inner);
    } else {
      const to = frameEnd - frameStart > PAYLOAD_BYTES ? frameStart + PAYLOAD_BYTES : frameEnd;
      this.#bytes(b, frameStart, to);
    }
    return this.#lookupOrInsert(this.#h1 >>> 0 || 1, this.#h2 >>> 0, tsMs);
  }

  #transport(b: Buffer, inner: InnerParser): void {
    const at = inner.l4Start;
    const end = inner.l3End;
    if (at >= end) return;
    // Where the transport checksum sits (TCP 16, UDP 6, ICMP/ICMPv6 2); later fragments have none.
    let csum = -1;
    let header = 0;
    if (!inner.laterFragment) {
      switch (inner.protocol) {
        case 6:
          csum = 16;
          header = end - at >= 13 ? (b[at + 12]! >>> 4) << 2 : 20;
          break;
        case 17:
          csum = 6;
          header = 8;
          break;
        case 1:
        case 58:
          csum = 2;
          header = 8;
          break;
      }
    }
    const stop = Math.min(end, at + header + PAYLOAD_BYTES);
    if (csum >= 0 && at + csum + 2 <= stop) {
      this.#bytes(b, at, at + csum);
      this.#bytes(b, at + csum + 2, stop);
    } else {
      this.#bytes(b, at, stop);
    }
  }

  #lookupOrInsert(h1: number, h2: number, tsMs: number): boolean {
    const age = tsMs - this.#genStart;
    if (age >= this.windowMs || age < 0) {
      if (age >= 2 * this.windowMs || age < 0) {
        // Both generations are older than a window (or time went back): forget everything.
        this.#prev.fill(0);
      } else {
        const old = this.#prev;
        this.#prev = this.#cur;
        this.#cur = old;
      }
      this.#cur.fill(0);
      this.#count = 0;
      this.#genStart = tsMs;
    }
    if (this.#find(this.#prev, h1, h2) >= 0) return true;
    const slot = this.#find(this.#cur, h1, h2);
    if (slot >= 0) return true;
    if (this.#count >= this.#limit) {
      this.overflows++;
      return false;
    }
    const cur = this.#cur;
    let i = h2 & this.#mask;
    for (let probe = 0; probe < MAX_PROBES; probe++) {
      if (cur[i * 2] === 0) {
        cur[i * 2] = h1;
        cur[i * 2 + 1] = h2;
        this.#count++;
        return false;
      }
      i = (i + 1) & this.#mask;
    }
    this.overflows++;
    return false;
  }

  #find(table: Uint32Array, h1: number, h2: number): number {
    let i = h2 & this.#mask;
    for (let probe = 0; probe < MAX_PROBES; probe++) {
      const v = table[i * 2]!;
      if (v === 0) return -1;
      if (v === h1 && table[i * 2 + 1] === h2) return i;
      i = (i + 1) & this.#mask;
    }
    return -1;
  }
}
