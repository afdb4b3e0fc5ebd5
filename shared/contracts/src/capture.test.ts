import { describe, expect, it } from "vitest";
import {
  CAPTURE_HEADERS,
  ContractValidationError,
  FlowSummary,
  formatCaptureHeaders,
  MirrorStats,
  parseCaptureHeaders,
} from "./index.js";
import type { CaptureBatchHeader } from "./index.js";

const header: CaptureBatchHeader = {
  namespace: "shop",
  mirror: "web",
  node: "ip-10-0-0-1.ec2.internal",
  linkType: 1,
  snaplen: 65535,
  count: 3,
  firstNs: "1738324800000000000",
  lastNs: "1738324800000000999",
  drops: 0,
  sequence: 41,
  encap: "gre",
  key: 99,
};

describe("capture batch headers", () => {
  it("format to strings and parse back", () => {
    const wire = formatCaptureHeaders(header);
    expect(wire).toEqual({
      "Ovntap-Namespace": "shop",
      "Ovntap-Mirror": "web",
      "Ovntap-Node": "ip-10-0-0-1.ec2.internal",
      "Ovntap-Link-Type": "1",
      "Ovntap-Snaplen": "65535",
      "Ovntap-Count": "3",
      "Ovntap-First-Ns": "1738324800000000000",
      "Ovntap-Last-Ns": "1738324800000000999",
      "Ovntap-Drops": "0",
      "Ovntap-Sequence": "41",
      "Ovntap-Encap": "gre",
      "Ovntap-Key": "99",
    });
    expect(parseCaptureHeaders(wire)).toEqual({ ok: true, value: header });
  });

  it("read from a nats.js-like MsgHdrs (get returns '' when absent) and case-insensitive records", () => {
    const wire = formatCaptureHeaders({ ...header, namespace: undefined, mirror: undefined });
    const hdrs = { get: (k: string) => wire[k] ?? "" };
    const r = parseCaptureHeaders(hdrs);
    expect(r.ok && r.value.namespace).toBeUndefined();
    const lower = Object.fromEntries(
      Object.entries(formatCaptureHeaders(header)).map(([k, v]) => [k.toLowerCase(), [v]]),
    );
    expect(parseCaptureHeaders(lower)).toEqual({ ok: true, value: header });
  });

  it.each([
    [CAPTURE_HEADERS.count, "0", "count"],
    [CAPTURE_HEADERS.count, "3x", "count"],
    [CAPTURE_HEADERS.count, "-1", "count"],
    [CAPTURE_HEADERS.linkType, "70000", "linkType"],
    [CAPTURE_HEADERS.snaplen, "13", "snaplen"],
    [CAPTURE_HEADERS.firstNs, "01", "firstNs"],
    [CAPTURE_HEADERS.lastNs, "1", "lastNs"],
    [CAPTURE_HEADERS.lastNs, "99999999999999999999999", "lastNs"],
    [CAPTURE_HEADERS.encap, "vxlan", "encap"],
    [CAPTURE_HEADERS.key, "4294967296", "key"],
    [CAPTURE_HEADERS.node, "Node_1", "node"],
    [CAPTURE_HEADERS.mirror, "", "mirror"],
  ])("%s: %j is refused at %s", (name, value, path) => {
    const wire = { ...formatCaptureHeaders(header), [name]: value };
    const r = parseCaptureHeaders(wire);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.issues.map((i) => i.path)).toContain(path);
  });

  it("requires ERSPAN keys to be session ids", () => {
    const r = parseCaptureHeaders({
      ...formatCaptureHeaders(header),
      [CAPTURE_HEADERS.encap]: "erspan2",
      [CAPTURE_HEADERS.key]: "1024",
    });
    expect(r.ok).toBe(false);
  });

  it("refuses to format an invalid header", () => {
    expect(() => formatCaptureHeaders({ ...header, count: 0 })).toThrow(ContractValidationError);
  });
});

describe("flows and stats", () => {
  it("parse a flow summary with canonical addresses", () => {
    const f = FlowSummary.parse({
      namespace: "shop",
      mirror: "web",
      node: "n1",
      time: "2025-01-31T12:00:00.000Z",
      intervalSeconds: 10,
      flows: [
        {
          protocol: 6,
          src: "2001:DB8::1",
          dst: "10.0.0.2",
          srcPort: 43512,
          dstPort: 443,
          packets: 10,
          bytes: 5230,
          firstNs: "1738324800000000000",
          lastNs: "1738324801000000000",
        },
      ],
    });
    expect(f.flows[0]?.src).toBe("2001:db8::1");
    expect(FlowSummary.safeParse({ ...f, flows: [{ ...f.flows[0], protocol: 256 }] }).success).toBe(false);
  });

  it("discriminate stats by kind", () => {
    const base = { namespace: "shop", mirror: "web", node: "n1", time: "2025-01-31T12:00:00.000Z" };
    expect(
      MirrorStats.parse({ ...base, kind: "ovs", bridge: "br-int", row: "m1", txPackets: 1, txBytes: 60 })
        .kind,
    ).toBe("ovs");
    expect(
      MirrorStats.safeParse({
        ...base,
        kind: "exporter",
        packets: 1,
        bytes: 1,
        drops: 0,
        decapErrors: 0,
        filtered: 0,
      }).success,
    ).toBe(true);
    expect(MirrorStats.safeParse({ ...base, kind: "kernel" }).success).toBe(false);
  });
});
