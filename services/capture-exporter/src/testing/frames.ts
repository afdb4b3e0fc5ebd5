/**
 * Test material for the exporter: tunnel frames for a mirror, pcap files of them, the pcap records
 * the exporter must publish for them, and a BatchPublisher that keeps what it is given.
 *
 *     const f = tunnelFrame({ type: "gre", key: 7 }, innerFrames[0]);
 *     await writePcap(path, [{ frame: f, sec: 1, nsec: 2 }]);
 *     expectedRecords([{ inner: innerFrames[0], sec: 1, nsec: 2 }], 65535);   // the batch payload
 */
import type { MsgHdrs } from "@nats-io/transport-node";
import {
  buildArpFrame,
  buildErspan2,
  buildErspan3,
  buildGre,
  buildIcmpEchoFrame,
  buildTcpFrame,
  buildTransportFrame,
  buildUdpFrame,
  encodePcap,
} from "@ovntap/packet";
import { writeFile } from "node:fs/promises";
import type { BatchPublisher } from "../publisher.js";

export const SINK = "198.51.100.2";
export const TUNNEL_SRC = "198.51.100.1";

export type Tunnel =
  { type: "gre"; key?: number } | { type: "erspan2"; session: number } | { type: "erspan3"; session: number };

/** A transport frame from TUNNEL_SRC to `sink` carrying `inner`. */
export function tunnelFrame(t: Tunnel, inner: Buffer, sink = SINK, seq = 0): Buffer {
  const gre =
    t.type === "gre"
      ? buildGre(t.key === undefined ? { inner } : { key: t.key, inner })
      : t.type === "erspan2"
        ? buildErspan2({ sessionId: t.session, index: 1, seq, inner })
        : buildErspan3({ sessionId: t.session, seq, inner });
  return buildTransportFrame({ src: TUNNEL_SRC, dst: sink }, gre);
}

/** A small zoo of mirrored frames: TCP, UDP, ICMP, ARP, IPv6, with distinct bytes. */
export function innerFrames(n: number, offset = 0): Buffer[] {
  const out: Buffer[] = [];
  for (let i = offset; i < offset + n; i++) {
    const a = `10.16.0.${(i % 200) + 1}`;
    const b = `10.16.1.${(i % 200) + 1}`;
    switch (i % 5) {
      case 0:
        out.push(
          buildTcpFrame({
            src: a,
            dst: b,
            srcPort: 40000 + i,
            dstPort: 80,
            seq: i,
            ack: 0,
            flags: 0x18,
            payload: Buffer.from(`tcp ${i}`),
          }),
        );
        break;
      case 1:
        out.push(
          buildUdpFrame({ src: a, dst: b, srcPort: 5000 + i, dstPort: 53, payload: Buffer.from(`udp ${i}`) }),
        );
        break;
      case 2:
        out.push(buildIcmpEchoFrame({ src: a, dst: b, id: 7, seq: i }));
        break;
      case 3:
        out.push(buildArpFrame({ senderMac: "02:00:00:00:00:01", senderIp: a, targetIp: b, pad: true }));
        break;
      default:
        out.push(
          buildUdpFrame({
            src: "2001:db8::1",
            dst: "2001:db8::2",
            srcPort: 1000 + i,
            dstPort: 2000,
            payload: Buffer.from(`v6 ${i}`),
          }),
        );
    }
  }
  return out;
}

export interface TimedFrame {
  readonly frame: Buffer;
  readonly sec: number;
  readonly nsec: number;
}

/** A nanosecond little-endian pcap of `frames` (Ethernet). */
export async function writePcap(path: string, frames: readonly TimedFrame[]): Promise<void> {
  await writeFile(path, encodePcap(frames.map((f) => ({ seconds: f.sec, nanos: f.nsec, data: f.frame }))));
}

/** The pcap records a batch carries for `frames`: LE ns header, frame cut to `snaplen`, orig_len the full length. */
export function expectedRecords(
  frames: readonly { inner: Buffer; sec: number; nsec: number }[],
  snaplen = 65535,
): Buffer {
  const parts: Buffer[] = [];
  for (const f of frames) {
    const incl = Math.min(f.inner.length, snaplen);
    const h = Buffer.alloc(16);
    h.writeUInt32LE(f.sec, 0);
    h.writeUInt32LE(f.nsec, 4);
    h.writeUInt32LE(incl, 8);
    h.writeUInt32LE(f.inner.length, 12);
    parts.push(h, f.inner.subarray(0, incl));
  }
  return Buffer.concat(parts);
}

export interface Published {
  readonly subject: string;
  readonly payload: Buffer;
  readonly headers: Record<string, string>;
}

/** A BatchPublisher that keeps copies of what it is given; `open = false` makes it refuse (a backed-up connection). */
export class RecordingPublisher implements BatchPublisher {
  readonly published: Published[] = [];
  open = true;
  inFlightBytes = 0;
  maxPayload: number | undefined = undefined;
  canPublish(): boolean {
    return this.open;
  }
  publish(subject: string, payload: Uint8Array, headers: MsgHdrs): void {
    const h: Record<string, string> = {};
    for (const k of headers.keys()) h[k] = headers.get(k);
    this.published.push({ subject, payload: Buffer.from(payload), headers: h });
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
}
