/**
 * Everything a component needs from Kubernetes, started together: the pod index (selectors to
 * ports, pod → node), sink pods through `ips.kubeovn.io`, and the Event recorder.
 *
 *   const kube = startKubernetes({ kubeConfig: loadKubeConfig({ mode: "in-cluster" }), logger });
 *   await kube.waitForSync(30_000);
 *   kube.pods.portsFor("shop", { matchLabels: { app: "web" } });
 *   kube.sinks.resolve({ namespace: "tap", name: "sink" });
 *   kube.events.event(pod, "Normal", "MirrorAttached", "…");
 *   await kube.stop();
 *
 * The calls this makes are APPLIER_API_CALLS: list and watch of pods and of ips.kubeovn.io,
 * create and patch of events.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "@ovntap/runtime";
import { EventRecorder, type EventRecorderOptions } from "./events.js";
import type { InformerOptions } from "./informer.js";
import { PodIndex, podInformer } from "./pods.js";
import { kubeOvnIpInformer, SinkResolver } from "./sinks.js";

export interface KubernetesOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** The Event recorder's reportingInstance (the pod's name). */
  instance?: string;
  /** Informer tuning (tests shorten these). */
  informer?: Partial<Pick<InformerOptions<never>, "backoff" | "watchTimeoutSeconds" | "idleTimeoutMs">>;
  events?: Partial<Omit<EventRecorderOptions, "kubeConfig" | "logger">>;
}

export interface Kubernetes {
  readonly pods: PodIndex;
  readonly sinks: SinkResolver;
  readonly events: EventRecorder;
  /** Both informers have listed once. */
  readonly synced: boolean;
  waitForSync(timeoutMs?: number): Promise<void>;
  /** Stops the informers and writes the Events still queued. */
  stop(): Promise<void>;
}

export function startKubernetes(options: KubernetesOptions): Kubernetes {
  const log = options.logger.child({ component: "kubernetes" });
  const tuning = { logger: log, ...options.informer };
  const podsInformer = podInformer(options.kubeConfig, tuning);
  const ipsInformer = kubeOvnIpInformer(options.kubeConfig, tuning);
  const pods = new PodIndex(podsInformer);
  const sinks = new SinkResolver(ipsInformer);
  const events = new EventRecorder({
    kubeConfig: options.kubeConfig,
    logger: log,
    ...(options.instance ? { instance: options.instance } : {}),
    ...options.events,
  });
  podsInformer.start();
  ipsInformer.start();
  return {
    pods,
    sinks,
    events,
    get synced() {
      return podsInformer.synced && ipsInformer.synced;
    },
    async waitForSync(timeoutMs) {
      await Promise.all([podsInformer.waitForSync(timeoutMs), ipsInformer.waitForSync(timeoutMs)]);
    },
    async stop() {
      await Promise.all([podsInformer.stop(), ipsInformer.stop()]);
      await events.flush();
    },
  };
}
