/**
 * Flag values: integers, durations, `k=v` labels and Kubernetes label selectors. Each parser
 * throws UsageError naming the flag, so `--ttl 1x` says what `--ttl` takes.
 *
 *   parseSelector("app=web,tier in (a,b),!legacy")
 *   // { matchLabels: { app: "web" }, matchExpressions: [{ key: "tier", operator: "In", values: ["a", "b"] },
 *   //   { key: "legacy", operator: "DoesNotExist" }] }
 */
import type { LabelSelector } from "@ovntap/contracts";
import { UsageError } from "./errors.js";

/** A decimal integer, written as such: `1e3`, `0x10`, `1.0` and `12abc` are refused. */
export function parseInteger(flag: string, value: string, verb?: string): number {
  const s = value.trim();
  if (!/^-?[0-9]+$/.test(s))
    throw new UsageError(`${flag}: ${JSON.stringify(value)} is not an integer`, verb);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${flag}: ${value} is too large`, verb);
  return n;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration in milliseconds: a number of seconds (`90`, `2.5`) or Go-style units (`500ms`, `90s`,
 * `5m`, `1h30m`, `7d`).
 */
export function parseDurationMs(flag: string, value: string, verb?: string): number {
  const s = value.trim();
  if (/^[0-9]+(\.[0-9]+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const re = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) {
      throw new UsageError(
        `${flag}: ${JSON.stringify(value)} is not a duration (seconds, or e.g. 500ms, 90s, 5m, 1h30m, 2d)`,
        verb,
      );
    }
    total += Number(m[1]) * (UNITS[m[2] ?? "s"] ?? 1000);
    pos = re.lastIndex;
  }
  if (s.length === 0) throw new UsageError(`${flag}: needs a duration`, verb);
  return Math.round(total);
}

/** Whole seconds (for `--ttl`): `3600`, `90m`, `1h`; a fraction of a second is refused. */
export function parseSeconds(flag: string, value: string, verb?: string): number {
  const ms = parseDurationMs(flag, value, verb);
  if (ms % 1000 !== 0) throw new UsageError(`${flag}: ${JSON.stringify(value)} is not whole seconds`, verb);
  return ms / 1000;
}

/** `--label a=b --label c=d,e=f` → `{a: "b", c: "d", e: "f"}`; the values are checked by the schema. */
export function parseLabels(flag: string, values: readonly string[], verb?: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    for (const item of v.split(",")) {
      const eq = item.indexOf("=");
      if (eq <= 0) throw new UsageError(`${flag}: ${JSON.stringify(item)} must be key=value`, verb);
      const key = item.slice(0, eq).trim();
      if (Object.hasOwn(out, key))
        throw new UsageError(`${flag}: label ${JSON.stringify(key)} is given twice`, verb);
      out[key] = item.slice(eq + 1).trim();
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Label selectors, in the syntax of `kubectl -l` (apimachinery labels.Parse)

type Requirement = NonNullable<LabelSelector["matchExpressions"]>[number];

/** Splits on commas outside parentheses. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const c of s) {
    if (c === "(") depth++;
    if (c === ")") depth--;
    if (c === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/**
 * `app=web`, `app==web`, `app!=web`, `tier in (a,b)`, `tier notin (a,b)`, `key` (exists), `!key`
 * (does not exist), joined by commas. Equality terms become `matchLabels` (as kubectl's own
 * conversion does), the rest `matchExpressions`; keys and values are checked later by the schema.
 */
export function parseSelector(flag: string, text: string, verb?: string): LabelSelector {
  const matchLabels: Record<string, string> = {};
  const matchExpressions: Requirement[] = [];
  const bad = (term: string, why: string) =>
    new UsageError(
      `${flag}: ${JSON.stringify(term.trim())} ${why} (a selector such as app=web,tier in (a,b),!legacy)`,
      verb,
    );
  if (text.trim() === "") throw new UsageError(`${flag}: needs a selector such as app=web`, verb);
  for (const raw of splitTerms(text)) {
    const term = raw.trim();
    if (term === "") throw bad(raw, "is an empty term");
    let m: RegExpExecArray | null;
    if ((m = /^([^\s=!(),]+)\s+(in|notin)\s*\((.*)\)$/.exec(term))) {
      const [, key = "", op, list = ""] = m;
      // As apimachinery's parser: `in ()` is the set holding the empty value.
      const values = list.split(",").map((v) => v.trim());
      matchExpressions.push({ key, operator: op === "in" ? "In" : "NotIn", values });
    } else if ((m = /^([^\s=!(),]+)\s*!=\s*([^\s=!(),]*)$/.exec(term))) {
      const [, key = "", value = ""] = m;
      matchExpressions.push({ key, operator: "NotIn", values: [value] });
    } else if ((m = /^([^\s=!(),]+)\s*==?\s*([^\s=!(),]*)$/.exec(term))) {
      const [, key = "", value = ""] = m;
      if (Object.hasOwn(matchLabels, key) && matchLabels[key] !== value)
        throw bad(term, `contradicts ${key}=${matchLabels[key]}`);
      matchLabels[key] = value;
    } else if ((m = /^!\s*([^\s=!(),]+)$/.exec(term))) {
      matchExpressions.push({ key: m[1] ?? "", operator: "DoesNotExist" });
    } else if ((m = /^([^\s=!(),]+)$/.exec(term))) {
      matchExpressions.push({ key: m[1] ?? "", operator: "Exists" });
    } else {
      throw bad(term, "is not a selector term");
    }
  }
  return {
    ...(Object.keys(matchLabels).length ? { matchLabels } : {}),
    ...(matchExpressions.length ? { matchExpressions } : {}),
  };
}

/** The inverse of parseSelector, for display. */
export function formatSelector(selector: LabelSelector): string {
  const terms = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const r of selector.matchExpressions ?? []) {
    switch (r.operator) {
      case "In":
        terms.push(`${r.key} in (${r.values.join(",")})`);
        break;
      case "NotIn":
        terms.push(`${r.key} notin (${r.values.join(",")})`);
        break;
      case "Exists":
        terms.push(r.key);
        break;
      case "DoesNotExist":
        terms.push(`!${r.key}`);
        break;
    }
  }
  return terms.join(",");
}
