import { describe, expect, it } from "vitest";
import {
  formatLabelSelector,
  LabelSelectorSyntaxError,
  matchesLabelSelector,
  parseLabelSelector,
} from "./selector.js";

describe("label selectors", () => {
  it("matches with apimachinery semantics", () => {
    const l = { app: "web", tier: "front" };
    expect(matchesLabelSelector(l, {})).toBe(true);
    expect(matchesLabelSelector(l, { matchLabels: { app: "web" } })).toBe(true);
    expect(matchesLabelSelector(l, { matchLabels: { app: "db" } })).toBe(false);
    expect(
      matchesLabelSelector(l, { matchExpressions: [{ key: "x", operator: "NotIn", values: ["1"] }] }),
    ).toBe(true);
    expect(matchesLabelSelector(l, { matchExpressions: [{ key: "x", operator: "In", values: ["1"] }] })).toBe(
      false,
    );
    expect(
      matchesLabelSelector(undefined, { matchExpressions: [{ key: "x", operator: "DoesNotExist" }] }),
    ).toBe(true);
    expect(matchesLabelSelector({ constructor: "x" }, { matchLabels: { toString: "y" } })).toBe(false);
  });

  it("parses and formats the string form", () => {
    expect(parseLabelSelector("app=web, tier in (front,back),!canary,env!=prod,team,x==y")).toEqual({
      matchLabels: { app: "web", x: "y" },
      matchExpressions: [
        { key: "tier", operator: "In", values: ["front", "back"] },
        { key: "canary", operator: "DoesNotExist" },
        { key: "env", operator: "NotIn", values: ["prod"] },
        { key: "team", operator: "Exists" },
      ],
    });
    expect(parseLabelSelector("")).toEqual({});
    expect(() => parseLabelSelector("a in ()")).toThrow(LabelSelectorSyntaxError);
    expect(() => parseLabelSelector("a b")).toThrow(/not one of/);
    const sel = {
      matchLabels: { app: "web" },
      matchExpressions: [
        { key: "tier", operator: "In" as const, values: ["b", "a"] },
        { key: "c", operator: "DoesNotExist" as const },
      ],
    };
    expect(formatLabelSelector(sel)).toBe("!c,app=web,tier in (a,b)");
    const round = parseLabelSelector(formatLabelSelector(sel));
    const cases: Record<string, string>[] = [
      { app: "web", tier: "a" },
      { app: "web", tier: "a", c: "1" },
      { app: "web" },
    ];
    for (const labels of cases) {
      expect(matchesLabelSelector(labels, round)).toBe(matchesLabelSelector(labels, sel));
    }
  });
});
