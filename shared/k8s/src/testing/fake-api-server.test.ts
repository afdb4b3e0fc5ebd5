/**
 * The fake API server, driven only through @kubernetes/client-node as any component would:
 * lists with selectors, the watch stream (from a version, bookmarks, selector transitions, 410,
 * a cut), writes and their errors, the status subresource, finalizers, authentication, RBAC,
 * HTTPS, and the recorded calls.
 */
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type V1Pod,
} from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { apiCallKeys } from "../calls.js";
import { FakeApiServer } from "./fake-api-server.js";
import { podObject, selfSignedCertificate } from "./objects.js";

const TOKEN = "fake-token-1";
let fake: FakeApiServer | undefined;

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function start(opts: Parameters<typeof FakeApiServer.start>[0] = {}) {
  fake = await FakeApiServer.start({ token: TOKEN, ...opts });
  return fake;
}

interface Seen {
  type: string;
  name: string;
  rv: string;
  code?: number;
}

/** A client-node Watch collecting events until `done`. */
function watchAll(kc: KubeConfig, path: string, query: Record<string, string | number | boolean>) {
  const events: Seen[] = [];
  let ended: { err: unknown } | undefined;
  const done = new Promise<unknown>((resolve) => {
    void new Watch(kc).watch(
      path,
      query,
      (type, obj: { metadata?: { name?: string; resourceVersion?: string }; code?: number }) => {
        events.push({
          type,
          name: obj.metadata?.name ?? "",
          rv: obj.metadata?.resourceVersion ?? "",
          ...(obj.code !== undefined ? { code: obj.code } : {}),
        });
      },
      (err: unknown) => {
        ended = { err };
        resolve(err);
      },
    );
  });
  return { events, done, ended: () => ended };
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const apiError = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiException) return err as ApiException<string>;
    throw err;
  }
  throw new Error("expected an ApiException");
};

const body = (e: ApiException<string>) =>
  JSON.parse(e.body) as { reason: string; code: number; kind: string };

