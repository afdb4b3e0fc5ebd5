/**
 * The controller between a FAKE Kubernetes API server (`@ovntap/k8s/testing`: the real REST and
 * watch protocol, driven through @kubernetes/client-node; no kube-apiserver can be installed
 * here) and the real intake (`createIntake`, in-process) on real nats-server and redis-server.
 * The fake enforces the deployment's own ClusterRole for the controller (deploy/k8s/base/rbac.yaml),
 * so every call the controller makes must be one the deployment grants.
 *
 * No ovn-applier runs: an accepted mirror stays Pending, which is what its status says. Where
 * a test needs a deletion to complete, it purges the record from the store as the applier does
 * once the dataplane rows are gone.
 *
 * Intake and the store are imported by names TypeScript does not follow (services do not import
 * each other), typed by the little this test uses.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { reqSubject } from "@ovntap/contracts";
import type { MirrorReply } from "@ovntap/contracts";
import { apiCallKeys } from "@ovntap/k8s";
import { FakeApiServer, waitUntil, type FakePolicyRule, type KubeObject } from "@ovntap/k8s/testing";
import { startNatsServer, startRedisServer } from "@ovntap/lab";
import type { NatsServer, RedisServer } from "@ovntap/lab";
import { connectNats, connectRedis, createLogger, createMetrics } from "@ovntap/runtime";
import type { Logger, Metrics, NatsClient, RedisClient } from "@ovntap/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { createController, type Controller } from "./controller.js";
import { MIRROR_FINALIZER, OWNER_UID_LABEL } from "./crd.js";
import { CONTROLLER_API_CALLS, type TrafficMirror } from "./resource.js";

const logger = createLogger({ name: "k8s-controller-test", level: "silent" });

interface Intake {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly events: { history(namespace: string, mirror: string): Promise<{ type: string }[]> };
}
interface IntakeModule {
  createIntake: (deps: {
    nc: NatsClient["nc"];
    redis: RedisClient["redis"];
    logger: Logger;
    policy: unknown;
    storePrefix: string;
    queuePrefix: string;
  }) => Intake;
  staticPolicy: (policy: unknown) => unknown;
  parsePolicy: (text: string) => unknown;
}
interface StoreModule {
  createStore: (opts: { redis: RedisClient["redis"]; prefix: string }) => {
    purge(namespace: string, name: string, generation: number): Promise<{ type: string }>;
  };
}
const INTAKE_MODULE: string = "@ovntap/intake";
const STORE_MODULE: string = "@ovntap/store";
const { createIntake, staticPolicy, parsePolicy } = (await import(INTAKE_MODULE)) as IntakeModule;
const { createStore } = (await import(STORE_MODULE)) as StoreModule;

/** The deployment's ClusterRole for the controller. */
function deployedRules(): FakePolicyRule[] {
  const file = join(import.meta.dirname, "..", "..", "..", "deploy", "k8s", "base", "rbac.yaml");
  const docs = parseAllDocuments(readFileSync(file, "utf8")).map(
    (d) => d.toJS() as { kind: string; metadata: { name: string }; rules?: FakePolicyRule[] },
  );
  const role = docs.find((d) => d.kind === "ClusterRole" && d.metadata.name === "ovntap-k8s-controller");
  if (!role?.rules) throw new Error(`${file} has no ClusterRole ovntap-k8s-controller`);
  return role.rules;
}

const POLICY = `
trustRequestPrincipal: true
protectedNamespaces: [kube-system]
allowedSinkCidrs: [198.51.100.0/24]
rules:
  - principals: ["*"]
    namespaces: ["*"]
`;

let nats: NatsServer;
let redis: RedisServer;
let fake: FakeApiServer;
let intakeNats: NatsClient;
let intakeRedis: RedisClient;
let controllerNats: NatsClient;
let client: NatsClient;
let intake: Intake;
let controller: Controller;
let metrics: Metrics;
const storePrefix = `{k8s-${randomUUID()}}`;

function startController(): Controller {
  metrics = createMetrics({ defaultMetrics: false });
  return createController({
    kubeConfig: fake.kubeConfig(),
    nc: controllerNats.nc,
    logger,
    metrics,
    config: { retryBaseMs: 50, retryMaxMs: 1_000, replacePollMs: 100, requestTimeoutMs: 5_000 },
  });
}

