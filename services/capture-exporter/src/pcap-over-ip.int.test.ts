/**
 * PCAP-over-IP against real clients of the protocol: a client that sends nothing (as Wireshark's
 * `-i TCP@host:port`) gets every mirror as a pcap stream tshark reads; a client that sends
 * `MIRROR <ns>/<name>` gets that mirror only; a client that stops reading is dropped from without
 * holding up the others; a client that sends anything else is disconnected.
 */
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { join } from "node:path";
import { waitFor } from "@ovntap/lab";
import { decodePcap } from "@ovntap/packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createExporter } from "./exporter.js";
import { FileReplaySource } from "./file-source.js";
import { innerFrames, tunnelFrame, writePcap } from "./testing/frames.js";
import { startHarness, tsharkFields } from "./testing/harness.js";
import type { Harness } from "./testing/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

interface Client {
  readonly socket: Socket;
  data(): Buffer;
  closed(): boolean;
}

async function client(port: number, line?: string): Promise<Client> {
  const socket = connect(port, "127.0.0.1");
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on("data", (d: Buffer) => chunks.push(d));
  socket.on("close", () => (closed = true));
  socket.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  if (line !== undefined) socket.write(line);
  return { socket, data: () => Buffer.concat(chunks), closed: () => closed };
}

describe("PCAP-over-IP", () => {
  it("streams every mirror, or the one selected, as pcap; drops from a client that stops reading", async () => {
    await h.recordMirror({ name: "web", tunnels: [{ type: "gre", index: 7 }] });
    await h.recordMirror({ name: "db", tunnels: [{ type: "erspan", index: 9 }] });
    // Small frames to both mirrors, then 18 MB of large ones to web: more than the kernel's socket
    // buffers and the client buffer hold for a client that does not read.
    const small = innerFrames(40);
    const big = innerFrames(15_000, 50).map((f) => Buffer.concat([f, Buffer.alloc(1200 - f.length, 1)]));
    const path = join(h.dir, "poip.pcap");
    await writePcap(path, [
      ...small.map((f, i) => ({
        frame: tunnelFrame(i % 2 === 0 ? { type: "gre", key: 7 } : { type: "erspan2", session: 9 }, f),
        sec: 20,
        nsec: i,
      })),
      ...big.map((f, i) => ({ frame: tunnelFrame({ type: "gre", key: 7 }, f), sec: 21, nsec: i })),
    ]);
    // Reads of 256 KiB: between them the event loop serves the clients that do read.
    const source = new FileReplaySource({ path, chunkBytes: 256 * 1024 });
    const exporter = createExporter({
      nc: h.natsClient.nc,
      store: h.store,
      logger: h.logger,
      config: h.config({
        pcapOverIp: { host: "127.0.0.1", port: 0, clientBufferBytes: 2 << 20, maxClients: 8 },
      }),
    });
    await exporter.start();
    const port = exporter.pcapOverIp!.port;
    const all = await client(port); // sends nothing, like Wireshark
    const db = await client(port, "MIRROR shop/db\n");
    const stalled = await client(port, "MIRROR *\n");
    const bogus = await client(port, "GET / HTTP/1.1\r\n\r\n");
    await waitFor(() => all.data().length >= 24 && db.data().length >= 24 && stalled.data().length >= 24, {
      what: "the pcap headers",
      timeoutMs: 5_000,
    });
    await waitFor(() => bogus.closed(), { what: "the bogus client to be disconnected", timeoutMs: 5_000 });
    stalled.socket.pause();

    // The source runs after the clients are in, through the exporter's pipeline.
    await source.run(exporter.pipeline);
    exporter.pipeline.sealAll();
    const total = small.length + big.length;
    const recordsIn = (c: Client) => {
      const r = decodePcap(c.data());
      return r.ok ? r.records : [];
    };
    await waitFor(() => recordsIn(all).length === total, {
      what: "every frame at the default client",
      timeoutMs: 20_000,
    });
    await waitFor(() => recordsIn(db).length === small.length / 2, {
      what: "db's frames",
      timeoutMs: 10_000,
    });

    // tshark reads the default client's stream: every frame of both mirrors (batches of the two
    // mirrors interleave, so compared as a multiset), lengths as mirrored.
    const file = join(h.dir, "all.pcap");
    writeFileSync(file, all.data());
    const rows = await tsharkFields(file, ["frame.len", "ip.src"]);
    expect(rows.length).toBe(total);
    const sorted = (xs: string[]) => [...xs].sort();
    expect(sorted(rows.map((r) => `${r[0]} ${r[1] ?? ""}`))).toEqual(
      sorted(
        [...small, ...big].map((f) => {
          const ipv4 = f.readUInt16BE(12) === 0x0800;
          return `${f.length} ${ipv4 ? `${f[26]}.${f[27]}.${f[28]}.${f[29]}` : ""}`;
        }),
      ),
    );
    expect(recordsIn(db).map((r) => Buffer.from(r.data))).toEqual(small.filter((_, i) => i % 2 === 1));
    // The client that stopped reading was dropped from, not waited for.
    expect(exporter.pcapOverIp!.drops).toBeGreaterThan(0);
    stalled.socket.destroy();
    all.socket.destroy();
    db.socket.destroy();
    await exporter.stop();
  });
});
