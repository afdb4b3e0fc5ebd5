/**
 * Per-5-tuple counters of one mirror over one interval, for `ovntap.v1.flows.<ns>.<mirror>`.
 *
 *     const t = new FlowTable(100_000);
 *     t.add(inner, buf, wireLength, sec, nsec);     // per packet
 *     const records = t.drain();                    // every interval: FlowRecord[], table emptied
 *
 * IPv4 flows — nearly all of them — live in an open-addressing table in typed arrays, so a
 * packet costs a hash, a probe or two and a few stores, never an allocation; the table starts small and doubles while it is more than half full, up to
 * `maxFlows`. IPv6 flows use a Map keyed by the tuple's text (one string per packet: rare enough).
 * Flows are directional (a → b and b → a are two records), as a mirror sees them. Protocols
 * without ports count with ports 0 (contracts FlowRecord); frames that are not IP are not flows.
 */
import type { FlowRecord } from "@ovntap/contracts";
import { formatIp } from "@ovntap/packet";
import { L3_IPV4, L3_IPV6, NO_PORT } from "./inner.js";
import type { InnerParser } from "./inner.js";

const INITIAL_SLOTS = 256;
const KEY_STRIDE = 8;
const COUNT_STRIDE = 2;

function hash(proto: number, src: number, dst: number, ports: number): number {
  let h = Math.imul(src ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ dst ^ (h >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ ports ^ (h >>> 16), 0x85ebca6b);
  return h ^ proto ^ (h >>> 15);
}

/** Decimal nanoseconds since the epoch from seconds and nanoseconds, exactly. */
export function nsText(sec: number, nsec: number): string {
  return sec === 0 ? String(nsec) : `${sec}${String(nsec).padStart(9, "0")}`;
}

function ipv4Text(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

interface Flow6 {
  readonly protocol: number;
  readonly src: string;
  readonly dst: string;
  readonly srcPort: number;
  readonly dstPort: number;
  packets: number;
  bytes: number;
  readonly firstSec: number;
  readonly firstNsec: number;
  lastSec: number;
  lastNsec: number;
}

export class FlowTable {
  /** Packets of flows not tracked because the table was full (reset by the reader). */
  overflowPackets = 0;
  readonly #maxFlows: number;
  #slots = 0;
  #mask = 0;
  #count = 0;
  /**
   * One row of KEY_STRIDE int32 per slot — protocol + 1 (0 marks an empty slot), source, destination,
   * ports, first sec/nsec, last sec/nsec (uint32 values stored as int32) — and COUNT_STRIDE doubles
   * (packets, bytes): an update touches two cache lines, not one per column.
   */
  #keys = new Int32Array(0);
  #counts = new Float64Array(0);
  readonly #v6 = new Map<string, Flow6>();

  constructor(maxFlows: number) {
    this.#maxFlows = maxFlows;
    this.#allocate(INITIAL_SLOTS);
  }

  get size(): number {
    return this.#count + this.#v6.size;
  }

  #allocate(slots: number): void {
    this.#slots = slots;
    this.#mask = slots - 1;
    this.#keys = new Int32Array(slots * KEY_STRIDE);
    this.#counts = new Float64Array(slots * COUNT_STRIDE);
  }

  /** Counts one frame parsed into `inner`; `bytes` is its length on the wire. */
  add(inner: InnerParser, b: Buffer, bytes: number, sec: number, nsec: number): void {
    const l3 = inner.l3;
    if (l3 === L3_IPV4) this.#add4(inner, bytes, sec, nsec);
    else if (l3 === L3_IPV6) this.#add6(inner, b, bytes, sec, nsec);
  }

  #add4(inner: InnerParser, bytes: number, sec: number, nsec: number): void {
    const proto = inner.protocol + 1;
    const src = inner.src4 | 0;
    const dst = inner.dst4 | 0;
    const ports =
      ((inner.srcPort === NO_PORT ? 0 : inner.srcPort) << 16) |
      (inner.dstPort === NO_PORT ? 0 : inner.dstPort);
    const mask = this.#mask;
    const K = this.#keys;
    let i = hash(proto, src, dst, ports) & mask;
    for (;;) {
      const k = i * KEY_STRIDE;
      const p = K[k]!;
      if (p === 0) break;
      if (p === proto && K[k + 1] === src && K[k + 2] === dst && K[k + 3] === ports) {
        const c = i * COUNT_STRIDE;
        this.#counts[c]! += 1;
        this.#counts[c + 1]! += bytes;
        K[k + 6] = sec;
        K[k + 7] = nsec;
        return;
      }
      i = (i + 1) & mask;
    }
    if (this.#count >= this.#maxFlows) {
      this.overflowPackets++;
      return;
    }
    if (2 * (this.#count + 1) > this.#slots) {
      this.#grow();
      this.#add4(inner, bytes, sec, nsec);
      return;
    }
    const k = i * KEY_STRIDE;
    K[k] = proto;
    K[k + 1] = src;
    K[k + 2] = dst;
    K[k + 3] = ports;
    K[k + 4] = sec;
    K[k + 5] = nsec;
    K[k + 6] = sec;
    K[k + 7] = nsec;
    const c = i * COUNT_STRIDE;
    this.#counts[c] = 1;
    this.#counts[c + 1] = bytes;
    this.#count++;
  }

  /** Doubles the table, re-inserting every flow. */
  #grow(): void {
    const keys = this.#keys;
    const counts = this.#counts;
    const old = this.#slots;
    this.#allocate(old * 2);
    const mask = this.#mask;
    for (let j = 0; j < old; j++) {
      const k = j * KEY_STRIDE;
      const proto = keys[k]!;
      if (proto === 0) continue;
      let i = hash(proto, keys[k + 1]!, keys[k + 2]!, keys[k + 3]!) & mask;
      while (this.#keys[i * KEY_STRIDE] !== 0) i = (i + 1) & mask;
      this.#keys.set(keys.subarray(k, k + KEY_STRIDE), i * KEY_STRIDE);
      this.#counts[i * COUNT_STRIDE] = counts[j * COUNT_STRIDE]!;
      this.#counts[i * COUNT_STRIDE + 1] = counts[j * COUNT_STRIDE + 1]!;
    }
  }

  #add6(inner: InnerParser, b: Buffer, bytes: number, sec: number, nsec: number): void {
    const sp = inner.srcPort === NO_PORT ? 0 : inner.srcPort;
    const dp = inner.dstPort === NO_PORT ? 0 : inner.dstPort;
    const key = `${inner.protocol} ${b.toString("hex", inner.src6, inner.src6 + 16)} ${b.toString("hex", inner.dst6, inner.dst6 + 16)} ${sp} ${dp}`;
    const f = this.#v6.get(key);
    if (f !== undefined) {
      f.packets++;
      f.bytes += bytes;
      f.lastSec = sec;
      f.lastNsec = nsec;
      return;
    }
    if (this.#count + this.#v6.size >= this.#maxFlows) {
      this.overflowPackets++;
      return;
    }
    this.#v6.set(key, {
      protocol: inner.protocol,
      src: formatIp(b.subarray(inner.src6, inner.src6 + 16)),
      dst: formatIp(b.subarray(inner.dst6, inner.dst6 + 16)),
      srcPort: sp,
      dstPort: dp,
      packets: 1,
      bytes,
      firstSec: sec,
      firstNsec: nsec,
      lastSec: sec,
      lastNsec: nsec,
    });
  }

  /** The interval's flows (busiest first) and an empty table for the next. */
  drain(): FlowRecord[] {
    const out: FlowRecord[] = [];
    if (this.#count > 0) {
      const K = this.#keys;
      for (let i = 0; i < this.#slots; i++) {
        const k = i * KEY_STRIDE;
        const proto = K[k]!;
        if (proto === 0) continue;
        const ports = K[k + 3]!;
        out.push({
          protocol: proto - 1,
          src: ipv4Text(K[k + 1]! >>> 0),
          dst: ipv4Text(K[k + 2]! >>> 0),
          srcPort: ports >>> 16,
          dstPort: ports & 0xffff,
          packets: this.#counts[i * COUNT_STRIDE]!,
          bytes: this.#counts[i * COUNT_STRIDE + 1]!,
          firstNs: nsText(K[k + 4]! >>> 0, K[k + 5]! >>> 0),
          lastNs: nsText(K[k + 6]! >>> 0, K[k + 7]! >>> 0),
        });
      }
      // A quiet interval after a busy one gives memory back, halving at a time.
      if (this.#count * 8 < this.#slots && this.#slots > INITIAL_SLOTS) this.#allocate(this.#slots / 2);
      else this.#keys.fill(0);
      this.#count = 0;
    }
    for (const f of this.#v6.values()) {
      out.push({
        protocol: f.protocol,
        src: f.src,
        dst: f.dst,
        srcPort: f.srcPort,
        dstPort: f.dstPort,
        packets: f.packets,
        bytes: f.bytes,
        firstNs: nsText(f.firstSec, f.firstNsec),
        lastNs: nsText(f.lastSec, f.lastNsec),
      });
    }
    this.#v6.clear();
    out.sort((a, b) => b.bytes - a.bytes || b.packets - a.packets);
    return out;
  }
}
