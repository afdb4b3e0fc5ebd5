/**
 * Comparing mirrored packets with what tcpdump saw at the pod, field by field through tshark
 * (the independent decoder), checksums aside: the userspace datapath leaves some unfilled.
 */
import { readFileSync } from "node:fs";
import { run } from "@ovntap/lab";
import { type CapturedPacket, readCapture } from "@ovntap/packet";

export const FIELDS = [
  "eth.src",
  "eth.dst",
  "eth.type",
  "arp.opcode",
  "arp.src.proto_ipv4",
  "arp.dst.proto_ipv4",
  "ip.src",
  "ip.dst",
  "ip.id",
  "ip.proto",
  "ip.len",
  "tcp.srcport",
  "tcp.dstport",
  "tcp.seq_raw",
  "tcp.ack_raw",
  "tcp.flags",
  "udp.srcport",
  "udp.dstport",
  "icmp.type",
  "icmp.seq",
  "frame.len",
] as const;

/** One `|`-separated row of FIELDS per packet, as tshark decodes the file. */
export async function tsharkRows(file: string): Promise<string[]> {
  const r = await run("tshark", [
    ...["-r", file, "-T", "fields", "-E", "separator=|"],
    ...FIELDS.flatMap((f) => ["-e", f]),
  ]);
  return r.stdout.split("\n").filter((l) => l.trim() !== "");
}

/** A field of a tshark row; the first value when tshark lists several (an ICMP error quotes its packet). */
export function field(row: string, name: (typeof FIELDS)[number]): string {
  return row.split("|")[FIELDS.indexOf(name)]?.split(",")[0] ?? "";
}

/** The rows of `got` that `seen` does not hold, each row of `seen` taken once. */
export function notSeen(got: readonly string[], seen: readonly string[]): string[] {
  const pool = new Map<string, number>();
  for (const row of seen) pool.set(row, (pool.get(row) ?? 0) + 1);
  return got.filter((row) => {
    const n = pool.get(row) ?? 0;
    if (n === 0) return true;
    pool.set(row, n - 1);
    return false;
  });
}

/** Every packet of a pcap or pcapng file (copied out of the reader's buffers). */
export async function packetsOf(file: string): Promise<CapturedPacket[]> {
  const out: CapturedPacket[] = [];
  for await (const p of readCapture([readFileSync(file)])) out.push({ ...p, data: Buffer.from(p.data) });
  return out;
}
