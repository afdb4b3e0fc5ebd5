import { headers } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { compilePolicy, DEFAULT_POLICY, globToRegExp, parsePolicy, PolicyError } from "./policy.js";
import type { Identity } from "./policy.js";
import { natsRequestInfoResolver, REQUEST_INFO_HEADER, resolveIdentity } from "./principal.js";
import { matchesLabelSelector, type LabelSelector } from "@ovntap/contracts";

const who = (principal: string, groups: string[] = []): Identity => ({ principal, groups, source: "test" });

const EXAMPLE = `
trustRequestPrincipal: false
protectedNamespaces: [kube-system, "kube-*"]
groups:
  netops: [alice, "ci:netops-*"]
maxActiveMirrors: 10
maxTtlSeconds: 86400
allowedSinkCidrs: [10.0.0.0/8, 198.51.100.0/24, "fd00::/8"]
namespaceLimits:
  - namespaces: [shop]
    maxActiveMirrors: 3
    maxTtlSeconds: 3600
rules:
  - principals: ["team-shop:*"]
    namespaces: [shop, "shop-*"]
    ops: [create, delete, get, list, extend]
    ownMirrorsOnly: true
  - groups: [netops]
    namespaces: ["*"]
    allowPortsSources: true
`;

describe("policy file", () => {
  it("parses YAML and JSON with defaults filled in", () => {
    const p = parsePolicy(EXAMPLE, "example.yaml");
    expect(p.rules).toHaveLength(2);
    expect(p.rules[1]).toMatchObject({ ops: ["*"], allowPortsSources: true, allowOvsSources: false });
    expect(p.anonymousPrincipal).toBe("anonymous");
    expect(p.allowPodSinks).toBe(true);
    const json = parsePolicy(JSON.stringify({ rules: [{ principals: ["*"], namespaces: ["*"] }] }), "p.json");
    expect(json.protectedNamespaces).toEqual(["kube-system"]);
    expect(json.trustRequestPrincipal).toBe(false);
  });

  it("names every invalid field and its limit", () => {
    const bad = `
maxTtlSeconds: 99999999
allowedSinkCidrs: [10.0.0.1/8, nonsense]
rules:
  - principals: [alice]
    ops: [create, fly]
  - namespaces: [shop]
unknownKey: 1
`;
    let error: unknown;
    try {
      parsePolicy(bad, "bad.yaml");
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PolicyError);
    const issues = (error as PolicyError).issues.map((i) => i.path);
    expect(issues).toEqual(
      expect.arrayContaining([
        "maxTtlSeconds",
        "allowedSinkCidrs[0]",
        "allowedSinkCidrs[1]",
        "rules[0].namespaces",
        "rules[0].ops[1]",
        "rules[1].principals",
        "unknownKey",
      ]),
    );
    expect((error as PolicyError).message).toMatch(/^policy bad\.yaml is invalid, fix: /);
    expect((error as PolicyError).message).toContain("maxTtlSeconds: must be ≤ 604800");
    expect((error as PolicyError).message).toContain("10.0.0.0/8");
    expect(() => parsePolicy("rules: [", "x.yaml")).toThrow(/is not YAML or JSON/);
    expect(() => parsePolicy("", "empty.yaml")).toThrow(/rules: is required/);
  });

  it("the default policy: everyone everywhere but kube-system, no ports or ovs sources", () => {
    const p = compilePolicy(DEFAULT_POLICY);
    expect(p.isProtected("kube-system")).toBe(true);
    expect(p.isProtected("shop")).toBe(false);
    expect(p.grant(who("anyone"), "create", "shop")).toEqual({
      allowPortsSources: false,
      allowOvsSources: false,
      ownMirrorsOnly: false,
    });
    expect(p.limits("shop")).toMatchObject({
      maxActiveMirrors: 10,
      maxTtlSeconds: 86400,
      allowPodSinks: true,
    });
    expect(p.limits("shop").sinkAllowed("198.51.100.2")).toBe(true);
    expect(p.limits("shop").sinkAllowed("2001:db8::1")).toBe(true);
    expect(DEFAULT_POLICY.trustRequestPrincipal).toBe(true);
  });
});

