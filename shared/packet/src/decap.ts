/**
 * Unwrap one mirrored packet captured on the transport interface: outer Ethernet (with any VLAN
 * tags), outer IPv4 or IPv6, GRE, and — for ERSPAN — the ERSPAN header, down to the mirrored frame.
 *
 *     const d = decapsulate(frame);
 *     if (!d.ok) stats.decapErrors[d.reason]++;
 *     else publish(mirrorByKey.get(d.tunnelId), d.inner, d.innerLinkType, d.innerLength);
 *
 * `inner` is a view into `frame`: copy it before the capture library reuses its buffer.
 */
import { asBuffer } from "./bytes.js";
import {
  decodeEthernet,
  ETHERTYPE_ERSPAN2,
  ETHERTYPE_ERSPAN3,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_TEB,
} from "./ethernet.js";
import type { Ethernet } from "./ethernet.js";
import { decodeErspan2, decodeErspan3, decodeGre, GRE_SEQUENCE_PRESENT } from "./gre.js";
import type { Erspan2, Erspan3, Gre } from "./gre.js";
import { decodeIpv4, decodeIpv6, IPPROTO_GRE, IPV6_HEADER_LENGTH } from "./ip.js";
import type { Ip } from "./ip.js";
import { fail } from "./result.js";
import type { DecodeFailure } from "./result.js";

/** LINKTYPE_ETHERNET (draft-ietf-opsawg-pcaplinktype, linktypes.csv). */
export const LINKTYPE_ETHERNET = 1;
/** LINKTYPE_RAW: "IP without link-layer headers" — IPv4 or IPv6 by the version nibble. */
export const LINKTYPE_RAW = 101;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;

/** What a decapsulated payload starts with: an Ethernet header, or an IP header (GRE 0x0800/0x86DD, ERSPAN frame type 2). */
export type InnerLinkType = typeof LINKTYPE_ETHERNET | typeof LINKTYPE_RAW;

export interface Outer {
  readonly family: 4 | 6;
  /** Views of 4 or 16 octets: the tunnel's local (sender) and remote (sink) addresses. */
  readonly src: Buffer;
  readonly dst: Buffer;
  /** TTL / hop limit. */
  readonly ttl: number;
  /** TOS octet / traffic class. */
  readonly tos: number;
  /** IPv4 DF (OVS sets it on tunnels by default); false for IPv6. */
  readonly dontFragment: boolean;
  /** VLAN id of the outermost tag on the transport frame, if tagged; `undefined` for a raw-IP capture. */
  readonly vlan: number | undefined;
  /** The transport frame's MAC addresses (views); `undefined` for a raw-IP capture. */
  readonly srcMac: Buffer | undefined;
  readonly dstMac: Buffer | undefined;
}

/** The transport headers, with their address views made only when read. */
class OuterHeaders implements Outer {
  readonly family: 4 | 6;
  readonly ttl: number;
  readonly tos: number;
  readonly dontFragment: boolean;
  readonly vlan: number | undefined;
  readonly #ip: Ip;
  readonly #eth: Ethernet | undefined;
  constructor(ip: Ip, eth: Ethernet | undefined) {
    this.#ip = ip;
    this.#eth = eth;
    this.family = ip.version;
    this.ttl = ip.ttl;
    this.tos = ip.tos;
    this.dontFragment = ip.version === 4 && ip.dontFragment;
    this.vlan = eth?.vlans[0]?.vid;
  }
  get src(): Buffer {
    return this.#ip.src;
  }
  get dst(): Buffer {
    return this.#ip.dst;
  }
  get srcMac(): Buffer | undefined {
    return this.#eth?.src;
  }
  get dstMac(): Buffer | undefined {
    return this.#eth?.dst;
  }
}

interface DecapsulatedBase {
  readonly ok: true;
  readonly outer: Outer;
  readonly gre: Gre;
  /** GRE sequence number (OVS ERSPAN always sends one). */
  readonly seq: number | undefined;
  /**
   * What the mirror is keyed by — the GRE key for `gre`, the session id for ERSPAN — as OVS keys
   * both as `tun_id` (lib/netdev-native-tnl.c `netdev_erspan_pop_header`). `undefined` for GRE
   * without K.
   */
  readonly tunnelId: number | undefined;
  /** The mirrored packet: a view of `frame`, possibly cut short by the capture snaplen. */
  readonly inner: Buffer;
  readonly innerLinkType: InnerLinkType;
  /** Where `inner` starts in `frame`. */
  readonly innerOffset: number;
  /** The mirrored packet's length on the wire, from the outer IP length (≥ `inner.length`): a pcap record's orig_len. */
  readonly innerLength: number;
}

export interface GreDecapsulated extends DecapsulatedBase {
  readonly kind: "gre";
  readonly key: number | undefined;
}

export interface Erspan2Decapsulated extends DecapsulatedBase {
  readonly kind: "erspan2";
  readonly sessionId: number;
  readonly erspan: Erspan2;
}

export interface Erspan3Decapsulated extends DecapsulatedBase {
  readonly kind: "erspan3";
  readonly sessionId: number;
  readonly erspan: Erspan3;
}

export type Decapsulated = GreDecapsulated | Erspan2Decapsulated | Erspan3Decapsulated;

