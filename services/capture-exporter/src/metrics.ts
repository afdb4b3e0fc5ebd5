/**
 * Prometheus metrics of the exporter, read from the pipeline's counters when scraped: the hot path
 * keeps plain numbers and never calls prom-client per packet.
 *
 *   ovntap_exporter_frames_total                      frames from the source
 *   ovntap_exporter_packets_total{mirror}             frames attributed to a mirror ("_unknown" for unknown keys)
 *   ovntap_exporter_bytes_total{mirror}               their wire bytes
 *   ovntap_exporter_published_packets_total{mirror}   frames published in batches
 *   ovntap_exporter_batches_total{mirror}             batches published
 *   ovntap_exporter_filtered_total{mirror}            left out by the mirror's filter
 *   ovntap_exporter_duplicates_total{mirror}          left out by dedup
 *   ovntap_exporter_drops_total{reason}               lost in the exporter: queue_full, publish_error, unknown_overflow, pcap_client
 *   ovntap_exporter_unknown_packets_total             frames whose key maps to no mirror
 *   ovntap_exporter_decap_errors_total{reason}        frames that are no tunnel packet we unwrap (not-gre, truncated, …)
 *   ovntap_exporter_queue_batches / _queue_bytes      sealed batches waiting for NATS
 *   ovntap_exporter_inflight_bytes                    bytes handed to NATS and not yet acknowledged
 *   ovntap_exporter_flow_overflow_packets_total       packets of flows beyond FLOW_MAX_PER_MIRROR
 *   ovntap_exporter_pcap_clients                      PCAP-over-IP clients connected
 */
import type { Counter, Gauge } from "prom-client";
import type { Metrics } from "@ovntap/runtime";
import type { PcapOverIpServer } from "./pcap-over-ip.js";
import type { MirrorCounters, PipelineCounters } from "./pipeline.js";

export function registerMetrics(
  metrics: Metrics,
  counters: () => PipelineCounters,
  pcap: () => PcapOverIpServer | undefined,
): void {
  // One snapshot per scrape, shared by every collector.
  let snap: PipelineCounters | undefined;
  let snapAt = 0;
  const read = (): PipelineCounters => {
    const now = Date.now();
    if (snap === undefined || now - snapAt > 100) {
      snap = counters();
      snapAt = now;
    }
    return snap;
  };

  const perMirror = (name: string, help: string, field: keyof Omit<MirrorCounters, "mirror">) =>
    metrics.counter({
      name,
      help,
      labelNames: ["mirror"],
      collect(this: Counter<"mirror">) {
        this.reset();
        for (const m of read().mirrors) this.inc({ mirror: m.mirror }, m[field]);
      },
    });
  perMirror("exporter_packets_total", "Frames attributed to a mirror (after decapsulation)", "packets");
  perMirror("exporter_bytes_total", "Wire bytes of the frames attributed to a mirror", "bytes");
  perMirror("exporter_published_packets_total", "Frames published in capture batches", "published");
  perMirror("exporter_batches_total", "Capture batches published", "batches");
  perMirror("exporter_filtered_total", "Frames left out by the mirror's filter", "filtered");
  perMirror("exporter_duplicates_total", "Frames left out as duplicates", "duplicates");

  const total = (name: string, help: string, value: (c: PipelineCounters) => number) =>
    metrics.counter({
      name,
      help,
      collect(this: Counter) {
        this.reset();
        this.inc(value(read()));
      },
    });
  total("exporter_frames_total", "Frames from the capture source", (c) => c.frames);
  total("exporter_unknown_packets_total", "Frames whose key maps to no mirror", (c) => c.unknown);
  total(
    "exporter_flow_overflow_packets_total",
    "Packets of flows beyond the per-mirror flow limit",
    (c) => c.flowOverflow,
  );

  metrics.counter({
    name: "exporter_drops_total",
    help: "Frames lost inside the exporter, by reason",
    labelNames: ["reason"],
    collect(this: Counter<"reason">) {
      this.reset();
      const c = read();
      for (const [reason, n] of Object.entries(c.drops)) this.inc({ reason }, n);
      this.inc({ reason: "unknown_overflow" }, c.unknownOverflow);
      this.inc({ reason: "pcap_client" }, pcap()?.drops ?? 0);
    },
  });
  metrics.counter({
    name: "exporter_decap_errors_total",
    help: "Frames that are not a GRE/ERSPAN packet the exporter unwraps, by reason",
    labelNames: ["reason"],
    collect(this: Counter<"reason">) {
      this.reset();
      for (const [reason, n] of Object.entries(read().decapErrors)) this.inc({ reason }, n ?? 0);
    },
  });

  const gauge = (name: string, help: string, value: () => number) =>
    metrics.gauge({
      name,
      help,
      collect(this: Gauge) {
        this.set(value());
      },
    });
  gauge("exporter_queue_batches", "Sealed batches waiting for NATS", () => read().queueBatches);
  gauge("exporter_queue_bytes", "Bytes of sealed batches waiting for NATS", () => read().queueBytes);
  gauge(
    "exporter_inflight_bytes",
    "Bytes handed to NATS and not yet acknowledged",
    () => read().inFlightBytes,
  );
  gauge("exporter_pcap_clients", "PCAP-over-IP clients connected", () => pcap()?.clientCount ?? 0);
}
