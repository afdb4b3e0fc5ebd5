/**
 * Pods as ovntap needs them: which logical switch ports a label selector stands for, kept in
 * sync as pods come, go and are relabelled, and which node a pod runs on.
 *
 *   const index = new PodIndex(podInformer(kc, { logger }));
 *   const stop = index.subscribe("shop", { matchLabels: { app: "web" } }, (change) => {
 *     change.ports;     // ["web-1.shop", "web-2.shop"]: Kube-OVN's port names, sorted
 *     change.attached;  // pods that joined
 *     change.detached;  // pods that left, with why (pod_deleted | selector_changed)
 *   });
 *   index.nodeOf("shop", "web-1");  // "node-1"
 *
 * A pod has a logical switch port (Kube-OVN names it `<pod>.<namespace>`) only while it is
 * scheduled, not terminating, not finished (Succeeded/Failed: Kube-OVN releases the port of a
 * completed pod) and not on the host network (Kube-OVN gives those none).
 */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { LabelSelector } from "@ovntap/contracts";
import type { Logger } from "@ovntap/runtime";
import { Informer, type InformerOptions } from "./informer.js";
import { formatLabelSelector, matchesLabelSelector } from "./selector.js";

/** What the index keeps of a pod. */
export interface PodInfo {
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly labels: Readonly<Record<string, string>>;
  };
  readonly nodeName: string | undefined;
  readonly hostNetwork: boolean;
  readonly phase: string | undefined;
  /** metadata.deletionTimestamp is set. */
  readonly terminating: boolean;
}

/** A pod reference as lifecycle events carry it. */
export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
  readonly node?: string;
}

const record = (v: unknown): Record<string, unknown> =>
  typeof v === "object" && v !== null ? (v as Record<string, unknown>) : {};

/** A pod from a list (client-node's V1Pod, dates as Date) or a watch event (plain JSON). */
export function podInfo(raw: unknown): PodInfo {
  const meta = record(record(raw).metadata);
  const spec = record(record(raw).spec);
  const status = record(record(raw).status);
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(record(meta.labels))) if (typeof v === "string") labels[k] = v;
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  return {
    metadata: {
      name: str(meta.name) ?? "",
      namespace: str(meta.namespace) ?? "",
      ...(str(meta.uid) ? { uid: str(meta.uid) } : {}),
      ...(str(meta.resourceVersion) ? { resourceVersion: str(meta.resourceVersion) } : {}),
      labels,
    },
    nodeName: str(spec.nodeName),
    hostNetwork: spec.hostNetwork === true,
    phase: str(status.phase),
    terminating: meta.deletionTimestamp !== undefined && meta.deletionTimestamp !== null,
  };
}

/** Kube-OVN's logical switch port name of a pod on the primary network. */
export const podPortName = (namespace: string, pod: string) => `${pod}.${namespace}`;

/** Whether Kube-OVN gives the pod a logical switch port now (see the module comment). */
export function hasLogicalPort(p: PodInfo): boolean {
  return (
    !p.terminating &&
    p.nodeName !== undefined &&
    !p.hostNetwork &&
    p.phase !== "Succeeded" &&
    p.phase !== "Failed"
  );
}

/** An informer on every pod of the cluster (or of one namespace). */
export function podInformer(
  kubeConfig: KubeConfig,
  options: { logger: Logger; namespace?: string } & Partial<
    Pick<InformerOptions<PodInfo>, "backoff" | "watchTimeoutSeconds" | "idleTimeoutMs">
  >,
): Informer<PodInfo> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const ns = options.namespace;
  return new Informer<PodInfo>({
    name: "pods",
    kubeConfig,
    path: ns ? `/api/v1/namespaces/${encodeURIComponent(ns)}/pods` : "/api/v1/pods",
    list: () => (ns ? core.listNamespacedPod({ namespace: ns }) : core.listPodForAllNamespaces()),
    transform: podInfo,
    logger: options.logger,
    ...(options.backoff ? { backoff: options.backoff } : {}),
    ...(options.watchTimeoutSeconds !== undefined
      ? { watchTimeoutSeconds: options.watchTimeoutSeconds }
      : {}),
    ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
  });
}

export type DetachReason = "pod_deleted" | "selector_changed";

export interface SelectionChange {
  /** Every selected pod's port, sorted. */
  readonly ports: readonly string[];
  readonly attached: readonly PodRef[];
  readonly detached: readonly (PodRef & { readonly reason: DetachReason })[];
}

interface Subscription {
  readonly namespace: string;
  readonly selector: LabelSelector;
  /** Selected pods by name. */
  readonly pods: Map<string, PodRef>;
  readonly onChange: (change: SelectionChange) => void;
}

const refOf = (p: PodInfo): PodRef => ({
  namespace: p.metadata.namespace,
  name: p.metadata.name,
  ...(p.metadata.uid ? { uid: p.metadata.uid } : {}),
  ...(p.nodeName ? { node: p.nodeName } : {}),
});

