/**
 * The recorder's stop condition without a lab: what pcapContents counts in built GRE/ERSPAN
 * packets, and what `missing` says is still lacking.
 */
import {
  buildArpFrame,
  buildErspan2,
  buildGre,
  buildIcmpEchoFrame,
  buildTcpFrame,
  buildTransportFrame,
  buildUdpFrame,
  encodePcap,
  TCP_ACK,
  TCP_FIN,
} from "@ovntap/packet";
import { describe, expect, it } from "vitest";
import { FIXTURES, fixturesReadme, missing, pcapContents } from "./record.js";

const outer = { src: "198.51.100.1", dst: "198.51.100.2" };
const inner = {
  arp: buildArpFrame({ senderMac: "00:00:00:00:00:01", senderIp: "10.16.0.11", targetIp: "10.16.0.12" }),
  icmp: buildIcmpEchoFrame({ src: "10.16.0.11", dst: "10.16.0.12", id: 1, seq: 1 }),
  tcp: buildTcpFrame({ src: "10.16.0.11", dst: "10.16.0.12", srcPort: 40000, dstPort: 7 }),
  fin: buildTcpFrame({
    src: "10.16.0.11",
    dst: "10.16.0.12",
    srcPort: 40000,
    dstPort: 7,
    flags: TCP_FIN | TCP_ACK,
  }),
  udp: buildUdpFrame({ src: "10.16.0.11", dst: "10.16.0.12", srcPort: 40000, dstPort: 7 }),
};
const gre = (key: number, frame: Buffer) => buildTransportFrame(outer, buildGre({ key, inner: frame }));
const pcap = (frames: Buffer[]) => encodePcap(frames.map((data, i) => ({ seconds: i, nanos: 0, data })));

describe("pcapContents and missing", () => {
  it("counts inner protocols and FINs per tunnel; complete when both tunnels have everything", () => {
    const all = (key: number) =>
      [inner.arp, inner.icmp, inner.tcp, inner.fin, inner.udp].map((f) => gre(key, f));
    const c = pcapContents(pcap([...all(77), ...all(78)]), "gre");
    expect(c.packets).toBe(10);
    expect(c.foreign).toBe(0);
    expect(c.tunnels.get(77)).toEqual({
      id: 77,
      packets: 5,
      inner: { arp: 1, icmp: 1, tcp: 2, udp: 1, other: 0 },
      tcpFins: 1,
    });
    expect([...c.outer]).toEqual(["198.51.100.1 > 198.51.100.2"]);
    expect(missing(FIXTURES.gre, c)).toEqual([]);
  });

  it("names each tunnel's missing protocols, and counts packets of another kind as foreign", () => {
    const c = pcapContents(
      pcap([
        gre(77, inner.arp),
        gre(77, inner.tcp),
        buildTransportFrame(outer, buildErspan2({ sessionId: 78, index: 0, inner: inner.udp })),
      ]),
      "gre",
    );
    expect(c.foreign).toBe(1);
    expect(missing(FIXTURES.gre, c)).toEqual([
      "fx-gre-from (id 77, from-lport): icmp, udp, tcp FIN",
      "fx-gre-to (id 78, to-lport): arp, icmp, tcp, udp, tcp FIN",
    ]);
  });

  it("reads a pcap cut inside a record (tcpdump still writing) up to the cut", () => {
    const whole = pcap([gre(77, inner.arp), gre(77, inner.icmp)]);
    expect(pcapContents(whole.subarray(0, whole.length - 3), "gre").packets).toBe(1);
    expect(pcapContents(Buffer.alloc(0), "gre").packets).toBe(0);
  });

  it("the README lists every file with its tunnels", () => {
    const c = pcapContents(pcap([gre(77, inner.arp)]), "gre");
    const text = fixturesReadme({
      recordings: [{ spec: FIXTURES.gre, path: "gre.pcap", contents: c }],
      versions: {
        ovs: "ovs 9",
        ovn: "ovn 9",
        tcpdump: "tcpdump 9",
        libpcap: "libpcap 9",
        kernel: "Linux 9",
        os: "OS 9",
      },
    });
    expect(text).toContain("| `gre.pcap` | gre | 77 | from-lport | 1 | arp 1, icmp 0, tcp 0, udp 0 |");
    expect(text).toContain("| `gre.pcap` | gre | 78 | to-lport | 0 | none |");
    expect(text).toContain("- ovs 9\n- ovn 9\n");
  });
});
