import { join } from "node:path";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const fixtures = join(root, "test", "fixtures", "lint");

/** Lints the deliberate offences in test/fixtures/lint with the repository's own config. */
async function lint(file: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: root, ignore: false });
  const [result] = await eslint.lintFiles([join(fixtures, file)]);
  return (result?.messages ?? []).map((m) => `${m.ruleId}`);
}

describe("lint rules the project relies on", () => {
  it("reports a floating promise", async () => {
    expect(await lint("floating.ts")).toContain("@typescript-eslint/no-floating-promises");
  });

  it("reports an import cycle", async () => {
    expect(await lint("cycle-a.ts")).toContain("import-x/no-cycle");
  });

  it("passes the same code written properly", async () => {
    expect(await lint("clean.ts")).toEqual([]);
  });
});
