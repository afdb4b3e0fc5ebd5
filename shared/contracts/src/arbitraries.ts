/**
 * fast-check arbitraries for valid contract values, and for requests with exactly one field pushed
 * out of its range. Exported through `@ovntap/contracts/internal` so other suites can reuse them:
 *
 *     import { arbitraries } from "@ovntap/contracts/internal";
 *     fc.assert(fc.property(arbitraries.createRequest, (req) => { … }));
 *
 * Valid values are generated in canonical form (lower-case RFC 5952 IPv6, CIDRs with host bits
 * zero), so `MirrorSpec.parse(x)` deep-equals `x`.
 */
import fc from "fast-check";
import type { Arbitrary } from "fast-check";
import { FILTER_PROTOCOLS } from "./spec.js";
import type {
  Direction,
  FilterProtocol,
  LabelSelector,
  LabelSelectorRequirement,
  MirrorFilter,
  MirrorSource,
  MirrorSpec,
  MirrorTarget,
  OvsSource,
  PortMatch,
  Sink,
} from "./spec.js";
import type {
  CreateRequest,
  DeleteRequest,
  ExtendRequest,
  GetRequest,
  ListRequest,
  MirrorRequest,
} from "./requests.js";
import { canonicalIp, cidrNetwork, formatCidr, sinkAddressProblem } from "./ip.js";
import {
  ERSPAN_SESSION_MAX,
  GRE_KEY_MAX,
  LABELS_MAX,
  OUTPUT_VLAN_MIN,
  PORT_MAX,
  SNAPLEN_MAX,
  SNAPLEN_MIN,
  TTL_MAX_SECONDS,
  TTL_MIN_SECONDS,
  VLAN_MAX,
} from "./limits.js";
import { formatPath } from "./validate.js";

const dnsLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
const shortLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
const dnsSubdomain = fc
  .array(shortLabel, { minLength: 1, maxLength: 4 })
  .map((parts) => parts.join("."))
  .filter((s) => s.length <= 253);
const labelName = fc.stringMatching(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/);
const labelKey = fc
  .tuple(fc.option(dnsSubdomain, { nil: undefined }), labelName)
  .map(([prefix, name]) => (prefix === undefined ? name : `${prefix}/${name}`));
const labelValue = fc.oneof(fc.constant(""), labelName);
const labels = fc.dictionary(labelKey, labelValue, { maxKeys: 6, noNullPrototype: true });
const requestId = fc.oneof(fc.uuid(), fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/));
const principal = fc.stringMatching(/^[a-z][a-z0-9:@._-]{0,40}$/);
const bridge = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$/);
const portName = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,30}$/);
const vlan = fc.integer({ min: 0, max: VLAN_MAX });

const ipv4Sink = fc
  .tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
  .map((b) => b.join("."))
  .filter((s) => sinkAddressProblem(s) === undefined);
const hextet = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
const ipv6Text = fc
  .array(hextet, { minLength: 8, maxLength: 8 })
  .map((w) => w.map((x) => x.toString(16)).join(":"));
const ipv6Sink = ipv6Text
  .filter((s) => sinkAddressProblem(s) === undefined)
  .map((s) => canonicalIp(s) ?? s)
  // An IPv4-mapped address canonicalises to IPv4; keep this arbitrary to IPv6 proper.
  .filter((s) => s.includes(":"));
const sinkAddress = fc.oneof(ipv4Sink, ipv6Sink);

const podSink: Arbitrary<Sink> = fc
  .record(
    { namespace: dnsLabel, name: dnsSubdomain, provider: dnsSubdomain },
    { requiredKeys: ["namespace", "name"], noNullPrototype: true },
  )
  .map((pod) => ({ pod }));
const sink: Arbitrary<Sink> = fc.oneof(sinkAddress, podSink);

const selectorRequirement: Arbitrary<LabelSelectorRequirement> = fc.oneof(
  fc.record(
    {
      key: labelKey,
      operator: fc.constantFrom("In" as const, "NotIn" as const),
      values: fc.array(labelValue, { minLength: 1, maxLength: 4 }),
    },
    { noNullPrototype: true },
  ),
  fc.record(
    { key: labelKey, operator: fc.constantFrom("Exists" as const, "DoesNotExist" as const) },
    { noNullPrototype: true },
  ),
);

const labelSelector: Arbitrary<LabelSelector> = fc.record(
  { matchLabels: labels, matchExpressions: fc.array(selectorRequirement, { maxLength: 3 }) },
  { requiredKeys: [], noNullPrototype: true },
);

