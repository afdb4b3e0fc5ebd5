import { describe, expect, it } from "vitest";
import {
  checkSubjectNamespace,
  ERROR_CODES,
  LABELS_MAX,
  MirrorReply,
  ListReply,
  Reply,
  requestNamespace,
  validateRequest,
  validateSpec,
} from "./index.js";

const baseSpec = {
  name: "web",
  namespace: "shop",
  sources: { type: "pods", names: ["web-0", "web-1"] },
  direction: "both",
  target: { type: "gre", sink: "10.0.0.9" },
} as const;

const ovsSpec = {
  name: "uplink",
  namespace: "net",
  sources: { type: "ovs", node: "node-1", bridge: "br-ex", ports: ["eth1"], vlans: [100] },
  direction: "both",
  target: { type: "ovsPort", node: "node-1", bridge: "br-ex", port: "mirror0" },
} as const;

const create = (spec: Record<string, unknown>) => ({
  requestId: "req-1",
  op: "create",
  spec: { ...baseSpec, ...spec },
});
const createOvs = (spec: Record<string, unknown>) => ({
  requestId: "req-1",
  op: "create",
  spec: { ...ovsSpec, ...spec },
});
const withSink = (sink: unknown) => create({ target: { type: "gre", sink } });

interface Case {
  name: string;
  body: unknown;
  path: string;
  subject?: string;
}

