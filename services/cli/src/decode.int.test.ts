/**
 * tshark (Debian's) is the oracle for `ovntap decode --json` and `ovntap decap`:
 *
 * - every field of every record `decode --json` prints agrees with what tshark decodes in the same
 *   packet (testing/tshark.ts says how tshark's fields map to a record's);
 * - `tshark -r` of the file `decap` writes shows, for each packet, the layers and the innermost
 *   addresses, protocol and ports tshark decodes inside the tunnel of the original.
 *
 * On synthetic captures — GRE with a key, GRE with checksum and sequence, ERSPAN II, ERSPAN III
 * with and without the platform sub-header, VLAN and QinQ inner frames, IPv6 transport, GRE
 * carrying IPv4 and IPv6 directly, TCP/UDP/ICMP/ICMPv6/ARP inside, plain frames, and every
 * truncation of five of them (cut by a snaplen, and genuinely short) — and on every capture
 * recorded from the lab under shared/packet/test/fixtures/lab/.
 *
 * (ERSPAN III frame type 2, IP without Ethernet, is left out: tshark 4.0's ERSPAN dissector shows
 * it as data. The unit tests cover it.)
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  buildArpFrame,
  buildErspan2,
  buildErspan3,
  buildGre,
  buildIcmpEcho,
  buildIcmpEchoFrame,
  buildIpv4,
  buildIpv6,
  buildTcp,
  buildTcpFrame,
  buildTransportFrame,
  buildUdpFrame,
  decapsulate,
  encodePcap,
  encodePcapngInterface,
  encodePcapngPacket,
  encodePcapngSectionHeader,
  ETHERTYPE_QINQ,
  ipProtocolName,
  readCapture,
  TCP_ACK,
  TCP_SYN,
} from "@ovntap/packet";
import type { PacketRecord, PcapRecordInput } from "@ovntap/packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./cli.js";
import { EXIT } from "./errors.js";
import { capture } from "./testing/fixtures.js";
import { innerProtocols, requireTshark, tsharkRecords } from "./testing/tshark.js";
import type { TsharkRecord } from "./testing/tshark.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "ovntap-decode-int-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => requireTshark());

const LAB = fileURLToPath(new URL("../../../shared/packet/test/fixtures/lab/", import.meta.url));
const labCaptures = existsSync(LAB)
  ? readdirSync(LAB)
      .filter((f) => /\.pcap(ng)?$/.test(f))
      .sort()
  : [];

// ---------------------------------------------------------------------------------------------
// Synthetic captures

// High ports and an opaque payload, so tshark hands the payload to no application dissector.
const payload = Buffer.from("ovntap oracle payload");
const tcp4 = buildTcpFrame({
  src: "10.16.0.5",
  dst: "10.16.0.9",
  srcPort: 40000,
  dstPort: 40080,
  flags: TCP_SYN,
  seq: 1000,
});
const tcp4data = buildTcpFrame({
  src: "10.16.0.9",
  dst: "10.16.0.5",
  srcPort: 40080,
  dstPort: 40000,
  flags: TCP_ACK,
  seq: 77,
  ack: 1001,
  payload,
});
const udp4 = buildUdpFrame({ src: "10.16.0.5", dst: "10.16.0.9", srcPort: 40001, dstPort: 40002, payload });
const icmp4 = buildIcmpEchoFrame({ src: "10.16.0.5", dst: "10.16.0.9", id: 7, seq: 1 });
const icmp6 = buildIcmpEchoFrame({ src: "fd00:16::5", dst: "fd00:16::9", id: 7, seq: 2, reply: true });
const udp6vlan = buildUdpFrame({
  src: "fd00:16::5",
  dst: "fd00:16::9",
  srcPort: 40003,
  dstPort: 40004,
  payload,
  vlans: [{ vid: 100, pcp: 3 }],
});
const tcp6qinq = buildTcpFrame({
  src: "fd00:16::9",
  dst: "fd00:16::5",
  srcPort: 40005,
  dstPort: 40006,
  payload,
  vlans: [{ vid: 200, tpid: ETHERTYPE_QINQ }, { vid: 300 }],
});
const arp = buildArpFrame({ senderMac: "02:00:00:00:00:05", senderIp: "10.16.0.5", targetIp: "10.16.0.9" });
const arpVlan = buildArpFrame({
  op: 2,
  senderMac: "02:00:00:00:00:09",
  senderIp: "10.16.0.9",
  targetMac: "02:00:00:00:00:05",
  targetIp: "10.16.0.5",
  vlans: [{ vid: 100 }],
});
// Padded to the 60-octet minimum, as a NIC sends it: the padding is not ARP.
const arpPadded = buildArpFrame({
  senderMac: "02:00:00:00:00:05",
  senderIp: "10.16.0.5",
  targetIp: "10.16.0.7",
  pad: true,
});
const ipOnly4 = buildIpv4({
  src: "10.16.0.5",
  dst: "10.16.0.9",
  protocol: 6,
  payload: buildTcp({ src: "10.16.0.5", dst: "10.16.0.9", srcPort: 40007, dstPort: 40008, payload }),
});
const ipOnly6 = buildIpv6({
  src: "fd00:16::5",
  dst: "fd00:16::9",
  protocol: 58,
  payload: buildIcmpEcho({ src: "fd00:16::5", dst: "fd00:16::9", id: 9, seq: 3 }),
});
// An MLD-like packet: Hop-by-Hop (router alert) and Destination Options before ICMPv6.
const icmp6ext = buildIpv6({
  src: "fd00:16::5",
  dst: "fd00:16::9",
  protocol: 58,
  payload: buildIcmpEcho({ src: "fd00:16::5", dst: "fd00:16::9", id: 9, seq: 4 }),
  extensionHeaders: [{ type: 0, body: Buffer.from([5, 2, 0, 0, 1, 0]) }, { type: 60 }],
});

const sink4 = { src: "198.51.100.21", dst: "198.51.100.22" };
const sink6 = { src: "2001:db8::21", dst: "2001:db8::22" };

const frames: Record<string, Buffer> = {
  "gre key, TCP SYN": buildTransportFrame(sink4, buildGre({ key: 99, inner: tcp4 })),
  "gre key, TCP data": buildTransportFrame(sink4, buildGre({ key: 99, inner: tcp4data })),
  "gre checksum+sequence, UDP": buildTransportFrame(sink4, buildGre({ csum: true, seq: 4242, inner: udp4 })),
  "gre checksum+key+sequence, ICMP": buildTransportFrame(
    sink4,
    buildGre({ csum: true, key: 0xfffffffe, seq: 1, inner: icmp4 }),
  ),
  "gre key, ARP": buildTransportFrame(sink4, buildGre({ key: 5, inner: arp })),
  "gre key, VLAN ARP reply": buildTransportFrame(sink4, buildGre({ key: 5, inner: arpVlan })),
  "gre carrying IPv4, TCP": buildTransportFrame(
    sink4,
    buildGre({ key: 6, protocol: 0x0800, inner: ipOnly4 }),
  ),
  "gre carrying IPv6, ICMPv6": buildTransportFrame(sink4, buildGre({ protocol: 0x86dd, inner: ipOnly6 })),
  "erspan2 (OVN), UDP": buildTransportFrame(
    sink4,
    buildErspan2({ sessionId: 700, index: 3, seq: 10, inner: udp4 }),
  ),
  "erspan2, VLAN IPv6 UDP": buildTransportFrame(
    sink4,
    buildErspan2({ sessionId: 1023, index: 1, vlan: 100, en: 3, seq: 11, inner: udp6vlan }),
  ),
  "erspan3 (OVS), ICMP": buildTransportFrame(
    sink4,
    buildErspan3({ sessionId: 9, hwId: 1, seq: 12, inner: icmp4 }),
  ),
  "erspan3 platform, ARP": buildTransportFrame(
    sink4,
    buildErspan3({ sessionId: 10, platform: { id: 3, infoHigh: 0x1abc, infoLow: 99 }, seq: 13, inner: arp }),
  ),
  "erspan3 platform, QinQ IPv6 TCP": buildTransportFrame(
    sink4,
    buildErspan3({
      sessionId: 11,
      platform: { id: 5, infoHigh: (7 << 16) | 300, infoLow: 1 },
      inner: tcp6qinq,
    }),
  ),
  "ipv6 gre key, ICMPv6": buildTransportFrame(sink6, buildGre({ key: 7, inner: icmp6 })),
  "ipv6 gre key, IPv6 extension headers": buildTransportFrame(
    sink6,
    buildGre({ key: 7, protocol: 0x86dd, inner: icmp6ext }),
  ),
  "ipv6 erspan2, TCP": buildTransportFrame(sink6, buildErspan2({ sessionId: 5, inner: tcp4data })),
  "ipv6 erspan3, UDP": buildTransportFrame(sink6, buildErspan3({ sessionId: 6, inner: udp4 })),
  "transport VLAN, gre key, UDP": buildTransportFrame(
    { ...sink4, vlans: [{ vid: 42 }] },
    buildGre({ key: 8, inner: udp4 }),
  ),
  "gre key, padded ARP": buildTransportFrame(sink4, buildGre({ key: 9, inner: arpPadded })),
  "plain TCP": tcp4data,
  "plain ARP, padded": arpPadded,
  "plain IPv6 UDP": udp6vlan,
};

/** Frames whose every truncation goes in too. */
const TRUNCATED = [
  "gre checksum+key+sequence, ICMP",
  "erspan2, VLAN IPv6 UDP",
  "erspan3 platform, ARP",
  "gre carrying IPv4, TCP",
  "ipv6 gre key, ICMPv6",
];

