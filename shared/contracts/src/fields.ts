/**
 * Field schemas shared by every message: names, label keys and values, bounded integers, times.
 *
 * Every check carries its own message naming the limit and where it comes from, because those
 * messages travel back to the requester verbatim (`target.key: must be ≤ 4294967295 (GRE key is
 * 32 bits)`). Messages start lower-case and read after "<path>: ".
 */
import { z } from "zod";
import {
  DNS1123_LABEL_MAX,
  DNS1123_SUBDOMAIN_MAX,
  IFNAME_MAX,
  LABEL_NAME_MAX,
  LABEL_PREFIX_MAX,
  LABEL_VALUE_MAX,
  LABELS_MAX,
  MESSAGE_MAX,
  PORT_NAME_MAX,
  PRINCIPAL_MAX,
  REQUEST_ID_MAX,
  TIMESTAMP_NS_MAX,
} from "./limits.js";

export const DNS1123_LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS1123_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** apimachinery `qualifiedNameFmt`: the name part of a label key. */
const LABEL_NAME_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
/** A label key as one pattern, for JSON Schema; the part lengths are checked separately. */
export const LABEL_KEY_RE =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
/** apimachinery `labelValueFmt`: empty, or the qualified-name form. */
export const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
export const REQUEST_ID_RE = /^[A-Za-z0-9._:-]+$/;
/** Control characters (C0, DEL, C1): principals and names end up in logs and OVSDB strings. */
const CONTROL_RE = /\p{Cc}/u;
const SPACE_OR_CONTROL_RE = /[\s\p{Cc}]/u;
/**
 * The same rules as JSON Schema patterns, which are read without the `u` flag by some validators,
 * so they spell the control ranges out instead of using `\p{Cc}`.
 */
const PRINTABLE_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";
const NO_SPACE_PATTERN = "^[^\\s\\u0000-\\u001f\\u007f-\\u009f]+$";
/** Nanoseconds since the Unix epoch as an unsigned decimal without leading zeros. */
export const TIMESTAMP_NS_RE = /^(0|[1-9][0-9]{0,19})$/;

/** "is required" when absent, else "must be <what>": zod's default names the received type, not the field. */
export function typeError(what: string): { error: (iss: { input?: unknown }) => string } {
  return { error: (iss) => (iss.input === undefined ? "is required" : `must be ${what}`) };
}

/** An integer in `[min, max]`; `why` names the limit ("GRE key is 32 bits"). */
export function intIn(min: number, max: number, why: string) {
  return z
    .number(typeError("an integer"))
    .int({ error: `must be an integer (${why})` })
    .min(min, { error: `must be ≥ ${min} (${why})` })
    .max(max, { error: `must be ≤ ${max} (${why})` });
}

/** A non-negative counter that fits a JavaScript number exactly. */
export function counter(what: string) {
  return intIn(0, Number.MAX_SAFE_INTEGER, `${what} is a non-negative safe integer`);
}

export function dnsLabel(what: string) {
  return z
    .string(typeError("a string"))
    .min(1, { error: `must not be empty (${what} is a DNS-1123 label)` })
    .max(DNS1123_LABEL_MAX, {
      error: `must be at most ${DNS1123_LABEL_MAX} characters (${what} is a DNS-1123 label, RFC 1123 §2.1)`,
    })
    .regex(DNS1123_LABEL_RE, {
      error: `must be a DNS-1123 label (${what}): lower-case letters, digits and '-', starting and ending with a letter or digit`,
    });
}

export function dnsSubdomain(what: string) {
  return z
    .string(typeError("a string"))
    .min(1, { error: `must not be empty (${what} is a DNS-1123 subdomain)` })
    .max(DNS1123_SUBDOMAIN_MAX, {
      error: `must be at most ${DNS1123_SUBDOMAIN_MAX} characters (${what} is a DNS-1123 subdomain, RFC 1123 §2.1)`,
    })
    .regex(DNS1123_SUBDOMAIN_RE, {
      error: `must be a DNS-1123 subdomain (${what}): lower-case letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit`,
    });
}

export const Namespace = dnsLabel("a Kubernetes namespace").meta({
  description: "Kubernetes namespace (DNS-1123 label).",
});
export const MirrorName = dnsLabel("a mirror name").meta({
  description: "Mirror name, unique in its namespace (DNS-1123 label).",
});
export const PodName = dnsSubdomain("a pod name").meta({ description: "Pod name (DNS-1123 subdomain)." });
export const NodeName = dnsSubdomain("a Kubernetes node name").meta({
  description: "Kubernetes node name (DNS-1123 subdomain; may contain dots).",
});

/** OVS bridge: also a Linux netdev of the same name (kernel datapath), so IFNAMSIZ applies. */
export const BridgeName = z
  .string(typeError("a string"))
  .min(1, { error: "must not be empty (an OVS bridge name)" })
  .max(IFNAME_MAX, {
    error: `must be at most ${IFNAME_MAX} characters (an OVS bridge is a Linux netdev; IFNAMSIZ is 16 with the NUL)`,
  })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, {
    error: "must be an interface name: letters, digits, '.', '_' and '-', starting with a letter or digit",
  })
  .meta({ description: "OVS bridge name, e.g. br-int." });

/** OVS port or OVN logical switch port name: neither schema constrains them, we only refuse blanks and controls. */
export function portName(what: string) {
  return z
    .string(typeError("a string"))
    .min(1, { error: `must not be empty (${what})` })
    .max(PORT_NAME_MAX, { error: `must be at most ${PORT_NAME_MAX} characters (${what}; ovntap limit)` })
    .refine((s) => !SPACE_OR_CONTROL_RE.test(s), {
      error: `must not contain whitespace or control characters (${what})`,
    })
    .meta({ pattern: NO_SPACE_PATTERN });
}

