/**
 * Known-answer tests: byte strings from independent sources (RFC examples, scapy's ERSPAN tests,
 * the Linux erspan.h bit masks) decoded field by field, and the builders producing those bytes.
 */
import { describe, expect, it } from "vitest";
import {
  buildArpFrame,
  buildErspan2,
  buildErspan3,
  buildEthernet,
  buildGre,
  buildIcmpEchoFrame,
  buildIpv4,
  buildIpv6,
  buildTcpFrame,
  buildTransportFrame,
  buildUdpFrame,
  decapsulate,
  decodeErspan2,
  decodeErspan3,
  decodeEthernet,
  decodeFrame,
  decodeGre,
  decodeIpv4,
  decodeIpv6,
  flowOf,
  formatDecapsulatedSummary,
  formatIp,
  formatSummary,
  greChecksumOk,
  internetChecksum,
  ipv4ChecksumOk,
  LINKTYPE_RAW,
  parseIp,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_SYN,
} from "./index.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

describe("Ethernet and VLAN tags", () => {
  it("reads QinQ (802.1ad outer, 802.1Q inner) tags outermost first", () => {
    const f = hex("ffffffffffff 020000000001 88a8 a064 8100 2123 0800 4500");
    const e = decodeEthernet(f);
    expect(e.ok).toBe(true);
    if (!e.ok) return;
    expect(e.vlans).toEqual([
      { tpid: 0x88a8, pcp: 5, dei: 0, vid: 100 },
      { tpid: 0x8100, pcp: 1, dei: 0, vid: 0x123 },
    ]);
    expect(e.etherType).toBe(0x0800);
    expect(e.headerLength).toBe(22);
    expect(e.payload).toEqual(hex("4500"));
    // Views, not copies: the payload shares the frame's memory.
    expect(e.payload.buffer).toBe(f.buffer);
  });

  it("accepts a plain Uint8Array and still returns Buffer views", () => {
    const f = new Uint8Array(hex("ffffffffffff 020000000001 9100 0005 86dd"));
    const e = decodeEthernet(f);
    expect(e.ok && Buffer.isBuffer(e.src) && e.vlans[0]?.tpid === 0x9100 && e.etherType === 0x86dd).toBe(
      true,
    );
  });
});

describe("IPv4", () => {
  // The textbook header (Wikipedia "IPv4 header checksum"): 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7.
  const header = hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7");

  it("builds the textbook header with its checksum", () => {
    const b = buildIpv4({
      src: "192.168.0.1",
      dst: "192.168.0.199",
      protocol: 17,
      payload: Buffer.alloc(0x73 - 20),
      dontFragment: true,
      ttl: 64,
    });
    expect(b.subarray(0, 20)).toEqual(header);
  });

  it("decodes it, and its checksum verifies", () => {
    const p = Buffer.concat([header, Buffer.alloc(0x73 - 20), Buffer.alloc(6)]); // 6 octets of Ethernet padding
    const ip = decodeIpv4(p);
    expect(ip.ok).toBe(true);
    if (!ip.ok) return;
    expect([ip.headerLength, ip.totalLength, ip.ttl, ip.protocol, ip.dontFragment, ip.fragment]).toEqual([
      20,
      0x73,
      64,
      17,
      true,
      undefined,
    ]);
    expect(formatIp(ip.src)).toBe("192.168.0.1");
    expect(formatIp(ip.dst)).toBe("192.168.0.199");
    expect(ip.payload.length).toBe(0x73 - 20); // padding excluded
    expect(ip.truncated).toBe(false);
    expect(ipv4ChecksumOk(ip, p)).toBe(true);
    expect(internetChecksum(header)).toBe(0);
  });

  it("keeps options and flags fragments", () => {
    const b = buildIpv4({
      src: "10.0.0.1",
      dst: "10.0.0.2",
      protocol: 6,
      payload: Buffer.alloc(8),
      options: Uint8Array.of(0x94, 4, 0, 0),
      moreFragments: true,
      id: 77,
    });
    const ip = decodeIpv4(b);
    expect(ip.ok && ip.headerLength).toBe(24);
    expect(ip.ok && ip.options).toEqual(hex("94040000"));
    expect(ip.ok && ip.fragment).toEqual({ offset: 0, more: true, id: 77 });
    const later = decodeIpv4(
      buildIpv4({
        src: "10.0.0.1",
        dst: "10.0.0.2",
        protocol: 6,
        payload: Buffer.alloc(8),
        fragmentOffset: 1480,
      }),
    );
    expect(later.ok && later.fragment).toEqual({ offset: 1480, more: false, id: 0 });
  });

  it("reports a snaplen cut as truncated, not as an error", () => {
    const b = buildIpv4({ src: "10.0.0.1", dst: "10.0.0.2", protocol: 17, payload: Buffer.alloc(100) });
    const ip = decodeIpv4(b.subarray(0, 60));
    expect(ip.ok && ip.truncated && ip.payload.length === 40).toBe(true);
  });
});

