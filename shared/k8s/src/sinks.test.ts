/**
 * Sink pods through ips.kubeovn.io against the fake API server: the primary network and an
 * attachment network's provider, dual stack, and re-resolution when the address changes or goes.
 */
import { createLogger } from "@ovntap/runtime";
import { afterEach, describe, expect, it } from "vitest";
import {
  ipObjectName,
  kubeOvnIp,
  kubeOvnIpInformer,
  type ResolvedSink,
  sinkAddressOf,
  SinkResolver,
} from "./sinks.js";
import { FakeApiServer } from "./testing/fake-api-server.js";
import { kubeOvnIpObject } from "./testing/objects.js";
import { waitUntil } from "./testing/wait.js";

let fake: FakeApiServer | undefined;
let sinks: SinkResolver | undefined;
afterEach(async () => {
  await sinks?.informer.stop();
  await fake?.close();
  sinks = undefined;
  fake = undefined;
});

describe("ipObjectName", () => {
  it("follows Kube-OVN's PodNameToPortName", () => {
    expect(ipObjectName({ namespace: "tap", name: "sink" })).toBe("sink.tap");
    expect(ipObjectName({ namespace: "tap", name: "sink", provider: "ovn" })).toBe("sink.tap");
    expect(ipObjectName({ namespace: "tap", name: "sink", provider: "attachnet.default.ovn" })).toBe(
      "sink.tap.attachnet.default.ovn",
    );
  });

  it("prefers IPv4 on dual stack and reads canonical text", () => {
    const dual = kubeOvnIp(kubeOvnIpObject({ pod: "s", namespace: "n", ip: "198.51.100.7,2001:db8::0007" }));
    expect(sinkAddressOf(dual)).toBe("198.51.100.7");
    const v6 = kubeOvnIp(kubeOvnIpObject({ pod: "s", namespace: "n", ip: "2001:DB8::7" }));
    expect(sinkAddressOf(v6)).toBe("2001:db8::7");
  });
});

describe("SinkResolver", () => {
  it("resolves a sink pod on the primary network and on an attachment network, and follows changes", async () => {
    fake = await FakeApiServer.start();
    const informer = kubeOvnIpInformer(fake.kubeConfig(), {
      logger: createLogger({ name: "sinks-test", level: "silent" }),
    });
    sinks = new SinkResolver(informer);
    fake.put("ips.kubeovn.io", kubeOvnIpObject({ pod: "sink", namespace: "tap", ip: "10.16.0.9" }));
    fake.put(
      "ips.kubeovn.io",
      kubeOvnIpObject({
        pod: "sink",
        namespace: "tap",
        provider: "attachnet.default.ovn",
        ip: "198.51.100.7",
        subnet: "attachnet",
      }),
    );
    informer.start();
    await informer.waitForSync(10_000);
    await waitUntil(() => fake!.openWatches === 1, "the watch");

    expect(sinks.resolve({ namespace: "tap", name: "sink" })).toMatchObject({
      address: "10.16.0.9",
      ipObject: "sink.tap",
    });
    const ref = { namespace: "tap", name: "sink", provider: "attachnet.default.ovn" };
    expect(sinks.resolve(ref)).toEqual({
      address: "198.51.100.7",
      ipObject: "sink.tap.attachnet.default.ovn",
      subnet: "attachnet",
      node: "node-1",
    });
    expect(sinks.resolve({ namespace: "tap", name: "nobody" })).toBeUndefined();

    const seen: (ResolvedSink | undefined)[] = [];
    sinks.subscribe(ref, (r) => seen.push(r));
    // The pod was recreated and got another address.
    fake.modify("ips.kubeovn.io", undefined, "sink.tap.attachnet.default.ovn", (o) => {
      (o.spec as { ipAddress: string; v4IpAddress: string }).ipAddress = "198.51.100.8";
      (o.spec as { ipAddress: string; v4IpAddress: string }).v4IpAddress = "198.51.100.8";
    });
    await waitUntil(() => seen.length === 1, "the new address");
    expect(seen[0]?.address).toBe("198.51.100.8");
    // A change that leaves the address alone is not one.
    fake.modify("ips.kubeovn.io", undefined, "sink.tap.attachnet.default.ovn", (o) => {
      (o.spec as { macAddress: string }).macAddress = "00:00:00:11:22:33";
    });
    fake.remove("ips.kubeovn.io", undefined, "sink.tap.attachnet.default.ovn");
    await waitUntil(() => seen.length === 2, "the address gone");
    expect(seen[1]).toBeUndefined();
    fake.put(
      "ips.kubeovn.io",
      kubeOvnIpObject({
        pod: "sink",
        namespace: "tap",
        provider: "attachnet.default.ovn",
        ip: "198.51.100.9",
      }),
    );
    await waitUntil(() => seen.length === 3, "the address back");
    expect(seen[2]?.address).toBe("198.51.100.9");
  });
});
