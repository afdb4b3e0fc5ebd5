import { MirrorSpec, MirrorStatus, type MirrorRecord } from "@ovntap/contracts";
import { describe, expect, it } from "vitest";
import type { ConvergeResult } from "./nb/reconciler.js";
import { buildStatus, eventIds, sameStatus } from "./status.js";

const record: MirrorRecord = {
  spec: MirrorSpec.parse({
    name: "web",
    namespace: "shop",
    sources: { type: "pods", names: ["pod-a"] },
    direction: "both",
    target: { type: "gre", sink: "198.51.100.2" },
  }),
  generation: 3,
  owner: "alice",
  createdAt: "2030-01-01T00:00:00.000Z",
  expiresAt: "2030-01-01T01:00:00.000Z",
  requestId: "r1",
};

function result(over: Partial<ConvergeResult> = {}): ConvergeResult {
  return {
    id: "shop/web",
    generation: 3,
    outcome: "applied",
    nbCfg: 10,
    rows: [
      {
        name: "ovntap.shop.web.out",
        uuid: "u1",
        part: "out",
        filter: "from-lport",
        type: "gre",
        sink: "198.51.100.2",
        index: 0,
      },
      {
        name: "ovntap.shop.web.in",
        uuid: "u2",
        part: "in",
        filter: "to-lport",
        type: "gre",
        sink: "198.51.100.2",
        index: 1,
      },
    ],
    key: 0,
    sessionId: undefined,
    sink: "198.51.100.2",
    tunnels: [
      { type: "gre", index: 0, direction: "egress" },
      { type: "gre", index: 1, direction: "ingress" },
    ],
    ports: ["pod-a.shop"],
    missingPorts: [],
    changes: [],
    drift: false,
    keysAllocated: 2,
    attempts: 1,
    appliedMs: 3,
    phase: "Active",
    hvCfg: 10,
    activeMs: 5,
    ...over,
  };
}

const T1 = new Date("2030-01-01T00:00:01.000Z");
const T2 = new Date("2030-01-01T00:00:02.000Z");

describe("buildStatus", () => {
  it("Active: valid contract status with keys, sink, ports and conditions", () => {
    const s = buildStatus({ phase: "Active", record, observedGeneration: 3, result: result(), now: T1 });
    expect(MirrorStatus.parse(s)).toEqual(s);
    expect(s).toMatchObject({
      phase: "Active",
      generation: 3,
      observedGeneration: 3,
      key: 0,
      sink: "198.51.100.2",
      tunnels: [
        { type: "gre", index: 0, direction: "egress" },
        { type: "gre", index: 1, direction: "ingress" },
      ],
      ports: ["pod-a.shop"],
      expiresAt: record.expiresAt,
    });
    expect(s.conditions?.find((c) => c.type === "KeyAllocated")?.message).toBe(
      "198.51.100.2 ovntap.shop.web.out=0, ovntap.shop.web.in=1",
    );
  });

  it("Degraded and Failed always carry a reason and a message", () => {
    const d = buildStatus({
      phase: "Degraded",
      record,
      observedGeneration: 3,
      result: result({
        phase: "Degraded",
        reason: "PortNotFound",
        message: "missing",
        missingPorts: ["x.shop"],
      }),
      now: T1,
    });
    expect(MirrorStatus.parse(d)).toMatchObject({ phase: "Degraded", reason: "PortNotFound" });
    expect(d.conditions?.map((c) => [c.type, c.status])).toEqual([
      ["KeyAllocated", "True"],
      ["PortsAttached", "False"],
    ]);
    const f = buildStatus({
      phase: "Failed",
      record,
      observedGeneration: 3,
      reason: "KeyInUse",
      message: "m",
      now: T1,
    });
    expect(MirrorStatus.parse(f)).toMatchObject({ phase: "Failed", reason: "KeyInUse", message: "m" });
  });

  it("keeps lastTransitionTime while a condition holds; sameStatus ignores the write time", () => {
    const a = buildStatus({ phase: "Active", record, observedGeneration: 3, result: result(), now: T1 });
    const b = buildStatus({
      phase: "Active",
      record,
      observedGeneration: 3,
      result: result(),
      previous: a,
      now: T2,
    });
    expect(b.conditions?.[0]?.lastTransitionTime).toBe(T1.toISOString());
    expect(b.updatedAt).toBe(T2.toISOString());
    expect(sameStatus(a, b)).toBe(true);
    const c = buildStatus({
      phase: "Degraded",
      record,
      observedGeneration: 3,
      result: result({ phase: "Degraded", reason: "ChassisNotSynced", message: "slow" }),
      previous: b,
      now: T2,
    });
    expect(c.conditions?.find((x) => x.type === "ChassisSynced")).toMatchObject({
      status: "False",
      lastTransitionTime: T2.toISOString(),
    });
    expect(sameStatus(b, c)).toBe(false);
  });
});

describe("eventIds", () => {
  it("are deterministic and valid request ids", () => {
    expect(eventIds.perGeneration("shop", "web", 3, "applied")).toBe("shop:web:3:applied");
    const prev = buildStatus({ phase: "Applying", record, observedGeneration: 2, now: T1 });
    expect(eventIds.transition("shop", "web", 3, "active", prev)).toBe(`shop:web:3:active:${T1.getTime()}`);
    expect(eventIds.perTransaction("shop", "web", 3, "drift_repaired", 42)).toBe(
      "shop:web:3:drift_repaired:42",
    );
  });
});
