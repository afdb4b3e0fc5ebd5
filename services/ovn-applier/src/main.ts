/**
 * The ovn-applier process: connections, then createApplier, then /healthz /readyz /metrics.
 * Shutdown runs in reverse: HTTP, the worker (running jobs finish), Kubernetes (its informers,
 * the Events still queued), NB, Redis, NATS.
 *
 *   OVN_NB_DB=unix:/run/ovn/ovnnb_db.sock NATS_URL=nats://127.0.0.1:4222 \
 *   REDIS_URL=redis://127.0.0.1:6379 node services/ovn-applier/dist/main.js
 */
import { hostname } from "node:os";
import { kubernetesMode, loadKubeConfig, startKubernetes, type Kubernetes } from "@ovntap/k8s";
import { OvsdbClient } from "@ovntap/ovsdb";
import { connectNats, connectRedis, createMetrics, runMain, startHttpServer } from "@ovntap/runtime";
import { createEventLog, createStore } from "@ovntap/store";
import { createApplier } from "./applier.js";
import { ApplierEnv, applierConfig } from "./config.js";

await runMain("ovn-applier", { config: ApplierEnv }, async ({ config, logger, shutdown }) => {
  const metrics = createMetrics();
  const nats = await connectNats({
    url: config.NATS_URL,
    name: "ovn-applier",
    logger,
    ...(config.NATS_CREDS_FILE ? { credsFile: config.NATS_CREDS_FILE } : {}),
    ...(config.NATS_USER ? { user: config.NATS_USER } : {}),
    ...(config.NATS_PASSWORD ? { pass: config.NATS_PASSWORD } : {}),
    ...(config.NATS_TOKEN ? { token: config.NATS_TOKEN } : {}),
  });
  shutdown.onShutdown("nats", () => nats.close());
  const redis = await connectRedis({ url: config.REDIS_URL, logger, role: "client", name: "ovn-applier" });
  shutdown.onShutdown("redis", () => redis.close());
  const workerRedis = await connectRedis({
    url: config.REDIS_URL,
    logger,
    role: "worker",
    name: "ovn-applier-worker",
  });
  shutdown.onShutdown("redis-worker", () => workerRedis.close());
  const nb = await OvsdbClient.connect({
    remote: config.OVN_NB_DB,
    database: "OVN_Northbound",
    logger: logger.child({ component: "ovsdb" }),
  });
  shutdown.onShutdown("ovn-nb", () => nb.close());

  // Kubernetes: selector sources, sink pods, Events. The informers list and watch on their own;
  // until they have listed, selector and pod-sink mirrors wait (retryable), the rest go on.
  const mode = kubernetesMode(config.KUBERNETES, process.env);
  let kubernetes: Kubernetes | undefined;
  if (mode !== "off") {
    // KUBECONFIG (validated by ApplierEnv) is read by loadKubeConfig, a list's first file.
    const kubeConfig = loadKubeConfig({ mode, env: process.env });
    const kube = startKubernetes({
      kubeConfig,
      logger,
      instance: hostname(),
    });
    kubernetes = kube;
    shutdown.onShutdown("kubernetes", () => kube.stop());
    logger.info({ mode, server: kubeConfig.getCurrentCluster()?.server }, "kubernetes on");
  } else {
    logger.info({}, "kubernetes off: selector sources and sink pods are refused (set KUBERNETES)");
  }

  const events = createEventLog({ nc: nats.nc, logger });
  await events.ensure();
  const store = createStore({
    redis: redis.redis,
    ...(config.STORE_PREFIX ? { prefix: config.STORE_PREFIX } : {}),
  });
  const applier = await createApplier({
    nb,
    redis: redis.redis,
    workerRedis: workerRedis.redis,
    store,
    events,
    logger,
    metrics,
    config: applierConfig(config),
    natsConnected: () => nats.isConnected(),
    nc: nats.nc,
    storePrefix: config.STORE_PREFIX,
    kubernetes,
  });
  shutdown.onShutdown("applier", () => applier.stop());

  const http = await startHttpServer({
    host: config.HTTP_HOST,
    port: config.HTTP_PORT,
    logger,
    registry: metrics.registry,
    // Ready = NB connected with its monitor synced, Redis ready, NATS connected, worker running.
    checks: {
      ...applier.checks,
      redis: () => redis.isReady() && workerRedis.isReady(),
      nats: () => nats.isConnected(),
    },
  });
  shutdown.onShutdown("http", () => http.close());
  await applier.start();
  logger.info({ port: http.port }, "ovn-applier listening");
});
