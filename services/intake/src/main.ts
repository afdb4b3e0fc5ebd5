/**
 * The intake process: `node services/intake/dist/main.js` with NATS_URL and REDIS_URL (and
 * optionally POLICY_FILE) in the environment. Serves /healthz, /readyz (NATS connected, Redis
 * ready, events stream ensured and subscribed) and /metrics on HTTP_HOST:HTTP_PORT.
 */
import {
  connectNats,
  connectRedis,
  createMetrics,
  natsOptionsFromEnv,
  runMain,
  startHttpServer,
} from "@ovntap/runtime";
import type { NatsClient, RedisClient } from "@ovntap/runtime";
import { IntakeEnv } from "./config.js";
import { createIntake } from "./intake.js";
import type { Intake } from "./intake.js";
import { staticPolicy, watchPolicyFile } from "./policy-source.js";

await runMain("intake", { config: IntakeEnv }, async ({ config, logger, shutdown }) => {
  const metrics = createMetrics();
  const policyReloads = metrics.counter({
    name: "intake_policy_reloads_total",
    help: "Policy file reloads by result",
    labelNames: ["result"],
  });
  // Every check exists from the start: with none registered, /readyz would answer 200 at once.
  const live: { nats?: NatsClient; redis?: RedisClient; intake?: Intake } = {};
  const http = await startHttpServer({
    host: config.HTTP_HOST,
    port: config.HTTP_PORT,
    logger,
    registry: metrics.registry,
    checks: {
      nats: () => live.nats?.isConnected() ?? false,
      redis: () => live.redis?.isReady() ?? false,
      intake: () => live.intake?.isReady() ?? false,
    },
  });
  shutdown.onShutdown("http", () => http.close());

  const policy = config.POLICY_FILE
    ? await watchPolicyFile(config.POLICY_FILE, {
        logger,
        onReload: (r) => policyReloads.inc({ result: r.ok ? "ok" : "invalid" }),
      })
    : staticPolicy();
  if (!config.POLICY_FILE) logger.warn("no POLICY_FILE, using the built-in default policy");
  shutdown.onShutdown("policy", () => policy.close());

  const natsClient = await connectNats({ ...natsOptionsFromEnv(config), name: "ovntap-intake", logger });
  live.nats = natsClient;
  shutdown.onShutdown("nats", () => natsClient.close());
  const redisClient = await connectRedis({
    url: config.REDIS_URL,
    logger,
    role: "client",
    name: "ovntap-intake",
  });
  live.redis = redisClient;
  shutdown.onShutdown("redis", () => redisClient.close());

  const service = createIntake({
    nc: natsClient.nc,
    redis: redisClient.redis,
    logger,
    policy,
    metrics,
    queueGroup: config.INTAKE_QUEUE_GROUP,
    ...(config.STORE_PREFIX ? { storePrefix: config.STORE_PREFIX } : {}),
    ...(config.BULLMQ_PREFIX ? { queuePrefix: config.BULLMQ_PREFIX } : {}),
  });
  live.intake = service;
  // Registered last, so it runs first: stop taking requests before the connections close.
  shutdown.onShutdown("intake", () => service.stop());
  await service.start();
});
