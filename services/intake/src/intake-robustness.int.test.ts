import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { reqSubject, Reply } from "@ovntap/contracts";
import { arbitraries } from "@ovntap/contracts/internal";
import { waitFor } from "@ovntap/lab";
import { createEventLog, enqueueApply, makeEvent } from "@ovntap/store";
import type { EventLog } from "@ovntap/store";
import { createLogger } from "@ovntap/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildIntake,
  create,
  randomNs,
  send,
  startServers,
  type Built,
  type Servers,
} from "./testing/harness.js";

/** One fuzz input: where it goes and what it carries. */
interface Input {
  namespace: string;
  payload: string | Uint8Array;
}

const ns = arbitraries.dnsLabel.filter((s) => s !== "kube-system");

/** Valid requests, requests with one field out of range, wrong JSON, and bytes that are not JSON at all. */
const input: fc.Arbitrary<Input> = fc.oneof(
  arbitraries.request.map((r) => {
    const namespace = r.op === "create" ? r.spec.namespace : r.namespace;
    return { namespace, payload: JSON.stringify(r) };
  }),
  fc.tuple(arbitraries.request, ns).map(([r, other]) => ({ namespace: other, payload: JSON.stringify(r) })),
  arbitraries.outOfRangeRequest.map((o) => {
    const body = o.request as { namespace?: unknown; spec?: { namespace?: unknown } };
    const namespace = body.spec?.namespace ?? body.namespace;
    return {
      namespace:
        typeof namespace === "string" &&
        /^[a-z0-9-]{1,63}$/.test(namespace) &&
        !namespace.startsWith("-") &&
        !namespace.endsWith("-")
          ? namespace
          : "fuzz",
      payload: JSON.stringify(o.request),
    };
  }),
  fc.tuple(ns, fc.jsonValue()).map(([namespace, v]) => ({ namespace, payload: JSON.stringify(v) })),
  fc.tuple(ns, fc.object()).map(([namespace, v]) => ({ namespace, payload: JSON.stringify(v) ?? "null" })),
  fc
    .tuple(
      ns,
      arbitraries.request,
      fc.constantFrom("op", "requestId", "spec", "name", "namespace"),
      fc.anything(),
    )
    .map(([namespace, r, key, value]) => ({
      namespace,
      payload:
        JSON.stringify({ ...r, [key]: value }, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)) ??
        "{}",
    })),
  fc.tuple(ns, fc.uint8Array({ maxLength: 512 })).map(([namespace, payload]) => ({ namespace, payload })),
  fc.tuple(ns, fc.string({ maxLength: 200 })).map(([namespace, payload]) => ({ namespace, payload })),
);

