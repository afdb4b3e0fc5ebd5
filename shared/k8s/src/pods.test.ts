/**
 * The pod index against the fake API server: a selector's ports follow pods as they are added,
 * relabelled, scheduled, terminated, finished and deleted; pods without a Kube-OVN port
 * (host network, not scheduled) never count; pod → node; port → pod.
 */
import { createLogger } from "@ovntap/runtime";
import { afterEach, describe, expect, it } from "vitest";
import { hasLogicalPort, PodIndex, podInfo, podInformer, type SelectionChange } from "./pods.js";
import { FakeApiServer } from "./testing/fake-api-server.js";
import { podObject } from "./testing/objects.js";
import { waitUntil } from "./testing/wait.js";

let fake: FakeApiServer | undefined;
let index: PodIndex | undefined;
afterEach(async () => {
  await index?.informer.stop();
  await fake?.close();
  index = undefined;
  fake = undefined;
});

async function setup() {
  fake = await FakeApiServer.start();
  const informer = podInformer(fake.kubeConfig(), {
    logger: createLogger({ name: "pods-test", level: "silent" }),
  });
  index = new PodIndex(informer);
  informer.start();
  await informer.waitForSync(10_000);
  await waitUntil(() => fake!.openWatches === 1, "the watch");
  return { fake, index };
}

const names = (c: SelectionChange) => ({
  ports: c.ports,
  attached: c.attached.map((p) => p.name),
  detached: c.detached.map((p) => `${p.name}:${p.reason}`),
});

describe("podInfo", () => {
  it("reads both client-node's deserialized pods (Date) and watch JSON (strings)", () => {
    const json = podObject({ name: "a", namespace: "ns", labels: { x: "1" }, terminating: true });
    expect(podInfo(json)).toMatchObject({
      metadata: { name: "a", namespace: "ns", labels: { x: "1" } },
      terminating: true,
    });
    const typed = { ...json, metadata: { ...json.metadata, deletionTimestamp: new Date() } };
    expect(podInfo(typed).terminating).toBe(true);
    expect(hasLogicalPort(podInfo(json))).toBe(false);
    expect(hasLogicalPort(podInfo(podObject({ name: "b", namespace: "ns", hostNetwork: true })))).toBe(false);
    expect(hasLogicalPort(podInfo(podObject({ name: "c", namespace: "ns", nodeName: null })))).toBe(false);
    expect(hasLogicalPort(podInfo(podObject({ name: "d", namespace: "ns", phase: "Succeeded" })))).toBe(
      false,
    );
    expect(hasLogicalPort(podInfo(podObject({ name: "e", namespace: "ns" })))).toBe(true);
  });
});

