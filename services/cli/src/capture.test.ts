/**
 * The capture verb without NATS: flags refused before anything connects (a bad --filter pointing at
 * its token), batch payloads walked and their damage described, the pcap and pcapng writers over an
 * in-memory sink (read back with the packet library), a stream sink's backpressure, the counter and
 * summary lines.
 */
import { Writable } from "node:stream";
import type { CaptureBatchHeader } from "@ovntap/contracts";
import { buildTcpFrame, decodePcap, decodePcapng, encodePcapRecord } from "@ovntap/packet";
import { describe, expect, it } from "vitest";
import {
  counterLine,
  describeMirror,
  mirrorCaptureWildcard,
  newStats,
  pcapngOutput,
  pcapOutput,
  printOutput,
  splitRecords,
  streamSink,
  summaryLine,
  timeOfDay,
} from "./capture.js";
import type { ByteSink } from "./capture.js";
import { runCli } from "./cli.js";
import { EXIT } from "./errors.js";
import { capture, makeSpec } from "./testing/fixtures.js";

async function usage(argv: string[]): Promise<string> {
  const c = capture();
  // An address nothing listens on: a flag problem must be found before any connection is tried.
  const code = await runCli(["capture", ...argv], { ...c.io, env: { NATS_URL: "nats://127.0.0.1:1" } });
  expect(code, c.err()).toBe(EXIT.USAGE);
  return c.err();
}

