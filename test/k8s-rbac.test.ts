/**
 * Least privilege, checked: the RBAC rules deploy/k8s binds to each ServiceAccount, expanded to
 * (verb, group, resource[/subresource]), are exactly the Kubernetes API calls that service's
 * code makes — APPLIER_API_CALLS (@ovntap/k8s) for the ovn-applier, CONTROLLER_API_CALLS
 * (@ovntap/k8s-controller) for the TrafficMirror controller, none for the others. A rule missing
 * fails a rollout; a rule unused is a privilege nobody needs: both fail here, by name.
 */
import { join } from "node:path";
import { APPLIER_API_CALLS, apiCallKey, type ApiCall } from "@ovntap/k8s";
import { CONTROLLER_API_CALLS } from "@ovntap/k8s-controller";
import { describe, expect, it } from "vitest";
import { renderKustomization, type KubeObject } from "../deploy/k8s/tools/kustomize.js";

const base = renderKustomization(join(import.meta.dirname, "..", "deploy", "k8s", "base"));

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface Grant {
  /** `verb group/resource[/subresource]`, as apiCallKey writes it. */
  key: string;
  /** Where it comes from, for the failure message. */
  from: string;
  /** "cluster" for a ClusterRoleBinding (every namespace), else the RoleBinding's namespace. */
  scope: string;
}

/** Every (verb, group, resource) the bindings give each ServiceAccount of the namespace. */
function grants(objects: KubeObject[], namespace: string): Map<string, Grant[]> {
  const out = new Map<string, Grant[]>();
  for (const b of objects.filter((o) => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding")) {
    const { roleRef, subjects = [] } = b as unknown as {
      roleRef: { kind: string; name: string };
      subjects?: { kind: string; name: string; namespace?: string }[];
    };
    const role = objects.find(
      (o) =>
        o.kind === roleRef.kind &&
        o.metadata.name === roleRef.name &&
        (roleRef.kind === "ClusterRole" || o.metadata.namespace === b.metadata.namespace),
    );
    if (!role)
      throw new Error(`${b.kind} ${b.metadata.name}: ${roleRef.kind} ${roleRef.name} is not in the render`);
    const scope = b.kind === "ClusterRoleBinding" ? "cluster" : (b.metadata.namespace ?? "");
    for (const s of subjects) {
      if (s.kind !== "ServiceAccount" || s.namespace !== namespace) continue;
      const list = out.get(s.name) ?? [];
      for (const [i, rule] of ((role as unknown as { rules?: Rule[] }).rules ?? []).entries()) {
        const from = `${role.kind} ${role.metadata.name} rules[${i}] (via ${b.kind} ${b.metadata.name})`;
        for (const wildcard of [...rule.verbs, ...(rule.apiGroups ?? []), ...(rule.resources ?? [])]) {
          if (wildcard.includes("*"))
            throw new Error(`${from}: the wildcard ${wildcard} grants more than any code calls`);
        }
        if (rule.nonResourceURLs?.length)
          throw new Error(`${from}: nonResourceURLs are called by no service`);
        if (rule.resourceNames?.length)
          throw new Error(`${from}: resourceNames are not part of the call lists`);
        for (const verb of rule.verbs)
          for (const group of rule.apiGroups ?? [])
            for (const resource of rule.resources ?? []) {
              const [res = "", sub] = resource.split("/");
              const call = { verb, group, resource: res, ...(sub ? { subresource: sub } : {}) } as ApiCall;
              list.push({ key: apiCallKey(call), from, scope });
            }
      }
      out.set(s.name, list);
    }
  }
  return out;
}

/** What each ServiceAccount's code calls. */
const CALLS: Record<string, readonly ApiCall[]> = {
  "ovn-applier": APPLIER_API_CALLS,
  "k8s-controller": CONTROLLER_API_CALLS,
};

/** The missing and the unused, by name. */
function compare(serviceAccount: string, granted: Grant[], calls: readonly ApiCall[]): string[] {
  const problems: string[] = [];
  const grantedKeys = new Set(granted.map((g) => g.key));
  const callKeys = new Set(calls.map(apiCallKey));
  for (const k of callKeys)
    if (!grantedKeys.has(k)) problems.push(`${serviceAccount}: missing rule for "${k}"`);
  for (const g of granted) {
    if (!callKeys.has(g.key)) problems.push(`${serviceAccount}: unused rule "${g.key}" in ${g.from}`);
    // The call lists name no namespace: informers watch every namespace, Events go to the pods'.
    else if (g.scope !== "cluster")
      problems.push(`${serviceAccount}: "${g.key}" is granted in ${g.scope} only (${g.from})`);
  }
  return problems;
}

describe("RBAC grants exactly the API calls the code makes", () => {
  const byAccount = grants(base, "ovntap");
  const accounts = base.filter((o) => o.kind === "ServiceAccount").map((o) => o.metadata.name);

  it("knows every ServiceAccount of the deployment", () => {
    expect(accounts.sort()).toEqual(
      ["capture-exporter", "console", "intake", "k8s-controller", "node-agent", "ovn-applier"].sort(),
    );
    for (const name of Object.keys(CALLS)) expect(accounts).toContain(name);
  });

  for (const name of [
    "ovn-applier",
    "k8s-controller",
    "intake",
    "capture-exporter",
    "node-agent",
    "console",
  ]) {
    it(`${name}: ${CALLS[name] ? "its calls, and nothing else" : "no rule at all"}`, () => {
      expect(compare(name, byAccount.get(name) ?? [], CALLS[name] ?? [])).toEqual([]);
    });
  }

  it("names a missing rule and an unused one", () => {
    const granted = byAccount.get("k8s-controller") ?? [];
    const calls = [
      ...CONTROLLER_API_CALLS.slice(1),
      { verb: "get", group: "", resource: "secrets" } as ApiCall,
    ];
    expect(compare("k8s-controller", granted, calls)).toEqual([
      'k8s-controller: missing rule for "get core/secrets"',
      'k8s-controller: unused rule "list ovntap.io/trafficmirrors" in ClusterRole ovntap-k8s-controller rules[0] (via ClusterRoleBinding ovntap-k8s-controller)',
    ]);
  });
});
