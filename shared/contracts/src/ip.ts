/**
 * IP literals and CIDRs: parsing, canonical text, and the address classes a mirror sink must not be.
 *
 * Hand-written rather than `node:net` so the contracts run anywhere zod runs, and so that the
 * canonical form is ours: keys are allocated per sink (DESIGN.md), which only works if
 * `2001:DB8::1` and `2001:db8:0::1` are the same string.
 *
 *     parseIp("2001:DB8:0::1")   // { family: 6, bytes: [...] }
 *     canonicalIp("::ffff:10.0.0.1") // "10.0.0.1"
 *     sinkAddressProblem("fe80::1")  // "is link-local (fe80::/10)…"
 */

export type IpFamily = 4 | 6;

export interface ParsedIp {
  readonly family: IpFamily;
  /** Network byte order: 4 bytes for IPv4, 16 for IPv6. */
  readonly bytes: readonly number[];
}

/** Decimal octet without leading zeros: "010" is rejected because some parsers read it as octal. */
const OCTET = /^(0|[1-9][0-9]{0,2})$/;
const HEXTET = /^[0-9A-Fa-f]{1,4}$/;

export function parseIpv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    bytes.push(n);
  }
  return bytes;
}

/** RFC 4291 §2.2 text forms, including `::` and a trailing dotted quad; no zone ids (`%eth0`). */
export function parseIpv6(text: string): number[] | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = splitGroups(halves[0] ?? "");
  const tail = halves.length === 2 ? splitGroups(halves[1] ?? "") : [];
  if (head === undefined || tail === undefined) return undefined;
  // A dotted quad may only be the very last thing written (not before a trailing "::").
  const last = halves.length === 2 ? tail : head;
  const toWords = (groups: string[]): number[] | undefined => {
    const words: number[] = [];
    for (const [i, g] of groups.entries()) {
      if (g.includes(".")) {
        const v4 = parseIpv4(g);
        if (v4 === undefined || groups !== last || i !== groups.length - 1) return undefined;
        words.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else if (HEXTET.test(g)) {
        words.push(parseInt(g, 16));
      } else {
        return undefined;
      }
    }
    return words;
  };
  const headWords = toWords(head);
  const tailWords = toWords(tail);
  if (headWords === undefined || tailWords === undefined) return undefined;
  const written = headWords.length + tailWords.length;
  let words: number[];
  if (halves.length === 2) {
    // "::" stands for at least one group of zeros (RFC 4291 §2.2 item 2).
    if (written > 7) return undefined;
    words = [...headWords, ...new Array<number>(8 - written).fill(0), ...tailWords];
  } else {
    if (written !== 8) return undefined;
    words = headWords;
  }
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

function splitGroups(part: string): string[] | undefined {
  if (part === "") return [];
  const groups = part.split(":");
  return groups.some((g) => g === "") ? undefined : groups;
}

export function parseIp(text: string): ParsedIp | undefined {
  if (text.includes(":")) {
    const bytes = parseIpv6(text);
    return bytes && { family: 6, bytes };
  }
  const bytes = parseIpv4(text);
  return bytes && { family: 4, bytes };
}

/** `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2): an IPv4 host reached through an IPv6 socket API. */
export function embeddedIpv4(bytes: readonly number[]): number[] | undefined {
  if (bytes.length !== 16) return undefined;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return undefined;
  if (bytes[10] !== 0xff || bytes[11] !== 0xff) return undefined;
  return bytes.slice(12);
}

function formatIpv4(bytes: readonly number[]): string {
  return bytes.join(".");
}

/** RFC 5952 §4: lower case, no leading zeros, the longest run (≥2) of zero groups as `::`, first on a tie. */
function formatIpv6(bytes: readonly number[]): string {
  const mapped = embeddedIpv4(bytes);
  if (mapped) return `::ffff:${formatIpv4(mapped)}`; // RFC 5952 §5
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart === -1) return hex.join(":");
  const left = hex.slice(0, bestStart).join(":");
  const right = hex.slice(bestStart + bestLen).join(":");
  return `${left}::${right}`;
}

export function formatIp(ip: ParsedIp): string {
  return ip.family === 4 ? formatIpv4(ip.bytes) : formatIpv6(ip.bytes);
}

