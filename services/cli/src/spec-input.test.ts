import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { validateSpec } from "@ovntap/contracts";
import { arbitraries } from "@ovntap/contracts/internal";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { UsageError } from "./errors.js";
import { checkSpec, mergeFileSpec, parseSpecText, readSpecFile, specFromFlags } from "./spec-input.js";

const YAML_SPEC = `# a mirror
name: web
namespace: shop
sources:
  type: selector
  matchLabels: { app: web }
direction: both
target: { type: gre, sink: 10.0.0.9, key: 99 }
filter: { protocols: [tcp], ports: [443, { from: 8000, to: 8080 }] }
ttlSeconds: 7200
labels: { team: sre }
`;
const EXPECTED = {
  name: "web",
  namespace: "shop",
  sources: { type: "selector", matchLabels: { app: "web" } },
  direction: "both",
  target: { type: "gre", sink: "10.0.0.9", key: 99 },
  filter: { protocols: ["tcp"], ports: [443, { from: 8000, to: 8080 }] },
  ttlSeconds: 7200,
  labels: { team: "sre" },
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ovntap-cli-spec-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("spec text", () => {
  it("reads YAML and JSON", () => {
    expect(parseSpecText(YAML_SPEC, "spec.yaml")).toEqual(EXPECTED);
    expect(parseSpecText(JSON.stringify(EXPECTED), "spec.json", "json")).toEqual(EXPECTED);
    // YAML reads JSON too (stdin has no extension to go by).
    expect(parseSpecText(JSON.stringify(EXPECTED, null, 2), "standard input")).toEqual(EXPECTED);
  });

  it.each([
    ["", /spec.yaml is empty/],
    ["# only a comment\n", /spec.yaml is empty/],
    ["name: a\n---\nname: b\n", /holds 2 YAML documents; give one mirror spec per file/],
    ["name: [unclosed\n", /spec.yaml is not valid YAML at line \d+, column \d+/],
    ["name: a\nname: b\n", /spec.yaml is not valid YAML at line 2/],
    ["- a\n- b\n", /must hold a mirror spec object/],
    ["just a string\n", /must hold a mirror spec object/],
  ])("refuses %j", (text, message) => {
    expect(() => parseSpecText(text, "spec.yaml")).toThrow(UsageError);
    expect(() => parseSpecText(text, "spec.yaml")).toThrow(message);
  });

  it("refuses bad JSON in a .json file, with the parser's position", () => {
    expect(() => parseSpecText('{"name": ', "spec.json", "json")).toThrow(/spec.json is not valid JSON/);
  });

  it("reads back any valid spec written as YAML or JSON", () => {
    fc.assert(
      fc.property(arbitraries.mirrorSpec, (spec) => {
        for (const [text, format] of [
          [stringify(spec), "yaml"],
          [JSON.stringify(spec), "json"],
        ] as const) {
          const r = validateSpec(parseSpecText(text, "spec", format));
          expect(r.ok && r.value).toEqual(spec);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe("spec files", () => {
  it("reads a file by extension, relative to cwd", async () => {
    writeFileSync(join(dir, "m.json"), JSON.stringify(EXPECTED));
    writeFileSync(join(dir, "m.yml"), YAML_SPEC);
    expect((await readSpecFile("m.json", dir, undefined)).raw).toEqual(EXPECTED);
    expect(await readSpecFile(join(dir, "m.yml"), "/", undefined)).toEqual({
      raw: EXPECTED,
      where: join(dir, "m.yml"),
    });
  });

  it("reads standard input for -f -", async () => {
    const stdin = Readable.from([Buffer.from(YAML_SPEC.slice(0, 40)), Buffer.from(YAML_SPEC.slice(40))]);
    expect(await readSpecFile("-", dir, stdin)).toEqual({ raw: EXPECTED, where: "standard input" });
  });

  it("names a missing file or directory", async () => {
    await expect(readSpecFile("nope.yaml", dir, undefined)).rejects.toThrow(
      /-f nope.yaml: cannot read it \(no such file\)/,
    );
    await expect(readSpecFile(".", dir, undefined)).rejects.toThrow(/is a directory/);
  });

  it("fills in --name and --namespace, refuses contradictions and other spec flags", () => {
    const { name: _n, namespace: _ns, ...rest } = EXPECTED;
    expect(mergeFileSpec(rest, "f", { namespace: "shop" }, new Set(["namespace"]), "web", "default")).toEqual(
      EXPECTED,
    );
    expect(mergeFileSpec({ ...rest, name: "web" }, "f", {}, new Set(), undefined, "default").namespace).toBe(
      "default",
    );
    expect(() => mergeFileSpec(EXPECTED, "f", {}, new Set(), "other", "default")).toThrow(
      /the name in f \("web"\) differs from the one given \(other\)/,
    );
    expect(() =>
      mergeFileSpec(EXPECTED, "f", { namespace: "x" }, new Set(["namespace"]), undefined, "d"),
    ).toThrow(/differs from --namespace x/);
    expect(() => mergeFileSpec(EXPECTED, "f", { ttl: "60" }, new Set(["ttl"]), undefined, "d")).toThrow(
      /--ttl cannot be combined with -f/,
    );
  });

  it("names the file and field of each problem", () => {
    const bad = { ...EXPECTED, target: { type: "gre", sink: "10.0.0.9", key: 2 ** 32 }, snaplen: 3 };
    try {
      checkSpec(bad, { file: "m.yaml" });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toBe(
        "invalid mirror spec:\n" +
          "m.yaml: target.key: must be ≤ 4294967295 (GRE key is 32 bits)\n" +
          "m.yaml: snaplen: must be ≥ 14 (OVS Mirror.snaplen takes 14..65535)",
      );
    }
  });
});

describe("spec from flags", () => {
  it("builds pods, ports and selector sources and each target", () => {
    expect(
      specFromFlags(
        {
          pod: ["web-0,web-1", "web-2"],
          direction: "egress",
          "erspan-sink": "pod:sinks/rx",
          "session-id": "5",
          "erspan-version": "1",
          ttl: "2h",
          snaplen: "128",
          label: ["team=sre"],
        },
        "web",
        "shop",
      ),
    ).toEqual({
      name: "web",
      namespace: "shop",
      sources: { type: "pods", names: ["web-0", "web-1", "web-2"] },
      direction: "egress",
      target: { type: "erspan", sink: { pod: { namespace: "sinks", name: "rx" } }, sessionId: 5, version: 1 },
      ttlSeconds: 7200,
      snaplen: 128,
      labels: { team: "sre" },
    });
    expect(specFromFlags({ port: ["lsp-1"], direction: "both", collector: true }, "a", "b")).toMatchObject({
      sources: { type: "ports", names: ["lsp-1"] },
      target: { type: "collector" },
    });
    expect(
      specFromFlags({ selector: "app=web", direction: "both", "gre-sink": "10.0.0.9", key: "0" }, "a", "b"),
    ).toMatchObject({
      sources: { type: "selector", matchLabels: { app: "web" } },
      target: { type: "gre", sink: "10.0.0.9", key: 0 },
    });
  });
});

describe("OVS sources and outputs from flags", () => {
  const ovs = { "ovs-node": "worker-1", "ovs-bridge": "br-int" };

  it("builds an ovs source with ports and VLANs, and each target", () => {
    expect(
      specFromFlags(
        {
          ...ovs,
          "ovs-port": ["veth1,veth2", "veth4"],
          direction: "both",
          "output-port": "veth3",
          snaplen: "128",
        },
        "sw",
        "ops",
      ),
    ).toEqual({
      name: "sw",
      namespace: "ops",
      sources: { type: "ovs", node: "worker-1", bridge: "br-int", ports: ["veth1", "veth2", "veth4"] },
      direction: "both",
      target: { type: "ovsPort", node: "worker-1", bridge: "br-int", port: "veth3" },
      snaplen: 128,
    });
    expect(
      specFromFlags(
        { ...ovs, "ovs-vlan": ["100,200", "300"], direction: "both", "output-vlan": "42" },
        "a",
        "b",
      ),
    ).toMatchObject({
      sources: { type: "ovs", node: "worker-1", bridge: "br-int", vlans: [100, 200, 300] },
      target: { type: "ovsVlan", node: "worker-1", bridge: "br-int", vlan: 42 },
    });
    for (const [flags, target] of [
      [{ "gre-sink": "198.51.100.2" }, { type: "gre", sink: "198.51.100.2" }],
      [
        { "erspan-sink": "198.51.100.2", "erspan-version": "2" },
        { type: "erspan", sink: "198.51.100.2", version: 2 },
      ],
      [{ collector: true }, { type: "collector" }],
    ] as const) {
      const spec = specFromFlags({ ...ovs, "ovs-port": ["veth1"], direction: "egress", ...flags }, "a", "b");
      expect(spec.target).toEqual(target);
      expect(validateSpec(spec).ok).toBe(true);
    }
  });

  it.each([
    [{ "ovs-node": "worker-1", "ovs-port": ["veth1"] }, /an OVS source needs --ovs-bridge BRIDGE/],
    [{ "ovs-bridge": "br-int", "ovs-port": ["veth1"] }, /an OVS source needs --ovs-node NODE/],
    [{ ...ovs }, /an OVS source needs --ovs-port PORT or --ovs-vlan V/],
    [{ ...ovs, "ovs-vlan": ["x"] }, /--ovs-vlan: "x" is not an integer/],
    [{ ...ovs, "ovs-port": ["veth1"], pod: ["web-0"] }, /takes one kind of source/],
    [{ ...ovs, "ovs-port": ["veth1"] }, /needs a target: .*--output-port PORT or --output-vlan V/],
    [{ ...ovs, "ovs-port": ["veth1"], "output-port": "v3", collector: true }, /takes one target/],
    [
      { pod: ["web-0"], "output-port": "veth3" },
      /--output-port outputs on an OVS bridge: it goes with --ovs-node/,
    ],
    [{ pod: ["web-0"], "output-vlan": "5" }, /--output-vlan outputs on an OVS bridge/],
  ])("refuses %j", (flags, message) => {
    expect(() => specFromFlags({ direction: "both", ...flags }, "a", "b")).toThrow(message);
  });

  it("--receiver-link with --receiver-netns or --receiver-pod puts a receiving link on the target", () => {
    const spec = specFromFlags(
      {
        ...ovs,
        "ovs-port": ["veth1"],
        direction: "egress",
        "gre-sink": "198.51.100.2",
        "receiver-link": "mirror1",
        "receiver-netns": "cni-1234",
        "receiver-dev": "net1",
      },
      "a",
      "b",
    );
    expect(spec.target).toEqual({
      type: "gre",
      sink: "198.51.100.2",
      receiver: { link: "mirror1", netns: "cni-1234", dev: "net1" },
    });
    expect(validateSpec(spec).ok).toBe(true);
    const byPod = specFromFlags(
      {
        ...ovs,
        "ovs-port": ["veth1"],
        direction: "egress",
        "erspan-sink": "198.51.100.2",
        "receiver-link": "mirror1",
        "receiver-pod": "sec/sink-0",
      },
      "a",
      "b",
    );
    expect(byPod.target).toMatchObject({
      receiver: { link: "mirror1", pod: { namespace: "sec", name: "sink-0" } },
    });
    expect(validateSpec(byPod).ok).toBe(true);
    const tooLong = specFromFlags(
      {
        ...ovs,
        "ovs-port": ["veth1"],
        direction: "egress",
        "gre-sink": "198.51.100.2",
        "receiver-link": "a-link-name-too-long",
        "receiver-netns": "n",
      },
      "a",
      "b",
    );
    expect(() => checkSpec(tooLong, { flags: tooLong })).toThrow(
      /--receiver-link: target\.receiver\.link must be at most 15/,
    );
  });

  it.each([
    [{ "receiver-netns": "n" }, /--receiver-netns goes with --receiver-link NAME/],
    [{ "receiver-link": "l" }, /--receiver-link needs one of --receiver-netns NETNS or --receiver-pod/],
    [{ "receiver-link": "l", "receiver-netns": "n", "receiver-pod": "a/b" }, /needs one of/],
    [{ "receiver-link": "l", "receiver-pod": "b" }, /--receiver-pod must be NAMESPACE\/NAME/],
    [
      { "receiver-link": "l", "receiver-netns": "n", "gre-sink": undefined, collector: true },
      /--receiver-link goes with --gre-sink or --erspan-sink/,
    ],
  ])("refuses receiver flags %j", (flags, message) => {
    expect(() =>
      specFromFlags(
        { ...ovs, "ovs-port": ["veth1"], direction: "egress", "gre-sink": "198.51.100.2", ...flags },
        "a",
        "b",
      ),
    ).toThrow(message);
  });

  it("--sink-pod NS/NAME [--provider P] is GRE to a receiving pod", () => {
    const spec = specFromFlags(
      { pod: ["web-0"], direction: "egress", "sink-pod": "sec/sink-0", provider: "attachnet.default.ovn" },
      "a",
      "b",
    );
    expect(spec.target).toEqual({
      type: "gre",
      sink: { pod: { namespace: "sec", name: "sink-0", provider: "attachnet.default.ovn" } },
    });
    expect(validateSpec(spec).ok).toBe(true);
    const erspan = specFromFlags(
      { pod: ["web-0"], direction: "egress", "erspan-sink": "pod:sec/sink-0", provider: "net2.sec.ovn" },
      "a",
      "b",
    );
    expect(erspan.target).toMatchObject({ type: "erspan", sink: { pod: { provider: "net2.sec.ovn" } } });
    expect(() => specFromFlags({ pod: ["w"], direction: "egress", "sink-pod": "nope" }, "a", "b")).toThrow(
      /--sink-pod must be NAMESPACE\/NAME/,
    );
    expect(() =>
      specFromFlags({ pod: ["w"], direction: "egress", "gre-sink": "198.51.100.2", provider: "x" }, "a", "b"),
    ).toThrow(/--provider goes with a pod sink/);
    expect(() =>
      specFromFlags(
        { pod: ["w"], direction: "egress", "gre-sink": "198.51.100.2", "sink-pod": "a/b" },
        "a",
        "b",
      ),
    ).toThrow(/takes one target/);
  });

  it("names the OVS flag of each problem the contract finds", () => {
    const spec = specFromFlags(
      { ...ovs, "ovs-port": ["veth1"], direction: "egress", "output-port": "veth1", "ovs-bridge": "br-int" },
      "a",
      "b",
    );
    expect(() => checkSpec(spec, { flags: spec })).toThrow(
      /--output-port: target\.port must not be one of sources\.ports/,
    );
    const vlansOnly = specFromFlags(
      { ...ovs, "ovs-vlan": ["7"], direction: "egress", collector: true },
      "a",
      "b",
    );
    expect(() => checkSpec(vlansOnly, { flags: vlansOnly })).toThrow(/--direction: direction must be both/);
    const badVlan = specFromFlags(
      { ...ovs, "ovs-port": ["p"], direction: "both", "output-vlan": "0" },
      "a",
      "b",
    );
    expect(() => checkSpec(badVlan, { flags: badVlan })).toThrow(/--output-vlan: target\.vlan must be ≥ 1/);
    const badBridge = specFromFlags(
      {
        "ovs-node": "worker-1",
        "ovs-bridge": "a-very-long-bridge",
        "ovs-port": ["p"],
        direction: "both",
        collector: true,
      },
      "a",
      "b",
    );
    expect(() => checkSpec(badBridge, { flags: badBridge })).toThrow(
      /--ovs-bridge: sources\.bridge must be at most 15/,
    );
  });
});
