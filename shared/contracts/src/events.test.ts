import { describe, expect, it } from "vitest";
import {
  AgentHeartbeat,
  AuditRecord,
  EVENT_DETAILS,
  EVENT_TYPES,
  LifecycleEvent,
  MIRROR_PHASES,
  MirrorRecord,
  MirrorStatus,
  UNNAMED_MIRROR,
} from "./index.js";
import type { LifecycleEventOf } from "./index.js";

const common = {
  eventId: "01J9Z3A7X0Q2M4N5P6R7S8T9V0",
  time: "2025-01-31T12:00:00.000Z",
  mirror: "web",
  namespace: "shop",
  generation: 1,
  principal: "alice",
  requestId: "req-1",
};

const spec = {
  name: "web",
  namespace: "shop",
  sources: { type: "pods", names: ["web-0"] },
  direction: "both",
  target: { type: "gre", sink: "10.0.0.9" },
};

/** One valid detail per event type. */
const details: { [T in (typeof EVENT_TYPES)[number]]: LifecycleEventOf<T>["detail"] } = {
  requested: { op: "create", spec: spec as never },
  accepted: { op: "create", expiresAt: "2025-01-31T13:00:00.000Z" },
  rejected: { op: "create", error: { code: "SINK_NOT_ALLOWED", message: "10.0.0.9 is not an allowed sink" } },
  applying: { reason: "create", attempt: 1 },
  applied: { rows: ["ovntap-shop-web"], key: 7, sink: "10.0.0.9", nbCfg: 12 },
  active: { ports: ["web-0.shop"], hvCfg: 12 },
  degraded: { reason: "PortMissing", message: "web-1 has no logical switch port yet", ports: ["web-1.shop"] },
  failed: { code: "MTU_TOO_SMALL", message: "path MTU 1500 < 1500 + 42", retryable: false },
  expired: { expiresAt: "2025-01-31T13:00:00.000Z" },
  deleted: { reason: "request" },
  drift_repaired: { repairs: [{ table: "Mirror", name: "ovntap-shop-web", action: "created" }] },
  port_attached: { port: "web-0.shop", pod: { namespace: "shop", name: "web-0" }, node: "n1" },
  port_detached: { port: "web-0.shop", reason: "pod_deleted" },
  extended: {
    ttlSeconds: 600,
    previousExpiresAt: "2025-01-31T13:00:00.000Z",
    expiresAt: "2025-01-31T13:10:00.000Z",
  },
  capture_drops: {
    node: "n1",
    drops: 12,
    since: "2025-01-31T12:00:00.000Z",
    until: "2025-01-31T12:00:10.000Z",
  },
  dataplane_error: {
    component: "ovs",
    code: "KEY_IN_USE",
    message: "could not add network device ovn-abc (File exists)",
    node: "n1",
    bridge: "br-int",
    row: "ovntap.shop.web",
  },
  dataplane_ok: {
    component: "ovs",
    node: "n1",
    bridge: "br-int",
    port: "ovn-ovntap.shop.web",
    row: "ovntap.shop.web",
    previous: "could not add network device ovn-ovntap.shop.web to ofproto (File exists)",
  },
};