describe("IPv6 extension headers", () => {
  it("walks Hop-by-Hop, Routing, Fragment (first), Destination Options and AH to TCP", () => {
    const p = buildIpv6({
      src: "2001:db8::1",
      dst: "2001:db8::2",
      protocol: 6,
      payload: Buffer.alloc(20),
      extensionHeaders: [
        { type: 0, body: new Uint8Array(6) },
        { type: 43, body: new Uint8Array(14) },
        { type: 44, body: Uint8Array.of(0, 1, 0xde, 0xad, 0xbe, 0xef) },
        { type: 60, body: new Uint8Array(6) },
        { type: 51, body: new Uint8Array(18) },
      ],
    });
    const ip = decodeIpv6(p);
    expect(ip.ok).toBe(true);
    if (!ip.ok) return;
    expect(ip.protocol).toBe(6);
    expect(ip.extensionHeaders).toBe(5);
    expect(ip.headerLength).toBe(40 + 8 + 16 + 8 + 8 + 20);
    expect(ip.fragment).toEqual({ offset: 0, more: true, id: 0xdeadbeef });
    expect(ip.payload.length).toBe(20);
  });

  it("stops at a non-first fragment, whose data is not a header", () => {
    const p = buildIpv6({
      src: "::1",
      dst: "::2",
      protocol: 17,
      payload: Buffer.alloc(8),
      extensionHeaders: [{ type: 44, body: Uint8Array.of(0x05, 0xc8, 0, 0, 0, 1) }],
    });
    const ip = decodeIpv6(p);
    expect(ip.ok && ip.fragment).toEqual({ offset: 1480, more: false, id: 1 });
    expect(ip.ok && ip.protocol).toBe(17);
    const f = decodeFrame(p, LINKTYPE_RAW);
    expect(f.ok && f.l4).toBeUndefined();
  });

  it("ends the walk at ESP and No Next Header", () => {
    expect(
      decodeIpv6(buildIpv6({ src: "::1", dst: "::2", protocol: 50, payload: Buffer.alloc(16) })).ok,
    ).toBe(true);
    const none = decodeIpv6(
      buildIpv6({
        src: "::1",
        dst: "::2",
        protocol: 59,
        payload: Buffer.alloc(0),
        extensionHeaders: [{ type: 60 }],
      }),
    );
    expect(none.ok && none.protocol).toBe(59);
  });

  it("reads traffic class, flow label and hop limit", () => {
    const ip = decodeIpv6(
      buildIpv6({
        src: "fe80::1",
        dst: "ff02::1",
        protocol: 58,
        payload: Buffer.alloc(8),
        trafficClass: 0xb8,
        flowLabel: 0xabcde,
        hopLimit: 255,
      }),
    );
    expect(ip.ok && [ip.tos, ip.flowLabel, ip.ttl]).toEqual([0xb8, 0xabcde, 255]);
  });
});

describe("GRE (RFC 2784 / RFC 2890)", () => {
  it("reads C, K and S fields in their order", () => {
    const g = decodeGre(hex("b000 6558 abcd 0000 0000 0063 0000 0007 ff"));
    expect(g.ok).toBe(true);
    if (!g.ok) return;
    expect([g.checksum, g.key, g.seq, g.protocol, g.headerLength]).toEqual([0xabcd, 99, 7, 0x6558, 16]);
    expect(g.payload).toEqual(hex("ff"));
  });

  it("ignores reserved bits 6-12 (RFC 2784 §2.3: MUST be ignored on receipt)", () => {
    const g = decodeGre(hex("23f8 6558 0000 0063"));
    expect(g.ok && g.key).toBe(99);
  });

  it("builds a checksum that verifies over header and payload", () => {
    const inner = buildUdpFrame({
      src: "10.0.0.1",
      dst: "10.0.0.2",
      srcPort: 1,
      dstPort: 2,
      payload: Buffer.from("odd"),
    });
    const b = buildGre({ key: 1, seq: 2, csum: true, inner });
    const g = decodeGre(b);
    expect(g.ok && greChecksumOk(g, b)).toBe(true);
    b[b.length - 1]! ^= 0xff;
    expect(g.ok && greChecksumOk(g, b)).toBe(false);
  });
});