/** Each record gets its own timestamp, so a decapsulated frame can be traced to its original. */
function records(): { records: PcapRecordInput[]; names: string[] } {
  const out: PcapRecordInput[] = [];
  const names: string[] = [];
  const add = (name: string, data: Buffer, originalLength: number) => {
    out.push({
      seconds: 1_700_000_000 + Math.floor(out.length / 1000),
      nanos: (out.length % 1000) * 1000,
      data,
      originalLength,
    });
    names.push(name);
  };
  for (const [name, f] of Object.entries(frames)) add(name, f, f.length);
  for (const name of TRUNCATED) {
    const f = frames[name]!;
    for (let k = 0; k < f.length; k++) {
      add(`${name}, cut to ${k} by a snaplen`, f.subarray(0, k), f.length);
      add(`${name}, only ${k} octets long`, f.subarray(0, k), k);
    }
  }
  return { records: out, names };
}

// ---------------------------------------------------------------------------------------------

async function cli(argv: string[]) {
  const c = capture();
  const code = await runCli(argv, { ...c.io, env: {}, cwd: dir });
  return { code, out: c.out(), err: c.err() };
}

/** A record with `error` reduced to whether there is one: what tshark's view can be held to. */
type Comparable = Omit<PacketRecord, "error"> & { error: boolean };

