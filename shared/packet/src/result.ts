/**
 * What every decoder returns: the decoded value with `ok: true`, or a typed reason with the offset
 * where decoding stopped. Decoders never throw on bad input; `at` counts from the start of the
 * buffer handed to the decoder that failed (the outermost call for `decapsulate`/`decodeFrame`).
 *
 *     const r = decodeIpv4(buf, 14);
 *     if (!r.ok) stats.bad[r.reason]++; else use(r.src, r.dst);
 */

/** Why a decoder gave up. */
export type DecodeReason =
  /** The bytes end before a header (or a field a length says is there) ends. */
  | "truncated"
  /** A version field is wrong: IP version nibble, GRE version ≠ 0, ERSPAN version ≠ 1 (0x88BE) / 2 (0x22EB), pcap/pcapng major version. */
  | "bad-version"
  /** A header-length field is impossible: IPv4 IHL < 5, total length < header, TCP data offset < 5, UDP length < 8. */
  | "bad-header-length"
  /** GRE bits 1, 4 or 5 set (RFC 2784 §2.3: routing / strict route / recursion; a receiver MUST discard). */
  | "bad-flags"
  /** The outer frame's EtherType is neither IPv4 nor IPv6. */
  | "not-ip"
  /** The outer IP packet does not carry GRE (IP protocol 47). */
  | "not-gre"
  /** A protocol this decoder does not unwrap (GRE protocol type, ERSPAN type I, ERSPAN frame type, link type). */
  | "unsupported-protocol"
  /** The outer IP packet is a fragment; tunnels are decapsulated only from whole packets. */
  | "fragment"
  /** More stacked VLAN tags than MAX_VLAN_TAGS. */
  | "vlan-limit"
  /** More IPv6 extension headers than MAX_IPV6_EXTENSION_HEADERS (RFC 8200 §4.1 allows each at most once or twice). */
  | "ext-header-limit"
  /** An IPv6 extension header out of place: Hop-by-Hop not directly after the IPv6 header (RFC 8200 §4.3). */
  | "bad-ext-header"
  /** pcap magic or pcapng Section Header Block byte-order magic not recognised. */
  | "bad-magic"
  /** A pcapng block whose length is not a multiple of 4, under 12, over the limit, or whose trailer differs. */
  | "bad-block"
  /** A pcap record or pcapng packet longer than the reader accepts. */
  | "bad-record"
  /** A pcapng packet block names an interface that no Interface Description Block defined. */
  | "unknown-interface";

/** The protocol layer a decoder was reading when it failed. */
export type Layer =
  | "ethernet"
  | "vlan"
  | "arp"
  | "ipv4"
  | "ipv6"
  | "tcp"
  | "udp"
  | "icmp"
  | "icmpv6"
  | "gre"
  | "erspan"
  | "pcap"
  | "pcapng";

export interface DecodeFailure {
  readonly ok: false;
  readonly reason: DecodeReason;
  readonly layer: Layer;
  /** Byte offset (from the start of the caller's buffer) of the header or field that failed. */
  readonly at: number;
}

export function fail(reason: DecodeReason, layer: Layer, at: number): DecodeFailure {
  return { ok: false, reason, layer, at };
}
