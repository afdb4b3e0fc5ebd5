/**
 * The capture exporter around its pipeline: the key map from the store (refreshed when lifecycle
 * events arrive and periodically), the NATS publisher, `capture_drops` events, PCAP-over-IP, the
 * optional OVNTAP_CAPTURE stream, metrics and readiness. `main.ts` connects and calls this; tests
 * call it with their own servers and sources.
 *
 *     const exporter = createExporter({ nc, store, events, logger, metrics, config, source });
 *     await exporter.start();      // key map loaded, listeners up, source running
 *     await exporter.stop();       // source stopped, batches flushed
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  CAPTURE_STREAM,
  CAPTURE_STREAM_SUBJECTS,
  EVENTS_STREAM_SUBJECTS,
  TERMINAL_PHASES,
} from "@ovntap/contracts";
import { ensureStream } from "@ovntap/runtime";
import type { Logger, Metrics, ReadinessCheck } from "@ovntap/runtime";
import type { EventLog, Store, StoredMirror } from "@ovntap/store";
import type { ExporterConfig } from "./config.js";
import { bindingsFromStore, mirrorKey } from "./keymap.js";
import type { MirrorBinding } from "./keymap.js";
import { registerMetrics } from "./metrics.js";
import { PcapOverIpServer } from "./pcap-over-ip.js";
import { CapturePipeline } from "./pipeline.js";
import type { DropReport, SealedBatch } from "./pipeline.js";
import { NatsPublisher } from "./publisher.js";
import type { CaptureSource, SourceResult } from "./source.js";

/** Who the exporter's events are from (contracts: `system:ovntap:<service>`). */
export const PRINCIPAL = "system:ovntap:capture-exporter";

export interface ExporterDeps {
  nc: NatsConnection;
  /** Connection state for the publisher and readiness (default: not closed). */
  natsConnected?: () => boolean;
  /** Where the mirrors are; without it the key map comes only from `bindings`. */
  store?: Store;
  /** Static mirrors (benchmarks, tests without Redis); used when there is no store. */
  bindings?: readonly MirrorBinding[];
  /** For `capture_drops` events; none are published without it. */
  events?: EventLog;
  logger: Logger;
  metrics?: Metrics;
  config: ExporterConfig;
  source?: CaptureSource;
  /** Extra taps on every sealed batch (after PCAP-over-IP). */
  onBatch?: (batch: SealedBatch) => void;
}

export interface Exporter {
  readonly pipeline: CapturePipeline;
  /** Undefined until start, or when PCAP-over-IP is off. */
  readonly pcapOverIp: PcapOverIpServer | undefined;
  /** Readiness checks for /readyz. */
  readonly checks: Record<string, ReadinessCheck>;
  start(): Promise<void>;
  /** Re-reads the key map now. */
  refreshKeyMap(): Promise<void>;
  /** Resolves when the source ends (a file), with what it delivered; undefined without a source. */
  sourceDone(): Promise<SourceResult | undefined>;
  stop(): Promise<void>;
}