/** tshark's view of a frame, as the record it must equal. */
function expected(t: TsharkRecord): Comparable {
  return {
    n: t.n,
    encap: t.encap,
    key: t.key,
    session: t.session,
    src: t.src,
    dst: t.dst,
    proto: t.proto === null ? null : t.proto === "arp" ? "arp" : ipProtocolName(t.proto),
    sport: t.sport,
    dport: t.dport,
    len: t.len,
    error: t.error,
  };
}

/** `decode --json` of `file` against tshark, field by field; returns both for further checks. */
async function checkDecode(
  file: string,
  names?: readonly string[],
): Promise<{ ours: PacketRecord[]; theirs: TsharkRecord[] }> {
  const r = await cli(["decode", file, "--json"]);
  expect(r.err).toBe("");
  expect(r.code).toBe(EXIT.OK);
  const ours = r.out
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as PacketRecord);
  const theirs = await tsharkRecords(file);
  expect(ours.length).toBe(theirs.length);
  const mismatches: string[] = [];
  ours.forEach((o, i) => {
    const t = theirs[i]!;
    const got: Comparable = { ...o, error: o.error !== null };
    const want = expected(t);
    if (JSON.stringify(got) !== JSON.stringify(want))
      mismatches.push(
        `#${o.n} ${names?.[i] ?? ""}\n  ovntap: ${JSON.stringify(o)}\n  tshark: ${JSON.stringify(want)}  (${t.protocols}; ${t.problems.join("; ") || "no problem"})`,
      );
  });
  expect(mismatches.join("\n")).toBe("");
  return { ours, theirs };
}

