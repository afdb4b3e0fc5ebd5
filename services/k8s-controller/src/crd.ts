/**
 * The TrafficMirror CustomResourceDefinition (`trafficmirrors.ovntap.io`, `v1alpha1`), with the
 * spec schema generated from the contract's zod `MirrorSpec` so the two cannot drift.
 *
 *     const crd = trafficMirrorCrd();     // the object deploy/k8s/base/crd-trafficmirrors.yaml holds
 *     structuralProblems(crdSpecSchema(crd));   // [] — what the API server would refuse, if anything
 *
 * `z.toJSONSchema` writes JSON Schema; Kubernetes takes a *structural* subset of OpenAPI v3
 * (apiextensions "Specifying a structural schema"): every node has a `type` (unless it carries
 * `x-kubernetes-preserve-unknown-fields` or `x-kubernetes-int-or-string`), junctors (`oneOf`,
 * `anyOf`, `allOf`, `not`) hold only value validations on fields also declared outside them, and
 * there is no `$ref`, `const`, `additionalProperties: false` beside `properties`, or
 * `uniqueItems`. `toStructural` rewrites the generated schema into that subset:
 *
 * - a discriminated union of objects becomes one object with every variant's fields, and a
 *   `oneOf` that only pins the discriminator and each variant's required fields;
 * - a union of one type with validations per branch (an IPv4 or IPv6 string) keeps the type
 *   outside and the validations inside;
 * - a union of different types (a sink: an IP string or `{pod: …}`; a port: a number or a range)
 *   becomes `x-kubernetes-preserve-unknown-fields`: the API server keeps it as given;
 * - `\uXXXX` in patterns becomes `\x{XXXX}`, since the API server compiles them as Go (RE2)
 *   regular expressions.
 *
 * The CRD is a first line only: unknown fields are pruned, types checked. Intake validates every
 * request with the zod schema itself (cross-field rules included), and the controller reports
 * its verdict in `.status`.
 */
import { LABELS_MAX, MirrorSpec } from "@ovntap/contracts";
import { z } from "zod";

export const CRD_GROUP = "ovntap.io";
export const CRD_VERSION = "v1alpha1";
export const CRD_KIND = "TrafficMirror";
export const CRD_PLURAL = "trafficmirrors";
export const CRD_NAME = `${CRD_PLURAL}.${CRD_GROUP}`;

/** The finalizer that keeps a TrafficMirror until its mirror's delete request is answered. */
export const MIRROR_FINALIZER = "ovntap.io/mirror";

/**
 * The label the controller adds to each mirror's `labels`: the uid of the TrafficMirror that owns
 * it. A mirror without it (made with the CLI, or by a resource since deleted) is never touched.
 */
export const OWNER_UID_LABEL = "ovntap.io/trafficmirror-uid";

export type Schema = { [key: string]: unknown };

const JUNCTORS = ["oneOf", "anyOf", "allOf"] as const;

function isSchema(v: unknown): v is Schema {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

/** Deep copy with object keys in code-point order (stable output, order-free comparison). */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isSchema(value)) {
    const out: Schema = {};
    for (const key of Object.keys(value).sort()) {
      if (value[key] !== undefined) out[key] = sortKeys(value[key]);
    }
    return out;
  }
  return value;
}

/** JSON Schema pattern (ECMAScript) → RE2, for the escapes the contract's patterns use. */
export function re2Pattern(pattern: string): string {
  return pattern.replace(/\\u([0-9a-fA-F]{4})/g, "\\x{$1}");
}

/** The type a branch has, or undefined. */
function typeOf(s: Schema): string | undefined {
  return typeof s.type === "string" ? s.type : undefined;
}

/** One node converted; its children first. */
export function toStructural(input: Schema): Schema {
  const node: Schema = { ...input };
  delete node.$schema;
  delete node.$id;
  if ("const" in node) {
    node.enum = [node.const];
    delete node.const;
  }
  if (node.additionalProperties === false) delete node.additionalProperties;
  if (node.uniqueItems === true) delete node.uniqueItems;
  if (typeof node.pattern === "string") node.pattern = re2Pattern(node.pattern);
  if (isSchema(node.properties)) {
    node.properties = Object.fromEntries(
      Object.entries(node.properties).map(([k, v]) => [k, toStructural(v as Schema)]),
    );
  }
  if (isSchema(node.additionalProperties))
    node.additionalProperties = toStructural(node.additionalProperties);
  if (isSchema(node.items)) node.items = toStructural(node.items);

  for (const junctor of JUNCTORS) {
    const branches = node[junctor];
    if (!Array.isArray(branches)) continue;
    delete node[junctor];
    return union(node, junctor, (branches as Schema[]).map(toStructural));
  }
  return node;
}