describe("ERSPAN", () => {
  // scapy test/contrib/erspan.uts "Build ERSPAN II": GRE()/ERSPAN_II()/Ether(src="11:11:11:11:11:11", dst="ff:ff:ff:ff:ff:ff").
  const scapyErspan2 = hex("1000 88be 0000 0000 1000 0000 0000 0000 ffffffffffff 111111111111 9000");

  it("builds scapy's ERSPAN II bytes: GRE S only, version 1, all else 0", () => {
    const inner = buildEthernet({
      dst: "ff:ff:ff:ff:ff:ff",
      src: "11:11:11:11:11:11",
      etherType: 0x9000,
      payload: Buffer.alloc(0),
    });
    expect(buildErspan2({ sessionId: 0, inner })).toEqual(scapyErspan2);
  });

  it("decodes every type II field at the Linux erspan.h masks", () => {
    // Ver 1 | VLAN 0xabc ; COS 5 | En 3 | T 1 | Session 0x3ff ; Reserved | Index 0xfffff
    const e = decodeErspan2(hex("1abc bfff 000f ffff 00"));
    expect(e).toMatchObject({
      ok: true,
      version: 1,
      vlan: 0xabc,
      cos: 5,
      en: 3,
      truncated: true,
      sessionId: 0x3ff,
      index: 0xfffff,
      headerLength: 8,
    });
    expect(
      buildErspan2({
        sessionId: 0x3ff,
        index: 0xfffff,
        vlan: 0xabc,
        cos: 5,
        en: 3,
        truncated: true,
        inner: hex("00"),
      }).subarray(8),
    ).toEqual(hex("1abc bfff 000f ffff 00"));
  });

  it("decodes every type III field and the platform sub-header", () => {
    // 2abc: ver 2, vlan 0xabc; b555: cos 5, bso 2, T, session 0x155; timestamp; SGT beef;
    // 8aaf: P, FT 2, HW 0x2a, D, Gra 3, O; platform id 5, info 0x123456 / 0xdeadbeef.
    const bytes = hex("2abc b555 01020304 beef 8aaf 14123456 deadbeef 45");
    const e = decodeErspan3(bytes);
    expect(e).toMatchObject({
      ok: true,
      version: 2,
      vlan: 0xabc,
      cos: 5,
      bso: 2,
      truncated: true,
      sessionId: 0x155,
      timestamp: 0x01020304,
      sgt: 0xbeef,
      p: true,
      frameType: 2,
      hwId: 0x2a,
      direction: 1,
      gra: 3,
      platform: { id: 5, infoHigh: 0x123456, infoLow: 0xdeadbeef },
      headerLength: 20,
    });
    const built = buildErspan3({
      sessionId: 0x155,
      vlan: 0xabc,
      cos: 5,
      bso: 2,
      truncated: true,
      timestamp: 0x01020304,
      sgt: 0xbeef,
      p: true,
      frameType: 2,
      hwId: 0x2a,
      direction: 1,
      gra: 3,
      platform: { id: 5, infoHigh: 0x123456, infoLow: 0xdeadbeef },
      seq: 9,
      inner: hex("45"),
    });
    expect(built.subarray(0, 8)).toEqual(hex("1000 22eb 0000 0009"));
    expect(built.subarray(8)).toEqual(bytes);
  });
});

