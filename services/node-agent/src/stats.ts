/**
 * Mirror statistics: OVS `Mirror.statistics` (`tx_packets`, `tx_bytes`: what the mirror sent to
 * its output, refreshed by ovs-vswitchd every `stats-update-interval`, 5 s by default) of every
 * ovntap mirror on the node — the agent's own OVS mirrors and the OVS mirrors ovn-controller
 * made for ovntap's OVN mirrors — published as `MirrorStats` kind "ovs" on
 * `ovntap.v1.stats.<ns>.<mirror>` and exported as Prometheus gauges.
 *
 *   const stats = createStatsPublisher({ nc, node, ovs, logger, metrics, intervalMs: 10_000 });
 *   stats.start(); …; stats.stop();
 *   stats.collect();   // what would be published now
 */
import { MirrorStats, statsSubject } from "@ovntap/contracts";
import type { Logger, Metrics, NatsClient } from "@ovntap/runtime";
import { OVN_OWNED_KEY, ownerOf, parseMirrorId, parseOvnRowName } from "./names.js";
import type { OvsState } from "./ovs/state.js";

export interface StatsDeps {
  nc?: NatsClient["nc"] | undefined;
  node: string;
  ovs: OvsState;
  logger: Logger;
  metrics?: Metrics | undefined;
  intervalMs: number;
  now?: () => Date;
}

export interface StatsPublisher {
  /** The stats of every ovntap mirror on the node now (rows OVS has not counted yet are left out). */
  collect(): MirrorStats[];
  /** Publishes one round now; resolves with what was published. */
  publish(): MirrorStats[];
  start(): void;
  stop(): void;
}

export function createStatsPublisher(deps: StatsDeps): StatsPublisher {
  const log = deps.logger.child({ component: "stats" });
  const now = deps.now ?? (() => new Date());
  const labelNames = ["namespace", "mirror", "bridge", "row"] as const;
  const gauges = deps.metrics && {
    packets: deps.metrics.gauge({
      name: "node_agent_mirror_tx_packets",
      help: "Packets an OVS mirror sent to its output (OVS Mirror.statistics tx_packets)",
      labelNames,
    }),
    bytes: deps.metrics.gauge({
      name: "node_agent_mirror_tx_bytes",
      help: "Bytes an OVS mirror sent to its output (OVS Mirror.statistics tx_bytes)",
      labelNames,
    }),
    mirrors: deps.metrics.gauge({
      name: "node_agent_bridge_mirrors",
      help: "Mirror rows on an OVS bridge (OVS realizes at most 32 per bridge), everyone's",
      labelNames: ["bridge"],
    }),
  };
  let exported = new Map<string, Record<(typeof labelNames)[number], string>>();
  let timer: NodeJS.Timeout | undefined;

  function collect(): MirrorStats[] {
    const out: MirrorStats[] = [];
    const time = now().toISOString();
    for (const bridge of deps.ovs.bridges()) {
      for (const m of deps.ovs.mirrorsOn(bridge)) {
        const owner = ownerOf(m);
        const ref = owner
          ? parseMirrorId(owner)
          : m.external_ids[OVN_OWNED_KEY] === "true"
            ? parseOvnRowName(m.name)
            : undefined;
        if (!ref) continue;
        const txPackets = m.statistics.tx_packets;
        const txBytes = m.statistics.tx_bytes;
        if (txPackets === undefined || txBytes === undefined) continue;
        out.push(
          MirrorStats.parse({
            namespace: ref.namespace,
            mirror: ref.name,
            node: deps.node,
            time,
            kind: "ovs",
            bridge: bridge.name,
            row: m.name,
            txPackets,
            txBytes,
          }),
        );
      }
    }
    return out;
  }

  function publish(): MirrorStats[] {
    const stats = collect();
    const next = new Map<string, Record<(typeof labelNames)[number], string>>();
    for (const s of stats) {
      if (s.kind !== "ovs") continue;
      deps.nc?.publish(statsSubject(s.namespace, s.mirror), JSON.stringify(s));
      const labels = { namespace: s.namespace, mirror: s.mirror, bridge: s.bridge, row: s.row };
      gauges?.packets.set(labels, s.txPackets);
      gauges?.bytes.set(labels, s.txBytes);
      next.set(JSON.stringify(labels), labels);
    }
    for (const [k, labels] of exported) {
      if (next.has(k)) continue;
      gauges?.packets.remove(labels);
      gauges?.bytes.remove(labels);
    }
    exported = next;
    if (gauges) {
      gauges.mirrors.reset();
      for (const b of deps.ovs.bridges()) gauges.mirrors.set({ bridge: b.name }, b.mirrors.length);
    }
    log.debug({ mirrors: stats.length }, "stats published");
    return stats;
  }

  return {
    collect,
    publish,
    start() {
      const tick = () => {
        try {
          publish();
        } catch (err) {
          log.warn({ err }, "stats publication failed");
        }
      };
      tick();
      timer = setInterval(tick, deps.intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
