import { randomUUID } from "node:crypto";
import { reqSubject, UNNAMED_MIRROR } from "@ovntap/contracts";
import type { ErrorCode, Reply } from "@ovntap/contracts";
import { waitFor } from "@ovntap/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compilePolicy, parsePolicy } from "./policy.js";
import type { PolicyInput } from "./policy.js";
import type { PolicySource } from "./policy-source.js";
import {
  buildIntake,
  create,
  randomNs,
  send,
  snapshot,
  startServers,
  type Built,
  type Servers,
} from "./testing/harness.js";

function policyOf(input: Partial<PolicyInput>): PolicySource {
  const compiled = compilePolicy(
    parsePolicy(JSON.stringify({ rules: [{ principals: ["*"], namespaces: ["*"] }], ...input })),
  );
  return { current: () => compiled, version: 1, close: () => Promise.resolve() };
}

function expectOk(reply: Reply): asserts reply is Extract<Reply, { ok: true; mirror: unknown }> {
  if (!reply.ok) throw new Error(`expected ok, got ${reply.error.code}: ${reply.error.message}`);
  expect("mirror" in reply).toBe(true);
}

function expectError(reply: Reply, code: ErrorCode): Extract<Reply, { ok: false }>["error"] {
  if (reply.ok) throw new Error(`expected ${code}, got ok`);
  expect(reply.error.code).toBe(code);
  return reply.error;
}