/**
 * `decap` of `file` into pcapng (all link types), then tshark on both: each written frame is the
 * mirrored frame tshark finds inside its original. Which originals are written (the packets
 * `decapsulate` unwraps) pairs them up; the values compared are tshark's on both sides.
 */
async function checkDecap(
  file: string,
  theirs: readonly TsharkRecord[],
  ours: readonly PacketRecord[],
): Promise<number> {
  const out = join(dir, `${file.split("/").pop()}.decap.pcapng`);
  const r = await cli(["decap", file, "-w", out]);
  expect(r.code, r.err).toBe(EXIT.OK);
  const read = Number(/(\d+) packets read/.exec(r.err)?.[1]);
  expect(read).toBe(theirs.length);
  const unwrapped: number[] = [];
  let index = 0;
  for await (const p of readCapture([readFileSync(file)])) {
    if (decapsulate(p.data, p.linkType).ok) unwrapped.push(index);
    index++;
  }
  const inner = await tsharkRecords(out);
  expect(inner.length).toBe(unwrapped.length);
  expect(r.err).toContain(`${unwrapped.length} written`);
  const mismatches: string[] = [];
  inner.forEach((o, k) => {
    const t = theirs[unwrapped[k]!]!;
    // Only tunnel packets are written, with their own timestamps.
    expect(ours[unwrapped[k]!]!.encap).not.toBe("none");
    expect(o.time).toBe(t.time);
    // The output frame has no tunnel: all of it is the mirrored frame. A mirrored frame cut to
    // nothing has no layers to compare (tshark names the layer it could not start on one side
    // only), nor has a raw-IP frame of a few octets: tshark's raw dissector shows no layer for it
    // (it probes for PPP / Cisco HDLC framing first) where inside GRE it shows `ip`.
    const empty = o.caplen === 0 || (innerProtocols(o.protocols) === "" && o.caplen < 8);
    const want = { protocols: empty ? "" : innerProtocols(t.protocols), ...t.mirrored };
    const got = { protocols: empty ? "" : innerProtocols(o.protocols), ...o.mirrored };
    if (JSON.stringify(got) !== JSON.stringify(want))
      mismatches.push(
        `input #${t.n} → output #${o.n}\n  in the original: ${JSON.stringify(want)}\n  decapsulated:    ${JSON.stringify(got)}`,
      );
  });
  expect(mismatches.join("\n")).toBe("");
  return unwrapped.length;
}

