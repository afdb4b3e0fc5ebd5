/**
 * A pcap file from ring batches: one file header (nanosecond magic, little-endian, as the batch
 * records are written) followed by the batches' records, which are pcap records already.
 *
 *     const file = pcapFromBatches(ring.since("shop/web", now - 30_000));
 *     for (const chunk of file.chunks) res.write(chunk);
 *
 * The batches of one stream (node, encap, key) are in time order; several streams (several
 * nodes, or the two tunnels of an emulated `both` mirror) are merged by timestamp so the file reads
 * in time order as tcpdump would have written it. A pcap file has one link type:
 * when batches disagree (they do not today: every frame is decapsulated Ethernet) the newest
 * batch's link type wins and the others' records are left out and counted in `omitted`.
 */
import { encodePcapHeader, LINKTYPE_ETHERNET, PCAP_DEFAULT_SNAPLEN } from "@ovntap/packet";
import { recordSpans } from "./records.js";
import type { RecordSpan } from "./records.js";
import type { RingBatch } from "./ring.js";

export const PCAP_CONTENT_TYPE = "application/vnd.tcpdump.pcap";

export interface PcapDownload {
  /** The file: its header, then views of the batches' payloads (no copies). */
  chunks: Buffer[];
  /** Total length of `chunks`. */
  length: number;
  packets: number;
  linkType: number;
  snaplen: number;
  /** Records left out because their batch had another link type. */
  omitted: number;
}

interface Cursor {
  batch: RingBatch;
  spans: Generator<RecordSpan>;
  head: RecordSpan | undefined;
}

const before = (a: RecordSpan, b: RecordSpan) =>
  a.seconds < b.seconds || (a.seconds === b.seconds && a.nanos < b.nanos);

export function pcapFromBatches(batches: readonly RingBatch[]): PcapDownload {
  const newest = batches[batches.length - 1];
  const linkType = newest?.linkType ?? LINKTYPE_ETHERNET;
  let omitted = 0;
  const kept: RingBatch[] = [];
  for (const b of batches) {
    if (b.linkType === linkType) kept.push(b);
    else omitted += b.count;
  }
  const snaplen = kept.length === 0 ? PCAP_DEFAULT_SNAPLEN : Math.max(...kept.map((b) => b.snaplen));
  const header = encodePcapHeader({ precision: "ns", snaplen, linkType });
  const chunks: Buffer[] = [header];
  let packets = 0;

  const byStream = new Map<string, RingBatch[]>();
  for (const b of kept) {
    const list = byStream.get(b.stream);
    if (list === undefined) byStream.set(b.stream, [b]);
    else list.push(b);
  }
  if (byStream.size <= 1) {
    // One stream: its batches are in time order already; hand over whole payloads.
    for (const b of kept) {
      chunks.push(b.payload);
      packets += b.count;
    }
  } else {
    // k-way merge over the streams' records; k is small, so a scan picks the head.
    const queues = [...byStream.values()].map((list) => ({ list, next: 0 }));
    const cursors: (Cursor | undefined)[] = queues.map(() => undefined);
    const advance = (i: number): Cursor | undefined => {
      const q = queues[i];
      let c = cursors[i];
      for (;;) {
        if (c !== undefined) {
          const r = c.spans.next();
          if (!r.done) {
            c.head = r.value;
            return c;
          }
        }
        const batch = q?.list[q.next];
        if (q === undefined || batch === undefined) return (cursors[i] = undefined);
        q.next++;
        c = cursors[i] = { batch, spans: recordSpans(batch.payload), head: undefined };
      }
    };
    for (let i = 0; i < queues.length; i++) advance(i);
    // Adjacent records of one payload are written as one chunk.
    let run: { payload: Buffer; start: number; end: number } | undefined;
    for (;;) {
      let pick = -1;
      for (let i = 0; i < cursors.length; i++) {
        const c = cursors[i];
        const best = pick < 0 ? undefined : cursors[pick];
        if (c?.head !== undefined && (best?.head === undefined || before(c.head, best.head))) pick = i;
      }
      const c = pick < 0 ? undefined : cursors[pick];
      if (c?.head === undefined) break;
      const { start, end } = c.head;
      if (run !== undefined && run.payload === c.batch.payload && run.end === start) run.end = end;
      else {
        if (run !== undefined) chunks.push(run.payload.subarray(run.start, run.end));
        run = { payload: c.batch.payload, start, end };
      }
      packets++;
      advance(pick);
    }
    if (run !== undefined) chunks.push(run.payload.subarray(run.start, run.end));
  }
  const length = chunks.reduce((n, c) => n + c.length, 0);
  return { chunks, length, packets, linkType, snaplen, omitted };
}

/** `<ns>-<name>-<UTC time>.pcap`, e.g. `shop-web-20250131T120000Z.pcap` (names are DNS labels: safe as is). */
export function pcapFileName(namespace: string, name: string, at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/[-:]/g, "");
  return `${namespace}-${name}-${stamp}.pcap`;
}
