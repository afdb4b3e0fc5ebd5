/**
 * @ovntap/k8s — Kubernetes for ovntap, on @kubernetes/client-node: where the API is (in-cluster
 * or a kubeconfig), informers that list, watch, resume and relist on 410 Gone, label selectors
 * resolved to Kube-OVN's logical switch ports `<pod>.<namespace>` and kept in sync, sink pods
 * resolved through `ips.kubeovn.io`, Events on the pods ovntap acts on, and the exact API calls
 * each component makes (what its RBAC must grant).
 *
 *   const kube = startKubernetes({ kubeConfig: loadKubeConfig({ mode: "in-cluster" }), logger });
 *   await kube.waitForSync(30_000);
 *   kube.pods.subscribe("shop", { matchLabels: { app: "web" } }, ({ ports }) => reconcile(ports));
 *
 * Tests use the fake API server from `@ovntap/k8s/testing`.
 */
export {
  apiCallKey,
  apiCallKeys,
  APPLIER_API_CALLS,
  distinctApiCalls,
  toApiCall,
  type ApiCall,
  type ApiVerb,
} from "./calls.js";
export {
  KUBERNETES_MODES,
  KubeConfigError,
  kubernetesMode,
  loadKubeConfig,
  SERVICE_ACCOUNT_DIR,
  type KubernetesMode,
  type LoadKubeConfigOptions,
} from "./config.js";
export {
  COMBINED_PREFIX,
  EventRecorder,
  type EventRecorderOptions,
  type EventRecorderStats,
  type EventType,
  type InvolvedObject,
} from "./events.js";
export {
  Informer,
  type InformerEvents,
  type InformerOptions,
  type InformerStats,
  type Keyed,
  type ListResult,
} from "./informer.js";
export { startKubernetes, type Kubernetes, type KubernetesOptions } from "./kubernetes.js";
export { namespaceInfo, namespaceInformer, type NamespaceInfo } from "./namespaces.js";
export {
  hasLogicalPort,
  PodIndex,
  podInfo,
  podInformer,
  podPortName,
  type DetachReason,
  type PodInfo,
  type PodRef,
  type SelectionChange,
} from "./pods.js";
export {
  formatLabelSelector,
  LabelSelectorSyntaxError,
  matchesLabelSelector,
  parseLabelSelector,
} from "./selector.js";
export {
  ipObjectName,
  KUBE_OVN_IPS,
  kubeOvnIp,
  kubeOvnIpInformer,
  sinkAddressOf,
  SinkResolver,
  type KubeOvnIp,
  type ResolvedSink,
  type SinkPodRef,
} from "./sinks.js";
