/**
 * The TrafficMirror controller: an informer on every TrafficMirror, a work queue of their keys,
 * and triggers — the informer's changes, the mirrors' lifecycle events on NATS
 * (`ovntap.v1.events.<ns>.<mirror>`, the mirror named as its resource), and a periodic resync of
 * every resource. Each pass is `reconcile` (reconcile.ts), which reads intake's view afresh:
 * triggers only say when to look.
 *
 *     const controller = createController({ kubeConfig, nc, logger });
 *     await controller.start();        // resolves once the informer has listed every resource
 *     controller.isReady();
 *     await controller.stop();
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { EVENTS_STREAM_SUBJECTS, parseSubject } from "@ovntap/contracts";
import type { Informer } from "@ovntap/k8s";
import type { Logger, Metrics } from "@ovntap/runtime";
import { DEFAULT_CONFIG, type ControllerConfig } from "./config.js";
import { createIntakeClient, type IntakeClient } from "./intake-client.js";
import { trafficMirrorInformer, trafficMirrorWriter } from "./kube.js";
import { createWorkQueue } from "./queue.js";
import { reconcile, type TrafficMirrorWriter } from "./reconcile.js";
import { keyOf, splitKey, type TrafficMirror } from "./resource.js";

export interface ControllerDeps {
  kubeConfig: KubeConfig;
  nc: NatsConnection;
  logger: Logger;
  metrics?: Metrics;
  config?: Partial<ControllerConfig>;
  /** Defaults: requests over `nc`, writes through `kubeConfig`. */
  intake?: IntakeClient;
  kube?: TrafficMirrorWriter;
}

export interface Controller {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Listed every resource, and subscribed to the lifecycle events. */
  isReady(): boolean;
  readonly informer: Informer<TrafficMirror>;
}

/** Event types that are the answers to requests the controller itself sent (it has the reply). */
const OWN_ANSWERS = new Set(["requested", "rejected"]);

export function createController(deps: ControllerDeps): Controller {
  const config: ControllerConfig = { ...DEFAULT_CONFIG, ...deps.config };
  const log = deps.logger.child({ component: "k8s-controller" });
  const informer = trafficMirrorInformer(deps.kubeConfig, deps.logger);
  const intake = deps.intake ?? createIntakeClient({ nc: deps.nc, timeoutMs: config.requestTimeoutMs });
  const kube = deps.kube ?? trafficMirrorWriter(deps.kubeConfig);
  const reconciles = deps.metrics?.counter({
    name: "k8s_controller_reconciles_total",
    help: "TrafficMirror reconciles by result",
    labelNames: ["result"],
  });
  const depth = deps.metrics?.gauge({
    name: "k8s_controller_queue_depth",
    help: "TrafficMirrors waiting or being reconciled",
  });

  const queue = createWorkQueue({
    concurrency: config.concurrency,
    retryBaseMs: config.retryBaseMs,
    retryMaxMs: config.retryMaxMs,
    logger: log,
    onResult: (result) => {
      reconciles?.inc({ result });
      depth?.set(queue.depth);
    },
    handle: async (key) => {
      const { namespace, name } = splitKey(key);
      const tm = informer.get(namespace, name);
      if (!tm) return undefined;
      const result = await reconcile(
        {
          intake,
          kube,
          principal: config.principal,
          logger: log,
          replacePollMs: config.replacePollMs,
        },
        tm,
      );
      return result.requeueAfterMs;
    },
  });

  const enqueue = (tm: TrafficMirror) => queue.add(keyOf(tm));
  informer.on("add", enqueue);
  informer.on("update", enqueue);
  informer.on("delete", enqueue);

  let events: Subscription | undefined;
  let resync: NodeJS.Timeout | undefined;
  let started = false;

  return {
    informer,
    async start() {
      if (started) return;
      started = true;
      events = deps.nc.subscribe(EVENTS_STREAM_SUBJECTS, {
        callback: (err, msg) => {
          if (err) return void log.warn({ err }, "lifecycle event subscription failed");
          const parsed = parseSubject(msg.subject);
          if (parsed?.kind !== "events") return;
          let type: unknown;
          try {
            type = (msg.json<{ type?: unknown }>() ?? {}).type;
          } catch {
            return;
          }
          if (typeof type === "string" && OWN_ANSWERS.has(type)) return;
          if (informer.get(parsed.namespace, parsed.mirror))
            queue.add(`${parsed.namespace}/${parsed.mirror}`);
        },
      });
      informer.start();
      await informer.waitForSync();
      resync = setInterval(() => {
        for (const tm of informer.list()) enqueue(tm);
      }, config.resyncIntervalMs);
      resync.unref();
      log.info({ resources: informer.list().length }, "TrafficMirror controller started");
    },
    async stop() {
      clearInterval(resync);
      events?.unsubscribe();
      await informer.stop();
      await queue.stop();
    },
    isReady: () => informer.synced && events !== undefined && !events.isClosed(),
  };
}