/** A union: see the module comment for the three shapes. */
function union(outer: Schema, junctor: (typeof JUNCTORS)[number], branches: Schema[]): Schema {
  const types = new Set(branches.map(typeOf));
  if (outer.type !== undefined) types.add(typeOf(outer));
  const [only] = types;
  if (types.size === 1 && only !== undefined && only !== "object") {
    // Same scalar type everywhere: the type outside, only value validations inside.
    const inner = branches.map((b) => {
      const { type: _type, description: _description, ...rest } = b;
      return rest;
    });
    return { ...outer, type: only, [junctor]: inner };
  }
  if (types.size === 1 && only === "object") {
    const merged = mergeObjects(branches);
    const discriminator = findDiscriminator(branches);
    if (discriminator === undefined) return { ...outer, ...merged };
    return {
      ...outer,
      ...merged,
      oneOf: branches.map((b) => {
        const props = b.properties as Schema;
        return {
          properties: { [discriminator]: { enum: (props[discriminator] as Schema).enum } },
          required: (b.required as string[] | undefined) ?? [],
        };
      }),
    };
  }
  // Different types: the API server keeps the value as given; intake checks it.
  const { type: _type, ...rest } = outer;
  return { ...rest, "x-kubernetes-preserve-unknown-fields": true };
}

/** A property every branch pins to an enum, the enums pairwise disjoint. */
function findDiscriminator(branches: Schema[]): string | undefined {
  const first = branches[0]?.properties;
  if (!isSchema(first)) return undefined;
  for (const name of Object.keys(first)) {
    const seen = new Set<unknown>();
    const ok = branches.every((b) => {
      const p = isSchema(b.properties) ? b.properties[name] : undefined;
      if (!isSchema(p) || !Array.isArray(p.enum)) return false;
      for (const v of p.enum) {
        if (seen.has(v)) return false;
        seen.add(v);
      }
      return true;
    });
    if (ok) return name;
  }
  return undefined;
}

/** Objects → one object with every field; a field is required when every branch requires it. */
function mergeObjects(branches: Schema[]): Schema {
  const names: string[] = [];
  for (const b of branches) {
    for (const k of Object.keys(isSchema(b.properties) ? b.properties : {}))
      if (!names.includes(k)) names.push(k);
  }
  const properties: Schema = {};
  for (const name of names) {
    const variants = branches
      .map((b) => (isSchema(b.properties) ? b.properties[name] : undefined))
      .filter(isSchema);
    properties[name] = mergeSchemas(variants);
  }
  const required = names.filter((n) =>
    branches.every((b) => Array.isArray(b.required) && (b.required as string[]).includes(n)),
  );
  return { type: "object", properties, ...(required.length ? { required } : {}) };
}