describe("intake robustness", () => {
  let servers: Servers;
  let svc: Built;
  beforeAll(async () => {
    servers = await startServers();
    svc = await buildIntake(servers);
  });
  afterAll(async () => {
    await svc?.stop();
    await servers?.stop();
  });

  it("answers 500 random and malformed requests, each with a reply the contract accepts, and keeps serving", async () => {
    const seed = Date.now() ^ (Math.random() * 0x7fffffff);
    const inputs = fc.sample(input, { numRuns: 500, seed });
    const codes = new Map<string, number>();
    for (let i = 0; i < inputs.length; i += 50) {
      const batch = inputs.slice(i, i + 50);
      const replies = await Promise.all(
        batch.map(async (x) => {
          const msg = await servers.client.nc.request(reqSubject(x.namespace), x.payload, {
            timeout: 15_000,
          });
          const parsed = Reply.safeParse(msg.json());
          if (!parsed.success)
            throw new Error(`seed ${seed}: reply does not match the contract: ${msg.string()}`);
          return parsed.data;
        }),
      );
      for (const r of replies) {
        const key = r.ok ? "ok" : r.error.code;
        codes.set(key, (codes.get(key) ?? 0) + 1);
      }
    }
    expect(
      [...codes.values()].reduce((a, b) => a + b, 0),
      `seed ${seed}`,
    ).toBe(500);
    // Nothing failed inside intake: every answer is a decision, not an error.
    const failures = svc.logs.messages("request failed").map((r) => JSON.stringify(r.err).slice(0, 2000));
    expect(failures, `seed ${seed}`).toEqual([]);
    // Every refusal made it into the audit trail (no event failed to build or publish).
    const unpublished = svc.logs
      .messages("event publish failed")
      .map((r) => JSON.stringify(r.err).slice(0, 1000));
    expect(unpublished, `seed ${seed}`).toEqual([]);
    expect(codes.get("INTERNAL") ?? 0, `seed ${seed}: ${JSON.stringify([...codes])}`).toBe(0);
    expect(codes.get("UNAVAILABLE") ?? 0, `seed ${seed}`).toBe(0);
    expect(codes.get("INVALID_REQUEST") ?? 0).toBeGreaterThan(100);
    expect(svc.logs.messages("request failed")).toEqual([]);

    expect(svc.intake.isReady()).toBe(true);
    const namespace = randomNs();
    const after = await send(servers, namespace, create(namespace, "still-here"));
    expect(after.ok).toBe(true);
  });

  it("survives a redis-server restart (AOF): refuses with UNAVAILABLE while down, keeps accepted work", async () => {
    const namespace = randomNs();
    const accepted = [];
    for (let i = 0; i < 5; i++) {
      const r = await send(servers, namespace, create(namespace, `m${i}`));
      expect(r.ok).toBe(true);
      accepted.push(r);
    }
    await servers.redis.daemon.stop();
    await waitFor(() => !servers.intakeRedis.isReady(), { what: "redis to be seen down", timeoutMs: 10_000 });
    const down = await send(servers, namespace, create(namespace, "while-down"));
    expect(down.ok ? "ok" : down.error.code).toBe("UNAVAILABLE");

    await servers.redis.restart();
    await waitFor(() => servers.intakeRedis.isReady(), { what: "redis to be back", timeoutMs: 20_000 });
    const listed = await send(servers, namespace, { requestId: randomUUID(), op: "list", namespace });
    expect(listed.ok && "items" in listed && listed.items.map((i) => i.mirror.spec.name)).toEqual([
      "m0",
      "m1",
      "m2",
      "m3",
      "m4",
    ]);
    for (let i = 0; i < 5; i++) expect(await svc.queue.getJob(`${namespace}/m${i}@1`)).toBeDefined();
    // The refused request left nothing, and can be sent again.
    expect(await svc.intake.store.getRecord(namespace, "while-down")).toBeUndefined();
    expect((await send(servers, namespace, create(namespace, "while-down"))).ok).toBe(true);
  });
});

