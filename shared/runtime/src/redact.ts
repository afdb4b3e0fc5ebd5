/**
 * Secret scrubbing for log records: values under secret-looking keys are replaced, and
 * credentials inside URLs (`nats://user:pass@host`, `redis://:pass@host`,
 * `nats://token@host`, `?token=…`) are masked wherever a string is logged.
 *
 *   redactUrl("redis://:hunter2@10.0.0.5:6379/0")  // "redis://:***@10.0.0.5:6379/0"
 */

export const REDACTED = "***";

/** Keys whose values are secrets whatever they hold. */
const SECRET_KEY = /(pass(word|wd)?|secret|token|authorization|cookie|api[-_]?key|private[-_]?key)$/i;

// scheme://userinfo@ — userinfo stops at "@", "/", "?", "#" or whitespace, and never
// crosses a quote or backslash, so masking a serialized JSON line keeps it valid JSON.
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@"\\]+)@/gi;
// ?token=… / &password=… in query strings.
const QUERY_SECRET = /([?&](?:pass(?:word)?|token|secret|auth|key)=)[^&#\s"\\]*/gi;

/** Masks credentials in every URL inside `text`; other text is returned unchanged. */
export function redactUrl(text: string): string {
  if (!text.includes("://") && !text.includes("=")) return text;
  return text
    .replace(URL_USERINFO, (_m, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(":");
      // user:password keeps the user (useful when debugging auth); a bare userinfo
      // is a NATS token or a password-only form, so all of it goes.
      return colon >= 0 ? `${scheme}${userinfo.slice(0, colon)}:${REDACTED}@` : `${scheme}${REDACTED}@`;
    })
    .replace(QUERY_SECRET, `$1${REDACTED}`);
}

/**
 * Returns a copy of `value` with secrets masked: plain objects and arrays are walked
 * (to `depth` levels), strings are URL-scrubbed, anything else (Errors, Buffers, class
 * instances) is passed through untouched for pino's serializers. Returns the input
 * itself when nothing needed masking, so the common case allocates nothing.
 */
export function redactSecrets<T>(value: T, depth = 4): T {
  return scrub(value, depth) as T;
}

function scrub(value: unknown, depth: number): unknown {
  if (typeof value === "string") return redactUrl(value);
  if (depth <= 0 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    value.forEach((v, i) => {
      const s = scrub(v, depth - 1);
      if (s !== v) (out ??= [...(value as unknown[])])[i] = s;
    });
    return out ?? value;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const s =
      SECRET_KEY.test(k) && v !== undefined && v !== null && v !== "" ? REDACTED : scrub(v, depth - 1);
    if (s !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = s;
  }
  return out ?? value;
}
