/**
 * Kubernetes label selector semantics (apimachinery `labels.Selector`) over the contracts'
 * LabelSelector: shared by intake (`list` by labels) and the Kubernetes integration (pods).
 *
 *   matchesLabelSelector({ app: "web" }, { matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] })  // true
 */
import type { LabelSelector } from "./spec.js";

/**
 * Every matchLabels pair and every expression must hold; an empty selector matches everything.
 * NotIn and DoesNotExist also match objects that lack the key (apimachinery semantics).
 */
export function matchesLabelSelector(
  labels: Readonly<Record<string, string>> | undefined,
  selector: LabelSelector,
): boolean {
  const l = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (!Object.hasOwn(l, key) || l[key] !== value) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(l, req.key);
    const value = l[req.key];
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