describe("intake over NATS (nats-server + redis-server)", () => {
  let servers: Servers;
  let svc: Built;
  // The policy in force; tests may swap it for one request and put it back.
  let base: PolicySource;
  let active: PolicySource;
  const swap = (p: PolicySource) => void (active = p);
  beforeAll(async () => {
    servers = await startServers();
    base = active = policyOf({
      trustRequestPrincipal: true,
      protectedNamespaces: ["kube-system"],
      allowedSinkCidrs: ["198.51.100.0/24", "10.0.0.0/8", "fd00::/8"],
      namespaceLimits: [{ namespaces: ["q-*"], maxActiveMirrors: 1, maxTtlSeconds: 600 }],
      rules: [
        { principals: ["*"], namespaces: ["*"] },
        { principals: ["admin"], namespaces: ["*"], allowPortsSources: true },
      ],
    });
    svc = await buildIntake(servers, {
      policy: { current: () => active.current(), version: 1, close: () => Promise.resolve() },
    });
  });
  afterAll(async () => {
    await svc?.stop();
    await servers?.stop();
  });

  const types = async (ns: string, mirror: string) =>
    (await svc.intake.events.history(ns, mirror)).map((e) => e.type);
  const state = () => snapshot(servers.intakeRedis.redis, [svc.storePrefix, svc.queuePrefix]);

  it("is ready once started", () => {
    expect(svc.intake.isReady()).toBe(true);
  });

  it("create → get → list → extend → delete, each through NATS request/reply, each enqueued", async () => {
    const ns = randomNs();
    const created = await send(servers, ns, {
      ...create(ns, "web", { labels: { app: "web" } }),
      principal: "alice",
    });
    expectOk(created);
    expect(created.mirror).toMatchObject({
      generation: 1,
      owner: "alice",
      spec: { name: "web", namespace: ns },
    });
    expect(created.status).toMatchObject({ phase: "Pending", generation: 1, observedGeneration: 0 });
    const job = await svc.queue.getJob(`${ns}/web@1`);
    expect(job?.data).toEqual({ namespace: ns, name: "web", generation: 1, reason: "create" });

    const got = await send(servers, ns, { requestId: randomUUID(), op: "get", namespace: ns, name: "web" });
    expect(got).toEqual(created);

    await send(servers, ns, create(ns, "db", { labels: { app: "db" } }));
    const all = await send(servers, ns, { requestId: randomUUID(), op: "list", namespace: ns });
    expect(all.ok && "items" in all && all.items.map((i) => i.mirror.spec.name)).toEqual(["db", "web"]);
    const some = await send(servers, ns, {
      requestId: randomUUID(),
      op: "list",
      namespace: ns,
      selector: { matchLabels: { app: "web" } },
    });
    expect(some.ok && "items" in some && some.items.map((i) => i.mirror.spec.name)).toEqual(["web"]);

    const extended = await send(servers, ns, {
      requestId: "ext-1",
      op: "extend",
      namespace: ns,
      name: "web",
      ttlSeconds: 7200,
    });
    expectOk(extended);
    expect(extended.mirror.generation).toBe(2);
    expect(Date.parse(extended.mirror.expiresAt) - Date.now()).toBeGreaterThan(7_100_000);
    expect((await svc.queue.getJob(`${ns}/web@2`))?.data.reason).toBe("extend");

    const deleted = await send(servers, ns, { requestId: "del-1", op: "delete", namespace: ns, name: "web" });
    expectOk(deleted);
    expect(deleted.mirror).toMatchObject({ generation: 3 });
    expect(deleted.mirror.deletionRequestedAt).toBeDefined();
    expect((await svc.queue.getJob(`${ns}/web@3`))?.data.reason).toBe("delete");

    expect(await types(ns, "web")).toEqual([
      "requested",
      "accepted",
      "requested",
      "accepted",
      "extended",
      "requested",
      "accepted",
    ]);
    const trail = await svc.intake.events.history(ns, "web");
    expect(trail.map((e) => e.generation)).toEqual([0, 1, 1, 2, 2, 2, 3]);
    expect(trail[0]).toMatchObject({ principal: "alice", requestId: created.mirror.requestId });

    const metrics = await svc.metrics.registry.getSingleMetricAsString("ovntap_intake_requests_total");
    expect(metrics).toMatch(/op="create",outcome="accepted"/);
    expect(metrics).toMatch(/op="get",outcome="ok"/);
    const latency = await svc.metrics.registry.getSingleMetricAsString(
      "ovntap_intake_request_duration_seconds",
    );
    expect(latency).toMatch(/_count\{op="create"\} [1-9]/);
  });

  describe("refusals: each a rejected event, no change in Redis", () => {
    async function refused(
      ns: string,
      mirror: string,
      body: Record<string, unknown>,
      code: ErrorCode,
      setup?: () => Promise<unknown>,
    ) {
      await setup?.();
      const before = await state();
      const reply = await send(servers, ns, body);
      const error = expectError(reply, code);
      expect(await state()).toEqual(before);
      const trail = await svc.intake.events.history(ns, mirror);
      const last = trail.at(-1);
      expect(last).toMatchObject({ type: "rejected", detail: { error: { code } } });
      return { error, trail };
    }

    it("FORBIDDEN: a principal outside the policy", async () => {
      const ns = randomNs();
      swap(
        policyOf({ trustRequestPrincipal: true, rules: [{ principals: ["team-a:*"], namespaces: ["*"] }] }),
      );
      try {
        const { error, trail } = await refused(
          ns,
          "web",
          { ...create(ns, "web"), principal: "mallory" },
          "FORBIDDEN",
        );
        expect(error.message).toContain('"mallory"');
        expect(trail.map((e) => e.type)).toEqual(["requested", "rejected"]);
        expect(trail[1]).toMatchObject({
          principal: "mallory",
          detail: { op: "create", error: { code: "FORBIDDEN" } },
        });
        // Reads are refused and recorded too.
        await refused(
          ns,
          UNNAMED_MIRROR,
          { requestId: randomUUID(), op: "list", namespace: ns, principal: "mallory" },
          "FORBIDDEN",
        );
        expectOk(await send(servers, ns, { ...create(ns, "web2"), principal: "team-a:bob" }));
      } finally {
        swap(base);
      }
    });

    it("FORBIDDEN: raw ports sources without the admin rule", async () => {
      const ns = randomNs();
      await refused(
        ns,
        "raw",
        { ...create(ns, "raw", { sources: { type: "ports", names: ["p1"] } }), principal: "bob" },
        "FORBIDDEN",
      );
      const ok = await send(servers, ns, {
        ...create(ns, "raw", { sources: { type: "ports", names: ["p1"] } }),
        principal: "admin",
      });
      expectOk(ok);
    });

    it("NAMESPACE_PROTECTED: kube-system, and ports of a protected namespace", async () => {
      await refused("kube-system", "web", create("kube-system", "web"), "NAMESPACE_PROTECTED");
      const ns = randomNs();
      const { error } = await refused(
        ns,
        "raw",
        {
          ...create(ns, "raw", { sources: { type: "ports", names: ["ok.shop", "coredns.kube-system"] } }),
          principal: "admin",
        },
        "NAMESPACE_PROTECTED",
      );
      expect(error.issues?.[0]?.path).toBe("spec.sources.names[1]");
    });

    it("SINK_NOT_ALLOWED: IPv4 and IPv6 sinks outside the allowed CIDRs", async () => {
      const ns = randomNs();
      const { error } = await refused(
        ns,
        "v4",
        create(ns, "v4", { target: { type: "gre", sink: "192.0.2.1" } }),
        "SINK_NOT_ALLOWED",
      );
      expect(error.issues?.[0]).toMatchObject({ path: "spec.target.sink" });
      expect(error.message).toContain("198.51.100.0/24");
      await refused(
        ns,
        "v6",
        create(ns, "v6", { target: { type: "erspan", sink: "2001:db8::1" } }),
        "SINK_NOT_ALLOWED",
      );
      expectOk(await send(servers, ns, create(ns, "v6ok", { target: { type: "erspan", sink: "fd00::9" } })));
    });

    it("ALREADY_EXISTS: a duplicate name", async () => {
      const ns = randomNs();
      const { error } = await refused(ns, "web", create(ns, "web"), "ALREADY_EXISTS", () =>
        send(servers, ns, create(ns, "web")),
      );
      expect(error.issues?.[0]?.path).toBe("spec.name");
    });

    it("QUOTA_EXCEEDED: over the namespace's active mirrors", async () => {
      const ns = randomNs("q");
      await refused(ns, "second", create(ns, "second", { ttlSeconds: 300 }), "QUOTA_EXCEEDED", () =>
        send(servers, ns, create(ns, "first", { ttlSeconds: 300 })),
      );
    });

    it("TTL_TOO_LONG: over the namespace's maximum, at create and at extend", async () => {
      const ns = randomNs("q");
      const { error } = await refused(ns, "web", create(ns, "web", { ttlSeconds: 3600 }), "TTL_TOO_LONG");
      expect(error.issues?.[0]?.path).toBe("spec.ttlSeconds");
      expect(error.issues?.[0]?.message).toContain("≤ 600");
      expectOk(await send(servers, ns, create(ns, "web", { ttlSeconds: 600 })));
      await refused(
        ns,
        "web",
        { requestId: randomUUID(), op: "extend", namespace: ns, name: "web", ttlSeconds: 601 },
        "TTL_TOO_LONG",
      );
    });

    it("NOT_FOUND: delete, extend and get of a missing mirror", async () => {
      const ns = randomNs();
      await refused(
        ns,
        "nope",
        { requestId: randomUUID(), op: "delete", namespace: ns, name: "nope" },
        "NOT_FOUND",
      );
      await refused(
        ns,
        "nope",
        { requestId: randomUUID(), op: "extend", namespace: ns, name: "nope", ttlSeconds: 600 },
        "NOT_FOUND",
      );
      await refused(
        ns,
        "nope",
        { requestId: randomUUID(), op: "get", namespace: ns, name: "nope" },
        "NOT_FOUND",
      );
    });

    it("selector sources are accepted and stored (the applier follows the pods)", async () => {
      const ns = randomNs();
      const reply = await send(
        servers,
        ns,
        create(ns, "sel", { sources: { type: "selector", matchLabels: { app: "web" } } }),
      );
      expectOk(reply);
      expect(reply.mirror).toMatchObject({
        spec: { sources: { type: "selector", matchLabels: { app: "web" } } },
      });
    });

    it("SINK_NOT_ALLOWED: a sink pod in a namespace the principal may not mirror into", async () => {
      const ns = randomNs();
      swap(
        policyOf({
          trustRequestPrincipal: true,
          protectedNamespaces: ["kube-system"],
          rules: [{ principals: ["team-a:*"], namespaces: [ns, "sinks-a"] }],
        }),
      );
      try {
        const podSink = (namespace: string) => ({
          target: { type: "gre", sink: { pod: { namespace, name: "receiver" } } },
        });
        const { error } = await refused(
          ns,
          "far",
          { ...create(ns, "far", podSink("team-b")), principal: "team-a:bob" },
          "SINK_NOT_ALLOWED",
        );
        expect(error.issues?.[0]?.path).toBe("spec.target.sink.pod.namespace");
        expect(error.message).toContain("team-b/receiver");
        await refused(
          ns,
          "sys",
          { ...create(ns, "sys", podSink("kube-system")), principal: "team-a:bob" },
          "SINK_NOT_ALLOWED",
        );
        expectOk(await send(servers, ns, { ...create(ns, "own", podSink(ns)), principal: "team-a:bob" }));
        expectOk(
          await send(servers, ns, { ...create(ns, "granted", podSink("sinks-a")), principal: "team-a:bob" }),
        );
      } finally {
        swap(base);
      }
    });

    it("INVALID_REQUEST: names each field and its limit; recorded under the name, or _unnamed", async () => {
      const ns = randomNs();
      const body = {
        ...create(ns, "web"),
        spec: {
          ...create(ns, "web").spec,
          snaplen: 5,
          target: { type: "gre", sink: "10.0.0.9", key: 2 ** 32 },
        },
      };
      const { error } = await refused(ns, "web", body, "INVALID_REQUEST");
      const issue = (path: string) => error.issues?.find((i) => i.path === path)?.message;
      expect(issue("spec.snaplen")).toContain("≥ 14");
      expect(issue("spec.target.key")).toContain("≤ 4294967295");
      await refused(ns, UNNAMED_MIRROR, { requestId: "x", op: "fly" }, "INVALID_REQUEST");
      // The body's namespace must be the subject's.
      const other = await refused(ns, "web", create("elsewhere", "web"), "INVALID_REQUEST");
      expect(other.error.issues?.[0]?.path).toBe("spec.namespace");
      // Not JSON at all.
      const before = await state();
      const garbage = await send(servers, ns, new Uint8Array([0xff, 0xfe, 0x00, 0x7b]));
      expectError(garbage, "INVALID_REQUEST");
      expect(await state()).toEqual(before);
    });
  });

  it("dedupes by requestId: same body → the same reply, one accepted event, one job; another body → CONFLICT", async () => {
    const ns = randomNs();
    const body = create(ns, "web");
    const replies = await Promise.all([
      send(servers, ns, body),
      send(servers, ns, body),
      send(servers, ns, body),
    ]);
    expectOk(replies[0]);
    expect(replies[1]).toEqual(replies[0]);
    expect(replies[2]).toEqual(replies[0]);
    // Later, too.
    expect(await send(servers, ns, body)).toEqual(replies[0]);
    expect((await types(ns, "web")).filter((t) => t === "accepted")).toHaveLength(1);
    expect(await svc.queue.getJobCounts("waiting")).toMatchObject({});
    const jobs = await svc.queue.getJobs(["waiting", "delayed", "active", "completed", "failed"]);
    expect(jobs.filter((j) => j.id?.startsWith(`${ns}/`)).map((j) => j.id)).toEqual([`${ns}/web@1`]);

    const before = await state();
    const conflict = await send(servers, ns, { ...body, spec: { ...body.spec, snaplen: 128 } });
    expectError(conflict, "CONFLICT");
    expect(await state()).toEqual(before);
    expect((await types(ns, "web")).at(-1)).toBe("rejected");
    // A delete under a create's requestId is a conflict too.
    expectError(
      await send(servers, ns, { requestId: body.requestId, op: "delete", namespace: ns, name: "web" }),
      "CONFLICT",
    );
  });

  it("processes a request published without a reply subject", async () => {
    const ns = randomNs();
    servers.client.nc.publish(reqSubject(ns), JSON.stringify(create(ns, "quiet")));
    await waitFor(async () => (await svc.intake.store.getRecord(ns, "quiet")) !== undefined, {
      what: "the record of a request without reply",
      timeoutMs: 10_000,
    });
    await waitFor(async () => (await types(ns, "quiet")).includes("accepted"), {
      what: "the accepted event",
      timeoutMs: 10_000,
    });
    expect(await svc.queue.getJob(`${ns}/quiet@1`)).toBeDefined();
  });
});
