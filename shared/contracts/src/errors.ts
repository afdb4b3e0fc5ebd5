/**
 * Error codes on the wire, the error body of a failed reply, and the error classes the contract's
 * own helpers throw.
 *
 *     if (!ERROR_CODE_INFO[body.code].retryable) throw new UnrecoverableError(body.message);
 */
import { z } from "zod";
import { text } from "./fields.js";

/** Every code a reply, a `rejected` event or a `failed` event can carry. */
export const ERROR_CODES = {
  /** The body does not match the schema; `issues` say where. */
  INVALID_REQUEST: "INVALID_REQUEST",
  /** Valid, but this cluster cannot do it (OVN/OVS/kernel lacks the feature). */
  UNSUPPORTED: "UNSUPPORTED",
  /** The principal may not do this. */
  FORBIDDEN: "FORBIDDEN",
  /** Policy protects this namespace from mirroring (e.g. kube-system). */
  NAMESPACE_PROTECTED: "NAMESPACE_PROTECTED",
  /** Policy does not allow this sink. */
  SINK_NOT_ALLOWED: "SINK_NOT_ALLOWED",
  /** Too many mirrors for this namespace or principal. */
  QUOTA_EXCEEDED: "QUOTA_EXCEEDED",
  /** The TTL is within the contract's bounds but over this namespace's policy maximum. */
  TTL_TOO_LONG: "TTL_TOO_LONG",
  ALREADY_EXISTS: "ALREADY_EXISTS",
  NOT_FOUND: "NOT_FOUND",
  /** The same requestId was seen with a different body. */
  CONFLICT: "CONFLICT",
  /** The requested GRE key / ERSPAN session id is already used towards this sink (ours or not). */
  KEY_IN_USE: "KEY_IN_USE",
  /** No free key towards this sink. */
  KEY_SPACE_EXHAUSTED: "KEY_SPACE_EXHAUSTED",
  /** A source resolves to no logical switch port / OVS port (yet). */
  PORT_NOT_FOUND: "PORT_NOT_FOUND",
  /** The bridge already has MAX_MIRRORS_PER_BRIDGE mirrors. */
  BRIDGE_MIRROR_LIMIT: "BRIDGE_MIRROR_LIMIT",
  /** The path to the sink cannot carry a mirrored frame plus encapsulation (ENCAP_OVERHEAD). */
  MTU_TOO_SMALL: "MTU_TOO_SMALL",
  /** The kernel lacks the receiving link type (gretap / erspan / ip6erspan). */
  LINK_TYPE_UNSUPPORTED: "LINK_TYPE_UNSUPPORTED",
  INTERNAL: "INTERNAL",
  /** A dependency (NATS, Redis, OVSDB) is down; try again. */
  UNAVAILABLE: "UNAVAILABLE",
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

const codes = Object.values(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];
export const ErrorCode = z.enum(codes, { error: "must be an ovntap error code" });

/**
 * Whether the same operation may succeed later without the request changing. Job processors turn a
 * non-retryable code into BullMQ's `UnrecoverableError` so it is not retried.
 */
export const ERROR_CODE_INFO: Readonly<Record<ErrorCode, { readonly retryable: boolean }>> = {
  INVALID_REQUEST: { retryable: false },
  UNSUPPORTED: { retryable: false },
  FORBIDDEN: { retryable: false },
  NAMESPACE_PROTECTED: { retryable: false },
  SINK_NOT_ALLOWED: { retryable: false },
  QUOTA_EXCEEDED: { retryable: false },
  TTL_TOO_LONG: { retryable: false },
  ALREADY_EXISTS: { retryable: false },
  NOT_FOUND: { retryable: false },
  CONFLICT: { retryable: false },
  KEY_IN_USE: { retryable: false },
  KEY_SPACE_EXHAUSTED: { retryable: true },
  PORT_NOT_FOUND: { retryable: true },
  BRIDGE_MIRROR_LIMIT: { retryable: true },
  MTU_TOO_SMALL: { retryable: false },
  LINK_TYPE_UNSUPPORTED: { retryable: false },
  INTERNAL: { retryable: true },
  UNAVAILABLE: { retryable: true },
};

/** One problem with one field: `path` is dotted (`target.key`, `sources.names[2]`), `message` reads after it. */
export const ErrorIssue = z.object({
  path: z.string(),
  message: text("issue message"),
});
export type ErrorIssue = z.infer<typeof ErrorIssue>;

export const ErrorBody = z.object({
  code: ErrorCode,
  message: text("error message"),
  issues: z.array(ErrorIssue).optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** A subject builder was given a token NATS cannot carry, or a name the contract does not allow. */
export class SubjectTokenError extends Error {
  override readonly name = "SubjectTokenError";
  constructor(
    /** The builder argument at fault, e.g. "namespace". */
    readonly argument: string,
    readonly token: string,
    reason: string,
  ) {
    super(`${argument}: ${JSON.stringify(token)} ${reason}`);
  }
}

/** A job id or queue name cannot be built from these values. */
export class JobIdError extends Error {
  override readonly name = "JobIdError";
  constructor(
    readonly argument: string,
    message: string,
  ) {
    super(`${argument}: ${message}`);
  }
}

/** A value failed its schema where the caller asked for an exception (e.g. formatting headers). */
export class ContractValidationError extends Error {
  override readonly name = "ContractValidationError";
  constructor(
    readonly issues: readonly ErrorIssue[],
    what: string,
    options?: { cause?: unknown },
  ) {
    super(
      `invalid ${what}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")}`,
      options,
    );
  }
}
