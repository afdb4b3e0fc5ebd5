/**
 * The filter language: what each primitive selects on frames built with known fields (properties
 * over arbitrary frames), the algebra of not/and/or with tcpdump's equal precedence, parse → format
 * → parse round trips, and errors that point at the offending token. Agreement with tcpdump itself
 * is checked in filter.int.test.ts.
 */
import fc from "fast-check";
import type { Arbitrary } from "fast-check";
import { describe, expect, it } from "vitest";
import {
  buildArpFrame,
  buildIcmpEchoFrame,
  buildIpv4,
  buildEthernet,
  buildTcp,
  buildTcpFrame,
  buildUdpFrame,
  decodeFrame,
  ETHERTYPE_IPV4,
  formatIp,
  LINKTYPE_RAW,
} from "./index.js";
import type { Frame } from "./index.js";
import { compileFilter, FilterSyntaxError, formatFilter, parseFilter } from "./filter.js";
import type { FilterNode } from "./filter.js";
import { arbitraries } from "./internal.js";
import type { InnerFrame } from "./internal.js";

const frameOf = (bytes: Uint8Array): Frame => {
  const f = decodeFrame(bytes);
  if (!f.ok) throw new Error(`test frame does not decode: ${f.reason}`);
  return f;
};
const matches = (expr: string, bytes: Uint8Array): boolean => compileFilter(expr)(decodeFrame(bytes));

const tcp4 = buildTcpFrame({ src: "10.16.0.11", dst: "10.16.0.12", srcPort: 40000, dstPort: 80 });
const udp4 = buildUdpFrame({ src: "10.16.0.12", dst: "10.16.0.11", srcPort: 53, dstPort: 33000 });
const icmp4 = buildIcmpEchoFrame({ src: "10.16.0.11", dst: "198.51.100.7", id: 1, seq: 1 });
const tcp6 = buildTcpFrame({ src: "fd00::11", dst: "fd00::12", srcPort: 443, dstPort: 50000 });
const icmp6 = buildIcmpEchoFrame({ src: "fd00::11", dst: "fd00::12", id: 2, seq: 9 });
const arp = buildArpFrame({ senderMac: "00:00:00:00:00:01", senderIp: "10.16.0.11", targetIp: "10.16.0.12" });
const vlanTcp = buildTcpFrame({
  src: "10.16.0.11",
  dst: "10.16.0.12",
  srcPort: 1234,
  dstPort: 22,
  vlans: [{ vid: 100 }],
});
/** A non-first IPv4 fragment of a TCP segment: no transport header to read ports from. */
const tcpFragment = buildEthernet({
  etherType: ETHERTYPE_IPV4,
  payload: buildIpv4({
    src: "10.16.0.11",
    dst: "10.16.0.12",
    protocol: 6,
    fragmentOffset: 8,
    payload: Buffer.alloc(32, 1),
  }),
});
const ALL = { tcp4, udp4, icmp4, tcp6, icmp6, arp, vlanTcp, tcpFragment };
type Name = keyof typeof ALL;

/** Which of ALL an expression keeps. */
function selected(expr: string): Name[] {
  const keep = compileFilter(expr);
  return (Object.keys(ALL) as Name[]).filter((n) => keep(decodeFrame(ALL[n])));
}

