/**
 * Read either capture format without knowing which: the first four octets tell (a pcapng file
 * starts with the SHB type 0x0A0D0D0A, draft-ietf-opsawg-pcap §6 "Recommended File Name
 * Extension"; a pcap file with one of the four magic byte sequences).
 *
 *     const r = new CaptureStreamReader();
 *     for await (const chunk of fs.createReadStream(path)) {
 *       const out = r.push(chunk);
 *       for (const p of out.packets) print(formatSummary(decodeFrame(p.data, p.linkType)));
 *       if (!out.ok) throw new CaptureFormatError(out);
 *     }
 *     const tail = r.end(); if (tail) throw new CaptureFormatError(tail);
 */
import { asBuffer } from "./bytes.js";
import { PcapStreamReader } from "./pcap.js";
import { PcapngStreamReader, PCAPNG_BLOCK_SHB } from "./pcapng.js";
import { fail } from "./result.js";
import type { DecodeFailure, DecodeReason, Layer } from "./result.js";

export type CaptureFormat = "pcap" | "pcapng";

/** A packet from either format. */
export interface CapturedPacket {
  readonly seconds: number;
  readonly nanos: number;
  readonly originalLength: number;
  readonly data: Buffer;
  readonly linkType: number;
  /** pcapng interface id (0 for pcap). */
  readonly interfaceId: number;
  /** pcapng `if_name` — for ovntap files, the mirror. */
  readonly interfaceName: string | undefined;
}

/** `pcap` or `pcapng` from the first four octets, `undefined` when neither (or fewer than four). */
export function detectCaptureFormat(bytes: Uint8Array): CaptureFormat | undefined {
  const b = asBuffer(bytes);
  if (b.length < 4) return undefined;
  if (b.readUInt32LE(0) === PCAPNG_BLOCK_SHB) return "pcapng";
  const le = b.readUInt32LE(0);
  const be = b.readUInt32BE(0);
  for (const m of [0xa1b2c3d4, 0xa1b23c4d]) if (le === m || be === m) return "pcap";
  return undefined;
}

export type CapturePushResult =
  | { readonly ok: true; readonly packets: CapturedPacket[] }
  | (DecodeFailure & { readonly packets: CapturedPacket[] });

export class CaptureStreamReader {
  #head: Buffer | undefined;
  #pcap: PcapStreamReader | undefined;
  #pcapng: PcapngStreamReader | undefined;
  #failure: DecodeFailure | undefined;

  get format(): CaptureFormat | undefined {
    return this.#pcap !== undefined ? "pcap" : this.#pcapng !== undefined ? "pcapng" : undefined;
  }

  push(chunk: Uint8Array): CapturePushResult {
    if (this.#failure !== undefined) return { ...this.#failure, packets: [] };
    let c = asBuffer(chunk);
    if (this.#pcap === undefined && this.#pcapng === undefined) {
      c = this.#head === undefined ? c : Buffer.concat([this.#head, c]);
      if (c.length < 4) {
        this.#head = Buffer.from(c);
        return { ok: true, packets: [] };
      }
      this.#head = undefined;
      const format = detectCaptureFormat(c);
      if (format === undefined) {
        this.#failure = fail("bad-magic", "pcap", 0);
        return { ...this.#failure, packets: [] };
      }
      if (format === "pcap") this.#pcap = new PcapStreamReader();
      else this.#pcapng = new PcapngStreamReader();
    }
    if (this.#pcap !== undefined) {
      const r = this.#pcap.push(c);
      const linkType = this.#pcap.header?.linkType ?? 1;
      const packets = r.records.map((p) => ({ ...p, linkType, interfaceId: 0, interfaceName: undefined }));
      return r.ok ? { ok: true, packets } : { ...failureOf(r), packets };
    }
    const r = this.#pcapng!.push(c);
    const packets = r.packets.map((p) => ({
      seconds: p.seconds,
      nanos: p.nanos,
      originalLength: p.originalLength,
      data: p.data,
      linkType: p.interface.linkType,
      interfaceId: p.interfaceId,
      interfaceName: p.interface.name,
    }));
    return r.ok ? { ok: true, packets } : { ...failureOf(r), packets };
  }

  end(): DecodeFailure | undefined {
    if (this.#failure !== undefined) return this.#failure;
    if (this.#pcap !== undefined) return this.#pcap.end();
    if (this.#pcapng !== undefined) return this.#pcapng.end();
    return fail("truncated", "pcap", 0);
  }
}

function failureOf(f: { reason: DecodeReason; layer: Layer; at: number }): DecodeFailure {
  return fail(f.reason, f.layer, f.at);
}

/** The error the async helpers throw: a capture stream that is not (or no longer) a readable file. */
export class CaptureFormatError extends Error {
  override readonly name = "CaptureFormatError";
  readonly reason: DecodeReason;
  readonly layer: Layer;
  readonly at: number;

  constructor(failure: { readonly reason: DecodeReason; readonly layer: Layer; readonly at: number }) {
    super(
      `capture stream unreadable: ${failure.reason} in ${failure.layer} at byte ${failure.at}; is it a pcap or pcapng file, whole?`,
    );
    this.reason = failure.reason;
    this.layer = failure.layer;
    this.at = failure.at;
  }
}

/**
 * Packets of a pcap or pcapng byte stream (a file stream, a PCAP-over-IP socket). Throws
 * `CaptureFormatError` after yielding every packet before the damage. Packets are views of the
 * stream's chunks; copy what you keep past the next iteration.
 */
export async function* readCapture(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<CapturedPacket> {
  const r = new CaptureStreamReader();
  for await (const chunk of chunks) {
    const out = r.push(chunk);
    yield* out.packets;
    if (!out.ok) throw new CaptureFormatError(out);
  }
  const tail = r.end();
  if (tail !== undefined) throw new CaptureFormatError(tail);
}
