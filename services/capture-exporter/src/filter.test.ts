/**
 * Mirror filters (contracts MirrorFilter) on frames built with @ovntap/packet: every list given
 * must match; protocols, CIDRs (either address), ports (either port, or a range).
 */
import { MirrorFilter } from "@ovntap/contracts";
import {
  buildArpFrame,
  buildIcmpEchoFrame,
  buildIpv4,
  buildTcpFrame,
  buildUdpFrame,
  buildEthernet,
  LINKTYPE_ETHERNET,
  LINKTYPE_RAW,
} from "@ovntap/packet";
import { describe, expect, it } from "vitest";
import { compileFilter } from "./filter.js";
import { InnerParser, L3_ARP, L3_IPV4, L3_IPV6, NO_PORT } from "./inner.js";

const tcp = (src: string, dst: string, sp: number, dp: number, vlans?: { vid: number }[]) =>
  buildTcpFrame({ src, dst, srcPort: sp, dstPort: dp, seq: 1, ack: 0, flags: 2, vlans });
const udp = (src: string, dst: string, sp: number, dp: number) =>
  buildUdpFrame({ src, dst, srcPort: sp, dstPort: dp });
const icmp = (src: string, dst: string) => buildIcmpEchoFrame({ src, dst, id: 1, seq: 1 });
const arp = (senderIp: string, targetIp: string) =>
  buildArpFrame({ senderMac: "02:00:00:00:00:01", senderIp, targetIp });

function keeps(filter: unknown, frame: Buffer, linkType = LINKTYPE_ETHERNET): boolean {
  const f = compileFilter(MirrorFilter.parse(filter));
  const inner = new InnerParser();
  inner.parse(frame, 0, frame.length, linkType);
  return f.matches(inner, frame);
}

describe("InnerParser", () => {
  it("reads addresses and ports of IPv4, IPv6 (through extension headers), VLAN-tagged and raw-IP frames", () => {
    const p = new InnerParser();
    const f = tcp("10.0.0.1", "10.0.0.2", 1234, 80, [{ vid: 5 }, { vid: 6 }]);
    p.parse(f, 0, f.length, LINKTYPE_ETHERNET);
    expect([p.l3, p.protocol, p.src4, p.dst4, p.srcPort, p.dstPort]).toEqual([
      L3_IPV4,
      6,
      0x0a000001,
      0x0a000002,
      1234,
      80,
    ]);
    const raw = udp("10.0.0.3", "10.0.0.4", 53, 5353).subarray(14);
    p.parse(raw, 0, raw.length, LINKTYPE_RAW);
    expect([p.l3, p.protocol, p.srcPort, p.dstPort]).toEqual([L3_IPV4, 17, 53, 5353]);
    const v6 = udp("2001:db8::1", "2001:db8::2", 1, 2);
    p.parse(v6, 0, v6.length, LINKTYPE_ETHERNET);
    expect([p.l3, p.protocol, p.srcPort]).toEqual([L3_IPV6, 17, 1]);
    const a = arp("10.0.0.5", "10.0.0.6");
    p.parse(a, 0, a.length, LINKTYPE_ETHERNET);
    expect([p.l3, p.src4, p.dst4]).toEqual([L3_ARP, 0x0a000005, 0x0a000006]);
  });

  it("gives no ports for a later fragment and nothing for a frame cut inside the IP header", () => {
    const frag = buildEthernet({
      etherType: 0x0800,
      payload: buildIpv4({
        src: "10.0.0.1",
        dst: "10.0.0.2",
        protocol: 6,
        fragmentOffset: 8,
        payload: Buffer.alloc(16, 1),
      }),
    });
    const p = new InnerParser();
    p.parse(frag, 0, frag.length, LINKTYPE_ETHERNET);
    expect([p.l3, p.laterFragment, p.srcPort]).toEqual([L3_IPV4, true, NO_PORT]);
    const cut = tcp("10.0.0.1", "10.0.0.2", 1, 2);
    p.parse(cut, 0, 14 + 12, LINKTYPE_ETHERNET);
    expect(p.l3).toBe(0);
  });
});

describe("compileFilter", () => {
  it("keeps listed protocols, arp included", () => {
    const f = { protocols: ["tcp", "arp"] };
    expect(keeps(f, tcp("10.0.0.1", "10.0.0.2", 1, 2))).toBe(true);
    expect(keeps(f, arp("10.0.0.1", "10.0.0.2"))).toBe(true);
    expect(keeps(f, udp("10.0.0.1", "10.0.0.2", 1, 2))).toBe(false);
    expect(keeps(f, icmp("10.0.0.1", "10.0.0.2"))).toBe(false);
    expect(keeps({ protocols: ["icmpv6"] }, icmp("2001:db8::1", "2001:db8::2"))).toBe(true);
  });

  it("keeps frames with either address in a CIDR, IPv4 and IPv6", () => {
    const f = { cidrs: ["10.16.0.0/16", "2001:db8:1::/48"] };
    expect(keeps(f, tcp("10.16.3.4", "192.168.0.1", 1, 2))).toBe(true);
    expect(keeps(f, tcp("192.168.0.1", "10.16.255.255", 1, 2))).toBe(true);
    expect(keeps(f, tcp("10.17.0.1", "192.168.0.1", 1, 2))).toBe(false);
    expect(keeps(f, udp("2001:db8:1:ffff::1", "2001:db8:2::1", 1, 2))).toBe(true);
    expect(keeps(f, udp("2001:db8:2::1", "2001:db8:3::1", 1, 2))).toBe(false);
    expect(keeps(f, arp("10.16.0.9", "10.99.0.1"))).toBe(true);
    expect(keeps({ cidrs: ["10.16.0.8/29"] }, tcp("10.16.0.15", "1.1.1.1", 1, 2))).toBe(true);
    expect(keeps({ cidrs: ["10.16.0.8/29"] }, tcp("10.16.0.16", "1.1.1.1", 1, 2))).toBe(false);
    expect(keeps({ cidrs: ["0.0.0.0/0"] }, tcp("1.2.3.4", "5.6.7.8", 1, 2))).toBe(true);
    expect(keeps({ cidrs: ["2001:db8::/33"] }, udp("2001:db8:7fff::1", "::1", 1, 2))).toBe(true);
    expect(keeps({ cidrs: ["2001:db8::/33"] }, udp("2001:db8:8000::1", "::1", 1, 2))).toBe(false);
  });

  it("keeps frames with either port listed or in a range, and never a frame without ports", () => {
    const f = { ports: [443, { from: 8000, to: 8080 }] };
    expect(keeps(f, tcp("10.0.0.1", "10.0.0.2", 50000, 443))).toBe(true);
    expect(keeps(f, udp("10.0.0.1", "10.0.0.2", 8080, 1))).toBe(true);
    expect(keeps(f, tcp("10.0.0.1", "10.0.0.2", 7999, 8081))).toBe(false);
    expect(keeps(f, icmp("10.0.0.1", "10.0.0.2"))).toBe(false);
  });

  it("needs every list given to match", () => {
    const f = { protocols: ["udp"], cidrs: ["10.0.0.0/8"], ports: [53] };
    expect(keeps(f, udp("10.1.1.1", "8.8.8.8", 40000, 53))).toBe(true);
    expect(keeps(f, tcp("10.1.1.1", "8.8.8.8", 40000, 53))).toBe(false);
    expect(keeps(f, udp("11.1.1.1", "8.8.8.8", 40000, 53))).toBe(false);
    expect(keeps(f, udp("10.1.1.1", "8.8.8.8", 40000, 54))).toBe(false);
  });
});
