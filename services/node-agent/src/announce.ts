/**
 * The agent's announcement: a heartbeat with the node's capabilities, put in the JetStream KV
 * bucket `ovntap_agents` under the node name and published on `ovntap.v1.agents.<node>`.
 *
 *   const a = createAnnouncer({ nc, node, probe, bridges, ownedMirrors, logger });
 *   await a.start();     // probes, announces, then every heartbeat interval
 *   await a.stop();      // and removes the node's key: a reader sees the agent gone at once
 *
 * The full probe (kernel links, transport, versions) runs every `probeIntervalMs`; heartbeats in
 * between reuse it with the bridges' mirror counts read fresh from the OVS monitor.
 */
import { Kvm, type KV } from "@nats-io/kv";
import {
  AGENTS_KV_BUCKET,
  AgentHeartbeat,
  agentSubject,
  type AgentBridge,
  type AgentCapabilities,
} from "@ovntap/contracts";
import type { Logger, NatsClient } from "@ovntap/runtime";

export interface AnnouncerDeps {
  nc: NatsClient["nc"];
  node: string;
  /** The full capability probe. */
  probe: () => Promise<AgentCapabilities>;
  /** The bridges as they are now (cheap; read on every heartbeat). */
  bridges: () => AgentBridge[];
  /** Mirrors this agent applies now. */
  ownedMirrors: () => number;
  logger: Logger;
  heartbeatIntervalMs: number;
  probeIntervalMs: number;
  now?: () => Date;
}

export interface Announcer {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Announces now (re-probing first when `reprobe`); resolves with what was announced. */
  announce(opts?: { reprobe?: boolean }): Promise<AgentHeartbeat>;
  /** The last heartbeat announced. */
  readonly last: AgentHeartbeat | undefined;
  /** True once a heartbeat reached the KV bucket. */
  readonly ready: boolean;
}

/**
 * Opens a KV bucket, making it (one value per key) when it does not exist. `create` opens an
 * existing bucket of the same configuration; one made by someone else with other settings is
 * opened as it is.
 */
export async function openBucket(nc: NatsClient["nc"], bucket: string): Promise<KV> {
  const kvm = new Kvm(nc);
  try {
    return await kvm.create(bucket, { history: 1 });
  } catch (err) {
    try {
      return await kvm.open(bucket);
    } catch {
      throw err;
    }
  }
}

export function createAnnouncer(deps: AnnouncerDeps): Announcer {
  const log = deps.logger.child({ component: "announce" });
  const now = deps.now ?? (() => new Date());
  const startedAt = now().toISOString();
  const subject = agentSubject(deps.node);
  let kv: KV | undefined;
  let caps: AgentCapabilities | undefined;
  let probedAt = 0;
  let last: AgentHeartbeat | undefined;
  let ready = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;

  async function announce(opts: { reprobe?: boolean } = {}): Promise<AgentHeartbeat> {
    if (!caps || opts.reprobe || Date.now() - probedAt >= deps.probeIntervalMs) {
      caps = await deps.probe();
      probedAt = Date.now();
    }
    const hb = AgentHeartbeat.parse({
      node: deps.node,
      time: now().toISOString(),
      intervalSeconds: Math.max(1, Math.round(deps.heartbeatIntervalMs / 1000)),
      startedAt,
      mirrors: deps.ownedMirrors(),
      capabilities: { ...caps, bridges: deps.bridges() },
    });
    const body = JSON.stringify(hb);
    kv ??= await openBucket(deps.nc, AGENTS_KV_BUCKET);
    await kv.put(deps.node, body);
    deps.nc.publish(subject, body);
    last = hb;
    if (!ready) log.info({ subject, bucket: AGENTS_KV_BUCKET }, "agent announced");
    ready = true;
    return hb;
  }

  const tick = () => {
    if (running) return;
    running = announce()
      .catch((err: unknown) => log.warn({ err }, "heartbeat failed"))
      .finally(() => (running = undefined));
  };

  return {
    get last() {
      return last;
    },
    get ready() {
      return ready;
    },
    announce,
    async start() {
      await announce().catch((err: unknown) => log.warn({ err }, "first heartbeat failed"));
      timer = setInterval(tick, deps.heartbeatIntervalMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      await running;
      // Gone now rather than after three missed heartbeats.
      await kv?.delete(deps.node).catch((err: unknown) => log.warn({ err }, "heartbeat key not removed"));
    },
  };
}
