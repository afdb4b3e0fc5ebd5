/**
 * The capture exporter process: connections, the capture source (libpcap on CAPTURE_INTERFACE, or
 * CAPTURE_FILE replayed), createExporter, then /healthz /readyz /metrics. Shutdown runs in
 * reverse: HTTP, the exporter (source stopped, open batches sealed and flushed), Redis, NATS.
 *
 *   NATS_URL=nats://127.0.0.1:4222 REDIS_URL=redis://127.0.0.1:6379 NODE_NAME=node-1 \
 *   CAPTURE_INTERFACE=eth1 node services/capture-exporter/dist/main.js
 */
import {
  ConfigError,
  connectNats,
  connectRedis,
  createMetrics,
  EX_CONFIG,
  natsOptionsFromEnv,
  runMain,
  startHttpServer,
} from "@ovntap/runtime";
import type { NatsClient, RedisClient } from "@ovntap/runtime";
import { createEventLog, createStore } from "@ovntap/store";
import { ExporterEnv, exporterConfig } from "./config.js";
import { createExporter } from "./exporter.js";
import type { Exporter } from "./exporter.js";
import { FileReplaySource } from "./file-source.js";
import { LiveCaptureSource } from "./live-source.js";
import type { CaptureSource } from "./source.js";

await runMain("capture-exporter", { config: ExporterEnv }, async ({ config: env, logger, shutdown }) => {
  let settings: ReturnType<typeof exporterConfig>;
  try {
    settings = exporterConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`capture-exporter: ${err.message}\n`);
    process.exit(EX_CONFIG);
  }
  const { config, source: sourceConfig } = settings;
  const metrics = createMetrics({ defaultLabels: { node: config.node } });
  // Every check exists from the start: with none registered, /readyz would answer 200 at once.
  const live: { nats?: NatsClient; redis?: RedisClient; exporter?: Exporter } = {};
  const http = await startHttpServer({
    host: env.HTTP_HOST,
    port: env.HTTP_PORT,
    logger,
    registry: metrics.registry,
    checks: {
      nats: () => live.nats?.isConnected() ?? false,
      redis: () => live.redis?.isReady() ?? false,
      keymap: () => live.exporter?.checks.keymap?.() ?? false,
      source: () => live.exporter?.checks.source?.() ?? false,
    },
  });
  shutdown.onShutdown("http", () => http.close());

  const nats = await connectNats({
    ...natsOptionsFromEnv(env),
    name: `ovntap-capture-exporter-${config.node}`,
    logger,
  });
  live.nats = nats;
  shutdown.onShutdown("nats", () => nats.close());
  const redis = await connectRedis({
    url: env.REDIS_URL,
    logger,
    role: "client",
    name: "ovntap-capture-exporter",
  });
  live.redis = redis;
  shutdown.onShutdown("redis", () => redis.close());

  const source: CaptureSource =
    sourceConfig.kind === "file"
      ? new FileReplaySource({ path: sourceConfig.path, timing: sourceConfig.timing })
      : new LiveCaptureSource({
          device: sourceConfig.device,
          filter: sourceConfig.bpf,
          bufferBytes: sourceConfig.bufferBytes,
        });
  const exporter = createExporter({
    nc: nats.nc,
    natsConnected: () => nats.isConnected(),
    store: createStore({ redis: redis.redis, ...(env.STORE_PREFIX ? { prefix: env.STORE_PREFIX } : {}) }),
    events: createEventLog({ nc: nats.nc, logger }),
    logger,
    metrics,
    config,
    source,
  });
  live.exporter = exporter;
  // Registered last, so it runs first: stop capturing and flush before the connections close.
  shutdown.onShutdown("exporter", () => exporter.stop());
  await exporter.start();
  // An exporter that cannot capture is of no use: exit, so the orchestrator restarts it and shows why.
  void exporter.sourceDone().then((result) => {
    if (result === undefined && !shutdown.shuttingDown) void shutdown.shutdown("capture source failed", 1);
  });
  logger.info(
    { port: http.port, pcapOverIpPort: exporter.pcapOverIp?.port, source: source.description },
    "capture-exporter listening",
  );
});
