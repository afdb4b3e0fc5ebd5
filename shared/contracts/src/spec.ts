/**
 * The mirror spec: what to mirror (`sources`), which way (`direction`), where to (`target`), and
 * how much (`filter`, `snaplen`), for how long (`ttlSeconds`).
 *
 *     const spec = MirrorSpec.parse({
 *       name: "web", namespace: "shop",
 *       sources: { type: "selector", matchLabels: { app: "web" } },
 *       direction: "both",
 *       target: { type: "gre", sink: "10.0.0.9" },
 *     });
 *
 * Objects are strict: an unknown field is an error, so a typo (`ttlSecond`) is refused at the edge
 * instead of silently ignored. Which sources go with which targets is `TARGETS_FOR_SOURCE`.
 */
import { z } from "zod";
import {
  BridgeName,
  dnsSubdomain,
  intIn,
  LabelKey,
  Labels,
  LabelValue,
  MirrorName,
  Namespace,
  NodeName,
  PodName,
  portName,
  typeError,
  uniqueItems,
} from "./fields.js";
import {
  canonicalIp,
  cidrHasHostBits,
  cidrNetwork,
  formatCidr,
  parseCidr,
  sinkAddressProblem,
} from "./ip.js";
import type { IpFamily } from "./ip.js";
import {
  ENCAP_OVERHEAD,
  ERSPAN_SESSION_MAX,
  FILTER_CIDRS_MAX,
  FILTER_PORTS_MAX,
  GRE_KEY_MAX,
  IFNAME_MAX,
  NETNS_NAME_MAX,
  OUTPUT_VLAN_MIN,
  PORT_MAX,
  SELECTOR_EXPRESSIONS_MAX,
  SELECTOR_VALUES_MAX,
  SNAPLEN_MAX,
  SNAPLEN_MIN,
  SOURCE_ITEMS_MAX,
  TTL_MAX_SECONDS,
  TTL_MIN_SECONDS,
  VLAN_MAX,
  VLAN_MIN,
} from "./limits.js";
import type { Encapsulation } from "./limits.js";

function list<T extends z.ZodType>(item: T, what: string, max: number) {
  return z
    .array(item, typeError(`a list of ${what}`))
    .min(1, { error: `must list at least one of ${what}` })
    .max(max, { error: `must list at most ${max} ${what} (ovntap limit)` });
}

// ---------------------------------------------------------------------------------------------
// Label selectors (Kubernetes metav1.LabelSelector)

/** In/NotIn need values; Exists/DoesNotExist take none (apimachinery ValidateLabelSelectorRequirement). */
export const LabelSelectorRequirement = z.discriminatedUnion("operator", [
  z.strictObject({
    key: LabelKey,
    operator: z.literal(["In", "NotIn"]),
    values: z
      .array(LabelValue, typeError("a list of label values"))
      .min(1, { error: "must list at least one value for In and NotIn (Kubernetes label selector rules)" })
      .max(SELECTOR_VALUES_MAX, {
        error: `must list at most ${SELECTOR_VALUES_MAX} values (ovntap limit)`,
      }),
  }),
  z.strictObject({
    key: LabelKey,
    operator: z.literal(["Exists", "DoesNotExist"]),
    values: z
      .array(LabelValue, typeError("a list of label values"))
      .max(0, { error: "must be empty for Exists and DoesNotExist (Kubernetes label selector rules)" })
      .optional(),
  }),
]);
export type LabelSelectorRequirement = z.infer<typeof LabelSelectorRequirement>;

const selectorShape = {
  matchLabels: Labels.optional(),
  matchExpressions: z
    .array(LabelSelectorRequirement, typeError("a list of label selector requirements"))
    .max(SELECTOR_EXPRESSIONS_MAX, {
      error: `must list at most ${SELECTOR_EXPRESSIONS_MAX} expressions (ovntap limit)`,
    })
    .optional(),
};

