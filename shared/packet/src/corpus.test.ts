/**
 * The checked-in corpus of malformed packets (test/fixtures/*.hex): each file names its decoder and
 * the reason, layer and offset it must decode to. A file is hex octets, `#` lines are comments:
 *
 *     # GRE version 1 (PPTP enhanced GRE, RFC 2637): RFC 2784 receivers require version 0
 *     # decoder: decapsulate
 *     # expect: bad-version gre 34
 *     02 00 00 00 00 02 02 00 …
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { decapsulate, decodeFrame, formatSummary } from "./index.js";

const dir = fileURLToPath(new URL("../test/fixtures/", import.meta.url));
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".hex"))
  .sort();

interface Fixture {
  readonly decoder: string;
  readonly reason: string;
  readonly layer: string;
  readonly at: number;
  readonly bytes: Buffer;
}

function load(file: string): Fixture {
  const text = readFileSync(`${dir}${file}`, "utf8");
  const meta = (key: string): string => {
    const m = new RegExp(`^# ${key}: (.*)$`, "m").exec(text);
    if (m === null) throw new Error(`${file}: no "# ${key}:" line`);
    return m[1]!.trim();
  };
  const [reason, layer, at] = meta("expect").split(/\s+/);
  const hex = text
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join("")
    .replace(/\s+/g, "");
  return {
    decoder: meta("decoder"),
    reason: reason!,
    layer: layer!,
    at: Number(at),
    bytes: Buffer.from(hex, "hex"),
  };
}

describe("malformed-packet corpus", () => {
  it("has the cases the brief asks for", () => {
    expect(files.length).toBeGreaterThanOrEqual(30);
    for (const name of [
      "gre-truncated-base",
      "gre-version-1",
      "erspan2-bad-version",
      "erspan3-bad-version",
      "ipv6-ext-header-loop",
      "ipv4-ihl-4",
    ]) {
      expect(files).toContain(`${name}.hex`);
    }
  });

  it.each(files)("%s decodes to its expected reason", (file) => {
    const fx = load(file);
    expect(fx.bytes.length).toBeGreaterThan(0);
    let got;
    if (fx.decoder === "decapsulate") {
      got = decapsulate(fx.bytes);
    } else if (fx.decoder === "decodeFrame") {
      const f = decodeFrame(fx.bytes);
      // The link layer decodes; the failure is the deeper layer's, and the summary still prints.
      expect(f.ok).toBe(true);
      if (f.ok) expect(formatSummary(f)).toMatch(/\[/);
      got = f.ok ? f.error : f;
    } else {
      throw new Error(`${file}: unknown decoder ${fx.decoder}`);
    }
    expect(got).toEqual({ ok: false, reason: fx.reason, layer: fx.layer, at: fx.at });
  });
});