describe("compileFilter: primitives", () => {
  it.each<[string, Name[]]>([
    ["tcp", ["tcp4", "tcp6", "vlanTcp", "tcpFragment"]],
    ["udp", ["udp4"]],
    ["icmp", ["icmp4"]],
    ["icmp6", ["icmp6"]],
    ["arp", ["arp"]],
    ["ip", ["tcp4", "udp4", "icmp4", "vlanTcp", "tcpFragment"]],
    ["ip6", ["tcp6", "icmp6"]],
    ["host 10.16.0.11", ["tcp4", "udp4", "icmp4", "arp", "vlanTcp", "tcpFragment"]],
    ["src host 10.16.0.11", ["tcp4", "icmp4", "arp", "vlanTcp", "tcpFragment"]],
    ["dst host 10.16.0.11", ["udp4"]],
    ["ip host 10.16.0.11", ["tcp4", "udp4", "icmp4", "vlanTcp", "tcpFragment"]],
    ["arp host 10.16.0.12", ["arp"]],
    ["arp dst host 10.16.0.12", ["arp"]],
    ["arp src host 10.16.0.12", []],
    ["host fd00::12", ["tcp6", "icmp6"]],
    ["net 198.51.100.0/24", ["icmp4"]],
    ["net 10.16", ["tcp4", "udp4", "icmp4", "arp", "vlanTcp", "tcpFragment"]],
    ["dst net 10.16.0.0 mask 255.255.0.0", ["tcp4", "udp4", "arp", "vlanTcp", "tcpFragment"]],
    ["net fd00::/8", ["tcp6", "icmp6"]],
    ["src and dst net 10.16.0.0/16", ["tcp4", "udp4", "arp", "vlanTcp", "tcpFragment"]],
    ["port 80", ["tcp4"]],
    ["port 53", ["udp4"]],
    ["tcp port 53", []],
    ["udp src port 53", ["udp4"]],
    ["dst port 53", []],
    ["portrange 400-500", ["tcp6"]],
    ["portrange 500-400", ["tcp6"]],
    ["src portrange 1-1024", ["udp4", "tcp6"]],
    ["port 22", ["vlanTcp"]],
  ])("%s", (expr, want) => {
    expect(selected(expr)).toEqual(want);
  });

  it("reads raw-IP link types too", () => {
    const raw = buildIpv4({
      src: "10.0.0.1",
      dst: "10.0.0.2",
      protocol: 6,
      payload: buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1, dstPort: 2 }),
    });
    const f = decodeFrame(raw, LINKTYPE_RAW);
    expect(compileFilter("ip and tcp dst port 2 and src host 10.0.0.1")(f)).toBe(true);
    expect(compileFilter("ip6 or arp")(f)).toBe(false);
  });

  it("matches nothing on a frame whose link layer does not decode, not even under not", () => {
    const runt = decodeFrame(Buffer.alloc(6));
    expect(runt.ok).toBe(false);
    expect(compileFilter("not tcp")(runt)).toBe(false);
    expect(compileFilter("tcp or not tcp")(runt)).toBe(false);
  });
});

