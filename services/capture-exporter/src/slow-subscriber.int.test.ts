/**
 * A subscriber that stops reading does not slow the exporter or the other subscribers: NATS
 * buffers per connection (and cuts off the slow one), the exporter never waits on it. The stalled
 * subscriber is a raw TCP connection speaking the NATS protocol that subscribes and then never
 * reads again.
 */
import { connect as tcpConnect } from "node:net";
import type { Socket } from "node:net";
import { join } from "node:path";
import { captureSubject } from "@ovntap/contracts";
import { waitFor } from "@ovntap/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createExporter } from "./exporter.js";
import { FileReplaySource } from "./file-source.js";
import { expectedRecords, innerFrames, tunnelFrame, writePcap } from "./testing/frames.js";
import { NODE, NS, startHarness } from "./testing/harness.js";
import type { Harness } from "./testing/harness.js";

let h: Harness;
beforeAll(async () => {
  // A small per-connection buffer, so the server gives up on the stalled subscriber early.
  h = await startHarness({ natsConfig: 'max_pending: 2097152\nwrite_deadline: "2s"\n' });
});
afterAll(async () => {
  await h?.stop();
});

/** Subscribes over a raw socket, waits for the server's PONG, then stops reading. */
async function stalledSubscriber(
  url: string,
  subject: string,
): Promise<{ socket: Socket; read: () => string }> {
  const u = new URL(url);
  const socket = tcpConnect(Number(u.port), u.hostname);
  let text = "";
  socket.setEncoding("latin1");
  socket.on("data", (d: string) => (text += d));
  socket.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  await waitFor(() => text.startsWith("INFO "), { what: "the server's INFO", timeoutMs: 5_000 });
  socket.write(
    `CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1,"name":"stalled"}\r\nSUB ${subject} 1\r\nPING\r\n`,
  );
  await waitFor(() => text.includes("PONG"), { what: "the server's PONG", timeoutMs: 5_000 });
  socket.pause();
  return { socket, read: () => text };
}

describe("a subscriber that stops reading", () => {
  it("stalls neither the exporter nor the other subscriber", async () => {
    await h.recordMirror({ name: "bulk", tunnels: [{ type: "gre", index: 5 }] });
    // 30 000 frames of ~1 KB: far more than the socket buffers and the server's 2 MiB per connection.
    const frames = innerFrames(30_000).map((f) => Buffer.concat([f, Buffer.alloc(1000 - f.length, 0x5a)]));
    const path = join(h.dir, "bulk.pcap");
    await writePcap(
      path,
      frames.map((f, i) => ({ frame: tunnelFrame({ type: "gre", key: 5 }, f), sec: 10, nsec: i })),
    );
    const subject = captureSubject(NS, "bulk", NODE);
    const stalled = await stalledSubscriber(h.nats.url, subject);
    const reader = await h.subscribe(subject);
    const exporter = createExporter({
      nc: h.natsClient.nc,
      store: h.store,
      logger: h.logger,
      config: h.config(),
      source: new FileReplaySource({ path }),
    });
    await exporter.start();
    await exporter.sourceDone();
    await waitFor(() => reader.packets() === frames.length, {
      what: "every frame at the subscriber that reads",
      timeoutMs: 60_000,
    });
    // Buffer#equals: a deep comparison of 30 MB element by element would take minutes.
    const received = Buffer.concat(reader.batches.map((b) => b.payload));
    expect(received.equals(expectedRecords(frames.map((inner, i) => ({ inner, sec: 10, nsec: i }))))).toBe(
      true,
    );
    const c = exporter.pipeline.counters();
    expect(c.drops).toEqual({ queue_full: 0, publish_error: 0 });
    await exporter.stop();

    // The stalled connection really fell behind: reading now, it gets a fraction of the batches
    // before the server's cut-off (slow consumer) ends it.
    stalled.socket.resume();
    const ended = new Promise<void>((resolve) => stalled.socket.once("close", () => resolve()));
    await Promise.race([ended, new Promise((r) => setTimeout(r, 3_000))]);
    const got = stalled.read().split("HMSG ").length - 1;
    expect(got).toBeLessThan(reader.batches.length);
    stalled.socket.destroy();
  });
});
