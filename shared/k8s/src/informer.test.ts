/**
 * The informer against the fake API server: list then watch, bookmarks, a watch cut mid-stream
 * and a 410 Gone (in the stream and on reconnect) with changes made while nobody watched — each
 * must arrive, exactly as add / update / delete — and backoff while the API refuses the watch.
 */
import { createLogger } from "@ovntap/runtime";
import { captureLogs, type LogCapture } from "@ovntap/runtime/internal";
import { afterEach, describe, expect, it } from "vitest";
import type { Informer } from "./informer.js";
import { type PodInfo, podInformer } from "./pods.js";
import { FakeApiServer } from "./testing/fake-api-server.js";
import { podObject } from "./testing/objects.js";
import { waitUntil } from "./testing/wait.js";

let fake: FakeApiServer | undefined;
let informer: Informer<PodInfo> | undefined;
afterEach(async () => {
  await informer?.stop();
  await fake?.close();
  informer = undefined;
  fake = undefined;
});

type Seen = [string, string, string?];

async function setup(logs: LogCapture = captureLogs()) {
  fake = await FakeApiServer.start({ token: "t" });
  const logger = createLogger({ name: "informer-test", level: "debug", destination: logs.stream });
  informer = podInformer(fake.kubeConfig(), {
    logger,
    backoff: { baseMs: 50, maxMs: 400 },
    watchTimeoutSeconds: 30,
  });
  const seen: Seen[] = [];
  informer.on("add", (p) => seen.push(["add", p.metadata.name]));
  informer.on("update", (p, old) =>
    seen.push(["update", p.metadata.name, `${old.metadata.labels.v ?? ""}→${p.metadata.labels.v ?? ""}`]),
  );
  informer.on("delete", (p) => seen.push(["delete", p.metadata.name]));
  return { fake, informer, seen, logs };
}

const label = (v: string) => ({ app: "web", v });