export const LabelKey = z
  .string(typeError("a string"))
  .min(1, { error: "must not be empty (a label key)" })
  .max(LABEL_PREFIX_MAX + 1 + LABEL_NAME_MAX, {
    error: `must be at most ${LABEL_PREFIX_MAX + 1 + LABEL_NAME_MAX} characters (label key: prefix ≤ ${LABEL_PREFIX_MAX}, '/', name ≤ ${LABEL_NAME_MAX})`,
  })
  .superRefine((key, ctx) => {
    const slash = key.lastIndexOf("/");
    const prefix = slash === -1 ? undefined : key.slice(0, slash);
    const name = slash === -1 ? key : key.slice(slash + 1);
    if (prefix !== undefined) {
      if (prefix.length === 0 || prefix.length > LABEL_PREFIX_MAX || !DNS1123_SUBDOMAIN_RE.test(prefix)) {
        ctx.addIssue({
          code: "custom",
          message: `label key prefix "${prefix}" must be a DNS-1123 subdomain of at most ${LABEL_PREFIX_MAX} characters (Kubernetes label rules)`,
        });
      }
    }
    if (name.length === 0 || name.length > LABEL_NAME_MAX || !LABEL_NAME_RE.test(name)) {
      ctx.addIssue({
        code: "custom",
        message: `label key name "${name}" must be 1-${LABEL_NAME_MAX} characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit (Kubernetes label rules)`,
      });
    }
  })
  .meta({ pattern: LABEL_KEY_RE.source, description: "Kubernetes label key: [prefix/]name." });

export const LabelValue = z
  .string(typeError("a string"))
  .max(LABEL_VALUE_MAX, {
    error: `must be at most ${LABEL_VALUE_MAX} characters (Kubernetes label value)`,
  })
  .regex(LABEL_VALUE_RE, {
    error:
      "must be empty or letters, digits, '-', '_' and '.', starting and ending with a letter or digit (Kubernetes label value)",
  });

export const Labels = z
  .record(LabelKey, LabelValue)
  .refine((labels) => Object.keys(labels).length <= LABELS_MAX, {
    error: `must have at most ${LABELS_MAX} entries (ovntap limit on labels per mirror)`,
  })
  .meta({ maxProperties: LABELS_MAX, description: "Kubernetes-style labels." });

export const RequestId = z
  .string(typeError("a string"))
  .min(1, { error: "must not be empty (requestId identifies the request for deduplication)" })
  .max(REQUEST_ID_MAX, {
    error: `must be at most ${REQUEST_ID_MAX} characters (requestId; a UUID or ULID fits)`,
  })
  .regex(REQUEST_ID_RE, {
    error: "must use only letters, digits, '.', '_', ':' and '-' (requestId; a UUID or ULID fits)",
  })
  .meta({
    description:
      "Client-chosen idempotency token, e.g. a UUID or ULID. The same requestId with a different body is a CONFLICT.",
  });

/** Who asked: a NATS user, a Kubernetes user, or `system:ovntap:<service>` for what ovntap does on its own. */
export const Principal = z
  .string(typeError("a string"))
  .min(1, { error: "must not be empty (principal)" })
  .max(PRINCIPAL_MAX, { error: `must be at most ${PRINCIPAL_MAX} characters (principal)` })
  .refine((s) => !CONTROL_RE.test(s), { error: "must not contain control characters (principal)" })
  .meta({ pattern: PRINTABLE_PATTERN });

/** Free text for humans: reasons, messages. */
export function text(what: string, max = MESSAGE_MAX) {
  return z
    .string(typeError("a string"))
    .max(max, { error: `must be at most ${max} characters (${what})` })
    .refine((s) => !s.includes("\u0000"), { error: `must not contain NUL characters (${what})` });
}

/** A machine-readable reason in CamelCase, Kubernetes-condition style (`SinkUnreachable`). */
export const Reason = z
  .string(typeError("a string"))
  .min(1, { error: "must not be empty (reason)" })
  .max(128, { error: "must be at most 128 characters (reason)" })
  .regex(/^[A-Za-z][A-Za-z0-9_]*$/, { error: "must be CamelCase letters and digits (reason)" });

/** RFC 3339 time in UTC with a `Z`, as `new Date().toISOString()` writes it. */
export const Timestamp = z.iso.datetime({
  error: "must be an RFC 3339 UTC time like 2025-01-31T12:00:00.000Z",
});

/** Nanoseconds since the epoch as a decimal string: a number would lose precision beyond 2^53. */
export const TimestampNs = z
  .string(typeError("a string of decimal digits"))
  .regex(TIMESTAMP_NS_RE, { error: "must be nanoseconds since the Unix epoch as decimal digits" })
  .refine((s) => !TIMESTAMP_NS_RE.test(s) || BigInt(s) <= TIMESTAMP_NS_MAX, {
    error: `must be ≤ ${TIMESTAMP_NS_MAX} (an unsigned 64-bit nanosecond count)`,
  });

/** A check for arrays of primitives: no value twice. */
export function uniqueItems<T>(what: string) {
  return (items: T[], ctx: z.RefinementCtx<T[]>) => {
    const seen = new Set<T>();
    items.forEach((item, i) => {
      if (seen.has(item)) {
        ctx.addIssue({ code: "custom", path: [i], message: `duplicates ${JSON.stringify(item)} (${what})` });
      }
      seen.add(item);
    });
  };
}