const cases: Case[] = [
  { name: "upper-case mirror name", body: create({ name: "Web" }), path: "spec.name" },
  { name: "mirror name of 64 characters", body: create({ name: "a".repeat(64) }), path: "spec.name" },
  { name: "mirror name with a dot", body: create({ name: "a.b" }), path: "spec.name" },
  { name: "empty namespace", body: create({ namespace: "" }), path: "spec.namespace" },
  { name: "namespace starting with '-'", body: create({ namespace: "-ns" }), path: "spec.namespace" },
  {
    name: "GRE key 2^32",
    body: create({ target: { type: "gre", sink: "10.0.0.9", key: 2 ** 32 } }),
    path: "spec.target.key",
  },
  {
    name: "GRE key -1",
    body: create({ target: { type: "gre", sink: "10.0.0.9", key: -1 } }),
    path: "spec.target.key",
  },
  {
    name: "GRE key 1.5",
    body: create({ target: { type: "gre", sink: "10.0.0.9", key: 1.5 } }),
    path: "spec.target.key",
  },
  {
    name: "GRE key as a string",
    body: create({ target: { type: "gre", sink: "10.0.0.9", key: "99" } }),
    path: "spec.target.key",
  },
  {
    name: "ERSPAN session 1024",
    body: create({ target: { type: "erspan", sink: "10.0.0.9", sessionId: 1024 } }),
    path: "spec.target.sessionId",
  },
  {
    name: "ERSPAN version 3",
    body: create({ target: { type: "erspan", sink: "10.0.0.9", version: 3 } }),
    path: "spec.target.version",
  },
  {
    name: "ERSPAN type III from OVN pods",
    body: create({ target: { type: "erspan", sink: "10.0.0.9", version: 2 } }),
    path: "spec.target.version",
  },
  {
    name: "output VLAN 4096",
    body: createOvs({ target: { type: "ovsVlan", node: "node-1", bridge: "br-ex", vlan: 4096 } }),
    path: "spec.target.vlan",
  },
  {
    name: "output VLAN 0",
    body: createOvs({ target: { type: "ovsVlan", node: "node-1", bridge: "br-ex", vlan: 0 } }),
    path: "spec.target.vlan",
  },
  {
    name: "source VLAN 4096",
    body: createOvs({ sources: { ...ovsSpec.sources, vlans: [4096] } }),
    path: "spec.sources.vlans[0]",
  },
  { name: "snaplen 13", body: create({ snaplen: 13 }), path: "spec.snaplen" },
  { name: "snaplen 65536", body: create({ snaplen: 65536 }), path: "spec.snaplen" },
  { name: "sink 127.0.0.1", body: withSink("127.0.0.1"), path: "spec.target.sink" },
  { name: "sink ::1", body: withSink("::1"), path: "spec.target.sink" },
  { name: "sink 224.0.0.1", body: withSink("224.0.0.1"), path: "spec.target.sink" },
  { name: "sink ff02::1", body: withSink("ff02::1"), path: "spec.target.sink" },
  { name: "sink 169.254.1.1", body: withSink("169.254.1.1"), path: "spec.target.sink" },
  { name: "sink fe80::1", body: withSink("fe80::1"), path: "spec.target.sink" },
  { name: "sink 0.0.0.0", body: withSink("0.0.0.0"), path: "spec.target.sink" },
  { name: "sink ::", body: withSink("::"), path: "spec.target.sink" },
  { name: "sink 255.255.255.255", body: withSink("255.255.255.255"), path: "spec.target.sink" },
  { name: "sink not-an-ip", body: withSink("not-an-ip"), path: "spec.target.sink" },
  { name: "sink ::ffff:127.0.0.1", body: withSink("::ffff:127.0.0.1"), path: "spec.target.sink" },
  { name: "sink given as a CIDR", body: withSink("10.0.0.0/24"), path: "spec.target.sink" },
  { name: "sink with a zone id", body: withSink("fe80::1%eth0"), path: "spec.target.sink" },
  {
    name: "sink pod without a name",
    body: withSink({ pod: { namespace: "sinks" } }),
    path: "spec.target.sink.pod.name",
  },
  { name: "ttl 0", body: create({ ttlSeconds: 0 }), path: "spec.ttlSeconds" },
  { name: "ttl over 7 days", body: create({ ttlSeconds: 7 * 86400 + 1 }), path: "spec.ttlSeconds" },
  {
    name: "label value of 64 characters",
    body: create({ labels: { app: "v".repeat(64) } }),
    path: "spec.labels.app",
  },
  {
    name: "label key name of 64 characters",
    body: create({ labels: { ["k".repeat(64)]: "v" } }),
    path: `spec.labels.${"k".repeat(64)}`,
  },
  {
    name: "label key with an upper-case prefix",
    body: create({ labels: { "Example.com/app": "v" } }),
    path: 'spec.labels["Example.com/app"]',
  },
  {
    name: "more than 64 labels",
    body: create({
      labels: Object.fromEntries(Array.from({ length: LABELS_MAX + 1 }, (_, i) => [`k${i}`, "v"])),
    }),
    path: "spec.labels",
  },
  { name: "unknown op", body: { requestId: "r", op: "nuke" }, path: "op" },
  { name: "missing op", body: { requestId: "r", namespace: "shop", name: "web" }, path: "op" },
  { name: "missing requestId", body: { op: "get", namespace: "shop", name: "web" }, path: "requestId" },
  {
    name: "requestId of 129 characters",
    body: { requestId: "r".repeat(129), op: "get", namespace: "shop", name: "web" },
    path: "requestId",
  },
  {
    name: "requestId with a space",
    body: { requestId: "a b", op: "get", namespace: "shop", name: "web" },
    path: "requestId",
  },
  {
    name: "empty principal",
    body: { requestId: "r", principal: "", op: "get", namespace: "shop", name: "web" },
    path: "principal",
  },
  {
    name: "principal with a control character",
    body: { requestId: "r", principal: "alice\u0007", op: "get", namespace: "shop", name: "web" },
    path: "principal",
  },
  {
    name: "subject namespace mismatch (create)",
    body: create({}),
    subject: "ovntap.v1.req.other",
    path: "spec.namespace",
  },
  {
    name: "subject namespace mismatch (delete)",
    body: { requestId: "r", op: "delete", namespace: "shop", name: "web" },
    subject: "ovntap.v1.req.other",
    path: "namespace",
  },
  { name: "not a request subject", body: create({}), subject: "ovntap.v1.events.shop.web", path: "" },
  { name: "unknown spec field (typo)", body: create({ ttlSecond: 60 }), path: "spec.ttlSecond" },
  {
    name: "unknown source type",
    body: create({ sources: { type: "deployment", name: "web" } }),
    path: "spec.sources.type",
  },
  {
    name: "unknown target type",
    body: create({ target: { type: "vxlan", sink: "10.0.0.9" } }),
    path: "spec.target.type",
  },
  {
    name: "no pod names",
    body: create({ sources: { type: "pods", names: [] } }),
    path: "spec.sources.names",
  },
  {
    name: "duplicate pod names",
    body: create({ sources: { type: "pods", names: ["a", "a"] } }),
    path: "spec.sources.names[1]",
  },
  {
    name: "invalid pod name",
    body: create({ sources: { type: "pods", names: ["Bad_Pod"] } }),
    path: "spec.sources.names[0]",
  },
  {
    name: "empty selector",
    body: create({ sources: { type: "selector" } }),
    path: "spec.sources.matchLabels",
  },
  {
    name: "In without values",
    body: create({
      sources: { type: "selector", matchExpressions: [{ key: "app", operator: "In", values: [] }] },
    }),
    path: "spec.sources.matchExpressions[0].values",
  },
  {
    name: "Exists with values",
    body: create({
      sources: { type: "selector", matchExpressions: [{ key: "app", operator: "Exists", values: ["x"] }] },
    }),
    path: "spec.sources.matchExpressions[0].values",
  },
  {
    name: "unknown selector operator",
    body: create({ sources: { type: "selector", matchExpressions: [{ key: "app", operator: "Like" }] } }),
    path: "spec.sources.matchExpressions[0].operator",
  },
  {
    name: "ovs source without ports or vlans",
    body: createOvs({ sources: { type: "ovs", node: "node-1", bridge: "br-ex" } }),
    path: "spec.sources.ports",
  },
  {
    name: "bridge name over IFNAMSIZ",
    body: createOvs({ sources: { ...ovsSpec.sources, bridge: "b".repeat(16) } }),
    path: "spec.sources.bridge",
  },
  {
    name: "ovsPort target with pod sources",
    body: create({ target: ovsSpec.target }),
    path: "spec.target.type",
  },
  {
    name: "ovsPort target on another node",
    body: createOvs({ target: { ...ovsSpec.target, node: "node-2" } }),
    path: "spec.target.node",
  },
  {
    name: "ovsPort target on another bridge",
    body: createOvs({ target: { ...ovsSpec.target, bridge: "br-int" } }),
    path: "spec.target.bridge",
  },
  {
    name: "ovsPort target that is also a source port",
    body: createOvs({ target: { ...ovsSpec.target, port: "eth1" } }),
    path: "spec.target.port",
  },
  {
    name: "ovsVlan target that is also a source VLAN",
    body: createOvs({ target: { type: "ovsVlan", node: "node-1", bridge: "br-ex", vlan: 100 } }),
    path: "spec.target.vlan",
  },
  {
    name: "VLAN-only ovs source with a direction",
    body: createOvs({
      sources: { type: "ovs", node: "node-1", bridge: "br-ex", vlans: [10] },
      direction: "ingress",
      target: { type: "collector" },
    }),
    path: "spec.direction",
  },
  { name: "unknown direction", body: create({ direction: "in" }), path: "spec.direction" },
  { name: "empty filter", body: create({ filter: {} }), path: "spec.filter" },
  {
    name: "unknown filter protocol",
    body: create({ filter: { protocols: ["http"] } }),
    path: "spec.filter.protocols[0]",
  },
  {
    name: "CIDR with host bits",
    body: create({ filter: { cidrs: ["10.0.0.1/24"] } }),
    path: "spec.filter.cidrs[0]",
  },
  {
    name: "CIDR prefix 33",
    body: create({ filter: { cidrs: ["10.0.0.0/33"] } }),
    path: "spec.filter.cidrs[0]",
  },
  { name: "filter port 65536", body: create({ filter: { ports: [65536] } }), path: "spec.filter.ports[0]" },
  {
    name: "port range backwards",
    body: create({ filter: { ports: [{ from: 90, to: 80 }] } }),
    path: "spec.filter.ports[0].to",
  },
  {
    name: "ports without a ported protocol",
    body: create({ filter: { protocols: ["icmp"], ports: [80] } }),
    path: "spec.filter.ports",
  },
  { name: "create without spec", body: { requestId: "r", op: "create" }, path: "spec" },
  { name: "get without namespace", body: { requestId: "r", op: "get", name: "web" }, path: "namespace" },
  {
    name: "delete with an invalid name",
    body: { requestId: "r", op: "delete", namespace: "shop", name: "Web!" },
    path: "name",
  },
  {
    name: "extend beyond 7 days",
    body: { requestId: "r", op: "extend", namespace: "shop", name: "web", ttlSeconds: 10 ** 9 },
    path: "ttlSeconds",
  },
  {
    name: "list with an invalid label value",
    body: { requestId: "r", op: "list", namespace: "shop", selector: { matchLabels: { app: "-x" } } },
    path: "selector.matchLabels.app",
  },
  { name: "body is not an object", body: "hello", path: "" },
  { name: "body is null", body: null, path: "" },
];