describe("decode --json agrees with tshark, decap writes what tshark sees inside", () => {
  const { records: recs, names } = records();

  it("on every synthetic case and every truncation of five of them (pcap)", async () => {
    const file = join(dir, "synthetic.pcap");
    writeFileSync(file, encodePcap(recs));
    const { ours, theirs } = await checkDecode(file, names);
    // Not vacuous: every encapsulation, errors of many kinds, and whole packets of each protocol.
    const kinds = new Set(ours.map((o) => o.encap));
    expect([...kinds].sort()).toEqual(["erspan2", "erspan3", "gre", "none"]);
    const errors = new Set(ours.map((o) => o.error?.split(" ")[1]).filter((e) => e !== undefined));
    expect([...errors].sort()).toEqual(
      expect.arrayContaining(["arp", "erspan", "ethernet", "gre", "icmp", "ipv4", "ipv6", "vlan"]),
    );
    expect(ours.filter((o) => o.error?.startsWith("bad-length")).length).toBeGreaterThan(50);
    const whole = ours.slice(0, Object.keys(frames).length);
    expect(whole.every((o) => o.error === null)).toBe(true);
    expect(new Set(whole.map((o) => o.proto))).toEqual(new Set(["tcp", "udp", "icmp", "icmpv6", "arp"]));
    expect(theirs.filter((t) => t.error).length).toBe(ours.filter((o) => o.error !== null).length);

    const written = await checkDecap(file, theirs, ours);
    expect(written).toBeGreaterThan(Object.keys(frames).length);
  });

  it("on the whole frames as pcapng, one interface each for Ethernet and raw-IP transports", async () => {
    const whole = Object.values(frames);
    const file = join(dir, "synthetic.pcapng");
    writeFileSync(
      file,
      Buffer.concat([
        encodePcapngSectionHeader({ userAppl: "ovntap test" }),
        encodePcapngInterface({ name: "sink-eth" }),
        encodePcapngInterface({ name: "sink-raw", linkType: 101 }),
        ...whole.map((data, i) => encodePcapngPacket(0, { seconds: 1_700_000_000, nanos: i * 1000, data })),
        // The tunnel packets again, as a raw-IP capture of the transport (no Ethernet header).
        ...whole
          .filter((f) => f.readUInt16BE(12) === 0x0800 || f.readUInt16BE(12) === 0x86dd)
          .map((f, i) =>
            encodePcapngPacket(1, { seconds: 1_700_000_001, nanos: i * 1000, data: f.subarray(14) }),
          ),
      ]),
    );
    const { ours, theirs } = await checkDecode(file);
    await checkDecap(file, theirs, ours);
  });

  it(`on the captures recorded from the lab (${labCaptures.length} in shared/packet/test/fixtures/lab)`, async () => {
    // They are committed by the lab acceptance work; until then there is nothing to read here.
    if (labCaptures.length === 0) {
      expect(existsSync(LAB) ? readdirSync(LAB).filter((f) => /\.pcap(ng)?$/.test(f)) : []).toEqual([]);
      return;
    }
    for (const f of labCaptures) {
      const file = join(LAB, f);
      const { ours, theirs } = await checkDecode(file);
      expect(ours.some((o) => o.encap !== "none")).toBe(true);
      await checkDecap(file, theirs, ours);
    }
  });

  it("tcpdump reads the decapsulated pcap too", async () => {
    const file = join(dir, "ethernet-only.pcap");
    // Tunnels of Ethernet frames only: a pcap holds one link type.
    const eth = Object.entries(frames).filter(
      ([n]) => !n.includes("carrying") && !n.includes("extension headers") && !n.startsWith("plain"),
    );
    writeFileSync(
      file,
      encodePcap(eth.map(([, data], i) => ({ seconds: 1_700_000_000, nanos: i * 1000, data }))),
    );
    const out = join(dir, "ethernet-only.decap.pcap");
    const r = await cli(["decap", file, "-w", out]);
    expect(r.code, r.err).toBe(EXIT.OK);
    const { stdout } = await run("tcpdump", ["-n", "-r", out], { maxBuffer: 1 << 26 });
    expect(stdout.trimEnd().split("\n").length).toBe(eth.length);
    expect(stdout).toContain("IP 10.16.0.5.40000 > 10.16.0.9.40080: Flags [S]");
  });
});
