/**
 * Packet batches on `ovntap.v1.capture.<ns>.<mirror>.<node>`, flow summaries, mirror statistics.
 *
 * A batch's payload is a run of classic pcap records, each a 16-byte record header followed by the
 * frame bytes, with no pcap global header:
 *
 *     offset 0  u32 LE  ts_sec    seconds since the Unix epoch
 *     offset 4  u32 LE  ts_nsec   nanoseconds within the second (0..999999999)
 *     offset 8  u32 LE  incl_len  bytes of the frame that follow (≤ snaplen)
 *     offset 12 u32 LE  orig_len  length of the frame on the wire
 *
 * Byte order is little-endian and timestamps are nanoseconds, so a consumer writes one global header
 * with magic 0xA1B23C4D (bytes `4d 3c b2 a1`), version 2.4, the batch's snaplen and link type, and
 * then appends payloads as they come (that is all `ovntap capture -w file.pcap` does). Frames are
 * decapsulated: the link type is that of the mirrored frame (Ethernet, 1), not of the tunnel.
 *
 * The batch's metadata travels in NATS headers (`CAPTURE_HEADERS`); use `formatCaptureHeaders` and
 * `parseCaptureHeaders` rather than reading them by hand.
 */
import { z } from "zod";
import {
  BridgeName,
  counter,
  intIn,
  MirrorName,
  Namespace,
  NodeName,
  text,
  Timestamp,
  TimestampNs,
  TIMESTAMP_NS_RE,
  typeError,
} from "./fields.js";
import { canonicalIp, parseIp } from "./ip.js";
import {
  ERSPAN_SESSION_MAX,
  FLOWS_PER_MESSAGE_MAX,
  GRE_KEY_MAX,
  PORT_MAX,
  SNAPLEN_MAX,
  SNAPLEN_MIN,
} from "./limits.js";
import { parseOrThrow, validate } from "./validate.js";
import type { ValidationResult } from "./validate.js";

export const PCAP_RECORD_HEADER_BYTES = 16;
/** pcap magic for nanosecond timestamps (libpcap `NSEC_TCPDUMP_MAGIC`). */
export const PCAP_MAGIC_NANOSECONDS = 0xa1b23c4d;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
/** LINKTYPE_ETHERNET (tcpdump.org link-layer header types). */
export const LINKTYPE_ETHERNET = 1;
/** Content type of a batch payload. */
export const CAPTURE_CONTENT_TYPE = "application/vnd.ovntap.pcap-records";

/** NATS header names of a capture batch. */
export const CAPTURE_HEADERS = {
  namespace: "Ovntap-Namespace",
  mirror: "Ovntap-Mirror",
  node: "Ovntap-Node",
  linkType: "Ovntap-Link-Type",
  snaplen: "Ovntap-Snaplen",
  count: "Ovntap-Count",
  firstNs: "Ovntap-First-Ns",
  lastNs: "Ovntap-Last-Ns",
  drops: "Ovntap-Drops",
  sequence: "Ovntap-Sequence",
  encap: "Ovntap-Encap",
  key: "Ovntap-Key",
} as const;

export const CAPTURE_ENCAPS = ["gre", "erspan2", "erspan3", "none"] as const;

/**
 * The typed batch header. `namespace` and `mirror` are absent together on `_unknown` batches (a key
 * that maps to no mirror); `key` then says which.
 */
