/**
 * OVS-level mirrors (`ovs` sources) on a real ovs-vswitchd: jobs on `node.<node>` enqueued the
 * way intake would (record in the store, then the job), rows read back with ovs-vsctl, mirrored
 * frames captured where they should arrive, status and events read from the store and JetStream.
 *
 * A netdev bridge `brt` with three "pods" (producer, peer, consumer) is made in the lab's node
 * namespace for the local outputs; the tunnel targets use the lab's br-int and sink.
 */
import { randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import {
  mirrorJobId,
  MirrorSpec,
  MirrorStats,
  nodeQueue,
  statsSubject,
  type AuditRecord,
  type MirrorStatus,
  type NodeApplyJob,
} from "@ovntap/contracts";
import { captureGre, run, startCapture, startLab, waitFor, type Lab } from "@ovntap/lab";
import { OvsdbClient } from "@ovntap/ovsdb";
import {
  connectNats,
  connectRedis,
  createLogger,
  createMetrics,
  type NatsClient,
  type RedisClient,
} from "@ovntap/runtime";
import { createEventLog, createStore, requestHash, type EventLog, type Store } from "@ovntap/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent, type Agent } from "../agent.js";

const logger = createLogger({
  name: "node-agent-test",
  level: (process.env.TEST_LOG_LEVEL as "info") ?? "silent",
});
const NS = "default";
const runId = randomUUID().slice(0, 8);
const storePrefix = `{na-${runId}}`;
const bullmqPrefix = `bull-na-${runId}`;

let lab: Lab;
let nats: NatsClient;
let redis: RedisClient;
let workerRedis: RedisClient;
let ovs: OvsdbClient;
let sb: OvsdbClient;
let store: Store;
let events: EventLog;
let producer: Queue<NodeApplyJob>;
let agent: Agent;
let node: string;

/** The test bridge and its three namespaces. */
const MAC = { p: "02:00:00:00:01:01", q: "02:00:00:00:01:02", c: "02:00:00:00:01:03" } as const;
const IP = { p: "10.99.0.1", q: "10.99.0.2" } as const;
let ports: { p: string; q: string; c: string };
let nsOf: { p: string; q: string; c: string };

async function makeTestBridge() {
  const pre = lab.prefix;
  ports = { p: `${pre}-tp`, q: `${pre}-tq`, c: `${pre}-tc` };
  nsOf = { p: `${pre}-tpn`, q: `${pre}-tqn`, c: `${pre}-tcn` };
  await lab.vsctl("add-br", "brt", "--", "set", "bridge", "brt", "datapath_type=netdev");
  for (const k of ["p", "q", "c"] as const) {
    await run("ip", ["netns", "add", nsOf[k]]);
    await run("ip", [
      "-n",
      lab.nodeNs,
      "link",
      "add",
      ports[k],
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      nsOf[k],
    ]);
    await run("ip", ["-n", lab.nodeNs, "link", "set", ports[k], "up"]);
    await run("ip", ["-n", nsOf[k], "link", "set", "eth0", "address", MAC[k], "up"]);
    await run("sysctl", ["-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"], { netns: nsOf[k] });
    await lab.vsctl("add-port", "brt", ports[k]);
  }
  await run("ip", ["-n", nsOf.p, "addr", "add", `${IP.p}/24`, "dev", "eth0"]);
  await run("ip", ["-n", nsOf.q, "addr", "add", `${IP.q}/24`, "dev", "eth0"]);
  await waitFor(() => lab.ping(nsOf.p, IP.q), { what: "producer pings peer across brt" });
}

beforeAll(async () => {
  lab = await startLab({ services: false });
  node = lab.env.LAB_NODE;
  nats = await connectNats({ url: lab.env.NATS_URL, name: "mirrors-test", logger });
  redis = await connectRedis({ url: lab.env.REDIS_URL, logger, role: "client" });
  workerRedis = await connectRedis({ url: lab.env.REDIS_URL, logger, role: "worker" });
  ovs = await OvsdbClient.connect({ remote: lab.env.OVS_DB, database: "Open_vSwitch", logger });
  sb = await OvsdbClient.connect({ remote: lab.env.OVN_SB_DB, database: "OVN_Southbound", logger });
  store = createStore({ redis: redis.redis, prefix: storePrefix });
  events = createEventLog({ nc: nats.nc, logger });
  await events.ensure();
  producer = new Queue<NodeApplyJob>(nodeQueue(node), { connection: redis.redis, prefix: bullmqPrefix });
  await lab.vsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000");
  await makeTestBridge();
  agent = await newAgent();
});

afterAll(async () => {
  await agent?.stop();
  await producer?.close();
  await ovs?.close();
  await sb?.close();
  await nats?.close();
  await workerRedis?.close();
  await redis?.close();
  for (const ns of Object.values(nsOf ?? {})) await run("ip", ["netns", "del", ns]).catch(() => undefined);
  await lab?.stop();
});

async function newAgent(): Promise<Agent> {
  const a = await createAgent({
    ovs,
    sb,
    nc: nats.nc,
    redis: redis.redis,
    workerRedis: workerRedis.redis,
    store,
    events,
    logger,
    metrics: createMetrics({ defaultMetrics: false }),
    storePrefix,
    config: {
      node,
      netns: lab.nodeNs,
      collectorSink: lab.env.LAB_SINK_IP,
      reconcileIntervalMs: 500,
      resyncIntervalMs: 5_000,
      statsIntervalMs: 500,
      bullmqPrefix,
      jobLockMs: 3_000,
    },
  });
  await a.start();
  return a;
}

function spec(name: string, extra: Record<string, unknown>): MirrorSpec {
  return MirrorSpec.parse({
    name,
    namespace: NS,
    direction: "egress",
    ttlSeconds: 3600,
    ...extra,
  });
}
const brtSource = (p: string[] = [ports.p], extra: Record<string, unknown> = {}) => ({
  type: "ovs",
  node,
  bridge: "brt",
  ports: p,
  ...extra,
});

/** What intake does for an ovs source: store the desired state, then queue `node.<node>`. */
async function create(s: MirrorSpec) {
  const r = await store.applyCreate({
    spec: s,
    owner: "alice",
    requestId: randomUUID(),
    requestHash: requestHash({ op: "create", spec: s }),
  });
  if (r.type !== "created") throw new Error(`create ${s.name}: ${r.type}`);
  const job: NodeApplyJob = {
    namespace: NS,
    name: s.name,
    generation: r.record.generation,
    reason: "create",
    node,
  };
  await producer.add("apply", job, {
    jobId: mirrorJobId(job),
    attempts: 5,
    backoff: { type: "exponential", delay: 500 },
  });
  return r.record;
}

async function remove(name: string) {
  const r = await store.applyDelete({
    namespace: NS,
    name,
    requestId: randomUUID(),
    requestHash: requestHash({ op: "delete", name }),
  });
  if (r.type !== "deleted") throw new Error(`delete ${name}: ${r.type}`);
  const job: NodeApplyJob = { namespace: NS, name, generation: r.record.generation, reason: "delete", node };
  await producer.add("apply", job, { jobId: mirrorJobId(job) });
}

const waitPhase = (name: string, phase: MirrorStatus["phase"], timeoutMs = 20_000) =>
  waitFor(
    async () => {
      const s = await store.getStatus(NS, name);
      return s?.phase === phase ? s : undefined;
    },
    { what: `${name} ${phase}`, timeoutMs, intervalMs: 20 },
  );

const trail = (name: string): Promise<AuditRecord[]> => events.history(NS, name, { timeoutMs: 2_000 });

interface OvsRow {
  uuid: string;
  name: string;
  ids: Record<string, string>;
}
async function ovsRows(table: "Mirror" | "Port", owner?: string): Promise<OvsRow[]> {
  const out = JSON.parse(
    await lab.vsctl("--format=json", "--columns=_uuid,name,external_ids", "list", table),
  ) as {
    data: [[string, string], string, [string, [string, string][]]][];
  };
  return out.data
    .map(([u, name, ids]) => ({ uuid: u[1], name, ids: Object.fromEntries(ids[1]) }))
    .filter((r) => owner === undefined || r.ids["ovntap/mirror"] === owner);
}

/** Frames of a pcap: caplen, original length, bytes. */
function frames(pcap: Buffer): { caplen: number; len: number; data: Buffer }[] {
  const out: { caplen: number; len: number; data: Buffer }[] = [];
  const le = pcap.readUInt32LE(0) === 0xa1b2c3d4 || pcap.readUInt32LE(0) === 0xa1b23c4d;
  const u32 = (o: number) => (le ? pcap.readUInt32LE(o) : pcap.readUInt32BE(o));
  for (let o = 24; o + 16 <= pcap.length;) {
    const caplen = u32(o + 8);
    const len = u32(o + 12);
    out.push({ caplen, len, data: pcap.subarray(o + 16, o + 16 + caplen) });
    o += 16 + caplen;
  }
  return out;
}
const macOf = (b: Buffer, at: number) =>
  [...b.subarray(at, at + 6)].map((x) => x.toString(16).padStart(2, "0")).join(":");

/** Pings producer → peer until the consumer's capture has `count` frames (or its timeout). */
async function captureAtConsumer(filter: string, count: number, pingSize = 56) {
  const cap = await startCapture({ netns: nsOf.c, iface: "eth0", filter, count, timeoutMs: 15_000 });
  while (!cap.ended) {
    await run("ping", ["-n", "-q", "-c", "1", "-W", "1", "-s", String(pingSize), IP.q], {
      netns: nsOf.p,
      allowFail: true,
    });
  }
  return frames(await cap.pcap);
}

describe("OVS-level mirrors on a real ovs-vswitchd", () => {
  it("is ready: OVS and SB monitors, Redis, NATS, worker", () => {
    expect(Object.fromEntries(Object.entries(agent.checks).map(([k, f]) => [k, f()]))).toEqual({
      ovs: true,
      sb: true,
      nats: true,
      redis: true,
      worker: true,
    });
  });

  it("mirrors a producer port to a consumer port: the consumer sees the producer's frames", async () => {
    const record = await create(
      spec("to-port", {
        sources: brtSource(),
        target: { type: "ovsPort", node, bridge: "brt", port: ports.c },
      }),
    );
    const status = await waitPhase("to-port", "Active");
    expect(status).toMatchObject({
      generation: record.generation,
      observedGeneration: record.generation,
      ports: [ports.p],
      nodes: [node],
    });
    const got = await captureAtConsumer(`icmp and ether src ${MAC.p}`, 3);
    expect(got.length).toBe(3);
    for (const f of got) {
      expect(macOf(f.data, 6)).toBe(MAC.p);
      expect(macOf(f.data, 0)).toBe(MAC.q); // what the producer sent to the peer
    }
    // One Mirror row, owned, on brt, selecting the producer's sent traffic (egress).
    const rows = await ovsRows("Mirror", `${NS}/to-port`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      name: "ovntap.default.to-port",
      ids: { "ovntap/generation": String(record.generation), "ovntap/node": node },
    });
    expect(await lab.vsctl("get", "Mirror", rows[0]!.uuid, "select_src_port")).not.toBe("[]");
    expect((await lab.vsctl("get", "Mirror", rows[0]!.uuid, "select_dst_port")).trim()).toBe("[]");
    expect(await lab.vsctl("get", "bridge", "brt", "mirrors")).toContain(rows[0]!.uuid);
    expect((await trail("to-port")).map((e) => e.type)).toEqual(["applying", "applied", "active"]);
    const applied = (await trail("to-port")).find((e) => e.type === "applied");
    expect(applied?.detail).toEqual({ rows: ["ovntap.default.to-port"], node });
  });

  it("is idempotent: the same job again and reconciles change nothing", async () => {
    const before = await ovsRows("Mirror", `${NS}/to-port`);
    const cfg = await lab.vsctl("get", "Open_vSwitch", ".", "next_cfg");
    const r = await agent.mirrors!.reconcile({ namespace: NS, name: "to-port" }, "resync");
    expect(r.type).toBe("active");
    await agent.mirrors!.resync();
    expect(await ovsRows("Mirror", `${NS}/to-port`)).toEqual(before);
    expect(await lab.vsctl("get", "Open_vSwitch", ".", "next_cfg")).toBe(cfg); // no transaction at all
    expect((await trail("to-port")).map((e) => e.type)).toEqual(["applying", "applied", "active"]);
  });

  it("lets one producer feed several mirrors: the same port mirrored to a VLAN, truncated to snaplen", async () => {
    // RSPAN: no MAC learning on the mirror VLAN, so its copies are flooded to every port carrying it.
    await lab.vsctl("set", "bridge", "brt", "flood_vlans=100");
    await create(
      spec("to-vlan", {
        sources: brtSource(),
        target: { type: "ovsVlan", node, bridge: "brt", vlan: 100 },
        snaplen: 100,
      }),
    );
    const s = await waitPhase("to-vlan", "Active");
    expect(s.conditions?.map((c) => c.type)).toEqual(["PortsAttached", "Preflight", "VswitchdApplied"]);
    // The peer's port carries every VLAN; the consumer's, a mirror output, gets no flooded copies.
    const cap = await startCapture({
      netns: nsOf.q,
      iface: "eth0",
      filter: `vlan 100 and ether src ${MAC.p}`,
      count: 3,
      timeoutMs: 15_000,
    });
    while (!cap.ended) {
      await run("ping", ["-n", "-q", "-c", "1", "-W", "1", "-s", "1000", IP.q], {
        netns: nsOf.p,
        allowFail: true,
      });
    }
    const got = frames(await cap.pcap);
    expect(got.length).toBe(3);
    for (const f of got) {
      expect(f.data.readUInt16BE(12)).toBe(0x8100);
      expect(f.data.readUInt16BE(14) & 0x0fff).toBe(100);
      // The tagged copy of a 1042-byte echo request, cut to snaplen on the way out: what the
      // consumer receives is 100 bytes on the wire, and captured whole.
      expect(f.len).toBe(100);
      expect(f.caplen).toBe(100);
    }
  });

  it("refuses a second consumer of a port", async () => {
    await create(
      spec("second-consumer", {
        sources: brtSource([ports.q]),
        target: { type: "ovsPort", node, bridge: "brt", port: ports.c },
      }),
    );
    const s = await waitPhase("second-consumer", "Failed");
    expect(s.reason).toBe("ConsumerTaken");
    expect(s.message).toContain(
      `port ${ports.c} on brt is already the output (consumer) of mirror ovntap.default.to-port`,
    );
    expect(await ovsRows("Mirror", `${NS}/second-consumer`)).toEqual([]);
    const failed = (await trail("second-consumer")).find((e) => e.type === "failed");
    expect(failed?.detail).toMatchObject({ code: "ALREADY_EXISTS", retryable: false });
  });

  it("publishes the mirror's OVS statistics", async () => {
    const got = await waitFor(
      async () => {
        await lab.ping(nsOf.p, IP.q);
        return agent.stats
          .collect()
          .find((s) => s.mirror === "to-port" && s.kind === "ovs" && s.txPackets > 0);
      },
      { what: "stats of to-port", timeoutMs: 15_000 },
    );
    expect(got).toMatchObject({ kind: "ovs", bridge: "brt", row: "ovntap.default.to-port", node });
    const sub = nats.nc.subscribe(statsSubject(NS, "to-port"), { max: 1 });
    for await (const m of sub) expect(MirrorStats.parse(m.json()).namespace).toBe(NS);
  });

  it("builds a GRE tunnel port on br-int for LAB_POD_A_PORT: GRE with the allocated key reaches the sink", async () => {
    // Headroom for the encapsulation: pod-a's port below the transport's 1500 by more than 42.
    await run("ip", ["-n", lab.nodeNs, "link", "set", lab.env.LAB_POD_A_PORT, "mtu", "1400"]);
    await run("ip", ["-n", lab.env.LAB_POD_A_NS, "link", "set", "eth0", "mtu", "1400"]);
    await waitFor(
      async () => (await lab.vsctl("get", "Interface", lab.env.LAB_POD_A_PORT, "mtu")).trim() === "1400",
      {
        what: "OVS to see MTU 1400",
      },
    );
    await create(
      spec("gre", {
        sources: { type: "ovs", node, bridge: "br-int", ports: [lab.env.LAB_POD_A_PORT] },
        target: { type: "gre", sink: lab.env.LAB_SINK_IP },
      }),
    );
    const status = await waitPhase("gre", "Active");
    expect(status.key).toBeGreaterThanOrEqual(1);
    expect(status).toMatchObject({
      sink: lab.env.LAB_SINK_IP,
      tunnels: [{ type: "gre", index: status.key, direction: "egress" }],
    });
    // The tunnel port the agent owns.
    const [port] = await ovsRows("Port", `${NS}/gre`);
    expect(port?.name).toBe("ovntap.default.gre");
    expect(await lab.vsctl("get", "Interface", "ovntap.default.gre", "type")).toBe("gre\n");
    expect(await lab.vsctl("get", "Interface", "ovntap.default.gre", "options")).toBe(
      `{key="${status.key}", remote_ip="${lab.env.LAB_SINK_IP}"}\n`,
    );

    const packets = await captureGre({
      netns: lab.env.LAB_SINK_NS,
      iface: "eth0",
      filter: `ip proto 47`,
      count: 3,
      timeoutMs: 15_000,
      traffic: () =>
        lab.exec(
          lab.env.LAB_POD_A_NS,
          "ping",
          ["-n", "-q", "-c", "1", "-W", "1", "-s", "1000", lab.env.LAB_POD_B_IP],
          { allowFail: true },
        ),
    });
    expect(packets.length).toBe(3);
    for (const p of packets) {
      expect(p).toMatchObject({
        key: status.key,
        greProto: 0x6558,
        outer: { src: "198.51.100.1", dst: lab.env.LAB_SINK_IP },
        inner: { srcMac: "00:00:00:00:00:01", src: lab.env.LAB_POD_A_IP, dst: lab.env.LAB_POD_B_IP },
      });
      // The whole 1042-byte frame + 14 (outer Ethernet) + 20 (IPv4) + 8 (GRE with key).
      expect(p.length).toBe(1084);
    }
  });

  it("feeds ERSPAN type III and collector targets from the same producer port, each with its own key", async () => {
    const pa = { type: "ovs", node, bridge: "br-int", ports: [lab.env.LAB_POD_A_PORT] };
    await create(
      spec("erspan3", {
        sources: pa,
        direction: "ingress",
        target: { type: "erspan", sink: lab.env.LAB_SINK_IP, version: 2 },
      }),
    );
    await create(spec("coll", { sources: pa, target: { type: "collector" } }));
    const e = await waitPhase("erspan3", "Active");
    const c = await waitPhase("coll", "Active");
    const g = await store.getStatus(NS, "gre");
    expect(e.sessionId).toBeDefined();
    // Unique per sink across GRE keys and ERSPAN session ids: the collector is the lab's sink too.
    expect(new Set([g?.key, e.sessionId, c.key]).size).toBe(3);
    expect(c.sink).toBe(lab.env.LAB_SINK_IP);
    expect(await lab.vsctl("get", "Interface", "ovntap.default.erspan3", "options")).toBe(
      `{erspan_dir="0", erspan_hwid="0", erspan_ver="2", key="${e.sessionId}", remote_ip="${lab.env.LAB_SINK_IP}"}\n`,
    );
    const packets = await captureGre({
      netns: lab.env.LAB_SINK_NS,
      iface: "eth0",
      count: 12,
      timeoutMs: 15_000,
      traffic: () => lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP),
    });
    // ingress: what pod-a receives (pod-b's replies), as ERSPAN type III with the session id.
    const ers = packets.filter((p) => p.greProto === 0x22eb);
    expect(ers.length).toBeGreaterThan(0);
    for (const p of ers) {
      expect(p.erspan).toEqual({ version: 2, spanId: e.sessionId });
      expect(p.inner?.dstMac).toBe("00:00:00:00:00:01");
    }
    // The collector's GRE carries what pod-a sends, with its own key.
    expect(packets.some((p) => p.key === c.key && p.inner?.srcMac === "00:00:00:00:00:01")).toBe(true);
  });

  it("reports an MTU preflight failure as Degraded with the numbers", async () => {
    await create(
      spec("mtu", {
        sources: { type: "ovs", node, bridge: "br-int", ports: [lab.env.LAB_POD_B_PORT] },
        target: { type: "gre", sink: lab.env.LAB_SINK_IP },
        snaplen: 100,
      }),
    );
    const s = await waitPhase("mtu", "Degraded");
    // On the userspace datapath a tunnel's snaplen is left to the receiver (OVS would cut the
    // encapsulated packet, not the mirrored frame).
    expect(s.conditions?.find((c) => c.type === "SnaplenInOvs")).toMatchObject({
      status: "False",
      reason: "SnaplenAtReceiver",
    });
    expect((await lab.vsctl("get", "Mirror", "ovntap.default.mtu", "snaplen")).trim()).toBe("[]");
    expect(s.reason).toBe("MtuTooSmall");
    expect(s.message).toContain(
      `transport br-ul MTU 1500 < 1542: mirrored port ${lab.env.LAB_POD_B_PORT} MTU 1500 + 42 bytes of GRE with a key over IPv4`,
    );
    const degraded = (await trail("mtu")).find((e) => e.type === "degraded");
    expect(degraded?.detail).toMatchObject({ reason: "MtuTooSmall" });
    expect((degraded?.detail as { message: string }).message).toContain("MTU 1500 < 1542");
    // Non-blocking: the mirror is in place, with a key of its own towards the sink.
    expect(await ovsRows("Mirror", `${NS}/mtu`)).toHaveLength(1);
    const gre = await store.getStatus(NS, "gre");
    expect(s.key).not.toBe(gre?.key);
  });

  it("restores its mirrors within 5 s of `ovs-vsctl clear bridge br-int mirrors`", async () => {
    const before = await ovsRows("Mirror", `${NS}/gre`);
    expect(before).toHaveLength(1);
    await lab.vsctl("clear", "bridge", "br-int", "mirrors");
    const t0 = Date.now();
    await waitFor(
      async () =>
        (await ovsRows("Mirror", `${NS}/gre`)).length === 1 &&
        (await ovsRows("Mirror", `${NS}/mtu`)).length === 1,
      {
        what: "mirrors restored",
        timeoutMs: 5_000,
        intervalMs: 20,
      },
    );
    console.log(`mirrors restored ${Date.now() - t0} ms after clear bridge br-int mirrors`);
    expect(await lab.vsctl("get", "bridge", "br-int", "mirrors")).toContain(
      (await ovsRows("Mirror", `${NS}/gre`))[0]!.uuid,
    );
    const repaired = await waitFor(
      async () => (await trail("gre")).find((e) => e.type === "drift_repaired"),
      { what: "drift_repaired" },
    );
    expect(repaired.detail).toEqual({
      repairs: [{ table: "Mirror", name: "ovntap.default.gre", action: "created" }],
    });
    // And the tunnel port removed out of band comes back too.
    await lab.vsctl("del-port", "br-int", "ovntap.default.gre");
    await waitFor(async () => (await ovsRows("Port", `${NS}/gre`)).length === 1, {
      what: "tunnel port restored",
      timeoutMs: 5_000,
    });
    await waitPhase("gre", "Active");
  });

  it("refuses the 33rd mirror on a bridge, naming the OVS limit, and applies it once a slot frees", async () => {
    const taken = (await lab.vsctl("get", "bridge", "brt", "mirrors"))
      .replace(/[[\]\s]/g, "")
      .split(",")
      .filter(Boolean).length;
    const fill = 32 - taken;
    await lab.vsctl(
      ...Array.from({ length: fill }, (_, i) => [
        "--",
        `--id=@f${i}`,
        "create",
        "Mirror",
        `name=filler${i}`,
        "select_all=true",
        "output_vlan=4000",
        "--",
        "add",
        "bridge",
        "brt",
        "mirrors",
        `@f${i}`,
      ]).flat(),
    );
    await create(
      spec("thirty-third", {
        sources: brtSource([ports.q]),
        target: { type: "ovsVlan", node, bridge: "brt", vlan: 200 },
      }),
    );
    const s = await waitPhase("thirty-third", "Failed");
    expect(s.reason).toBe("BridgeMirrorLimit");
    expect(s.message).toMatch(
      /^bridge brt already holds 32 mirrors: Open vSwitch keeps at most 32 per bridge/,
    );
    expect(await ovsRows("Mirror", `${NS}/thirty-third`)).toEqual([]);
    expect((await trail("thirty-third")).find((e) => e.type === "failed")?.detail).toMatchObject({
      code: "BRIDGE_MIRROR_LIMIT",
      retryable: true,
    });
    await lab.vsctl(
      "--",
      "--id=@f",
      "get",
      "Mirror",
      "filler0",
      "--",
      "remove",
      "bridge",
      "brt",
      "mirrors",
      "@f",
    );
    await waitPhase("thirty-third", "Active");
    expect(await ovsRows("Mirror", `${NS}/thirty-third`)).toHaveLength(1);
  });

  it("makes the receiving link the target asks for; on this kernel: LinkTypeUnsupported, no rows, key back", async () => {
    const rx = `${lab.prefix}-rx`;
    await run("ip", ["netns", "add", rx]);
    try {
      await create(
        spec("rx", {
          sources: { type: "ovs", node, bridge: "br-int", ports: [lab.env.LAB_POD_A_PORT] },
          target: { type: "gre", sink: lab.env.LAB_SINK_IP, receiver: { netns: rx, link: "mirror1" } },
        }),
      );
      const s = await waitPhase("rx", "Failed");
      expect(s.reason).toBe("LinkTypeUnsupported");
      expect(s.message).toContain(`the kernel of node ${node} cannot create gretap links`);
      expect(s.message).toContain("use a --collector target instead");
      expect((await trail("rx")).find((e) => e.type === "failed")?.detail).toMatchObject({
        code: "LINK_TYPE_UNSUPPORTED",
        retryable: false,
      });
      expect(await ovsRows("Mirror", `${NS}/rx`)).toEqual([]);
      expect(await ovsRows("Port", `${NS}/rx`)).toEqual([]);
      const claims = await redis.redis.hgetall(`${storePrefix}:node-agent:keys:${lab.env.LAB_SINK_IP}`);
      expect(Object.values(claims).filter((v) => v.endsWith(`${NS}/rx`))).toEqual([]);
      const links = JSON.parse((await run("ip", ["-n", rx, "-j", "link", "show"])).stdout) as {
        ifname: string;
      }[];
      expect(links.map((l) => l.ifname)).toEqual(["lo"]);
    } finally {
      await run("ip", ["netns", "del", rx]).catch(() => undefined);
    }
  });

  it("deletes: rows gone, Deleted, record purged, key released", async () => {
    const key = (await store.getStatus(NS, "mtu"))?.key;
    await remove("mtu");
    await waitFor(async () => (await store.getMirror(NS, "mtu")) === undefined, { what: "mtu purged" });
    expect(await ovsRows("Mirror", `${NS}/mtu`)).toEqual([]);
    expect(await ovsRows("Port", `${NS}/mtu`)).toEqual([]);
    expect((await trail("mtu")).map((e) => e.type).slice(-1)).toEqual(["deleted"]);
    const claims = await redis.redis.hgetall(`${storePrefix}:node-agent:keys:${lab.env.LAB_SINK_IP}`);
    expect(Object.keys(claims)).not.toContain(String(key));
  });
});
