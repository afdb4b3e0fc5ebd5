/**
 * A small kustomize: renders deploy/k8s's kustomizations without kubectl, for tests and for
 * machines without it. It implements the features these manifests use, the way kustomize v5
 * does them, and refuses every other one by name rather than rendering something different:
 *
 * - `resources`: YAML files (several documents each) and directories holding a kustomization;
 * - `namespace`: set on namespaced objects; a Namespace object is renamed to it, and
 *   ServiceAccount subjects named `default` in (Cluster)RoleBindings get it, as kustomize does;
 * - `labels` (`pairs`, without `includeSelectors` / `includeTemplates`): metadata.labels only;
 * - `images` (`name`, `newName`, `newTag`, `digest`): every `containers` / `initContainers` image;
 * - `patches` with a strategic-merge patch (`path` or inline `patch`, no `target`): maps merge,
 *   `null` removes a key, the associative lists of the objects used here (containers, env,
 *   volumes, …) merge by their key with the patch's items first, other lists are replaced.
 *
 * Output is in kustomize's legacy order (Namespace, CRDs, ServiceAccounts, RBAC, ConfigMaps,
 * Services, workloads, …, then by name). test/deploy-k8s.test.ts compares every overlay with the
 * output of `kubectl kustomize` committed under deploy/k8s/rendered.
 *
 *     const objects = renderKustomization("deploy/k8s/overlays/bundled");
 *     const yaml = toYaml(objects);
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments, stringify } from "yaml";

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
};

/** A kustomization uses something this renderer does not do. */
export class KustomizeUnsupportedError extends Error {
  override name = "KustomizeUnsupportedError";
  constructor(where: string, what: string) {
    super(`${where}: ${what} is not supported by this renderer; render with \`kubectl kustomize\``);
  }
}

export class KustomizeError extends Error {
  override name = "KustomizeError";
}

const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/** The fields of a kustomization this renderer reads; any other top-level field is refused. */
const KNOWN_FIELDS = new Set(["apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"]);

/** Kinds without a namespace (kustomize leaves their metadata.namespace alone). */
const CLUSTER_SCOPED = new Set([
  "Namespace",
  "ClusterRole",
  "ClusterRoleBinding",
  "CustomResourceDefinition",
  "PriorityClass",
  "StorageClass",
  "PersistentVolume",
  "Node",
  "IngressClass",
  "RuntimeClass",
  "MutatingWebhookConfiguration",
  "ValidatingWebhookConfiguration",
  "APIService",
]);

/** Namespaced kinds this renderer knows; an object of another kind is refused. */
const NAMESPACED = new Set([
  "ServiceAccount",
  "Role",
  "RoleBinding",
  "ConfigMap",
  "Secret",
  "Service",
  "Deployment",
  "DaemonSet",
  "StatefulSet",
  "Job",
  "CronJob",
  "PodDisruptionBudget",
  "NetworkPolicy",
  "PersistentVolumeClaim",
  "Pod",
  "TrafficMirror",
]);

/**
 * kustomize's legacy resource order (api/resid/gvk.go, orderFirst and orderLast); other kinds go
 * between them.
 */
const ORDER_FIRST = [
  "Namespace",
  "ResourceQuota",
  "StorageClass",
  "CustomResourceDefinition",
  "ServiceAccount",
  "PodSecurityPolicy",
  "Role",
  "ClusterRole",
  "RoleBinding",
  "ClusterRoleBinding",
  "ConfigMap",
  "Secret",
  "Endpoints",
  "Service",
  "LimitRange",
  "PriorityClass",
  "PersistentVolume",
  "PersistentVolumeClaim",
  "Deployment",
  "StatefulSet",
  "CronJob",
  "PodDisruptionBudget",
];
const ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"];

