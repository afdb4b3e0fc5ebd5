/**
 * NATS subjects, streams and buckets. Build subjects only with these functions: each refuses a
 * token NATS would split or treat as a wildcard, so a name can never widen a subscription or a
 * permission.
 *
 *     reqSubject("shop")                     // "ovntap.v1.req.shop"
 *     captureSubject("shop", "web", "node-1") // "ovntap.v1.capture.shop.web.node-1"
 *     parseSubject("ovntap.v1.events.shop.web") // { kind: "events", namespace: "shop", mirror: "web" }
 *
 * Refinement of DESIGN.md: capture, flow and stats subjects carry the namespace token too
 * (`ovntap.v1.capture.<ns>.<mirror>.<node>`, `ovntap.v1.flows.<ns>.<mirror>`,
 * `ovntap.v1.stats.<ns>.<mirror>`), so one NATS permission per namespace (`ovntap.v1.*.<ns>.>`,
 * see `namespaceSubjects`) grants a team its requests, its events and its packet data, and nothing
 * of anyone else's. Mirror names are only unique within a namespace, so the namespace token is also
 * what keeps two teams' `web` mirrors apart.
 *
 * Node names are DNS-1123 subdomains and often contain dots (`ip-10-0-0-1.ec2.internal`). In a
 * subject a node is one token with each `.` written as `_` (`nodeToken`), which cannot collide
 * because `_` is not allowed in node names. KV keys and queue names use the node name unchanged.
 */
import { SubjectTokenError } from "./errors.js";
import { DNS1123_LABEL_RE, DNS1123_SUBDOMAIN_RE } from "./fields.js";
import { DNS1123_LABEL_MAX, DNS1123_SUBDOMAIN_MAX } from "./limits.js";

export const SUBJECT_PREFIX = "ovntap.v1";

/** Every request subject; intake subscribes here in a queue group. */
export const reqWildcard = "ovntap.v1.req.>";

/** JetStream stream holding lifecycle events: file storage, no delete, no purge — the audit trail. */
export const EVENTS_STREAM = "OVNTAP_EVENTS";
export const EVENTS_STREAM_SUBJECTS = "ovntap.v1.events.>";

/** Optional JetStream stream over packet batches, with a max age, for replay. */
export const CAPTURE_STREAM = "OVNTAP_CAPTURE";
export const CAPTURE_STREAM_SUBJECTS = "ovntap.v1.capture.>";

/** JetStream KV bucket: the latest heartbeat of each agent, keyed by node name. */
export const AGENTS_KV_BUCKET = "ovntap_agents";

/** TCP port of the exporter's PCAP-over-IP listener (NetworkMiner's default PCAP-over-IP port). */
export const PCAP_OVER_IP_PORT = 57012;

/** The namespace-position token for packets whose GRE key / session id maps to no mirror. */
export const UNKNOWN_TOKEN = "_unknown";

/** Whitespace and control characters, which NATS does not allow inside a subject. */
const SPACE = /[\s\p{Cc}]/u;

/** NATS token rules: non-empty, no `.` (separator), no `*` or `>` (wildcards), no whitespace. */
function natsToken(argument: string, token: unknown): string {
  if (typeof token !== "string") throw new SubjectTokenError(argument, String(token), "must be a string");
  if (token === "")
    throw new SubjectTokenError(argument, token, "is empty; a subject token needs at least one character");
  for (const [ch, why] of [
    [".", "'.' separates NATS subject tokens"],
    ["*", "'*' is a NATS wildcard"],
    [">", "'>' is a NATS wildcard"],
  ] as const) {
    if (token.includes(ch))
      throw new SubjectTokenError(argument, token, `contains ${JSON.stringify(ch)}: ${why}`);
  }
  if (SPACE.test(token)) {
    throw new SubjectTokenError(
      argument,
      token,
      "contains whitespace or a control character, which NATS subjects cannot",
    );
  }
  return token;
}

function labelToken(argument: string, value: unknown): string {
  const token = natsToken(argument, value);
  if (token.length > DNS1123_LABEL_MAX || !DNS1123_LABEL_RE.test(token)) {
    throw new SubjectTokenError(
      argument,
      token,
      `is not a DNS-1123 label (at most ${DNS1123_LABEL_MAX} of a-z, 0-9 and '-', starting and ending with a letter or digit)`,
    );
  }
  return token;
}

/** The subject token for a node: its name with `.` written as `_`. */
export function nodeToken(node: string): string {
  if (typeof node !== "string") throw new SubjectTokenError("node", String(node), "must be a string");
  if (node === "")
    throw new SubjectTokenError("node", node, "is empty; a subject token needs at least one character");
  for (const ch of ["*", ">"]) {
    if (node.includes(ch))
      throw new SubjectTokenError("node", node, `contains ${JSON.stringify(ch)}: a NATS wildcard`);
  }
  if (SPACE.test(node)) {
    throw new SubjectTokenError(
      "node",
      node,
      "contains whitespace or a control character, which NATS subjects cannot",
    );
  }
  if (node.length > DNS1123_SUBDOMAIN_MAX || !DNS1123_SUBDOMAIN_RE.test(node)) {
    throw new SubjectTokenError(
      "node",
      node,
      "is not a Kubernetes node name (a DNS-1123 subdomain: a-z, 0-9, '-' and '.')",
    );
  }
  return node.replaceAll(".", "_");
}

