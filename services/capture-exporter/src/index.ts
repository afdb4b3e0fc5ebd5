/**
 * @ovntap/capture-exporter — decapsulates mirrored traffic (GRE, ERSPAN II/III) or reads a local
 * mirror interface, attributes frames to their mirror, filters, truncates, dedupes, and publishes
 * batches of pcap records to `ovntap.v1.capture.<ns>.<mirror>.<node>`, with flow summaries, stats
 * and a PCAP-over-IP listener.
 *
 *     const exporter = createExporter({ nc, store, events, logger, metrics, config, source });
 *     await exporter.start();
 *
 * The data path alone (what the benchmark drives):
 *
 *     const pipeline = new CapturePipeline({ node, publisher: new NatsPublisher({ nc }), logger });
 *     pipeline.setBindings([{ namespace, name, generation, requestId, sink, tunnels }]);
 *     await new FileReplaySource({ path }).run(pipeline);
 *     await pipeline.stop();
 */
export { createExporter, PRINCIPAL, type Exporter, type ExporterDeps } from "./exporter.js";
export {
  DEFAULT_CONFIG,
  DEFAULT_ENCAP_BPF,
  ExporterEnv,
  exporterConfig,
  type ExporterConfig,
  type SourceConfig,
} from "./config.js";
export {
  CapturePipeline,
  DROP_REASONS,
  type BatchLimits,
  type DropReason,
  type DropReport,
  type MirrorCounters,
  type PipelineCounters,
  type PipelineOptions,
  type SealedBatch,
} from "./pipeline.js";
export { NatsPublisher, type BatchPublisher, type NatsPublisherOptions } from "./publisher.js";
export { FileReplaySource, type FileReplayOptions } from "./file-source.js";
export {
  captureDevices,
  LiveCaptureError,
  LiveCaptureSource,
  WallClock,
  type LiveCaptureOptions,
} from "./live-source.js";
export type { CaptureSource, FrameSink, SourceResult } from "./source.js";
export {
  bindingsFromStore,
  mirrorKey,
  TunnelIndex,
  type BindingConflict,
  type MirrorBinding,
} from "./keymap.js";
export { CompiledFilter, compileFilter } from "./filter.js";
export { DedupTable, type DedupOptions } from "./dedup.js";
export { FlowTable } from "./flows.js";
export { InnerParser } from "./inner.js";
export { ENCAP_NAMES, TunnelParser, type EncapName } from "./tunnel.js";
export { PcapOverIpServer, type PcapOverIpOptions } from "./pcap-over-ip.js";
export { registerMetrics } from "./metrics.js";