export const CaptureBatchHeader = z
  .object({
    namespace: Namespace.optional(),
    mirror: MirrorName.optional(),
    /** The node whose exporter captured the batch. */
    node: NodeName,
    /** pcap LINKTYPE_* of the frames (the low 16 bits of the pcap header's link type field). */
    linkType: intIn(0, 0xffff, "a pcap link type is 16 bits"),
    /** Snaplen the records were cut to; `incl_len ≤ snaplen`. */
    snaplen: intIn(SNAPLEN_MIN, SNAPLEN_MAX, "OVS Mirror.snaplen takes 14..65535"),
    /** Records in the payload; a batch has at least one. */
    count: intIn(1, Number.MAX_SAFE_INTEGER, "a batch holds at least one record"),
    /** Timestamps of the first and last record, nanoseconds since the epoch. */
    firstNs: TimestampNs,
    lastNs: TimestampNs,
    /** Packets lost between the previous batch of this mirror on this node and this one. */
    drops: counter("drops"),
    /**
     * Batch number per (mirror, node), from 0 when the exporter starts: a gap means lost batches
     * (core NATS is at most once), a smaller number means the exporter restarted.
     */
    sequence: counter("sequence"),
    /** What the frames arrived in before decapsulation. */
    encap: z.enum(CAPTURE_ENCAPS, { error: `must be one of ${CAPTURE_ENCAPS.join(", ")}` }),
    /** GRE key or ERSPAN session id the frames carried (absent for `none`). */
    key: intIn(0, GRE_KEY_MAX, "GRE key is 32 bits").optional(),
  })
  .superRefine((h, ctx) => {
    if ((h.namespace === undefined) !== (h.mirror === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: [h.namespace === undefined ? "namespace" : "mirror"],
        message: "namespace and mirror must be given together (both absent only for _unknown batches)",
      });
    }
    if (
      TIMESTAMP_NS_RE.test(h.firstNs) &&
      TIMESTAMP_NS_RE.test(h.lastNs) &&
      BigInt(h.firstNs) > BigInt(h.lastNs)
    ) {
      ctx.addIssue({ code: "custom", path: ["lastNs"], message: "must not be before firstNs" });
    }
    if (h.encap === "none" && h.key !== undefined) {
      ctx.addIssue({ code: "custom", path: ["key"], message: "must be absent when encap is none" });
    }
    if (
      (h.encap === "erspan2" || h.encap === "erspan3") &&
      h.key !== undefined &&
      h.key > ERSPAN_SESSION_MAX
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["key"],
        message: `must be ≤ ${ERSPAN_SESSION_MAX} (ERSPAN session id is 10 bits)`,
      });
    }
  });
export type CaptureBatchHeader = z.infer<typeof CaptureBatchHeader>;

type HeaderField = keyof typeof CAPTURE_HEADERS;
const NUMERIC_FIELDS = new Set<HeaderField>(["linkType", "snaplen", "count", "drops", "sequence", "key"]);
const DECIMAL = /^(0|[1-9][0-9]*)$/;

/** The batch headers as they are on the wire: every value a string. For docs and AsyncAPI. */
export const CaptureWireHeaders = z.object(
  Object.fromEntries(
    (Object.keys(CAPTURE_HEADERS) as HeaderField[]).map((field) => {
      const optional = field === "namespace" || field === "mirror" || field === "key";
      const s =
        NUMERIC_FIELDS.has(field) || field === "firstNs" || field === "lastNs"
          ? z.string().regex(DECIMAL)
          : z.string();
      return [CAPTURE_HEADERS[field], optional ? s.optional() : s];
    }),
  ),
);

/** What the header lookups accept: nats.js `MsgHdrs` (its `get` returns "" when absent), or a plain record. */
export type HeaderSource =
  | { get(name: string): string | null | undefined }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

function lookup(source: HeaderSource, name: string): string | undefined {
  if (typeof source.get === "function") {
    const v = (source as { get(name: string): string | null | undefined }).get(name);
    return v === null || v === undefined || v === "" ? undefined : v;
  }
  // Header names are case-insensitive (NATS headers follow HTTP/MIME conventions).
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(source as Record<string, string | readonly string[] | undefined>)) {
    if (k.toLowerCase() !== lower || v === undefined) continue;
    const first = typeof v === "string" ? v : v[0];
    return first === "" ? undefined : first;
  }
  return undefined;
}

/** Header name → string value for `headers().set(name, value)`; throws `ContractValidationError` on a bad header. */
export function formatCaptureHeaders(header: CaptureBatchHeader): Record<string, string> {
  const valid = parseOrThrow(CaptureBatchHeader, header, "capture batch header");
  const out: Record<string, string> = {};
  for (const field of Object.keys(CAPTURE_HEADERS) as HeaderField[]) {
    const v = valid[field];
    if (v !== undefined) out[CAPTURE_HEADERS[field]] = String(v);
  }
  return out;
}

