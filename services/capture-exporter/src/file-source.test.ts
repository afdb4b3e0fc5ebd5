/**
 * File replay: every record of pcap (ns and µs, both byte orders) and pcapng files reaches the
 * sink with its bytes, lengths and timestamp; records larger than the read buffer; damaged files.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CaptureFormatError, encodePcap, PcapngFileWriter } from "@ovntap/packet";
import { pcapToBigEndian } from "@ovntap/packet/internal";
import { waitFor } from "@ovntap/lab";
import { afterAll, describe, expect, it } from "vitest";
import { FileReplaySource } from "./file-source.js";
import type { FrameSink } from "./source.js";

const dir = mkdtempSync(join(tmpdir(), "ovntap-file-source-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Seen {
  data: string;
  orig: number;
  sec: number;
  nsec: number;
}

class Collect implements FrameSink {
  linkType = -1;
  readonly seen: Seen[] = [];
  ingest(b: Buffer, start: number, end: number, origLen: number, sec: number, nsec: number): void {
    this.seen.push({ data: b.toString("hex", start, end), orig: origLen, sec, nsec });
  }
  writable(): boolean {
    return true;
  }
  whenWritable(): Promise<void> {
    return Promise.resolve();
  }
}

const records = Array.from({ length: 50 }, (_, i) => ({
  seconds: 1_700_000_000 + i,
  nanos: i * 1000,
  data: Buffer.alloc(20 + i * 37, i),
  originalLength: 20 + i * 37 + (i % 3),
}));
const expected = records.map((r) => ({
  data: r.data.toString("hex"),
  orig: r.originalLength,
  sec: r.seconds,
  nsec: r.nanos,
}));

async function replay(path: string, chunkBytes?: number): Promise<Collect> {
  const sink = new Collect();
  const r = await new FileReplaySource({ path, ...(chunkBytes ? { chunkBytes } : {}) }).run(sink);
  expect(r.frames).toBe(sink.seen.length);
  return sink;
}

describe("FileReplaySource", () => {
  it("delivers every record of ns and µs pcap files, little- and big-endian, across small reads", async () => {
    for (const precision of ["ns", "us"] as const) {
      const le = encodePcap(records, { precision, linkType: 1 });
      const lePath = join(dir, `le-${precision}.pcap`);
      writeFileSync(lePath, le);
      const bePath = join(dir, `be-${precision}.pcap`);
      writeFileSync(bePath, pcapToBigEndian(le));
      for (const path of [lePath, bePath]) {
        for (const chunk of [undefined, 64, 1000]) {
          const sink = await replay(path, chunk);
          expect(sink.linkType).toBe(1);
          expect(sink.seen).toEqual(expected);
        }
      }
    }
  });

  it("delivers pcapng files with the interface's link type", async () => {
    const path = join(dir, "x.pcapng");
    const w = await PcapngFileWriter.create(path);
    const ifc = await w.addInterface({ name: "shop/web", linkType: 1 });
    for (const r of records) await w.write(ifc, r);
    await w.close();
    const sink = await replay(path);
    expect(sink.linkType).toBe(1);
    expect(sink.seen).toEqual(expected);
  });

  it("refuses a file cut inside a record, after delivering what came before", async () => {
    const whole = encodePcap(records.slice(0, 3), { linkType: 1 });
    const path = join(dir, "cut.pcap");
    writeFileSync(path, whole.subarray(0, whole.length - 5));
    const sink = new Collect();
    await expect(new FileReplaySource({ path }).run(sink)).rejects.toBeInstanceOf(CaptureFormatError);
    expect(sink.seen).toEqual(expected.slice(0, 2));
  });

  it("waits for a sink that is not writable instead of overrunning it", async () => {
    const path = join(dir, "wait.pcap");
    writeFileSync(path, encodePcap(records, { linkType: 1 }));
    const sink = new Collect();
    let open = false;
    let release: (() => void) | undefined;
    sink.writable = () => open;
    sink.whenWritable = () => new Promise<void>((r) => (release = r));
    const run = new FileReplaySource({ path }).run(sink);
    await waitFor(() => release !== undefined, { what: "the source to wait", timeoutMs: 10_000 });
    expect(sink.seen).toEqual([]);
    open = true;
    release!();
    await run;
    expect(sink.seen).toEqual(expected);
  });
});