const nonEmptySelector = labelSelector.filter(
  (s) => Object.keys(s.matchLabels ?? {}).length > 0 || (s.matchExpressions ?? []).length > 0,
);

const ovnSource: Arbitrary<MirrorSource> = fc.oneof(
  fc
    .uniqueArray(dnsSubdomain, { minLength: 1, maxLength: 5 })
    .map((names) => ({ type: "pods" as const, names })),
  nonEmptySelector.map((s) => ({ type: "selector" as const, ...s })),
  fc
    .uniqueArray(portName, { minLength: 1, maxLength: 5 })
    .map((names) => ({ type: "ports" as const, names })),
);

const ovsSource: Arbitrary<OvsSource> = fc
  .record(
    {
      type: fc.constant("ovs" as const),
      node: dnsSubdomain,
      bridge,
      ports: fc.uniqueArray(portName, { minLength: 1, maxLength: 5 }),
      vlans: fc.uniqueArray(vlan, { minLength: 1, maxLength: 5 }),
    },
    { requiredKeys: ["type", "node", "bridge"], noNullPrototype: true },
  )
  .filter((s) => s.ports !== undefined || s.vlans !== undefined);

const greTarget = fc.record(
  { type: fc.constant("gre" as const), sink, key: fc.integer({ min: 0, max: GRE_KEY_MAX }) },
  { requiredKeys: ["type", "sink"], noNullPrototype: true },
);
const erspanTarget = (versions: readonly (1 | 2)[]) =>
  fc.record(
    {
      type: fc.constant("erspan" as const),
      sink,
      sessionId: fc.integer({ min: 0, max: ERSPAN_SESSION_MAX }),
      version: fc.constantFrom(...versions),
    },
    { requiredKeys: ["type", "sink"], noNullPrototype: true },
  );
const collectorTarget = fc.constant({ type: "collector" as const });
const tunnelTarget = (versions: readonly (1 | 2)[]): Arbitrary<MirrorTarget> =>
  fc.oneof(greTarget, erspanTarget(versions), collectorTarget);

/** Targets valid for an ovs source: tunnels, or a local port / VLAN on the same node and bridge. */
function ovsTarget(source: OvsSource): Arbitrary<MirrorTarget> {
  const port = portName.filter((p) => !(source.ports ?? []).includes(p));
  const outVlan = fc
    .integer({ min: OUTPUT_VLAN_MIN, max: VLAN_MAX })
    .filter((v) => !(source.vlans ?? []).includes(v));
  return fc.oneof(
    tunnelTarget([1, 2]),
    port.map((p) => ({ type: "ovsPort" as const, node: source.node, bridge: source.bridge, port: p })),
    outVlan.map((v) => ({ type: "ovsVlan" as const, node: source.node, bridge: source.bridge, vlan: v })),
  );
}

const direction: Arbitrary<Direction> = fc.constantFrom("ingress", "egress", "both");

const cidr = fc.oneof(
  fc
    .tuple(fc.array(fc.nat(255), { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 }))
    .map(([bytes, prefix]) => formatCidr(cidrNetwork({ ip: { family: 4, bytes }, prefix }))),
  fc
    .tuple(fc.array(fc.nat(255), { minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 128 }))
    .map(([bytes, prefix]) => formatCidr(cidrNetwork({ ip: { family: 6, bytes }, prefix }))),
);
const portMatch: Arbitrary<PortMatch> = fc.oneof(
  fc.integer({ min: 0, max: PORT_MAX }),
  fc
    .tuple(fc.integer({ min: 0, max: PORT_MAX }), fc.integer({ min: 0, max: PORT_MAX }))
    .map(([a, b]) => ({ from: Math.min(a, b), to: Math.max(a, b) })),
);
const filter: Arbitrary<MirrorFilter> = fc
  .record(
    {
      protocols: fc.uniqueArray(fc.constantFrom<FilterProtocol>(...FILTER_PROTOCOLS), { minLength: 1 }),
      cidrs: fc.uniqueArray(cidr, { minLength: 1, maxLength: 4 }),
      ports: fc.array(portMatch, { minLength: 1, maxLength: 4 }),
    },
    { requiredKeys: [], noNullPrototype: true },
  )
  .filter((f) => f.protocols !== undefined || f.cidrs !== undefined || f.ports !== undefined)
  .filter(
    (f) =>
      f.ports === undefined ||
      f.protocols === undefined ||
      f.protocols.some((p) => ["tcp", "udp", "sctp"].includes(p)),
  );