describe("ovntap capture: flags", () => {
  it.each<[string[], RegExp]>([
    [[], /ovntap capture: needs the mirror's MIRROR/],
    [["a", "b"], /takes one MIRROR/],
    [["Web!"], /MIRROR: /],
    [["web", "-n", "Bad_NS"], /--namespace: /],
    [["web", "--pcapng"], /--pcapng goes with -w FILE/],
    [["web", "-w", ""], /-w\/--write: needs a file name/],
    [["web", "--count", "0"], /--count: must be at least 1/],
    [["web", "--count", "ten"], /--count: "ten" is not an integer/],
    [["web", "--duration", "soon"], /--duration: "soon" is not a duration/],
    [["web", "--duration", "0"], /--duration: must be more than 0/],
    [["web", "--key", "7"], /unknown flag --key for 'ovntap capture'/],
    [["web", "-w"], /-w needs a value|--write needs a value/],
  ])("%j", async (argv, message) => {
    const err = await usage(argv);
    expect(err).toMatch(message);
    expect(err).toContain("Run 'ovntap capture --help' for usage.");
  });

  it("refuses to write a pcap to a terminal", async () => {
    const c = capture();
    const code = await runCli(["capture", "web", "-w", "-"], {
      stdout: { ...c.io.stdout, isTTY: true },
      stderr: c.io.stderr,
      env: { NATS_URL: "nats://127.0.0.1:1" },
    });
    expect(code).toBe(EXIT.USAGE);
    expect(c.err()).toContain("-w -: standard output is a terminal; pipe it");
  });

  it("a bad --filter says what is wrong and points at the token", async () => {
    const err = await usage(["web", "--filter", "tcp and port http"]);
    expect(err).toContain("ovntap capture: --filter: 'http' is not a port number");
    expect(err).toContain("(at character 14)");
    expect(err).toContain("\n  tcp and port http\n               ^^^^\n");
  });

  it("has its help page and a line in the main help", async () => {
    const c = capture();
    expect(await runCli(["capture", "--help"], c.io)).toBe(EXIT.OK);
    expect(c.out()).toContain("Usage:\n  ovntap capture MIRROR");
    expect(c.out()).toContain("--pcapng");
    const m = capture();
    await runCli(["--help"], m.io);
    expect(m.out()).toMatch(/\n {2}capture +write a mirror's packets/);
  });
});

const T = 1_760_000_000;
const frame = (i: number) =>
  buildTcpFrame({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1000 + i, dstPort: 80 });
const payload = (n: number) =>
  Buffer.concat(
    Array.from({ length: n }, (_, i) => encodePcapRecord({ seconds: T + i, nanos: i, data: frame(i) })),
  );

describe("splitRecords", () => {
  it("walks every record of a payload", () => {
    const { records, error } = splitRecords(payload(3));
    expect(error).toBeUndefined();
    expect(records.map((r) => [r.seconds, r.nanos, r.originalLength])).toEqual([
      [T, 0, frame(0).length],
      [T + 1, 1, frame(1).length],
      [T + 2, 2, frame(2).length],
    ]);
    expect(records.map((r) => Buffer.from(r.data))).toEqual([0, 1, 2].map(frame));
  });

  it("an empty payload has no records and no error", () => {
    expect(splitRecords(new Uint8Array(0))).toEqual({ records: [], error: undefined });
  });

  it("keeps the records before damage and says what the damage is", () => {
    const p = payload(2);
    expect(splitRecords(p.subarray(0, p.length - 1))).toMatchObject({
      records: [{ seconds: T }],
      error: `record 2 says ${frame(1).length} bytes but ${frame(1).length - 1} remain`,
    });
    expect(splitRecords(Buffer.concat([p, Buffer.alloc(5)])).error).toBe("5 stray bytes after record 2");
    const bad = Buffer.from(p);
    bad.writeUInt32LE(1_000_000_000, 4);
    expect(splitRecords(bad)).toEqual({
      records: [],
      error: "record 1 has ts_nsec 1000000000 (over 999999999)",
    });
  });

  it("never throws on arbitrary bytes", () => {
    for (let n = 0; n < 200; n++) {
      const junk = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
      expect(() => splitRecords(junk)).not.toThrow();
    }
  });
});

function memorySink(): ByteSink & { bytes(): Buffer; closed: boolean } {
  const chunks: Buffer[] = [];
  return {
    closed: false,
    write(c) {
      chunks.push(Buffer.from(c));
      return Promise.resolve();
    },
    flush: () => Promise.resolve(),
    close() {
      this.closed = true;
      return Promise.resolve();
    },
    bytes: () => Buffer.concat(chunks),
  };
}

const header = (over: Partial<CaptureBatchHeader> = {}): CaptureBatchHeader => ({
  namespace: "shop",
  mirror: "web",
  node: "node-1",
  linkType: 1,
  snaplen: 65535,
  count: 1,
  firstNs: "0",
  lastNs: "0",
  drops: 0,
  sequence: 0,
  encap: "gre",
  key: 7,
  ...over,
});

describe("writers", () => {
  it("pcap: the header takes the first batch's link type; another link type is skipped and reported", async () => {
    const sink = memorySink();
    const skipped: string[] = [];
    const out = pcapOutput(sink, (h, lt) => skipped.push(`${h.linkType} in ${lt}`));
    const p = payload(2);
    const { records } = splitRecords(p);
    expect(await out.write(header({ linkType: 101 }), records, p)).toBe(2);
    expect(await out.write(header({ linkType: 1 }), records.slice(0, 1), undefined)).toBe(0);
    expect(await out.write(header({ linkType: 101 }), records.slice(1), undefined)).toBe(1);
    await out.close();
    expect(sink.closed).toBe(true);
    expect(skipped).toEqual(["1 in 101"]);
    const pcap = decodePcap(sink.bytes());
    if (!pcap.ok) throw new Error(pcap.reason);
    expect(pcap.header).toMatchObject({ linkType: 101, precision: "ns", byteOrder: "le", snaplen: 262144 });
    expect(pcap.records.map((r) => [r.seconds, r.nanos, Buffer.from(r.data)])).toEqual([
      [T, 0, frame(0)],
      [T + 1, 1, frame(1)],
      [T + 1, 1, frame(1)],
    ]);
  });

  it("pcap: a capture that ends empty is still a valid Ethernet pcap", async () => {
    const sink = memorySink();
    await pcapOutput(sink, () => {}).close();
    expect(decodePcap(sink.bytes())).toMatchObject({ ok: true, records: [], header: { linkType: 1 } });
  });

  it("pcapng: an interface per link type of the mirror, described once", async () => {
    const sink = memorySink();
    let asked = 0;
    const out = await pcapngOutput(
      sink,
      { namespace: "shop", name: "web" },
      () => {
        asked++;
        return Promise.resolve({ description: '{"name":"web"}', comment: "ovntap mirror shop/web" });
      },
      "ovntap test",
    );
    const { records } = splitRecords(payload(2));
    await out.write(header(), records, undefined);
    await out.write(header({ linkType: 101 }), records.slice(0, 1), undefined);
    await out.write(header(), records.slice(1), undefined);
    await out.close();
    expect(asked).toBe(1);
    const png = decodePcapng(sink.bytes());
    if (!png.ok) throw new Error(png.reason);
    expect(png.sections[0]?.userAppl).toBe("ovntap test");
    expect(png.interfaces.map((i) => [i.name, i.linkType, i.description, i.comments, i.tsresol])).toEqual([
      ["shop/web", 1, '{"name":"web"}', ["ovntap mirror shop/web"], 9],
      ["shop/web", 101, '{"name":"web"}', ["ovntap mirror shop/web"], 9],
    ]);
    expect(png.packets.map((p) => [p.interfaceId, p.seconds, p.nanos])).toEqual([
      [0, T, 0],
      [0, T + 1, 1],
      [1, T, 0],
      [0, T + 1, 1],
    ]);
  });

  it("print: one summary line per packet with tcpdump's time of day", async () => {
    let text = "";
    const out = printOutput((t) => (text += t));
    await out.write(header(), splitRecords(payload(2)).records, undefined);
    expect(text.split("\n")).toEqual([
      `${timeOfDay(T, 0)} IP 10.0.0.1.1000 > 10.0.0.2.80: Flags [P.], seq 0, ack 0, win 65535, length 0`,
      `${timeOfDay(T + 1, 1)} IP 10.0.0.1.1001 > 10.0.0.2.80: Flags [P.], seq 0, ack 0, win 65535, length 0`,
      "",
    ]);
    expect(timeOfDay(T, 123_456_789)).toMatch(/^\d\d:\d\d:\d\d\.123456$/);
  });

  it("stream: waits for drain when the stream is full, unless the capture is interrupted", async () => {
    const got: Buffer[] = [];
    let next: (() => void) | undefined;
    const slow = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, cb) {
        got.push(Buffer.from(chunk));
        next = cb;
      },
    });
    const sink = streamSink(slow);
    let done = false;
    const w = sink.write(Buffer.from("abc")).then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false); // over the high-water mark: waiting
    next?.();
    await w;
    expect(done).toBe(true);

    const stop = new AbortController();
    const stalled = new Writable({ highWaterMark: 1, write: () => {} });
    const w2 = streamSink(stalled, stop.signal).write(Buffer.from("xyz"));
    stop.abort();
    await w2; // returns although the stream never drains
    expect(got.map(String)).toEqual(["abc"]);
  });
});

