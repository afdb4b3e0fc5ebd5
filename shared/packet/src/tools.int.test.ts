/**
 * Independent cross-checks with real tools: tshark (Wireshark's GRE and ERSPAN dissectors) reads the
 * fields our builders wrote into files our writers wrote; tcpdump reads those files and prints what
 * `formatSummary` prints; and files written by text2pcap and by `tcpdump -w` on loopback are read by
 * our readers. Needs tshark, tcpdump and text2pcap on PATH (Debian: `apt-get install tshark tcpdump`);
 * the loopback capture needs root or CAP_NET_RAW.
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildArpFrame,
  buildErspan2,
  buildErspan3,
  buildGre,
  buildIcmpEchoFrame,
  buildTcpFrame,
  buildTransportFrame,
  buildUdpFrame,
  decodeFrame,
  decodePcap,
  decodePcapng,
  encodePcap,
  encodePcapngInterface,
  encodePcapngPacket,
  encodePcapngSectionHeader,
  formatSummary,
  PcapngFileWriter,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
} from "./index.js";
import type { Erspan3Platform } from "./index.js";
import { pcapngToBigEndian, pcapToBigEndian } from "./internal.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "ovntap-packet-int-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  for (const tool of ["tshark", "tcpdump", "text2pcap"]) {
    const r = spawnSync(tool, ["--version"], { stdio: "ignore" });
    if (r.error !== undefined)
      throw new Error(
        `${tool} is not installed: apt-get install tshark tcpdump (text2pcap comes with wireshark-common)`,
      );
  }
});

/** tshark's field output, one row per frame, fields split on "|". */
async function tsharkFields(
  file: string,
  fields: readonly string[],
  extra: readonly string[] = [],
): Promise<string[][]> {
  const args = [
    "-n",
    "-r",
    file,
    ...extra,
    "-T",
    "fields",
    "-E",
    "separator=|",
    "-E",
    "occurrence=a",
    ...fields.flatMap((f) => ["-e", f]),
  ];
  const { stdout } = await run("tshark", args, { maxBuffer: 64 << 20 });
  return stdout
    .trimEnd()
    .split("\n")
    .map((l) => l.split("|"));
}

/** Frames tshark flags as malformed or with an error-level expert item. */
async function tsharkProblems(file: string): Promise<string> {
  const { stdout } = await run("tshark", [
    "-n",
    "-r",
    file,
    "-Y",
    "_ws.malformed || _ws.expert.severity >= error",
  ]);
  return stdout.trim();
}

const inner = buildIcmpEchoFrame({
  src: "10.0.0.1",
  dst: "10.0.0.2",
  id: 1,
  seq: 42,
  payload: Buffer.from("ovntap cross-check"),
});

interface TunnelCase {
  readonly frame: Buffer;
  readonly expect: Record<string, string>;
}

function platformCase(platform: Erspan3Platform, fields: Record<string, string>): TunnelCase {
  return {
    frame: buildTransportFrame(
      { src: "192.0.2.1", dst: "192.0.2.2" },
      buildErspan3({ sessionId: 9, timestamp: 77, hwId: 3, platform, inner }),
    ),
    expect: {
      "erspan.version": "2",
      "erspan.spanid": "9",
      "erspan.o": "1",
      "erspan.platid": String(platform.id),
      ...fields,
    },
  };
}

