/**
 * @ovntap/console — a live web console: the mirrors with their phase, owner, sink, key and time to
 * expiry; per-mirror packet and byte rates; recent lifecycle events; the last N seconds of a mirror
 * as a pcap file. One page, served with its data by one small read-only service.
 *
 *     const c = createConsole({ nc, store, logger, metrics, config });
 *     await c.start();
 *     const server = await startConsoleServer({ host: "127.0.0.1", port: 0, logger,
 *       registry: metrics.registry, checks: { console: () => c.isReady() }, console: () => c });
 *     // open server.url in a browser
 */
export { createConsole, CAPTURE_WILDCARD, PCAP_SECONDS_CHOICES } from "./console.js";
export type { CaptureLoss, Console, ConsoleDeps, EventsFeed, RatesMessage, Snapshot } from "./console.js";
export { allowedHosts, ConsoleEnv, consoleConfig, DEFAULT_CONFIG, type ConsoleConfig } from "./config.js";
export {
  ASSETS_DIR,
  AssetsMissingError,
  hostAllowed,
  startConsoleServer,
  type ConsoleServer,
  type ConsoleServerOptions,
} from "./http.js";
export { PCAP_CONTENT_TYPE, pcapFileName, pcapFromBatches, type PcapDownload } from "./pcap.js";
export {
  RATE_AVERAGE_SECONDS,
  RATE_WINDOW_SECONDS,
  RateBoard,
  RateSeries,
  type RateSnapshot,
  type RateTick,
} from "./rates.js";
export { recordSpans, scanRecords, type RecordScan, type RecordSpan } from "./records.js";
export {
  BATCH_OVERHEAD_BYTES,
  CaptureRing,
  type CaptureRingOptions,
  type EvictReason,
  type RingBatch,
  type RingStats,
} from "./ring.js";
export { SseHub, sseMessage, type SseHubOptions } from "./sse.js";
export { eventSummary, eventView, mirrorView, type EventView, type MirrorView } from "./view.js";
