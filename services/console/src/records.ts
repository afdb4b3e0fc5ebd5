/**
 * The records of a capture batch payload (contracts/capture.ts): 16-byte little-endian pcap record
 * headers (ts_sec, ts_nsec, incl_len, orig_len), each followed by its frame, no file header.
 *
 *     const s = scanRecords(payload);      // per batch, on arrival: what the rates count
 *     s.count; s.wireBytes;
 *     payload.subarray(0, s.validBytes);   // the whole records, a damaged tail left out
 *     for (const r of recordSpans(payload)) payload.subarray(r.start, r.end);  // header + frame
 */
import { PCAP_RECORD_HEADER_LENGTH } from "@ovntap/packet";

export interface RecordScan {
  /** Whole records from the start of the payload. */
  count: number;
  /** Sum of orig_len: the frames' length on the wire. */
  wireBytes: number;
  /** Bytes taken by the whole records; less than the payload when it is damaged. */
  validBytes: number;
  /** Why the scan stopped before the end of the payload. */
  error: string | undefined;
}

/** One record: where it starts (its header) and ends in the payload, and its timestamp. */
export interface RecordSpan {
  start: number;
  end: number;
  seconds: number;
  nanos: number;
}

function asBuffer(payload: Uint8Array): Buffer {
  return Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
}

/** The next record at `at`, or why there is none. */
function recordAt(b: Buffer, at: number, index: number): RecordSpan | string {
  if (b.length - at < PCAP_RECORD_HEADER_LENGTH) return `${b.length - at} stray bytes after record ${index}`;
  const nanos = b.readUInt32LE(at + 4);
  if (nanos > 999_999_999) return `record ${index + 1} has ts_nsec ${nanos} (over 999999999)`;
  const incl = b.readUInt32LE(at + 8);
  const end = at + PCAP_RECORD_HEADER_LENGTH + incl;
  if (end > b.length) {
    return `record ${index + 1} says ${incl} bytes but ${b.length - at - PCAP_RECORD_HEADER_LENGTH} remain`;
  }
  return { start: at, end, seconds: b.readUInt32LE(at), nanos };
}

export function scanRecords(payload: Uint8Array): RecordScan {
  const b = asBuffer(payload);
  const out: RecordScan = { count: 0, wireBytes: 0, validBytes: 0, error: undefined };
  let at = 0;
  while (at < b.length) {
    const r = recordAt(b, at, out.count);
    if (typeof r === "string") {
      out.error = r;
      break;
    }
    out.wireBytes += b.readUInt32LE(at + 12);
    out.count++;
    at = r.end;
  }
  out.validBytes = at;
  return out;
}

/** The records of a payload in order; stops quietly at a damaged tail (scanRecords says why). */
export function* recordSpans(payload: Uint8Array): Generator<RecordSpan> {
  const b = asBuffer(payload);
  let at = 0;
  for (let i = 0; at < b.length; i++) {
    const r = recordAt(b, at, i);
    if (typeof r === "string") return;
    yield r;
    at = r.end;
  }
}
