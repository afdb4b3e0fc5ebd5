/**
 * The TrafficMirror controller process: `node services/k8s-controller/dist/main.js` with
 * NATS_URL, in a pod (its ServiceAccount reaches the API server) or with KUBERNETES=kubeconfig
 * and KUBECONFIG. Serves /healthz, /readyz (NATS connected, every TrafficMirror listed, events
 * subscribed) and /metrics on HTTP_HOST:HTTP_PORT.
 */
import { loadKubeConfig } from "@ovntap/k8s";
import { connectNats, createMetrics, natsOptionsFromEnv, runMain, startHttpServer } from "@ovntap/runtime";
import type { NatsClient } from "@ovntap/runtime";
import { ControllerEnv, controllerConfig } from "./config.js";
import { createController, type Controller } from "./controller.js";

await runMain("k8s-controller", { config: ControllerEnv }, async ({ config, logger, shutdown }) => {
  const metrics = createMetrics();
  const live: { nats?: NatsClient; controller?: Controller } = {};
  const http = await startHttpServer({
    host: config.HTTP_HOST,
    port: config.HTTP_PORT,
    logger,
    registry: metrics.registry,
    checks: {
      nats: () => live.nats?.isConnected() ?? false,
      controller: () => live.controller?.isReady() ?? false,
    },
  });
  shutdown.onShutdown("http", () => http.close());

  const mode = config.KUBERNETES ?? (process.env.KUBERNETES_SERVICE_HOST ? "in-cluster" : "kubeconfig");
  // loadKubeConfig reads KUBECONFIG itself (a colon-separated list: the first file).
  const kubeConfig = loadKubeConfig({ mode });
  const nats = await connectNats({ ...natsOptionsFromEnv(config), name: "ovntap-k8s-controller", logger });
  live.nats = nats;
  shutdown.onShutdown("nats", () => nats.close());

  const controller = createController({
    kubeConfig,
    nc: nats.nc,
    logger,
    metrics,
    config: controllerConfig(config),
  });
  live.controller = controller;
  // Registered last, so it runs first: stop reconciling before the connection closes.
  shutdown.onShutdown("controller", () => controller.stop());
  await controller.start();
});
