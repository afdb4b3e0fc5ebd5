/**
 * A small tcpdump-style filter over a decoded (inner) frame, compiled once into a closure:
 *
 *     const keep = compileFilter("tcp and dst port 443 or icmp and not net 10.16.0.0/16");
 *     if (keep(decodeFrame(record.data, linkType))) write(record);
 *
 * The language is a subset of pcap-filter(7), with its meaning where the two overlap (cross-checked
 * against tcpdump's own filtering in filter.int.test.ts):
 *
 *   - protocols: `tcp`, `udp`, `icmp`, `icmp6`, `arp`, `ip`, `ip6`;
 *   - `host ADDR`, `net CIDR` (also `net 10.16`, `net ADDR mask MASK`), `port N`, `portrange A-B`,
 *     each optionally after `src`, `dst`, `src or dst` (the default) or `src and dst`, and after a
 *     protocol: `ip`/`ip6`/`arp` before host and net, `tcp`/`udp` before port and portrange;
 *   - `not`/`!`, `and`/`&&`, `or`/`||`, parentheses. As in pcap-filter(7), `and` and `or` have the
 *     SAME precedence and group left to right (`a or b and c` is `(a or b) and c`); `not` binds
 *     tightest;
 *   - a bare value after `and`/`or`/`not` repeats the qualifiers before it, as tcpdump does:
 *     `port 53 or 80` is `port 53 or port 80`, `host 10.0.0.1 and not 10.0.0.2` the same with hosts;
 *     a bare address with nothing before it is a host and a bare CIDR a net (tcpdump wants a
 *     keyword first: write `host`/`net` for an expression both accept).
 *
 * Where it knowingly differs from tcpdump: VLAN tags are looked through (tcpdump matches tagged
 * frames only after a `vlan` keyword), IPv6 extension headers are walked to the transport header
 * (tcpdump's `port` reads the fixed header's next-header only), and `port` means TCP or UDP (SCTP is
 * not decoded). Host names and service names are not looked up: give addresses and numbers.
 *
 * A frame the link layer could not be read from (a `DecodeFailure`) matches nothing, not even under
 * `not` — like tcpdump, whose BPF program rejects a packet as soon as a load runs off its end.
 */
import { parseIp } from "./bytes.js";
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from "./ethernet.js";
import type { Frame } from "./frame.js";
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from "./ip.js";
import type { DecodeFailure } from "./result.js";

export type FilterProtocol = "tcp" | "udp" | "icmp" | "icmp6" | "arp" | "ip" | "ip6";
/** `either` is tcpdump's default `src or dst`; `both` is `src and dst`. */
export type FilterDirection = "src" | "dst" | "either" | "both";

/** The parsed expression; `host` is a `net` whose prefix is the whole address. */
export type FilterNode =
  | { readonly kind: "proto"; readonly proto: FilterProtocol }
  | {
      readonly kind: "net";
      readonly dir: FilterDirection;
      /** Restricts to IPv4 (`ip`), IPv6 (`ip6`) or ARP (`arp`); absent: IP of the address's family and ARP for IPv4. */
      readonly proto: "ip" | "ip6" | "arp" | undefined;
      /** 4 or 16 octets, host bits zero. */
      readonly address: Buffer;
      readonly prefix: number;
    }
  | {
      readonly kind: "port";
      readonly dir: FilterDirection;
      readonly proto: "tcp" | "udp" | undefined;
      readonly from: number;
      readonly to: number;
    }
  | { readonly kind: "not"; readonly operand: FilterNode }
  | { readonly kind: "and" | "or"; readonly left: FilterNode; readonly right: FilterNode };

/** Keeps a frame or not. */
export type FrameFilter = (frame: Frame | DecodeFailure) => boolean;

/** The expression does not parse; `position` (0-based) and `length` mark the offending text. */
export class FilterSyntaxError extends Error {
  override readonly name = "FilterSyntaxError";
  constructor(
    readonly expression: string,
    readonly position: number,
    readonly length: number,
    /** What is wrong, without the position. */
    readonly reason: string,
  ) {
    super(`${reason} (at character ${position + 1})`);
  }

