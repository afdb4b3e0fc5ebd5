/**
 * The console against real servers (nats-server with JetStream, redis-server), in this process:
 * mirrors recorded in the store as intake and the applier leave them, lifecycle events in the
 * OVNTAP_EVENTS stream, capture batches published as the exporter publishes them. Checked through
 * HTTP as a browser or curl sees it: the state, the live stream, the pcap endpoint's bytes (read
 * back by our reader, by tshark and by tcpdump), and what the server refuses.
 */
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { get as httpGet } from "node:http";
import { join } from "node:path";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { captureSubject, formatCaptureHeaders, MirrorSpec } from "@ovntap/contracts";
import { makeTempDir, removeDir, run, startNatsServer, startRedisServer, waitFor } from "@ovntap/lab";
import type { NatsServer, RedisServer } from "@ovntap/lab";
import { decodeFrame, decodePcap } from "@ovntap/packet";
import { connectNats, connectRedis, createLogger, createMetrics } from "@ovntap/runtime";
import type { NatsClient, RedisClient } from "@ovntap/runtime";
import { createEventLog, createStore, makeEvent, requestHash } from "@ovntap/store";
import type { EventLog, Store } from "@ovntap/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConsole } from "./console.js";
import type { Console, Snapshot } from "./console.js";
import { startConsoleServer } from "./http.js";
import type { ConsoleServer } from "./http.js";
import { batchPayload, icmpFrame } from "./testing/batches.js";

const NS = "shop";
const NODE = "node-1";
const KEPT_EVENTS = 5;

let nats: NatsServer;
let redis: RedisServer;
let natsClient: NatsClient;
let redisClient: RedisClient;
let store: Store;
let events: EventLog;
let c: Console;
let server: ConsoleServer;
let dir: string;
const sequences = new Map<string, number>();

async function recordMirror(name: string, owner: string, key: number) {
  const spec = MirrorSpec.parse({
    name,
    namespace: NS,
    sources: { type: "pods", names: ["pod-a"] },
    direction: "both",
    target: { type: "collector" },
  });
  const requestId = randomUUID();
  const r = await store.applyCreate({
    spec,
    owner,
    requestId,
    requestHash: requestHash({ op: "create", spec }),
  });
  if (r.type !== "created") throw new Error(`create ${name}: ${r.type}`);
  const s = await store.setStatus(NS, name, {
    phase: "Active",
    generation: r.record.generation,
    observedGeneration: r.record.generation,
    sink: "198.51.100.2",
    key,
    tunnels: [{ type: "gre", index: key, direction: "both" }],
    ports: ["pod-a.shop"],
    expiresAt: r.record.expiresAt,
    updatedAt: new Date().toISOString(),
  });
  if (s.type !== "updated") throw new Error(`status ${name}: ${s.type}`);
  return { record: r.record, requestId };
}

/** Publishes one batch as the exporter does: pcap records, the contract's headers. */
function publishBatch(mirror: string, seqs: number[], node = NODE) {
  const key = `${mirror} ${node}`;
  const sequence = (sequences.get(key) ?? -1) + 1;
  sequences.set(key, sequence);
  const now = Date.now();
  const records = seqs.map((seq, i) => ({
    seconds: Math.floor(now / 1000),
    nanos: (now % 1000) * 1_000_000 + i,
    data: icmpFrame(seq),
  }));
  const h = natsHeaders();
  const first = records[0]!;
  const last = records[records.length - 1]!;
  const ns = (r: { seconds: number; nanos: number }) =>
    (BigInt(r.seconds) * 1_000_000_000n + BigInt(r.nanos)).toString();
  for (const [k, v] of Object.entries(
    formatCaptureHeaders({
      namespace: NS,
      mirror,
      node,
      linkType: 1,
      snaplen: 65535,
      count: records.length,
      firstNs: ns(first),
      lastNs: ns(last),
      drops: 0,
      sequence,
      encap: "gre",
      key: 7,
    }),
  )) {
    h.set(k, v);
  }
  natsClient.nc.publish(captureSubject(NS, mirror, node), batchPayload(records), { headers: h });
}

