import { describe, expect, it } from "vitest";
import {
  DATAPLANE_KV_BUCKET,
  DATAPLANE_REFRESH_MS,
  DATAPLANE_STALE_MS,
  DataplaneRecord,
  formatKeyClaim,
  MirrorSpec,
  nodeKeyClaimsKey,
  parseKeyClaim,
} from "./index.js";

const error = {
  namespace: "shop",
  mirror: "web",
  row: "ovntap.shop.web",
  bridge: "br-int",
  port: "ovn-ovntap.shop.web",
  state: "error",
  message: "could not add network device ovn-ovntap.shop.web to ofproto (File exists)",
  component: "ovs",
  since: "2025-01-31T12:00:00.000Z",
} as const;

describe("data-plane record", () => {
  it("parses what an agent writes to the bucket", () => {
    const rec = {
      node: "worker-1.example",
      chassis: "worker-1",
      time: "2025-01-31T12:00:01.000Z",
      mirrors: [
        error,
        { ...error, row: "ovntap.shop.db", mirror: "db", state: "pending", message: undefined },
      ],
    };
    expect(DataplaneRecord.parse(rec).mirrors.map((m) => m.state)).toEqual(["error", "pending"]);
    expect(DATAPLANE_KV_BUCKET).toBe("ovntap_dataplane");
    expect(DATAPLANE_STALE_MS).toBeGreaterThan(DATAPLANE_REFRESH_MS);
  });

  it.each([
    ["state", { state: "broken" }],
    ["since", { since: "yesterday" }],
    ["row", { row: "" }],
    ["mirror", { mirror: "Web" }],
    ["bridge", { bridge: "a-bridge-name-too-long" }],
  ])("refuses a bad %s", (field, patch) => {
    const r = DataplaneRecord.safeParse({
      node: "n1",
      chassis: "n1",
      time: "2025-01-31T12:00:01.000Z",
      mirrors: [{ ...error, ...patch }],
    });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(["mirrors", 0, field]);
  });
});

describe("node agents' key claims", () => {
  it("live in one hash per sink under the store prefix", () => {
    expect(nodeKeyClaimsKey("{ovntap}", "198.51.100.2")).toBe("{ovntap}:node-agent:keys:198.51.100.2");
  });

  it("round-trip node and mirror, and refuse anything else", () => {
    const claim = { node: "ip-10-0-0-1.ec2.internal", namespace: "shop", name: "web" };
    expect(formatKeyClaim(claim)).toBe("ip-10-0-0-1.ec2.internal shop/web");
    expect(parseKeyClaim(formatKeyClaim(claim))).toEqual(claim);
    for (const bad of ["", "node", "node shop", "node shop/", "node Shop/web", "a b shop/web"]) {
      expect(parseKeyClaim(bad), bad).toBeUndefined();
    }
  });
});

describe("receiving links in the spec", () => {
  const ovs = { type: "ovs", node: "n1", bridge: "br-int", ports: ["p1"] };
  const spec = (sources: unknown, target: unknown) =>
    MirrorSpec.safeParse({ name: "web", namespace: "shop", sources, direction: "egress", target });
  const issues = (r: ReturnType<typeof spec>) =>
    (r.error?.issues ?? []).map((i) => `${i.path.join(".")}: ${i.message}`);

  it("go with gre and erspan targets of ovs sources, in a named namespace or a pod", () => {
    const receiver = { netns: "cni-1234", link: "mirror1", dev: "net1" };
    expect(spec(ovs, { type: "gre", sink: "198.51.100.2", receiver }).success).toBe(true);
    expect(
      spec(ovs, {
        type: "erspan",
        sink: "198.51.100.2",
        receiver: { pod: { namespace: "rx", name: "rx-0" }, link: "mirror1" },
      }).success,
    ).toBe(true);
  });

  it("need one place, an interface name, an ovs source and an IP sink", () => {
    const gre = (receiver: unknown, sink: unknown = "198.51.100.2") => ({ type: "gre", sink, receiver });
    expect(issues(spec(ovs, gre({ link: "mirror1" })))).toEqual([
      "target.receiver.netns: must give either netns or pod (where the receiving link goes), not both or neither",
    ]);
    expect(issues(spec(ovs, gre({ netns: "a/b", link: "mirror1" })))[0]).toMatch(
      /^target\.receiver\.netns: must be a network namespace name/,
    );
    expect(issues(spec(ovs, gre({ netns: "rx", link: "a-very-long-link-name" })))).toEqual([
      "target.receiver.link: must be at most 15 characters (the receiving link's name; Linux IFNAMSIZ is 16 with the NUL)",
    ]);
    expect(issues(spec({ type: "pods", names: ["web-0"] }, gre({ netns: "rx", link: "m1" })))[0]).toMatch(
      /^target\.receiver: needs an ovs source/,
    );
    expect(
      issues(spec(ovs, gre({ netns: "rx", link: "m1" }, { pod: { namespace: "rx", name: "rx-0" } }))),
    ).toEqual([
      "target.receiver: needs the sink as an IP address: the receiving link's local address is the sink (a pod sink is resolved by the Kubernetes integration)",
    ]);
  });
});