/** A label selector; in `list` requests an empty selector matches every mirror, as in Kubernetes. */
export const LabelSelector = z.strictObject(selectorShape);
export type LabelSelector = z.infer<typeof LabelSelector>;

// ---------------------------------------------------------------------------------------------
// Sources

/** Pods by name in the mirror's namespace; Kube-OVN names a pod's logical switch port `<pod>.<namespace>`. */
export const PodsSource = z.strictObject({
  type: z.literal("pods"),
  names: list(PodName, "pod names", SOURCE_ITEMS_MAX).superRefine(uniqueItems("pod names")),
});

/**
 * Pods matching a label selector in the mirror's namespace; the applier follows pods as they come and
 * go. An empty selector would mirror the whole namespace, so at least one term is required.
 */
export const SelectorSource = z
  .strictObject({ type: z.literal("selector"), ...selectorShape })
  .superRefine((s, ctx) => {
    if (Object.keys(s.matchLabels ?? {}).length === 0 && (s.matchExpressions ?? []).length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["matchLabels"],
        message:
          "must select something: give matchLabels or matchExpressions (an empty selector would mirror every pod in the namespace)",
      });
    }
  });

/** Raw OVN logical switch ports; an admin-only policy because they can belong to any namespace. */
export const PortsSource = z.strictObject({
  type: z.literal("ports"),
  names: list(
    portName("an OVN logical switch port name"),
    "logical switch port names",
    SOURCE_ITEMS_MAX,
  ).superRefine(uniqueItems("logical switch port names")),
});

/**
 * Ports and/or VLANs of an OVS bridge on one node, mirrored by that node's agent with an OVS `Mirror`
 * row (select_src_port / select_dst_port / select_vlan).
 */
export const OvsSource = z
  .strictObject({
    type: z.literal("ovs"),
    node: NodeName,
    bridge: BridgeName,
    ports: list(portName("an OVS port name"), "OVS port names", SOURCE_ITEMS_MAX)
      .superRefine(uniqueItems("OVS port names"))
      .optional(),
    vlans: list(intIn(VLAN_MIN, VLAN_MAX, "802.1Q VLAN id is 12 bits"), "VLAN ids", VLAN_MAX + 1)
      .superRefine(uniqueItems("VLAN ids"))
      .optional(),
  })
  .superRefine((s, ctx) => {
    if (s.ports === undefined && s.vlans === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["ports"],
        message: "must give ports or vlans (or both): an OVS mirror selects by port or by VLAN",
      });
    }
  });

export const MirrorSource = z.discriminatedUnion("type", [
  PodsSource,
  SelectorSource,
  PortsSource,
  OvsSource,
]);
export type MirrorSource = z.infer<typeof MirrorSource>;
export type PodsSource = z.infer<typeof PodsSource>;
export type SelectorSource = z.infer<typeof SelectorSource>;
export type PortsSource = z.infer<typeof PortsSource>;
export type OvsSource = z.infer<typeof OvsSource>;
export type SourceType = MirrorSource["type"];

// ---------------------------------------------------------------------------------------------
// Sinks and targets

/**
 * A sink IP literal, rewritten to canonical text (RFC 5952; IPv4-mapped IPv6 becomes IPv4) so that
 * per-sink key allocation sees one string per host.
 */
export const SinkAddress = z
  .string(typeError("an IP address literal"))
  .superRefine((s, ctx) => {
    const problem = sinkAddressProblem(s);
    if (problem) {
      ctx.addIssue({
        code: "custom",
        message: `${JSON.stringify(s)} ${problem}; a sink must be a unicast address the chassis can tunnel to`,
      });
    }
  })
  .overwrite((s) => canonicalIp(s) ?? s)
  .meta({
    anyOf: [
      { type: "string", format: "ipv4" },
      { type: "string", format: "ipv6" },
    ],
    description:
      "Unicast IPv4 or IPv6 literal; not loopback, multicast, link-local, unspecified or 255.255.255.255. Stored in canonical form.",
  });