const optionalSpecFields = fc.record(
  {
    filter,
    snaplen: fc.integer({ min: SNAPLEN_MIN, max: SNAPLEN_MAX }),
    ttlSeconds: fc.integer({ min: TTL_MIN_SECONDS, max: TTL_MAX_SECONDS }),
    labels,
  },
  { requiredKeys: [], noNullPrototype: true },
);

const ovnSpec: Arbitrary<MirrorSpec> = fc
  .tuple(dnsLabel, dnsLabel, ovnSource, direction, tunnelTarget([1]), optionalSpecFields)
  .map(([name, namespace, sources, dir, target, rest]) => ({
    name,
    namespace,
    sources,
    direction: dir,
    target,
    ...rest,
  }));

const ovsSpec: Arbitrary<MirrorSpec> = ovsSource.chain((sources) =>
  fc
    .tuple(
      dnsLabel,
      dnsLabel,
      sources.ports === undefined ? fc.constant("both" as const) : direction,
      ovsTarget(sources),
      optionalSpecFields,
    )
    .map(([name, namespace, dir, target, rest]) => ({
      name,
      namespace,
      sources,
      direction: dir,
      target,
      ...rest,
    })),
);

const mirrorSpec: Arbitrary<MirrorSpec> = fc.oneof(ovnSpec, ovsSpec);

const requestBase = fc.record(
  { requestId, principal },
  { requiredKeys: ["requestId"], noNullPrototype: true },
);

const createRequest: Arbitrary<CreateRequest> = fc
  .tuple(requestBase, mirrorSpec)
  .map(([base, spec]) => ({ ...base, op: "create" as const, spec }));
const deleteRequest: Arbitrary<DeleteRequest> = fc
  .tuple(requestBase, dnsLabel, dnsLabel)
  .map(([base, namespace, name]) => ({ ...base, op: "delete" as const, namespace, name }));
const getRequest: Arbitrary<GetRequest> = fc
  .tuple(requestBase, dnsLabel, dnsLabel)
  .map(([base, namespace, name]) => ({ ...base, op: "get" as const, namespace, name }));
const listRequest: Arbitrary<ListRequest> = fc
  .tuple(requestBase, dnsLabel, fc.option(labelSelector, { nil: undefined }))
  .map(([base, namespace, selector]) => ({
    ...base,
    op: "list" as const,
    namespace,
    ...(selector === undefined ? {} : { selector }),
  }));
const extendRequest: Arbitrary<ExtendRequest> = fc
  .tuple(requestBase, dnsLabel, dnsLabel, fc.integer({ min: TTL_MIN_SECONDS, max: TTL_MAX_SECONDS }))
  .map(([base, namespace, name, ttlSeconds]) => ({
    ...base,
    op: "extend" as const,
    namespace,
    name,
    ttlSeconds,
  }));
const request: Arbitrary<MirrorRequest> = fc.oneof(
  createRequest,
  deleteRequest,
  getRequest,
  listRequest,
  extendRequest,
);

// ---------------------------------------------------------------------------------------------
// One field out of range

/** A request that is valid except for the field at `path` (as `formatPath` prints it). */
export interface OutOfRange {
  readonly request: unknown;
  readonly path: string;
  readonly value: unknown;
}

type Mutation = (spec: MirrorSpec, value: never) => { spec: unknown; path: string };

const OVS = { type: "ovs", node: "node-1", bridge: "br-ex", ports: ["eth1"] } as const;

