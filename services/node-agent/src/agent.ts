/**
 * The node agent: one per node. Announces the node's capabilities, reports the data-plane truth
 * of OVN mirrors, publishes mirror statistics, and applies `ovs`-source mirrors from the
 * `node.<node>` queue (see mirrors/).
 *
 *   const agent = await createAgent({ node, ovs, sb, nc, redis, workerRedis, store, events, logger, metrics });
 *   await agent.start();
 *   http.addCheck("ovs", agent.checks.ovs);
 *   …
 *   await agent.stop();
 */
import type { KV } from "@nats-io/kv";
import type { OvsdbClient } from "@ovntap/ovsdb";
import type { Logger, Metrics, NatsClient } from "@ovntap/runtime";
import type { EventLog, Store } from "@ovntap/store";
import type { Redis } from "ioredis";
import { createAnnouncer, openBucket, type Announcer } from "./announce.js";
import { DEFAULT_CONFIG, type AgentConfig } from "./config.js";
import { DATAPLANE_KV_BUCKET, DataplaneWatcher } from "./dataplane.js";
import { createIp, type Ip } from "./net/ip.js";
import { SbState } from "./ovn/sb.js";
import { OvsState } from "./ovs/state.js";
import { bridgesOf, probeCapabilities, type ProbeResult } from "./probe.js";
import { createStatsPublisher, type StatsPublisher } from "./stats.js";
import { createMirrorService, type MirrorService } from "./mirrors/service.js";

/** Who events say acted when the agent acts (contracts events.ts). */
export const PRINCIPAL = "system:ovntap:node-agent";

export interface AgentDeps {
  /** The node's Open_vSwitch database; the agent monitors through it. The caller closes it. */
  ovs: OvsdbClient;
  /** OVN Southbound, for OVN mirrors' data-plane truth; without it that check is off. */
  sb?: OvsdbClient | undefined;
  nc?: NatsClient["nc"] | undefined;
  /** Store, queue producer ("client" role connection). */
  redis?: Redis | undefined;
  /** For the BullMQ Worker ("worker" role: maxRetriesPerRequest null). */
  workerRedis?: Redis | undefined;
  store?: Store | undefined;
  events?: Pick<EventLog, "publish"> | undefined;
  logger: Logger;
  metrics?: Metrics | undefined;
  config: Partial<AgentConfig> & { node: string };
  /** iproute2 (tests inject a recorder); the real `ip` in config.netns by default. */
  ip?: Ip | undefined;
  natsConnected?: () => boolean;
  storePrefix?: string | undefined;
  now?: () => Date;
}

export interface Agent {
  readonly ovs: OvsState;
  readonly sb: SbState | undefined;
  readonly announcer: Announcer | undefined;
  readonly dataplane: DataplaneWatcher | undefined;
  readonly stats: StatsPublisher;
  readonly mirrors: MirrorService | undefined;
  /** The last capability probe. */
  readonly probe: ProbeResult | undefined;
  readonly checks: Readonly<Record<string, () => boolean>>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function createAgent(deps: AgentDeps): Promise<Agent> {
  const config: AgentConfig = { ...DEFAULT_CONFIG, ...deps.config };
  const log = deps.logger.child({ node: config.node });
  const ip = deps.ip ?? createIp({ netns: config.netns });
  const ovs = await OvsState.start(deps.ovs, { logger: log });
  const sb = deps.sb ? await SbState.start(deps.sb, { logger: log }) : undefined;
  let probe: ProbeResult | undefined;

  const runProbe = async () => {
    probe = await probeCapabilities({
      ip,
      ovs,
      logger: log,
      transportInterface: config.transportInterface,
      sbSchema: deps.sb ? await deps.sb.schema("OVN_Southbound").catch(() => undefined) : undefined,
    });
    return probe;
  };

  const mirrors =
    deps.redis && deps.workerRedis && deps.store
      ? await createMirrorService({
          node: config.node,
          ovs,
          sb,
          ip,
          redis: deps.redis,
          workerRedis: deps.workerRedis,
          store: deps.store,
          events: deps.events,
          logger: log,
          metrics: deps.metrics,
          config,
          principal: PRINCIPAL,
          storePrefix: deps.storePrefix,
          transport: () => probe?.transport,
          kernelRelease: () => probe?.capabilities.versions.kernel,
          ...(deps.now ? { now: deps.now } : {}),
        })
      : undefined;

  const announcer = deps.nc
    ? createAnnouncer({
        nc: deps.nc,
        node: config.node,
        probe: async () => (await runProbe()).capabilities,
        bridges: () => bridgesOf(ovs),
        ownedMirrors: () => mirrors?.ownedCount() ?? 0,
        logger: log,
        heartbeatIntervalMs: config.heartbeatIntervalMs,
        probeIntervalMs: config.probeIntervalMs,
        ...(deps.now ? { now: deps.now } : {}),
      })
    : undefined;

  let dataplaneKv: KV | undefined;
  const dataplane = sb
    ? new DataplaneWatcher({
        node: config.node,
        ovs,
        expected: () => {
          const chassis = ovs.root()?.external_ids["system-id"];
          return chassis ? sb.expectedMirrors(chassis) : new Map();
        },
        subscribe: (onChange) => {
          ovs.on("change", onChange);
          sb.on("change", onChange);
          ovs.on("resync", onChange);
          sb.on("resync", onChange);
          return () => {
            ovs.off("change", onChange);
            sb.off("change", onChange);
            ovs.off("resync", onChange);
            sb.off("resync", onChange);
          };
        },
        get kv() {
          return dataplaneKv;
        },
        events: deps.events,
        store: deps.store,
        logger: log,
        graceMs: config.dataplaneGraceMs,
        principal: PRINCIPAL,
        ...(deps.now ? { now: deps.now } : {}),
      })
    : undefined;

  const stats = createStatsPublisher({
    nc: deps.nc,
    node: config.node,
    ovs,
    logger: log,
    metrics: deps.metrics,
    intervalMs: config.statsIntervalMs,
    ...(deps.now ? { now: deps.now } : {}),
  });

  let started = false;
  return {
    ovs,
    sb,
    announcer,
    dataplane,
    stats,
    mirrors,
    get probe() {
      return probe;
    },
    checks: {
      ovs: () => ovs.ready,
      ...(sb ? { sb: () => sb.ready } : {}),
      ...(deps.nc ? { nats: () => deps.natsConnected?.() ?? true } : {}),
      ...(deps.redis ? { redis: () => deps.redis?.status === "ready" } : {}),
      ...(mirrors ? { worker: () => started && mirrors.running() } : {}),
    },
    async start() {
      if (started) return;
      started = true;
      if (deps.nc && dataplane) dataplaneKv = await openBucket(deps.nc, DATAPLANE_KV_BUCKET);
      // The probe first: preflight needs the transport and the kernel release.
      if (announcer) await announcer.start();
      else await runProbe().catch((err: unknown) => log.warn({ err }, "capability probe failed"));
      dataplane?.start();
      stats.start();
      await mirrors?.start();
      log.info({ ovnChecks: sb !== undefined }, "node-agent started");
    },
    async stop() {
      if (!started) return;
      started = false;
      await mirrors?.stop();
      stats.stop();
      await dataplane?.stop();
      await announcer?.stop();
      await sb?.stop();
      await ovs.stop();
      log.info({}, "node-agent stopped");
    },
  };
}