export function createExporter(deps: ExporterDeps): Exporter {
  const { nc, config } = deps;
  const log = deps.logger.child({ component: "exporter" });
  const connected = deps.natsConnected ?? (() => !nc.isClosed());
  let pcapOverIp: PcapOverIpServer | undefined;
  const publisher = new NatsPublisher({
    nc,
    maxInFlightBytes: config.natsMaxInFlightBytes,
    isConnected: connected,
    onWritable: () => pipeline.drain(),
  });
  const pipeline: CapturePipeline = new CapturePipeline({
    node: config.node,
    publisher,
    logger: deps.logger,
    mode: config.mode,
    batch: config.batch,
    queueMaxBytes: config.queueMaxBytes,
    dedupWindowMs: config.dedupWindowMs,
    dedupCapacity: config.dedupCapacity,
    flowIntervalMs: config.flowIntervalMs,
    maxFlowsPerMirror: config.maxFlowsPerMirror,
    statsIntervalMs: config.statsIntervalMs,
    dropReportIntervalMs: config.dropEventIntervalMs,
    unknownMaxKeys: config.unknownMaxKeys,
    onBatch: (b) => {
      pcapOverIp?.offer(b);
      deps.onBatch?.(b);
    },
    onDrops: (r) => reportDrops(r),
    send: (subject, payload) => {
      if (connected()) nc.publish(subject, payload);
    },
  });
  if (deps.metrics !== undefined)
    registerMetrics(
      deps.metrics,
      () => pipeline.counters(),
      () => pcapOverIp,
    );

  let keymapLoaded = false;
  let keymapRefreshes = 0;
  let refreshing: Promise<void> | undefined;
  let again = false;
  let debounce: NodeJS.Timeout | undefined;
  let periodic: NodeJS.Timeout | undefined;
  let sub: Subscription | undefined;
  let sourceRun: Promise<SourceResult | undefined> = Promise.resolve(undefined);
  let sourceFailed = false;
  let stopped = false;

  function reportDrops(r: DropReport): void {
    const b = r.binding;
    log.warn({ mirror: mirrorKey(b.namespace, b.name), drops: r.drops, since: r.since }, "capture drops");
    const events = deps.events;
    if (events === undefined || b.requestId === "") return;
    // Loaded here: whoever passes an event log has the store loaded already, and the data path
    // (and the benchmark) then does without the store's Redis and BullMQ clients.
    import("@ovntap/store")
      .then(({ eventId, makeEvent }) =>
        events.publish(
          makeEvent("capture_drops", {
            namespace: b.namespace,
            mirror: b.name,
            generation: b.generation,
            principal: PRINCIPAL,
            requestId: b.requestId,
            eventId: eventId(b.namespace, b.name, "capture_drops", config.node, r.since.getTime()),
            detail: {
              node: config.node,
              drops: r.drops,
              since: r.since.toISOString(),
              until: r.until.toISOString(),
            },
            time: r.until,
          }),
        ),
      )
      .catch((err: unknown) => log.warn({ err }, "capture_drops event not published"));
  }

  /** The local mirror of ethernet mode, from the store when it is there. */
  function localBinding(mirrors: readonly StoredMirror[]): MirrorBinding | undefined {
    const ref = config.localMirror;
    if (ref === undefined) return undefined;
    const m = mirrors.find(
      (x) => x.record.spec.namespace === ref.namespace && x.record.spec.name === ref.name,
    );
    if (m === undefined || TERMINAL_PHASES.includes(m.status.phase)) {
      return { ...ref, generation: 0, requestId: "", tunnels: [] };
    }
    return {
      ...ref,
      generation: m.record.generation,
      requestId: m.record.requestId,
      tunnels: [],
      filter: m.record.spec.filter,
      snaplen: m.record.spec.snaplen,
    };
  }

  async function load(): Promise<void> {
    if (deps.store === undefined) {
      const bindings = deps.bindings ?? [];
      if (config.mode === "ethernet") {
        const local = localBinding([]);
        const own = bindings.find((b) => b.namespace === local?.namespace && b.name === local.name);
        pipeline.setLocalMirror(own ?? local!);
      } else {
        pipeline.setBindings(bindings);
      }
      keymapLoaded = true;
      return;
    }
    const mirrors = await deps.store.listMirrors();
    if (config.mode === "ethernet") {
      pipeline.setLocalMirror(localBinding(mirrors)!);
    } else {
      const { bindings, conflicts } = bindingsFromStore(mirrors);
      for (const c of conflicts) log.warn(c, "two mirrors claim one tunnel; the first keeps it");
      pipeline.setBindings(bindings);
      log.debug({ mirrors: bindings.length }, "key map loaded");
    }
    keymapLoaded = true;
    keymapRefreshes++;
  }

  async function refreshKeyMap(): Promise<void> {
    if (refreshing !== undefined) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      try {
        do {
          again = false;
          await load();
        } while (again && !stopped);
      } catch (err) {
        log.error({ err }, "key map refresh failed; keeping the previous one");
      } finally {
        refreshing = undefined;
      }
    })();
    return refreshing;
  }

  function scheduleRefresh(): void {
    if (stopped) return;
    if (debounce !== undefined) return;
    debounce = setTimeout(() => {
      debounce = undefined;
      void refreshKeyMap();
    }, config.keymapDebounceMs);
  }

  return {
    pipeline,
    get pcapOverIp() {
      return pcapOverIp;
    },
    checks: {
      nats: () => connected(),
      keymap: () => keymapLoaded,
      source: () => !sourceFailed,
    },
    refreshKeyMap,
    sourceDone: () => sourceRun,

    async start() {
      if (config.captureStream !== undefined) {
        await ensureStream(
          nc,
          {
            name: CAPTURE_STREAM,
            subjects: [CAPTURE_STREAM_SUBJECTS],
            storage: config.captureStream.storage,
            retention: "limits",
            discard: "old",
            maxAgeMs: config.captureStream.maxAgeMs,
            maxBytes: config.captureStream.maxBytes,
            description: "ovntap packet batches, kept for replay",
          },
          { logger: deps.logger },
        );
      }
      if (deps.events !== undefined) await deps.events.ensure();
      if (deps.store !== undefined) {
        // Lifecycle events say when mirrors change; the exporter's own capture_drops do not.
        sub = nc.subscribe(EVENTS_STREAM_SUBJECTS, {
          callback: (err, msg) => {
            if (err !== null) return;
            try {
              const type = (JSON.parse(msg.string()) as { type?: unknown }).type;
              if (type === "capture_drops") return;
            } catch {
              // not JSON: refresh anyway, it costs one read
            }
            scheduleRefresh();
          },
        });
        periodic = setInterval(() => void refreshKeyMap(), config.keymapRefreshMs);
        periodic.unref();
      }
      await refreshKeyMap();
      if (!keymapLoaded) log.warn("starting without a key map; retrying every KEYMAP_REFRESH_MS");
      if (config.pcapOverIp !== undefined) {
        pcapOverIp = await PcapOverIpServer.start({
          host: config.pcapOverIp.host,
          port: config.pcapOverIp.port,
          logger: deps.logger,
          clientBufferBytes: config.pcapOverIp.clientBufferBytes,
          maxClients: config.pcapOverIp.maxClients,
        });
      }
      pipeline.start();
      const source = deps.source;
      if (source !== undefined) {
        log.info({ source: source.description, mode: config.mode, node: config.node }, "capture started");
        sourceRun = source.run(pipeline).then(
          (result) => {
            pipeline.sealAll();
            log.info({ source: source.description, ...result }, "capture source ended");
            return result;
          },
          (err: unknown) => {
            sourceFailed = true;
            log.error({ err, source: source.description }, "capture source failed");
            return undefined;
          },
        );
      }
    },

    async stop() {
      stopped = true;
      clearTimeout(debounce);
      clearInterval(periodic);
      deps.source?.stop();
      await sourceRun;
      if (sub !== undefined) sub.unsubscribe();
      await refreshing;
      await pipeline.stop();
      await pcapOverIp?.close();
      log.info({ refreshes: keymapRefreshes, ...summary(pipeline) }, "exporter stopped");
    },
  };
}

function summary(p: CapturePipeline): Record<string, unknown> {
  const c = p.counters();
  return { frames: c.frames, unknown: c.unknown, drops: c.drops, decapErrors: c.decapErrors };
}
