/**
 * The node agent's environment, validated once at start (runMain exits 78 naming every bad
 * variable). Durations are milliseconds.
 *
 *   NODE_NAME=worker-1 OVS_DB=unix:/run/openvswitch/db.sock NATS_URL=nats://nats:4222 \
 *   REDIS_URL=redis://redis:6379 node services/node-agent/dist/main.js
 */
import { canonicalIp } from "@ovntap/contracts";
import { envVar, natsEnv, nodeEnv, redisEnv } from "@ovntap/runtime";
import { z } from "zod";

/** A Linux interface or network namespace name: no '/', no whitespace, at most 15 bytes for links. */
const ifName = () =>
  envVar
    .string()
    .max(15, "must be at most 15 characters (Linux IFNAMSIZ)")
    .regex(/^[^\s/]+$/, "must be an interface name (no '/' or whitespace)");
const netnsName = () =>
  envVar
    .string()
    .max(255, "must be at most 255 characters")
    .regex(/^[^\s/]+$/, "must be a network namespace name under /run/netns (no '/' or whitespace)");

export const AgentEnv = z.object({
  ...nodeEnv,
  ...natsEnv,
  ...redisEnv,
  /** The node's Open_vSwitch database, as ovs-vsctl's --db: unix:PATH or tcp:HOST:PORT. */
  OVS_DB: envVar.string().default("unix:/run/openvswitch/db.sock"),
  /**
   * OVN Southbound, for the data-plane truth of OVN mirrors (which mirrors ovn-controller must
   * program here). Default: `external_ids:ovn-remote` of the node's Open_vSwitch row, the
   * remote ovn-controller itself uses; no OVN checks when neither exists.
   */
  OVN_SB_DB: envVar.string().optional(),
  /**
   * The named network namespace (under /run/netns) holding the node's links and routes, when
   * the agent does not run in it (the lab's per-node namespace). Default: the agent's own.
   */
  NODE_NETNS: netnsName().optional(),
  /**
   * The interface tunnels leave by. Default: the one holding `external_ids:ovn-encap-ip`, else
   * the interface of the default route.
   */
  TRANSPORT_INTERFACE: ifName().optional(),
  /** Transport address of the capture exporter: the sink of `collector` targets. */
  COLLECTOR_SINK: envVar
    .string()
    .refine((s) => canonicalIp(s) !== undefined, "must be an IPv4 or IPv6 address")
    .optional(),
  /** Period of the heartbeat (KV bucket ovntap_agents and ovntap.v1.agents.<node>). */
  HEARTBEAT_INTERVAL_MS: envVar.integer({ min: 1_000, max: 3_600_000 }).default(10_000),
  /** Period of the capability probe (kernel links, transport, versions); heartbeats reuse its result. */
  PROBE_INTERVAL_MS: envVar.integer({ min: 1_000 }).default(300_000),
  /** Period of the statistics publication (OVS refreshes Mirror.statistics every 5 s by default). */
  STATS_INTERVAL_MS: envVar.integer({ min: 500 }).default(10_000),
  /** Period of the local check of owned OVS mirrors against their desired state (drift repair). */
  RECONCILE_INTERVAL_MS: envVar.integer({ min: 100 }).default(2_000),
  /** Period of the full resync with the store (new, changed, expired and deleted ovs mirrors). */
  RESYNC_INTERVAL_MS: envVar.integer({ min: 1_000 }).default(30_000),
  /**
   * How long an OVN mirror may lack its OVS rows before the agent reports it: ovn-controller
   * needs a moment after a change, and vswitchd reports mirror statistics every 5 s.
   */
  DATAPLANE_GRACE_MS: envVar.integer({ min: 0 }).default(3_000),
  /** Jobs of `node.<node>` processed at once. */
  AGENT_CONCURRENCY: envVar.integer({ min: 1, max: 64 }).default(4),
  /** How long ovs-vswitchd may take to apply a transaction (cur_cfg ≥ next_cfg) before a mirror is Degraded. */
  VSWITCHD_TIMEOUT_MS: envVar.durationMs().default(10_000),
  /**
   * BullMQ lock of a running job; a job held by an agent that died comes back after it (the
   * stall check runs every third of it).
   */
  JOB_LOCK_MS: envVar.integer({ min: 1_000 }).default(15_000),
  /** BullMQ key prefix (default BullMQ's "bull"); intake and the appliers must use the same. */
  BULLMQ_PREFIX: envVar.string().optional(),
  /** Store key prefix (default "{ovntap}"). */
  STORE_PREFIX: envVar.string().optional(),
});

export type AgentEnv = z.output<typeof AgentEnv>;

/** The agent's own settings (what createAgent needs beyond its connections). */
export interface AgentConfig {
  node: string;
  netns?: string | undefined;
  transportInterface?: string | undefined;
  collectorSink?: string | undefined;
  heartbeatIntervalMs: number;
  probeIntervalMs: number;
  statsIntervalMs: number;
  reconcileIntervalMs: number;
  resyncIntervalMs: number;
  dataplaneGraceMs: number;
  concurrency: number;
  vswitchdTimeoutMs: number;
  bullmqPrefix?: string | undefined;
  /** BullMQ lock of a job (and the stall check period is a third of it): a killed agent's job returns after it. */
  jobLockMs: number;
}

export const DEFAULT_CONFIG: Omit<AgentConfig, "node"> = {
  heartbeatIntervalMs: 10_000,
  probeIntervalMs: 300_000,
  statsIntervalMs: 10_000,
  reconcileIntervalMs: 2_000,
  resyncIntervalMs: 30_000,
  dataplaneGraceMs: 3_000,
  concurrency: 4,
  vswitchdTimeoutMs: 10_000,
  jobLockMs: 15_000,
};

export function agentConfig(env: AgentEnv): AgentConfig {
  return {
    ...DEFAULT_CONFIG,
    node: env.NODE_NAME,
    netns: env.NODE_NETNS,
    transportInterface: env.TRANSPORT_INTERFACE,
    collectorSink: env.COLLECTOR_SINK !== undefined ? canonicalIp(env.COLLECTOR_SINK) : undefined,
    heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_MS,
    probeIntervalMs: env.PROBE_INTERVAL_MS,
    statsIntervalMs: env.STATS_INTERVAL_MS,
    reconcileIntervalMs: env.RECONCILE_INTERVAL_MS,
    resyncIntervalMs: env.RESYNC_INTERVAL_MS,
    dataplaneGraceMs: env.DATAPLANE_GRACE_MS,
    concurrency: env.AGENT_CONCURRENCY,
    vswitchdTimeoutMs: env.VSWITCHD_TIMEOUT_MS,
    jobLockMs: env.JOB_LOCK_MS,
    bullmqPrefix: env.BULLMQ_PREFIX,
  };
}