describe("decapsulate", () => {
  const inner = buildTcpFrame({
    src: "10.0.0.1",
    dst: "10.0.0.2",
    srcPort: 4242,
    dstPort: 80,
    flags: TCP_SYN,
    seq: 1,
  });

  it("unwraps OVN's gre mirror: GRE key, TEB", () => {
    const f = buildTransportFrame(
      { src: "172.19.0.21", dst: "172.19.0.22", ttl: 64, vlans: [{ vid: 30 }], pad: true },
      buildGre({ key: 99, inner }),
    );
    const d = decapsulate(f);
    expect(d.ok).toBe(true);
    if (!d.ok || d.kind !== "gre") return;
    expect([
      d.key,
      d.tunnelId,
      d.seq,
      d.innerLinkType,
      d.outer.family,
      d.outer.ttl,
      d.outer.vlan,
      d.outer.dontFragment,
    ]).toEqual([99, 99, undefined, 1, 4, 64, 30, true]);
    expect(formatIp(d.outer.src)).toBe("172.19.0.21");
    expect(d.inner).toEqual(inner);
    expect(d.innerLength).toBe(inner.length);
    expect(d.inner.buffer).toBe(f.buffer);
  });

  it("unwraps ERSPAN II and III over IPv6 (ip6erspan)", () => {
    const e2 = decapsulate(
      buildTransportFrame(
        { src: "fd00::1", dst: "fd00::2" },
        buildErspan2({ sessionId: 77, index: 3, seq: 5, inner }),
      ),
    );
    expect(
      e2.ok && e2.kind === "erspan2" && [e2.sessionId, e2.erspan.index, e2.seq, e2.outer.family],
    ).toEqual([77, 3, 5, 6]);
    const e3 = decapsulate(
      buildTransportFrame(
        { src: "fd00::1", dst: "fd00::2" },
        buildErspan3({ sessionId: 78, hwId: 4, direction: 1, inner }),
      ),
    );
    expect(
      e3.ok &&
        e3.kind === "erspan3" && [e3.sessionId, e3.erspan.hwId, e3.erspan.direction, e3.erspan.platform],
    ).toEqual([78, 4, 1, undefined]);
    expect(e3.ok && e3.inner).toEqual(inner);
  });

  it("unwraps GRE carrying IPv4 directly as a raw-IP inner packet", () => {
    const ipOnly = inner.subarray(14);
    const d = decapsulate(
      buildTransportFrame(
        { src: "192.0.2.1", dst: "192.0.2.2" },
        buildGre({ key: 5, protocol: 0x0800, inner: ipOnly }),
      ),
    );
    expect(d.ok && d.innerLinkType).toBe(LINKTYPE_RAW);
    expect(d.ok && formatSummary(decodeFrame(d.inner, d.innerLinkType))).toBe(
      "IP 10.0.0.1.4242 > 10.0.0.2.80: Flags [S], seq 1, win 65535, length 0",
    );
  });

  it("gives the mirrored packet's wire length when the capture was cut short", () => {
    const f = buildTransportFrame({ src: "192.0.2.1", dst: "192.0.2.2" }, buildGre({ key: 5, inner }));
    const d = decapsulate(f.subarray(0, f.length - 10));
    expect(d.ok && [d.inner.length, d.innerLength]).toEqual([inner.length - 10, inner.length]);
  });
});

