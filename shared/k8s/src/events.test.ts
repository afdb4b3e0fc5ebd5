/**
 * Kubernetes Events against the fake API server: created with the fields kubectl shows, a repeat
 * patched (count, lastTimestamp) instead of created, similar events combined, storms dropped,
 * an expired Event written anew, and only create/patch of events used.
 */
import { createLogger } from "@ovntap/runtime";
import { afterEach, describe, expect, it } from "vitest";
import { apiCallKeys } from "./calls.js";
import { COMBINED_PREFIX, EventRecorder, type EventRecorderOptions } from "./events.js";
import { FakeApiServer, type KubeObject } from "./testing/fake-api-server.js";

let fake: FakeApiServer | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

const pod = { kind: "Pod", namespace: "shop", name: "web-1", uid: "7a5e0f7e-0000-4000-8000-000000000001" };

async function setup(options: Partial<EventRecorderOptions> = {}) {
  fake = await FakeApiServer.start({ token: "t" });
  let t = Date.parse("2030-01-01T00:00:00Z");
  const recorder = new EventRecorder({
    kubeConfig: fake.kubeConfig(),
    logger: createLogger({ name: "events-test", level: "silent" }),
    instance: "ovn-applier-0",
    now: () => new Date((t += 1_000)),
    ...options,
  });
  return { fake, recorder };
}

type Ev = KubeObject & {
  count: number;
  message: string;
  reason: string;
  type: string;
  lastTimestamp: string;
  firstTimestamp: string;
};

describe("EventRecorder", () => {
  it("creates an Event on the pod, and patches count and lastTimestamp on a repeat", async () => {
    const { fake, recorder } = await setup();
    recorder.event(pod, "Normal", "MirrorAttached", "attached to ovntap mirror shop/web", "Attach");
    await recorder.flush();
    const [created] = fake.list("events", "shop") as Ev[];
    expect(created).toMatchObject({
      metadata: { namespace: "shop", name: expect.stringMatching(/^web-1\.[0-9a-f]+$/) as unknown },
      involvedObject: { kind: "Pod", namespace: "shop", name: "web-1", uid: pod.uid, apiVersion: "v1" },
      type: "Normal",
      reason: "MirrorAttached",
      action: "Attach",
      message: "attached to ovntap mirror shop/web",
      source: { component: "ovntap", host: "ovn-applier-0" },
      reportingComponent: "ovntap",
      reportingInstance: "ovn-applier-0",
      count: 1,
    });

    recorder.event(pod, "Normal", "MirrorAttached", "attached to ovntap mirror shop/web", "Attach");
    recorder.event(pod, "Normal", "MirrorAttached", "attached to ovntap mirror shop/web", "Attach");
    await recorder.flush();
    const events = fake.list("events", "shop") as Ev[];
    expect(events.length).toBe(1);
    expect(events[0]).toMatchObject({ count: 3, firstTimestamp: created!.firstTimestamp });
    expect(Date.parse(events[0]!.lastTimestamp)).toBeGreaterThan(Date.parse(created!.lastTimestamp));
    expect(recorder.stats).toMatchObject({ created: 1, patched: 2, failed: 0 });
    expect(apiCallKeys(fake.calls)).toEqual(["create core/events", "patch core/events"]);

    // Another message, or another type, is another Event.
    recorder.event(pod, "Warning", "MirrorFailed", "mirror shop/web failed: KEY_IN_USE");
    await recorder.flush();
    expect(fake.list("events", "shop").length).toBe(2);
  });

  it("writes an Event anew when the one it would patch has expired", async () => {
    const { fake, recorder } = await setup();
    recorder.event(pod, "Normal", "MirrorDetached", "detached");
    await recorder.flush();
    const first = fake.list("events", "shop")[0]!;
    fake.remove("events", "shop", first.metadata.name!); // --event-ttl passed
    recorder.event(pod, "Normal", "MirrorDetached", "detached");
    await recorder.flush();
    const again = fake.list("events", "shop") as Ev[];
    expect(again.length).toBe(1);
    expect(again[0]!.metadata.name).not.toBe(first.metadata.name);
    expect(again[0]!.count).toBe(2);
  });

  it("combines similar events beyond the limit, and drops a storm on one object", async () => {
    const { fake, recorder } = await setup({ similarLimit: 3, burst: 6 });
    for (let i = 0; i < 8; i++) recorder.event(pod, "Warning", "MirrorFailed", `failure ${i}`);
    await recorder.flush();
    const events = (fake.list("events", "shop") as Ev[]).sort((a, b) =>
      a.firstTimestamp.localeCompare(b.firstTimestamp),
    );
    // 3 distinct, then one combined event that counts the rest (up to the burst of 6) and
    // carries the latest message.
    expect(events.map((e) => e.message)).toEqual([
      "failure 0",
      "failure 1",
      "failure 2",
      `${COMBINED_PREFIX}failure 5`,
    ]);
    expect(events[3]!.count).toBe(3);
    expect(recorder.stats.dropped).toBe(2);
  });

  it("never throws: a refused write is counted and logged", async () => {
    const { fake, recorder } = await setup();
    fake.setRules([]);
    recorder.event(pod, "Normal", "MirrorAttached", "x");
    await recorder.flush();
    expect(recorder.stats.failed).toBe(1);
  });
});
