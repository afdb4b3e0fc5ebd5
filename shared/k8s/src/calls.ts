/**
 * The Kubernetes API calls ovntap's components make, in RBAC terms (verb, API group, resource,
 * subresource). The deployment's Roles are checked against these lists, and the components'
 * tests check the lists against the calls a fake API server actually served, so a rule that is
 * missing or unused fails a test instead of a rollout.
 *
 *   const seen = fake.calls.map(toApiCall);
 *   expect(sameApiCalls(seen, APPLIER_API_CALLS)).toBe(true);
 */

/** Kubernetes RBAC verbs for resource requests. */
export type ApiVerb =
  "get" | "list" | "watch" | "create" | "update" | "patch" | "delete" | "deletecollection";

export interface ApiCall {
  readonly verb: ApiVerb;
  /** API group; "" for the core group. */
  readonly group: string;
  /** Plural resource name, e.g. "pods". */
  readonly resource: string;
  /** e.g. "status". */
  readonly subresource?: string;
}

/**
 * The ovn-applier with Kubernetes on: a cluster-wide informer on pods (selector sources, pod →
 * node), one on Kube-OVN's ips (pod sinks), and Events on the mirrored pods (created, and patched
 * when a repeat is aggregated into count/lastTimestamp). It never reads single objects.
 */
export const APPLIER_API_CALLS: readonly ApiCall[] = [
  { verb: "list", group: "", resource: "pods" },
  { verb: "watch", group: "", resource: "pods" },
  { verb: "list", group: "kubeovn.io", resource: "ips" },
  { verb: "watch", group: "kubeovn.io", resource: "ips" },
  { verb: "create", group: "", resource: "events" },
  { verb: "patch", group: "", resource: "events" },
];

/** `verb group/resource[/subresource]`, the core group spelled "core". */
export function apiCallKey(c: ApiCall): string {
  return `${c.verb} ${c.group || "core"}/${c.resource}${c.subresource ? `/${c.subresource}` : ""}`;
}

/** Only the RBAC-relevant fields of a call (drops a namespace or anything else a record carries). */
export function toApiCall(c: ApiCall): ApiCall {
  return {
    verb: c.verb,
    group: c.group,
    resource: c.resource,
    ...(c.subresource ? { subresource: c.subresource } : {}),
  };
}

/** The distinct calls, sorted by apiCallKey. */
export function distinctApiCalls(calls: Iterable<ApiCall>): ApiCall[] {
  const byKey = new Map<string, ApiCall>();
  for (const c of calls) byKey.set(apiCallKey(c), toApiCall(c));
  return [...byKey.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, c]) => c);
}

/** The keys of `calls` as a sorted, distinct list: what tests compare. */
export function apiCallKeys(calls: Iterable<ApiCall>): string[] {
  return distinctApiCalls(calls).map(apiCallKey);
}