describe("FakeApiServer through @kubernetes/client-node", () => {
  it("lists with label and field selectors and a resourceVersion; records the calls", async () => {
    const f = await start();
    f.put("pods", podObject({ name: "web-1", namespace: "shop", labels: { app: "web", tier: "front" } }));
    f.put(
      "pods",
      podObject({ name: "web-2", namespace: "shop", labels: { app: "web" }, nodeName: "node-2" }),
    );
    f.put("pods", podObject({ name: "db-1", namespace: "shop", labels: { app: "db" } }));
    f.put("pods", podObject({ name: "web-9", namespace: "other", labels: { app: "web" } }));
    const core = f.kubeConfig().makeApiClient(CoreV1Api);

    const web = await core.listNamespacedPod({ namespace: "shop", labelSelector: "app=web" });
    expect(web.items.map((p) => p.metadata?.name)).toEqual(["web-1", "web-2"]);
    expect(web.metadata?.resourceVersion).toBe(f.resourceVersion);
    const expr = await core.listPodForAllNamespaces({ labelSelector: "app in (web,db),!tier" });
    expect(expr.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)).toEqual([
      "other/web-9",
      "shop/db-1",
      "shop/web-2",
    ]);
    const onNode = await core.listPodForAllNamespaces({ fieldSelector: "spec.nodeName=node-2" });
    expect(onNode.items.map((p) => p.metadata?.name)).toEqual(["web-2"]);
    const got = await core.readNamespacedPod({ namespace: "shop", name: "db-1" });
    expect(got.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(got.metadata?.creationTimestamp).toBeInstanceOf(Date);

    const missing = await apiError(core.readNamespacedPod({ namespace: "shop", name: "nope" }));
    expect(missing.code).toBe(404);
    expect(body(missing)).toMatchObject({ kind: "Status", reason: "NotFound", code: 404 });

    expect(f.calls).toEqual([
      { verb: "list", group: "", resource: "pods", namespace: "shop" },
      { verb: "list", group: "", resource: "pods" },
      { verb: "list", group: "", resource: "pods" },
      { verb: "get", group: "", resource: "pods", namespace: "shop" },
      { verb: "get", group: "", resource: "pods", namespace: "shop" },
    ]);
    expect(apiCallKeys(f.calls)).toEqual(["get core/pods", "list core/pods"]);
  });

  it("pages a list with limit and continue at one consistent resourceVersion", async () => {
    const f = await start();
    for (let i = 0; i < 5; i++) f.put("pods", podObject({ name: `p${i}`, namespace: "ns" }));
    const core = f.kubeConfig().makeApiClient(CoreV1Api);
    const first = await core.listNamespacedPod({ namespace: "ns", limit: 2 });
    expect(first.items.map((p) => p.metadata?.name)).toEqual(["p0", "p1"]);
    expect(first.metadata?.remainingItemCount).toBe(3);
    f.remove("pods", "ns", "p3"); // after the first page: the next pages still show p3
    const second = await core.listNamespacedPod({
      namespace: "ns",
      limit: 2,
      _continue: first.metadata!._continue!,
    });
    const third = await core.listNamespacedPod({
      namespace: "ns",
      limit: 2,
      _continue: second.metadata!._continue!,
    });
    expect([...second.items, ...third.items].map((p) => p.metadata?.name)).toEqual(["p2", "p3", "p4"]);
    expect(third.metadata?._continue).toBeUndefined();
    expect(third.metadata?.resourceVersion).toBe(first.metadata?.resourceVersion);
  });

  it("watches from a resourceVersion: changes after it, selector transitions, bookmarks, timeout", async () => {
    const f = await start();
    const kc = f.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    f.put("pods", podObject({ name: "a", namespace: "ns", labels: { app: "web" } }));
    const list = await core.listNamespacedPod({ namespace: "ns", labelSelector: "app=web" });
    const rv = list.metadata!.resourceVersion!;
    f.put("pods", podObject({ name: "b", namespace: "ns", labels: { app: "web" } })); // before the watch: replayed

    const w = watchAll(kc, "/api/v1/namespaces/ns/pods", {
      resourceVersion: rv,
      labelSelector: "app=web",
      allowWatchBookmarks: true,
      timeoutSeconds: 2,
    });
    await until(() => f.openWatches === 1, "the watch");
    f.modify("pods", "ns", "a", (p) => (p.metadata.labels = { app: "db" })); // leaves the selector
    f.modify("pods", "ns", "a", (p) => (p.metadata.labels = { app: "web" })); // and comes back
    f.put("pods", podObject({ name: "c", namespace: "other", labels: { app: "web" } })); // other namespace
    f.remove("pods", "ns", "b");
    f.put("pods", podObject({ name: "x", namespace: "ns", labels: { app: "db" } })); // not selected
    expect(f.sendBookmarks()).toBe(1);
    expect(await w.done).toBeNull(); // timeoutSeconds: a clean end
    expect(w.events.map((e) => `${e.type} ${e.name}`)).toEqual([
      "ADDED b",
      "DELETED a",
      "ADDED a",
      "DELETED b",
      "BOOKMARK ",
    ]);
    const rvs = w.events.map((e) => Number(e.rv));
    expect(rvs).toEqual([...rvs].sort((x, y) => x - y));
    expect(w.events.at(-1)?.rv).toBe(f.resourceVersion); // the bookmark carries the latest version
  });

  it("a watch without a resourceVersion starts with the current objects as ADDED", async () => {
    const f = await start();
    f.put("pods", podObject({ name: "a", namespace: "ns" }));
    const w = watchAll(f.kubeConfig(), "/api/v1/pods", {});
    await until(() => w.events.length === 1, "ADDED a");
    f.put("pods", podObject({ name: "b", namespace: "ns2" }));
    await until(() => w.events.length === 2, "ADDED b");
    expect(w.events.map((e) => `${e.type} ${e.name}`)).toEqual(["ADDED a", "ADDED b"]);
    expect(f.calls).toEqual([{ verb: "watch", group: "", resource: "pods" }]);
  });

  it("answers a watch from a compacted resourceVersion with an ERROR 410 event, and an Exact list with 410", async () => {
    const f = await start();
    const kc = f.kubeConfig();
    f.put("pods", podObject({ name: "a", namespace: "ns" }));
    const old = f.resourceVersion;
    f.put("pods", podObject({ name: "b", namespace: "ns" }));
    f.compactHistory();
    const w = watchAll(kc, "/api/v1/namespaces/ns/pods", { resourceVersion: old });
    expect(await w.done).toBeNull();
    expect(w.events).toEqual([{ type: "ERROR", name: "", rv: "", code: 410 }]);

    const core = kc.makeApiClient(CoreV1Api);
    const gone = await apiError(
      core.listNamespacedPod({ namespace: "ns", resourceVersion: old, resourceVersionMatch: "Exact" }),
    );
    expect(gone.code).toBe(410);
    expect(body(gone).reason).toBe("Expired");
    // From the current version on, a watch works again.
    const w2 = watchAll(kc, "/api/v1/namespaces/ns/pods", { resourceVersion: f.resourceVersion });
    await until(() => f.openWatches === 1, "the second watch");
    f.put("pods", podObject({ name: "c", namespace: "ns" }));
    await until(() => w2.events.length === 1, "ADDED c");
    expect(w2.events[0]).toMatchObject({ type: "ADDED", name: "c" });
  });

  it("expires open watches with an in-stream 410, and a bounded history expires old versions by itself", async () => {
    const f = await start({ historyLimit: 3 });
    const kc = f.kubeConfig();
    const w = watchAll(kc, "/api/v1/pods", { resourceVersion: f.resourceVersion });
    await until(() => f.openWatches === 1, "the watch");
    f.compactHistory({ expireWatches: true });
    await w.done;
    expect(w.events).toEqual([{ type: "ERROR", name: "", rv: "", code: 410 }]);

    f.put("pods", podObject({ name: "first", namespace: "ns" }));
    const start1 = f.resourceVersion;
    for (let i = 0; i < 5; i++) f.put("pods", podObject({ name: `p${i}`, namespace: "ns" }));
    const late = watchAll(kc, "/api/v1/pods", { resourceVersion: start1 });
    await late.done;
    expect(late.events.map((e) => e.code)).toEqual([410]);
  });

  it("cuts watches mid-stream: the client's done callback runs", async () => {
    const f = await start();
    const kc = f.kubeConfig();
    const a = watchAll(kc, "/api/v1/pods", { resourceVersion: f.resourceVersion });
    const b = watchAll(kc, "/apis/kubeovn.io/v1/ips", { resourceVersion: f.resourceVersion });
    await until(() => f.openWatches === 2, "two watches");
    f.put("pods", podObject({ name: "a", namespace: "ns" }));
    await until(() => a.events.length === 1, "ADDED a");
    expect(f.cutWatches({ partialLine: true })).toBe(2);
    await Promise.all([a.done, b.done]);
    expect(a.ended()).toBeDefined();
    expect(b.ended()).toBeDefined();
    expect(f.openWatches).toBe(0);
    expect(a.events.map((e) => e.type)).toEqual(["ADDED"]); // the half line is not an event
  });

  it("creates (409 AlreadyExists), updates (409 Conflict on a stale version), patches and deletes", async () => {
    const f = await start();
    const core = f.kubeConfig().makeApiClient(CoreV1Api);
    const created = await core.createNamespacedPod({
      namespace: "ns",
      body: podObject({ name: "p", namespace: "ns", labels: { a: "1" } }) as V1Pod,
    });
    expect(created.metadata?.resourceVersion).toBe(f.resourceVersion);
    const dup = await apiError(
      core.createNamespacedPod({ namespace: "ns", body: podObject({ name: "p", namespace: "ns" }) as V1Pod }),
    );
    expect(dup.code).toBe(409);
    expect(body(dup)).toMatchObject({ kind: "Status", reason: "AlreadyExists", code: 409 });

    const updated = await core.replaceNamespacedPod({
      namespace: "ns",
      name: "p",
      body: { ...created, metadata: { ...created.metadata, labels: { a: "2" } } },
    });
    expect(updated.metadata?.labels).toEqual({ a: "2" });
    const stale = await apiError(core.replaceNamespacedPod({ namespace: "ns", name: "p", body: created }));
    expect(stale.code).toBe(409);
    expect(body(stale).reason).toBe("Conflict");

    // client-node's default patch type is JSON patch.
    const jp = await core.patchNamespacedPod({
      namespace: "ns",
      name: "p",
      body: [{ op: "add", path: "/metadata/labels/b", value: "x" }],
    });
    expect(jp.metadata?.labels).toEqual({ a: "2", b: "x" });
    const mp = await core.patchNamespacedPod(
      { namespace: "ns", name: "p", body: { metadata: { labels: { a: null } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    expect(mp.metadata?.labels).toEqual({ b: "x" });
    const failedTest = await apiError(
      core.patchNamespacedPod({
        namespace: "ns",
        name: "p",
        body: [{ op: "test", path: "/metadata/name", value: "q" }],
      }),
    );
    expect(failedTest.code).toBe(422);

    await core.deleteNamespacedPod({ namespace: "ns", name: "p" });
    expect(f.get("pods", "ns", "p")).toBeUndefined();
    expect(apiCallKeys(f.calls)).toEqual([
      "create core/pods",
      "delete core/pods",
      "patch core/pods",
      "update core/pods",
    ]);
  });

  it("keeps .status to the status subresource and bumps generation on spec changes only", async () => {
    const f = await start();
    const co = f.kubeConfig().makeApiClient(CustomObjectsApi);
    const gvp = { group: "ovntap.io", version: "v1alpha1", plural: "trafficmirrors", namespace: "shop" };
    const created = (await co.createNamespacedCustomObject({
      ...gvp,
      body: {
        apiVersion: "ovntap.io/v1alpha1",
        kind: "TrafficMirror",
        metadata: { name: "web" },
        spec: { direction: "both" },
        status: { phase: "Bogus" },
      },
    })) as { metadata: { generation: number; resourceVersion: string }; status?: unknown };
    expect(created.metadata.generation).toBe(1);
    expect(created.status).toBeUndefined(); // ignored on create

    const st = (await co.patchNamespacedCustomObjectStatus(
      { ...gvp, name: "web", body: { status: { phase: "Active" }, spec: { direction: "ingress" } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    )) as { metadata: { generation: number }; spec: unknown; status: unknown };
    expect(st.status).toEqual({ phase: "Active" });
    expect(st.spec).toEqual({ direction: "both" }); // only .status changes through /status
    expect(st.metadata.generation).toBe(1);

    const main = (await co.patchNamespacedCustomObject(
      { ...gvp, name: "web", body: { spec: { direction: "ingress" }, status: { phase: "Lost" } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    )) as { metadata: { generation: number }; spec: unknown; status: unknown };
    expect(main.spec).toEqual({ direction: "ingress" });
    expect(main.status).toEqual({ phase: "Active" }); // never through the main resource
    expect(main.metadata.generation).toBe(2);

    const labelOnly = (await co.patchNamespacedCustomObject(
      { ...gvp, name: "web", body: { metadata: { labels: { x: "y" } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    )) as { metadata: { generation: number } };
    expect(labelOnly.metadata.generation).toBe(2);

    const smp = await apiError(
      co.patchNamespacedCustomObject(
        { ...gvp, name: "web", body: { spec: {} } },
        setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
      ),
    );
    expect(smp.code).toBe(415);
    const noRv = await apiError(
      co.replaceNamespacedCustomObject({
        ...gvp,
        name: "web",
        body: {
          apiVersion: "ovntap.io/v1alpha1",
          kind: "TrafficMirror",
          metadata: { name: "web" },
          spec: {},
        },
      }),
    );
    expect(noRv.code).toBe(422);
    expect(apiCallKeys(f.calls)).toEqual([
      "create ovntap.io/trafficmirrors",
      "patch ovntap.io/trafficmirrors",
      "patch ovntap.io/trafficmirrors/status",
      "update ovntap.io/trafficmirrors",
    ]);
  });

  it("holds a deletion until the finalizers are gone", async () => {
    const f = await start();
    const co = f.kubeConfig().makeApiClient(CustomObjectsApi);
    const gvp = { group: "ovntap.io", version: "v1alpha1", plural: "trafficmirrors", namespace: "shop" };
    await co.createNamespacedCustomObject({
      ...gvp,
      body: {
        apiVersion: "ovntap.io/v1alpha1",
        kind: "TrafficMirror",
        metadata: { name: "web", finalizers: ["ovntap.io/cleanup"] },
        spec: {},
      },
    });
    await co.deleteNamespacedCustomObject({ ...gvp, name: "web" });
    const held = f.get("trafficmirrors.ovntap.io", "shop", "web");
    expect(held?.metadata.deletionTimestamp).toBeDefined();
    await co.patchNamespacedCustomObject({
      ...gvp,
      name: "web",
      body: [{ op: "remove", path: "/metadata/finalizers" }],
    });
    expect(f.get("trafficmirrors.ovntap.io", "shop", "web")).toBeUndefined();
  });

  it("serves cluster-scoped custom resources (ips.kubeovn.io)", async () => {
    const f = await start();
    const co = f.kubeConfig().makeApiClient(CustomObjectsApi);
    f.put("ips.kubeovn.io", { metadata: { name: "sink.tap" }, spec: { ipAddress: "198.51.100.7" } });
    const list = (await co.listClusterCustomObject({
      group: "kubeovn.io",
      version: "v1",
      plural: "ips",
    })) as {
      items: { metadata: { name: string }; apiVersion: string; kind: string }[];
    };
    expect(list.items).toMatchObject([
      { metadata: { name: "sink.tap" }, apiVersion: "kubeovn.io/v1", kind: "IP" },
    ]);
    expect(f.calls).toEqual([{ verb: "list", group: "kubeovn.io", resource: "ips" }]);
  });

  it("refuses a missing or wrong bearer token with 401, and what the rules do not allow with 403", async () => {
    const f = await start({
      rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"] }],
    });
    const wrong = f.kubeConfig({ token: "nope" }).makeApiClient(CoreV1Api);
    expect((await apiError(wrong.listNamespacedPod({ namespace: "ns" }))).code).toBe(401);
    const core = f.kubeConfig().makeApiClient(CoreV1Api);
    await core.listNamespacedPod({ namespace: "ns" });
    const forbidden = await apiError(core.readNamespacedPod({ namespace: "ns", name: "x" }));
    expect(forbidden.code).toBe(403);
    expect(body(forbidden).reason).toBe("Forbidden");
    expect(f.calls).toEqual([{ verb: "list", group: "", resource: "pods", namespace: "ns" }]);
    expect(f.denied).toEqual([{ verb: "get", group: "", resource: "pods", namespace: "ns" }]);
  });

  it("serves HTTPS with the CA in the kubeconfig", async () => {
    const f = await start({ tls: selfSignedCertificate() });
    expect(f.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    f.put("namespaces", { metadata: { name: "shop" } });
    const core = f.kubeConfig().makeApiClient(CoreV1Api);
    const ns = await core.listNamespace();
    expect(ns.items.map((n) => n.metadata?.name)).toEqual(["shop"]);
  });

  it("drives client-node's own informer (makeInformer: list, then watch)", async () => {
    const f = await start();
    const kc = f.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    f.put("pods", podObject({ name: "a", namespace: "ns" }));
    const informer = makeInformer<V1Pod>(kc, "/api/v1/namespaces/ns/pods", () =>
      core.listNamespacedPod({ namespace: "ns" }),
    );
    const added: string[] = [];
    informer.on("add", (p) => added.push(p.metadata?.name ?? ""));
    await informer.start();
    f.put("pods", podObject({ name: "b", namespace: "ns" }));
    await until(() => added.length === 2, "two adds");
    await informer.stop();
    expect(added).toEqual(["a", "b"]);
    expect(
      informer
        .list("ns")
        .map((p) => p.metadata?.name)
        .sort(),
    ).toEqual(["a", "b"]);
  });
});
