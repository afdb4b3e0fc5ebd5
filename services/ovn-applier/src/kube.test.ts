/**
 * Selector sources and pod sinks in the plan: what resolveSpec does with the Kubernetes view
 * (on, off, not listed yet, a sink pod without an address), and the status of a selector that
 * selects nothing.
 */
import { MirrorSpec } from "@ovntap/contracts";
import { describe, expect, it } from "vitest";
import { NO_MATCHING_PODS, podOfPort, selectionStatus, selectorOf, sinkPodOf } from "./kube.js";
import { ReconcileError } from "./nb/errors.js";
import { resolveSpec, type DesiredMirror, type KubeView, type PlanOptions } from "./nb/plan.js";
import type { ConvergeResult } from "./nb/reconciler.js";

const OVN: PlanOptions = { filters: ["from-lport", "to-lport"], types: ["gre", "erspan"] };

function desired(spec: Partial<MirrorSpec>): DesiredMirror {
  const full = MirrorSpec.parse({
    name: "web",
    namespace: "shop",
    sources: { type: "selector", matchLabels: { app: "web" } },
    direction: "egress",
    target: { type: "gre", sink: "198.51.100.2" },
    ...spec,
  });
  return { namespace: full.namespace, name: full.name, generation: 1, spec: full };
}

/** A view over fixed data, as the informer caches would hold it. */
function view(over: Partial<KubeView> = {}): KubeView {
  return {
    synced: true,
    portsFor: (ns, sel) =>
      ns === "shop" && sel.matchLabels?.app === "web" ? ["web-1.shop", "web-2.shop"] : [],
    sinkAddress: (pod) =>
      pod.name === "sink"
        ? pod.provider === "attachnet.default.ovn"
          ? "198.51.100.7"
          : "10.16.0.9"
        : undefined,
    ...over,
  };
}

const failure = (f: () => unknown): ReconcileError => {
  try {
    f();
  } catch (err) {
    if (err instanceof ReconcileError) return err;
    throw err;
  }
  throw new Error("expected a ReconcileError");
};

describe("resolveSpec with Kubernetes", () => {
  it("a selector resolves to the ports of the pods it selects", () => {
    const r = resolveSpec(desired({}), { ...OVN, kubernetes: view() });
    expect(r).toMatchObject({ kind: "ovn", ports: ["web-1.shop", "web-2.shop"], sink: "198.51.100.2" });
    const none = resolveSpec(desired({ sources: { type: "selector", matchLabels: { app: "db" } } }), {
      ...OVN,
      kubernetes: view(),
    });
    expect(none).toMatchObject({ kind: "ovn", ports: [] });
  });

  it("a pod sink resolves through ips.kubeovn.io, on the primary network or an attachment", () => {
    const primary = resolveSpec(
      desired({ target: { type: "gre", sink: { pod: { namespace: "tap", name: "sink" } } } }),
      { ...OVN, kubernetes: view() },
    );
    expect(primary).toMatchObject({ kind: "ovn", sink: "10.16.0.9" });
    const attached = resolveSpec(
      desired({
        target: {
          type: "erspan",
          sink: { pod: { namespace: "tap", name: "sink", provider: "attachnet.default.ovn" } },
        },
      }),
      { ...OVN, kubernetes: view() },
    );
    expect(attached).toMatchObject({ kind: "ovn", type: "erspan", sink: "198.51.100.7" });
  });

  it("a sink pod without an address waits (NOT_FOUND, retryable)", () => {
    const e = failure(() =>
      resolveSpec(desired({ target: { type: "gre", sink: { pod: { namespace: "tap", name: "gone" } } } }), {
        ...OVN,
        kubernetes: view(),
      }),
    );
    expect(e).toMatchObject({ code: "NOT_FOUND", retryable: true });
    expect(e.message).toMatch(/sink pod tap\/gone has no address in ips\.kubeovn\.io yet/);
  });

  it("caches not listed yet: UNAVAILABLE, retryable", () => {
    const e = failure(() => resolveSpec(desired({}), { ...OVN, kubernetes: view({ synced: false }) }));
    expect(e).toMatchObject({ code: "UNAVAILABLE", retryable: true });
  });

  it("Kubernetes off: UNSUPPORTED, naming the setting", () => {
    const sel = failure(() => resolveSpec(desired({}), OVN));
    expect(sel).toMatchObject({ code: "UNSUPPORTED", retryable: false });
    expect(sel.message).toMatch(/KUBERNETES=in-cluster/);
    expect(sel.message).toMatch(/sources\.type=pods/);
    const sink = failure(() =>
      resolveSpec(
        desired({
          sources: { type: "pods", names: ["a"] },
          target: { type: "gre", sink: { pod: { namespace: "tap", name: "sink" } } },
        }),
        OVN,
      ),
    );
    expect(sink.code).toBe("UNSUPPORTED");
    expect(sink.message).toMatch(/KUBERNETES=.*give the sink's IP address/);
  });
});

describe("the status of a selector", () => {
  const result = (ports: string[], missingPorts: string[] = []) =>
    ({ ports, missingPorts }) as unknown as ConvergeResult;
  const now = new Date("2030-01-01T00:00:00Z");

  it("that selects nothing: Active with NoMatchingPods and PodsSelected False", () => {
    const s = selectionStatus(desired({}).spec, result([]), 1, undefined, now);
    expect(s.idle).toMatchObject({ reason: NO_MATCHING_PODS });
    expect(s.idle?.message).toMatch(/no running pod in shop matches app=web yet/);
    expect(s.conditions).toMatchObject([{ type: "PodsSelected", status: "False", reason: NO_MATCHING_PODS }]);
  });

  it("that selects pods: PodsSelected True with how many", () => {
    const s = selectionStatus(desired({}).spec, result(["a.shop", "b.shop"], ["c.shop"]), 1, undefined, now);
    expect(s.idle).toBeUndefined();
    expect(s.conditions).toMatchObject([
      { type: "PodsSelected", status: "True", message: "3 pods match app=web" },
    ]);
  });

  it("of another source: nothing", () => {
    expect(
      selectionStatus(
        desired({ sources: { type: "pods", names: ["a"] } }).spec,
        result([]),
        1,
        undefined,
        now,
      ),
    ).toEqual({
      conditions: [],
    });
  });
});

describe("helpers", () => {
  it("podOfPort, selectorOf, sinkPodOf", () => {
    expect(podOfPort("web.v2-1.shop", "shop")).toBe("web.v2-1");
    expect(podOfPort("web-1.other", "shop")).toBeUndefined();
    expect(podOfPort(".shop", "shop")).toBeUndefined();
    expect(selectorOf(desired({}).spec)).toEqual({ matchLabels: { app: "web" } });
    expect(sinkPodOf(desired({}).spec)).toBeUndefined();
    expect(
      sinkPodOf(desired({ target: { type: "gre", sink: { pod: { namespace: "tap", name: "sink" } } } }).spec),
    ).toEqual({ namespace: "tap", name: "sink" });
  });
});