/** A receiving pod, resolved to its attachment IP through Kube-OVN's `ips.kubeovn.io` by the applier. */
export const PodSink = z.strictObject({
  pod: z.strictObject({
    namespace: Namespace,
    name: PodName,
    /** Kube-OVN provider of the attachment network (`<nad>.<namespace>[.ovn]`); the primary network when absent. */
    provider: dnsSubdomain("a Kube-OVN provider name such as attachnet.default.ovn").optional(),
  }),
});

export const Sink = z.union([SinkAddress, PodSink], {
  error: 'must be an IP address literal or {"pod": {"namespace", "name"}}',
});
export type Sink = z.infer<typeof Sink>;
export type PodSink = z.infer<typeof PodSink>;

/** A Linux interface name: at most IFNAMSIZ − 1 bytes. */
function ifName(what: string) {
  return z
    .string(typeError("a string"))
    .min(1, { error: `must not be empty (${what})` })
    .max(IFNAME_MAX, {
      error: `must be at most ${IFNAME_MAX} characters (${what}; Linux IFNAMSIZ is 16 with the NUL)`,
    })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, {
      error: `must be an interface name: letters, digits, '.', '_' and '-', starting with a letter or digit (${what})`,
    });
}

/** A named network namespace, as `ip netns` keeps them (a file under /run/netns). */
export const NetnsName = z
  .string(typeError("a string"))
  .min(1, { error: "must not be empty (a network namespace name)" })
  .max(NETNS_NAME_MAX, { error: `must be at most ${NETNS_NAME_MAX} characters (a network namespace name)` })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, {
    error:
      "must be a network namespace name under /run/netns: letters, digits, '.', '_' and '-', starting with a letter or digit",
  })
  .meta({ description: "Named network namespace (ip netns), e.g. cni-1234." });

/**
 * The kernel end of a remote mirror, as the Kube-OVN guide makes it in the receiving pod:
 * `ip link add <link> type gretap local <sink> key <key> [dev <dev>]`, or for ERSPAN
 * `type erspan seq key <id> erspan <id> local <sink> remote <tunnel source> [dev <dev>]`
 * (`ip6gretap` / `ip6erspan` for an IPv6 sink). The node agent of the source's node creates it
 * once the key is known, owns it (the link's alias) and removes it with the mirror; where the
 * kernel lacks the link type the mirror fails with LINK_TYPE_UNSUPPORTED — a `collector` target
 * needs no kernel link. Only with `ovs` sources: their node's agent applies the mirror.
 */
export const ReceiverLink = z
  .strictObject({
    /** A named network namespace on the source's node (the receiving pod's, e.g. `cni-…`). */
    netns: NetnsName.optional(),
    /** The receiving pod; its network namespace is found through the Kubernetes integration. */
    pod: z.strictObject({ namespace: Namespace, name: PodName }).optional(),
    /** The link to create. */
    link: ifName("the receiving link's name"),
    /** Its lower device, e.g. the pod's attachment interface `net1`. */
    dev: ifName("the lower device").optional(),
  })
  .superRefine((r, ctx) => {
    if ((r.netns === undefined) === (r.pod === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["netns"],
        message: "must give either netns or pod (where the receiving link goes), not both or neither",
      });
    }
  });
export type ReceiverLink = z.infer<typeof ReceiverLink>;

export const GreTarget = z.strictObject({
  type: z.literal("gre"),
  sink: Sink,
  /** Allocated (unique per sink) when absent. */
  key: intIn(0, GRE_KEY_MAX, "GRE key is 32 bits").optional(),
  /** A `gretap` link at the sink to make, own and remove with the mirror (ovs sources). */
  receiver: ReceiverLink.optional(),
});

export const ErspanTarget = z.strictObject({
  type: z.literal("erspan"),
  sink: Sink,
  /** Allocated (unique per sink) when absent. */
  sessionId: intIn(0, ERSPAN_SESSION_MAX, "ERSPAN session id is 10 bits").optional(),
  /** OVS `erspan_ver`: 1 = ERSPAN type II (the default), 2 = type III. */
  version: z.literal([1, 2], { error: "must be 1 (ERSPAN type II) or 2 (ERSPAN type III)" }).optional(),
  /** An `erspan` link at the sink to make, own and remove with the mirror (ovs sources). */
  receiver: ReceiverLink.optional(),
});