describe("PodIndex", () => {
  it("resolves a selector to Kube-OVN port names and follows pods", async () => {
    const { fake, index } = await setup();
    fake.put("pods", podObject({ name: "web-1", namespace: "shop", labels: { app: "web" } }));
    fake.put("pods", podObject({ name: "db-1", namespace: "shop", labels: { app: "db" } }));
    fake.put("pods", podObject({ name: "web-1", namespace: "other", labels: { app: "web" } }));
    fake.put(
      "pods",
      podObject({ name: "web-host", namespace: "shop", labels: { app: "web" }, hostNetwork: true }),
    );
    const selector = { matchLabels: { app: "web" } };
    await waitUntil(() => index.pod("shop", "web-host"), "the pods in the index");
    expect(index.portsFor("shop", selector)).toEqual(["web-1.shop"]);

    const changes: SelectionChange[] = [];
    const unsubscribe = index.subscribe("shop", selector, (c) => changes.push(c));
    const next = async (n: number) => {
      await waitUntil(() => changes.length >= n, `change ${n}`);
      return names(changes[n - 1]!);
    };

    fake.put(
      "pods",
      podObject({ name: "web-2", namespace: "shop", labels: { app: "web" }, nodeName: "node-2" }),
    );
    expect(await next(1)).toEqual({ ports: ["web-1.shop", "web-2.shop"], attached: ["web-2"], detached: [] });
    expect(index.nodeOf("shop", "web-2")).toBe("node-2");

    fake.modify("pods", "shop", "db-1", (p) => (p.metadata.labels = { app: "web" })); // relabelled in
    expect(await next(2)).toEqual({
      ports: ["db-1.shop", "web-1.shop", "web-2.shop"],
      attached: ["db-1"],
      detached: [],
    });

    fake.modify("pods", "shop", "web-1", (p) => (p.metadata.labels = { app: "web", extra: "x" })); // still selected
    fake.modify("pods", "shop", "db-1", (p) => (p.metadata.labels = { app: "db" })); // relabelled out
    expect(await next(3)).toEqual({
      ports: ["web-1.shop", "web-2.shop"],
      attached: [],
      detached: ["db-1:selector_changed"],
    });

    fake.remove("pods", "shop", "web-2");
    expect(await next(4)).toEqual({ ports: ["web-1.shop"], attached: [], detached: ["web-2:pod_deleted"] });

    // Terminating (deletionTimestamp set, kubelet not done yet): its port goes now.
    fake.modify("pods", "shop", "web-1", (p) => {
      p.metadata.deletionTimestamp = "2030-01-01T00:00:00Z";
      p.metadata.deletionGracePeriodSeconds = 30;
    });
    expect(await next(5)).toEqual({ ports: [], attached: [], detached: ["web-1:pod_deleted"] });

    // Not scheduled yet: no port until it is.
    fake.put("pods", podObject({ name: "web-3", namespace: "shop", labels: { app: "web" }, nodeName: null }));
    await waitUntil(() => index.pod("shop", "web-3"), "web-3");
    expect(changes.length).toBe(5);
    fake.modify("pods", "shop", "web-3", (p) => ((p.spec as { nodeName?: string }).nodeName = "node-1"));
    expect(await next(6)).toEqual({ ports: ["web-3.shop"], attached: ["web-3"], detached: [] });
    expect(changes[5]!.attached[0]).toMatchObject({ namespace: "shop", name: "web-3", node: "node-1" });

    // Finished: Kube-OVN releases the port.
    fake.modify("pods", "shop", "web-3", (p) => ((p.status as { phase: string }).phase = "Succeeded"));
    expect(await next(7)).toEqual({ ports: [], attached: [], detached: ["web-3:pod_deleted"] });

    unsubscribe();
    expect(index.subscriptionCount).toBe(0);
    fake.put("pods", podObject({ name: "web-4", namespace: "shop", labels: { app: "web" } }));
    await waitUntil(() => index.pod("shop", "web-4"), "web-4");
    expect(changes.length).toBe(7);
  });

  it("matchExpressions: In, NotIn, Exists, DoesNotExist", async () => {
    const { fake, index } = await setup();
    fake.put("pods", podObject({ name: "a", namespace: "ns", labels: { tier: "front", app: "web" } }));
    fake.put(
      "pods",
      podObject({ name: "b", namespace: "ns", labels: { tier: "back", app: "web", canary: "" } }),
    );
    fake.put("pods", podObject({ name: "c", namespace: "ns", labels: { tier: "cache" } }));
    await waitUntil(() => index.pod("ns", "c"), "the pods");
    const sel = (matchExpressions: NonNullable<Parameters<PodIndex["portsFor"]>[1]["matchExpressions"]>) =>
      index.portsFor("ns", { matchExpressions });
    expect(sel([{ key: "tier", operator: "In", values: ["front", "back"] }])).toEqual(["a.ns", "b.ns"]);
    expect(sel([{ key: "tier", operator: "NotIn", values: ["front"] }])).toEqual(["b.ns", "c.ns"]);
    expect(sel([{ key: "canary", operator: "Exists" }])).toEqual(["b.ns"]);
    expect(sel([{ key: "app", operator: "DoesNotExist" }])).toEqual(["c.ns"]);
  });

  it("maps a port back to its pod (pod names may contain dots)", async () => {
    const { fake, index } = await setup();
    fake.put("pods", podObject({ name: "web.v2-1", namespace: "shop", nodeName: "node-7" }));
    await waitUntil(() => index.pod("shop", "web.v2-1"), "the pod");
    expect(index.podOfPort("web.v2-1.shop")?.nodeName).toBe("node-7");
    expect(index.podOfPort("nodots")).toBeUndefined();
  });

  it("answers undefined for ports until the first list", async () => {
    fake = await FakeApiServer.start();
    const idx = new PodIndex(
      podInformer(fake.kubeConfig(), { logger: createLogger({ name: "t", level: "silent" }) }),
    );
    expect(idx.portsFor("ns", { matchLabels: { a: "b" } })).toBeUndefined();
  });
});
