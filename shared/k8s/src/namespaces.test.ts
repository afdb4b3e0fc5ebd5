/** The namespace informer against the fake API server. */
import { createLogger } from "@ovntap/runtime";
import { afterEach, describe, expect, it } from "vitest";
import type { Informer } from "./informer.js";
import { type NamespaceInfo, namespaceInformer } from "./namespaces.js";
import { FakeApiServer } from "./testing/fake-api-server.js";
import { waitUntil } from "./testing/wait.js";

let fake: FakeApiServer | undefined;
let informer: Informer<NamespaceInfo> | undefined;
afterEach(async () => {
  await informer?.stop();
  await fake?.close();
});

describe("namespaceInformer", () => {
  it("lists and follows namespaces, their labels and their deletion", async () => {
    fake = await FakeApiServer.start();
    fake.put("namespaces", { metadata: { name: "shop", labels: { team: "web" } } });
    informer = namespaceInformer(fake.kubeConfig(), {
      logger: createLogger({ name: "ns-test", level: "silent" }),
    });
    informer.start();
    await informer.waitForSync(10_000);
    expect(informer.get(undefined, "shop")).toMatchObject({
      metadata: { labels: { team: "web" } },
      terminating: false,
    });
    await waitUntil(() => fake!.openWatches === 1, "the watch");
    fake.modify("namespaces", undefined, "shop", (n) => {
      n.metadata.deletionTimestamp = "2030-01-01T00:00:00Z";
      n.status = { phase: "Terminating" };
    });
    await waitUntil(() => informer!.get(undefined, "shop")?.terminating, "shop terminating");
    fake.remove("namespaces", undefined, "shop");
    await waitUntil(() => informer!.get(undefined, "shop") === undefined, "shop gone");
    expect(fake.calls.map((c) => `${c.verb} ${c.resource}`)).toEqual(["list namespaces", "watch namespaces"]);
  });
});
