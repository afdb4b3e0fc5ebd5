/**
 * Canonical JSON and the request hash used for deduplication: two bodies that differ only in key
 * order (or in `undefined` members, which JSON drops) hash the same.
 *
 *     requestHash({ principal, request })  // "9f86d081…" (sha256, hex)
 */
import { createHash } from "node:crypto";

/** JSON with object keys sorted at every level; `undefined` members are left out, as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : sortKeys(v)));
  if (value !== null && typeof value === "object") {
    // No prototype: a "__proto__" key stays a key instead of replacing the prototype.
    const out = Object.create(null) as Record<string, unknown>;
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** sha256 (hex) of the canonical JSON of `value`. */
export function requestHash(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex");
}