describe("compileFilter: connectives, precedence and shorthand", () => {
  it.each<[string, Name[]]>([
    // pcap-filter(7): and/or are one precedence level, left to right.
    ["udp or icmp and host 198.51.100.7", ["icmp4"]],
    ["icmp and host 198.51.100.7 or udp", ["udp4", "icmp4"]],
    ["udp or (icmp and host 198.51.100.7)", ["udp4", "icmp4"]],
    ["not tcp and not ip6", ["udp4", "icmp4", "arp"]],
    ["!tcp&&!ip6", ["udp4", "icmp4", "arp"]],
    ["not (tcp or ip6)", ["udp4", "icmp4", "arp"]],
    ["port 80 or 53", ["tcp4", "udp4"]],
    ["tcp dst port 80 or 22", ["tcp4", "vlanTcp"]],
    ["host 10.16.0.12 and not 10.16.0.11", []],
    // The bare value repeats "dst host": not dst host 10.16.0.11.
    ["dst host 10.16.0.12 and not 10.16.0.11", ["tcp4", "arp", "vlanTcp", "tcpFragment"]],
    ["host 198.51.100.7 or fd00::12", ["icmp4", "tcp6", "icmp6"]],
    ["10.16.0.12", ["tcp4", "udp4", "arp", "vlanTcp", "tcpFragment"]],
    ["src 10.16.0.12", ["udp4"]],
    ["fd00::/16", ["tcp6", "icmp6"]],
    ["src or dst port 443", ["tcp6"]],
    ["src and dst port 443", []],
    ["((tcp))", ["tcp4", "tcp6", "vlanTcp", "tcpFragment"]],
    ["TCP AND PORT 80", ["tcp4"]],
  ])("%s", (expr, want) => {
    expect(selected(expr)).toEqual(want);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const bytesEqual = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

/** Whether any end of `f` (by direction) satisfies `test`; ARP uses its protocol addresses. */
function ends(f: InnerFrame): [Buffer, Buffer] {
  return [f.src, f.dst];
}

function maskTo(address: Uint8Array, prefix: number): Buffer {
  const n = Buffer.from(address);
  for (let i = 0; i < n.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    n[i] = n[i]! & (keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff);
  }
  return n;
}

const netText = (a: Uint8Array, prefix: number) => `${formatIp(maskTo(a, prefix))}/${prefix}`;

describe("compileFilter: properties over arbitrary frames", () => {
  const frame = arbitraries.innerFrame;

  it("exactly one transport/ARP primitive and one family primitive selects each frame", () => {
    fc.assert(
      fc.property(frame, (f) => {
        const v6 = f.src.length === 16;
        const want = f.kind === "icmp" ? (v6 ? "icmp6" : "icmp") : f.kind;
        for (const p of ["tcp", "udp", "icmp", "icmp6", "arp"])
          expect(matches(p, f.frame), `${p} on ${f.kind}`).toBe(p === want);
        expect(matches("ip", f.frame)).toBe(f.kind !== "arp" && !v6);
        expect(matches("ip6", f.frame)).toBe(v6);
      }),
    );
  });

  it("host X matches when X is either end; src/dst/both pick the end", () => {
    fc.assert(
      fc.property(frame, fc.boolean(), (f, pickSrc) => {
        const [src, dst] = ends(f);
        const x = pickSrc ? src : dst;
        const text = formatIp(x);
        expect(matches(`host ${text}`, f.frame)).toBe(true);
        expect(matches(`src host ${text}`, f.frame)).toBe(bytesEqual(x, src));
        expect(matches(`dst host ${text}`, f.frame)).toBe(bytesEqual(x, dst));
        expect(matches(`src and dst host ${text}`, f.frame)).toBe(bytesEqual(src, dst));
        expect(matches(`src ${formatIp(src)} and dst ${formatIp(dst)}`, f.frame)).toBe(true);
      }),
    );
  });

  it("net matches every address inside the prefix and no other", () => {
    fc.assert(
      fc.property(frame, fc.nat(128), fc.nat(128), (f, p, q) => {
        const [src, dst] = ends(f);
        const bits = src.length * 8;
        const prefix = p % (bits + 1);
        expect(matches(`src net ${netText(src, prefix)}`, f.frame)).toBe(true);
        // A network built from src matches dst exactly when dst shares the prefix.
        const other = q % (bits + 1);
        expect(matches(`dst net ${netText(src, other)}`, f.frame)).toBe(
          bytesEqual(maskTo(dst, other), maskTo(src, other)),
        );
      }),
    );
  });

  it("port and portrange select by the transport ports of TCP and UDP only", () => {
    fc.assert(
      fc.property(
        frame,
        fc.integer({ min: 0, max: 65535 }),
        fc.integer({ min: 0, max: 65535 }),
        (f, a, b) => {
          const ported = f.kind === "tcp" || f.kind === "udp";
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          const inRange = (p: number) => p >= lo && p <= hi;
          expect(matches(`port ${a}`, f.frame)).toBe(ported && (f.srcPort === a || f.dstPort === a));
          expect(matches(`dst port ${f.dstPort}`, f.frame)).toBe(ported);
          expect(matches(`portrange ${a}-${b}`, f.frame)).toBe(
            ported && (inRange(f.srcPort) || inRange(f.dstPort)),
          );
          expect(matches(`src portrange ${a}-${b}`, f.frame)).toBe(ported && inRange(f.srcPort));
          expect(matches(`${f.kind === "udp" ? "tcp" : "udp"} port ${f.srcPort}`, f.frame)).toBe(false);
        },
      ),
    );
  });
});

// Random expressions: their parse trees, and the algebra they obey.

const ipv4Text = fc.constantFrom("10.16.0.11", "10.16.0.12", "198.51.100.7", "203.0.113.1");
const leaf: Arbitrary<FilterNode> = fc.oneof(
  fc.constantFrom<FilterNode>(
    ...(["tcp", "udp", "icmp", "icmp6", "arp", "ip", "ip6"] as const).map((proto): FilterNode => ({
      kind: "proto",
      proto,
    })),
  ),
  fc
    .record({
      dir: fc.constantFrom("src", "dst", "either", "both" as const),
      proto: fc.constantFrom(undefined, "ip" as const, "arp" as const),
      address: ipv4Text,
      prefix: fc.constantFrom(8, 16, 24, 32),
    })
    .map((r): FilterNode => ({
      kind: "net",
      dir: r.dir,
      proto: r.proto,
      address: maskTo(Buffer.from(r.address.split(".").map(Number)), r.prefix),
      prefix: r.prefix,
    })),
  fc
    .record({
      dir: fc.constantFrom("src", "dst", "either", "both" as const),
      proto: fc.constantFrom(undefined, "tcp" as const, "udp" as const),
      a: fc.constantFrom(22, 53, 80, 443, 1024, 40000, 65535),
      b: fc.constantFrom(0, 22, 53, 80, 443, 1024, 40000, 65535),
    })
    .map((r): FilterNode => ({
      kind: "port",
      dir: r.dir,
      proto: r.proto,
      from: Math.min(r.a, r.b),
      to: Math.max(r.a, r.b),
    })),
);

const tree: Arbitrary<FilterNode> = fc.letrec<{ node: FilterNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    tie("node").map((operand): FilterNode => ({ kind: "not", operand })),
    fc
      .record({ kind: fc.constantFrom("and", "or" as const), left: tie("node"), right: tie("node") })
      .map((r): FilterNode => r),
  ),
})).node;

/** Direct evaluation of a tree through compiled leaves only: the reference for the connectives. */
function evaluate(node: FilterNode, f: Frame): boolean {
  switch (node.kind) {
    case "not":
      return !evaluate(node.operand, f);
    case "and":
      return evaluate(node.left, f) && evaluate(node.right, f);
    case "or":
      return evaluate(node.left, f) || evaluate(node.right, f);
    default:
      return compileFilter(formatFilter(node))(f);
  }
}

describe("parseFilter / formatFilter: properties", () => {
  it("format → parse gives the same tree", () => {
    fc.assert(
      fc.property(tree, (t) => {
        expect(parseFilter(formatFilter(t))).toEqual(t);
      }),
    );
  });

  it("a compiled tree agrees with evaluating its connectives one by one", () => {
    fc.assert(
      fc.property(tree, arbitraries.innerFrame, (t, f) => {
        const fr = frameOf(f.frame);
        expect(compileFilter(formatFilter(t))(fr)).toBe(evaluate(t, fr));
      }),
    );
  });

  it("a chain without parentheses groups left to right, whatever the connectives", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom("and", "or", "&&", "||"), leaf), { minLength: 1, maxLength: 5 }),
        leaf,
        arbitraries.innerFrame,
        (rest, first, f) => {
          const fr = frameOf(f.frame);
          const flat = [formatFilter(first), ...rest.map(([op, l]) => `${op} ${formatFilter(l)}`)].join(" ");
          let want = compileFilter(formatFilter(first))(fr);
          for (const [op, l] of rest) {
            const v = compileFilter(formatFilter(l))(fr);
            want = op === "and" || op === "&&" ? want && v : want || v;
          }
          expect(compileFilter(flat)(fr)).toBe(want);
          // Spelling does not matter.
          const words = flat.replaceAll("&&", "and").replaceAll("||", "or");
          expect(compileFilter(words)(fr)).toBe(want);
        },
      ),
    );
  });

  it("not binds tighter than and/or, and ! is not", () => {
    fc.assert(
      fc.property(leaf, leaf, arbitraries.innerFrame, (a, b, f) => {
        const fr = frameOf(f.frame);
        const va = compileFilter(formatFilter(a))(fr);
        const vb = compileFilter(formatFilter(b))(fr);
        expect(compileFilter(`not ${formatFilter(a)} or ${formatFilter(b)}`)(fr)).toBe(!va || vb);
        expect(compileFilter(`! ${formatFilter(a)} and ${formatFilter(b)}`)(fr)).toBe(!va && vb);
        expect(compileFilter(`not (${formatFilter(a)} or ${formatFilter(b)})`)(fr)).toBe(!va && !vb);
      }),
    );
  });
});

