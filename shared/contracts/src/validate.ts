/**
 * Turning zod errors into wire issues: one `{path, message}` per problem, where the path is dotted
 * and the message names the limit.
 *
 *     const r = validate(MirrorSpec, raw);
 *     if (!r.ok) reply({ ok: false, error: r.error });
 */
import type { z } from "zod";
import { ContractValidationError, ERROR_CODES } from "./errors.js";
import type { ErrorIssue } from "./errors.js";

export interface InvalidRequestError {
  readonly code: typeof ERROR_CODES.INVALID_REQUEST;
  readonly message: string;
  readonly issues: ErrorIssue[];
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; error: InvalidRequestError };

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `["target", "key"]` → `target.key`; `["sources", "names", 2]` → `sources.names[2]`; odd keys are quoted. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (typeof seg === "string" && IDENTIFIER.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/**
 * Default wording for checks that carry no message of their own, passed per parse so that other
 * users of zod in the same process keep theirs.
 */
const errorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case "invalid_type":
      if (iss.input === undefined) return "is required";
      return `must be ${iss.expected === "object" ? "an object" : iss.expected === "array" ? "a list" : `a ${iss.expected}`}`;
    case "invalid_value":
      return `must be ${iss.values.length === 1 ? describe(iss.values[0]) : `one of ${iss.values.map(describe).join(", ")}`}`;
    case "too_big":
      return iss.origin === "array"
        ? `must have at most ${String(iss.maximum)} items`
        : `must be at most ${String(iss.maximum)}`;
    case "too_small":
      return iss.origin === "array"
        ? `must have at least ${String(iss.minimum)} items`
        : `must be at least ${String(iss.minimum)}`;
    default:
      return undefined;
  }
};

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

function flatten(
  issues: readonly z.core.$ZodIssue[],
  base: readonly PropertyKey[],
  raw: unknown,
  out: ErrorIssue[],
) {
  for (const issue of issues) {
    const path = [...base, ...issue.path];
    switch (issue.code) {
      case "unrecognized_keys":
        // One issue per key, so the path names the offending field itself.
        for (const key of issue.keys)
          out.push({ path: formatPath([...path, key]), message: "is not a known field" });
        break;
      case "invalid_key":
        // A bad record key: report the key's own problems at the key.
        flatten(
          issue.issues.map((i) => ({ ...i, path: [] })),
          path,
          raw,
          out,
        );
        break;
      case "invalid_union": {
        const d = issue as z.core.$ZodIssueInvalidUnion & { discriminator?: string; options?: unknown[] };
        if (d.discriminator !== undefined && d.options !== undefined) {
          const got = valueAt(raw, path);
          const choices = d.options.map(describe).join(", ");
          out.push({
            path: formatPath(path),
            message: got === undefined ? `is required (one of ${choices})` : `must be one of ${choices}`,
          });
        } else {
          // When exactly one alternative had the right shape (e.g. a pod sink given as an object),
          // its own issues say more than "matches no alternative".
          const shaped = issue.errors.filter(
            (branch) => !branch.every((i) => i.code === "invalid_type" && i.path.length === 0),
          );
          const [only] = shaped;
          if (shaped.length === 1 && only !== undefined && only.length > 0) flatten(only, path, raw, out);
          else out.push({ path: formatPath(path), message: issue.message });
        }
        break;
      }
      default:
        out.push({ path: formatPath(path), message: issue.message });
    }
  }
}

/** Wire issues from a zod error; `raw` is the parsed input, used to tell "missing" from "wrong". */
export function issuesFromZod(error: z.ZodError, raw?: unknown): ErrorIssue[] {
  const out: ErrorIssue[] = [];
  flatten(error.issues, [], raw, out);
  // A refinement may report what a field check already said; keep the first of each.
  const seen = new Set<string>();
  return out.filter((i) => {
    const k = `${i.path}\u0000${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const SUMMARY_ISSUES = 5;

/** `target.key: must be ≤ 4294967295 (GRE key is 32 bits); snaplen: …` — for logs and CLIs. */
export function summarizeIssues(issues: readonly ErrorIssue[], what = "request"): string {
  const shown = issues.slice(0, SUMMARY_ISSUES).map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
  const more = issues.length > SUMMARY_ISSUES ? `; and ${issues.length - SUMMARY_ISSUES} more` : "";
  return `invalid ${what}: ${shown.join("; ")}${more}`;
}

export function invalid(issues: ErrorIssue[], what = "request"): InvalidRequestError {
  return { code: ERROR_CODES.INVALID_REQUEST, message: summarizeIssues(issues, what), issues };
}

/** Parse `raw` with `schema`; on failure an INVALID_REQUEST body whose issues name each field and limit. */
export function validate<S extends z.ZodType>(
  schema: S,
  raw: unknown,
  what = "request",
): ValidationResult<z.output<S>> {
  const r = schema.safeParse(raw, { error: errorMap });
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, error: invalid(issuesFromZod(r.error, raw), what) };
}

/** Like `validate`, but throws `ContractValidationError`: for values our own code produced. */
export function parseOrThrow<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.output<S> {
  const r = validate(schema, raw, what);
  if (!r.ok) throw new ContractValidationError(r.error.issues, what);
  return r.value;
}
