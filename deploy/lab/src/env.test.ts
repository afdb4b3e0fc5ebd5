import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatEnvFile, LAB_ENV_NAMES, type LabEnv, parseEnvFile } from "./env.js";

const sample = Object.fromEntries(LAB_ENV_NAMES.map((n, i) => [n, `value-${i}`])) as LabEnv;

describe("env file", () => {
  it("writes one `export NAME='value'` line per name, in order", () => {
    const lines = formatEnvFile(sample).trimEnd().split("\n");
    expect(lines.map((l) => l.split("=")[0])).toEqual(LAB_ENV_NAMES.map((n) => `export ${n}`));
    expect(lines[0]).toBe("export NATS_URL='value-0'");
  });

  it("reads back any value, quotes and shell metacharacters included", () => {
    fc.assert(
      fc.property(fc.string(), (v) => {
        const vNoNewline = v.replaceAll("\n", " ");
        const env = { ...sample, LAB_DIR: vNoNewline };
        expect(parseEnvFile(formatEnvFile(env))).toEqual(env);
      }),
    );
    const tricky = { ...sample, LAB_DIR: `/tmp/it's "here" $HOME \`x\`` };
    expect(parseEnvFile(formatEnvFile(tricky)).LAB_DIR).toBe(tricky.LAB_DIR);
  });

  it("reads plain NAME=value lines and skips comments", () => {
    expect(parseEnvFile('# c\nA=1\nexport B="two words"\n\n')).toEqual({ A: "1", B: "two words" });
  });
});
