/**
 * Mirror statistics from a real ovs-vswitchd: an ovntap OVN mirror carrying pod-a's traffic,
 * its OVS `Mirror.statistics` counted by vswitchd, published as MirrorStats on
 * `ovntap.v1.stats.<ns>.<mirror>` and exported on /metrics.
 */
import { MirrorStats, statsSubject } from "@ovntap/contracts";
import { startLab, waitFor, type Lab } from "@ovntap/lab";
import { OvsdbClient } from "@ovntap/ovsdb";
import { connectNats, createLogger, createMetrics, type Metrics, type NatsClient } from "@ovntap/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent, type Agent } from "./agent.js";

const logger = createLogger({
  name: "node-agent-test",
  level: (process.env.TEST_LOG_LEVEL as "info") ?? "silent",
});

let lab: Lab;
let nats: NatsClient;
let ovs: OvsdbClient;
let agent: Agent;
let metrics: Metrics;

beforeAll(async () => {
  lab = await startLab({ services: false });
  // vswitchd refreshes Mirror.statistics every stats-update-interval (5 s by default).
  await lab.vsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000");
  nats = await connectNats({ url: lab.env.NATS_URL, name: "stats-test", logger });
  ovs = await OvsdbClient.connect({ remote: lab.env.OVS_DB, database: "Open_vSwitch", logger });
  metrics = createMetrics({ defaultMetrics: false });
  agent = await createAgent({
    ovs,
    nc: nats.nc,
    logger,
    metrics,
    config: { node: lab.env.LAB_NODE, netns: lab.nodeNs, statsIntervalMs: 500 },
  });
  await agent.start();
});

afterAll(async () => {
  await agent?.stop();
  await ovs?.close();
  await nats?.close();
  await lab?.stop();
});

describe("mirror statistics", () => {
  it("publishes OVS Mirror.statistics of ovntap mirrors and exports them as metrics", async () => {
    const received: MirrorStats[] = [];
    const sub = nats.nc.subscribe(statsSubject("default", "st"));
    void (async () => {
      for await (const m of sub) received.push(MirrorStats.parse(m.json()));
    })();
    // Not ours: no stats published for it.
    const others = nats.nc.subscribe("ovntap.v1.stats.>");
    const seenSubjects = new Set<string>();
    void (async () => {
      for await (const m of others) seenSubjects.add(m.subject);
    })();

    await lab.nbctl("mirror-add", "ovntap.default.st", "gre", "21", "from-lport", lab.env.LAB_SINK_IP);
    await lab.nbctl("mirror-add", "not-ours", "gre", "22", "from-lport", lab.env.LAB_SINK_IP);
    await lab.nbctl("lsp-attach-mirror", "pod-a.default", "ovntap.default.st");
    await lab.nbctl("--wait=hv", "lsp-attach-mirror", "pod-a.default", "not-ours");

    const counted = await waitFor(
      async () => {
        await lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP, { count: 2, intervalS: 0.2, timeoutS: 1 });
        return received.find((s) => s.kind === "ovs" && s.txPackets >= 2);
      },
      { what: "stats with mirrored packets", timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(counted).toMatchObject({
      namespace: "default",
      mirror: "st",
      node: lab.env.LAB_NODE,
      kind: "ovs",
      bridge: "br-int",
      row: "ovntap.default.st",
    });
    if (counted.kind !== "ovs") throw new Error("unreachable");
    // Each mirrored echo request is at least a 98-byte frame.
    expect(counted.txBytes).toBeGreaterThanOrEqual(counted.txPackets * 98);
    expect([...seenSubjects]).toEqual([statsSubject("default", "st")]);

    const text = await metrics.registry.metrics();
    expect(text).toMatch(
      /ovntap_node_agent_mirror_tx_packets\{namespace="default",mirror="st",bridge="br-int",row="ovntap\.default\.st"\} [1-9]/,
    );
    expect(text).toMatch(/ovntap_node_agent_bridge_mirrors\{bridge="br-int"\} 2/);

    // The mirror goes: so do its series.
    await lab.nbctl("--wait=hv", "mirror-del", "ovntap.default.st");
    await waitFor(async () => !(await metrics.registry.metrics()).includes('row="ovntap.default.st"'), {
      what: "the series removed",
    });
    sub.unsubscribe();
    others.unsubscribe();
  });
});