describe("lifecycle events", () => {
  it("cover every type, each with its own detail schema", () => {
    expect(Object.keys(EVENT_DETAILS).sort()).toEqual([...EVENT_TYPES].sort());
    expect(LifecycleEvent.options.map((o) => o.shape.type.value).sort()).toEqual([...EVENT_TYPES].sort());
    expect(AuditRecord.options.map((o) => o.shape.type.value).sort()).toEqual([...EVENT_TYPES].sort());
  });

  it.each(EVENT_TYPES.map((t) => [t]))("%s parses and round-trips", (type) => {
    const event = { ...common, type, detail: details[type] };
    const parsed = LifecycleEvent.parse(event);
    expect(LifecycleEvent.parse(JSON.parse(JSON.stringify(parsed)))).toEqual(parsed);
    expect(AuditRecord.parse({ ...event, seq: 42 })).toMatchObject({ type, seq: 42 });
  });

  it("type the detail per type", () => {
    // A `failed` detail is not a valid `deleted` detail.
    expect(LifecycleEvent.safeParse({ ...common, type: "deleted", detail: details.failed }).success).toBe(
      false,
    );
    expect(LifecycleEvent.safeParse({ ...common, type: "exploded", detail: {} }).success).toBe(false);
  });

  it("allow the _unnamed mirror and generation 0 for early rejections", () => {
    const e = {
      ...common,
      mirror: UNNAMED_MIRROR,
      generation: 0,
      type: "rejected",
      detail: details.rejected,
    };
    expect(LifecycleEvent.safeParse(e).success).toBe(true);
    expect(LifecycleEvent.safeParse({ ...e, mirror: "Bad" }).success).toBe(false);
  });

  it("keep unknown fields out instead of failing (tolerant reader)", () => {
    const parsed = LifecycleEvent.parse({
      ...common,
      type: "deleted",
      detail: { reason: "expired" },
      future: 1,
    });
    expect(parsed).not.toHaveProperty("future");
  });
});

describe("status and record", () => {
  const status = {
    generation: 2,
    observedGeneration: 1,
    ports: [],
    updatedAt: "2025-01-31T12:00:00.000Z",
  };

  it("accept every phase", () => {
    for (const phase of MIRROR_PHASES) {
      const extra =
        phase === "Failed" || phase === "Degraded" ? { reason: "SinkUnreachable", message: "x" } : {};
      expect(MirrorStatus.safeParse({ ...status, ...extra, phase }).success, phase).toBe(true);
    }
    expect(MirrorStatus.safeParse({ ...status, phase: "Running" }).success).toBe(false);
  });

  it("bound allocated keys", () => {
    expect(MirrorStatus.safeParse({ ...status, phase: "Active", sessionId: 1024 }).success).toBe(false);
    expect(MirrorStatus.safeParse({ ...status, phase: "Active", key: 2 ** 32 }).success).toBe(false);
  });

  it("validate the stored spec", () => {
    const record = {
      spec,
      generation: 1,
      owner: "alice",
      createdAt: "2025-01-31T12:00:00.000Z",
      expiresAt: "2025-01-31T13:00:00.000Z",
      requestId: "req-1",
    };
    expect(MirrorRecord.safeParse(record).success).toBe(true);
    expect(MirrorRecord.safeParse({ ...record, generation: 0 }).success).toBe(false);
    expect(MirrorRecord.safeParse({ ...record, createdAt: "yesterday" }).success).toBe(false);
  });
});

describe("agent heartbeat", () => {
  it("parses capabilities", () => {
    const hb = {
      node: "n1",
      time: "2025-01-31T12:00:00.000Z",
      intervalSeconds: 10,
      startedAt: "2025-01-31T11:00:00.000Z",
      mirrors: 2,
      capabilities: {
        versions: { ovs: "3.1.0", ovn: "23.03.1", kernel: "6.8.0-45-generic", agent: "0.1.0" },
        datapathTypes: ["netdev", "system"],
        kernelLinks: { gretap: true, ip6gretap: true, erspan: true, ip6erspan: false },
        ovnMirror: { both: false, local: false },
        transport: { interface: "eth0", mtu: 1500, addresses: ["10.0.0.5", "2001:db8::5"] },
        bridges: [{ name: "br-int", datapathType: "system", mirrors: 3, mirrorLimit: 32 }],
      },
    };
    expect(AgentHeartbeat.parse(hb).capabilities.bridges[0]?.mirrors).toBe(3);
    const tooMany = structuredClone(hb);
    tooMany.capabilities.bridges[0]!.mirrors = 33;
    expect(AgentHeartbeat.safeParse(tooMany).success).toBe(false);
  });
});
