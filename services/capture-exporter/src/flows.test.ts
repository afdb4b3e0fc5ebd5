/**
 * Flow tables: per-5-tuple packets, bytes and first/last timestamps, directional, growing past
 * their first size, bounded, and drained into contract-valid FlowRecords.
 */
import { FlowRecord } from "@ovntap/contracts";
import {
  buildArpFrame,
  buildIcmpEchoFrame,
  buildTcpFrame,
  buildUdpFrame,
  LINKTYPE_ETHERNET,
} from "@ovntap/packet";
import { describe, expect, it } from "vitest";
import { FlowTable, nsText } from "./flows.js";
import { InnerParser } from "./inner.js";

function add(t: FlowTable, frame: Buffer, sec: number, nsec = 0): void {
  const p = new InnerParser();
  p.parse(frame, 0, frame.length, LINKTYPE_ETHERNET);
  t.add(p, frame, frame.length, sec, nsec);
}

describe("FlowTable", () => {
  it("counts packets and bytes per directional 5-tuple, ports 0 without ports, nothing for ARP", () => {
    const t = new FlowTable(1000);
    const ab = buildTcpFrame({
      src: "10.0.0.1",
      dst: "10.0.0.2",
      srcPort: 40000,
      dstPort: 80,
      seq: 1,
      ack: 0,
      flags: 2,
    });
    const ba = buildTcpFrame({
      src: "10.0.0.2",
      dst: "10.0.0.1",
      srcPort: 80,
      dstPort: 40000,
      seq: 1,
      ack: 2,
      flags: 0x12,
    });
    add(t, ab, 100, 5);
    add(t, ab, 101, 6);
    add(t, ba, 102, 7);
    add(t, buildIcmpEchoFrame({ src: "10.0.0.1", dst: "10.0.0.2", id: 1, seq: 1 }), 103);
    add(t, buildUdpFrame({ src: "2001:db8::1", dst: "2001:db8::2", srcPort: 53, dstPort: 5353 }), 104);
    add(t, buildUdpFrame({ src: "2001:db8::1", dst: "2001:db8::2", srcPort: 53, dstPort: 5353 }), 105);
    add(
      t,
      buildArpFrame({ senderMac: "02:00:00:00:00:01", senderIp: "10.0.0.1", targetIp: "10.0.0.2" }),
      106,
    );
    const records = t.drain();
    for (const r of records) FlowRecord.parse(r);
    const byKey = new Map(
      records.map((r) => [`${r.protocol} ${r.src}:${r.srcPort} > ${r.dst}:${r.dstPort}`, r]),
    );
    expect([...byKey.keys()].sort()).toEqual(
      [
        "1 10.0.0.1:0 > 10.0.0.2:0",
        "17 2001:db8::1:53 > 2001:db8::2:5353",
        "6 10.0.0.1:40000 > 10.0.0.2:80",
        "6 10.0.0.2:80 > 10.0.0.1:40000",
      ].sort(),
    );
    const f = byKey.get("6 10.0.0.1:40000 > 10.0.0.2:80")!;
    expect([f.packets, f.bytes, f.firstNs, f.lastNs]).toEqual([
      2,
      2 * ab.length,
      "100000000005",
      "101000000006",
    ]);
    expect(byKey.get("17 2001:db8::1:53 > 2001:db8::2:5353")!.packets).toBe(2);
    expect(t.drain()).toEqual([]);
  });

  it("grows past its first size and stops at maxFlows, counting what it could not track", () => {
    const t = new FlowTable(3000);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5000; i++) {
        add(
          t,
          buildUdpFrame({
            src: `10.1.${i >> 8}.${i & 0xff}`,
            dst: "10.2.0.1",
            srcPort: 1000 + (i % 7),
            dstPort: 53,
          }),
          1,
        );
      }
    }
    const records = t.drain();
    expect(records.length).toBe(3000);
    expect(records.every((r) => r.packets === 2)).toBe(true);
    expect(t.overflowPackets).toBe(4000);
  });

  it("writes nanosecond timestamps exactly", () => {
    expect(nsText(1_700_000_000, 5)).toBe("1700000000000000005");
    expect(nsText(0, 42)).toBe("42");
  });
});
