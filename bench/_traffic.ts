/**
 * The mirrored traffic the capture benchmarks replay: deterministic, lab-sized frames (ping,
 * TCP handshakes, requests and full segments, UDP, ARP) over many flows.
 */
import {
  TCP_ACK,
  TCP_PSH,
  TCP_SYN,
  buildArpFrame,
  buildIcmpEchoFrame,
  buildTcpFrame,
  buildUdpFrame,
} from "@ovntap/packet";

/** Deterministic pseudo-random numbers (mulberry32), so every run writes the same file. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A lab-sized mirrored frame of flow `f`. */
export function innerFrame(f: number, r: () => number): Buffer {
  const a = `10.16.${(f >>> 8) & 0xff}.${(f & 0x7f) + 1}`;
  const b = `10.16.${((f >>> 8) + 100) & 0xff}.${((f * 7) & 0x7f) + 1}`;
  const sport = 32768 + (f % 28000);
  const x = r();
  if (x < 0.35) return buildIcmpEchoFrame({ src: a, dst: b, id: f & 0xffff, seq: (r() * 65535) | 0 }); // ping: 98 octets
  if (x < 0.7) {
    const y = r();
    const payload =
      y < 0.15
        ? new Uint8Array(0) // SYN / SYN-ACK
        : y < 0.5
          ? new Uint8Array(0) // ACK
          : y < 0.8
            ? Buffer.alloc(1 + ((r() * 200) | 0), 0x61) // small request/response
            : Buffer.alloc(1000 + ((r() * 448) | 0), 0x62); // full-size segment
    const flags = y < 0.15 ? TCP_SYN : payload.length > 0 ? TCP_ACK | TCP_PSH : TCP_ACK;
    return buildTcpFrame({
      src: a,
      dst: b,
      srcPort: sport,
      dstPort: 8080,
      seq: (r() * 2 ** 32) >>> 0,
      ack: 1,
      flags,
      payload,
    });
  }
  if (x < 0.9) {
    return buildUdpFrame({
      src: a,
      dst: b,
      srcPort: sport,
      dstPort: 53,
      payload: Buffer.alloc(20 + ((r() * 280) | 0), 0x63),
    });
  }
  return buildArpFrame({ senderMac: "02:00:00:00:00:01", senderIp: a, targetIp: b, pad: false });
}
