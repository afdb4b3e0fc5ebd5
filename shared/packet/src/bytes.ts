/**
 * Byte helpers shared by the decoders and builders: big-endian reads (network byte order, RFC 1700
 * "Data Notation") without allocating a DataView, address text, and the Internet checksum.
 *
 * The readers do no bounds checks: every decoder checks the length of a header once before reading
 * its fields, so the hot path pays one comparison per header, not one per field.
 */

/** A Buffer over the same memory (no copy), so every view a decoder returns is a Buffer. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function u16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

export function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

export function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

export function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** `aa:bb:cc:dd:ee:ff`, the form tcpdump and `ip link` print. */
export function formatMac(mac: Uint8Array): string {
  let s = "";
  for (let i = 0; i < mac.length; i++) s += (i === 0 ? "" : ":") + HEX[mac[i]!]!;
  return s;
}

/** Six octets from `aa:bb:cc:dd:ee:ff` or `aa-bb-…`; `undefined` when the text is not one. */
export function parseMac(text: string): Buffer | undefined {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) return undefined;
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

function formatIpv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/**
 * RFC 5952 §4: lower case, no leading zeros, the longest run of two or more zero groups as `::`
 * (the first on a tie); §5: an IPv4-mapped address (RFC 4291 §2.5.5.2) ends in a dotted quad.
 */
function formatIpv6(b: Uint8Array): string {
  let mapped = b[10] === 0xff && b[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (b[i] !== 0) mapped = false;
  if (mapped) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (u16(b, i * 2) !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && u16(b, j * 2) === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let s = "";
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      s += "::";
      i += bestLen - 1;
      continue;
    }
    if (s !== "" && !s.endsWith(":")) s += ":";
    s += u16(b, i * 2).toString(16);
  }
  return s;
}

/** Text of a 4-octet (IPv4) or 16-octet (IPv6) address view; anything else prints as hex. */
export function formatIp(addr: Uint8Array): string {
  if (addr.length === 4) return formatIpv4(addr);
  if (addr.length === 16) return formatIpv6(addr);
  return Buffer.from(addr.buffer, addr.byteOffset, addr.byteLength).toString("hex");
}

function parseIpv4(text: string): Buffer | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    out[i] = Number(p);
  }
  return out;
}

/** RFC 4291 §2.2 text forms: full, `::`-compressed, and a trailing dotted quad; no zone ids. */
function parseIpv6(text: string): Buffer | undefined {
  let head = text;
  let tail4: Buffer | undefined;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    tail4 = parseIpv4(text.slice(lastColon + 1));
    if (!tail4) return undefined;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string): string[] => (s === "" ? [] : s.split(":"));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...left, ...Array<string>(missing).fill("0"), ...right];
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) {
    const g = all[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    put16(out, i * 2, parseInt(g, 16));
  }
  if (tail4) tail4.copy(out, 12);
  return out;
}

/** 4 octets for an IPv4 literal, 16 for an IPv6 literal, `undefined` otherwise. */
export function parseIp(text: string): Buffer | undefined {
  return text.includes(":") ? parseIpv6(text) : parseIpv4(text);
}

/**
 * RFC 1071 one's-complement sum of 16-bit words over `b[from, to)`, added to `initial`; an odd
 * trailing octet is padded with a zero octet. Fold and complement with `finishChecksum`.
 */
export function sumWords(b: Uint8Array, from: number, to: number, initial = 0): number {
  let sum = initial;
  let i = from;
  for (; i + 1 < to; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < to) sum += b[i]! << 8;
  // Fold now and then so the sum stays a small integer for jumbo payloads.
  while (sum > 0xffffffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

export function finishChecksum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

/** The Internet checksum (RFC 1071) of `b[from, to)`: 0 when a region that includes its checksum verifies. */
export function internetChecksum(b: Uint8Array, from = 0, to = b.length): number {
  return finishChecksum(sumWords(b, from, to));
}
