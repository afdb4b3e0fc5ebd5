/**
 * Every numeric limit of the wire contract, with the place it comes from.
 *
 * Limits that come from OVN, OVS or the kernel are not ours to change; limits marked
 * "ovntap" are our own choices and may be raised in a later contract version.
 */

/** GRE key: 32-bit Key field (RFC 2890 §2.1); OVN `Mirror.index` is written as the tunnel `options:key`. */
export const GRE_KEY_MAX = 0xffff_ffff;

/**
 * ERSPAN session id: 10 bits (draft-foschiano-erspan §4.1, "Session ID"). OVN writes the mirror
 * index as both `options:key` and `options:erspan_idx` (ovn-controller `controller/mirror.c`),
 * so an OVN ERSPAN mirror's key is also bounded by this.
 */
export const ERSPAN_SESSION_MAX = 1023;

/** 802.1Q VLAN id is 12 bits; OVS `Mirror.select_vlan` takes 0..4095 (vswitch.ovsschema). */
export const VLAN_MIN = 0;
export const VLAN_MAX = 4095;

/**
 * OVS `Mirror.output_vlan` takes 1..4095 (vswitch.ovsschema `minInteger: 1`): VLAN 0 is the
 * priority tag, not a VLAN a mirror can flood.
 */
export const OUTPUT_VLAN_MIN = 1;

/** OVS `Mirror.snaplen` takes 14..65535 (vswitch.ovsschema); 14 keeps the Ethernet header. */
export const SNAPLEN_MIN = 14;
export const SNAPLEN_MAX = 65535;

/**
 * OVS keeps a bridge's mirrors in a 32-bit mask (ofproto/ofproto-dpif-mirror.h `MAX_MIRRORS 32`,
 * `mirror_mask_t` is `uint32_t`). The 32 slots are shared with the mirrors ovn-controller creates
 * on br-int, so the node agent must count every Mirror row on the bridge, not just ours.
 */
export const MAX_MIRRORS_PER_BRIDGE = 32;

/** TCP/UDP/SCTP port numbers are 16 bits. */
export const PORT_MAX = 65535;

/**
 * Bytes the encapsulation adds to a mirrored frame, by transport family. The sink path MTU must
 * exceed the mirrored port's MTU by this much, because OVS sets DF on tunnel packets.
 *
 * Each figure is: the inner Ethernet header (14, since gretap/erspan carry the whole L2 frame while
 * the port MTU counts only L3) + the outer IP header (IPv4 20, IPv6 40) + GRE (8: base 4 + key 4,
 * or base 4 + sequence 4 for ERSPAN) + the ERSPAN header (type II 8, type III 12 without the
 * optional platform sub-header). An inner 802.1Q tag adds 4 more.
 */
export const ENCAP_OVERHEAD = {
  gre: { ipv4: 42, ipv6: 62 },
  erspan2: { ipv4: 50, ipv6: 70 },
  erspan3: { ipv4: 54, ipv6: 74 },
} as const satisfies Record<string, { ipv4: number; ipv6: number }>;

export type Encapsulation = keyof typeof ENCAP_OVERHEAD;

/** Time to live of a mirror (ovntap): at least a minute, at most a week; one hour when omitted. */
export const TTL_MIN_SECONDS = 60;
export const TTL_MAX_SECONDS = 7 * 24 * 60 * 60;
export const TTL_DEFAULT_SECONDS = 60 * 60;

/** RFC 1123 §2.1 label (≤63) and subdomain (≤253), as Kubernetes validates names and namespaces. */
export const DNS1123_LABEL_MAX = 63;
export const DNS1123_SUBDOMAIN_MAX = 253;

/** Kubernetes label rules (apimachinery `IsQualifiedName`, `IsValidLabelValue`). */
export const LABEL_NAME_MAX = 63;
export const LABEL_PREFIX_MAX = 253;
export const LABEL_VALUE_MAX = 63;
/** ovntap: labels on a mirror. */
export const LABELS_MAX = 64;

/**
 * Linux interface names are at most 15 bytes (include/uapi/linux/if.h `IFNAMSIZ` 16 with the NUL);
 * an OVS bridge is also a netdev of the same name.
 */
export const IFNAME_MAX = 15;

/** A named network namespace is a file under /run/netns: NAME_MAX (255) bytes. */
export const NETNS_NAME_MAX = 255;

/**
 * ovntap: OVS port and OVN logical switch port names. Neither schema bounds them (patch ports and
 * Kube-OVN's `<pod>.<namespace>` ports exceed IFNAMSIZ), so this only stops absurd input.
 */
export const PORT_NAME_MAX = 255;

/** ovntap: items in one source list (pods, logical ports, OVS ports). */
export const SOURCE_ITEMS_MAX = 256;
/** ovntap: label selector expressions and values per expression. */
export const SELECTOR_EXPRESSIONS_MAX = 32;
export const SELECTOR_VALUES_MAX = 64;
/** ovntap: filter list sizes (the exporter compiles them into one BPF program). */
export const FILTER_CIDRS_MAX = 64;
export const FILTER_PORTS_MAX = 64;

/** ovntap: request ids (UUIDs and ULIDs fit) and principals. */
export const REQUEST_ID_MAX = 128;
export const PRINCIPAL_MAX = 256;
/** ovntap: free-text reasons and messages in status and events. */
export const MESSAGE_MAX = 4096;

/** ovntap: flows per flow-summary message; ~200 bytes of JSON each stays under NATS's 1 MiB default max_payload. */
export const FLOWS_PER_MESSAGE_MAX = 4096;

/** Inclusive upper bound of a nanosecond timestamp carried as a decimal string (an unsigned 64-bit integer). */
export const TIMESTAMP_NS_MAX = 18_446_744_073_709_551_615n;