/** Per field: values just outside the range, far outside it, and how to put one into a spec. */
const MUTATIONS: readonly { values: readonly unknown[]; apply: Mutation }[] = [
  {
    values: [GRE_KEY_MAX + 1, 2 ** 53, -1, -(2 ** 40), 1.5],
    apply: (spec, key) => ({
      spec: { ...spec, target: { type: "gre", sink: "10.0.0.9", key } },
      path: "target.key",
    }),
  },
  {
    values: [ERSPAN_SESSION_MAX + 1, 1e9, -1],
    apply: (spec, sessionId) => ({
      spec: { ...spec, target: { type: "erspan", sink: "10.0.0.9", sessionId } },
      path: "target.sessionId",
    }),
  },
  {
    values: [0, 3, 1000],
    apply: (spec, version) => ({
      spec: { ...spec, target: { type: "erspan", sink: "10.0.0.9", version } },
      path: "target.version",
    }),
  },
  {
    values: [OUTPUT_VLAN_MIN - 1, VLAN_MAX + 1, 1e6, -1],
    apply: (spec, v) => ({
      spec: {
        ...spec,
        sources: OVS,
        target: { type: "ovsVlan", node: OVS.node, bridge: OVS.bridge, vlan: v },
      },
      path: "target.vlan",
    }),
  },
  {
    values: [VLAN_MAX + 1, 1e9, -1],
    apply: (spec, v) => ({
      spec: { ...spec, sources: { ...OVS, vlans: [v] }, target: { type: "collector" } },
      path: "sources.vlans[0]",
    }),
  },
  {
    values: [SNAPLEN_MIN - 1, SNAPLEN_MAX + 1, 0, -1e9, 1e12],
    apply: (spec, snaplen) => ({ spec: { ...spec, snaplen }, path: "snaplen" }),
  },
  {
    values: [TTL_MIN_SECONDS - 1, TTL_MAX_SECONDS + 1, 0, -1, 1e12],
    apply: (spec, ttlSeconds) => ({ spec: { ...spec, ttlSeconds }, path: "ttlSeconds" }),
  },
  {
    values: [PORT_MAX + 1, -1, 1e9],
    apply: (spec, p) => ({ spec: { ...spec, filter: { ports: [p] } }, path: "filter.ports[0]" }),
  },
  {
    values: [PORT_MAX + 1, 1e9],
    apply: (spec, to) => ({
      spec: { ...spec, filter: { ports: [{ from: 1, to }] } },
      path: "filter.ports[0].to",
    }),
  },
  {
    values: ["a".repeat(64), "a".repeat(1000), ""],
    apply: (spec, name) => ({ spec: { ...spec, name }, path: "name" }),
  },
  {
    values: ["a".repeat(64), "a".repeat(1000), ""],
    apply: (spec, namespace) => ({ spec: { ...spec, namespace }, path: "namespace" }),
  },
  {
    values: ["a".repeat(254), "a".repeat(5000), ""],
    apply: (spec, name) => ({
      spec: { ...spec, sources: { type: "pods", names: [name] } },
      path: "sources.names[0]",
    }),
  },
  {
    values: ["v".repeat(64), "v".repeat(1000)],
    apply: (spec, value) => ({ spec: { ...spec, labels: { app: value } }, path: "labels.app" }),
  },
  {
    values: ["k".repeat(64), "k".repeat(1000)],
    apply: (spec, key: string) => ({
      spec: { ...spec, labels: { [key]: "v" } },
      path: formatPath(["labels", key]),
    }),
  },
  {
    values: [LABELS_MAX + 1, 500],
    apply: (spec, n: number) => ({
      spec: { ...spec, labels: Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"])) },
      path: "labels",
    }),
  },
  {
    values: ["b".repeat(16), "b".repeat(300), ""],
    apply: (spec, b) => ({
      spec: {
        ...spec,
        sources: { ...OVS, bridge: b },
        target: { type: "ovsPort", node: OVS.node, bridge: b, port: "mirror0" },
      },
      path: "sources.bridge",
    }),
  },
  {
    values: ["p".repeat(254), "p".repeat(5000)],
    apply: (spec, name) => ({
      spec: { ...spec, target: { type: "gre", sink: { pod: { namespace: "sinks", name } } } },
      path: "target.sink.pod.name",
    }),
  },
];

const outOfRangeRequest: Arbitrary<OutOfRange> = fc.oneof(
  {
    weight: MUTATIONS.length,
    arbitrary: fc.tuple(createRequest, fc.constantFrom(...MUTATIONS)).chain(([req, m]) =>
      fc.constantFrom(...m.values).map((value) => {
        const { spec, path } = m.apply(req.spec, value as never);
        return { request: { ...req, spec }, path: `spec.${path}`, value };
      }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(extendRequest, fc.constantFrom(TTL_MIN_SECONDS - 1, TTL_MAX_SECONDS + 1, 0, 1e12))
      .map(([req, ttlSeconds]) => ({
        request: { ...req, ttlSeconds },
        path: "ttlSeconds",
        value: ttlSeconds,
      })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(request, fc.constantFrom("x".repeat(129), "x".repeat(10_000), ""))
      .map(([req, id]) => ({ request: { ...req, requestId: id }, path: "requestId", value: id })),
  },
);

export const arbitraries = {
  dnsLabel,
  dnsSubdomain,
  labelKey,
  labelValue,
  labels,
  labelSelector,
  requestId,
  principal,
  sinkAddress,
  ipv4Sink,
  ipv6Sink,
  sink,
  cidr,
  filter,
  ovnSource,
  ovsSource,
  mirrorSpec,
  createRequest,
  deleteRequest,
  getRequest,
  listRequest,
  extendRequest,
  request,
  outOfRangeRequest,
} as const;