/**
 * Decapsulate a GRE / ERSPAN II / ERSPAN III packet. `linkType` is that of the capture:
 * LINKTYPE_ETHERNET (the transport interface, default) or LINKTYPE_RAW / IPV4 / IPV6.
 */
export function decapsulate(
  frame: Uint8Array,
  linkType: number = LINKTYPE_ETHERNET,
): Decapsulated | DecodeFailure {
  const b = asBuffer(frame);
  let eth: Ethernet | undefined;
  let l3 = 0;
  if (linkType === LINKTYPE_ETHERNET) {
    const e = decodeEthernet(b, 0);
    if (!e.ok) return e;
    if (e.etherType !== ETHERTYPE_IPV4 && e.etherType !== ETHERTYPE_IPV6)
      return fail("not-ip", "ethernet", e.headerLength - 2);
    eth = e;
    l3 = e.headerLength;
  } else if (linkType !== LINKTYPE_RAW && linkType !== LINKTYPE_IPV4 && linkType !== LINKTYPE_IPV6) {
    return fail("unsupported-protocol", "ethernet", 0);
  }

  const ip: Ip | DecodeFailure =
    eth?.etherType === ETHERTYPE_IPV6 || (eth === undefined && b.length > 0 && b[0]! >>> 4 === 6)
      ? decodeIpv6(b, l3)
      : decodeIpv4(b, l3);
  if (!ip.ok) return ip;
  if (ip.protocol !== IPPROTO_GRE)
    return fail("not-gre", ip.version === 4 ? "ipv4" : "ipv6", ip.offset + (ip.version === 4 ? 9 : 6));
  // A fragment's payload is not a whole GRE packet; OVS sets DF, so fragments are someone else's.
  if (ip.fragment !== undefined) return fail("fragment", ip.version === 4 ? "ipv4" : "ipv6", ip.offset);

  // GRE and ERSPAN read no further than the IP packet ends (`ip.end`), so Ethernet padding past the
  // IP length is never taken for data; offsets (and failures' `at`) stay relative to `frame`.
  const greAt = ip.offset + ip.headerLength;
  const gre = decodeGre(b, greAt, ip.end);
  if (!gre.ok) return gre;
  // The mirrored packet's wire length, from the outer length field (0 payload length: jumbogram, take what is there).
  const ipEnd =
    ip.version === 4
      ? ip.offset + ip.totalLength
      : ip.payloadLength === 0
        ? b.length
        : ip.offset + IPV6_HEADER_LENGTH + ip.payloadLength;

  const outer: Outer = new OuterHeaders(ip, eth);

  switch (gre.protocol) {
    case ETHERTYPE_TEB:
    case ETHERTYPE_IPV4:
    case ETHERTYPE_IPV6: {
      const innerOffset = greAt + gre.headerLength;
      return {
        ok: true,
        kind: "gre",
        key: gre.key,
        tunnelId: gre.key,
        seq: gre.seq,
        outer,
        gre,
        inner: b.subarray(innerOffset, ip.end),
        innerLinkType: gre.protocol === ETHERTYPE_TEB ? LINKTYPE_ETHERNET : LINKTYPE_RAW,
        innerOffset,
        innerLength: ipEnd - innerOffset,
      };
    }
    case ETHERTYPE_ERSPAN2: {
      // Wireshark packet-erspan.c `dissect_erspan_88BE`: 0x88BE without S is type I, which has no
      // ERSPAN header at all; OVS and Linux only send type II (S set), so type I is not unwrapped.
      if ((gre.flags & GRE_SEQUENCE_PRESENT) === 0) return fail("unsupported-protocol", "erspan", greAt);
      const erspanAt = greAt + gre.headerLength;
      const erspan = decodeErspan2(b, erspanAt, ip.end);
      if (!erspan.ok) return erspan;
      const innerOffset = erspanAt + erspan.headerLength;
      return {
        ok: true,
        kind: "erspan2",
        sessionId: erspan.sessionId,
        tunnelId: erspan.sessionId,
        seq: gre.seq,
        outer,
        gre,
        erspan,
        inner: b.subarray(innerOffset, ip.end),
        innerLinkType: LINKTYPE_ETHERNET,
        innerOffset,
        innerLength: ipEnd - innerOffset,
      };
    }
    case ETHERTYPE_ERSPAN3: {
      const erspanAt = greAt + gre.headerLength;
      const erspan = decodeErspan3(b, erspanAt, ip.end);
      if (!erspan.ok) return erspan;
      // Frame type 0 is Ethernet, 2 is IP (Wireshark packet-erspan.c `erspan_ft_vals`).
      if (erspan.frameType !== 0 && erspan.frameType !== 2)
        return fail("unsupported-protocol", "erspan", erspanAt + 10);
      const innerOffset = erspanAt + erspan.headerLength;
      return {
        ok: true,
        kind: "erspan3",
        sessionId: erspan.sessionId,
        tunnelId: erspan.sessionId,
        seq: gre.seq,
        outer,
        gre,
        erspan,
        inner: b.subarray(innerOffset, ip.end),
        innerLinkType: erspan.frameType === 0 ? LINKTYPE_ETHERNET : LINKTYPE_RAW,
        innerOffset,
        innerLength: ipEnd - innerOffset,
      };
    }
    default:
      return fail("unsupported-protocol", "gre", greAt + 2);
  }
}
