/**
 * Dedup: the same packet seen twice within the window is caught even when a hop changed its TTL
 * (and with it the IPv4 checksum) or its hop limit; anything else that differs is kept.
 */
import { buildIcmpEchoFrame, buildTcpFrame, buildUdpFrame, LINKTYPE_ETHERNET } from "@ovntap/packet";
import { describe, expect, it } from "vitest";
import { DedupTable } from "./dedup.js";
import { InnerParser } from "./inner.js";

function check(d: DedupTable, frame: Buffer, seed: number, tsMs: number): boolean {
  const inner = new InnerParser();
  inner.parse(frame, 0, frame.length, LINKTYPE_ETHERNET);
  return d.isDuplicate(frame, 0, frame.length, inner, seed, tsMs);
}

const tcp = (ttl: number, payload = "abc") =>
  buildTcpFrame({
    src: "10.0.0.1",
    dst: "10.0.0.2",
    srcPort: 1,
    dstPort: 2,
    seq: 7,
    ack: 0,
    flags: 0x18,
    ttl,
    payload: Buffer.from(payload),
  });

describe("DedupTable", () => {
  it("drops a twin whose TTL and IPv4 checksum differ, within the window", () => {
    const d = new DedupTable({ windowMs: 100, capacity: 1024 });
    expect(check(d, tcp(64), 1, 1000)).toBe(false);
    expect(tcp(64).equals(tcp(63))).toBe(false);
    expect(check(d, tcp(63), 1, 1050)).toBe(true);
  });

  it("keeps frames whose payload differs, of another mirror, or after the window", () => {
    const d = new DedupTable({ windowMs: 100, capacity: 1024 });
    expect(check(d, tcp(64, "abc"), 1, 0)).toBe(false);
    expect(check(d, tcp(64, "abd"), 1, 1)).toBe(false);
    expect(check(d, tcp(64, "abc"), 2, 2)).toBe(false);
    expect(check(d, tcp(64, "abc"), 1, 3)).toBe(true);
    // Entries live between one and two windows: well past two windows the first copy is forgotten.
    expect(check(d, tcp(64, "abc"), 1, 400)).toBe(false);
  });

  it("treats IPv6 hop limits the same way, and UDP and ICMP with their payloads", () => {
    const d = new DedupTable({ windowMs: 100, capacity: 1024 });
    const v6 = (hl: number) =>
      buildUdpFrame({
        src: "2001:db8::1",
        dst: "2001:db8::2",
        srcPort: 5,
        dstPort: 6,
        ttl: hl,
        payload: Buffer.from("x"),
      });
    expect(check(d, v6(64), 1, 0)).toBe(false);
    expect(check(d, v6(60), 1, 1)).toBe(true);
    const ping = (seq: number, ttl: number) =>
      buildIcmpEchoFrame({ src: "10.0.0.1", dst: "10.0.0.2", id: 1, seq, ttl });
    expect(check(d, ping(1, 64), 1, 2)).toBe(false);
    expect(check(d, ping(2, 64), 1, 3)).toBe(false);
    expect(check(d, ping(1, 63), 1, 4)).toBe(true);
  });

  it("fails open when a generation is full, and counts it", () => {
    const d = new DedupTable({ windowMs: 1000, capacity: 8 });
    let dup = 0;
    for (let i = 0; i < 100; i++) if (check(d, tcp(64, `p${i}`), 1, i)) dup++;
    expect(dup).toBe(0);
    expect(d.overflows).toBeGreaterThan(0);
  });
});