/** Inverse of `nodeToken`. */
export function nodeFromToken(token: string): string {
  return token.replaceAll("_", ".");
}

export function reqSubject(namespace: string): string {
  return `${SUBJECT_PREFIX}.req.${labelToken("namespace", namespace)}`;
}

export function eventSubject(namespace: string, mirror: string): string {
  return `${SUBJECT_PREFIX}.events.${labelToken("namespace", namespace)}.${labelToken("mirror", mirror)}`;
}

export function captureSubject(namespace: string, mirror: string, node: string): string {
  return `${SUBJECT_PREFIX}.capture.${labelToken("namespace", namespace)}.${labelToken("mirror", mirror)}.${nodeToken(node)}`;
}

/** Packets the exporter on `node` could not map to a mirror; `_unknown` cannot be a namespace. */
export function unknownCaptureSubject(node: string): string {
  return `${SUBJECT_PREFIX}.capture.${UNKNOWN_TOKEN}.${nodeToken(node)}`;
}

export function flowSubject(namespace: string, mirror: string): string {
  return `${SUBJECT_PREFIX}.flows.${labelToken("namespace", namespace)}.${labelToken("mirror", mirror)}`;
}

export function statsSubject(namespace: string, mirror: string): string {
  return `${SUBJECT_PREFIX}.stats.${labelToken("namespace", namespace)}.${labelToken("mirror", mirror)}`;
}

export function agentSubject(node: string): string {
  return `${SUBJECT_PREFIX}.agents.${nodeToken(node)}`;
}

/** Every agent heartbeat. */
export const agentWildcard = "ovntap.v1.agents.*";

/**
 * The subjects a team owning `namespace` needs, as NATS permission patterns: publish `req`,
 * subscribe to the rest.
 */
export function namespaceSubjects(namespace: string): {
  req: string;
  events: string;
  capture: string;
  flows: string;
  stats: string;
} {
  const ns = labelToken("namespace", namespace);
  return {
    req: `${SUBJECT_PREFIX}.req.${ns}`,
    events: `${SUBJECT_PREFIX}.events.${ns}.>`,
    capture: `${SUBJECT_PREFIX}.capture.${ns}.>`,
    flows: `${SUBJECT_PREFIX}.flows.${ns}.>`,
    stats: `${SUBJECT_PREFIX}.stats.${ns}.>`,
  };
}

export type ParsedSubject =
  | { kind: "req"; namespace: string }
  | { kind: "events"; namespace: string; mirror: string }
  | { kind: "capture"; namespace: string; mirror: string; node: string }
  | { kind: "captureUnknown"; node: string }
  | { kind: "flows"; namespace: string; mirror: string }
  | { kind: "stats"; namespace: string; mirror: string }
  | { kind: "agent"; node: string };

const isLabel = (t: string | undefined): t is string =>
  t !== undefined && t.length <= DNS1123_LABEL_MAX && DNS1123_LABEL_RE.test(t);
const isNodeToken = (t: string | undefined): t is string =>
  t !== undefined &&
  !t.includes(".") &&
  DNS1123_SUBDOMAIN_RE.test(nodeFromToken(t)) &&
  t.length <= DNS1123_SUBDOMAIN_MAX;

/** What an ovntap subject addresses, or `undefined` if it is not one the builders would produce. */
export function parseSubject(subject: string): ParsedSubject | undefined {
  const tokens = subject.split(".");
  if (tokens[0] !== "ovntap" || tokens[1] !== "v1") return undefined;
  const [, , kind, a, b, c, ...rest] = tokens;
  if (rest.length > 0) return undefined;
  switch (kind) {
    case "req":
      return isLabel(a) && b === undefined ? { kind, namespace: a } : undefined;
    case "events":
    case "flows":
    case "stats":
      return isLabel(a) && isLabel(b) && c === undefined ? { kind, namespace: a, mirror: b } : undefined;
    case "capture":
      if (a === UNKNOWN_TOKEN)
        return isNodeToken(b) && c === undefined
          ? { kind: "captureUnknown", node: nodeFromToken(b) }
          : undefined;
      return isLabel(a) && isLabel(b) && isNodeToken(c)
        ? { kind, namespace: a, mirror: b, node: nodeFromToken(c) }
        : undefined;
    case "agents":
      return isNodeToken(a) && b === undefined ? { kind: "agent", node: nodeFromToken(a) } : undefined;
    default:
      return undefined;
  }
}
