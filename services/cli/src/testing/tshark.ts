/**
 * tshark as the oracle for `ovntap decode --json`: runs `tshark -T json` on a capture and derives,
 * from Wireshark's own dissection of each frame, the fields a decode record carries — so a test
 * can compare the two field by field. Only tests import this (it is left out of the build).
 *
 *     const theirs = await tsharkRecords(file);   // one TsharkRecord per frame, in order
 *
 * How tshark's output maps to a record (see packet-record.ts for the record's definition):
 * - `len` is `frame.len`.
 * - `encap`: the outer `ip.proto` / `ipv6.nxt` is 47 → `gre`; with `gre.proto` 0x88be and the
 *   sequence-number flag → `erspan2`; 0x22eb → `erspan3`; no GRE → `none`.
 * - `key` is `gre.key`, `session` is `erspan.spanid`.
 * - `src`/`dst`/`proto` come from the innermost `ip`, `ipv6` or `arp` layer tshark shows any field
 *   of (`ip.src`, `ip.proto`; `ipv6.src`, the last `*.nxt` of the extension-header chain;
 *   `arp.src.proto_ipv4`), `sport`/`dport` from the `tcp`/`udp` layer above it. Layers that ICMP
 *   errors quote are nested inside `icmp` in tshark's JSON and so are not taken for the packet's.
 * - `error` (a flag here): tshark marked the frame `_ws.malformed` or `_ws.short` in a layer
 *   ovntap decodes (not in an application dissector above TCP/UDP), or raised an expert item of
 *   severity Error in one of those layers ("IPv4 total length exceeds packet length", …) or the
 *   IPv6 length warning (see LENGTH_WARNING); not for a UDP payload cut right after its whole
 *   header (see `udpWhole`).
 */
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Addresses, protocol and ports of a network layer and the transport above it. */
export interface Endpoints {
  readonly src: string | null;
  readonly dst: string | null;
  /** The IP protocol number, or "arp". */
  readonly proto: number | "arp" | null;
  readonly sport: number | null;
  readonly dport: number | null;
}

/** What tshark's decode of one frame says about the fields of a decode record. */
export interface TsharkRecord extends Endpoints {
  readonly n: number;
  /** `frame.time_epoch`: seconds and the fraction, as tshark prints it. */
  readonly time: string;
  readonly encap: "gre" | "erspan2" | "erspan3" | "none";
  readonly key: number | null;
  readonly session: number | null;
  /** The same of the innermost layer after the tunnel (of the whole frame when there is none). */
  readonly mirrored: Endpoints;
  readonly len: number;
  /** `frame.cap_len`. */
  readonly caplen: number;
  readonly error: boolean;
  /** The reasons behind `error`, for a failure message. */
  readonly problems: readonly string[];
  readonly protocols: string;
}

/** Throws with an install hint when tshark is missing. */
export function requireTshark(): void {
  const r = spawnSync("tshark", ["--version"], { stdio: "ignore" });
  if (r.error !== undefined)
    throw new Error("tshark is not installed: apt-get install tshark (Debian), it is the test's oracle");
}

type Json = null | string | number | boolean | Json[] | { [k: string]: Json };
type Dict = { [k: string]: Json };

const isDict = (v: Json | undefined): v is Dict =>
  typeof v === "object" &&
  v !== null &&
  !Array.isArray(v) &&
  !("filtered" in v && Object.keys(v).length === 1);

/** Layers ovntap's decoder reads; problems tshark finds above them are not ours to report. */
const OUR_LAYERS = new Set([
  "eth",
  "ethertype",
  "vlan",
  "ip",
  "ipv6",
  "gre",
  "erspan",
  "arp",
  "tcp",
  "udp",
  "icmp",
  "icmpv6",
  "data",
]);

const SEVERITY_ERROR = "8388608";

function str(d: Dict, key: string): string | undefined {
  const v = d[key];
  return typeof v === "string" ? v : undefined;
}

/**
 * tshark rates "IPv6 payload length exceeds framing length" a warning where its IPv4 counterpart
 * ("IPv4 total length exceeds packet length") is an error; both say the length field claims
 * octets the frame did not have, which a record reports as `bad-length` either way.
 */
const LENGTH_WARNING = /^IPv6 payload length exceeds framing length/;

/** Every expert item of severity Error under `v` (and the IPv6 length warning). */
function expertErrors(v: Json, out: string[]): void {
  if (Array.isArray(v)) {
    for (const x of v) expertErrors(x, out);
    return;
  }
  if (typeof v !== "object" || v === null) return;
  const text = v["_ws.expert.message"];
  const message = typeof text === "string" ? text : "expert error";
  if (v["_ws.expert.severity"] === SEVERITY_ERROR || LENGTH_WARNING.test(message)) out.push(message);
  for (const [k, x] of Object.entries(v)) if (k !== "_ws.expert.severity") expertErrors(x, out);
}

/** The last `*.nxt` (next header) in an ipv6 layer, in document order: the upper-layer protocol. */
function lastNextHeader(v: Json, found: { value?: string }): void {
  if (Array.isArray(v)) {
    for (const x of v) lastNextHeader(x, found);
    return;
  }
  if (typeof v !== "object" || v === null) return;
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === "string" && (k === "ipv6.nxt" || /^ipv6\.[a-z_]+\.nxt$/.test(k))) found.value = x;
    else lastNextHeader(x, found);
  }
}