beforeAll(async () => {
  [nats, redis, fake] = await Promise.all([
    startNatsServer(),
    startRedisServer(),
    FakeApiServer.start({ token: "controller-token", rules: deployedRules() }),
  ]);
  [intakeNats, controllerNats, client] = await Promise.all([
    connectNats({ url: nats.url, name: "intake", logger }),
    connectNats({ url: nats.url, name: "k8s-controller", logger }),
    connectNats({ url: nats.url, name: "test", logger }),
  ]);
  intakeRedis = await connectRedis({ url: redis.url, logger, role: "client" });
  intake = createIntake({
    nc: intakeNats.nc,
    redis: intakeRedis.redis,
    logger,
    policy: staticPolicy(parsePolicy(POLICY)),
    storePrefix,
    queuePrefix: `{k8s-q-${randomUUID()}}`,
  });
  await intake.start();
  controller = startController();
  await controller.start();
});

afterAll(async () => {
  await controller?.stop();
  await intake?.stop();
  await Promise.all([intakeNats?.close(), controllerNats?.close(), client?.close(), intakeRedis?.close()]);
  await Promise.all([nats?.stop(), redis?.stop(), fake?.close()]);
});

const newNamespace = () => `tm-${randomBytes(4).toString("hex")}`;

function trafficMirror(namespace: string, name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: "ovntap.io/v1alpha1", kind: "TrafficMirror", metadata: { name, namespace }, spec };
}

const podsToSink = (sink: string, extra: Record<string, unknown> = {}) => ({
  sources: { type: "pods", names: ["web-0"] },
  direction: "both",
  target: { type: "gre", sink },
  ...extra,
});

function stored(namespace: string, name: string): TrafficMirror | undefined {
  return fake.get("trafficmirrors.ovntap.io", namespace, name) as TrafficMirror | undefined;
}

/** Waits until the stored resource satisfies `ok`, and returns it. */
function waitForResource(
  namespace: string,
  name: string,
  what: string,
  ok: (tm: TrafficMirror) => boolean,
): Promise<TrafficMirror> {
  return waitUntil(
    () => {
      const o = stored(namespace, name);
      return o && ok(o) ? o : undefined;
    },
    what,
    30_000,
  );
}

function condition(tm: TrafficMirror | undefined, type: string) {
  return tm?.status?.conditions?.find((c) => c.type === type);
}

/** What intake holds, asked as any client would. */
async function intakeGet(namespace: string, name: string): Promise<MirrorReply> {
  const msg = await client.nc.request(
    reqSubject(namespace),
    JSON.stringify({ requestId: `test-${randomUUID()}`, op: "get", namespace, name }),
    { timeout: 5_000 },
  );
  return msg.json<MirrorReply>();
}

