import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import { join } from "node:path";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  arbitraries,
  buildAsyncApi,
  DOCS_DIR,
  generateDocs,
  PUBLIC_SCHEMAS,
  schemaFileName,
} from "./internal.js";

interface ValidateFn {
  (data: unknown): boolean;
  errors?: unknown[] | null;
}
interface AjvLike {
  addSchema(schema: object): AjvLike;
  compile(schema: object): ValidateFn;
  getSchema(id: string): ValidateFn | undefined;
  errorsText(errors?: unknown[] | null): string;
}
interface AjvOptions {
  strict?: boolean;
  allErrors?: boolean;
  meta?: boolean;
  validateSchema?: boolean;
}

function newAjv(options: AjvOptions): AjvLike {
  return addFormats.default(new Ajv(options));
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function pointer(doc: Json, ref: string): Json | undefined {
  let node: Json | undefined = doc;
  for (const raw of ref.replace(/^#\//, "").split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (node === null || typeof node !== "object" || Array.isArray(node)) return undefined;
    node = node[key];
  }
  return node;
}

function refs(node: Json, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) refs(n, out);
  else if (node !== null && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

describe("AsyncAPI document", () => {
  const doc = buildAsyncApi() as { [key: string]: Json };

  it("validates against the official AsyncAPI 3.0.0 JSON Schema", () => {
    const require = createRequire(import.meta.url);
    const specs = require("@asyncapi/specs") as { schemas: Record<string, object> };
    const official = specs.schemas["3.0.0"];
    if (!official) throw new Error("@asyncapi/specs has no 3.0.0 schema");
    // The bundle embeds the draft-07 meta-schema under its own $id; ajv must not add a second copy.
    const ajv = newAjv({ strict: false, allErrors: true, meta: false, validateSchema: false });
    const validate = ajv.compile(official);
    const ok = validate(doc);
    expect(ok, ajv.errorsText(validate.errors)).toBe(true);

    // And it is not a validator that accepts anything.
    const broken = structuredClone(doc) as { operations: { publishEvent: { action: string } } };
    broken.operations.publishEvent.action = "broadcast";
    expect(validate(broken)).toBe(false);
  });

  it("gives component schemas no $id of their own", () => {
    expect(JSON.stringify(doc.components)).not.toContain('"$id"');
  });

  it("resolves every local $ref", () => {
    const all = refs(doc);
    expect(all.length).toBeGreaterThan(0);
    for (const ref of all) {
      expect(ref.startsWith("#/"), ref).toBe(true);
      expect(pointer(doc, ref), ref).toBeDefined();
    }
  });

  it("declares every address parameter, and operations only use their channel's messages", () => {
    const channels = doc.channels as Record<
      string,
      { address: string | null; parameters?: Record<string, Json> }
    >;
    for (const [name, channel] of Object.entries(channels)) {
      const inAddress = [...(channel.address ?? "").matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      expect(Object.keys(channel.parameters ?? {}).sort(), name).toEqual(inAddress);
    }
    const operations = doc.operations as Record<
      string,
      {
        channel: { $ref: string };
        messages: { $ref: string }[];
        reply?: { channel: { $ref: string }; messages: { $ref: string }[] };
      }
    >;
    for (const [name, op] of Object.entries(operations)) {
      for (const m of op.messages) expect(m.$ref.startsWith(`${op.channel.$ref}/messages/`), name).toBe(true);
      if (op.reply)
        for (const m of op.reply.messages)
          expect(m.$ref.startsWith(`${op.reply.channel.$ref}/messages/`)).toBe(true);
    }
  });

  it("has a channel for every subject", () => {
    const addresses = Object.values(doc.channels as Record<string, { address: string | null }>).map(
      (c) => c.address,
    );
    expect(addresses).toEqual(
      expect.arrayContaining([
        "ovntap.v1.req.{namespace}",
        "ovntap.v1.events.{namespace}.{mirror}",
        "ovntap.v1.capture.{namespace}.{mirror}.{node}",
        "ovntap.v1.capture._unknown.{node}",
        "ovntap.v1.flows.{namespace}.{mirror}",
        "ovntap.v1.stats.{namespace}.{mirror}",
        "ovntap.v1.agents.{node}",
      ]),
    );
  });
});

describe("JSON Schema files", () => {
  let files: Map<string, string>;
  let ajv: AjvLike;

  beforeAll(async () => {
    files = await generateDocs();
    ajv = newAjv({ strict: true, allErrors: true });
    for (const [path, text] of files)
      if (path.startsWith("schemas/")) ajv.addSchema(JSON.parse(text) as object);
  });

  it("one file per public schema", () => {
    const names = [...files.keys()].filter((p) => p.startsWith("schemas/")).sort();
    expect(names).toEqual(
      Object.keys(PUBLIC_SCHEMAS)
        .map((n) => `schemas/${schemaFileName(n)}`)
        .sort(),
    );
  });

  it("every file compiles with ajv (draft-07, strict)", () => {
    for (const name of Object.keys(PUBLIC_SCHEMAS)) {
      expect(ajv.getSchema(schemaFileName(name)), name).toBeTypeOf("function");
    }
  });

  it("accepts what the zod schemas accept", () => {
    const request = ajv.getSchema(schemaFileName("MirrorRequest"));
    if (!request) throw new Error("no MirrorRequest schema");
    fc.assert(
      fc.property(arbitraries.request, (r) => {
        expect(request(JSON.parse(JSON.stringify(r))), ajv.errorsText(request.errors)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses what the zod schemas refuse field by field", () => {
    const request = ajv.getSchema(schemaFileName("MirrorRequest"));
    if (!request) throw new Error("no MirrorRequest schema");
    const base = {
      requestId: "r",
      op: "create",
      spec: {
        name: "web",
        namespace: "shop",
        sources: { type: "pods", names: ["a"] },
        direction: "both",
        target: { type: "gre", sink: "10.0.0.9" },
      },
    };
    expect(request(base)).toBe(true);
    expect(
      request({ ...base, spec: { ...base.spec, target: { type: "gre", sink: "10.0.0.9", key: 2 ** 32 } } }),
    ).toBe(false);
    expect(request({ ...base, spec: { ...base.spec, snaplen: 13 } })).toBe(false);
    expect(request({ ...base, spec: { ...base.spec, name: "Web" } })).toBe(false);
    expect(request({ ...base, op: "nuke" })).toBe(false);
  });
});

describe("committed docs", () => {
  it("equal a fresh run of the generator (run `npm run contracts:docs` and commit docs/)", async () => {
    const fresh = await generateDocs();
    const committed = new Map<string, string>();
    committed.set("asyncapi.json", await readFile(join(DOCS_DIR, "asyncapi.json"), "utf8").catch(() => ""));
    const schemaDir = join(DOCS_DIR, "schemas");
    for (const f of await readdir(schemaDir).catch(() => [] as string[])) {
      if (f.endsWith(".schema.json"))
        committed.set(`schemas/${f}`, await readFile(join(schemaDir, f), "utf8"));
    }
    expect([...committed.keys()].sort()).toEqual([...fresh.keys()].sort());
    for (const [path, text] of fresh) expect(committed.get(path), `docs/${path} is stale`).toBe(text);
  });
});
