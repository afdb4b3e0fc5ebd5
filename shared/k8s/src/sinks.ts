/**
 * Sink pods: a receiving pod's address as Kube-OVN records it in `ips.kubeovn.io`, the step the
 * Kube-OVN mirroring guide does with `kubectl get ips`.
 *
 *   const sinks = new SinkResolver(kubeOvnIpInformer(kc, { logger }));
 *   sinks.resolve({ namespace: "tap", name: "sink", provider: "attachnet.default.ovn" });
 *   // { address: "172.19.0.21", ipObject: "sink.tap.attachnet.default.ovn", subnet: "attachnet", … }
 *   sinks.subscribe(ref, (r) => …);   // called when the address changes, appears or goes
 *
 * Kube-OVN's IP objects are cluster-scoped and named like the pod's logical switch port
 * (pkg/ovs PodNameToPortName): `<pod>.<namespace>` on the primary network (provider "ovn"),
 * `<pod>.<namespace>.<provider>` on an attachment network. Their spec (pkg/apis/kubeovn/v1
 * IPSpec) holds `ipAddress` ("v4,v6" on dual stack), `v4IpAddress`, `v6IpAddress`, `podName`,
 * `namespace`, `subnet`, `nodeName`. A dual-stack sink resolves to its IPv4 address (the
 * tunnels' transport); an IPv6-only one to its IPv6 address.
 */
import { CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { canonicalIp } from "@ovntap/contracts";
import type { Logger } from "@ovntap/runtime";
import { Informer, type InformerOptions } from "./informer.js";

/** The `ips.kubeovn.io` resource. */
export const KUBE_OVN_IPS = { group: "kubeovn.io", version: "v1", plural: "ips" } as const;

/** What is kept of an IP object. */
export interface KubeOvnIp {
  readonly metadata: { readonly name: string; readonly resourceVersion?: string };
  readonly podName: string;
  readonly namespace: string;
  readonly subnet: string;
  readonly nodeName: string;
  readonly ipAddress: string;
  readonly v4IpAddress: string;
  readonly v6IpAddress: string;
}

export interface SinkPodRef {
  readonly namespace: string;
  readonly name: string;
  /** Kube-OVN provider of an attachment network; the primary network when absent (or "ovn"). */
  readonly provider?: string | undefined;
}

export interface ResolvedSink {
  /** Canonical IP text. */
  readonly address: string;
  /** The IP object it came from. */
  readonly ipObject: string;
  readonly subnet: string | undefined;
  readonly node: string | undefined;
}

const record = (v: unknown): Record<string, unknown> =>
  typeof v === "object" && v !== null ? (v as Record<string, unknown>) : {};
const str = (v: unknown) => (typeof v === "string" ? v : "");

export function kubeOvnIp(raw: unknown): KubeOvnIp {
  const meta = record(record(raw).metadata);
  const spec = record(record(raw).spec);
  return {
    metadata: {
      name: str(meta.name),
      ...(str(meta.resourceVersion) ? { resourceVersion: str(meta.resourceVersion) } : {}),
    },
    podName: str(spec.podName),
    namespace: str(spec.namespace),
    subnet: str(spec.subnet),
    nodeName: str(spec.nodeName),
    ipAddress: str(spec.ipAddress),
    v4IpAddress: str(spec.v4IpAddress),
    v6IpAddress: str(spec.v6IpAddress),
  };
}

/** The IP object's name for a sink pod (Kube-OVN's PodNameToPortName). */
export function ipObjectName(ref: SinkPodRef): string {
  const attachment = ref.provider !== undefined && ref.provider !== "" && ref.provider !== "ovn";
  return attachment ? `${ref.name}.${ref.namespace}.${ref.provider}` : `${ref.name}.${ref.namespace}`;
}

/** The address an IP object gives a sink: IPv4 first, then IPv6, then the first of ipAddress. */
export function sinkAddressOf(ip: KubeOvnIp): string | undefined {
  const candidates = [ip.v4IpAddress, ip.v6IpAddress, ...ip.ipAddress.split(",")];
  for (const c of candidates) {
    const a = canonicalIp(c.trim().replace(/\/\d+$/, ""));
    if (a !== undefined) return a;
  }
  return undefined;
}

/** An informer on every `ips.kubeovn.io` object. */
export function kubeOvnIpInformer(
  kubeConfig: KubeConfig,
  options: { logger: Logger } & Partial<
    Pick<InformerOptions<KubeOvnIp>, "backoff" | "watchTimeoutSeconds" | "idleTimeoutMs">
  >,
): Informer<KubeOvnIp> {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  return new Informer<KubeOvnIp>({
    name: "ips.kubeovn.io",
    kubeConfig,
    path: `/apis/${KUBE_OVN_IPS.group}/${KUBE_OVN_IPS.version}/${KUBE_OVN_IPS.plural}`,
    list: async () => (await api.listClusterCustomObject({ ...KUBE_OVN_IPS })) as { items: unknown[] },
    transform: kubeOvnIp,
    logger: options.logger,
    ...(options.backoff ? { backoff: options.backoff } : {}),
    ...(options.watchTimeoutSeconds !== undefined
      ? { watchTimeoutSeconds: options.watchTimeoutSeconds }
      : {}),
    ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
  });
}

interface SinkSubscription {
  readonly ref: SinkPodRef;
  last: string | undefined;
  readonly onChange: (resolved: ResolvedSink | undefined) => void;
}

export class SinkResolver {
  private readonly subscriptions = new Map<string, Set<SinkSubscription>>();

  constructor(readonly informer: Informer<KubeOvnIp>) {
    const changed = (ip: KubeOvnIp) => this.changed(ip.metadata.name);
    informer.on("add", changed);
    informer.on("update", changed);
    informer.on("delete", changed);
  }

  get synced(): boolean {
    return this.informer.synced;
  }

  /** The sink's address now; undefined when Kube-OVN has none for it (or before the first list). */
  resolve(ref: SinkPodRef): ResolvedSink | undefined {
    const name = ipObjectName(ref);
    const ip = this.informer.get(undefined, name);
    const address = ip && sinkAddressOf(ip);
    if (!ip || address === undefined) return undefined;
    return {
      address,
      ipObject: name,
      subnet: ip.subnet || undefined,
      node: ip.nodeName || undefined,
    };
  }

  /** Calls `onChange` when the sink's address changes, appears or goes. Returns the unsubscribe. */
  subscribe(ref: SinkPodRef, onChange: (resolved: ResolvedSink | undefined) => void): () => void {
    const name = ipObjectName(ref);
    const sub: SinkSubscription = { ref, last: this.resolve(ref)?.address, onChange };
    let set = this.subscriptions.get(name);
    if (!set) this.subscriptions.set(name, (set = new Set()));
    set.add(sub);
    return () => {
      set.delete(sub);
      if (set.size === 0 && this.subscriptions.get(name) === set) this.subscriptions.delete(name);
    };
  }

  private changed(name: string): void {
    for (const sub of this.subscriptions.get(name) ?? []) {
      const r = this.resolve(sub.ref);
      if (r?.address === sub.last) continue;
      sub.last = r?.address;
      sub.onChange(r);
    }
  }
}