describe("summaries and flows", () => {
  it("prints one tcpdump-style line per packet", () => {
    const cases: [Buffer, string][] = [
      [
        buildTcpFrame({
          src: "10.0.0.1",
          dst: "10.0.0.2",
          srcPort: 4242,
          dstPort: 80,
          flags: TCP_PSH | TCP_ACK,
          seq: 100,
          ack: 7,
          window: 502,
          payload: Buffer.alloc(10),
        }),
        "IP 10.0.0.1.4242 > 10.0.0.2.80: Flags [P.], seq 100:110, ack 7, win 502, length 10",
      ],
      [
        buildTcpFrame({
          src: "10.0.0.1",
          dst: "10.0.0.2",
          srcPort: 1,
          dstPort: 2,
          flags: TCP_FIN | TCP_ACK,
          seq: 1,
          ack: 2,
          window: 1,
        }),
        "IP 10.0.0.1.1 > 10.0.0.2.2: Flags [F.], seq 1, ack 2, win 1, length 0",
      ],
      [
        buildUdpFrame({
          src: "fe80::1",
          dst: "ff02::fb",
          srcPort: 5353,
          dstPort: 5353,
          payload: Buffer.alloc(42),
        }),
        "IP6 fe80::1.5353 > ff02::fb.5353: UDP, length 42",
      ],
      [
        buildIcmpEchoFrame({ src: "10.0.0.1", dst: "10.0.0.2", id: 7, seq: 3 }),
        "IP 10.0.0.1 > 10.0.0.2: ICMP echo request, id 7, seq 3, length 64",
      ],
      [
        buildIcmpEchoFrame({ src: "2001:db8::1", dst: "2001:db8::2", id: 7, seq: 3, reply: true }),
        "IP6 2001:db8::1 > 2001:db8::2: ICMP6, echo reply, id 7, seq 3, length 64",
      ],
      [
        buildArpFrame({
          senderMac: "02:00:00:00:00:01",
          senderIp: "10.0.0.1",
          targetIp: "10.0.0.2",
          pad: true,
        }),
        "ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28",
      ],
      [
        buildArpFrame({
          op: 2,
          senderMac: "02:00:00:00:00:02",
          senderIp: "10.0.0.2",
          targetMac: "02:00:00:00:00:01",
          targetIp: "10.0.0.1",
        }),
        "ARP, Reply 10.0.0.2 is-at 02:00:00:00:00:02, length 28",
      ],
      [
        buildUdpFrame({
          src: "10.0.0.1",
          dst: "10.0.0.2",
          srcPort: 1,
          dstPort: 2,
          vlans: [{ vid: 100, pcp: 3 }],
        }),
        "vlan 100, p 3, IP 10.0.0.1.1 > 10.0.0.2.2: UDP, length 0",
      ],
      [buildEthernet({ etherType: 0x88cc, payload: Buffer.alloc(46) }), "ethertype 0x88cc, length 60"],
    ];
    for (const [frame, line] of cases) expect(formatSummary(decodeFrame(frame))).toBe(line);
  });

  it("marks a truncated layer the way tcpdump does", () => {
    const f = buildTcpFrame({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1, dstPort: 2 });
    expect(formatSummary(decodeFrame(f.subarray(0, 40)))).toBe("IP 10.0.0.1 > 10.0.0.2: ip-proto-6 6 [|tcp]");
    expect(formatSummary(decodeFrame(f.subarray(0, 5)))).toBe("[|ethernet]");
  });

  it("prints link addresses on request, and tunnels with their key", () => {
    const inner = buildIcmpEchoFrame({
      src: "10.0.0.1",
      dst: "10.0.0.2",
      id: 1,
      seq: 1,
      srcMac: "02:00:00:00:00:01",
      dstMac: "02:00:00:00:00:02",
    });
    expect(formatSummary(decodeFrame(inner), { link: true })).toMatch(
      /^02:00:00:00:00:01 > 02:00:00:00:00:02, IP /,
    );
    const f = buildTransportFrame({ src: "192.0.2.1", dst: "192.0.2.2" }, buildGre({ key: 99, inner }));
    expect(formatDecapsulatedSummary(f)).toBe(
      "gre key 99 192.0.2.1 > 192.0.2.2: IP 10.0.0.1 > 10.0.0.2: ICMP echo request, id 1, seq 1, length 64",
    );
    expect(formatSummary(decodeFrame(f))).toBe(
      "IP 192.0.2.1 > 192.0.2.2: GREv0, key=0x63, proto TEB, length 106",
    );
  });

  it("gives the 5-tuple, ports 0 for ICMP", () => {
    const t = decodeFrame(
      buildTcpFrame({ src: "2001:db8::1", dst: "2001:db8::2", srcPort: 4242, dstPort: 443 }),
    );
    expect(t.ok && flowOf(t)).toEqual({
      protocol: 6,
      src: "2001:db8::1",
      dst: "2001:db8::2",
      srcPort: 4242,
      dstPort: 443,
    });
    const i = decodeFrame(buildIcmpEchoFrame({ src: "10.0.0.1", dst: "10.0.0.2", id: 9, seq: 9 }));
    expect(i.ok && flowOf(i)).toEqual({
      protocol: 1,
      src: "10.0.0.1",
      dst: "10.0.0.2",
      srcPort: 0,
      dstPort: 0,
    });
    const a = decodeFrame(
      buildArpFrame({ senderMac: "02:00:00:00:00:01", senderIp: "10.0.0.1", targetIp: "10.0.0.2" }),
    );
    expect(a.ok && flowOf(a)).toBeUndefined();
  });
});

describe("address text (RFC 5952)", () => {
  it.each([
    ["2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"],
    ["2001:db8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["::", "::"],
    ["::1", "::1"],
    ["fe80::", "fe80::"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["2001:DB8::A", "2001:db8::a"],
    ["1:0:0:1:0:0:0:1", "1:0:0:1::1"],
    ["192.0.2.1", "192.0.2.1"],
  ])("%s → %s", (text, canonical) => {
    const b = parseIp(text);
    expect(b).toBeDefined();
    expect(formatIp(b!)).toBe(canonical);
  });

  it("refuses non-addresses", () => {
    for (const t of ["1.2.3", "256.0.0.1", "01.2.3.4", "1::2::3", "1:2:3:4:5:6:7:8:9", "g::1", ""])
      expect(parseIp(t)).toBeUndefined();
  });
});
