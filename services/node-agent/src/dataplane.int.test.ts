/**
 * Data-plane truth for OVN mirrors on a real chassis: NB mirror rows written by hand with
 * ovn-nbctl (as the applier names them), ovn-controller turning them into OVS rows on br-int,
 * ovs-vswitchd refusing what it cannot do — and the agent reporting each ovntap mirror's state
 * in the `ovntap_dataplane` KV bucket, with a `dataplane_error` event for failures.
 */
import { randomUUID } from "node:crypto";
import { Kvm, type KV } from "@nats-io/kv";
import { MAX_MIRRORS_PER_BRIDGE, MirrorSpec } from "@ovntap/contracts";
import { startLab, waitFor, type Lab } from "@ovntap/lab";
import { OvsdbClient } from "@ovntap/ovsdb";
import { connectNats, connectRedis, createLogger, type NatsClient, type RedisClient } from "@ovntap/runtime";
import { createEventLog, createStore, requestHash, type EventLog, type Store } from "@ovntap/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent, type Agent } from "./agent.js";
import { DATAPLANE_KV_BUCKET, DataplaneRecord, type MirrorDataplane } from "./dataplane.js";

const logger = createLogger({
  name: "node-agent-test",
  level: (process.env.TEST_LOG_LEVEL as "info") ?? "silent",
});
const NS = "default";

let lab: Lab;
let nats: NatsClient;
let redis: RedisClient;
let ovs: OvsdbClient;
let sb: OvsdbClient;
let store: Store;
let events: EventLog;
let agent: Agent;
let kv: KV;

beforeAll(async () => {
  lab = await startLab({ services: false });
  nats = await connectNats({ url: lab.env.NATS_URL, name: "dataplane-test", logger });
  redis = await connectRedis({ url: lab.env.REDIS_URL, logger, role: "client" });
  ovs = await OvsdbClient.connect({ remote: lab.env.OVS_DB, database: "Open_vSwitch", logger });
  sb = await OvsdbClient.connect({ remote: lab.env.OVN_SB_DB, database: "OVN_Southbound", logger });
  store = createStore({ redis: redis.redis, prefix: `{dp-${randomUUID().slice(0, 8)}}` });
  events = createEventLog({ nc: nats.nc, logger });
  await events.ensure();
  agent = await createAgent({
    ovs,
    sb,
    nc: nats.nc,
    redis: redis.redis,
    store,
    events,
    logger,
    config: { node: lab.env.LAB_NODE, netns: lab.nodeNs, dataplaneGraceMs: 2_000 },
  });
  await agent.start();
  kv = await new Kvm(nats.nc).open(DATAPLANE_KV_BUCKET);
});

afterAll(async () => {
  await agent?.stop();
  await ovs?.close();
  await sb?.close();
  await redis?.close();
  await nats?.close();
  await lab?.stop();
});

/** The mirror's desired state, as intake stores it (the applier is not running here). */
async function storeMirror(name: string, key: number) {
  const spec = MirrorSpec.parse({
    name,
    namespace: NS,
    sources: { type: "pods", names: ["pod-a"] },
    direction: "egress",
    target: { type: "gre", sink: lab.env.LAB_SINK_IP, key },
  });
  const r = await store.applyCreate({
    spec,
    owner: "alice",
    requestId: randomUUID(),
    requestHash: requestHash({ op: "create", spec }),
  });
  if (r.type !== "created") throw new Error(`create ${name}: ${r.type}`);
  return r.record;
}

/** What the applier would write to NB for a mirror, by hand. */
async function nbMirror(row: string, key: number, lsp = "pod-a.default") {
  await lab.nbctl("mirror-add", row, "gre", String(key), "from-lport", lab.env.LAB_SINK_IP);
  await lab.nbctl("lsp-attach-mirror", lsp, row);
}

async function kvState(row: string): Promise<MirrorDataplane | undefined> {
  const e = await kv.get(lab.env.LAB_NODE);
  if (!e || e.operation !== "PUT") return undefined;
  return DataplaneRecord.parse(e.json()).mirrors.find((m) => m.row === row);
}

const waitState = (row: string, state: MirrorDataplane["state"], timeoutMs = 15_000) =>
  waitFor(
    async () => {
      const s = await kvState(row);
      return s?.state === state ? s : undefined;
    },
    { what: `${row} ${state} in ${DATAPLANE_KV_BUCKET}`, timeoutMs, intervalMs: 50 },
  );

