import { ConfigError, loadConfig } from "@ovntap/runtime";
import { describe, expect, it } from "vitest";
import { AgentEnv, agentConfig, DEFAULT_CONFIG } from "./config.js";

const base = {
  NODE_NAME: "ip-10-0-0-1.ec2.internal",
  NATS_URL: "nats://127.0.0.1:4222",
  REDIS_URL: "redis://127.0.0.1:6379",
};

function problems(env: Record<string, string>) {
  try {
    loadConfig(AgentEnv, env);
  } catch (err) {
    if (err instanceof ConfigError)
      return Object.fromEntries(err.problems.map((p) => [p.variable, p.message]));
    throw err;
  }
  return {};
}

describe("node-agent configuration", () => {
  it("needs the node name, NATS and Redis; defaults the rest", () => {
    const cfg = agentConfig(loadConfig(AgentEnv, base));
    expect(cfg).toEqual({ ...DEFAULT_CONFIG, node: base.NODE_NAME });
    expect(loadConfig(AgentEnv, base).OVS_DB).toBe("unix:/run/openvswitch/db.sock");
    expect(problems({})).toEqual({
      NODE_NAME: "is required",
      NATS_URL: "is required",
      REDIS_URL: "is required",
    });
  });

  it("names each bad variable and its limit", () => {
    expect(
      problems({
        ...base,
        NODE_NAME: "Worker_1",
        TRANSPORT_INTERFACE: "a-very-long-ifname0",
        NODE_NETNS: "ns/x",
        COLLECTOR_SINK: "not-an-ip",
        HEARTBEAT_INTERVAL_MS: "500",
        RECONCILE_INTERVAL_MS: "soon",
      }),
    ).toEqual({
      NODE_NAME: "must be a Kubernetes node name (lower-case DNS-1123 subdomain)",
      TRANSPORT_INTERFACE: "must be at most 15 characters (Linux IFNAMSIZ)",
      NODE_NETNS: "must be a network namespace name under /run/netns (no '/' or whitespace)",
      COLLECTOR_SINK: "must be an IPv4 or IPv6 address",
      HEARTBEAT_INTERVAL_MS: "must be an integer from 1000 to 3600000",
      RECONCILE_INTERVAL_MS: "must be an integer ≥ 100",
    });
  });

  it("carries the variables into the agent's settings, the collector sink in canonical form", () => {
    const cfg = agentConfig(
      loadConfig(AgentEnv, {
        ...base,
        NODE_NETNS: "lab-node",
        TRANSPORT_INTERFACE: "eth1",
        COLLECTOR_SINK: "2001:DB8:0:0::5",
        HEARTBEAT_INTERVAL_MS: "2000",
        STATS_INTERVAL_MS: "1000",
        RECONCILE_INTERVAL_MS: "500",
        RESYNC_INTERVAL_MS: "5000",
        DATAPLANE_GRACE_MS: "0",
        AGENT_CONCURRENCY: "2",
        BULLMQ_PREFIX: "bull-x",
      }),
    );
    expect(cfg).toMatchObject({
      node: base.NODE_NAME,
      netns: "lab-node",
      transportInterface: "eth1",
      collectorSink: "2001:db8::5",
      heartbeatIntervalMs: 2000,
      statsIntervalMs: 1000,
      reconcileIntervalMs: 500,
      resyncIntervalMs: 5000,
      dataplaneGraceMs: 0,
      concurrency: 2,
      bullmqPrefix: "bull-x",
    });
  });
});
