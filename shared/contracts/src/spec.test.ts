import { describe, expect, it } from "vitest";
import {
  ENCAP_OVERHEAD,
  encapOverhead,
  ERSPAN_SESSION_MAX,
  GRE_KEY_MAX,
  MAX_MIRRORS_PER_BRIDGE,
  MirrorSpec,
  SNAPLEN_MAX,
  SNAPLEN_MIN,
  TARGETS_FOR_SOURCE,
  targetEncapsulation,
  TTL_MAX_SECONDS,
  TTL_MIN_SECONDS,
  VLAN_MAX,
} from "./index.js";
import type { MirrorTarget, SourceType, TargetType } from "./index.js";

describe("limits", () => {
  it("match the contract", () => {
    expect(GRE_KEY_MAX).toBe(2 ** 32 - 1);
    expect(ERSPAN_SESSION_MAX).toBe(1023);
    expect(VLAN_MAX).toBe(4095);
    expect(SNAPLEN_MIN).toBe(14);
    expect(SNAPLEN_MAX).toBe(65535);
    expect(MAX_MIRRORS_PER_BRIDGE).toBe(32);
    expect(TTL_MIN_SECONDS).toBe(60);
    expect(TTL_MAX_SECONDS).toBe(604800);
    expect(ENCAP_OVERHEAD).toEqual({
      gre: { ipv4: 42, ipv6: 62 },
      erspan2: { ipv4: 50, ipv6: 70 },
      erspan3: { ipv4: 54, ipv6: 74 },
    });
  });

  it("derive encapsulation overhead from the target", () => {
    const sink = "10.0.0.9";
    expect(encapOverhead({ type: "gre", sink }, 4)).toBe(42);
    expect(encapOverhead({ type: "collector" }, 6)).toBe(62);
    expect(encapOverhead({ type: "erspan", sink }, 4)).toBe(50);
    expect(encapOverhead({ type: "erspan", sink, version: 2 }, 6)).toBe(74);
    expect(encapOverhead({ type: "ovsPort", node: "n", bridge: "br", port: "p" }, 4)).toBe(0);
    expect(targetEncapsulation({ type: "ovsVlan", node: "n", bridge: "br", vlan: 5 })).toBeUndefined();
  });
});

describe("source/target combinations", () => {
  const sources: Record<SourceType, unknown> = {
    pods: { type: "pods", names: ["web-0"] },
    selector: { type: "selector", matchExpressions: [{ key: "app", operator: "Exists" }] },
    ports: { type: "ports", names: ["web-0.shop"] },
    ovs: { type: "ovs", node: "n1", bridge: "br-ex", ports: ["eth1"] },
  };
  const targets: Record<TargetType, MirrorTarget> = {
    gre: { type: "gre", sink: "10.0.0.9", key: 99 },
    erspan: {
      type: "erspan",
      sink: { pod: { namespace: "sinks", name: "tap", provider: "attachnet.sinks.ovn" } },
    },
    collector: { type: "collector" },
    ovsPort: { type: "ovsPort", node: "n1", bridge: "br-ex", port: "mirror0" },
    ovsVlan: { type: "ovsVlan", node: "n1", bridge: "br-ex", vlan: 999 },
  };

  for (const source of Object.keys(sources) as SourceType[]) {
    for (const target of Object.keys(targets) as TargetType[]) {
      const allowed = (TARGETS_FOR_SOURCE[source] as readonly TargetType[]).includes(target);
      it(`${source} → ${target}: ${allowed ? "valid" : "refused"}`, () => {
        const r = MirrorSpec.safeParse({
          name: "m",
          namespace: "ns",
          sources: sources[source],
          direction: "egress",
          target: targets[target],
        });
        expect(r.success).toBe(allowed);
        if (!r.success) expect(r.error.issues.map((i) => i.path.join("."))).toEqual(["target.type"]);
      });
    }
  }

  it("allows ERSPAN type III only from ovs sources", () => {
    const base = {
      name: "m",
      namespace: "ns",
      direction: "both",
      target: { type: "erspan", sink: "10.0.0.9", version: 2 },
    };
    expect(MirrorSpec.safeParse({ ...base, sources: sources.ovs }).success).toBe(true);
    expect(MirrorSpec.safeParse({ ...base, sources: sources.pods }).success).toBe(false);
  });

  it("mirrors a VLAN-only ovs source in both directions only", () => {
    const base = { name: "m", namespace: "ns", target: { type: "collector" } };
    const vlanOnly = { type: "ovs", node: "n1", bridge: "br-ex", vlans: [10, 20] };
    expect(MirrorSpec.safeParse({ ...base, sources: vlanOnly, direction: "both" }).success).toBe(true);
    expect(MirrorSpec.safeParse({ ...base, sources: vlanOnly, direction: "egress" }).success).toBe(false);
  });
});

describe("strictness", () => {
  it("refuses unknown fields at every level of a spec", () => {
    const spec = {
      name: "m",
      namespace: "ns",
      sources: { type: "pods", names: ["a"] },
      direction: "both",
      target: { type: "gre", sink: "10.0.0.9" },
    };
    expect(MirrorSpec.safeParse(spec).success).toBe(true);
    expect(MirrorSpec.safeParse({ ...spec, extra: 1 }).success).toBe(false);
    expect(MirrorSpec.safeParse({ ...spec, sources: { ...spec.sources, extra: 1 } }).success).toBe(false);
    expect(MirrorSpec.safeParse({ ...spec, target: { ...spec.target, extra: 1 } }).success).toBe(false);
    expect(
      MirrorSpec.safeParse({
        ...spec,
        target: { type: "gre", sink: { pod: { namespace: "a", name: "b", x: 1 } } },
      }).success,
    ).toBe(false);
  });
});