describe("data-plane truth of OVN mirrors", () => {
  it("reports an ovntap mirror ovn-controller programmed, and ignores others' mirrors", async () => {
    await nbMirror("ovntap.default.good", 11);
    await nbMirror("someone-elses", 12);
    const s = await waitState("ovntap.default.good", "programmed");
    expect(s).toMatchObject({
      namespace: NS,
      mirror: "good",
      bridge: "br-int",
      port: "ovn-ovntap.default.good",
    });
    const rec = DataplaneRecord.parse((await kv.get(lab.env.LAB_NODE))?.json());
    expect(rec.node).toBe(lab.env.LAB_NODE);
    expect(rec.chassis).toBe(lab.env.LAB_NODE);
    expect(rec.mirrors.map((m) => m.row)).toEqual(["ovntap.default.good"]);
  });

  it("reports the OVS error text within 5 s when an owned mirror collides with another on sink and key", async () => {
    const record = await storeMirror("dup", 77);
    // Someone's mirror first, then ours towards the same sink with the same key: NB takes both,
    // OVS refuses the second tunnel port.
    await nbMirror("theirs", 77, "pod-b.default");
    await waitFor(
      async () =>
        (await lab.vsctl("--bare", "--columns=ofport", "list", "Interface", "ovn-theirs")).trim() !== "",
      {
        what: "ovn-theirs added",
      },
    );
    const t0 = Date.now();
    await nbMirror("ovntap.default.dup", 77);
    const s = await waitState("ovntap.default.dup", "error", 5_000);
    const took = Date.now() - t0;
    expect(s.message).toBe("could not add network device ovn-ovntap.default.dup to ofproto (File exists)");
    expect(s.component).toBe("ovs");
    console.log(`data-plane error reported ${took} ms after the NB write`);

    const trail = await waitFor(
      async () => {
        const t = await events.history(NS, "dup", { timeoutMs: 1_000 });
        return t.some((e) => e.type === "dataplane_error") ? t : undefined;
      },
      { what: "the dataplane_error event" },
    );
    const ev = trail.find((e) => e.type === "dataplane_error");
    expect(ev).toMatchObject({
      generation: record.generation,
      requestId: record.requestId,
      principal: "system:ovntap:node-agent",
      detail: {
        component: "ovs",
        message: "could not add network device ovn-ovntap.default.dup to ofproto (File exists)",
        node: lab.env.LAB_NODE,
        bridge: "br-int",
        port: "ovn-ovntap.default.dup",
        row: "ovntap.default.dup",
      },
    });

    // The other mirror gone, ovn-controller re-creates ours and it works.
    await lab.nbctl("mirror-del", "theirs");
    await lab.vsctl("--if-exists", "del-port", "br-int", "ovn-ovntap.default.dup");
    await waitState("ovntap.default.dup", "programmed", 20_000);
    // One event for that error, however often it was seen, and one saying it is over.
    const again = await waitFor(
      async () => {
        const t = await events.history(NS, "dup", { timeoutMs: 1_000 });
        return t.some((e) => e.type === "dataplane_ok") ? t : undefined;
      },
      { what: "the dataplane_ok event" },
    );
    expect(again.filter((e) => e.type === "dataplane_error")).toHaveLength(1);
    expect(again.filter((e) => e.type === "dataplane_ok").map((e) => e.detail)).toEqual([
      {
        component: "ovs",
        node: lab.env.LAB_NODE,
        bridge: "br-int",
        port: "ovn-ovntap.default.dup",
        row: "ovntap.default.dup",
        previous: "could not add network device ovn-ovntap.default.dup to ofproto (File exists)",
      },
    ]);
  });

  it("reports mirrors removed out of band (clear bridge br-int mirrors) after the grace period", async () => {
    await waitState("ovntap.default.good", "programmed");
    await lab.vsctl("clear", "bridge", "br-int", "mirrors");
    const s = await waitState("ovntap.default.good", "error", 10_000);
    expect(s.component).toBe("ovn-controller");
    expect(s.message).toMatch(
      /^no OVS Mirror ovntap\.default\.good on br-int while its tunnel port ovn-ovntap\.default\.good remains/,
    );
    // ovn-controller tries to re-create the rows and its whole transaction fails on the ports
    // left behind (unique names); with every such port gone it re-creates them.
    const stale = (await lab.vsctl("--bare", "--columns=name", "find", "Interface", "type=gre"))
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.startsWith("ovn-"));
    expect(stale).toContain("ovn-ovntap.default.good");
    for (const port of stale) await lab.vsctl("--if-exists", "del-port", "br-int", port);
    await waitState("ovntap.default.good", "programmed", 20_000);
  });

  it("reports the mirror ovs-vswitchd dropped past 32 on a bridge", async () => {
    await waitState("ovntap.default.good", "programmed");
    const taken = Number(
      (await lab.vsctl("get", "bridge", "br-int", "mirrors"))
        .split(",")
        .filter((s) => s.trim() && s.trim() !== "[]").length,
    );
    const fill = MAX_MIRRORS_PER_BRIDGE - taken;
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
        "br-int",
        "mirrors",
        `@f${i}`,
      ]).flat(),
    );
    await nbMirror("ovntap.default.third", 13);
    // ovn-controller adds a 33rd Mirror row; vswitchd keeps 32 and counts only those.
    const s = await waitState("ovntap.default.third", "error", 20_000);
    expect(s.message).toMatch(
      /^ovs-vswitchd dropped the mirror: maximum of 32 port mirrors reached on bridge br-int \(33 Mirror rows/,
    );
    expect((await kvState("ovntap.default.good"))?.state).toBe("programmed");
  });
});