/** The capture exporter is the sink; the applier allocates a GRE key towards it. */
export const CollectorTarget = z.strictObject({ type: z.literal("collector") });

/** OVS `Mirror.output_port`: a local port on the source's bridge, dedicated to mirror output. */
export const OvsPortTarget = z.strictObject({
  type: z.literal("ovsPort"),
  node: NodeName,
  bridge: BridgeName,
  port: portName("an OVS port name"),
});

/** OVS `Mirror.output_vlan`: mirrored packets are flooded on this VLAN of the source's bridge. */
export const OvsVlanTarget = z.strictObject({
  type: z.literal("ovsVlan"),
  node: NodeName,
  bridge: BridgeName,
  vlan: intIn(OUTPUT_VLAN_MIN, VLAN_MAX, "OVS Mirror.output_vlan takes 1..4095"),
});

/** One target per mirror, so OVS's `output_port` xor `output_vlan` holds by construction. */
export const MirrorTarget = z.discriminatedUnion("type", [
  GreTarget,
  ErspanTarget,
  CollectorTarget,
  OvsPortTarget,
  OvsVlanTarget,
]);
export type MirrorTarget = z.infer<typeof MirrorTarget>;
export type GreTarget = z.infer<typeof GreTarget>;
export type ErspanTarget = z.infer<typeof ErspanTarget>;
export type CollectorTarget = z.infer<typeof CollectorTarget>;
export type OvsPortTarget = z.infer<typeof OvsPortTarget>;
export type OvsVlanTarget = z.infer<typeof OvsVlanTarget>;
export type TargetType = MirrorTarget["type"];

/**
 * Valid source/target combinations.
 *
 * - OVN sources (pods, selector, ports) become OVN NB `Mirror` rows, which only tunnel: gre, erspan
 *   (type II only: ovn-controller always sets `erspan_ver=1`), or collector (GRE to the exporter).
 * - ovs sources are handled by the node agent with an OVS `Mirror` row; its output is a local port
 *   (ovsPort), a VLAN (ovsVlan), or a tunnel port the agent adds to the bridge (gre, erspan II/III,
 *   collector).
 */
export const TARGETS_FOR_SOURCE = {
  pods: ["gre", "erspan", "collector"],
  selector: ["gre", "erspan", "collector"],
  ports: ["gre", "erspan", "collector"],
  ovs: ["gre", "erspan", "collector", "ovsPort", "ovsVlan"],
} as const satisfies Record<SourceType, readonly TargetType[]>;

/** The encapsulation a target puts on the wire, or `undefined` for local OVS outputs. */
export function targetEncapsulation(target: MirrorTarget): Encapsulation | undefined {
  switch (target.type) {
    case "gre":
    case "collector":
      return "gre";
    case "erspan":
      return target.version === 2 ? "erspan3" : "erspan2";
    case "ovsPort":
    case "ovsVlan":
      return undefined;
  }
}

/** Bytes the target adds to each mirrored frame over a transport of `family` (0 for local outputs). */
export function encapOverhead(target: MirrorTarget, family: IpFamily): number {
  const encap = targetEncapsulation(target);
  if (!encap) return 0;
  return ENCAP_OVERHEAD[encap][family === 4 ? "ipv4" : "ipv6"];
}

// ---------------------------------------------------------------------------------------------
// Filter

export const FILTER_PROTOCOLS = [
  "tcp",
  "udp",
  "sctp",
  "icmp",
  "icmpv6",
  "arp",
  "igmp",
  "gre",
  "esp",
  "ah",
] as const;
export type FilterProtocol = (typeof FILTER_PROTOCOLS)[number];
const PORTED_PROTOCOLS: readonly FilterProtocol[] = ["tcp", "udp", "sctp"];

