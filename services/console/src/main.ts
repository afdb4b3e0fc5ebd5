/**
 * The console process: `node services/console/dist/main.js` with NATS_URL and REDIS_URL in the
 * environment. Serves the page, its live stream, pcap downloads, /healthz, /readyz (NATS connected,
 * Redis ready, mirrors read and capture subscribed) and /metrics on HTTP_HOST:HTTP_PORT —
 * 127.0.0.1:8080 unless told otherwise (see the README's Security section).
 *
 *   NATS_URL=nats://127.0.0.1:4222 REDIS_URL=redis://127.0.0.1:6379 node services/console/dist/main.js
 */
import {
  ConfigError,
  connectNats,
  connectRedis,
  createMetrics,
  EX_CONFIG,
  natsOptionsFromEnv,
  runMain,
} from "@ovntap/runtime";
import type { NatsClient, RedisClient } from "@ovntap/runtime";
import { createStore } from "@ovntap/store";
import { allowedHosts, ConsoleEnv, consoleConfig } from "./config.js";
import type { ConsoleConfig } from "./config.js";
import { createConsole } from "./console.js";
import type { Console } from "./console.js";
import { startConsoleServer } from "./http.js";

await runMain("console", { config: ConsoleEnv }, async ({ config: env, logger, shutdown }) => {
  let config: ConsoleConfig;
  try {
    config = consoleConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`console: ${err.message}\n`);
    process.exit(EX_CONFIG);
  }
  const metrics = createMetrics();
  // Every check exists from the start: with none registered, /readyz would answer 200 at once.
  const live: { nats?: NatsClient; redis?: RedisClient; console?: Console } = {};
  const http = await startConsoleServer({
    host: env.HTTP_HOST,
    port: env.HTTP_PORT,
    logger,
    registry: metrics.registry,
    allowedHosts: allowedHosts(env),
    console: () => live.console,
    checks: {
      nats: () => live.nats?.isConnected() ?? false,
      redis: () => live.redis?.isReady() ?? false,
      console: () => live.console?.isReady() ?? false,
    },
  });
  shutdown.onShutdown("http", () => http.close());

  const nats = await connectNats({ ...natsOptionsFromEnv(env), name: "ovntap-console", logger });
  live.nats = nats;
  shutdown.onShutdown("nats", () => nats.close());
  const redis = await connectRedis({ url: env.REDIS_URL, logger, role: "client", name: "ovntap-console" });
  live.redis = redis;
  shutdown.onShutdown("redis", () => redis.close());

  const service = createConsole({
    nc: nats.nc,
    store: createStore({ redis: redis.redis, ...(env.STORE_PREFIX ? { prefix: env.STORE_PREFIX } : {}) }),
    logger,
    metrics,
    config,
  });
  live.console = service;
  // Registered last, so it runs first: end the pages' streams before the connections close.
  shutdown.onShutdown("console", () => service.stop());
  await service.start();
  logger.info({ url: http.url }, "console listening");
});