const tunnels: TunnelCase[] = [
  {
    frame: buildTransportFrame({ src: "172.19.0.21", dst: "172.19.0.22" }, buildGre({ key: 99, inner })),
    expect: { "gre.key": "0x00000063", "gre.proto": "0x6558", "ip.src": "172.19.0.21,10.0.0.1" },
  },
  {
    frame: buildTransportFrame(
      { src: "172.19.0.21", dst: "172.19.0.22" },
      buildGre({ key: 0xfffffffe, seq: 123, csum: true, inner }),
    ),
    expect: { "gre.key": "0xfffffffe", "gre.sequence_number": "123", "gre.checksum.status": "1" },
  },
  {
    frame: buildTransportFrame({ src: "fd00::21", dst: "fd00::22" }, buildGre({ key: 7, inner })),
    expect: { "gre.key": "0x00000007", "ipv6.src": "fd00::21" },
  },
  {
    // OVN's ERSPAN mirror: type II, S set, no key.
    frame: buildTransportFrame(
      { src: "192.0.2.1", dst: "192.0.2.2" },
      buildErspan2({
        sessionId: 700,
        index: 0xabcde,
        vlan: 100,
        cos: 5,
        en: 3,
        truncated: true,
        seq: 9,
        inner,
      }),
    ),
    expect: {
      "gre.key": "",
      "gre.sequence_number": "9",
      "erspan.version": "1",
      "erspan.spanid": "700",
      "erspan.index": String(0xabcde),
      "erspan.vlan": "100",
      "erspan.cos": "5",
      "erspan.encap": "3",
      "erspan.truncated": "1",
    },
  },
  {
    frame: buildTransportFrame(
      { src: "fd00::1", dst: "fd00::2" },
      buildErspan2({ sessionId: 1023, index: 1, inner }),
    ),
    expect: { "erspan.version": "1", "erspan.spanid": "1023", "erspan.index": "1", "ipv6.dst": "fd00::2" },
  },
  {
    // OVS erspan_ver=2, no platform sub-header.
    frame: buildTransportFrame(
      { src: "192.0.2.1", dst: "192.0.2.2" },
      buildErspan3({
        sessionId: 1000,
        timestamp: 4_000_000_000,
        hwId: 42,
        direction: 1,
        gra: 1,
        sgt: 777,
        bso: 2,
        cos: 6,
        vlan: 4095,
        truncated: true,
        inner,
      }),
    ),
    expect: {
      "erspan.version": "2",
      "erspan.spanid": "1000",
      "erspan.timestamp": "4000000000",
      "erspan.hw": "42",
      "erspan.direction": "1",
      "erspan.gra": "1",
      "erspan.sgt": "777",
      "erspan.bso": "2",
      "erspan.cos": "6",
      "erspan.vlan": "4095",
      "erspan.truncated": "1",
      "erspan.o": "0",
      "erspan.ft": "0",
    },
  },
  // With the platform sub-header: Wireshark splits the 58 bits differently per platform id.
  platformCase(
    { id: 1, infoHigh: 0x123, infoLow: 0xdeadbeef },
    { "erspan.pid1.vsmid": String(0x123), "erspan.pid1.port_index": String(0xdeadbeef) },
  ),
  platformCase(
    { id: 3, infoHigh: 0x1abc, infoLow: 99 },
    { "erspan.pid3.port_index": String(0x1abc), "erspan.pid3.timestamp": "99" },
  ),
  platformCase(
    { id: 5, infoHigh: (7 << 16) | 300, infoLow: 123456 },
    { "erspan.pid5.switchid": "7", "erspan.pid5.port_index": "300", "erspan.pid5.timestamp": "123456" },
  ),
];

const FIELDS = [...new Set(tunnels.flatMap((t) => Object.keys(t.expect)))].sort();