describe("lines", () => {
  it("the counter and the summary name every loss", () => {
    const s = newStats();
    expect(counterLine(s)).toBe("0 packets, 0 bytes, 0 dropped, 0 batches lost");
    expect(summaryLine(s, "interrupted")).toBe(
      "0 packets captured (0 bytes) from 0 nodes; nothing lost (stopped: interrupted)",
    );
    Object.assign(s, {
      packets: 1,
      bytes: 60,
      drops: 2,
      lostBatches: 1,
      localDroppedBatches: 3,
      localDroppedPackets: 9,
      invalidBatches: 1,
      skipped: 4,
      restarts: 2,
      filtered: 5,
    });
    s.nodes.add("node-1");
    expect(counterLine(s)).toBe("1 packet, 60 bytes, 11 dropped, 4 batches lost, 5 filtered out");
    expect(summaryLine(s, "1 packet reached")).toBe(
      "1 packet captured (60 bytes) from 1 node; 2 dropped by the exporters, 1 batch lost in transit (packets unknown), " +
        "3 batches (9 packets) dropped here: the output did not keep up, 1 malformed batch (refused or cut short), " +
        "4 packets of another link type skipped, 2 exporter restarts, 5 filtered out (stopped: 1 packet reached)",
    );
  });

  it("the pcapng comment describes the mirror, or why it cannot", () => {
    const spec = makeSpec({ snaplen: 128 });
    expect(describeMirror("shop", "web", { spec, generation: 3, sink: "10.0.0.9", key: "7" })).toEqual({
      description: JSON.stringify(spec),
      comment: "ovntap mirror shop/web generation 3, both of pods, gre to 10.0.0.9 key 7, snaplen 128",
    });
    expect(describeMirror("shop", "web", { error: "NOT_FOUND" })).toEqual({
      comment: "ovntap mirror shop/web; its spec could not be read: NOT_FOUND",
    });
  });

  it("the subject covers every node of one mirror", () => {
    expect(mirrorCaptureWildcard("shop", "web")).toBe("ovntap.v1.capture.shop.web.*");
    expect(() => mirrorCaptureWildcard("shop", "a.b")).toThrow(/mirror/);
  });
});