describe("compileFilter: errors point at the offending token", () => {
  function error(expr: string): FilterSyntaxError {
    try {
      compileFilter(expr);
    } catch (e) {
      if (e instanceof FilterSyntaxError) return e;
      throw e;
    }
    throw new Error(`${JSON.stringify(expr)} compiled`);
  }

  it.each<[string, string, RegExp]>([
    ["", "", /empty/],
    ["tcp and", "", /after 'and'/],
    ["port http", "http", /not a port number.*service names/],
    ["port 70000", "70000", /out of range/],
    ["portrange 10", "10", /port range A-B/],
    ["tcp host 10.0.0.1", "tcp", /'tcp' cannot qualify host/],
    ["arp port 80", "arp", /'arp' cannot qualify port/],
    ["ip6 portrange 1-2", "ip6", /'ip6' cannot qualify portrange: use tcp or udp/],
    ["ip6 host 10.0.0.1", "10.0.0.1", /ip6.*IPv4/],
    ["host example.com", "example.com", /not an IPv4 or IPv6 address.*not looked up/],
    ["host 10.0.0.0/8", "10.0.0.0/8", /is a network: write 'net/],
    ["net 10.0.0.1/8", "10.0.0.1/8", /bits set past the \/8 prefix.*10\.0\.0\.0\/8/],
    ["net 10.0.0.0/33", "10.0.0.0/33", /prefix length must be 0\.\.32/],
    ["net 10.0.0.0 mask 255.0.255.0", "255.0.255.0", /not a contiguous netmask/],
    ["(tcp or udp", "(", /unbalanced '\('/],
    ["tcp or udp)", ")", /unbalanced '\)'/],
    ["tcp udp", "udp", /expected 'and', 'or' or the end/],
    ["tcp 80", "80", /needs a keyword/],
    ["tcp & udp", "&", /write '&&' or 'and'/],
    ["tcp | udp", "|", /write '\|\|' or 'or'/],
    ["frobnicate", "frobnicate", /unknown word/],
    ["host", "", /expected an address after 'host'/],
    ["src port", "", /expected a port number after 'port'/],
    ["not", "", /after 'not'/],
    ["()", ")", /empty parentheses/],
    ["tcp and (udp or", "", /after 'or'/],
  ])("%j", (expr, token, message) => {
    const e = error(expr);
    expect(e.message).toMatch(message);
    expect(e.expression).toBe(expr);
    expect(expr.slice(e.position, e.position + token.length)).toBe(token);
    expect(e.message).toContain(`at character ${e.position + 1}`);
    expect(e.pointer.split("\n")[1]).toBe(`${" ".repeat(e.position)}${"^".repeat(Math.max(1, e.length))}`);
  });

  it("any string either compiles or fails with a position inside it", () => {
    const alphabet = fc.constantFrom(
      ..."tcp udp icmp6 arp ip6 host net port portrange src dst and or not mask ( ) ! && || & | 10.0.0.1 fd00::1 10/8 80 1-2 x".split(
        " ",
      ),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 40 }),
          fc.array(alphabet, { maxLength: 10 }).map((ws) => ws.join(" ")),
        ),
        (expr) => {
          try {
            compileFilter(expr);
          } catch (e) {
            expect(e).toBeInstanceOf(FilterSyntaxError);
            const s = e as FilterSyntaxError;
            expect(s.position).toBeGreaterThanOrEqual(0);
            expect(s.position).toBeLessThanOrEqual(expr.length);
            expect(s.length).toBeGreaterThanOrEqual(1);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