describe("tshark reads what we wrote", () => {
  const records = tunnels.map((t, i) => ({
    seconds: 1_700_000_000 + i,
    nanos: 123_456_789 - i * 1000,
    data: t.frame,
  }));

  it.each([
    ["pcap (ns)", "ns" as const, false],
    ["pcap (µs)", "us" as const, false],
    ["big-endian pcap (ns)", "ns" as const, true],
    ["big-endian pcap (µs)", "us" as const, true],
  ])("GRE key, ERSPAN II and III fields in a %s file", async (_name, precision, bigEndian) => {
    const le = encodePcap(records, { precision });
    const file = join(dir, `tunnels-${precision}-${bigEndian ? "be" : "le"}.pcap`);
    writeFileSync(file, bigEndian ? pcapToBigEndian(le) : le);
    const rows = await tsharkFields(file, ["frame.time_epoch", "icmp.seq", ...FIELDS]);
    expect(rows.length).toBe(tunnels.length);
    rows.forEach((row, i) => {
      const want = records[i]!;
      const frac =
        precision === "ns"
          ? String(want.nanos).padStart(9, "0")
          : `${String(Math.floor(want.nanos / 1000)).padStart(6, "0")}000`;
      expect(row[0]).toBe(`${want.seconds}.${frac}`);
      // tshark decoded all the way into the mirrored ICMP echo.
      expect(row[1]).toBe("42");
      const got = Object.fromEntries(FIELDS.map((f, k) => [f, row[k + 2]]));
      for (const [field, value] of Object.entries(tunnels[i]!.expect))
        expect({ frame: i, field, value: got[field] }).toEqual({ frame: i, field, value });
    });
    expect(await tsharkProblems(file)).toBe("");
    // tcpdump reads it too, one line per packet; it unwraps the GRE key packets itself.
    const { stdout } = await run("tcpdump", ["-n", "-r", file]);
    const lines = stdout.trim().split("\n");
    expect(lines.length).toBe(tunnels.length);
    expect(lines[0]).toMatch(
      /IP 172\.19\.0\.21 > 172\.19\.0\.22: GREv0, key=0x63, length \d+: IP 10\.0\.0\.1 > 10\.0\.0\.2: ICMP echo request, id 1, seq 42/,
    );
  });

  it.each([false, true])("pcapng with one interface per mirror (big-endian: %s)", async (bigEndian) => {
    const parts = [
      encodePcapngSectionHeader({ userAppl: "ovntap", comment: "capture of two mirrors" }),
      encodePcapngInterface({
        name: "team-a/web",
        description: "gre key 99 → 172.19.0.22",
        comment: "spec: {direction: both}",
      }),
      encodePcapngInterface({ name: "team-a/db", description: "erspan v1 session 700", precision: "us" }),
      ...records.map((r, i) =>
        encodePcapngPacket(
          i % 2,
          { ...r, comment: `packet ${i}`, flags: 1 + (i % 2) },
          i % 2 === 0 ? "ns" : "us",
        ),
      ),
    ];
    const le = Buffer.concat(parts);
    const file = join(dir, `tunnels-${bigEndian ? "be" : "le"}.pcapng`);
    writeFileSync(file, bigEndian ? pcapngToBigEndian(le) : le);
    const rows = await tsharkFields(file, [
      "frame.interface_name",
      "frame.interface_description",
      "frame.comment",
      "frame.time_epoch",
      "erspan.spanid",
      "gre.key",
    ]);
    expect(rows.length).toBe(records.length);
    rows.forEach((row, i) => {
      const r = records[i]!;
      const frac =
        i % 2 === 0
          ? String(r.nanos).padStart(9, "0")
          : `${String(Math.floor(r.nanos / 1000)).padStart(6, "0")}000`;
      expect(row.slice(0, 4)).toEqual([
        i % 2 === 0 ? "team-a/web" : "team-a/db",
        i % 2 === 0 ? "gre key 99 → 172.19.0.22" : "erspan v1 session 700",
        `packet ${i}`,
        `${r.seconds}.${frac}`,
      ]);
    });
    expect(rows.map((r) => r[4])).toEqual(["", "", "", "700", "1023", "1000", "9", "9", "9"]);
    expect(await tsharkProblems(file)).toBe("");
    const { stdout } = await run("tcpdump", ["-n", "-r", file]);
    expect(stdout.trim().split("\n").length).toBe(records.length);
  });

  it("PcapngFileWriter output reads back through tshark's interface names", async () => {
    const file = join(dir, "writer.pcapng");
    const w = await PcapngFileWriter.create(file, { userAppl: "ovntap" });
    const ids = [await w.addInterface({ name: "ns1/m1" }), await w.addInterface({ name: "ns2/m2" })];
    for (let i = 0; i < 6; i++)
      await w.write(ids[i % 2]!, { seconds: 1_700_000_000, nanos: i, data: tunnels[i]!.frame });
    await w.close();
    const rows = await tsharkFields(file, ["frame.interface_name"]);
    expect(rows.map((r) => r[0])).toEqual(["ns1/m1", "ns2/m2", "ns1/m1", "ns2/m2", "ns1/m1", "ns2/m2"]);
  });
});