describe("compiled policy", () => {
  const p = compilePolicy(parsePolicy(EXAMPLE));

  it("matches principals exactly, by glob and by group", () => {
    expect(p.grant(who("team-shop:bob"), "create", "shop")?.ownMirrorsOnly).toBe(true);
    expect(p.grant(who("team-shop:bob"), "create", "shop-eu")).toBeDefined();
    expect(p.grant(who("team-shop:bob"), "create", "bank")).toBeUndefined();
    expect(p.grant(who("team-bank:eve"), "create", "shop")).toBeUndefined();
    // alice is in netops (policy group), ci:netops-7 by glob, carol by a resolver-given group.
    expect(p.grant(who("alice"), "delete", "bank")).toMatchObject({
      allowPortsSources: true,
      ownMirrorsOnly: false,
    });
    expect(p.grant(who("ci:netops-7"), "get", "bank")).toBeDefined();
    expect(p.grant(who("carol", ["netops"]), "list", "bank")).toBeDefined();
    expect(p.grant(who("carol"), "list", "bank")).toBeUndefined();
    // A rule that does not restrict wins over one that does.
    expect(p.grant(who("alice"), "delete", "shop")?.ownMirrorsOnly).toBe(false);
  });

  it("protects namespaces by glob and applies per-namespace limits", () => {
    expect(p.isProtected("kube-public")).toBe(true);
    expect(p.limits("shop")).toMatchObject({ maxActiveMirrors: 3, maxTtlSeconds: 3600 });
    expect(p.limits("bank")).toMatchObject({ maxActiveMirrors: 10, maxTtlSeconds: 86400 });
  });

  it("checks sinks against IPv4 and IPv6 CIDRs separately", () => {
    const l = p.limits("bank");
    expect(l.sinkAllowed("10.1.2.3")).toBe(true);
    expect(l.sinkAllowed("198.51.100.2")).toBe(true);
    expect(l.sinkAllowed("198.51.101.2")).toBe(false);
    expect(l.sinkAllowed("fd12::1")).toBe(true);
    expect(l.sinkAllowed("2001:db8::1")).toBe(false);
    const v6only = compilePolicy(
      parsePolicy('{"allowedSinkCidrs": ["::/0"], "rules": [{"principals": ["*"], "namespaces": ["*"]}]}'),
    );
    // ::/0 must not admit IPv4 sinks (Node's BlockList would map them).
    expect(v6only.limits("x").sinkAllowed("10.0.0.1")).toBe(false);
    expect(v6only.limits("x").sinkAllowed("2001:db8::1")).toBe(true);
  });

  it("globs: * any run, ? one character, the rest literal", () => {
    expect(globToRegExp("team-*").test("team-shop:bob")).toBe(true);
    expect(globToRegExp("a?c").test("abc")).toBe(true);
    expect(globToRegExp("a?c").test("abbc")).toBe(false);
    expect(globToRegExp("a.c").test("abc")).toBe(false);
    expect(globToRegExp("(x)+").test("(x)+")).toBe(true);
  });
});