const get = (path: string, init: RequestInit = {}) => fetch(`${server.url}${path}`, init);
const state = async () => (await (await get("/api/state")).json()) as Snapshot;

interface SseMessage {
  event: string;
  data: unknown;
}

/** Reads /api/stream until `until` holds for the messages so far. */
async function readStream(until: (msgs: SseMessage[]) => boolean, timeoutMs = 20_000): Promise<SseMessage[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const msgs: SseMessage[] = [];
  try {
    const res = await fetch(`${server.url}/api/stream`, { signal: abort.signal });
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const decoder = new TextDecoder();
    let text = "";
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = text.indexOf("\n\n")) >= 0) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined && data !== undefined)
          msgs.push({ event, data: JSON.parse(data) as unknown });
      }
      if (until(msgs)) break;
    }
    return msgs;
  } catch (err) {
    if (!abort.signal.aborted) throw err;
    throw new Error(
      `the stream did not deliver what was awaited within ${timeoutMs} ms; got ${msgs.map((m) => m.event).join(", ")}`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

beforeAll(async () => {
  const logger = createLogger({
    name: "console-test",
    level: (process.env.TEST_LOG_LEVEL as "info") ?? "silent",
  });
  dir = makeTempDir("ovntap-console-");
  [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
  natsClient = await connectNats({ url: nats.url, name: "console-test", logger });
  redisClient = await connectRedis({ url: redis.url, logger, role: "client", name: "console-test" });
  const prefix = `{console-${randomUUID().slice(0, 8)}}`;
  store = createStore({ redis: redisClient.redis, prefix });
  events = createEventLog({ nc: natsClient.nc, logger });
  await events.ensure();

  const tap = await recordMirror("tap", 'alice <img src=x onerror="globalThis.pwned=1">', 7);
  // More events than the console keeps: it starts from the last KEPT_EVENTS.
  const base = {
    namespace: NS,
    mirror: "tap",
    generation: 1,
    principal: "system:ovntap:ovn-applier",
    requestId: tap.requestId,
  };
  await events.publish(makeEvent("accepted", { ...base, principal: "alice", detail: { op: "create" } }));
  for (let attempt = 1; attempt <= 4; attempt++) {
    await events.publish(makeEvent("applying", { ...base, detail: { reason: "create", attempt } }));
  }
  await events.publish(
    makeEvent("applied", { ...base, detail: { rows: ["ovntap.shop.tap"], key: 7, sink: "198.51.100.2" } }),
  );
  await events.publish(makeEvent("active", { ...base, detail: { ports: ["pod-a.shop"] } }));

  const metrics = createMetrics({ defaultMetrics: false });
  c = createConsole({
    nc: natsClient.nc,
    store,
    logger,
    metrics,
    config: {
      events: KEPT_EVENTS,
      ring: { maxAgeMs: 60_000, maxBytesPerMirror: 4 << 20, maxTotalBytes: 8 << 20 },
    },
  });
  server = await startConsoleServer({
    host: "127.0.0.1",
    port: 0,
    logger,
    registry: metrics.registry,
    console: () => c,
    checks: { console: () => c.isReady() },
  });
  await c.start();
}, 60_000);

afterAll(async () => {
  await c?.stop();
  await server?.close();
  await natsClient?.close();
  await redisClient?.close();
  await Promise.all([nats?.stop(), redis?.stop()]);
  if (dir) removeDir(dir);
});

describe("the console service", () => {
  it("answers /healthz, /readyz and /metrics", async () => {
    expect((await get("/healthz")).status).toBe(200);
    await waitFor(async () => (await get("/readyz")).status === 200, {
      what: "/readyz 200",
      timeoutMs: 20_000,
    });
    const metrics = await (await get("/metrics")).text();
    expect(metrics).toContain("ovntap_console_ring_bytes");
  });

  it("serves the page and its files with a strict content security policy", async () => {
    const page = await get("/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await page.text();
    expect(html).toContain('<script src="/console.js" defer></script>');
    expect(html).not.toMatch(/<script>|style=/);
    for (const [path, type] of [
      ["/console.js", "text/javascript; charset=utf-8"],
      ["/console.css", "text/css; charset=utf-8"],
    ] as const) {
      const r = await get(path);
      expect(r.status, path).toBe(200);
      expect(r.headers.get("content-type")).toBe(type);
    }
    // The page's code never turns server data into markup.
    expect(await (await get("/console.js")).text()).not.toMatch(
      /innerHTML|outerHTML|insertAdjacentHTML|document\.write/,
    );
  });

  it("shows the mirror from the store and the last events of the stream", async () => {
    const s = await waitFor(
      async () => {
        const s = await state();
        return s.mirrors.length === 1 && s.events.length === KEPT_EVENTS && s.eventsFeed === "live"
          ? s
          : undefined;
      },
      { what: "the mirror and the events in /api/state", timeoutMs: 20_000 },
    );
    expect(s.mirrors[0]).toMatchObject({
      id: "shop/tap",
      phase: "Active",
      owner: 'alice <img src=x onerror="globalThis.pwned=1">',
      sink: "198.51.100.2",
      key: "gre 7",
      target: "collector",
    });
    // 8 events were stored; the console starts from the last 5, oldest first.
    expect(s.events.map((e) => e.type)).toEqual(["applying", "applying", "applying", "applied", "active"]);
    expect(s.events[3]).toMatchObject({
      mirror: "shop/tap",
      summary: "rows ovntap.shop.tap, key 7, sink 198.51.100.2",
    });
    expect(s.pcapSeconds).toEqual([10, 30, 60]);
  });

  it("follows the lifecycle events: new mirrors appear, deleted ones go, pages are told", async () => {
    const stream = readStream((msgs) =>
      msgs.some(
        (m) => m.event === "mirrors" && (m.data as Snapshot).mirrors.some((v) => v.id === "shop/web"),
      ),
    );
    const web = await recordMirror("web", "bob", 8);
    await events.publish(
      makeEvent("accepted", {
        namespace: NS,
        mirror: "web",
        generation: 1,
        principal: "bob",
        requestId: web.requestId,
        detail: { op: "create" },
      }),
    );
    const msgs = await stream;
    expect(msgs[0]?.event).toBe("snapshot");
    expect(
      msgs.some(
        (m) => m.event === "event" && (m.data as { type: string; mirror: string }).mirror === "shop/web",
      ),
    ).toBe(true);
    expect((await state()).mirrors.map((m) => m.id)).toEqual(["shop/tap", "shop/web"]);

    // delete as the applier does: status Deleted, the `deleted` event, then the purge (no event)
    const del = await store.applyDelete({
      namespace: NS,
      name: "web",
      requestId: randomUUID(),
      requestHash: "d",
    });
    if (del.type !== "deleted") throw new Error(del.type);
    const gen = del.record.generation;
    const st = await store.setStatus(NS, "web", {
      phase: "Deleted",
      generation: gen,
      observedGeneration: gen,
      ports: [],
      updatedAt: new Date().toISOString(),
    });
    expect(st.type).toBe("updated");
    await events.publish(
      makeEvent("deleted", {
        namespace: NS,
        mirror: "web",
        generation: gen,
        principal: "system:ovntap:ovn-applier",
        requestId: web.requestId,
        detail: { reason: "request" },
      }),
    );
    await waitFor(async () => (await state()).mirrors.find((m) => m.id === "shop/web")?.phase === "Deleted", {
      what: "shop/web shown as Deleted",
      timeoutMs: 20_000,
    });
    expect((await store.purge(NS, "web", gen)).type).toBe("purged");
    await waitFor(async () => (await state()).mirrors.every((m) => m.id !== "shop/web"), {
      what: "shop/web to leave the list once purged",
      timeoutMs: 20_000,
    });
  });

  it("counts the capture batches into per-second rates and sends them every second", async () => {
    const stream = readStream((msgs) =>
      msgs.some(
        (m) =>
          m.event === "rates" &&
          ((m.data as { rates: Record<string, { packetsTotal: number }> }).rates["shop/tap"]?.packetsTotal ??
            0) >= 30,
      ),
    );
    for (let i = 0; i < 10; i++) publishBatch("tap", [i * 3 + 1, i * 3 + 2, i * 3 + 3]);
    const msgs = await stream;
    const rates = msgs
      .filter((m) => m.event === "rates")
      .map((m) => m.data as { t: number; rates: Record<string, { pps: number; packets: number }> });
    // one message per second, in order
    for (let i = 1; i < rates.length; i++) expect(rates[i]!.t).toBe(rates[i - 1]!.t + 1);
    const counted = rates.reduce((n, r) => n + (r.rates["shop/tap"]?.packets ?? 0), 0);
    expect(counted).toBe(30);
    const s = await state();
    expect(s.rates["shop/tap"]).toMatchObject({ packetsTotal: 30, drops: 0, missedBatches: 0 });
    expect(s.rates["shop/tap"]!.packets.reduce((a, b) => a + b, 0)).toBe(30);
    expect(s.rates["shop/tap"]!.bytesTotal).toBe(30 * icmpFrame(1).length);
  });

  it("counts batches it never received from the per-node sequence numbers", async () => {
    sequences.set("tap node-2", 10);
    publishBatch("tap", [100], "node-2");
    sequences.set("tap node-2", 14);
    publishBatch("tap", [101], "node-2");
    await waitFor(async () => (await state()).rates["shop/tap"]?.missedBatches === 3, {
      what: "3 missed batches",
      timeoutMs: 20_000,
    });
  });

  it("serves the last N seconds of a mirror as a pcap that tshark and tcpdump read", async () => {
    const before = (await state()).rates["shop/tap"]?.packetsTotal ?? 0;
    publishBatch("tap", [201, 202]);
    publishBatch("tap", [203]);
    await waitFor(async () => (await state()).rates["shop/tap"]?.packetsTotal === before + 3, {
      what: "the batches to arrive",
      timeoutMs: 20_000,
    });
    const res = await get("/mirrors/shop/tap/pcap?seconds=10");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/vnd.tcpdump.pcap");
    expect(res.headers.get("content-disposition")).toMatch(
      /^attachment; filename="shop-tap-\d{8}T\d{6}Z\.pcap"$/,
    );
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get("content-length"))).toBe(bytes.length);
    const f = decodePcap(bytes);
    if (!f.ok) throw new Error(`not a pcap: ${f.reason}`);
    expect(f.error).toBeUndefined();
    expect(f.header).toMatchObject({ precision: "ns", linkType: 1 });
    const seqs = f.records.map((r) => {
      const d = decodeFrame(r.data);
      return d.ok && d.l4?.protocol === "icmp" ? d.l4.seq : -1;
    });
    // everything published so far is within 10 s: the 30 of the rates test, node-2's two, these three
    expect(seqs).toHaveLength(35);
    expect(seqs).toEqual(expect.arrayContaining([1, 30, 100, 101, 201, 202, 203]));
    expect(Number(res.headers.get("ovntap-packets"))).toBe(35);

    const file = join(dir, "tap.pcap");
    writeFileSync(file, bytes);
    const tshark = await run("tshark", [
      "-r",
      file,
      "-T",
      "fields",
      "-E",
      "separator=|",
      "-e",
      "ip.src",
      "-e",
      "ip.dst",
      "-e",
      "icmp.seq",
    ]);
    const rows = tshark.stdout.split("\n").filter(Boolean);
    expect(rows).toHaveLength(35);
    expect(rows).toContain("10.16.0.11|10.16.0.12|203");
    const tcpdump = await run("tcpdump", ["-nn", "-r", file, "icmp"], { allowFail: true });
    expect(tcpdump.stdout.split("\n").filter((l) => l.includes("ICMP echo request"))).toHaveLength(35);
  });

  it("refuses bad requests, naming the parameter and its limit", async () => {
    for (const q of ["seconds=0", "seconds=61", "seconds=abc", "seconds=-1"]) {
      const r = await get(`/mirrors/shop/tap/pcap?${q}`);
      expect(r.status, q).toBe(400);
      expect(((await r.json()) as { error: string }).error).toMatch(
        /seconds must be an integer from 1 to 60/,
      );
    }
    expect((await get("/mirrors/shop/nope/pcap?seconds=10")).status).toBe(404);
    expect((await get("/mirrors/Shop/tap/pcap")).status).toBe(400);
    expect((await get("/mirrors/shop/a%2Fb/pcap")).status).toBe(400);
    expect((await get("/nothing")).status).toBe(404);
    const post = await get("/api/state", { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });

  it("answers only to IP literals, localhost and the allowed names (no DNS rebinding)", async () => {
    const { port } = server;
    // fetch does not let a caller set Host; node:http does.
    const ask = (host: string, path: string) =>
      new Promise<number>((resolve, reject) => {
        httpGet({ host: "127.0.0.1", port, path, headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on("error", reject);
      });
    expect(await ask("attacker.example", "/")).toBe(403);
    expect(await ask("attacker.example", "/mirrors/shop/tap/pcap?seconds=10")).toBe(403);
    expect(await ask(`localhost:${port}`, "/")).toBe(200);
    // probes and scrapes carry no capture data
    expect(await ask("attacker.example", "/healthz")).toBe(200);
  });
});

describe("the console's event feed across a missing stream and a NATS restart", () => {
  it("waits for the stream, follows it, and resumes after a restart without losing or repeating events", async () => {
    const logger = createLogger({ name: "console-test-feed", level: "silent" });
    const own = await startNatsServer();
    const client = await connectNats({ url: own.url, name: "console-test-feed", logger });
    const c2 = createConsole({ nc: client.nc, store, logger, config: { events: 50 } });
    const seen = () => c2.snapshot().events;
    try {
      await c2.start();
      await waitFor(() => c2.snapshot().eventsFeed === "waiting for the event stream", {
        what: "the feed to wait for OVNTAP_EVENTS",
        timeoutMs: 20_000,
      });
      const log = createEventLog({ nc: client.nc, logger });
      await log.ensure();
      const fields = {
        namespace: NS,
        mirror: "tap",
        generation: 1,
        principal: "alice",
        requestId: "feed-test",
      };
      await log.publish(makeEvent("extended", { ...fields, detail: extended(1) }));
      await waitFor(() => seen().length === 1 && c2.snapshot().eventsFeed === "live", {
        what: "the first event, live",
        timeoutMs: 30_000,
      });

      await own.restart();
      await waitFor(() => client.isConnected(), { what: "NATS back", timeoutMs: 30_000 });
      // published after the restart: the console resumes after the last sequence it saw
      await log.publish(makeEvent("extended", { ...fields, detail: extended(2) }));
      await waitFor(() => seen().length === 2, { what: "the event after the restart", timeoutMs: 60_000 });
      expect(seen().map((e) => e.seq)).toEqual([1, 2]);
      expect(seen()[1]?.summary).toBe("7200 s, until 2025-01-31T14:00:00.000Z");
    } finally {
      await c2.stop();
      await client.close();
      await own.stop();
    }
  }, 120_000);
});

/** An `extended` detail, told apart by `n`. */
function extended(n: number) {
  return {
    ttlSeconds: 3600 * n,
    previousExpiresAt: "2025-01-31T12:00:00.000Z",
    expiresAt: `2025-01-31T${String(12 + n).padStart(2, "0")}:00:00.000Z`,
  };
}