describe("Informer", () => {
  it("lists, then watches from the list's resourceVersion; bookmarks move the version on", async () => {
    const { fake, informer, seen } = await setup();
    fake.put("pods", podObject({ name: "a", namespace: "ns", labels: label("1") }));
    informer.start();
    await informer.waitForSync(10_000);
    expect(seen).toEqual([["add", "a"]]);
    await waitUntil(() => fake.openWatches === 1, "the watch");
    fake.put("pods", podObject({ name: "b", namespace: "ns", labels: label("1") }));
    fake.modify("pods", "ns", "a", (p) => (p.metadata.labels = label("2")));
    fake.remove("pods", "ns", "b");
    await waitUntil(() => seen.length === 4, "three more events");
    expect(seen).toEqual([
      ["add", "a"],
      ["add", "b"],
      ["update", "a", "1→2"],
      ["delete", "b"],
    ]);
    expect(informer.get("ns", "a")?.metadata.labels.v).toBe("2");

    // Changes elsewhere move the server's version; a bookmark tells the informer without an event.
    fake.put("ips.kubeovn.io", { metadata: { name: "x" }, spec: {} });
    expect(informer.resourceVersion).not.toBe(fake.resourceVersion);
    fake.sendBookmarks();
    await waitUntil(() => informer.resourceVersion === fake.resourceVersion, "the bookmark's version");
    expect(informer.stats.bookmarks).toBe(1);
    const watches = fake.calls.filter((c) => c.verb === "watch");
    expect(watches.length).toBe(1);
  });

  it("a watch cut mid-stream resumes from the last version: a change made meanwhile arrives", async () => {
    const { fake, informer, seen } = await setup();
    fake.put("pods", podObject({ name: "a", namespace: "ns", labels: label("1") }));
    informer.start();
    await informer.waitForSync(10_000);
    await waitUntil(() => fake.openWatches === 1, "the watch");
    expect(fake.cutWatches({ partialLine: true })).toBe(1);
    // While the watch is down:
    fake.modify("pods", "ns", "a", (p) => (p.metadata.labels = label("2")));
    fake.put("pods", podObject({ name: "c", namespace: "ns", labels: label("1") }));
    await waitUntil(() => seen.length === 3, "the changes made while the watch was down");
    expect(seen).toEqual([
      ["add", "a"],
      ["update", "a", "1→2"],
      ["add", "c"],
    ]);
    // Resumed by a watch, not a new list.
    expect(fake.calls.filter((c) => c.verb === "watch").length).toBe(2);
    expect(fake.calls.filter((c) => c.verb === "list").length).toBe(1);
    expect(informer.stats.relists).toBe(0);
  });

  it("410 Gone on reconnect: lists again and delivers what changed while nobody watched", async () => {
    const { fake, informer, seen } = await setup();
    for (const n of ["a", "b", "c"])
      fake.put("pods", podObject({ name: n, namespace: "ns", labels: label("1") }));
    informer.start();
    await informer.waitForSync(10_000);
    await waitUntil(() => fake.openWatches === 1, "the watch");
    fake.cutWatches();
    fake.modify("pods", "ns", "a", (p) => (p.metadata.labels = label("2")));
    fake.remove("pods", "ns", "b");
    fake.put("pods", podObject({ name: "d", namespace: "ns", labels: label("1") }));
    fake.compactHistory(); // the informer's version is gone from the history now
    await waitUntil(() => seen.length === 6, "the relist's differences");
    expect(seen.slice(3)).toEqual(
      expect.arrayContaining([
        ["update", "a", "1→2"],
        ["delete", "b"],
        ["add", "d"],
      ]),
    );
    expect(informer.stats.relists).toBe(1);
    expect(fake.calls.filter((c) => c.verb === "list").length).toBe(2);
    // And it watches on from the new list.
    await waitUntil(() => fake.openWatches === 1, "the watch after the relist");
    fake.remove("pods", "ns", "c");
    await waitUntil(() => seen.length === 7, "delete c");
    expect(seen[6]).toEqual(["delete", "c"]);
    expect(
      informer
        .list()
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(["a", "d"]);
  });

  it("410 Gone inside an open watch (an ERROR event): lists again", async () => {
    const { fake, informer, seen } = await setup();
    fake.put("pods", podObject({ name: "a", namespace: "ns", labels: label("1") }));
    informer.start();
    await informer.waitForSync(10_000);
    await waitUntil(() => fake.openWatches === 1, "the watch");
    fake.compactHistory({ expireWatches: true });
    fake.modify("pods", "ns", "a", (p) => (p.metadata.labels = label("2")));
    await waitUntil(() => seen.length === 2, "the update");
    expect(seen[1]).toEqual(["update", "a", "1→2"]);
    expect(informer.stats.relists).toBe(1);
  });

  it("backs off while the API refuses the watch, then recovers without missing a change", async () => {
    const logs = captureLogs();
    const { fake, informer, seen } = await setup(logs);
    fake.setRules([{ apiGroups: [""], resources: ["pods"], verbs: ["list"] }]);
    fake.put("pods", podObject({ name: "a", namespace: "ns", labels: label("1") }));
    informer.start();
    await informer.waitForSync(10_000);
    const failures = await waitUntil(() => {
      const r = logs.messages("watch failed, resuming");
      return r.length >= 4 ? r : undefined;
    }, "four refused watches");
    // Equal jitter: attempt n waits between half and all of min(400, 50 · 2^(n−1)) ms.
    for (const r of failures.slice(0, 4)) {
      const capped = Math.min(400, 50 * 2 ** ((r.attempt as number) - 1));
      expect(r.backoffMs).toBeGreaterThanOrEqual(capped / 2);
      expect(r.backoffMs).toBeLessThanOrEqual(capped);
    }
    expect(failures.slice(0, 4).map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
    fake.modify("pods", "ns", "a", (p) => (p.metadata.labels = label("2")));
    fake.setRules(undefined);
    await waitUntil(() => seen.length === 2, "the update once the watch is allowed");
    expect(seen[1]).toEqual(["update", "a", "1→2"]);
  });

  it("a list that fails is retried with backoff until it succeeds", async () => {
    const logs = captureLogs();
    const { fake, informer } = await setup(logs);
    fake.setRules([{ apiGroups: [""], resources: ["pods"], verbs: ["watch"] }]);
    informer.start();
    await logs.waitFor((r) => r.msg === "list failed, retrying" && r.attempt === 2, 10_000);
    expect(informer.synced).toBe(false);
    fake.setRules(undefined);
    await informer.waitForSync(10_000);
    expect(informer.synced).toBe(true);
  });
});