describe("the TrafficMirror controller", () => {
  it("creates the mirror of a valid resource and writes its status: Accepted, Pending, the sink", async () => {
    const ns = newNamespace();
    const created = fake.put(
      "trafficmirrors.ovntap.io",
      trafficMirror(ns, "web", podsToSink("198.51.100.7", { ttlSeconds: 600 })),
    );
    const tm = await waitForResource(
      ns,
      "web",
      "web accepted",
      (o) => condition(o, "Accepted")?.status === "True",
    );

    expect(tm.metadata.finalizers).toEqual([MIRROR_FINALIZER]);
    expect(tm.status).toMatchObject({
      phase: "Pending",
      observedGeneration: 1,
      sink: "198.51.100.7",
      attachedPorts: [],
      mirrorGeneration: 1,
    });
    expect(condition(tm, "Accepted")).toMatchObject({
      status: "True",
      reason: "Accepted",
      observedGeneration: 1,
    });
    expect(condition(tm, "Ready")).toMatchObject({ status: "False", reason: "Pending" });

    const reply = await intakeGet(ns, "web");
    if (!reply.ok) throw new Error(reply.error.message);
    expect(reply.mirror.spec).toMatchObject({
      name: "web",
      namespace: ns,
      ttlSeconds: 600,
      labels: { [OWNER_UID_LABEL]: created.metadata.uid },
    });
    expect(reply.mirror.requestId).toBe(`k8s:${created.metadata.uid}:1:create`);
  });

  it("writes intake's refusal: a sink outside the policy's networks is Accepted=False, SINK_NOT_ALLOWED", async () => {
    const ns = newNamespace();
    fake.put("trafficmirrors.ovntap.io", trafficMirror(ns, "far", podsToSink("203.0.113.9")));
    const tm = await waitForResource(
      ns,
      "far",
      "far rejected",
      (o) => condition(o, "Accepted")?.status === "False",
    );
    expect(tm.status?.phase).toBe("Rejected");
    expect(tm.status?.observedGeneration).toBe(1);
    expect(condition(tm, "Accepted")).toMatchObject({ reason: "SINK_NOT_ALLOWED", observedGeneration: 1 });
    expect(condition(tm, "Accepted")?.message).toContain("203.0.113.9");
    expect(condition(tm, "Ready")).toMatchObject({ status: "False", reason: "Rejected" });
    const reply = await intakeGet(ns, "far");
    expect(reply.ok ? "exists" : reply.error.code).toBe("NOT_FOUND");
  });

  it("writes intake's refusal for a protected namespace, and lets the resource go when it is deleted", async () => {
    fake.put("trafficmirrors.ovntap.io", trafficMirror("kube-system", "dns", podsToSink("198.51.100.8")));
    const tm = await waitForResource(
      "kube-system",
      "dns",
      "dns rejected",
      (o) => condition(o, "Accepted")?.status === "False",
    );
    expect(condition(tm, "Accepted")?.reason).toBe("NAMESPACE_PROTECTED");

    // What the API server does with a DELETE while a finalizer holds the object.
    fake.modify("trafficmirrors.ovntap.io", "kube-system", "dns", (o) => {
      o.metadata.deletionTimestamp = new Date().toISOString();
    });
    await waitUntil(() => !stored("kube-system", "dns"), "dns gone");
  });

  it("writes intake's INVALID_REQUEST, naming the field, for a spec the contract refuses", async () => {
    const ns = newNamespace();
    // Structurally fine (the CRD takes it), but OVN mirrors emit ERSPAN type II only.
    fake.put(
      "trafficmirrors.ovntap.io",
      trafficMirror(ns, "v3", {
        sources: { type: "pods", names: ["web-0"] },
        direction: "ingress",
        target: { type: "erspan", sink: "198.51.100.9", version: 2 },
      }),
    );
    const tm = await waitForResource(
      ns,
      "v3",
      "v3 rejected",
      (o) => condition(o, "Accepted")?.status === "False",
    );
    expect(condition(tm, "Accepted")?.reason).toBe("INVALID_REQUEST");
    expect(condition(tm, "Accepted")?.message).toContain("spec.target.version");
  });

  it("deletes the mirror before the resource: the finalizer goes once intake answered the delete", async () => {
    const ns = newNamespace();
    fake.put("trafficmirrors.ovntap.io", trafficMirror(ns, "gone", podsToSink("198.51.100.10")));
    await waitUntil(() => condition(stored(ns, "gone"), "Accepted")?.status === "True", "gone accepted");

    fake.modify("trafficmirrors.ovntap.io", ns, "gone", (o) => {
      o.metadata.deletionTimestamp = new Date().toISOString();
    });
    await waitUntil(() => !stored(ns, "gone"), "the resource deleted");
    const reply = await intakeGet(ns, "gone");
    if (!reply.ok)
      throw new Error(`the record should be there until the applier purges it: ${reply.error.code}`);
    expect(reply.mirror.deletionRequestedAt).toBeDefined();
    expect(reply.mirror.requestId).toMatch(/:finalize$/);
  });

  it("extends the mirror when only the TTL changes, and replaces it when the spec changes", async () => {
    const ns = newNamespace();
    const created = fake.put(
      "trafficmirrors.ovntap.io",
      trafficMirror(ns, "app", podsToSink("198.51.100.11")),
    );
    const uid = created.metadata.uid;
    await waitUntil(() => condition(stored(ns, "app"), "Accepted")?.status === "True", "app accepted");

    fake.modify("trafficmirrors.ovntap.io", ns, "app", (o) => {
      (o.spec as Record<string, unknown>).ttlSeconds = 7200;
    });
    const extended = await waitForResource(
      ns,
      "app",
      "app extended",
      (o) => o.status?.observedGeneration === 2 && condition(o, "Accepted")?.status === "True",
    );
    let reply = await intakeGet(ns, "app");
    if (!reply.ok) throw new Error(reply.error.message);
    expect(reply.mirror.requestId).toBe(`k8s:${uid}:2:extend`);
    expect(reply.mirror.generation).toBe(2);
    expect(Date.parse(reply.mirror.expiresAt) - Date.parse(reply.mirror.updatedAt ?? "")).toBe(7_200_000);
    expect(extended.status?.mirrorGeneration).toBe(2);

    // Another sink: the mirror is deleted, then made anew for generation 3.
    fake.modify("trafficmirrors.ovntap.io", ns, "app", (o) => {
      ((o.spec as Record<string, unknown>).target as Record<string, unknown>).sink = "198.51.100.12";
    });
    const replacing = await waitUntil(async () => {
      const r = await intakeGet(ns, "app");
      return r.ok && r.mirror.deletionRequestedAt ? r : undefined;
    }, "the old mirror marked for deletion");
    expect(replacing.mirror.requestId).toBe(`k8s:${uid}:3:replace`);
    const during = await waitUntil(() => {
      const c = condition(stored(ns, "app"), "Accepted");
      return c?.reason === "Replacing" ? c : undefined;
    }, "the status saying the mirror is being replaced");
    expect(during.status).toBe("Unknown");

    const store = createStore({ redis: intakeRedis.redis, prefix: storePrefix });
    expect((await store.purge(ns, "app", replacing.mirror.generation)).type).toBe("purged");
    const replaced = await waitForResource(
      ns,
      "app",
      "app replaced",
      (o) => o.status?.observedGeneration === 3 && condition(o, "Accepted")?.status === "True",
    );
    expect(replaced.status?.sink).toBe("198.51.100.12");
    reply = await intakeGet(ns, "app");
    if (!reply.ok) throw new Error(reply.error.message);
    expect(reply.mirror.requestId).toBe(`k8s:${uid}:3:create`);
  });

  it("leaves a mirror made outside Kubernetes alone, and says so", async () => {
    const ns = newNamespace();
    const msg = await client.nc.request(
      reqSubject(ns),
      JSON.stringify({
        requestId: `cli-${randomUUID()}`,
        principal: "alice",
        op: "create",
        spec: { name: "mine", namespace: ns, ...podsToSink("198.51.100.13") },
      }),
      { timeout: 5_000 },
    );
    expect(msg.json<MirrorReply>().ok).toBe(true);
    fake.put("trafficmirrors.ovntap.io", trafficMirror(ns, "mine", podsToSink("198.51.100.14")));
    const tm = await waitForResource(
      ns,
      "mine",
      "mine refused",
      (o) => condition(o, "Accepted")?.status === "False",
    );
    expect(condition(tm, "Accepted")?.reason).toBe("ALREADY_EXISTS");
    expect(condition(tm, "Accepted")?.message).toContain("alice");
    const reply = await intakeGet(ns, "mine");
    if (!reply.ok) throw new Error(reply.error.message);
    expect(reply.mirror.owner).toBe("alice");
    expect(reply.mirror.spec.target).toMatchObject({ sink: "198.51.100.13" });
  });

  it("after a restart, sends nothing new for resources it already answered", async () => {
    const ns = newNamespace();
    fake.put("trafficmirrors.ovntap.io", trafficMirror(ns, "keep", podsToSink("198.51.100.15")));
    await waitUntil(() => condition(stored(ns, "keep"), "Accepted")?.status === "True", "keep accepted");
    const before = await intake.events.history(ns, "keep");

    await controller.stop();
    controller = startController();
    await controller.start();
    // Every resource reconciled once by the new controller.
    const resources = fake.list("trafficmirrors.ovntap.io").length;
    await waitUntil(async () => {
      const m = await metrics.registry.getSingleMetric("ovntap_k8s_controller_reconciles_total")?.get();
      const ok = m?.values.find((v) => v.labels.result === "ok")?.value ?? 0;
      return ok >= resources;
    }, "a reconcile of every resource");

    expect((await intake.events.history(ns, "keep")).map((e) => e.type)).toEqual(before.map((e) => e.type));
    const reply = await intakeGet(ns, "keep");
    expect(reply.ok && reply.mirror.generation).toBe(1);
  });

  it("made exactly the API calls CONTROLLER_API_CALLS lists, each allowed by the deployment's ClusterRole", () => {
    expect(fake.denied).toEqual([]);
    expect(apiCallKeys(fake.calls)).toEqual(apiCallKeys(CONTROLLER_API_CALLS));
  });
});
