/**
 * Ethernet II with IEEE 802.1Q / 802.1ad tags, and ARP.
 *
 *     const eth = decodeEthernet(frame);
 *     if (eth.ok && eth.etherType === ETHERTYPE_IPV4) decodeIpv4(frame, eth.headerLength);
 */
import { asBuffer, u16 } from "./bytes.js";
import { fail } from "./result.js";
import type { DecodeFailure } from "./result.js";

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
/** IEEE 802.1Q customer tag. */
export const ETHERTYPE_VLAN = 0x8100;
/** IEEE 802.1ad service tag (QinQ outer tag). */
export const ETHERTYPE_QINQ = 0x88a8;
/** The pre-802.1ad QinQ TPID some switches still send. */
export const ETHERTYPE_QINQ_LEGACY = 0x9100;
/** Transparent Ethernet Bridging: what GRE carries for OVS `gre` ports and Linux gretap. */
export const ETHERTYPE_TEB = 0x6558;
/** ERSPAN types I and II (draft-foschiano-erspan-03; Linux include/net/erspan.h). */
export const ETHERTYPE_ERSPAN2 = 0x88be;
/** ERSPAN type III (draft-foschiano-erspan-03; Linux include/net/erspan.h). */
export const ETHERTYPE_ERSPAN3 = 0x22eb;

/** Destination, source, EtherType (IEEE 802.3 clause 3.2). */
export const ETHERNET_HEADER_LENGTH = 14;
/** A frame may carry at most this many stacked tags before `vlan-limit`; QinQ uses two. */
export const MAX_VLAN_TAGS = 4;

export interface VlanTag {
  /** The TPID that introduced the tag: 0x8100, 0x88A8 or 0x9100. */
  readonly tpid: number;
  /** Priority code point (3 bits). */
  readonly pcp: number;
  /** Drop eligible indicator (1 bit). */
  readonly dei: number;
  /** VLAN identifier (12 bits). */
  readonly vid: number;
}

export interface Ethernet {
  readonly ok: true;
  /** Where the header starts in the caller's buffer. */
  readonly offset: number;
  /** Views into the frame (made when read: a decoder result costs no view it is not asked for). */
  readonly dst: Buffer;
  readonly src: Buffer;
  /** Tags outermost first; a shared empty array when untagged. */
  readonly vlans: readonly VlanTag[];
  /** The EtherType after the tags; below 0x0600 it is an IEEE 802.3 length, not a type. */
  readonly etherType: number;
  /** Bytes from `offset` to the payload: 14 plus 4 per tag. */
  readonly headerLength: number;
  readonly payload: Buffer;
}

const NO_TAGS: readonly VlanTag[] = Object.freeze([]);

function isTagTpid(t: number): boolean {
  return t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ || t === ETHERTYPE_QINQ_LEGACY;
}

class EthernetHeader implements Ethernet {
  readonly ok = true as const;
  readonly #b: Buffer;
  constructor(
    b: Buffer,
    readonly offset: number,
    readonly vlans: readonly VlanTag[],
    readonly etherType: number,
    readonly headerLength: number,
  ) {
    this.#b = b;
  }
  get dst(): Buffer {
    return this.#b.subarray(this.offset, this.offset + 6);
  }
  get src(): Buffer {
    return this.#b.subarray(this.offset + 6, this.offset + 12);
  }
  get payload(): Buffer {
    return this.#b.subarray(this.offset + this.headerLength);
  }
}

/** Decode an Ethernet II header (and its VLAN tags) at `offset`. */
export function decodeEthernet(frame: Uint8Array, offset = 0): Ethernet | DecodeFailure {
  const b = asBuffer(frame);
  if (b.length - offset < ETHERNET_HEADER_LENGTH) return fail("truncated", "ethernet", offset);
  let at = offset + 12;
  let etherType = u16(b, at);
  let vlans = NO_TAGS;
  // 802.1Q-2018 §9.6: a tag is TPID (2 octets) + TCI (PCP 3 bits, DEI 1 bit, VID 12 bits).
  while (isTagTpid(etherType)) {
    if (vlans.length === MAX_VLAN_TAGS) return fail("vlan-limit", "vlan", at);
    if (b.length - at < 6) return fail("truncated", "vlan", at);
    const tci = u16(b, at + 2);
    const tag: VlanTag = { tpid: etherType, pcp: tci >>> 13, dei: (tci >>> 12) & 1, vid: tci & 0x0fff };
    vlans = vlans === NO_TAGS ? [tag] : [...vlans, tag];
    at += 4;
    etherType = u16(b, at);
  }
  return new EthernetHeader(b, offset, vlans, etherType, at + 2 - offset);
}

export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;

export interface Arp {
  readonly ok: true;
  /** Hardware type (1 = Ethernet) and protocol type (0x0800 = IPv4), RFC 826. */
  readonly htype: number;
  readonly ptype: number;
  readonly op: number;
  /** Views of `hlen` / `plen` octets. */
  readonly senderHardware: Buffer;
  readonly senderProtocol: Buffer;
  readonly targetHardware: Buffer;
  readonly targetProtocol: Buffer;
  /** 8 + 2 × (hlen + plen). */
  readonly length: number;
}

/** RFC 826 packet format: htype, ptype, hlen, plen, op, then sender/target hardware and protocol addresses. */
export function decodeArp(frame: Uint8Array, offset = 0): Arp | DecodeFailure {
  const b = asBuffer(frame);
  if (b.length - offset < 8) return fail("truncated", "arp", offset);
  const hlen = b[offset + 4]!;
  const plen = b[offset + 5]!;
  const length = 8 + 2 * (hlen + plen);
  if (b.length - offset < length) return fail("truncated", "arp", offset);
  let at = offset + 8;
  const view = (n: number): Buffer => {
    const v = b.subarray(at, at + n);
    at += n;
    return v;
  };
  return {
    ok: true,
    htype: u16(b, offset),
    ptype: u16(b, offset + 2),
    op: u16(b, offset + 6),
    senderHardware: view(hlen),
    senderProtocol: view(plen),
    targetHardware: view(hlen),
    targetProtocol: view(plen),
    length,
  };
}
