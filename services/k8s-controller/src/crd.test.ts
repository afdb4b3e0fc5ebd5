import { readFileSync } from "node:fs";
import { arbitraries } from "@ovntap/contracts/internal";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CRD_FILE, renderCrdYaml } from "./crd-file.js";
import {
  crdSpecSchema,
  re2Pattern,
  structuralProblems,
  toStructural,
  trafficMirrorCrd,
  type Schema,
} from "./crd.js";

/** The CRD schema as JSON Schema for Ajv: OpenAPI's x-kubernetes-* extensions dropped. */
function forAjv(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(forAjv);
  if (typeof node !== "object" || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (!k.startsWith("x-kubernetes-")) out[k] = forAjv(v);
  }
  // RE2's \x{…} back to the \u… JavaScript reads.
  if (typeof out.pattern === "string") {
    out.pattern = out.pattern.replace(/\\x\{([0-9a-fA-F]{4})\}/g, "\\u$1");
  }
  return out;
}

function specValidator() {
  const spec = (crdSpecSchema(trafficMirrorCrd()).properties as Schema).spec;
  const ajv = addFormats.default(new Ajv({ strict: false, allErrors: true }));
  return ajv.compile(forAjv(spec) as object);
}

describe("the TrafficMirror CRD", () => {
  it("is committed as the generator writes it (npm run gen-crd --workspace @ovntap/k8s-controller)", async () => {
    expect(readFileSync(CRD_FILE, "utf8")).toBe(await renderCrdYaml());
    expect(parse(readFileSync(CRD_FILE, "utf8"))).toEqual(trafficMirrorCrd());
  });

  it("is a structural schema the API server accepts", () => {
    expect(structuralProblems(crdSpecSchema(trafficMirrorCrd()))).toEqual([]);
  });

  it("the structural check refuses what the API server refuses", () => {
    expect(
      structuralProblems({
        type: "object",
        properties: {
          a: { anyOf: [{ type: "string" }, { type: "integer" }] },
          b: { type: "string", const: "x", pattern: "^[^\\u0000]$" },
          c: { type: "object", properties: { d: { type: "string" } }, additionalProperties: false },
          e: { type: "object", oneOf: [{ properties: { f: { enum: [1] } } }] },
        },
      }),
    ).toEqual([
      ".a: has no type",
      ".a.anyOf[0]: type is not allowed in a junctor",
      ".a.anyOf[1]: type is not allowed in a junctor",
      ".b: const is not a CRD schema keyword",
      ".b: pattern ^[^\\u0000]$ is not RE2",
      ".c: properties and additionalProperties are mutually exclusive",
      ".e.oneOf[0].f: not declared outside the junctor",
    ]);
  });

  it("turns a discriminated union into one object whose oneOf only pins the variant", () => {
    const s = toStructural({
      oneOf: [
        {
          type: "object",
          properties: { type: { type: "string", const: "a" }, x: { type: "integer" } },
          required: ["type", "x"],
          additionalProperties: false,
        },
        {
          type: "object",
          properties: { type: { type: "string", const: "b" }, y: { type: "string" } },
          required: ["type"],
          additionalProperties: false,
        },
      ],
    });
    expect(s).toEqual({
      type: "object",
      properties: {
        type: { type: "string", enum: ["a", "b"] },
        x: { type: "integer" },
        y: { type: "string" },
      },
      required: ["type"],
      oneOf: [
        { properties: { type: { enum: ["a"] } }, required: ["type", "x"] },
        { properties: { type: { enum: ["b"] } }, required: ["type"] },
      ],
    });
    expect(structuralProblems(s)).toEqual([]);
    expect(re2Pattern("^[^\\s\\u0000-\\u001f]+$")).toBe("^[^\\s\\x{0000}-\\x{001f}]+$");
  });

  it("takes every spec the contract accepts (without name and namespace, which are the resource's)", () => {
    const validate = specValidator();
    fc.assert(
      fc.property(arbitraries.mirrorSpec, (spec) => {
        const { name: _n, namespace: _ns, ...body } = spec;
        const ok = validate(JSON.parse(JSON.stringify(body)));
        if (!ok) throw new Error(JSON.stringify({ body, errors: validate.errors }));
      }),
      { numRuns: 300 },
    );
  });

  it("refuses specs that break its types, as the API server would before intake sees them", () => {
    const validate = specValidator();
    const good = {
      sources: { type: "pods", names: ["web-0"] },
      direction: "both",
      target: { type: "collector" },
    };
    expect(validate(good)).toBe(true);
    expect(validate({ ...good, direction: "sideways" })).toBe(false);
    expect(validate({ ...good, target: { type: "gre" } })).toBe(false); // a sink is required
    expect(validate({ ...good, sources: { type: "pods" } })).toBe(false); // names are required
    expect(validate({ ...good, snaplen: 10 })).toBe(false);
  });

  it("says in the printer columns what kubectl get shows", () => {
    const crd = trafficMirrorCrd() as {
      spec: { versions: { additionalPrinterColumns: { name: string }[] }[] };
    };
    expect(crd.spec.versions[0]?.additionalPrinterColumns.map((c) => c.name)).toEqual([
      "Phase",
      "Sink",
      "Key",
      "Session",
      "Age",
    ]);
  });
});
