/**
 * Kubernetes label selectors (apimachinery `labels.Selector`): matching a `LabelSelector` object
 * (metav1.LabelSelector, the contracts' shape) against labels, and its string form as the API's
 * `labelSelector` query parameter carries it.
 *
 *   matchesLabelSelector({ app: "web" }, { matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] })  // true
 *   formatLabelSelector({ matchLabels: { app: "web" } })   // "app=web"
 *   parseLabelSelector("app in (web,api),!canary")         // { matchExpressions: [...] }
 */
import type { LabelSelector, LabelSelectorRequirement } from "@ovntap/contracts";

export { matchesLabelSelector } from "@ovntap/contracts";

/** The `labelSelector` query string of a selector (metav1.FormatLabelSelector), terms sorted. */
export function formatLabelSelector(selector: LabelSelector): string {
  const terms: string[] = [];
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) terms.push(`${k}=${v}`);
  for (const r of selector.matchExpressions ?? []) {
    switch (r.operator) {
      case "In":
        terms.push(`${r.key} in (${[...r.values].sort().join(",")})`);
        break;
      case "NotIn":
        terms.push(`${r.key} notin (${[...r.values].sort().join(",")})`);
        break;
      case "Exists":
        terms.push(r.key);
        break;
      case "DoesNotExist":
        terms.push(`!${r.key}`);
        break;
    }
  }
  return terms.sort().join(",");
}

export class LabelSelectorSyntaxError extends Error {
  override name = "LabelSelectorSyntaxError";
}

/**
 * Parses the string form (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, joined by
 * commas). `a!=b` becomes NotIn [b], which, like the API server's `!=`, also matches objects
 * without `a`. Throws LabelSelectorSyntaxError naming the offending term.
 */
export function parseLabelSelector(text: string): LabelSelector {
  const matchLabels: Record<string, string> = {};
  const matchExpressions: LabelSelectorRequirement[] = [];
  for (const term of splitTerms(text)) {
    const t = term.trim();
    if (t === "") continue;
    let m: RegExpMatchArray | null;
    if ((m = /^!\s*([^\s=!(),]+)$/.exec(t))) {
      matchExpressions.push({ key: m[1]!, operator: "DoesNotExist" });
    } else if ((m = /^([^\s=!(),]+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(t))) {
      const values = m[3]!
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "");
      if (values.length === 0)
        throw new LabelSelectorSyntaxError(`label selector term "${t}": empty value set`);
      matchExpressions.push({ key: m[1]!, operator: m[2] === "in" ? "In" : "NotIn", values });
    } else if ((m = /^([^\s=!(),]+)\s*!=\s*([^\s=!(),]*)$/.exec(t))) {
      matchExpressions.push({ key: m[1]!, operator: "NotIn", values: [m[2]!] });
    } else if ((m = /^([^\s=!(),]+)\s*==?\s*([^\s=!(),]*)$/.exec(t))) {
      const [key, value] = [m[1]!, m[2]!];
      if (Object.hasOwn(matchLabels, key) && matchLabels[key] !== value) {
        matchExpressions.push({ key, operator: "In", values: [value] });
      } else {
        matchLabels[key] = value;
      }
    } else if ((m = /^([^\s=!(),]+)$/.exec(t))) {
      matchExpressions.push({ key: m[1]!, operator: "Exists" });
    } else {
      throw new LabelSelectorSyntaxError(
        `label selector term "${t}" is not one of: key=value, key!=value, key in (v1,v2), key notin (v1), key, !key`,
      );
    }
  }
  return {
    ...(Object.keys(matchLabels).length > 0 ? { matchLabels } : {}),
    ...(matchExpressions.length > 0 ? { matchExpressions } : {}),
  };
}

/** Splits on commas outside parentheses. */
function splitTerms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "(") depth++;
    else if (c === ")") depth = Math.max(0, depth - 1);
    else if (c === "," && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}
