/**
 * The announcement against a real lab: the agent probes the node (kernel links by trying them,
 * the transport interface by the OVN encap IP, versions from the daemons, bridges from OVS) and
 * announces it in the `ovntap_agents` KV bucket and on `ovntap.v1.agents.<node>`.
 */
import { Kvm } from "@nats-io/kv";
import { AGENTS_KV_BUCKET, agentSubject, AgentHeartbeat, MAX_MIRRORS_PER_BRIDGE } from "@ovntap/contracts";
import { run, startLab, waitFor, type Lab } from "@ovntap/lab";
import { OvsdbClient } from "@ovntap/ovsdb";
import { connectNats, createLogger, createMetrics, type NatsClient } from "@ovntap/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent, type Agent } from "./agent.js";
import { createIp } from "./net/ip.js";
import { probeKernelLinks } from "./probe.js";

const logger = createLogger({
  name: "node-agent-test",
  level: (process.env.TEST_LOG_LEVEL as "info") ?? "silent",
});

let lab: Lab;
let nats: NatsClient;
let ovs: OvsdbClient;
let sb: OvsdbClient;
let agent: Agent;

const netnsList = async () => (await run("ip", ["netns", "list"])).stdout;

beforeAll(async () => {
  lab = await startLab({ services: false });
  nats = await connectNats({ url: lab.env.NATS_URL, name: "announce-test", logger });
  ovs = await OvsdbClient.connect({ remote: lab.env.OVS_DB, database: "Open_vSwitch", logger });
  sb = await OvsdbClient.connect({ remote: lab.env.OVN_SB_DB, database: "OVN_Southbound", logger });
});

afterAll(async () => {
  await agent?.stop();
  await ovs?.close();
  await sb?.close();
  await nats?.close();
  await lab?.stop();
});

describe("announcement", () => {
  it("probes kernel links by trying them in a throwaway namespace, and leaves nothing", async () => {
    const namespace = `ovntap-probe-${lab.prefix}`;
    const links = await probeKernelLinks(createIp(), { namespace });
    // This kernel has no GRE modules: every type is refused, with iproute2's reason.
    for (const t of ["gretap", "ip6gretap", "erspan", "ip6erspan"] as const) {
      expect(links[t].supported, t).toBe(false);
      expect(links[t].error, t).toMatch(/Unknown device type/);
    }
    expect((await netnsList()).split("\n").map((l) => l.split(" ")[0])).not.toContain(namespace);
  });

  it("puts a heartbeat in the KV bucket and on the agents subject", async () => {
    const node = lab.env.LAB_NODE;
    const seen: AgentHeartbeat[] = [];
    const sub = nats.nc.subscribe(agentSubject(node));
    void (async () => {
      for await (const m of sub) seen.push(AgentHeartbeat.parse(m.json()));
    })();

    // Three mirrors on br-ul, made by someone else: they count against the bridge's slots.
    await lab.vsctl(
      ...[1, 2, 3].flatMap((i) => [
        "--",
        `--id=@m${i}`,
        "create",
        "Mirror",
        `name=other${i}`,
        "select_all=true",
        "output_vlan=100",
        "--",
        "add",
        "bridge",
        "br-ul",
        "mirrors",
        `@m${i}`,
      ]),
    );

    agent = await createAgent({
      ovs,
      sb,
      nc: nats.nc,
      logger,
      metrics: createMetrics({ defaultMetrics: false }),
      config: { node, netns: lab.nodeNs, heartbeatIntervalMs: 1_000 },
    });
    await agent.start();

    const kv = await new Kvm(nats.nc).open(AGENTS_KV_BUCKET);
    const entry = await waitFor(async () => (await kv.get(node))?.json<unknown>(), {
      what: "the heartbeat in KV",
      timeoutMs: 20_000,
    });
    const hb = AgentHeartbeat.parse(entry);
    expect(hb.node).toBe(node);
    expect(hb.intervalSeconds).toBe(1);
    expect(hb.mirrors).toBe(0);
    const caps = hb.capabilities;
    expect(caps.kernelLinks).toEqual({ gretap: false, ip6gretap: false, erspan: false, ip6erspan: false });
    // The interface holding ovn-encap-ip in the node's namespace.
    expect(caps.transport).toEqual({ interface: "br-ul", mtu: 1500, addresses: ["198.51.100.1"] });
    expect(caps.datapathTypes).toEqual(["netdev", "system"]);
    expect(caps.versions.ovs).toMatch(/^\d+\.\d+/);
    expect(caps.versions.ovn).toMatch(/^\d+\.\d+/);
    expect(caps.versions.kernel).toMatch(/^\d+\.\d+/);
    expect(caps.ovnMirror).toEqual({ both: false, local: false }); // OVN 23.03
    expect(caps.bridges).toEqual([
      { name: "br-int", datapathType: "netdev", mirrors: 0, mirrorLimit: MAX_MIRRORS_PER_BRIDGE },
      { name: "br-ul", datapathType: "netdev", mirrors: 3, mirrorLimit: MAX_MIRRORS_PER_BRIDGE },
    ]);

    // Heartbeats keep coming on the subject, bridges read fresh each time.
    await lab.vsctl("clear", "bridge", "br-ul", "mirrors");
    const fresh = await waitFor(
      () => seen.find((h) => h.capabilities.bridges.every((b) => b.mirrors === 0)),
      {
        what: "a heartbeat after the mirrors went",
        timeoutMs: 20_000,
      },
    );
    expect(Date.parse(fresh.time)).toBeGreaterThan(Date.parse(hb.time));
    expect(fresh.startedAt).toBe(hb.startedAt);

    // Stopping removes the key: the agent is gone at once, not after missed heartbeats.
    await agent.stop();
    expect(
      await kv.get(node).then((e) => (e && e.operation === "PUT" ? e.json<unknown>() : undefined)),
    ).toBeUndefined();
    sub.unsubscribe();
  });
});