function fromLayers(layers: Dict): TsharkRecord {
  const frame = layers.frame as Dict;
  const protocols = str(frame, "frame.protocols") ?? "";
  const tokens = protocols.split(":");
  // Pair each token with its layer object: the i-th `ip` token is the i-th element of `ip`. A
  // layer of which tshark could show no field has no object (or only a text line).
  const seen = new Map<string, number>();
  const entries = tokens.map((name) => {
    const i = seen.get(name) ?? 0;
    seen.set(name, i + 1);
    const v = layers[name];
    const el = Array.isArray(v) ? v[i] : i === 0 ? v : undefined;
    return { name, layer: isDict(el) ? el : undefined };
  });

  const net = entries
    .map((e, index) => ({ ...e, index }))
    .filter((e) => (e.name === "ip" || e.name === "ipv6" || e.name === "arp") && e.layer !== undefined);
  const outer = net[0];
  const protoOf = (e: { name: string; layer: Dict | undefined }): number | "arp" | null => {
    if (e.layer === undefined) return null;
    if (e.name === "arp") return "arp";
    if (e.name === "ip") {
      const p = str(e.layer, "ip.proto");
      return p === undefined ? null : Number(p);
    }
    const found: { value?: string } = {};
    lastNextHeader(e.layer, found);
    return found.value === undefined ? null : Number(found.value);
  };

  let encap: TsharkRecord["encap"] = "none";
  let key: number | null = null;
  let session: number | null = null;
  if (outer !== undefined && protoOf(outer) === 47) {
    encap = "gre";
    const gre = entries.find((e) => e.name === "gre")?.layer;
    if (gre !== undefined) {
      const proto = str(gre, "gre.proto");
      const flags = gre["gre.flags_and_version_tree"];
      const seq = isDict(flags) ? str(flags, "gre.flags.sequence_number") : undefined;
      if (proto === "0x88be" && seq === "1") encap = "erspan2";
      else if (proto === "0x22eb") encap = "erspan3";
      const k = str(gre, "gre.key");
      if (k !== undefined) key = Number(k);
    }
    const erspan = entries.find((e) => e.name === "erspan")?.layer;
    const span = erspan === undefined ? undefined : str(erspan, "erspan.spanid");
    if (span !== undefined) session = Number(span);
  }

  /** src/dst/proto/ports of the last network layer among `among`, and the transport above it. */
  const endpoints = (among: typeof net): Endpoints => {
    const e = among[among.length - 1];
    if (e?.layer === undefined) return { src: null, dst: null, proto: null, sport: null, dport: null };
    const [s, d] =
      e.name === "ip"
        ? ["ip.src", "ip.dst"]
        : e.name === "ipv6"
          ? ["ipv6.src", "ipv6.dst"]
          : ["arp.src.proto_ipv4", "arp.dst.proto_ipv4"];
    const l4 = entries.slice(e.index + 1).find((x) => x.name === "tcp" || x.name === "udp");
    const port = (f: string): number | null => {
      const v = l4?.layer === undefined ? undefined : str(l4.layer, `${l4.name}.${f}`);
      return v === undefined ? null : Number(v);
    };
    return {
      src: str(e.layer, s) ?? null,
      dst: str(e.layer, d) ?? null,
      proto: protoOf(e),
      sport: port("srcport"),
      dport: port("dstport"),
    };
  };
  const tunnelEnd = Math.max(tokens.lastIndexOf("gre"), tokens.lastIndexOf("erspan"));
  const innermost = endpoints(net);
  const mirrored = endpoints(net.filter((e) => e.index > tunnelEnd));

  const problems: string[] = [];
  const last = tokens[tokens.length - 1] ?? "";
  if (OUR_LAYERS.has(last)) {
    if (layers["_ws.malformed"] !== undefined) problems.push(`malformed in ${last}`);
    // packet-udp.c hands a payload with no captured octet to the next dissector, which throws:
    // a snaplen cut right after a whole UDP header. The UDP header itself is fine (its last
    // field, the checksum, was read), so that is a payload cut, not a damaged header.
    const udp = entries.findLast((e) => e.name === "udp")?.layer;
    const udpWhole = last === "udp" && udp !== undefined && str(udp, "udp.checksum") !== undefined;
    if (layers["_ws.short"] !== undefined && !udpWhole) problems.push(`short in ${last}`);
  }
  for (const e of entries) {
    if (!OUR_LAYERS.has(e.name)) continue;
    const v = layers[e.name];
    if (v !== undefined) expertErrors(v, problems);
  }

  return {
    n: Number(str(frame, "frame.number")),
    time: str(frame, "frame.time_epoch") ?? "",
    encap,
    key,
    session,
    ...innermost,
    mirrored,
    len: Number(str(frame, "frame.len")),
    caplen: Number(str(frame, "frame.cap_len")),
    error: problems.length > 0,
    problems: [...new Set(problems)],
    protocols,
  };
}

/** tshark's view of every frame of `file`, in order. */
export async function tsharkRecords(file: string): Promise<TsharkRecord[]> {
  const { stdout } = await run("tshark", ["-n", "-r", file, "-T", "json", "--no-duplicate-keys"], {
    maxBuffer: 1 << 30,
  });
  const frames = JSON.parse(stdout) as { _source: { layers: Dict } }[];
  return frames.map((f) => fromLayers(f._source.layers));
}

/**
 * The layers of the mirrored frame in a `frame.protocols` chain: for a tunnel packet, what comes
 * after `gre` (or `gre:erspan`); for a frame of a decapsulated file, the chain without the link
 * type's own pseudo-layer (`raw` for LINKTYPE_RAW).
 */
export function innerProtocols(protocols: string): string {
  const t = protocols.split(":");
  const erspan = t.lastIndexOf("erspan");
  const gre = t.lastIndexOf("gre");
  if (erspan !== -1 || gre !== -1) return t.slice(Math.max(erspan, gre) + 1).join(":");
  return (t[0] === "raw" ? t.slice(1) : t).join(":");
}
