/**
 * A mirror's `spec.filter` (protocols, CIDRs, ports), compiled once into lookups the hot path runs
 * against an `InnerParser`. A frame is kept when it matches every list the filter gives (contracts
 * `MirrorFilter`): its protocol is listed, its source or destination address is in a listed CIDR,
 * its source or destination port matches a listed port or range.
 *
 *     const f = compileFilter({ protocols: ["tcp"], ports: [443] });
 *     inner.parse(buf, start, end, linkType);
 *     if (!f.matches(inner, buf)) filtered++;
 *
 * Choices where the contract leaves room: ARP counts as protocol `arp` and its sender and target
 * protocol addresses as source and destination for `cidrs`; a frame without addresses (not IP, not
 * ARP) never matches `cidrs`, one without ports (ICMP, a later fragment) never matches `ports`;
 * `ah` matches IPv4 protocol 51 and IPv6 packets that carry an AH extension header.
 */
import type { MirrorFilter } from "@ovntap/contracts";
import { parseIp } from "@ovntap/packet";
import { L3_ARP, L3_IPV4, L3_IPV6, NO_PORT } from "./inner.js";
import type { InnerParser } from "./inner.js";

/** IANA protocol numbers of the filter's protocol names (arp is no IP protocol: handled apart). */
const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  tcp: 6,
  udp: 17,
  sctp: 132,
  icmp: 1,
  icmpv6: 58,
  igmp: 2,
  gre: 47,
  esp: 50,
  ah: 51,
};

interface Cidr6 {
  readonly bytes: Buffer;
  readonly prefix: number;
}

export class CompiledFilter {
  readonly #protocols: Uint8Array | undefined;
  readonly #arp: boolean;
  readonly #ah: boolean;
  readonly #nets4: Uint32Array;
  readonly #masks4: Uint32Array;
  readonly #nets6: readonly Cidr6[];
  readonly #cidrs: boolean;
  /** Pairs [from, to]. */
  readonly #ports: Int32Array | undefined;

  constructor(filter: MirrorFilter) {
    if (filter.protocols !== undefined) {
      this.#protocols = new Uint8Array(256);
      for (const p of filter.protocols) {
        const n = PROTOCOL_NUMBERS[p];
        if (n !== undefined) this.#protocols[n] = 1;
      }
    }
    this.#arp = filter.protocols?.includes("arp") ?? false;
    this.#ah = filter.protocols?.includes("ah") ?? false;
    const nets4: number[] = [];
    const masks4: number[] = [];
    const nets6: Cidr6[] = [];
    for (const text of filter.cidrs ?? []) {
      const slash = text.indexOf("/");
      const addr = parseIp(text.slice(0, slash));
      const prefix = Number(text.slice(slash + 1));
      if (addr === undefined || !Number.isInteger(prefix)) {
        throw new TypeError(`filter.cidrs: ${JSON.stringify(text)} is not a CIDR`);
      }
      if (addr.length === 4) {
        const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
        nets4.push((addr.readUInt32BE(0) & mask) >>> 0);
        masks4.push(mask);
      } else {
        nets6.push({ bytes: addr, prefix });
      }
    }
    this.#nets4 = Uint32Array.from(nets4);
    this.#masks4 = Uint32Array.from(masks4);
    this.#nets6 = nets6;
    this.#cidrs = filter.cidrs !== undefined;
    if (filter.ports !== undefined) {
      const ranges: number[] = [];
      for (const p of filter.ports) {
        if (typeof p === "number") ranges.push(p, p);
        else ranges.push(p.from, p.to);
      }
      this.#ports = Int32Array.from(ranges);
    }
  }

  /** Whether the frame `inner` was parsed from (`b`) passes the filter. */
  matches(inner: InnerParser, b: Buffer): boolean {
    const l3 = inner.l3;
    if (this.#protocols !== undefined) {
      if (l3 === L3_ARP) {
        if (!this.#arp) return false;
      } else if (l3 === L3_IPV4 || l3 === L3_IPV6) {
        const hit = this.#protocols[inner.protocol] === 1 || (this.#ah && inner.sawAh);
        if (!hit) return false;
      } else {
        return false;
      }
    }
    if (this.#cidrs) {
      if (l3 === L3_IPV4 || l3 === L3_ARP) {
        if (!this.#in4(inner.src4) && !this.#in4(inner.dst4)) return false;
      } else if (l3 === L3_IPV6) {
        if (!this.#in6(b, inner.src6) && !this.#in6(b, inner.dst6)) return false;
      } else {
        return false;
      }
    }
    const ports = this.#ports;
    if (ports !== undefined) {
      const s = inner.srcPort;
      const d = inner.dstPort;
      if (s === NO_PORT) return false;
      let hit = false;
      for (let i = 0; i < ports.length; i += 2) {
        const from = ports[i]!;
        const to = ports[i + 1]!;
        if ((s >= from && s <= to) || (d >= from && d <= to)) {
          hit = true;
          break;
        }
      }
      if (!hit) return false;
    }
    return true;
  }

  #in4(addr: number): boolean {
    const nets = this.#nets4;
    const masks = this.#masks4;
    for (let i = 0; i < nets.length; i++) if ((addr & masks[i]!) >>> 0 === nets[i]) return true;
    return false;
  }

  #in6(b: Buffer, at: number): boolean {
    for (const net of this.#nets6) {
      let bits = net.prefix;
      let i = 0;
      let ok = true;
      for (; bits >= 8; bits -= 8, i++) {
        if (b[at + i] !== net.bytes[i]) {
          ok = false;
          break;
        }
      }
      if (ok && bits > 0) {
        const mask = (0xff << (8 - bits)) & 0xff;
        ok = (b[at + i]! & mask) === (net.bytes[i]! & mask);
      }
      if (ok) return true;
    }
    return false;
  }
}

export function compileFilter(filter: MirrorFilter): CompiledFilter {
  return new CompiledFilter(filter);
}
