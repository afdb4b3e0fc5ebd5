/**
 * Requests on `ovntap.v1.req.<ns>` and their replies.
 *
 *     const r = validateRequest(JSON.parse(msg.string()), { subject: msg.subject });
 *     if (!r.ok) return msg.respond(JSON.stringify({ ok: false, error: r.error }));
 *     switch (r.value.op) { case "create": …; }
 *
 * `principal` in a body is a claim: intake replaces it with (or checks it against) the identity
 * NATS authenticated. `requestId` makes a request idempotent: the same id and body get the same
 * reply; the same id with another body is a CONFLICT.
 */
import { z } from "zod";
import { ErrorBody } from "./errors.js";
import { MirrorName, Namespace, Principal, RequestId } from "./fields.js";
import { LabelSelector, MirrorSpec, TtlSeconds } from "./spec.js";
import { MirrorRecord, MirrorStatus } from "./status.js";
import { parseSubject, reqSubject } from "./subjects.js";
import { invalid, validate } from "./validate.js";
import type { InvalidRequestError, ValidationResult } from "./validate.js";

const base = { requestId: RequestId, principal: Principal.optional() };

export const CreateRequest = z.strictObject({ ...base, op: z.literal("create"), spec: MirrorSpec });
export const DeleteRequest = z.strictObject({
  ...base,
  op: z.literal("delete"),
  namespace: Namespace,
  name: MirrorName,
});
export const GetRequest = z.strictObject({
  ...base,
  op: z.literal("get"),
  namespace: Namespace,
  name: MirrorName,
});
/** Mirrors in a namespace, optionally only those whose labels match `selector`. */
export const ListRequest = z.strictObject({
  ...base,
  op: z.literal("list"),
  namespace: Namespace,
  selector: LabelSelector.optional(),
});
/** Sets the mirror to expire `ttlSeconds` after intake accepts this request (not added to the old expiry). */
export const ExtendRequest = z.strictObject({
  ...base,
  op: z.literal("extend"),
  namespace: Namespace,
  name: MirrorName,
  ttlSeconds: TtlSeconds,
});

export const MirrorRequest = z.discriminatedUnion("op", [
  CreateRequest,
  DeleteRequest,
  GetRequest,
  ListRequest,
  ExtendRequest,
]);
export type MirrorRequest = z.infer<typeof MirrorRequest>;
export type CreateRequest = z.infer<typeof CreateRequest>;
export type DeleteRequest = z.infer<typeof DeleteRequest>;
export type GetRequest = z.infer<typeof GetRequest>;
export type ListRequest = z.infer<typeof ListRequest>;
export type ExtendRequest = z.infer<typeof ExtendRequest>;
export type RequestOp = MirrorRequest["op"];
export const REQUEST_OPS = [
  "create",
  "delete",
  "get",
  "list",
  "extend",
] as const satisfies readonly RequestOp[];

// ---------------------------------------------------------------------------------------------
// Replies

export const ErrorReply = z.object({ ok: z.literal(false), error: ErrorBody });
export type ErrorReply = z.infer<typeof ErrorReply>;

/** Reply to create, delete, get and extend: the record and its status as they are now. */
export const MirrorReplyOk = z.object({ ok: z.literal(true), mirror: MirrorRecord, status: MirrorStatus });
export const MirrorReply = z.discriminatedUnion("ok", [MirrorReplyOk, ErrorReply]);
export type MirrorReply = z.infer<typeof MirrorReply>;

export const MirrorListItem = z.object({ mirror: MirrorRecord, status: MirrorStatus });
export const ListReplyOk = z.object({ ok: z.literal(true), items: z.array(MirrorListItem) });
export const ListReply = z.discriminatedUnion("ok", [ListReplyOk, ErrorReply]);
export type ListReply = z.infer<typeof ListReply>;

/** Any reply on the request channel. */
export const Reply = z.union([MirrorReplyOk, ListReplyOk, ErrorReply]);
export type Reply = z.infer<typeof Reply>;

// ---------------------------------------------------------------------------------------------
// Validation at the edge

/** The namespace a request is about, and where in the body it is written. */
export function requestNamespace(request: MirrorRequest): { namespace: string; path: string } {
  return request.op === "create"
    ? { namespace: request.spec.namespace, path: "spec.namespace" }
    : { namespace: request.namespace, path: "namespace" };
}

/**
 * The namespace in the body must be the one in the subject: NATS permissions are granted per
 * subject, so a body naming another namespace would escape them. Returns the INVALID_REQUEST body
 * to reply with, or `undefined` when they agree.
 */
export function checkSubjectNamespace(
  subject: string,
  request: MirrorRequest,
): InvalidRequestError | undefined {
  const parsed = parseSubject(subject);
  if (parsed?.kind !== "req") {
    return invalid([
      {
        path: "",
        message: `subject ${JSON.stringify(subject)} is not a request subject (ovntap.v1.req.<namespace>)`,
      },
    ]);
  }
  const { namespace, path } = requestNamespace(request);
  if (namespace === parsed.namespace) return undefined;
  return invalid([
    {
      path,
      message: `must equal the subject's namespace "${parsed.namespace}" (${reqSubject(parsed.namespace)}): permissions are granted per subject`,
    },
  ]);
}

/**
 * Validate a request body as received. With `subject`, also require the body's namespace to match
 * it. Fails with INVALID_REQUEST and one issue per problem, each naming the field and the limit.
 */
export function validateRequest(
  raw: unknown,
  options: { subject?: string } = {},
): ValidationResult<MirrorRequest> {
  const r = validate(MirrorRequest, raw);
  if (!r.ok || options.subject === undefined) return r;
  const mismatch = checkSubjectNamespace(options.subject, r.value);
  return mismatch ? { ok: false, error: mismatch } : r;
}

/** Validate a spec on its own (the CLI checks before sending). */
export function validateSpec(raw: unknown): ValidationResult<MirrorSpec> {
  return validate(MirrorSpec, raw, "mirror spec");
}