describe("tcpdump prints what formatSummary prints", () => {
  it("for TCP, UDP, ICMP, ICMPv6 and ARP frames", async () => {
    const frames = [
      buildTcpFrame({
        src: "10.0.0.1",
        dst: "10.0.0.2",
        srcPort: 4242,
        dstPort: 4243,
        flags: TCP_SYN,
        seq: 1,
      }),
      buildTcpFrame({
        src: "10.0.0.1",
        dst: "10.0.0.2",
        srcPort: 4242,
        dstPort: 4243,
        flags: TCP_PSH | TCP_ACK,
        seq: 100,
        ack: 7,
        window: 502,
        payload: Buffer.alloc(10),
      }),
      buildTcpFrame({
        src: "2001:db8::1",
        dst: "2001:db8::2",
        srcPort: 4242,
        dstPort: 4243,
        flags: TCP_FIN | TCP_ACK,
        seq: 100,
        ack: 7,
        window: 502,
      }),
      buildTcpFrame({
        src: "10.0.0.1",
        dst: "10.0.0.2",
        srcPort: 4242,
        dstPort: 4243,
        flags: TCP_RST,
        seq: 4_000_000_000,
        window: 0,
      }),
      buildUdpFrame({
        src: "10.0.0.1",
        dst: "10.0.0.2",
        srcPort: 40000,
        dstPort: 40001,
        payload: Buffer.alloc(20),
      }),
      buildUdpFrame({
        src: "fd00::1",
        dst: "fd00::2",
        srcPort: 40000,
        dstPort: 40001,
        payload: Buffer.alloc(3),
      }),
      buildIcmpEchoFrame({ src: "10.0.0.1", dst: "10.0.0.2", id: 7, seq: 3 }),
      buildIcmpEchoFrame({ src: "10.0.0.2", dst: "10.0.0.1", id: 7, seq: 3, reply: true }),
      buildIcmpEchoFrame({ src: "2001:db8::1", dst: "2001:db8::2", id: 7, seq: 3 }),
      buildIcmpEchoFrame({ src: "2001:db8::2", dst: "2001:db8::1", id: 7, seq: 3, reply: true }),
      buildArpFrame({ senderMac: "02:00:00:00:00:01", senderIp: "10.0.0.1", targetIp: "10.0.0.2" }),
      buildArpFrame({
        op: 2,
        senderMac: "02:00:00:00:00:02",
        senderIp: "10.0.0.2",
        targetMac: "02:00:00:00:00:01",
        targetIp: "10.0.0.1",
      }),
      buildUdpFrame({
        src: "10.0.0.1",
        dst: "10.0.0.2",
        srcPort: 40000,
        dstPort: 40001,
        vlans: [{ vid: 100, pcp: 3 }],
      }),
    ];
    const file = join(dir, "inner.pcap");
    writeFileSync(file, encodePcap(frames.map((data) => ({ seconds: 0, nanos: 0, data }))));
    // -t: no timestamps, -S: absolute sequence numbers (formatSummary does not track connections).
    const { stdout } = await run("tcpdump", ["-n", "-t", "-S", "-r", file]);
    const theirs = stdout.trimEnd().split("\n");
    // Without -e tcpdump does not print VLAN tags; formatSummary always does.
    const ours = frames.map((f) => formatSummary(decodeFrame(f)).replace(/^(vlan \d+, p \d+, )+/, ""));
    expect(ours).toEqual(theirs);
  });
});