describe("intake faults (one intake per test, on its own servers)", () => {
  let servers: Servers;
  beforeAll(async () => {
    servers = await startServers();
  });
  afterAll(async () => {
    await servers?.stop();
  });

  it("a crash between store and enqueue loses nothing: pendingReconcile reports the mirror, the sweep enqueues it once", async () => {
    let failures = 1;
    const faulty: Built = await buildIntake(servers, {
      enqueue: async (job) => {
        if (failures-- > 0) throw new Error("simulated crash between the Redis write and the enqueue");
        await enqueueApply(faulty.queue, job);
      },
    });
    try {
      const namespace = "crash-ns";
      const reply = await send(servers, namespace, create(namespace, "lost"));
      expect(reply.ok).toBe(true);
      expect(await faulty.queue.getJob(`${namespace}/lost@1`)).toBeUndefined();
      expect(faulty.logs.messages("enqueue failed, the reconcile sweep will enqueue it")).toHaveLength(1);
      expect(
        await faulty.metrics.registry.getSingleMetricAsString("ovntap_intake_enqueue_failures_total"),
      ).toMatch(/ 1$/m);

      expect(await send(servers, namespace, create(namespace, "fine"))).toMatchObject({ ok: true });
      const pending = await faulty.intake.store.pendingReconcile();
      expect(pending).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ namespace, name: "lost", generation: 1, reason: "resync" }),
          expect.objectContaining({ namespace, name: "fine", generation: 1 }),
        ]),
      );

      // The applier's sweep, twice: the lost job appears, nothing is doubled.
      for (let round = 0; round < 2; round++) {
        for (const p of await faulty.intake.store.pendingReconcile()) await enqueueApply(faulty.queue, p);
      }
      const jobs = await faulty.queue.getJobs(["waiting", "delayed", "active", "completed", "failed"]);
      expect(jobs.map((j) => j.id).sort()).toEqual([`${namespace}/fine@1`, `${namespace}/lost@1`]);
    } finally {
      await faulty.stop();
    }
  });

  it("records `accepted` before the job is queued: an applier that takes it at once never precedes it", async () => {
    const events = createEventLog({
      nc: servers.intakeNats.nc,
      logger: createLogger({ name: "t", level: "silent" }),
    });
    // An applier as fast as can be: it takes the job the moment it is queued and says so.
    const eager: Built = await buildIntake(servers, {
      subject: "ovntap.v1.req.order-ns",
      queueGroup: "order",
      enqueue: async (job) => {
        await events.publish(
          makeEvent("applying", {
            namespace: job.namespace,
            mirror: job.name,
            generation: job.generation,
            principal: "system:ovntap:ovn-applier",
            requestId: randomUUID(),
            detail: { reason: job.reason, attempt: 1 },
          }),
        );
      },
    });
    try {
      const namespace = "order-ns";
      expect((await send(servers, namespace, create(namespace, "web"))).ok).toBe(true);
      expect((await events.history(namespace, "web")).map((e) => e.type)).toEqual([
        "requested",
        "accepted",
        "applying",
      ]);
    } finally {
      await eager.stop();
    }
  });

  it("an accepted event lost to a JetStream hiccup is published by the retry (the outbox), exactly once", async () => {
    const real = createEventLog({
      nc: servers.intakeNats.nc,
      logger: createLogger({ name: "t", level: "silent" }),
    });
    const fail = new Set<string>(["accepted"]);
    const flaky: EventLog = {
      ...real,
      publish: (e) => {
        if (fail.delete(e.type)) return Promise.reject(new Error("simulated JetStream timeout"));
        return real.publish(e);
      },
    };
    const svc2 = await buildIntake(servers, {
      events: flaky,
      subject: "ovntap.v1.req.outbox-ns",
      queueGroup: "outbox",
    });
    try {
      const namespace = "outbox-ns";
      const body = create(namespace, "web");
      const first = await send(servers, namespace, body);
      expect(first.ok).toBe(true);
      const types = async () => (await real.history(namespace, "web")).map((e) => e.type);
      expect(await types()).toEqual(["requested"]);
      expect((await svc2.intake.store.lookupRequest(body.requestId))?.eventsPublished).toBe(false);

      expect(await send(servers, namespace, body)).toEqual(first);
      expect(await types()).toEqual(["requested", "accepted"]);
      expect((await svc2.intake.store.lookupRequest(body.requestId))?.eventsPublished).toBe(true);
      expect(await send(servers, namespace, body)).toEqual(first);
      expect(await types()).toEqual(["requested", "accepted"]);

      // Without the audit trail nothing changes: a create whose `requested` event fails is refused.
      fail.add("requested");
      const refused = await send(servers, namespace, create(namespace, "unaudited"));
      expect(refused.ok ? "ok" : refused.error.code).toBe("UNAVAILABLE");
      expect(await svc2.intake.store.getRecord(namespace, "unaudited")).toBeUndefined();
    } finally {
      await svc2.stop();
    }
  });
});