/**
 * Read a batch header from NATS headers. Numbers must be plain decimals; a field that is missing or
 * malformed is an issue whose path is the field name.
 */
export function parseCaptureHeaders(source: HeaderSource): ValidationResult<CaptureBatchHeader> {
  const raw: Record<string, unknown> = {};
  for (const field of Object.keys(CAPTURE_HEADERS) as HeaderField[]) {
    const v = lookup(source, CAPTURE_HEADERS[field]);
    if (v === undefined) continue;
    // Leave malformed numbers as strings so the schema reports them under the field.
    raw[field] = NUMERIC_FIELDS.has(field) && DECIMAL.test(v) && v.length <= 16 ? Number(v) : v;
  }
  return validate(CaptureBatchHeader, raw, "capture batch header");
}

// ---------------------------------------------------------------------------------------------
// Flows

/** Any IP literal (flows see every address class), in canonical form. */
export const IpAddress = z
  .string(typeError("an IP address literal"))
  .refine((s) => parseIp(s) !== undefined, { error: "must be an IPv4 or IPv6 address literal" })
  .overwrite((s) => canonicalIp(s) ?? s)
  .meta({
    anyOf: [
      { type: "string", format: "ipv4" },
      { type: "string", format: "ipv6" },
    ],
  });

const port = intIn(0, PORT_MAX, "ports are 16 bits");

/** Counters for one 5-tuple over an interval; ports are 0 for protocols without ports. */
export const FlowRecord = z.object({
  /** IANA IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 132 SCTP). */
  protocol: intIn(0, 255, "the IP protocol number is 8 bits"),
  src: IpAddress,
  dst: IpAddress,
  srcPort: port,
  dstPort: port,
  packets: counter("packets"),
  bytes: counter("bytes"),
  firstNs: TimestampNs,
  lastNs: TimestampNs,
});
export type FlowRecord = z.infer<typeof FlowRecord>;

/** Published on `ovntap.v1.flows.<ns>.<mirror>` by each node's exporter every interval. */
export const FlowSummary = z.object({
  namespace: Namespace,
  mirror: MirrorName,
  node: NodeName,
  time: Timestamp,
  intervalSeconds: intIn(1, 3600, "a flow interval is 1 s to 1 h"),
  flows: z.array(FlowRecord).max(FLOWS_PER_MESSAGE_MAX, {
    error: `must hold at most ${FLOWS_PER_MESSAGE_MAX} flows (split larger summaries)`,
  }),
});
export type FlowSummary = z.infer<typeof FlowSummary>;

// ---------------------------------------------------------------------------------------------
// Stats

const statsBase = { namespace: Namespace, mirror: MirrorName, node: NodeName, time: Timestamp };

/**
 * On `ovntap.v1.stats.<ns>.<mirror>`: `ovs` from the node agent (OVS `Mirror.statistics`, which
 * counts what the mirror transmitted), `exporter` from the capture exporter.
 */
export const MirrorStats = z.discriminatedUnion("kind", [
  z.object({
    ...statsBase,
    kind: z.literal("ovs"),
    bridge: BridgeName,
    /** OVS Mirror row name. */
    row: text("row name", 256),
    txPackets: counter("tx_packets"),
    txBytes: counter("tx_bytes"),
  }),
  z.object({
    ...statsBase,
    kind: z.literal("exporter"),
    packets: counter("packets"),
    bytes: counter("bytes"),
    /** Lost before or inside the exporter (kernel ring, queue overflow). */
    drops: counter("drops"),
    /** Arrived with this mirror's key but could not be decapsulated. */
    decapErrors: counter("decapErrors"),
    /** Dropped by the mirror's filter. */
    filtered: counter("filtered"),
  }),
]);
export type MirrorStats = z.infer<typeof MirrorStats>;
