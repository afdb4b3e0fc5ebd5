import { LabelSelector, validate } from "@ovntap/contracts";
import { arbitraries } from "@ovntap/contracts/internal";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { UsageError } from "./errors.js";
import {
  formatSelector,
  parseDurationMs,
  parseInteger,
  parseLabels,
  parseSeconds,
  parseSelector,
} from "./values.js";

describe("parseInteger", () => {
  it("reads decimal integers", () => {
    expect(parseInteger("--key", "0")).toBe(0);
    expect(parseInteger("--key", "4294967296")).toBe(4294967296);
    expect(parseInteger("--key", "-1")).toBe(-1);
  });
  it.each(["1e3", "0x10", "1.0", "12abc", "", " ", "9007199254740993"])("refuses %j naming the flag", (v) => {
    expect(() => parseInteger("--key", v)).toThrow(UsageError);
    expect(() => parseInteger("--key", v)).toThrow(/^--key: /);
  });
});

describe("durations", () => {
  it.each([
    ["90", 90_000],
    ["2.5", 2_500],
    ["500ms", 500],
    ["90s", 90_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["2d", 172_800_000],
  ])("%s is %d ms", (text, ms) => {
    expect(parseDurationMs("--timeout", text)).toBe(ms);
  });
  it.each(["", "1x", "m", "1h 2m", "-5s", "5 m"])("refuses %j", (text) => {
    expect(() => parseDurationMs("--timeout", text)).toThrow(/^--timeout: /);
  });
  it("--ttl takes whole seconds", () => {
    expect(parseSeconds("--ttl", "1h")).toBe(3600);
    expect(parseSeconds("--ttl", "600")).toBe(600);
    expect(() => parseSeconds("--ttl", "1500ms")).toThrow(/--ttl: "1500ms" is not whole seconds/);
  });
});

describe("parseLabels", () => {
  it("merges repeated and comma-separated pairs", () => {
    expect(parseLabels("--label", ["team=sre", "app=web,tier="])).toEqual({
      team: "sre",
      app: "web",
      tier: "",
    });
  });
  it("refuses a pair without '=' and a key given twice", () => {
    expect(() => parseLabels("--label", ["team"])).toThrow(/--label: "team" must be key=value/);
    expect(() => parseLabels("--label", ["a=1", "a=2"])).toThrow(/label "a" is given twice/);
  });
});

describe("parseSelector", () => {
  it("reads kubectl's selector syntax", () => {
    expect(
      parseSelector("-l", "app=web,tier in (a, b),env notin (dev),release!=canary,gpu,!legacy,x==y"),
    ).toEqual({
      matchLabels: { app: "web", x: "y" },
      matchExpressions: [
        { key: "tier", operator: "In", values: ["a", "b"] },
        { key: "env", operator: "NotIn", values: ["dev"] },
        { key: "release", operator: "NotIn", values: ["canary"] },
        { key: "gpu", operator: "Exists" },
        { key: "legacy", operator: "DoesNotExist" },
      ],
    });
  });
  it("reads prefixed keys", () => {
    expect(parseSelector("-l", "app.kubernetes.io/name=web")).toEqual({
      matchLabels: { "app.kubernetes.io/name": "web" },
    });
  });
  it.each(["", "a=b,,c=d", "a=b=c", "a in b", "(a)", "a=1,a=2"])("refuses %j naming the flag", (text) => {
    expect(() => parseSelector("--selector", text)).toThrow(/^--selector: /);
  });
  it("reads back what formatSelector writes, for any valid selector", () => {
    fc.assert(
      fc.property(arbitraries.labelSelector, (selector) => {
        const text = formatSelector(selector);
        fc.pre(text !== "");
        const parsed = parseSelector("-l", text);
        expect(validate(LabelSelector, parsed).ok).toBe(true);
        // matchLabels and expressions round-trip; an empty map or list is simply absent.
        expect(parsed.matchLabels ?? {}).toEqual(selector.matchLabels ?? {});
        expect((parsed.matchExpressions ?? []).map((r) => ({ ...r, values: r.values ?? [] }))).toEqual(
          (selector.matchExpressions ?? []).map((r) => ({ ...r, values: r.values ?? [] })),
        );
      }),
    );
  });
});