export class PodIndex {
  private readonly byNamespace = new Map<string, Map<string, PodInfo>>();
  private readonly subscriptions = new Map<string, Set<Subscription>>();

  constructor(readonly informer: Informer<PodInfo>) {
    for (const p of informer.list()) this.store(p);
    informer.on("add", (p) => this.changed(undefined, p));
    informer.on("update", (p, old) => this.changed(old, p));
    informer.on("delete", (p) => this.changed(p, undefined));
  }

  /** Whether the informer has listed the pods at least once. */
  get synced(): boolean {
    return this.informer.synced;
  }

  pod(namespace: string, name: string): PodInfo | undefined {
    return this.byNamespace.get(namespace)?.get(name);
  }

  /** The node a pod is scheduled on. */
  nodeOf(namespace: string, name: string): string | undefined {
    return this.pod(namespace, name)?.nodeName;
  }

  /** The pod behind a Kube-OVN port name `<pod>.<namespace>` (pod names may hold dots, namespaces may not). */
  podOfPort(port: string): PodInfo | undefined {
    const dot = port.lastIndexOf(".");
    if (dot <= 0) return undefined;
    return this.pod(port.slice(dot + 1), port.slice(0, dot));
  }

  /** The pods of `namespace` that `selector` selects and that have a port now, by name. */
  selected(namespace: string, selector: LabelSelector): PodInfo[] {
    const out: PodInfo[] = [];
    for (const p of this.byNamespace.get(namespace)?.values() ?? []) {
      if (hasLogicalPort(p) && matchesLabelSelector(p.metadata.labels, selector)) out.push(p);
    }
    return out.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  }

  /** The ports `selector` stands for in `namespace`, sorted; undefined until the first list. */
  portsFor(namespace: string, selector: LabelSelector): string[] | undefined {
    if (!this.synced) return undefined;
    return this.selected(namespace, selector).map((p) => podPortName(namespace, p.metadata.name));
  }

  /**
   * Calls `onChange` whenever the set of pods `selector` selects in `namespace` changes (a pod
   * added, deleted, relabelled, scheduled, terminating, finished). Returns the unsubscribe.
   */
  subscribe(
    namespace: string,
    selector: LabelSelector,
    onChange: (change: SelectionChange) => void,
  ): () => void {
    const sub: Subscription = {
      namespace,
      selector,
      pods: new Map(this.selected(namespace, selector).map((p) => [p.metadata.name, refOf(p)])),
      onChange,
    };
    let set = this.subscriptions.get(namespace);
    if (!set) this.subscriptions.set(namespace, (set = new Set()));
    set.add(sub);
    return () => {
      set.delete(sub);
      if (set.size === 0 && this.subscriptions.get(namespace) === set) this.subscriptions.delete(namespace);
    };
  }

  /** How many subscriptions are open (for tests and metrics). */
  get subscriptionCount(): number {
    let n = 0;
    for (const s of this.subscriptions.values()) n += s.size;
    return n;
  }

  /** The label selector in its string form, for logs. */
  static describe(selector: LabelSelector): string {
    return formatLabelSelector(selector);
  }

  private store(p: PodInfo): void {
    let m = this.byNamespace.get(p.metadata.namespace);
    if (!m) this.byNamespace.set(p.metadata.namespace, (m = new Map<string, PodInfo>()));
    m.set(p.metadata.name, p);
  }

  private changed(before: PodInfo | undefined, after: PodInfo | undefined): void {
    const p = after ?? before!;
    const ns = p.metadata.namespace;
    if (after) this.store(after);
    else {
      const m = this.byNamespace.get(ns);
      m?.delete(p.metadata.name);
      if (m?.size === 0) this.byNamespace.delete(ns);
    }
    for (const sub of this.subscriptions.get(ns) ?? []) {
      const name = p.metadata.name;
      const was = sub.pods.has(name);
      const is =
        after !== undefined &&
        hasLogicalPort(after) &&
        matchesLabelSelector(after.metadata.labels, sub.selector);
      if (was === is) {
        if (is) sub.pods.set(name, refOf(after));
        continue;
      }
      let change: Omit<SelectionChange, "ports">;
      if (is) {
        sub.pods.set(name, refOf(after));
        change = { attached: [refOf(after)], detached: [] };
      } else {
        const ref = sub.pods.get(name)!;
        sub.pods.delete(name);
        // Gone, going or finished: the pod's port goes with it. Still there: its labels moved.
        const reason: DetachReason =
          after === undefined || !hasLogicalPort(after) ? "pod_deleted" : "selector_changed";
        change = { attached: [], detached: [{ ...ref, reason }] };
      }
      const ports = [...sub.pods.keys()].sort().map((n) => podPortName(ns, n));
      sub.onChange({ ports, ...change });
    }
  }
}