describe("validateRequest: hand-written invalid requests", () => {
  it("has at least 40 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases)("$name → INVALID_REQUEST at $path", ({ body, subject, path }) => {
    const r = validateRequest(body, subject === undefined ? {} : { subject });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe(ERROR_CODES.INVALID_REQUEST);
    expect(r.error.issues.map((i) => i.path)).toContain(path);
    for (const issue of r.error.issues) {
      expect(issue.message.length).toBeGreaterThan(0);
      // The summary carries each issue as "path: message" so a CLI can print it alone.
      if (r.error.issues.indexOf(issue) < 5) {
        expect(r.error.message).toContain(issue.path ? `${issue.path}: ${issue.message}` : issue.message);
      }
    }
  });
});

describe("validateRequest: messages name the limit", () => {
  const messageAt = (body: unknown, path: string) => {
    const r = validateRequest(body);
    if (r.ok) throw new Error("expected a failure");
    return r.error.issues.find((i) => i.path === path)?.message;
  };

  it.each([
    [
      create({ target: { type: "gre", sink: "10.0.0.9", key: 2 ** 32 } }),
      "spec.target.key",
      "must be ≤ 4294967295 (GRE key is 32 bits)",
    ],
    [
      create({ target: { type: "erspan", sink: "10.0.0.9", sessionId: 1024 } }),
      "spec.target.sessionId",
      "≤ 1023",
    ],
    [create({ snaplen: 13 }), "spec.snaplen", "≥ 14"],
    [create({ snaplen: 65536 }), "spec.snaplen", "≤ 65535"],
    [create({ ttlSeconds: 0 }), "spec.ttlSeconds", "≥ 60"],
    [create({ ttlSeconds: 604801 }), "spec.ttlSeconds", "≤ 604800"],
    [
      createOvs({ target: { type: "ovsVlan", node: "node-1", bridge: "br-ex", vlan: 4096 } }),
      "spec.target.vlan",
      "≤ 4095",
    ],
    [create({ name: "a".repeat(64) }), "spec.name", "at most 63 characters"],
    [create({ labels: { app: "v".repeat(64) } }), "spec.labels.app", "at most 63 characters"],
    [withSink("127.0.0.1"), "spec.target.sink", "loopback"],
    [withSink("255.255.255.255"), "spec.target.sink", "broadcast"],
    [{ op: "get", namespace: "shop", name: "web" }, "requestId", "is required"],
  ])("%#: %s", (body, path, expected) => {
    expect(messageAt(body, path)).toContain(expected);
  });

  it("formats the example from the contract exactly", () => {
    const r = validateRequest(create({ target: { type: "gre", sink: "10.0.0.9", key: 4294967296 } }));
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.error.message).toContain("spec.target.key: must be ≤ 4294967295 (GRE key is 32 bits)");
  });
});

