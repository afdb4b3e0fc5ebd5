/**
 * Cuts a byte stream that arrives in arbitrary chunks into length-prefixed units (pcap records,
 * pcapng blocks) without copying the units that lie wholly inside one chunk. Only a unit that
 * straddles two chunks is copied, into a buffer of exactly its size.
 */
import type { DecodeFailure } from "./result.js";

export interface UnitFormat {
  /**
   * How many bytes the unit at `at` needs: with fewer bytes than some fixed probe size, the probe
   * size (≥ 1); once the probe is there, the unit's full length. `offset` is the unit's position in
   * the stream, for the `at` of a failure, which stops the stream.
   */
  measure(buf: Buffer, at: number, offset: number): number | DecodeFailure;
  /** Handle one whole unit, `buf[at, at + length)`; `offset` is its position in the stream. */
  unit(buf: Buffer, at: number, length: number, offset: number): DecodeFailure | undefined;
}

export class Framer {
  #pending: Buffer | undefined;
  #offset = 0;
  #failure: DecodeFailure | undefined;

  constructor(private readonly format: UnitFormat) {}

  /** Bytes held back from earlier chunks, waiting for the rest of their unit. */
  get buffered(): number {
    return this.#pending?.length ?? 0;
  }

  /** Stream offset of the next unit. */
  get offset(): number {
    return this.#offset;
  }

  get failure(): DecodeFailure | undefined {
    return this.#failure;
  }

  push(chunk: Buffer): DecodeFailure | undefined {
    if (this.#failure !== undefined) return this.#failure;
    let pos = 0;
    while (this.#pending !== undefined) {
      const pending = this.#pending;
      const need = this.format.measure(pending, 0, this.#offset);
      if (typeof need !== "number") return this.#stop(need);
      if (pending.length >= need) {
        const f = this.#emit(pending, 0, need);
        if (f !== undefined) return f;
        this.#pending = pending.length > need ? pending.subarray(need) : undefined;
        continue;
      }
      if (pos === chunk.length) return undefined;
      const take = Math.min(need - pending.length, chunk.length - pos);
      this.#pending = Buffer.concat([pending, chunk.subarray(pos, pos + take)]);
      pos += take;
    }
    while (pos < chunk.length) {
      const need = this.format.measure(chunk, pos, this.#offset);
      if (typeof need !== "number") return this.#stop(need);
      if (chunk.length - pos < need) {
        // The caller may reuse `chunk` (libpcap-style shared buffers): keep a copy of the tail.
        this.#pending = Buffer.from(chunk.subarray(pos));
        return undefined;
      }
      const f = this.#emit(chunk, pos, need);
      if (f !== undefined) return f;
      pos += need;
    }
    return undefined;
  }

  #emit(buf: Buffer, at: number, length: number): DecodeFailure | undefined {
    const f = this.format.unit(buf, at, length, this.#offset);
    if (f !== undefined) return this.#stop(f);
    this.#offset += length;
    return undefined;
  }

  #stop(f: DecodeFailure): DecodeFailure {
    this.#failure = f;
    return f;
  }
}