describe("identity", () => {
  const trusting = compilePolicy(
    parsePolicy(
      '{"trustRequestPrincipal": true, "trustNatsRequestInfo": true, "rules": [{"principals": ["*"], "namespaces": ["*"]}]}',
    ),
  );
  const strict = compilePolicy(parsePolicy('{"rules": [{"principals": ["*"], "namespaces": ["*"]}]}'));

  function withInfo(info: unknown) {
    const h = headers();
    h.set(REQUEST_INFO_HEADER, JSON.stringify(info));
    return h;
  }

  it("reads Nats-Request-Info: name tag, user, else the account", () => {
    const r = natsRequestInfoResolver();
    expect(
      r.resolve({
        subject: "s",
        claimed: undefined,
        headers: withInfo({ acc: "SHOP", user: "alice", tags: ["ops"] }),
      }),
    ).toEqual({
      principal: "alice",
      groups: ["nats-account:SHOP", "nats-tag:ops"],
      source: "nats-request-info",
    });
    expect(
      r.resolve({
        subject: "s",
        claimed: undefined,
        headers: withInfo({ acc: "SHOP", user: "UABC", name_tag: "alice" }),
      })?.principal,
    ).toBe("alice");
    expect(
      r.resolve({ subject: "s", claimed: undefined, headers: withInfo({ acc: "SHOP" }) })?.principal,
    ).toBe("nats-account:SHOP");
    expect(
      r.resolve({ subject: "s", claimed: undefined, headers: withInfo({ acc: "SHOP", user: "[REDACTED]" }) })
        ?.principal,
    ).toBe("nats-account:SHOP");
    const junk = headers();
    junk.set(REQUEST_INFO_HEADER, "{not json");
    expect(r.resolve({ subject: "s", claimed: undefined, headers: junk })).toBeUndefined();
    expect(r.resolve({ subject: "s", claimed: undefined, headers: undefined })).toBeUndefined();
  });

  it("resolution order: resolvers, trusted header, trusted claim, anonymous", () => {
    const ctx = { subject: "s", claimed: "mallory", headers: withInfo({ acc: "SHOP", user: "alice" }) };
    expect(resolveIdentity(trusting, [], ctx).principal).toBe("alice");
    expect(resolveIdentity(trusting, [], { ...ctx, headers: undefined })).toMatchObject({
      principal: "mallory",
      source: "request",
    });
    expect(resolveIdentity(strict, [], ctx)).toMatchObject({ principal: "anonymous", source: "anonymous" });
    const custom = {
      name: "gateway",
      resolve: () => ({ principal: "gw-user", groups: [], source: "gateway" }),
    };
    expect(resolveIdentity(strict, [custom], ctx).principal).toBe("gw-user");
  });
});

/** `list`'s rule: no selector matches every mirror. */
const selectorMatches = (selector: LabelSelector | undefined, labels?: Record<string, string>) =>
  selector === undefined || matchesLabelSelector(labels, selector);

describe("selectorMatches", () => {
  const labels = { app: "web", tier: "front" };
  it("implements matchLabels and the four operators", () => {
    expect(selectorMatches(undefined, labels)).toBe(true);
    expect(selectorMatches({}, labels)).toBe(true);
    expect(selectorMatches({ matchLabels: { app: "web" } }, labels)).toBe(true);
    expect(selectorMatches({ matchLabels: { app: "db" } }, labels)).toBe(false);
    expect(
      selectorMatches(
        { matchExpressions: [{ key: "tier", operator: "In", values: ["front", "x"] }] },
        labels,
      ),
    ).toBe(true);
    expect(
      selectorMatches({ matchExpressions: [{ key: "tier", operator: "NotIn", values: ["front"] }] }, labels),
    ).toBe(false);
    expect(
      selectorMatches({ matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] }, labels),
    ).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: "app", operator: "Exists" }] }, labels)).toBe(true);
    expect(selectorMatches({ matchExpressions: [{ key: "app", operator: "DoesNotExist" }] }, labels)).toBe(
      false,
    );
    expect(selectorMatches({ matchLabels: { app: "web" } }, undefined)).toBe(false);
  });
});

describe("policy.example.yaml", () => {
  it("is a valid policy", async () => {
    const { readFile } = await import("node:fs/promises");
    const text = await readFile(new URL("../policy.example.yaml", import.meta.url), "utf8");
    const p = compilePolicy(parsePolicy(text, "policy.example.yaml"));
    expect(p.grant(who("team-shop:bob"), "create", "shop")?.ownMirrorsOnly).toBe(true);
    expect(p.limits("shop").sinkAllowed("10.20.1.1")).toBe(true);
    expect(p.limits("shop").sinkAllowed("10.21.1.1")).toBe(false);
    expect(p.grant(who("ci:netops-1"), "create", "bank")?.allowOvsSources).toBe(true);
  });
});