describe("validateRequest: valid requests", () => {
  it("accepts every op", () => {
    for (const body of [
      create({}),
      { requestId: "01J9Z3A7X0Q2M4N5P6R7S8T9V0", op: "delete", namespace: "shop", name: "web" },
      {
        requestId: "6f1c1c0e-3c1e-4a56-9d1e-2f5b8f7a9b10",
        principal: "alice",
        op: "get",
        namespace: "shop",
        name: "web",
      },
      { requestId: "r:1", op: "list", namespace: "shop", selector: { matchLabels: { team: "a" } } },
      { requestId: "r.1", op: "extend", namespace: "shop", name: "web", ttlSeconds: 600 },
    ]) {
      const r = validateRequest(body, { subject: "ovntap.v1.req.shop" });
      expect(r, JSON.stringify(body)).toMatchObject({ ok: true });
    }
  });

  it("rewrites sinks and CIDRs to canonical form", () => {
    const r = validateRequest(
      create({ target: { type: "gre", sink: "2001:DB8:0:0::1" }, filter: { cidrs: ["2001:DB8::/32"] } }),
    );
    expect(r.ok).toBe(true);
    if (r.ok && r.value.op === "create") {
      expect(r.value.spec.target).toEqual({ type: "gre", sink: "2001:db8::1" });
      expect(r.value.spec.filter?.cidrs).toEqual(["2001:db8::/32"]);
    }
    const mapped = validateRequest(withSink("::ffff:10.1.2.3"));
    expect(mapped.ok && mapped.value.op === "create" && mapped.value.spec.target).toEqual({
      type: "gre",
      sink: "10.1.2.3",
    });
  });

  it("validateSpec checks a spec on its own", () => {
    expect(validateSpec(baseSpec).ok).toBe(true);
    const r = validateSpec({ ...baseSpec, snaplen: 1 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/^invalid mirror spec: snaplen: /);
  });
});

describe("subject namespace", () => {
  it("finds the namespace of each op", () => {
    const r = validateRequest(create({}));
    if (!r.ok) throw new Error("valid");
    expect(requestNamespace(r.value)).toEqual({ namespace: "shop", path: "spec.namespace" });
    expect(checkSubjectNamespace("ovntap.v1.req.shop", r.value)).toBeUndefined();
    expect(checkSubjectNamespace("ovntap.v1.req.other", r.value)?.issues[0]?.path).toBe("spec.namespace");
  });
});

describe("replies", () => {
  const record = {
    spec: baseSpec,
    generation: 1,
    owner: "alice",
    createdAt: "2025-01-31T12:00:00.000Z",
    expiresAt: "2025-01-31T13:00:00.000Z",
    requestId: "req-1",
  };
  const status = {
    phase: "Active",
    generation: 1,
    observedGeneration: 1,
    key: 7,
    sink: "10.0.0.9",
    ports: ["web-0.shop", "web-1.shop"],
    updatedAt: "2025-01-31T12:00:01.000Z",
  };

  it("parses success and error replies", () => {
    expect(MirrorReply.parse({ ok: true, mirror: record, status }).ok).toBe(true);
    expect(ListReply.parse({ ok: true, items: [{ mirror: record, status }] }).ok).toBe(true);
    const err = { ok: false, error: { code: "NOT_FOUND", message: "no mirror shop/web" } };
    expect(Reply.parse(err)).toEqual(err);
    expect(() => Reply.parse({ ok: false, error: { code: "NOPE", message: "x" } })).toThrow();
  });

  it("requires a reason and message for Failed", () => {
    expect(
      MirrorReply.safeParse({ ok: true, mirror: record, status: { ...status, phase: "Failed" } }).success,
    ).toBe(false);
    expect(
      MirrorReply.safeParse({
        ok: true,
        mirror: record,
        status: { ...status, phase: "Failed", reason: "SinkUnreachable", message: "no route to 10.0.0.9" },
      }).success,
    ).toBe(true);
  });
});
