/**
 * The ovn-applier's side of Kubernetes (KUBERNETES=in-cluster|kubeconfig): the view resolveSpec
 * reads (a selector's ports, a sink pod's address), the follower that makes a mirror reconcile
 * again when those change, and what the applier tells Kubernetes (Events on the mirrored pods).
 *
 *   const follower = new KubeFollower(kube, (id, state) => enqueue(id, "pods", state));
 *   follower.track(desired);      // after every reconcile and resync
 *   follower.untrack(id);         // deleted
 *
 * Level-based like the rest of the applier: a change only says "look at this mirror again"; the
 * reconcile reads the caches whole and compares with NB. Two replicas see the same change and
 * enqueue the same job (its id carries a digest of the new state), so one of them does the work.
 */
import { createHash } from "node:crypto";
import type {
  LabelSelector,
  MirrorCondition,
  MirrorRecord,
  MirrorSpec,
  MirrorStatus,
} from "@ovntap/contracts";
import { formatLabelSelector, type Kubernetes, type SinkPodRef } from "@ovntap/k8s";
import type { DesiredMirror, KubeView } from "./nb/plan.js";
import { mirrorId } from "./nb/names.js";
import type { ConvergeResult } from "./nb/reconciler.js";
import { condition } from "./status.js";

/** resolveSpec's window on the applier's informer caches. */
export function kubeView(kube: Kubernetes): KubeView {
  return {
    get synced() {
      return kube.synced;
    },
    portsFor: (namespace, selector) => kube.pods.portsFor(namespace, selector) ?? [],
    sinkAddress: (pod) => kube.sinks.resolve(pod)?.address,
  };
}

/** The selector of a selector source. */
export function selectorOf(spec: MirrorSpec): LabelSelector | undefined {
  const s = spec.sources;
  if (s.type !== "selector") return undefined;
  return {
    ...(s.matchLabels ? { matchLabels: s.matchLabels } : {}),
    ...(s.matchExpressions ? { matchExpressions: s.matchExpressions } : {}),
  };
}

/** The sink pod of a gre/erspan target given as a pod. */
export function sinkPodOf(spec: MirrorSpec): SinkPodRef | undefined {
  const t = spec.target;
  if ((t.type === "gre" || t.type === "erspan") && typeof t.sink !== "string") return t.sink.pod;
  return undefined;
}

/** Short digest of a state, for job ids. */
export const digest = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);

/**
 * Keeps one pod subscription per selector mirror and one sink subscription per pod-sink mirror,
 * and calls `onChange(id, state)` when what they resolve to changes (`state` describes the new
 * value: equal states from two replicas make one job).
 */
export class KubeFollower {
  private readonly subs = new Map<string, { key: string; stop: () => void }>();

  constructor(
    private readonly kube: Kubernetes,
    private readonly onChange: (id: string, state: string) => void,
  ) {}

  track(desired: DesiredMirror): void {
    const id = mirrorId(desired);
    const selector = selectorOf(desired.spec);
    const sink = sinkPodOf(desired.spec);
    const key = JSON.stringify([desired.namespace, selector ?? null, sink ?? null]);
    const existing = this.subs.get(id);
    if (existing?.key === key) return;
    existing?.stop();
    this.subs.delete(id);
    if (!selector && !sink) return;
    const stops: (() => void)[] = [];
    if (selector) {
      stops.push(
        this.kube.pods.subscribe(desired.namespace, selector, (c) =>
          this.onChange(id, `pods:${c.ports.join(",")}`),
        ),
      );
    }
    if (sink) {
      stops.push(this.kube.sinks.subscribe(sink, (r) => this.onChange(id, `sink:${r?.address ?? "-"}`)));
    }
    this.subs.set(id, { key, stop: () => stops.forEach((s) => s()) });
  }

  untrack(id: string): void {
    this.subs.get(id)?.stop();
    this.subs.delete(id);
  }

  /** Drops every mirror not in `ids`. */
  retain(ids: ReadonlySet<string>): void {
    for (const id of [...this.subs.keys()]) if (!ids.has(id)) this.untrack(id);
  }

  stop(): void {
    for (const id of [...this.subs.keys()]) this.untrack(id);
  }

  get size(): number {
    return this.subs.size;
  }
}

/** Status reason of a selector mirror that selects no pod. */
export const NO_MATCHING_PODS = "NoMatchingPods";

/**
 * What a selector says about the status: the PodsSelected condition, and for a selector that
 * selects nothing, the reason and message of an otherwise Active mirror.
 *
 * A selector that matches no pod yet is Active, not Degraded or Pending: the Mirror rows and the
 * key are in place and pods are attached the moment they appear — the way a Service without
 * endpoints is still a working Service. Nothing is wrong that an operator must fix (Degraded
 * would page someone for a Deployment scaled to zero), and the mirror has been applied (Pending
 * would claim it has not). The reason NoMatchingPods and the condition say that nothing is
 * being mirrored right now, so `--wait` callers and dashboards can tell.
 */
export function selectionStatus(
  spec: MirrorSpec,
  result: ConvergeResult,
  generation: number,
  previous: MirrorStatus | undefined,
  now: Date,
): { conditions: MirrorCondition[]; idle?: { reason: string; message: string } } {
  const selector = selectorOf(spec);
  if (!selector) return { conditions: [] };
  const pods = result.ports.length + result.missingPorts.length;
  const text = formatLabelSelector(selector);
  if (pods === 0) {
    const message = `no running pod in ${spec.namespace} matches ${text} yet; the mirror is in place and attaches pods as they appear`;
    return {
      conditions: [
        condition("PodsSelected", "False", generation, now, previous, { reason: NO_MATCHING_PODS, message }),
      ],
      idle: { reason: NO_MATCHING_PODS, message },
    };
  }
  return {
    conditions: [
      condition("PodsSelected", "True", generation, now, previous, {
        message: `${pods} pod${pods === 1 ? "" : "s"} match ${text}`,
      }),
    ],
  };
}

/** The pod behind a Kube-OVN port name in `namespace` (`<pod>.<namespace>`), if it is one. */
export function podOfPort(port: string, namespace: string): string | undefined {
  const suffix = `.${namespace}`;
  return port.endsWith(suffix) && port.length > suffix.length ? port.slice(0, -suffix.length) : undefined;
}

/** What the target of a mirror is, in words, for Event messages. */
export function describeTarget(record: MirrorRecord, status: MirrorStatus): string {
  const t = record.spec.target;
  const sink =
    status.sink ?? (typeof (t as { sink?: unknown }).sink === "string" ? (t as { sink: string }).sink : "");
  if (t.type === "erspan") return `ERSPAN session ${status.sessionId ?? "?"} to ${sink}`;
  if (t.type === "gre" || t.type === "collector") return `GRE key ${status.key ?? "?"} to ${sink}`;
  return t.type;
}