describe("our readers read what the tools wrote", () => {
  // An od-style hex dump of two frames for text2pcap.
  const frames = [
    buildUdpFrame({
      src: "10.1.0.1",
      dst: "10.1.0.2",
      srcPort: 5000,
      dstPort: 5001,
      payload: Buffer.from("from text2pcap"),
    }),
    buildTransportFrame(
      { src: "192.0.2.1", dst: "192.0.2.2" },
      buildErspan2({ sessionId: 5, index: 6, inner }),
    ),
  ];
  const dump = frames
    .map((f) =>
      Array.from({ length: Math.ceil(f.length / 16) }, (_, i) => {
        const line = [...f.subarray(i * 16, i * 16 + 16)]
          .map((x) => x.toString(16).padStart(2, "0"))
          .join(" ");
        return `${(i * 16).toString(16).padStart(6, "0")} ${line}`;
      }).join("\n"),
    )
    .join("\n\n");

  it.each(["pcap", "pcapng"])("text2pcap -F %s", async (format) => {
    const input = join(dir, "dump.txt");
    const out = join(dir, `text2pcap.${format}`);
    writeFileSync(input, `${dump}\n`);
    await run("text2pcap", ["-q", "-F", format, input, out]);
    const bytes = readFileSync(out);
    const packets = format === "pcap" ? decodePcap(bytes) : decodePcapng(bytes);
    expect(packets.ok).toBe(true);
    if (!packets.ok) return;
    expect(packets.error).toBeUndefined();
    const data =
      "records" in packets ? packets.records.map((r) => r.data) : packets.packets.map((p) => p.data);
    expect(data).toEqual(frames);
  });

  it("tcpdump -w on loopback", async () => {
    const port = 40000 + Math.floor(Math.random() * 20000);
    const file = join(dir, "lo.pcap");
    const count = 3;
    // -Z root: keep root so tcpdump can write into our private temp directory; -U: write each packet at once.
    const td = spawn(
      "tcpdump",
      [
        "-i",
        "lo",
        "-n",
        "-U",
        "-Z",
        "root",
        "-c",
        String(count),
        "-w",
        file,
        "udp",
        "and",
        "dst",
        "port",
        String(port),
      ],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    const exited = new Promise<number | null>((resolve) => td.on("exit", resolve));
    let stderr = "";
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(
        () => reject(new Error(`tcpdump did not start listening: ${stderr}`)),
        15_000,
      );
      td.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes("listening on")) {
          clearTimeout(deadline);
          resolve();
        }
      });
      td.on("exit", () => {
        clearTimeout(deadline);
        reject(new Error(`tcpdump exited: ${stderr}`));
      });
    });
    const sock = createSocket("udp4");
    try {
      // Send until tcpdump has its count, bounded in number and time.
      for (let i = 0; i < 50 && td.exitCode === null; i++) {
        await new Promise<void>((resolve, reject) =>
          sock.send(`ovntap-probe-${i}`, port, "127.0.0.1", (e) => (e ? reject(e) : resolve())),
        );
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      sock.close();
    }
    const code = await Promise.race([
      exited,
      new Promise<string>((r) => setTimeout(() => r("timeout"), 10_000)),
    ]);
    if (code === "timeout") td.kill("SIGTERM");
    expect(code).toBe(0);

    const r = decodePcap(readFileSync(file));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.error).toBeUndefined();
    expect(r.header.linkType).toBe(1);
    expect(r.records.length).toBe(count);
    for (const rec of r.records) {
      expect(rec.seconds).toBeGreaterThan(1_600_000_000);
      const f = decodeFrame(rec.data, r.header.linkType);
      expect(f.ok && f.l4?.protocol === "udp" && f.l4.dstPort).toBe(port);
      expect(f.ok && f.l4?.payload.toString()).toMatch(/^ovntap-probe-\d+$/);
      expect(f.ok && formatSummary(f)).toMatch(
        new RegExp(`^IP 127\\.0\\.0\\.1\\.\\d+ > 127\\.0\\.0\\.1\\.${port}: UDP, length \\d+$`),
      );
    }
  });
});
