/**
 * `ovntap decode` and `ovntap decap` in-process, on capture files written by @ovntap/packet: what
 * they print and write, how they stream, and every way they refuse (usage: exit 2, before reading
 * anything; an unreadable or damaged file: exit 1, after what could be read).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildArpFrame,
  buildErspan2,
  buildErspan3,
  buildGre,
  buildIcmpEchoFrame,
  buildIpv4,
  buildTcpFrame,
  buildTransportFrame,
  decapsulate,
  decodePacketRecord,
  decodePcap,
  decodePcapng,
  encodePcap,
  encodePcapngInterface,
  encodePcapngPacket,
  encodePcapngSectionHeader,
} from "@ovntap/packet";
import type { PacketRecord } from "@ovntap/packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./cli.js";
import { EXIT } from "./errors.js";
import { capture } from "./testing/fixtures.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ovntap-cli-decode-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const v4 = { src: "198.51.100.1", dst: "198.51.100.2" };
const tcp = buildTcpFrame({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 40000, dstPort: 443 });
const icmp = buildIcmpEchoFrame({ src: "10.0.0.2", dst: "10.0.0.1", id: 1, seq: 2 });
const arp = buildArpFrame({ senderMac: "02:00:00:00:00:01", senderIp: "10.0.0.1", targetIp: "10.0.0.9" });
const frames = [
  buildTransportFrame(v4, buildGre({ key: 99, inner: tcp })),
  buildTransportFrame(v4, buildErspan2({ sessionId: 700, inner: icmp })),
  buildTransportFrame(
    v4,
    buildErspan3({ sessionId: 9, platform: { id: 3, infoHigh: 1, infoLow: 2 }, inner: arp }),
  ),
  arp,
  buildTransportFrame(v4, buildGre({ key: 1, inner: tcp })).subarray(0, 40),
];
const cutFrom = buildTransportFrame(v4, buildGre({ key: 1, inner: tcp })).length;
// The last one is a snaplen cut: the file says how long it was on the wire.
const records = frames.map((data, i) => ({
  seconds: 1_700_000_000,
  nanos: i * 1000,
  data,
  ...(i === 4 ? { originalLength: cutFrom } : {}),
}));
const pcap = encodePcap(records);

function file(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

async function run(argv: string[], stdin?: AsyncIterable<Buffer>) {
  const c = capture();
  const code = await runCli(argv, { ...c.io, env: {}, cwd: dir, ...(stdin ? { stdin } : {}) });
  return { code, out: c.out(), err: c.err() };
}

const jsonLines = (out: string): PacketRecord[] =>
  out
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as PacketRecord);

describe("ovntap decode", () => {
  it("--json prints one record per packet, in order, each its own JSON object", async () => {
    const r = await run(["decode", file("mixed.pcap", pcap), "--json"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(EXIT.OK);
    const lines = r.out.trimEnd().split("\n");
    expect(lines.length).toBe(frames.length);
    expect(jsonLines(r.out)).toEqual([
      {
        n: 1,
        encap: "gre",
        key: 99,
        session: null,
        src: "10.0.0.1",
        dst: "10.0.0.2",
        proto: "tcp",
        sport: 40000,
        dport: 443,
        len: frames[0]!.length,
        error: null,
      },
      {
        n: 2,
        encap: "erspan2",
        key: null,
        session: 700,
        src: "10.0.0.2",
        dst: "10.0.0.1",
        proto: "icmp",
        sport: null,
        dport: null,
        len: frames[1]!.length,
        error: null,
      },
      {
        n: 3,
        encap: "erspan3",
        key: null,
        session: 9,
        src: "10.0.0.1",
        dst: "10.0.0.9",
        proto: "arp",
        sport: null,
        dport: null,
        len: frames[2]!.length,
        error: null,
      },
      {
        n: 4,
        encap: "none",
        key: null,
        session: null,
        src: "10.0.0.1",
        dst: "10.0.0.9",
        proto: "arp",
        sport: null,
        dport: null,
        len: frames[3]!.length,
        error: null,
      },
      {
        n: 5,
        encap: "gre",
        key: null,
        session: null,
        src: "198.51.100.1",
        dst: "198.51.100.2",
        proto: "gre",
        sport: null,
        dport: null,
        len: cutFrom,
        error: "truncated gre",
      },
    ]);
    // The keys in the documented order.
    expect(lines[0]).toMatch(/^\{"n":1,"encap":"gre","key":99,"session":null,"src":"10\.0\.0\.1",/);
  });

  it("prints a tcpdump-style line per packet without --json: the tunnel, then the mirrored packet", async () => {
    const r = await run(["decode", file("lines.pcap", pcap)]);
    expect(r.code).toBe(EXIT.OK);
    const lines = r.out.trimEnd().split("\n");
    expect(lines.length).toBe(frames.length);
    expect(lines[0]).toMatch(
      /^\d\d:\d\d:\d\d\.000000 gre key 99 198\.51\.100\.1 > 198\.51\.100\.2: IP 10\.0\.0\.1\.40000 > 10\.0\.0\.2\.443: Flags/,
    );
    expect(lines[1]).toMatch(
      / erspan2 session 700 198\.51\.100\.1 > 198\.51\.100\.2: IP 10\.0\.0\.2 > 10\.0\.0\.1: ICMP echo request, id 1, seq 2/,
    );
    expect(lines[2]).toMatch(/ erspan3 session 9 .*: ARP, Request who-has 10\.0\.0\.9 tell 10\.0\.0\.1/);
    expect(lines[3]).toMatch(/\.000003 ARP, Request who-has 10\.0\.0\.9 tell 10\.0\.0\.1/);
    expect(lines[4]).toMatch(/IP 198\.51\.100\.1 > 198\.51\.100\.2: GRE, length 6 \[truncated gre\]$/);
  });

  it("reads pcapng and standard input ('-'), printing packets as the bytes arrive", async () => {
    const ng = Buffer.concat([
      encodePcapngSectionHeader(),
      encodePcapngInterface({ name: "sink" }),
      ...records.map((r) => encodePcapngPacket(0, r)),
    ]);
    const fromFile = await run(["decode", file("mixed.pcapng", ng), "--json"]);
    expect(fromFile.code).toBe(EXIT.OK);

    // Standard input in small pieces; the second half only comes once the first half's records are out.
    let seenBeforeSecondHalf = "";
    const c = capture();
    const half = Math.floor(ng.length / 2);
    async function* stdin() {
      for (let i = 0; i < half; i += 7) yield ng.subarray(i, Math.min(half, i + 7));
      await new Promise((r) => setTimeout(r, 10));
      seenBeforeSecondHalf = c.out();
      for (let i = half; i < ng.length; i += 7) yield ng.subarray(i, i + 7);
    }
    const code = await runCli(["decode", "-", "--json"], { ...c.io, env: {}, cwd: dir, stdin: stdin() });
    expect(code).toBe(EXIT.OK);
    expect(c.out()).toBe(fromFile.out);
    expect(seenBeforeSecondHalf.length).toBeGreaterThan(0);
    expect(fromFile.out.startsWith(seenBeforeSecondHalf)).toBe(true);
  });

  it("decodes a file far larger than one read, record by record", async () => {
    const many = Array.from({ length: 30_000 }, (_, i) => ({ seconds: 1, nanos: i, data: frames[i % 4]! }));
    const r = await run(["decode", file("many.pcap", encodePcap(many)), "--json"]);
    expect(r.code).toBe(EXIT.OK);
    const out = jsonLines(r.out);
    expect(out.length).toBe(many.length);
    expect(out[29_999]).toEqual(
      decodePacketRecord(frames[29_999 % 4]!, 1, frames[29_999 % 4]!.length, 30_000),
    );
  });

  it("exits 1 for a file that is not a capture, is damaged, or is not there — after printing what it could", async () => {
    const junk = await run(["decode", file("junk.pcap", Buffer.from("not a capture file at all"))]);
    expect(junk).toMatchObject({ code: EXIT.FAILED, out: "" });
    expect(junk.err).toBe(
      "ovntap decode: junk.pcap is not a pcap or pcapng file\n".replace("junk.pcap", join(dir, "junk.pcap")),
    );

    const cut = await run(["decode", file("cut.pcap", pcap.subarray(0, pcap.length - 3)), "--json"]);
    expect(cut.code).toBe(EXIT.FAILED);
    expect(jsonLines(cut.out).length).toBe(frames.length - 1);
    expect(cut.err).toMatch(/ends inside a pcap record at byte \d+ \(a cut file\?\) \(after 4 packets\)\n$/);

    const missing = await run(["decode", "nope.pcap"]);
    expect(missing.code).toBe(EXIT.FAILED);
    expect(missing.err).toMatch(/^ovntap decode: cannot read nope\.pcap: .*ENOENT/);
  });

  it.each([
    [["decode"], /needs the capture FILE/],
    [["decode", "a.pcap", "b.pcap"], /takes one FILE, got "a\.pcap" "b\.pcap"/],
    [["decode", "a.pcap", "-w", "x"], /unknown flag -w for 'ovntap decode'/],
    [["decode", "a.pcap", "--nats", "nats://x"], /unknown flag --nats for 'ovntap decode'/],
  ])("usage: %j", async (argv, message) => {
    const r = await run(argv);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.err).toMatch(message);
    expect(r.err).toContain("Run 'ovntap decode --help' for usage.");
  });
});

describe("ovntap decap", () => {
  it("writes the mirrored frames and accounts for every packet on stderr", async () => {
    const input = file("in.pcap", pcap);
    const r = await run(["decap", input, "-w", "inner.pcap"]);
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toBe("");
    expect(r.err.split("\n")).toEqual([
      `ovntap decap: 5 packets read, 3 written to inner.pcap (pcap, Ethernet); unwrapped: GRE 1, ERSPAN II 1, ERSPAN III 1`,
      "ovntap decap: not GRE/ERSPAN, left out: 1 (not-ip ethernet 1)",
      "ovntap decap: malformed or not unwrapped, left out: 1 (truncated gre 1)",
      "",
    ]);
    const out = decodePcap(readFileSync(join(dir, "inner.pcap")));
    if (!out.ok) throw new Error("unreadable output");
    expect(out.records.map((rec) => rec.data)).toEqual(
      frames.slice(0, 3).map((f) => {
        const d = decapsulate(f);
        return d.ok ? d.inner : undefined;
      }),
    );
    expect(out.records.map((rec) => rec.nanos)).toEqual([0, 1000, 2000]);
  });

  it("--key and --session keep one tunnel, naming what they left out", async () => {
    const input = file("tunnels.pcap", pcap);
    const k = await run(["decap", input, "-w", "key.pcap", "--key", "99"]);
    expect(k.code).toBe(EXIT.OK);
    expect(k.err).toContain("1 written to key.pcap");
    expect(k.err).toContain("other tunnels, left out: 2 (not GRE key 99)");
    const s = await run(["decap", input, "-w", "session.pcap", "--session", "9"]);
    expect(s.err).toContain("1 written to session.pcap");
    expect(s.err).toContain("other tunnels, left out: 2 (not ERSPAN session 9)");
    const none = await run(["decap", input, "-w", "none.pcap", "--session", "5"]);
    expect(none.code).toBe(EXIT.OK);
    expect(none.err).toContain("nothing written: no packet of that tunnel");
  });

  it("writes pcapng for an OUT ending in .pcapng or with --pcapng, and keeps mixed link types there", async () => {
    const ip = buildIpv4({ src: "10.1.0.1", dst: "10.1.0.2", protocol: 17, payload: Buffer.alloc(8) });
    const mixed = encodePcap(
      [frames[0]!, buildTransportFrame(v4, buildGre({ key: 3, protocol: 0x0800, inner: ip }))].map(
        (data) => ({
          seconds: 1,
          nanos: 0,
          data,
        }),
      ),
    );
    const input = file("mixed-lt.pcap", mixed);
    const asPcap = await run(["decap", input, "-w", "mixed.pcap"]);
    expect(asPcap.code).toBe(EXIT.FAILED);
    expect(asPcap.err).toContain(
      "1 mirrored frames left out: not Ethernet, and a pcap holds one link type; write pcapng (-w FILE.pcapng or --pcapng) to keep them",
    );
    for (const argv of [
      ["-w", "mixed.pcapng"],
      ["-w", "mixed.out", "--pcapng"],
    ]) {
      const r = await run(["decap", input, ...argv]);
      expect(r.code).toBe(EXIT.OK);
      expect(r.err).toContain("2 written to");
      expect(r.err).toContain("(pcapng, Ethernet + raw IP)");
      const ng = decodePcapng(readFileSync(join(dir, argv[1]!)));
      expect(ng.ok && ng.interfaces.map((i) => i.linkType)).toEqual([1, 101]);
    }
  });

  it("'-w -' writes the capture to standard output, '-' reads standard input", async () => {
    const chunks: Buffer[] = [];
    let err = "";
    const code = await runCli(["decap", "-", "-w", "-"], {
      stdout: { write: (c: string | Uint8Array) => chunks.push(Buffer.from(c)) },
      stderr: { write: (s: string | Uint8Array) => (err += String(s)) },
      env: {},
      cwd: dir,
      stdin: (async function* () {
        yield pcap.subarray(0, 100);
        await new Promise((r) => setTimeout(r, 1));
        yield pcap.subarray(100);
      })(),
    });
    expect(code).toBe(EXIT.OK);
    expect(err).toContain("3 written to standard output");
    const out = decodePcap(Buffer.concat(chunks));
    expect(out.ok && out.records.length).toBe(3);
  });

  it("exits 1 for an input that is no capture (writing nothing) or is cut (writing what came before)", async () => {
    const junk = await run([
      "decap",
      file("junk2.pcap", Buffer.from("GIF89a, not a capture")),
      "-w",
      "junk-out.pcap",
    ]);
    expect(junk.code).toBe(EXIT.FAILED);
    expect(junk.err).toMatch(/junk2\.pcap is not a pcap or pcapng file\n$/);
    expect(existsSync(join(dir, "junk-out.pcap"))).toBe(false);

    const cut = await run(["decap", file("cut2.pcap", pcap.subarray(0, 200)), "-w", "cut-out.pcap"]);
    expect(cut.code).toBe(EXIT.FAILED);
    expect(cut.err).toMatch(
      /ends inside a pcap record at byte \d+ \(a cut file\?\); the packets before it were written\n$/,
    );
    const out = decodePcap(readFileSync(join(dir, "cut-out.pcap")));
    expect(out.ok && out.records.length).toBe(1);

    const unwritable = await run(["decap", file("ok.pcap", pcap), "-w", "no/such/dir/out.pcap"]);
    expect(unwritable.code).toBe(EXIT.FAILED);
    expect(unwritable.err).toMatch(/^ovntap decap: cannot write no\/such\/dir\/out\.pcap: .*ENOENT/);

    const missing = await run(["decap", "nope.pcap", "-w", "x.pcap"]);
    expect(missing.code).toBe(EXIT.FAILED);
    expect(missing.err).toMatch(/^ovntap decap: cannot read nope\.pcap: .*ENOENT/);
  });

  it.each([
    [["decap", "in.pcap"], /needs -w FILE/],
    [["decap", "-w", "out.pcap"], /needs the capture FILE/],
    [["decap", "in.pcap", "-w", "in.pcap"], /-w in\.pcap: that is the input file/],
    [
      ["decap", "in.pcap", "-w", "o.pcap", "--key", "1", "--session", "2"],
      /--key and --session select one tunnel each/,
    ],
    [["decap", "in.pcap", "-w", "o.pcap", "--session", "1024"], /--session: must be 0\.\.1023/],
    [["decap", "in.pcap", "-w", "o.pcap", "--key", "4294967296"], /--key: must be 0\.\.4294967295/],
    [["decap", "in.pcap", "-w", "o.pcap", "--key", "0x10"], /--key: "0x10" is not an integer/],
    [["decap", "in.pcap", "-w", "o.pcap", "--json"], /unknown flag --json for 'ovntap decap'/],
  ])("usage: %j", async (argv, message) => {
    const r = await run(argv);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.err).toMatch(message);
  });
});