/**
 * Strategic-merge keys of the associative lists, by field name (Kubernetes' `patchMergeKey`). A
 * list not named here is replaced by the patch's, as strategic merge does for atomic lists;
 * `ports`, keyed differently in containers and Services, is refused.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  env: "name",
  volumes: "name",
  volumeMounts: "mountPath",
  imagePullSecrets: "name",
  hostAliases: "ip",
};

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function readYamlDocuments(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  const out: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new KustomizeError(`${file}: ${doc.errors[0]?.message ?? "YAML error"}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

function asObject(value: unknown, where: string): KubeObject {
  if (!isMap(value)) throw new KustomizeError(`${where}: a document is not a mapping`);
  const { apiVersion, kind, metadata } = value;
  if (typeof apiVersion !== "string" || typeof kind !== "string" || !isMap(metadata)) {
    throw new KustomizeError(`${where}: a document lacks apiVersion, kind or metadata`);
  }
  if (typeof metadata.name !== "string") throw new KustomizeError(`${where}: a ${kind} has no metadata.name`);
  return value as KubeObject;
}

function kustomizationFile(dir: string): string {
  for (const name of KUSTOMIZATION_FILES) {
    const file = join(dir, name);
    if (existsSync(file)) return file;
  }
  throw new KustomizeError(`${dir}: no kustomization.yaml`);
}

/** `group/kind/namespace/name`: what identifies an object in a render. */
export function objectId(o: KubeObject): string {
  const group = o.apiVersion.includes("/") ? o.apiVersion.split("/")[0] : "";
  return `${group}/${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
}

/** Renders the kustomization in `dir` (a directory holding kustomization.yaml). */
export function renderKustomization(dir: string): KubeObject[] {
  const root = resolve(dir);
  const file = kustomizationFile(root);
  const [raw] = readYamlDocuments(file);
  if (!isMap(raw)) throw new KustomizeError(`${file}: not a mapping`);
  for (const key of Object.keys(raw)) {
    if (!KNOWN_FIELDS.has(key)) throw new KustomizeUnsupportedError(file, `the field ${JSON.stringify(key)}`);
  }

  let objects: KubeObject[] = [];
  for (const entry of (raw.resources as unknown[] | undefined) ?? []) {
    if (typeof entry !== "string") throw new KustomizeError(`${file}: resources must be paths`);
    if (/^[a-z]+:\/\//.test(entry)) throw new KustomizeUnsupportedError(file, `the remote resource ${entry}`);
    const path = resolve(root, entry);
    const more = statSync(path).isDirectory()
      ? renderKustomization(path)
      : readYamlDocuments(path).map((d) => asObject(d, path));
    for (const o of more) {
      if (objects.some((x) => objectId(x) === objectId(o))) {
        throw new KustomizeError(`${file}: ${objectId(o)} is defined twice`);
      }
    }
    objects = objects.concat(more);
  }

  for (const o of objects) {
    if (!CLUSTER_SCOPED.has(o.kind) && !NAMESPACED.has(o.kind)) {
      throw new KustomizeUnsupportedError(file, `the kind ${o.kind} (its scope is unknown here)`);
    }
  }

  for (const [i, p] of ((raw.patches as unknown[] | undefined) ?? []).entries()) {
    objects = applyPatchEntry(objects, p, root, `${file}: patches[${i}]`);
  }
  if (raw.namespace !== undefined) {
    if (typeof raw.namespace !== "string") throw new KustomizeError(`${file}: namespace must be a string`);
    setNamespace(objects, raw.namespace);
  }
  for (const [i, l] of ((raw.labels as unknown[] | undefined) ?? []).entries()) {
    addLabels(objects, l, `${file}: labels[${i}]`);
  }
  for (const [i, img] of ((raw.images as unknown[] | undefined) ?? []).entries()) {
    setImages(objects, img, `${file}: images[${i}]`);
  }
  return sortLegacy(objects);
}

function applyPatchEntry(objects: KubeObject[], entry: unknown, root: string, where: string): KubeObject[] {
  if (!isMap(entry)) throw new KustomizeError(`${where}: must be a mapping`);
  for (const key of Object.keys(entry)) {
    if (key !== "path" && key !== "patch")
      throw new KustomizeUnsupportedError(where, `the patch field "${key}"`);
  }
  let docs: unknown[];
  if (typeof entry.path === "string") docs = readYamlDocuments(resolve(root, entry.path));
  else if (typeof entry.patch === "string")
    docs = parseAllDocuments(entry.patch).map((d) => d.toJS() as unknown);
  else throw new KustomizeError(`${where}: needs path or patch`);
  let out = objects;
  for (const doc of docs) {
    if (Array.isArray(doc)) throw new KustomizeUnsupportedError(where, "a JSON 6902 patch");
    const patch = asObject(doc, where);
    const matches = out.filter(
      (o) =>
        o.kind === patch.kind &&
        o.apiVersion === patch.apiVersion &&
        o.metadata.name === patch.metadata.name &&
        (patch.metadata.namespace === undefined || patch.metadata.namespace === o.metadata.namespace),
    );
    if (matches.length !== 1) {
      throw new KustomizeError(
        `${where}: the patch for ${patch.kind} ${patch.metadata.name} matches ${matches.length} objects, not 1`,
      );
    }
    const target = matches[0] as KubeObject;
    out = out.map((o) => (o === target ? (strategicMerge(o, patch, where) as KubeObject) : o));
  }
  return out;
}

/** Strategic merge of `patch` into `base` (a copy is returned). */
export function strategicMerge(base: unknown, patch: unknown, where: string, field = ""): unknown {
  if (isMap(patch) && "$patch" in patch) throw new KustomizeUnsupportedError(where, "the $patch directive");
  if (isMap(base) && isMap(patch)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(patch)) {
      if (k.startsWith("$")) throw new KustomizeUnsupportedError(where, `the directive ${k}`);
      if (v === null) delete out[k];
      else out[k] = k in base ? strategicMerge(base[k], v, where, k) : structuredClone(v);
    }
    return out;
  }
  if (Array.isArray(base) && Array.isArray(patch)) {
    return mergeList(base as unknown[], patch as unknown[], field, where);
  }
  return structuredClone(patch);
}

/** A list in a strategic merge: by its merge key when it has one, else replaced. */
function mergeList(base: unknown[], patch: unknown[], field: string, where: string): unknown[] {
  if (field === "ports") throw new KustomizeUnsupportedError(where, "a patch of a ports list");
  const key = MERGE_KEYS[field];
  if (key === undefined || !patch.every((p) => isMap(p) && key in p)) return structuredClone(patch);
  // kyaml's merge: the patch's items in its order (each merged with the base item of the same
  // key), then the base items the patch does not name, in their order.
  const keyOf = (item: unknown) => (isMap(item) ? item[key] : undefined);
  const merged = patch.map((p) => {
    const b = base.find((x) => keyOf(x) === keyOf(p));
    return b === undefined ? structuredClone(p) : strategicMerge(b, p, where);
  });
  const rest = base.filter((b) => !patch.some((p) => keyOf(p) === keyOf(b)));
  return [...merged, ...rest.map((r) => structuredClone(r))];
}

function setNamespace(objects: KubeObject[], namespace: string): void {
  for (const o of objects) {
    if (o.kind === "Namespace") {
      o.metadata.name = namespace;
      continue;
    }
    if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = namespace;
    if ((o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding") && Array.isArray(o.subjects)) {
      for (const s of o.subjects as Record<string, unknown>[]) {
        if (s.kind === "ServiceAccount" && s.name === "default") s.namespace = namespace;
      }
    }
    if (o.kind === "MutatingWebhookConfiguration" || o.kind === "ValidatingWebhookConfiguration") {
      throw new KustomizeUnsupportedError(o.kind, "the namespace of webhook services");
    }
  }
}

function addLabels(objects: KubeObject[], entry: unknown, where: string): void {
  if (!isMap(entry) || !isMap(entry.pairs)) throw new KustomizeError(`${where}: needs pairs`);
  for (const key of Object.keys(entry)) {
    if (key === "pairs") continue;
    if ((key === "includeSelectors" || key === "includeTemplates") && entry[key] === false) continue;
    throw new KustomizeUnsupportedError(where, `labels.${key}`);
  }
  for (const [k, v] of Object.entries(entry.pairs)) {
    if (typeof v !== "string") throw new KustomizeError(`${where}: the label ${k} must be a string`);
    for (const o of objects) o.metadata.labels = { ...o.metadata.labels, [k]: v };
  }
}

interface ImageSpec {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}

/** `name[:tag][@digest]` split as kustomize's image.Split does (a port in the registry is not a tag). */
function splitImage(image: string): { name: string; tag?: string; digest?: string } {
  const [rest = "", digest] = image.split("@", 2);
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > slash) {
    return { name: rest.slice(0, colon), tag: rest.slice(colon + 1), ...(digest ? { digest } : {}) };
  }
  return { name: rest, ...(digest ? { digest } : {}) };
}

function setImages(objects: KubeObject[], entry: unknown, where: string): void {
  if (!isMap(entry) || typeof entry.name !== "string") throw new KustomizeError(`${where}: needs name`);
  for (const key of Object.keys(entry)) {
    if (!["name", "newName", "newTag", "digest"].includes(key)) {
      throw new KustomizeUnsupportedError(where, `images.${key}`);
    }
  }
  const spec = entry as unknown as ImageSpec;
  const rewrite = (image: string): string => {
    const parts = splitImage(image);
    if (parts.name !== spec.name) return image;
    const name = spec.newName ?? parts.name;
    if (spec.digest) return `${name}@${spec.digest}`;
    if (spec.newTag) return `${name}:${spec.newTag}`;
    return `${name}${parts.tag ? `:${parts.tag}` : ""}${parts.digest ? `@${parts.digest}` : ""}`;
  };
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (isMap(node)) {
      for (const [k, v] of Object.entries(node)) {
        if ((k === "containers" || k === "initContainers") && Array.isArray(v)) {
          for (const c of v) if (isMap(c) && typeof c.image === "string") c.image = rewrite(c.image);
        }
        walk(v);
      }
    }
  };
  objects.forEach(walk);
}

function sortLegacy(objects: KubeObject[]): KubeObject[] {
  const rank = (kind: string) => {
    const first = ORDER_FIRST.indexOf(kind);
    if (first >= 0) return first;
    const last = ORDER_LAST.indexOf(kind);
    return last >= 0 ? ORDER_FIRST.length + 1 + last : ORDER_FIRST.length;
  };
  return [...objects].sort(
    (a, b) =>
      rank(a.kind) - rank(b.kind) ||
      a.kind.localeCompare(b.kind) ||
      (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? "") ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
}

/** Multi-document YAML, as `kubectl kustomize` prints it. */
export function toYaml(objects: readonly KubeObject[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");
}