/**
 * A network in CIDR notation. Host bits must be zero: `10.0.0.5/24` is refused (with the network
 * it probably meant) rather than silently widened, since a filter that mirrors 255 hosts more than
 * intended is a privacy problem, not a typo. IPv6 is rewritten to RFC 5952 text.
 */
export const Cidr = z
  .string(typeError("a CIDR such as 10.0.0.0/24"))
  .superRefine((s, ctx) => {
    const cidr = parseCidr(s);
    if (!cidr) {
      ctx.addIssue({
        code: "custom",
        message: `${JSON.stringify(s)} must be a CIDR: an IPv4 or IPv6 address, '/', and a prefix length (0-32 or 0-128)`,
      });
    } else if (cidrHasHostBits(cidr)) {
      ctx.addIssue({
        code: "custom",
        message: `${JSON.stringify(s)} has host bits set beyond /${cidr.prefix}; did you mean ${formatCidr(cidrNetwork(cidr))}?`,
      });
    }
  })
  .overwrite((s) => {
    const cidr = parseCidr(s);
    return cidr ? formatCidr(cidr) : s;
  })
  .meta({ description: "CIDR with host bits zero, e.g. 10.0.0.0/24 or 2001:db8::/32." });

const portNumber = intIn(0, PORT_MAX, "ports are 16 bits");

export const PortRange = z.strictObject({ from: portNumber, to: portNumber }).superRefine((r, ctx) => {
  if (r.from > r.to) ctx.addIssue({ code: "custom", path: ["to"], message: `must be ≥ from (${r.from})` });
});

export const PortMatch = z.union([portNumber, PortRange], {
  error: 'must be a port number 0..65535 or a range {"from", "to"}',
});
export type PortMatch = z.infer<typeof PortMatch>;

/**
 * A packet is kept when it matches every list given: its protocol is one of `protocols`, its source
 * or destination address is in one of `cidrs`, its source or destination port matches one of
 * `ports`. The capture exporter applies it after decapsulation.
 */
export const MirrorFilter = z
  .strictObject({
    protocols: list(
      z.enum(FILTER_PROTOCOLS, { error: `must be one of ${FILTER_PROTOCOLS.join(", ")}` }),
      "protocols",
      FILTER_PROTOCOLS.length,
    )
      .superRefine(uniqueItems("protocols"))
      .optional(),
    cidrs: list(Cidr, "CIDRs", FILTER_CIDRS_MAX).superRefine(uniqueItems("CIDRs")).optional(),
    ports: list(PortMatch, "ports", FILTER_PORTS_MAX).optional(),
  })
  .superRefine((f, ctx) => {
    if (f.protocols === undefined && f.cidrs === undefined && f.ports === undefined) {
      ctx.addIssue({
        code: "custom",
        message: "must give protocols, cidrs or ports; leave filter out to mirror everything",
      });
    }
    if (
      f.ports !== undefined &&
      f.protocols !== undefined &&
      !f.protocols.some((p) => PORTED_PROTOCOLS.includes(p))
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["ports"],
        message: "need tcp, udp or sctp among protocols: only those carry ports",
      });
    }
  });
export type MirrorFilter = z.infer<typeof MirrorFilter>;

// ---------------------------------------------------------------------------------------------
// The spec

/**
 * `ingress`: towards the pod/port (OVN `to-lport`, OVS `select_dst_port`); `egress`: from it (OVN
 * `from-lport`, OVS `select_src_port`); `both`.
 */
export const Direction = z.enum(["ingress", "egress", "both"], {
  error: 'must be "ingress", "egress" or "both"',
});
export type Direction = z.infer<typeof Direction>;

export const Snaplen = intIn(SNAPLEN_MIN, SNAPLEN_MAX, "OVS Mirror.snaplen takes 14..65535");
export const TtlSeconds = intIn(TTL_MIN_SECONDS, TTL_MAX_SECONDS, "a mirror lives 1 minute to 7 days").meta({
  description: "Seconds until the mirror expires; 3600 when omitted.",
});

