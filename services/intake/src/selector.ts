/** Kubernetes label selector semantics (apimachinery `labels.Selector`), for `list` requests. */
import type { LabelSelector } from "@ovntap/contracts";

/** Every matchLabels pair and every expression must hold; an empty selector matches everything. */
export function selectorMatches(
  selector: LabelSelector | undefined,
  labels: Record<string, string> = {},
): boolean {
  if (!selector) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const value = labels[req.key];
    switch (req.operator) {
      case "In":
        if (!has || value === undefined || !req.values.includes(value)) return false;
        break;
      case "NotIn":
        if (has && value !== undefined && req.values.includes(value)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}