/**
 * Canonical text of an IP literal, or `undefined` when it is not one. An IPv4-mapped IPv6 address
 * becomes the plain IPv4 address: it names the same host, and OVS would otherwise build an ip6gre
 * tunnel (ovn-controller picks `ip6gre`/`ip6erspan` for any sink containing ':') to an address Linux
 * cannot route over IPv6.
 */
export function canonicalIp(text: string): string | undefined {
  const ip = parseIp(text);
  if (!ip) return undefined;
  const v4 = ip.family === 6 ? embeddedIpv4(ip.bytes) : undefined;
  return v4 ? formatIpv4(v4) : formatIp(ip);
}

/** The family a sink is reached over, after unwrapping IPv4-mapped addresses. */
export function transportFamily(text: string): IpFamily | undefined {
  const ip = parseIp(text);
  if (!ip) return undefined;
  return ip.family === 6 && !embeddedIpv4(ip.bytes) ? 6 : 4;
}

function ipv4Problem(b: readonly number[]): string | undefined {
  const [a = 0, c = 0] = b;
  if (b.every((x) => x === 0)) return "is the unspecified address (0.0.0.0)";
  if (a === 0)
    return "is in 0.0.0.0/8, which means 'this network' and is never a destination (RFC 1122 §3.2.1.3)";
  if (a === 127) return "is a loopback address (127.0.0.0/8)";
  if (a === 169 && c === 254) return "is link-local (169.254.0.0/16)";
  if (a >= 224 && a <= 239) return "is multicast (224.0.0.0/4)";
  if (b.every((x) => x === 255)) return "is the limited broadcast address (255.255.255.255)";
  return undefined;
}

function ipv6Problem(b: readonly number[]): string | undefined {
  const [a = 0, c = 0] = b;
  if (b.every((x) => x === 0)) return "is the unspecified address (::)";
  if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1) return "is the loopback address (::1)";
  if (a === 0xff) return "is multicast (ff00::/8)";
  if (a === 0xfe && (c & 0xc0) === 0x80) return "is link-local (fe80::/10)";
  return undefined;
}

/**
 * Why `text` cannot be a mirror sink, or `undefined` if it can. A sink is the remote end of a GRE or
 * ERSPAN tunnel from every chassis that hosts a mirrored port, so it must be a unicast address that
 * is routable from another host. IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
 */
export function sinkAddressProblem(text: string): string | undefined {
  const ip = parseIp(text);
  if (!ip) return "is not an IPv4 or IPv6 address literal";
  if (ip.family === 4) return ipv4Problem(ip.bytes);
  const v4 = embeddedIpv4(ip.bytes);
  if (v4) {
    const p = ipv4Problem(v4);
    return p && `embeds an IPv4 address that ${p}`;
  }
  return ipv6Problem(ip.bytes);
}

export interface ParsedCidr {
  readonly ip: ParsedIp;
  readonly prefix: number;
}

const PREFIX = /^(0|[1-9][0-9]{0,2})$/;

/** `address/prefix`; the prefix is mandatory so a bare host is never mistaken for a network. */
export function parseCidr(text: string): ParsedCidr | undefined {
  const slash = text.indexOf("/");
  if (slash === -1) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !PREFIX.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (ip.family === 4 ? 32 : 128)) return undefined;
  return { ip, prefix };
}

/** True when bits beyond the prefix are set, e.g. `10.0.0.1/24`. */
export function cidrHasHostBits(cidr: ParsedCidr): boolean {
  return cidr.ip.bytes.some((byte, i) => {
    const keep = Math.max(0, Math.min(8, cidr.prefix - i * 8));
    const hostMask = 0xff >> keep;
    return (byte & hostMask) !== 0;
  });
}

export function cidrNetwork(cidr: ParsedCidr): ParsedCidr {
  const bytes = cidr.ip.bytes.map((byte, i) => {
    const keep = Math.max(0, Math.min(8, cidr.prefix - i * 8));
    return byte & ((0xff00 >> keep) & 0xff);
  });
  return { ip: { family: cidr.ip.family, bytes }, prefix: cidr.prefix };
}

/** Canonical CIDR text (RFC 5952 for IPv6; IPv4-mapped prefixes stay IPv6, their length counts 128 bits). */
export function formatCidr(cidr: ParsedCidr): string {
  return `${formatIp(cidr.ip)}/${cidr.prefix}`;
}