/** The least restrictive schema that admits every variant of one field. */
function mergeSchemas(variants: Schema[]): Schema {
  const [first, ...rest] = variants;
  if (!first) return {};
  if (rest.every((v) => deepEqual(v, first))) return first;
  const types = new Set(variants.map(typeOf));
  if (types.size !== 1 || variants.some((v) => JUNCTORS.some((j) => j in v))) {
    const description = variants.find((v) => typeof v.description === "string")?.description;
    return { "x-kubernetes-preserve-unknown-fields": true, ...(description ? { description } : {}) };
  }
  const type = typeOf(first);
  if (type === "object" && variants.every((v) => isSchema(v.properties))) return mergeObjects(variants);
  // Keep what every variant agrees on, widen enums and bounds.
  const out: Schema = {};
  for (const [k, v] of Object.entries(first)) {
    if (variants.every((x) => deepEqual(x[k], v))) out[k] = v;
  }
  if (variants.every((v) => Array.isArray(v.enum))) {
    const values: unknown[] = [];
    for (const v of variants) for (const e of v.enum as unknown[]) if (!values.includes(e)) values.push(e);
    out.enum = values;
  }
  for (const [key, pick] of [
    ["minItems", Math.min],
    ["maxItems", Math.max],
    ["minimum", Math.min],
    ["maximum", Math.max],
    ["minLength", Math.min],
    ["maxLength", Math.max],
  ] as const) {
    if (variants.every((v) => typeof v[key] === "number"))
      out[key] = pick(...variants.map((v) => v[key] as number));
  }
  if (type === "array" && variants.every((v) => isSchema(v.items))) {
    out.items = mergeSchemas(variants.map((v) => v.items as Schema));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checks: what the API server's structural-schema validation refuses.

/** Keywords Kubernetes' JSONSchemaProps has (OpenAPI v3 subset plus the x-kubernetes ones). */
const ALLOWED_KEYWORDS = new Set([
  "description",
  "type",
  "format",
  "title",
  "default",
  "maximum",
  "exclusiveMaximum",
  "minimum",
  "exclusiveMinimum",
  "maxLength",
  "minLength",
  "pattern",
  "maxItems",
  "minItems",
  "multipleOf",
  "enum",
  "maxProperties",
  "minProperties",
  "required",
  "items",
  "allOf",
  "oneOf",
  "anyOf",
  "not",
  "properties",
  "additionalProperties",
  "nullable",
  "example",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-embedded-resource",
  "x-kubernetes-int-or-string",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-list-type",
  "x-kubernetes-map-type",
  "x-kubernetes-validations",
]);

/** Keywords not allowed inside a junctor (rule 3 of structural schemas). */
const NOT_IN_JUNCTOR = ["type", "description", "default", "additionalProperties", "nullable"];

/**
 * What makes `schema` non-structural, or unacceptable in a CRD, one message per problem with
 * the JSON path. Empty when the API server would take it.
 */
export function structuralProblems(schema: Schema, path = ""): string[] {
  const problems: string[] = [];
  const at = path || "<root>";
  for (const key of Object.keys(schema)) {
    if (!ALLOWED_KEYWORDS.has(key)) problems.push(`${at}: ${key} is not a CRD schema keyword`);
  }
  const untyped =
    schema["x-kubernetes-preserve-unknown-fields"] === true || schema["x-kubernetes-int-or-string"] === true;
  if (typeof schema.type !== "string" && !untyped) problems.push(`${at}: has no type`);
  if (schema.uniqueItems === true) problems.push(`${at}: uniqueItems: true is refused`);
  if (schema.additionalProperties !== undefined && schema.properties !== undefined) {
    problems.push(`${at}: properties and additionalProperties are mutually exclusive`);
  }
  if (typeof schema.pattern === "string" && /\\u[0-9a-fA-F]{4}|\(\?[=!<]/.test(schema.pattern)) {
    problems.push(`${at}: pattern ${schema.pattern} is not RE2`);
  }
  if (isSchema(schema.properties)) {
    for (const [k, v] of Object.entries(schema.properties)) {
      problems.push(
        ...(isSchema(v) ? structuralProblems(v, `${path}.${k}`) : [`${path}.${k}: not a schema`]),
      );
    }
  }
  if (isSchema(schema.additionalProperties)) {
    problems.push(...structuralProblems(schema.additionalProperties, `${path}[*]`));
  }
  if (isSchema(schema.items)) problems.push(...structuralProblems(schema.items, `${path}[]`));
  for (const junctor of [...JUNCTORS, "not"]) {
    const inner = schema[junctor];
    const list = Array.isArray(inner) ? inner : inner === undefined ? [] : [inner];
    list.forEach((b, i) => problems.push(...junctorProblems(b as Schema, schema, `${at}.${junctor}[${i}]`)));
  }
  return problems;
}

/** Rules 2 and 3: a junctor only restricts values of fields the structural part declares. */
function junctorProblems(branch: Schema, outer: Schema, at: string): string[] {
  const problems: string[] = [];
  for (const k of NOT_IN_JUNCTOR) if (k in branch) problems.push(`${at}: ${k} is not allowed in a junctor`);
  if (isSchema(branch.properties)) {
    const declared = isSchema(outer.properties) ? outer.properties : {};
    for (const [k, v] of Object.entries(branch.properties)) {
      if (!(k in declared)) problems.push(`${at}.${k}: not declared outside the junctor`);
      else problems.push(...junctorProblems(v as Schema, declared[k] as Schema, `${at}.${k}`));
    }
  }
  if (branch.items !== undefined && !isSchema(outer.items))
    problems.push(`${at}: items not declared outside`);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The CRD

/** `.spec`: MirrorSpec without name and namespace, which are the resource's own. */
export function specSchema(): Schema {
  const json = z.toJSONSchema(MirrorSpec, {
    target: "openapi-3.0",
    io: "input",
    reused: "inline",
    cycles: "throw",
  }) as Schema;
  const spec = toStructural(json);
  const properties = { ...(spec.properties as Schema) };
  delete properties.name;
  delete properties.namespace;
  // The unions of two types the API server keeps as given: say what they take.
  const target = properties.target as { properties: Schema };
  target.properties.sink = {
    ...(target.properties.sink as Schema),
    description:
      'gre and erspan: an IP address literal, or {"pod": {"namespace", "name", "provider"?}} resolved through ips.kubeovn.io.',
  };
  const filter = properties.filter as { properties: { ports: { items: Schema } } };
  filter.properties.ports.items = {
    ...filter.properties.ports.items,
    description: 'A port number 0-65535 or a range {"from", "to"}.',
  };
  const labels = properties.labels as Schema;
  properties.labels = {
    ...labels,
    // One of the contract's LABELS_MAX is the controller's owner label.
    maxProperties: LABELS_MAX - 1,
    description: `Labels of the mirror, for \`ovntap list -l\`. The controller adds ${OWNER_UID_LABEL} (this resource's uid).`,
  };
  return {
    ...spec,
    description:
      "The mirror, as an ovntap MirrorSpec without name and namespace (the resource's own). Intake validates and authorizes it; the verdict is in status.conditions (Accepted).",
    properties,
    required: (spec.required as string[]).filter((r) => r !== "name" && r !== "namespace"),
  };
}

const condition: Schema = {
  type: "object",
  required: ["type", "status", "lastTransitionTime"],
  properties: {
    type: {
      type: "string",
      description: "Accepted (intake took the request) or Ready (the mirror is Active).",
    },
    status: { type: "string", enum: ["True", "False", "Unknown"] },
    reason: {
      type: "string",
      description: "CamelCase, or an ovntap error code (e.g. NAMESPACE_PROTECTED) when intake refused.",
    },
    message: { type: "string" },
    lastTransitionTime: { type: "string", format: "date-time" },
    observedGeneration: { type: "integer", format: "int64", minimum: 0 },
  },
};

/** `.status`, written by the controller through the status subresource. */
export function statusSchema(): Schema {
  return {
    type: "object",
    description: "Observed state, from intake's replies and the mirror's lifecycle events.",
    properties: {
      phase: {
        type: "string",
        description:
          "The mirror's phase (Pending, Applying, Active, Degraded, Failed, Expired, Deleted), or Rejected when intake refused it.",
      },
      observedGeneration: {
        type: "integer",
        format: "int64",
        minimum: 0,
        description: "The metadata.generation this status was written for.",
      },
      conditions: {
        type: "array",
        items: condition,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
      },
      attachedPorts: {
        type: "array",
        items: { type: "string" },
        description: "Logical switch ports (or OVS ports) the mirror is attached to.",
      },
      key: {
        type: "integer",
        format: "int64",
        minimum: 0,
        description: "GRE key (gre and collector targets).",
      },
      sessionId: { type: "integer", minimum: 0, description: "ERSPAN session id (erspan targets)." },
      sink: { type: "string", description: "The sink IP in use (a pod sink resolved)." },
      nodes: { type: "array", items: { type: "string" } },
      expiresAt: { type: "string", format: "date-time" },
      mirrorGeneration: {
        type: "integer",
        format: "int64",
        minimum: 0,
        description: "The generation of ovntap's desired state (not the resource's).",
      },
      message: { type: "string" },
    },
  };
}

export function trafficMirrorCrd(): Schema {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: CRD_NAME },
    spec: {
      group: CRD_GROUP,
      scope: "Namespaced",
      names: {
        plural: CRD_PLURAL,
        singular: "trafficmirror",
        kind: CRD_KIND,
        listKind: `${CRD_KIND}List`,
        shortNames: ["tmirror"],
        categories: ["ovntap"],
      },
      versions: [
        {
          name: CRD_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Phase", type: "string", jsonPath: ".status.phase" },
            { name: "Sink", type: "string", jsonPath: ".status.sink" },
            { name: "Key", type: "integer", jsonPath: ".status.key" },
            { name: "Session", type: "integer", jsonPath: ".status.sessionId", priority: 1 },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description:
                "A traffic mirror on Kube-OVN / OVN / Open vSwitch, kept by the ovntap controller: the spec becomes requests to ovntap's intake, the outcome becomes status.",
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec: specSchema(),
                status: statusSchema(),
              },
            },
          },
        },
      ],
    },
  };
}

/** The `openAPIV3Schema` of the CRD's only version. */
export function crdSpecSchema(crd: Schema): Schema {
  const spec = crd.spec as { versions: { schema: { openAPIV3Schema: Schema } }[] };
  const [version] = spec.versions;
  if (!version) throw new Error("the CRD has no versions");
  return version.schema.openAPIV3Schema;
}
