/**
 * Structural validation of Kubernetes manifests without an API server, against the API's own
 * types: the models `@kubernetes/client-node` generates from the Kubernetes OpenAPI document
 * (their attribute maps give every field's type; their declarations mark the required ones).
 * What `kubectl apply --validate=strict` would refuse for a typo, a wrong type or a missing
 * field is reported here, with the path:
 *
 *     schemaProblems(objects)     // ["Deployment ovntap/intake: spec.template.spec.containers[0].imagee: unknown field"]
 *     referenceProblems(objects)  // ["Deployment ovntap/intake: serviceAccountName intake: no such ServiceAccount"]
 *
 * `referenceProblems` checks what the API server would take but the cluster could not run: a
 * selector that does not select the template, a ConfigMap key or ServiceAccount that does not
 * exist in the render, a probe on an unnamed port, a mount without a volume.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import type { KubeObject } from "./kustomize.js";

interface Attribute {
  name: string;
  baseName: string;
  type: string;
  format: string;
}

interface Model {
  getAttributeTypeMap(): Attribute[];
}

const models = k8s as unknown as Record<string, Model | undefined>;
const modelsDir = join(
  dirname(createRequire(import.meta.url).resolve("@kubernetes/client-node")),
  "gen",
  "models",
);
const requiredCache = new Map<string, Set<string>>();

/** Required properties of a model: those its declaration does not mark optional (`'name': string;`). */
function requiredOf(model: string): Set<string> {
  let required = requiredCache.get(model);
  if (!required) {
    const text = readFileSync(join(modelsDir, `${model}.d.ts`), "utf8");
    required = new Set([...text.matchAll(/^\s+'([^']+)': /gm)].map((m) => m[1] as string));
    requiredCache.set(model, required);
  }
  return required;
}

/** The client-node model of an object: `apps/v1` Deployment → V1Deployment. */
export function modelName(apiVersion: string, kind: string): string {
  const version = apiVersion.split("/").pop() ?? "";
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(o: KubeObject): string {
  return `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata.name}`;
}

function check(value: unknown, type: string, format: string, path: string, out: string[]): void {
  const at = path || "<root>";
  if (type === "any") return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) return void out.push(`${at}: must be a list`);
    value.forEach((v, i) => check(v, array[1] as string, "", `${path}[${i}]`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (!isMap(value)) return void out.push(`${at}: must be a mapping`);
    for (const [k, v] of Object.entries(value)) check(v, map[1] as string, "", `${path}.${k}`, out);
    return;
  }
  switch (type) {
    case "string":
      if (typeof value !== "string") out.push(`${at}: must be a string, not ${JSON.stringify(value)}`);
      return;
    case "boolean":
      if (typeof value !== "boolean") out.push(`${at}: must be true or false`);
      return;
    case "number":
      if (typeof value !== "number") out.push(`${at}: must be a number, not ${JSON.stringify(value)}`);
      else if ((format === "int32" || format === "int64") && !Number.isInteger(value)) {
        out.push(`${at}: must be an integer`);
      }
      return;
    case "IntOrString":
      if (typeof value !== "number" && typeof value !== "string")
        out.push(`${at}: must be a number or a name`);
      return;
    case "Date":
      if (typeof value !== "string" || Number.isNaN(Date.parse(value)))
        out.push(`${at}: must be an RFC 3339 time`);
      return;
    case "object":
      if (!isMap(value)) out.push(`${at}: must be a mapping`);
      return;
  }
  const model = models[type];
  if (!model || typeof model.getAttributeTypeMap !== "function") {
    out.push(`${at}: no model ${type} to check against`);
    return;
  }
  if (!isMap(value)) return void out.push(`${at}: must be a mapping (${type})`);
  const attributes = model.getAttributeTypeMap();
  const byName = new Map(attributes.map((a) => [a.baseName, a]));
  for (const [k, v] of Object.entries(value)) {
    const attr = byName.get(k);
    if (!attr) out.push(`${path ? `${path}.` : ""}${k}: unknown field (${type})`);
    else if (v !== null) check(v, attr.type, attr.format, path ? `${path}.${k}` : k, out);
  }
  for (const name of requiredOf(type)) {
    const attr = attributes.find((a) => a.name === name);
    if (attr && value[attr.baseName] === undefined) {
      out.push(`${path ? `${path}.` : ""}${attr.baseName}: is required (${type})`);
    }
  }
}

/** Every field of every object checked against its Kubernetes type; one message per problem. */
export function schemaProblems(objects: readonly KubeObject[]): string[] {
  const out: string[] = [];
  for (const o of objects) {
    const model = modelName(o.apiVersion, o.kind);
    if (!models[model]) {
      out.push(`${describe(o)}: ${o.apiVersion} ${o.kind} is not a Kubernetes type this check knows`);
      continue;
    }
    const problems: string[] = [];
    check(o, model, "", "", problems);
    out.push(...problems.map((p) => `${describe(o)}: ${p}`));
  }
  return out;
}

interface PodSpec {
  serviceAccountName?: string;
  containers?: Container[];
  initContainers?: Container[];
  volumes?: { name: string; configMap?: { name: string } }[];
}
interface Container {
  name: string;
  ports?: { name?: string; containerPort: number }[];
  env?: {
    name: string;
    valueFrom?: { configMapKeyRef?: { name: string; key: string; optional?: boolean } };
  }[];
  volumeMounts?: { name: string }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
}
interface Probe {
  httpGet?: { port: number | string };
  tcpSocket?: { port: number | string };
}

const WORKLOADS = new Set(["Deployment", "DaemonSet", "StatefulSet"]);

/** The pod template of a workload, and its labels. */
export function podTemplate(o: KubeObject): { labels: Record<string, string>; spec: PodSpec } | undefined {
  if (!WORKLOADS.has(o.kind)) return undefined;
  const spec = o.spec as { template?: { metadata?: { labels?: Record<string, string> }; spec?: PodSpec } };
  return { labels: spec.template?.metadata?.labels ?? {}, spec: spec.template?.spec ?? {} };
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Cross-object problems: references to objects or keys the render lacks, selectors that miss. */
export function referenceProblems(objects: readonly KubeObject[]): string[] {
  const out: string[] = [];
  const find = (kind: string, name: string, namespace?: string) =>
    objects.find(
      (o) =>
        o.kind === kind &&
        o.metadata.name === name &&
        (namespace === undefined || o.metadata.namespace === namespace),
    );
  const templates = objects.map((o) => ({ o, t: podTemplate(o) })).filter((x) => x.t !== undefined);

  for (const o of objects) {
    const ns = o.metadata.namespace;
    const t = podTemplate(o);
    if (t) {
      const selector = (o.spec as { selector?: { matchLabels?: Record<string, string> } }).selector
        ?.matchLabels;
      if (!selects(selector, t.labels))
        out.push(`${describe(o)}: spec.selector does not select its own template`);
      const sa = t.spec.serviceAccountName;
      if (sa && !find("ServiceAccount", sa, ns))
        out.push(`${describe(o)}: serviceAccountName ${sa}: no such ServiceAccount`);
      // A StatefulSet's claim templates are volumes of its pods too.
      const claims = (o.spec as { volumeClaimTemplates?: { metadata: { name: string } }[] })
        .volumeClaimTemplates;
      const volumes = new Set(
        [...(t.spec.volumes ?? []), ...(claims ?? []).map((c) => c.metadata)].map((v) => v.name),
      );
      for (const v of t.spec.volumes ?? []) {
        if (v.configMap && !find("ConfigMap", v.configMap.name, ns)) {
          out.push(`${describe(o)}: volume ${v.name}: no ConfigMap ${v.configMap.name}`);
        }
      }
      for (const c of [...(t.spec.containers ?? []), ...(t.spec.initContainers ?? [])]) {
        const portNames = new Set((c.ports ?? []).map((p) => p.name).filter(Boolean));
        for (const m of c.volumeMounts ?? []) {
          if (!volumes.has(m.name))
            out.push(`${describe(o)}: container ${c.name} mounts ${m.name}, which is no volume`);
        }
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.configMapKeyRef;
          if (!ref || ref.optional) continue;
          const cm = find("ConfigMap", ref.name, ns) as { data?: Record<string, string> } | undefined;
          if (!cm) out.push(`${describe(o)}: env ${e.name}: no ConfigMap ${ref.name}`);
          else if (cm.data?.[ref.key] === undefined)
            out.push(`${describe(o)}: env ${e.name}: ConfigMap ${ref.name} has no key ${ref.key}`);
        }
        for (const [which, probe] of Object.entries({
          readinessProbe: c.readinessProbe,
          livenessProbe: c.livenessProbe,
          startupProbe: c.startupProbe,
        })) {
          const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
          if (typeof port === "string" && !portNames.has(port)) {
            out.push(
              `${describe(o)}: container ${c.name} ${which} uses port ${port}, which it does not name`,
            );
          }
        }
      }
    }
    if (o.kind === "Service") {
      const spec = o.spec as {
        selector?: Record<string, string>;
        ports?: { name?: string; targetPort?: number | string }[];
      };
      const backends = templates.filter(
        (x) => x.o.metadata.namespace === ns && selects(spec.selector, x.t!.labels),
      );
      if (backends.length === 0) out.push(`${describe(o)}: selects no workload's pods`);
      if (backends.length === 0) continue;
      for (const p of spec.ports ?? []) {
        if (typeof p.targetPort !== "string") continue;
        const named = backends.some((b) =>
          (b.t!.spec.containers ?? []).some((c) => (c.ports ?? []).some((cp) => cp.name === p.targetPort)),
        );
        if (!named)
          out.push(
            `${describe(o)}: port ${p.name ?? "?"} targets ${p.targetPort}, which no backend container names`,
          );
      }
    }
    if (o.kind === "PodDisruptionBudget") {
      const sel = (o.spec as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels;
      if (!templates.some((x) => x.o.metadata.namespace === ns && selects(sel, x.t!.labels))) {
        out.push(`${describe(o)}: selects no workload's pods`);
      }
    }
    if (o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding") {
      const b = o as unknown as {
        roleRef: { kind: string; name: string };
        subjects?: { kind: string; name: string; namespace?: string }[];
      };
      const roleNs = b.roleRef.kind === "Role" ? ns : undefined;
      if (!find(b.roleRef.kind, b.roleRef.name, roleNs))
        out.push(`${describe(o)}: roleRef ${b.roleRef.kind} ${b.roleRef.name} is not in the render`);
      for (const s of b.subjects ?? []) {
        if (s.kind !== "ServiceAccount") continue;
        if (!s.namespace) out.push(`${describe(o)}: subject ServiceAccount ${s.name} has no namespace`);
        else if (!find("ServiceAccount", s.name, s.namespace)) {
          out.push(`${describe(o)}: subject ServiceAccount ${s.namespace}/${s.name} is not in the render`);
        }
      }
    }
  }
  return out;
}