const specObject = z.strictObject({
  name: MirrorName,
  namespace: Namespace,
  sources: MirrorSource,
  direction: Direction,
  target: MirrorTarget,
  filter: MirrorFilter.optional(),
  /** Bytes kept of each frame; whole frames when absent. */
  snaplen: Snaplen.optional(),
  ttlSeconds: TtlSeconds.optional(),
  labels: Labels.optional(),
});

type SpecShape = z.infer<typeof specObject>;

/** Cross-field rules; each issue names the field to change. */
function checkCombination(spec: SpecShape, ctx: z.RefinementCtx<SpecShape>): void {
  const { sources, target } = spec;
  // Refinements also run when a nested field already failed; only judge what parsed.
  if (!sources?.type || !target?.type) return;
  const allowed: readonly TargetType[] = TARGETS_FOR_SOURCE[sources.type];
  if (!allowed.includes(target.type)) {
    ctx.addIssue({
      code: "custom",
      path: ["target", "type"],
      message: `cannot be ${target.type} with ${sources.type} sources: ${target.type} outputs on an OVS bridge and needs an ovs source (${sources.type} sources take ${allowed.join(", ")})`,
    });
    return;
  }
  if (target.type === "erspan" && target.version === 2 && sources.type !== "ovs") {
    ctx.addIssue({
      code: "custom",
      path: ["target", "version"],
      message:
        "must be 1 with pods, selector or ports sources: OVN mirrors emit ERSPAN type II only (ovn-controller sets erspan_ver=1); type III needs an ovs source",
    });
  }
  if ((target.type === "gre" || target.type === "erspan") && target.receiver !== undefined) {
    if (sources.type !== "ovs") {
      ctx.addIssue({
        code: "custom",
        path: ["target", "receiver"],
        message: `needs an ovs source: the receiving link is made by the node agent that applies the mirror, and ${sources.type} sources are applied in OVN; make the link by hand or use a collector target`,
      });
    } else if (typeof target.sink !== "string") {
      ctx.addIssue({
        code: "custom",
        path: ["target", "receiver"],
        message:
          "needs the sink as an IP address: the receiving link's local address is the sink (a pod sink is resolved by the Kubernetes integration)",
      });
    }
  }
  if (sources.type !== "ovs") return;
  if (target.type === "ovsPort" || target.type === "ovsVlan") {
    if (target.node !== sources.node) {
      ctx.addIssue({
        code: "custom",
        path: ["target", "node"],
        message: `must equal sources.node (${sources.node}): an OVS mirror outputs on its own node`,
      });
    }
    if (target.bridge !== sources.bridge) {
      ctx.addIssue({
        code: "custom",
        path: ["target", "bridge"],
        message: `must equal sources.bridge (${sources.bridge}): an OVS Mirror row belongs to one bridge and outputs there`,
      });
    }
  }
  if (target.type === "ovsPort" && sources.ports?.includes(target.port)) {
    ctx.addIssue({
      code: "custom",
      path: ["target", "port"],
      message:
        "must not be one of sources.ports: OVS dedicates the output port to mirroring and drops its normal traffic (vswitch.xml, Mirror output_port)",
    });
  }
  if (target.type === "ovsVlan" && sources.vlans?.includes(target.vlan)) {
    ctx.addIssue({
      code: "custom",
      path: ["target", "vlan"],
      message: "must not be one of sources.vlans: mirroring a VLAN onto itself loops",
    });
  }
  if (sources.ports === undefined && spec.direction !== "both") {
    // With no ports the agent selects with select_all plus select_vlan, which has no direction.
    ctx.addIssue({
      code: "custom",
      path: ["direction"],
      message: "must be both when an ovs source gives only vlans: VLAN selection has no direction",
    });
  }
}

export const MirrorSpec = specObject.superRefine(checkCombination);
export type MirrorSpec = z.infer<typeof MirrorSpec>;
