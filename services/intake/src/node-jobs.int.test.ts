/**
 * Mirrors of OVS bridge ports go to their node's queue `node.<node>`, with the same job ids and
 * the same store-then-enqueue guarantees as `ovn-apply`: create, extend and delete each queue
 * the new generation for the node agent, nothing goes to `ovn-apply`, and a failed enqueue is
 * logged and leaves the stored record for the agent's resync (which reads every `ovs` mirror of
 * its node from the store).
 */
import { randomUUID } from "node:crypto";
import { nodeQueue, type Reply } from "@ovntap/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compilePolicy, parsePolicy } from "./policy.js";
import type { PolicySource } from "./policy-source.js";
import {
  buildIntake,
  create,
  randomNs,
  send,
  startServers,
  type Built,
  type Servers,
} from "./testing/harness.js";

const NODE = "worker-1.example";

const policy: PolicySource = (() => {
  const compiled = compilePolicy(
    parsePolicy(
      JSON.stringify({
        trustRequestPrincipal: true,
        allowedSinkCidrs: ["198.51.100.0/24"],
        rules: [{ principals: ["*"], namespaces: ["*"], allowOvsSources: true }],
      }),
    ),
  );
  return { current: () => compiled, version: 1, close: () => Promise.resolve() };
})();

const ovsMirror = (ns: string, name: string) =>
  create(ns, name, {
    sources: { type: "ovs", node: NODE, bridge: "br-int", ports: ["veth-a"] },
    direction: "egress",
    target: { type: "gre", sink: "198.51.100.2" },
  });

function expectOk(reply: Reply): asserts reply is Extract<Reply, { ok: true; mirror: unknown }> {
  if (!reply.ok) throw new Error(`expected ok, got ${reply.error.code}: ${reply.error.message}`);
}

describe("node.<node> jobs for ovs sources", () => {
  let servers: Servers;
  let svc: Built;
  beforeAll(async () => {
    servers = await startServers();
    svc = await buildIntake(servers, { policy });
  });
  afterAll(async () => {
    await svc?.stop();
    await servers?.stop();
  });

  it("create, extend and delete each queue the generation on the node's queue, not on ovn-apply", async () => {
    const ns = randomNs();
    const q = svc.intake.nodeQueues.queue(NODE);
    expect(q.name).toBe(nodeQueue(NODE));

    expectOk(await send(servers, ns, ovsMirror(ns, "tap")));
    expect((await q.getJob(`${ns}/tap@1`))?.data).toEqual({
      namespace: ns,
      name: "tap",
      generation: 1,
      reason: "create",
      node: NODE,
    });
    const extended = await send(servers, ns, {
      requestId: randomUUID(),
      op: "extend",
      namespace: ns,
      name: "tap",
      ttlSeconds: 600,
    });
    expectOk(extended);
    expect((await q.getJob(`${ns}/tap@2`))?.data).toMatchObject({ reason: "extend", node: NODE });
    expectOk(await send(servers, ns, { requestId: randomUUID(), op: "delete", namespace: ns, name: "tap" }));
    expect((await q.getJob(`${ns}/tap@3`))?.data).toMatchObject({ reason: "delete", node: NODE });
    // A second delete while it is being deleted: the same job again, not a new one.
    expectOk(await send(servers, ns, { requestId: randomUUID(), op: "delete", namespace: ns, name: "tap" }));
    expect((await q.getJobs(["waiting"])).map((j) => j.id).filter((id) => id?.startsWith(ns))).toEqual(
      expect.arrayContaining([`${ns}/tap@1`, `${ns}/tap@2`, `${ns}/tap@3`]),
    );
    expect((await q.getJobs(["waiting"])).filter((j) => j.id?.startsWith(ns))).toHaveLength(3);

    // OVN mirrors still go to ovn-apply, and ovs mirrors never do.
    expectOk(await send(servers, ns, create(ns, "web")));
    expect(await svc.queue.getJob(`${ns}/web@1`)).toBeDefined();
    for (const g of [1, 2, 3]) expect(await svc.queue.getJob(`${ns}/tap@${g}`)).toBeUndefined();
  });
});

describe("a failed node enqueue (an intake of its own, on its own servers)", () => {
  let servers: Servers;
  beforeAll(async () => {
    servers = await startServers();
  });
  afterAll(async () => {
    await servers?.stop();
  });

  it("is logged and counted, and the stored record waits for the agent's resync", async () => {
    let failures = 1;
    const faulty: Built = await buildIntake(servers, {
      policy,
      enqueueNode: async (job) => {
        if (failures-- > 0) throw new Error("simulated crash between the Redis write and the enqueue");
        await faulty.intake.nodeQueues.enqueue(job);
      },
    });
    try {
      const ns = randomNs();
      expectOk(await send(servers, ns, ovsMirror(ns, "lost")));
      expect(await faulty.intake.nodeQueues.queue(NODE).getJob(`${ns}/lost@1`)).toBeUndefined();
      expect(faulty.logs.messages("enqueue failed, the node agent's resync will apply it")).toHaveLength(1);
      expect(
        await faulty.metrics.registry.getSingleMetricAsString("ovntap_intake_enqueue_failures_total"),
      ).toMatch(/ 1$/m);
      // What the agent's resync reads: every ovs mirror of its node, with its generation unapplied.
      const mine = (await faulty.intake.store.listMirrors()).filter(
        (m) => m.record.spec.sources.type === "ovs" && m.record.spec.sources.node === NODE,
      );
      expect(
        mine.map((m) => [m.record.spec.namespace, m.record.spec.name, m.status.observedGeneration]),
      ).toEqual([[ns, "lost", 0]]);
      // The next request for the node queues normally.
      expectOk(await send(servers, ns, ovsMirror(ns, "fine")));
      expect(await faulty.intake.nodeQueues.queue(NODE).getJob(`${ns}/fine@1`)).toBeDefined();
    } finally {
      await faulty.stop();
    }
  });
});
