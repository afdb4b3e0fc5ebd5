/**
 * Capture batches for the console's tests: payloads of pcap records around real frames, and
 * ring entries.
 *
 *     const p = batchPayload([{ seconds: 1, nanos: 5, data: icmpFrame(1) }]);
 */
import { buildIcmpEchoFrame, encodePcapRecord } from "@ovntap/packet";
import type { PcapRecordInput } from "@ovntap/packet";
import type { RingBatch } from "../ring.js";

/** An ICMP echo request from 10.16.0.11 to 10.16.0.12 with sequence number `seq`. */
export function icmpFrame(seq: number, reply = false): Buffer {
  return buildIcmpEchoFrame({
    src: reply ? "10.16.0.12" : "10.16.0.11",
    dst: reply ? "10.16.0.11" : "10.16.0.12",
    srcMac: reply ? "00:00:00:00:00:02" : "00:00:00:00:00:01",
    dstMac: reply ? "00:00:00:00:00:01" : "00:00:00:00:00:02",
    id: 0x4242,
    seq,
    reply,
    payload: Buffer.from("ovntap console test"),
  });
}

/** Records as a batch carries them: nanosecond timestamps, little-endian, no file header. */
export function batchPayload(records: readonly PcapRecordInput[]): Buffer {
  return Buffer.concat(records.map((r) => encodePcapRecord(r, "ns")));
}

export function ringBatch(
  receivedAtMs: number,
  records: readonly PcapRecordInput[],
  extra: Partial<Omit<RingBatch, "payload" | "count" | "receivedAtMs">> = {},
): RingBatch {
  return {
    receivedAtMs,
    stream: "node-1 gre 7",
    linkType: 1,
    snaplen: 65535,
    ...extra,
    count: records.length,
    payload: batchPayload(records),
  };
}

/** A batch of `size` payload bytes (one record), for the ring's byte accounting. */
export function sizedBatch(receivedAtMs: number, size: number, stream = "node-1 gre 7"): RingBatch {
  const data = Buffer.alloc(Math.max(0, size - 16), 0xab);
  return {
    receivedAtMs,
    stream,
    linkType: 1,
    snaplen: 65535,
    count: 1,
    payload: batchPayload([{ seconds: 1, nanos: 0, data }]),
  };
}
