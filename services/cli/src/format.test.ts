import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  eventSummary,
  formatDocument,
  formatErrorBody,
  formatEventLine,
  formatMirrorTable,
  formatUnknownEventLine,
  shortDuration,
  TABLE_COLUMNS,
} from "./format.js";
import { ALL_EVENT_TYPES, makeEvent, makeSpec, makeView, T0 } from "./testing/fixtures.js";

describe("shortDuration", () => {
  it.each([
    [0, "0s"],
    [45_000, "45s"],
    [119_000, "119s"],
    [150_000, "2m30s"],
    [600_000, "10m"],
    [3 * 3600_000 + 5 * 60_000, "3h5m"],
    [20 * 3600_000, "20h"],
    [3 * 86400_000, "3d"],
    [800 * 86400_000, "2y"],
    [-5, "0s"],
  ])("%d ms is %s", (ms, text) => {
    expect(shortDuration(ms)).toBe(text);
  });
});

describe("mirror table", () => {
  const now = T0 + 60_000;
  const active = makeView(
    makeSpec({ labels: { team: "sre" } }),
    { phase: "Active", key: 7, sink: "10.0.0.9", ports: ["web-0.shop", "web-1.shop", "web-2.shop"] },
    T0,
  );
  const pending = makeView(
    makeSpec({
      name: "db",
      direction: "ingress",
      target: { type: "erspan", sink: { pod: { namespace: "sinks", name: "rx" } }, sessionId: 5 },
      ttlSeconds: 600,
    }),
    {},
    T0 - 3 * 3600_000,
  );

  it("has the columns in order and one row per mirror, aligned", () => {
    const text = formatMirrorTable([active, pending], now);
    const lines = text.trimEnd().split("\n");
    expect(lines[0]?.split(/\s+/)).toEqual([...TABLE_COLUMNS]);
    expect(lines[1]?.split(/ {3,}/)).toEqual([
      "web",
      "shop",
      "Active",
      "10.0.0.9",
      "7",
      "both",
      "web-0.shop,web-1.shop +1",
      "in 59m",
      "60s",
    ]);
    expect(lines[2]?.split(/ {3,}/)).toEqual([
      "db",
      "shop",
      "Pending",
      "pod:sinks/rx",
      "5",
      "ingress",
      "-",
      "expired",
      "3h1m",
    ]);
    // Every column starts at the same offset on every line.
    const starts = (l: string) => [...l.matchAll(/(?:^| {3})(\S)/g)].map((m) => m.index + (m[0].length - 1));
    expect(starts(lines[1] ?? "")).toEqual(starts(lines[0] ?? ""));
  });

  it("shows Deleting once a deletion is requested, and collector targets", () => {
    const v = makeView(makeSpec({ target: { type: "collector" } }));
    const deleting = { ...v, mirror: { ...v.mirror, deletionRequestedAt: new Date(T0).toISOString() } };
    const line = formatMirrorTable([deleting], T0).split("\n")[1] ?? "";
    expect(line.split(/ {3,}/).slice(2, 5)).toEqual(["Deleting", "collector", "-"]);
  });

  it("prints json and yaml documents that read back as the view", () => {
    expect(JSON.parse(formatDocument(active, "json"))).toEqual(active);
    expect(parseYaml(formatDocument(active, "yaml"))).toEqual(active);
    expect(parseYaml(formatDocument([active, pending], "yaml"))).toEqual([active, pending]);
  });
});

describe("error bodies", () => {
  it("prints the code, message and each issue's path", () => {
    expect(
      formatErrorBody({
        code: "INVALID_REQUEST",
        message: "invalid request: 2 problems",
        issues: [
          { path: "spec.target.key", message: "must be ≤ 4294967295 (GRE key is 32 bits)" },
          { path: "", message: "is not an object" },
        ],
      }),
    ).toBe(
      "INVALID_REQUEST: invalid request: 2 problems\n" +
        "  spec.target.key: must be ≤ 4294967295 (GRE key is 32 bits)\n" +
        "  (request): is not an object\n",
    );
  });
});

describe("event lines", () => {
  it.each(ALL_EVENT_TYPES)("%s: time, mirror, type, generation, principal, detail on one line", (type) => {
    const e = makeEvent(type);
    const line = formatEventLine(e);
    expect(line.endsWith("\n")).toBe(true);
    expect(line.trimEnd()).not.toContain("\n");
    expect(line.startsWith("2025-01-31T12:00:00.000Z  shop/web  ")).toBe(true);
    expect(line).toContain(` ${type} `);
    expect(line).toContain("  gen=1  alice  ");
    expect(eventSummary(e)).not.toBe("");
    expect(line.trimEnd().endsWith(eventSummary(e))).toBe(true);
  });

  it("summarises the details that matter", () => {
    expect(eventSummary(makeEvent("failed"))).toBe("KEY_IN_USE: key 7 is used towards 10.0.0.9");
    expect(eventSummary(makeEvent("applied"))).toBe("rows=ovntap-shop-web key=7 sink=10.0.0.9 nb_cfg=12");
    expect(eventSummary(makeEvent("rejected"))).toBe("op=create ALREADY_EXISTS: mirror shop/web exists");
    expect(eventSummary(makeEvent("degraded"))).toBe(
      "PortMissing: web-1 has no logical switch port ports=web-0.shop",
    );
    expect(eventSummary(makeEvent("port_detached"))).toBe("port=web-1.shop reason=pod_deleted");
    expect(eventSummary(makeEvent("dataplane_error"))).toBe(
      "ovs: could not add network device ovn-abc (File exists) (node=node-1 bridge=br-int)",
    );
    expect(eventSummary(makeEvent("dataplane_ok"))).toBe(
      "ovs: programmed again (node=node-1 bridge=br-int); was: could not add network device ovn-abc (File exists)",
    );
  });

  it("aligns the detail column across types", () => {
    const col = (t: (typeof ALL_EVENT_TYPES)[number]) => formatEventLine(makeEvent(t)).indexOf("gen=");
    expect(new Set(ALL_EVENT_TYPES.map(col)).size).toBe(1);
  });

  it("prints an event it does not know instead of dropping it", () => {
    const line = formatUnknownEventLine(
      {
        time: "2030-01-01T00:00:00.000Z",
        namespace: "shop",
        mirror: "web",
        type: "teleported",
        generation: 3,
        principal: "bob",
        detail: { to: "mars" },
      },
      "ovntap.v1.events.shop.web",
    );
    expect(line).toBe('2030-01-01T00:00:00.000Z  shop/web  teleported       gen=3  bob  {"to":"mars"}\n');
    expect(formatUnknownEventLine("garbage", "ovntap.v1.events.shop.web")).toContain(
      "ovntap.v1.events.shop.web",
    );
  });
});
