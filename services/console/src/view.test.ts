import { AuditRecord, MirrorRecord, MirrorStatus } from "@ovntap/contracts";
import type { StoredMirror } from "@ovntap/store";
import { describe, expect, it } from "vitest";
import { eventView, mirrorView } from "./view.js";

const record = MirrorRecord.parse({
  spec: {
    name: "tap",
    namespace: "default",
    sources: { type: "pods", names: ["pod-a", "pod-b"] },
    direction: "both",
    target: { type: "collector" },
  },
  generation: 2,
  owner: 'alice <img src=x onerror="x()">',
  createdAt: "2025-01-31T12:00:00.000Z",
  expiresAt: "2025-01-31T13:00:00.000Z",
  requestId: "r-1",
});

function stored(status: Record<string, unknown>, deleting = false): StoredMirror {
  return {
    record,
    status: MirrorStatus.parse({
      generation: 2,
      observedGeneration: 2,
      ports: [],
      updatedAt: "2025-01-31T12:00:01.000Z",
      ...status,
    }),
    deleting,
  };
}

describe("mirrorView", () => {
  it("shows the owner, sink, keys and expiry of an active mirror, text as it is", () => {
    const v = mirrorView(
      stored({
        phase: "Active",
        sink: "198.51.100.2",
        tunnels: [
          { type: "gre", index: 7, direction: "egress" },
          { type: "gre", index: 8, direction: "ingress" },
        ],
        key: 7,
        ports: ["pod-a.default", "pod-b.default"],
        expiresAt: "2025-01-31T13:00:00.000Z",
      }),
    );
    expect(v).toMatchObject({
      id: "default/tap",
      phase: "Active",
      owner: 'alice <img src=x onerror="x()">',
      sink: "198.51.100.2",
      target: "collector",
      key: "gre 7, gre 8",
      direction: "both",
      sources: "pods pod-a, pod-b",
      expiresAt: "2025-01-31T13:00:00.000Z",
      deleting: false,
    });
  });

  it("shows what the spec names before the applier resolved it, and why a mirror failed", () => {
    const v = mirrorView(stored({ phase: "Failed", reason: "SinkUnreachable", message: "no route" }, true));
    expect(v).toMatchObject({
      sink: "collector",
      key: "",
      reason: "SinkUnreachable",
      message: "no route",
      deleting: true,
    });
    expect(v.expiresAt).toBe(record.expiresAt);
  });
});

describe("eventView", () => {
  const base = {
    eventId: "e-1",
    time: "2025-01-31T12:00:02.000Z",
    namespace: "default",
    mirror: "tap",
    generation: 2,
    principal: "system:ovntap:ovn-applier",
    requestId: "r-1",
  };

  it("sums up each detail in one line", () => {
    const cases: [Record<string, unknown>, string][] = [
      [
        { type: "accepted", detail: { op: "create", expiresAt: "2025-01-31T13:00:00.000Z" } },
        "create, expires 2025-01-31T13:00:00.000Z",
      ],
      [
        { type: "applied", detail: { rows: ["ovntap.default.tap"], key: 7, sink: "198.51.100.2" } },
        "rows ovntap.default.tap, key 7, sink 198.51.100.2",
      ],
      [{ type: "active", detail: { ports: ["pod-a.default"] } }, "ports pod-a.default"],
      [
        {
          type: "failed",
          detail: { code: "PORT_NOT_FOUND", message: "no port pod-c.default", retryable: true },
        },
        "PORT_NOT_FOUND: no port pod-c.default (retrying)",
      ],
      [{ type: "deleted", detail: { reason: "expired" } }, "expired"],
      [
        { type: "capture_drops", detail: { node: "n1", drops: 3, since: base.time, until: base.time } },
        "3 dropped on n1",
      ],
    ];
    for (const [e, summary] of cases) {
      const r = AuditRecord.safeParse({ ...base, ...e });
      if (!r.success) throw new Error(`${String(e.type)}: ${r.error.message}`);
      expect(eventView(r.data, 12)).toEqual({
        seq: 12,
        time: base.time,
        mirror: "default/tap",
        type: e.type,
        principal: base.principal,
        generation: 2,
        summary,
      });
    }
  });
});