  /** The expression with a caret line under the offending token, for a terminal. */
  get pointer(): string {
    return `${this.expression}\n${" ".repeat(this.position)}${"^".repeat(Math.max(1, this.length))}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Tokens

type TokenKind = "word" | "(" | ")" | "!" | "&&" | "||" | "end";
interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly at: number;
}

const WORD_BREAK = /[\s()!&|]/;

function tokenize(expr: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "(" || c === ")" || c === "!") {
      out.push({ kind: c, text: c, at: i });
      i++;
      continue;
    }
    if (c === "&" || c === "|") {
      if (expr[i + 1] === c) {
        out.push({ kind: c === "&" ? "&&" : "||", text: c + c, at: i });
        i += 2;
        continue;
      }
      throw new FilterSyntaxError(
        expr,
        i,
        1,
        `unexpected ${JSON.stringify(c)}: write ${c === "&" ? "'&&' or 'and'" : "'||' or 'or'"}`,
      );
    }
    let j = i;
    while (j < expr.length && !WORD_BREAK.test(expr[j]!)) j++;
    out.push({ kind: "word", text: expr.slice(i, j), at: i });
    i = j;
  }
  out.push({ kind: "end", text: "", at: expr.length });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parser

const PROTOCOLS: ReadonlySet<string> = new Set<FilterProtocol>([
  "tcp",
  "udp",
  "icmp",
  "icmp6",
  "arp",
  "ip",
  "ip6",
]);
type TypeWord = "host" | "net" | "port" | "portrange";
const TYPES: ReadonlySet<string> = new Set<TypeWord>(["host", "net", "port", "portrange"]);
const KEYWORDS = new Set([...PROTOCOLS, ...TYPES, "src", "dst", "and", "or", "not", "mask"]);
const EXPECTED: Record<TypeWord | "host or net", string> = {
  host: "an address",
  net: "a network (CIDR)",
  port: "a port number",
  portrange: "a port range A-B",
  "host or net": "an address",
};
const PRIMITIVES = "tcp, udp, icmp, icmp6, arp, ip, ip6, host, net, port, portrange, src, dst, not or '('";

/** The qualifiers a bare value inherits: those of the primitive before it. */
interface Qualifiers {
  readonly proto: FilterProtocol | undefined;
  readonly dir: FilterDirection;
  readonly type: TypeWord | undefined;
}

const lower = (t: Token): string => t.text.toLowerCase();
const isAnd = (t: Token): boolean => t.kind === "&&" || (t.kind === "word" && lower(t) === "and");
const isOr = (t: Token): boolean => t.kind === "||" || (t.kind === "word" && lower(t) === "or");
const isNot = (t: Token): boolean => t.kind === "!" || (t.kind === "word" && lower(t) === "not");
const isWord = (t: Token, ...words: string[]): boolean => t.kind === "word" && words.includes(lower(t));

class Parser {
  readonly #expr: string;
  readonly #tokens: Token[];
  #i = 0;
  #last: Qualifiers | undefined;

  constructor(expr: string) {
    this.#expr = expr;
    this.#tokens = tokenize(expr);
  }

  parse(): FilterNode {
    if (this.#peek().kind === "end") this.#fail(this.#peek(), "the filter is empty");
    const node = this.#expression();
    const t = this.#peek();
    if (t.kind !== "end") {
      if (t.kind === ")") this.#fail(t, "unbalanced ')': no '(' to close");
      this.#fail(t, `expected 'and', 'or' or the end, got ${describe(t)}`);
    }
    return node;
  }

  #peek(ahead = 0): Token {
    return this.#tokens[Math.min(this.#i + ahead, this.#tokens.length - 1)]!;
  }

  #next(): Token {
    const t = this.#peek();
    if (t.kind !== "end") this.#i++;
    return t;
  }

  #fail(t: Token, reason: string): never {
    throw new FilterSyntaxError(this.#expr, t.at, Math.max(1, t.text.length), reason);
  }

  /** pcap-filter(7): `and` and `or` share one precedence level and group left to right. */
  #expression(): FilterNode {
    let left = this.#unary();
    for (;;) {
      const t = this.#peek();
      const op = isAnd(t) ? "and" : isOr(t) ? "or" : undefined;
      if (op === undefined) return left;
      this.#next();
      if (this.#peek().kind === "end") this.#fail(this.#peek(), `expected a primitive after '${t.text}'`);
      left = { kind: op, left, right: this.#unary() };
    }
  }

  #unary(): FilterNode {
    const t = this.#peek();
    if (isNot(t)) {
      this.#next();
      if (this.#peek().kind === "end") this.#fail(this.#peek(), `expected a primitive after '${t.text}'`);
      return { kind: "not", operand: this.#unary() };
    }
    if (t.kind === "(") {
      this.#next();
      if (this.#peek().kind === ")") this.#fail(this.#peek(), "empty parentheses");
      const inner = this.#expression();
      const close = this.#peek();
      if (close.kind !== ")") {
        this.#fail(
          close.kind === "end" ? t : close,
          close.kind === "end"
            ? "unbalanced '(': no ')' closes it"
            : `expected ')' or 'and'/'or', got ${describe(close)}`,
        );
      }
      this.#next();
      return inner;
    }
    return this.#primitive();
  }

  #primitive(): FilterNode {
    const start = this.#peek();
    if (start.kind !== "word") {
      this.#fail(
        start,
        start.kind === "end" ? `expected a primitive (${PRIMITIVES})` : `unexpected ${describe(start)}`,
      );
    }
    let proto: FilterProtocol | undefined;
    let dir: FilterDirection | undefined;
    let type: TypeWord | undefined;

    if (PROTOCOLS.has(lower(start))) {
      const after = this.#peek(1);
      const qualifies = isWord(after, "src", "dst", ...TYPES);
      this.#next();
      if (!qualifies) {
        // A lone protocol; a value after it would be ambiguous (`tcp 80`), so say what is meant.
        if (after.kind === "word" && !KEYWORDS.has(lower(after)))
          this.#fail(
            after,
            `${describe(after)} after '${start.text}' needs a keyword: host, net, port or portrange`,
          );
        this.#last = undefined;
        return { kind: "proto", proto: lower(start) as FilterProtocol };
      }
      proto = lower(start) as FilterProtocol;
    }
    const d = this.#peek();
    if (isWord(d, "src", "dst")) {
      this.#next();
      dir = lower(d) as "src" | "dst";
      // `src or dst` / `src and dst` as one qualifier: after a direction, a connective can only mean that.
      const conj = this.#peek();
      const other = this.#peek(1);
      if ((isAnd(conj) || isOr(conj)) && isWord(other, dir === "src" ? "dst" : "src")) {
        this.#next();
        this.#next();
        dir = isAnd(conj) ? "both" : "either";
      }
    }
    const ty = this.#peek();
    if (isWord(ty, ...TYPES)) {
      this.#next();
      type = lower(ty) as TypeWord;
    }
    if (proto === undefined && dir === undefined && type === undefined) {
      // A bare value: it repeats the qualifiers of the primitive before it.
      if (KEYWORDS.has(lower(start))) this.#fail(start, `unexpected '${start.text}'`);
      if (!looksLikeValue(start.text))
        this.#fail(start, `unknown word ${describe(start)}: expected ${PRIMITIVES}`);
      const q = this.#last ?? { proto: undefined, dir: "either", type: undefined };
      return this.#value(q.proto, q.dir, q.type);
    }
    return this.#value(proto, dir ?? "either", type, proto === undefined ? undefined : start);
  }

  /** The value after the qualifiers, and the primitive they make. */
  #value(
    proto: FilterProtocol | undefined,
    dir: FilterDirection,
    type: TypeWord | undefined,
    protoToken?: Token,
  ): FilterNode {
    const v = this.#peek();
    const what = type ?? (proto === "tcp" || proto === "udp" ? "port" : "host or net");
    if (v.kind !== "word" || KEYWORDS.has(lower(v))) {
      const after = this.#tokens[this.#i - 1];
      this.#fail(v, `expected ${EXPECTED[what]} after '${after?.text ?? ""}', got ${describe(v)}`);
    }
    this.#next();
    const resolved =
      type ?? (proto === "tcp" || proto === "udp" ? undefined : v.text.includes("/") ? "net" : "host");
    if (resolved === undefined)
      this.#fail(
        v,
        `'${proto ?? ""}' needs 'port' or 'portrange' before a value (e.g. '${proto ?? ""} port ${v.text}')`,
      );
    this.#last = { proto, dir, type: resolved };
    if (resolved === "port" || resolved === "portrange") {
      if (proto !== undefined && proto !== "tcp" && proto !== "udp")
        this.#fail(
          protoToken ?? v,
          `'${proto}' cannot qualify ${resolved}: use tcp or udp (or '${proto} and ${resolved} …')`,
        );
      const [from, to] = resolved === "port" ? this.#port(v) : this.#portRange(v);
      return { kind: "port", dir, proto, from, to };
    }
    if (proto !== undefined && proto !== "ip" && proto !== "ip6" && proto !== "arp")
      this.#fail(protoToken ?? v, `'${proto}' cannot qualify ${resolved}: use ip, ip6 or arp`);
    const { address, prefix } = resolved === "host" ? this.#host(v) : this.#net(v);
    if (proto === "ip6" && address.length === 4) this.#fail(v, `'ip6' with an IPv4 address`);
    if ((proto === "ip" || proto === "arp") && address.length === 16)
      this.#fail(v, `'${proto}' with an IPv6 address`);
    return { kind: "net", dir, proto, address, prefix };
  }

  #port(v: Token): [number, number] {
    const n = portNumber(v.text);
    if (n === undefined) {
      this.#fail(
        v,
        /^[0-9]+$/.test(v.text)
          ? `port ${v.text} is out of range (0..65535)`
          : `${describe(v)} is not a port number (0..65535; service names are not looked up)`,
      );
    }
    return [n, n];
  }

  #portRange(v: Token): [number, number] {
    const m = /^([^-]+)-([^-]+)$/.exec(v.text);
    const a = m ? portNumber(m[1]!) : undefined;
    const b = m ? portNumber(m[2]!) : undefined;
    if (a === undefined || b === undefined)
      this.#fail(v, `${describe(v)} is not a port range A-B (numbers 0..65535)`);
    // libpcap swaps a range given high-low.
    return a <= b ? [a, b] : [b, a];
  }

  #host(v: Token): { address: Buffer; prefix: number } {
    const a = parseIp(v.text);
    if (a === undefined) {
      this.#fail(
        v,
        v.text.includes("/")
          ? `${describe(v)} is a network: write 'net ${v.text}'${networkHint(v.text)}`
          : `${describe(v)} is not an IPv4 or IPv6 address (host names are not looked up)`,
      );
    }
    return { address: a, prefix: a.length * 8 };
  }

  /** `net A/len`, `net A` (a host), `net 10.16` (tcpdump: the octets given are the network), `net A mask M`. */
  #net(v: Token): { address: Buffer; prefix: number } {
    const text = v.text;
    let address: Buffer | undefined;
    let prefix: number | undefined;
    const slash = text.indexOf("/");
    if (slash >= 0) {
      address = parseIp(text.slice(0, slash)) ?? partialIpv4(text.slice(0, slash))?.address;
      const p = text.slice(slash + 1);
      if (address !== undefined && /^[0-9]{1,3}$/.test(p) && Number(p) <= address.length * 8)
        prefix = Number(p);
      else if (address !== undefined)
        this.#fail(v, `${describe(v)}: the prefix length must be 0..${address.length * 8}`);
    } else if (isWord(this.#peek(), "mask")) {
      const m = this.#next();
      const maskToken = this.#peek();
      address = parseIp(text);
      const mask = maskToken.kind === "word" ? parseIp(maskToken.text) : undefined;
      if (address === undefined || address.length !== 4)
        this.#fail(v, `${describe(v)} is not an IPv4 address`);
      if (mask === undefined || mask.length !== 4)
        this.#fail(maskToken.kind === "end" ? m : maskToken, "expected an IPv4 netmask after 'mask'");
      this.#next();
      const bits = mask.readUInt32BE(0);
      const ones = Math.clz32(~bits >>> 0);
      if ((ones === 32 ? 0xffffffff : ~(0xffffffff >>> ones)) >>> 0 !== bits >>> 0)
        this.#fail(maskToken, `${describe(maskToken)} is not a contiguous netmask`);
      prefix = ones;
    } else {
      address = parseIp(text);
      if (address !== undefined) prefix = address.length * 8;
      else {
        const partial = partialIpv4(text);
        address = partial?.address;
        prefix = partial?.prefix;
      }
    }
    if (address === undefined || prefix === undefined)
      this.#fail(v, `${describe(v)} is not a network (CIDR such as 10.16.0.0/16 or fd00::/8)`);
    if (!hostBitsZero(address, prefix))
      this.#fail(
        v,
        `${describe(v)} has bits set past the /${prefix} prefix (the network is ${networkText(address, prefix)})`,
      );
    return { address, prefix };
  }
}

/** " (the network of 10.0.0.1/8 is 10.0.0.0/8)" when the CIDR has host bits, else "". */
function networkHint(text: string): string {
  const slash = text.indexOf("/");
  const a = parseIp(text.slice(0, slash));
  const p = Number(text.slice(slash + 1));
  if (a === undefined || !/^[0-9]{1,3}$/.test(text.slice(slash + 1)) || p > a.length * 8) return "";
  return hostBitsZero(a, p) ? "" : ` (its network is ${networkText(a, p)})`;
}

function describe(t: Token): string {
  return t.kind === "end" ? "the end of the filter" : `'${t.text}'`;
}

function looksLikeValue(text: string): boolean {
  return /^[0-9]/.test(text) || text.includes(":") || text.includes("/") || text.includes(".");
}

function portNumber(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 0xffff ? n : undefined;
}

/** tcpdump's short networks: `10` = 10/8, `10.16` = 10.16/16, `10.16.1` = 10.16.1/24. */
function partialIpv4(text: string): { address: Buffer; prefix: number } | undefined {
  const parts = text.split(".");
  if (parts.length < 1 || parts.length > 3) return undefined;
  const address = Buffer.alloc(4);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    address[i] = Number(p);
  }
  return { address, prefix: parts.length * 8 };
}

function hostBitsZero(address: Buffer, prefix: number): boolean {
  for (let i = 0; i < address.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    if ((address[i]! & ~mask & 0xff) !== 0) return false;
  }
  return true;
}

function networkText(address: Buffer, prefix: number): string {
  const n = Buffer.from(address);
  for (let i = 0; i < n.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    n[i] = n[i]! & (keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff);
  }
  const parts =
    n.length === 4
      ? [...n].join(".")
      : Array.from({ length: 8 }, (_, i) => n.readUInt16BE(i * 2).toString(16)).join(":");
  return `${parts}/${prefix}`;
}

/** Parse without compiling (for tools that show or rewrite a filter). Throws FilterSyntaxError. */
export function parseFilter(expression: string): FilterNode {
  return new Parser(expression).parse();
}

// ---------------------------------------------------------------------------------------------
// Compiler

type Matcher = (f: Frame) => boolean;

/** The L3 EtherType, through VLAN tags; from the IP version nibble on raw-IP link types. */
function etherTypeOf(f: Frame): number | undefined {
  if (f.eth !== undefined) return f.eth.etherType;
  if (f.ip !== undefined) return f.ip.version === 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6;
  return undefined;
}

function protoMatcher(proto: FilterProtocol): Matcher {
  switch (proto) {
    case "ip":
      return (f) => etherTypeOf(f) === ETHERTYPE_IPV4;
    case "ip6":
      return (f) => etherTypeOf(f) === ETHERTYPE_IPV6;
    case "arp":
      return (f) => etherTypeOf(f) === ETHERTYPE_ARP;
    case "tcp":
      return (f) => f.ip?.protocol === IPPROTO_TCP;
    case "udp":
      return (f) => f.ip?.protocol === IPPROTO_UDP;
    case "icmp":
      return (f) => f.ip?.version === 4 && f.ip.protocol === IPPROTO_ICMP;
    case "icmp6":
      return (f) => f.ip?.version === 6 && f.ip.protocol === IPPROTO_ICMPV6;
  }
}

function directional<T>(dir: FilterDirection, test: (v: T) => boolean): (src: T, dst: T) => boolean {
  switch (dir) {
    case "src":
      return (s) => test(s);
    case "dst":
      return (_s, d) => test(d);
    case "either":
      return (s, d) => test(s) || test(d);
    case "both":
      return (s, d) => test(s) && test(d);
  }
}

function prefixTest(network: Buffer, prefix: number): (a: Uint8Array) => boolean {
  const whole = prefix >>> 3;
  const rest = prefix & 7;
  const mask = rest === 0 ? 0 : (0xff << (8 - rest)) & 0xff;
  const len = network.length;
  return (a) => {
    if (a.length !== len) return false;
    for (let i = 0; i < whole; i++) if (a[i] !== network[i]) return false;
    return rest === 0 || (a[whole]! & mask) === network[whole];
  };
}

function netMatcher(node: Extract<FilterNode, { kind: "net" }>): Matcher {
  const pair = directional(node.dir, prefixTest(node.address, node.prefix));
  const v4 = node.address.length === 4;
  const ipVersion = v4 ? 4 : 6;
  const viaIp = node.proto === undefined || node.proto === (v4 ? "ip" : "ip6");
  // pcap-filter(7): an IPv4 `host`/`net` without a protocol also matches ARP's protocol addresses.
  const viaArp = v4 && (node.proto === undefined || node.proto === "arp");
  return (f) => {
    const ip = f.ip;
    if (viaIp && ip !== undefined && ip.version === ipVersion && pair(ip.src, ip.dst)) return true;
    const arp = f.arp;
    return viaArp && arp !== undefined && pair(arp.senderProtocol, arp.targetProtocol);
  };
}

function portMatcher(node: Extract<FilterNode, { kind: "port" }>): Matcher {
  const { from, to } = node;
  const pair = directional<number>(node.dir, (p) => p >= from && p <= to);
  const tcp = node.proto !== "udp";
  const udp = node.proto !== "tcp";
  return (f) => {
    const l4 = f.l4;
    if (l4 === undefined) return false;
    if ((l4.protocol === "tcp" && tcp) || (l4.protocol === "udp" && udp)) return pair(l4.srcPort, l4.dstPort);
    return false;
  };
}

function compileNode(node: FilterNode): Matcher {
  switch (node.kind) {
    case "proto":
      return protoMatcher(node.proto);
    case "net":
      return netMatcher(node);
    case "port":
      return portMatcher(node);
    case "not": {
      const m = compileNode(node.operand);
      return (f) => !m(f);
    }
    case "and": {
      const l = compileNode(node.left);
      const r = compileNode(node.right);
      return (f) => l(f) && r(f);
    }
    case "or": {
      const l = compileNode(node.left);
      const r = compileNode(node.right);
      return (f) => l(f) || r(f);
    }
  }
}

/**
 * Compile `expression` once; the result tests frames from `decodeFrame`. Throws FilterSyntaxError
 * (with the position of the offending token) when the expression does not parse.
 */
export function compileFilter(expression: string): FrameFilter {
  const m = compileNode(parseFilter(expression));
  return (frame) => frame.ok && m(frame);
}

/** The expression text of a node: fully parenthesised, explicit qualifiers, parseable again. */
export function formatFilter(node: FilterNode): string {
  const dirText = (d: FilterDirection): string =>
    d === "either" ? "" : d === "both" ? "src and dst " : `${d} `;
  switch (node.kind) {
    case "proto":
      return node.proto;
    case "net": {
      const full = node.prefix === node.address.length * 8;
      const addr = networkText(node.address, node.prefix);
      return `${node.proto ? `${node.proto} ` : ""}${dirText(node.dir)}${full ? `host ${addr.slice(0, addr.lastIndexOf("/"))}` : `net ${addr}`}`;
    }
    case "port":
      return `${node.proto ? `${node.proto} ` : ""}${dirText(node.dir)}${node.from === node.to ? `port ${node.from}` : `portrange ${node.from}-${node.to}`}`;
    case "not":
      return `not (${formatFilter(node.operand)})`;
    case "and":
    case "or":
      return `(${formatFilter(node.left)}) ${node.kind} (${formatFilter(node.right)})`;
  }
}
