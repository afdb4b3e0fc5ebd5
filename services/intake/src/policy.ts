/**
 * The intake policy: who may do what in which namespace, and the limits that apply there.
 * Written as YAML or JSON (`POLICY_FILE`), validated with zod; each problem is reported with the
 * field it is about (`rules[0].namespaces: is required`).
 *
 *     # policy.yaml
 *     trustRequestPrincipal: false      # the body's `principal` is a claim; ignore it
 *     trustNatsRequestInfo: true        # identities from the Nats-Request-Info header (see principal.ts)
 *     protectedNamespaces: [kube-system, "kube-*"]
 *     groups:
 *       netops: [alice, "ci:netops-*"]
 *     maxActiveMirrors: 10              # per namespace, mirrors not being deleted
 *     maxTtlSeconds: 86400
 *     allowedSinkCidrs: [10.0.0.0/8, 198.51.100.0/24, "fd00::/8"]
 *     allowPodSinks: true
 *     namespaceLimits:                  # first entry whose namespaces match overrides the defaults above
 *       - namespaces: [shop]
 *         maxActiveMirrors: 3
 *         maxTtlSeconds: 3600
 *     rules:                            # a request is allowed when any rule matches it
 *       - principals: ["team-shop:*"]
 *         namespaces: [shop, "shop-*"]
 *         ops: [create, delete, get, list, extend]
 *         ownMirrorsOnly: true          # delete/extend only mirrors this principal created
 *       - groups: [netops]
 *         namespaces: ["*"]
 *         ops: ["*"]
 *         allowPortsSources: true       # raw logical switch ports: admin only
 *         allowOvsSources: true         # node bridge ports: admin only
 *
 * Patterns (principals, namespaces, protected namespaces, group members) are exact strings or
 * globs: `*` matches any run of characters (`team-shop:*` is a prefix match), `?` one character.
 *
 * Without a policy file intake uses DEFAULT_POLICY: everyone may do everything in every namespace
 * but `kube-system`, at most 10 active mirrors per namespace, TTL up to 1 day, any unicast sink
 * (the contract already refuses loopback, multicast, link-local…), pod sinks allowed, no `ports` or
 * `ovs` sources, and the body's `principal` is trusted — with no rules that tell principals apart
 * trusting it grants nothing, and it keeps the claimed name in the audit trail. Set a policy file
 * in production.
 */
import { BlockList } from "node:net";
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import {
  Cidr,
  Principal,
  REQUEST_OPS,
  TTL_MAX_SECONDS,
  TTL_MIN_SECONDS,
  validate,
  transportFamily,
} from "@ovntap/contracts";
import type { ErrorIssue, RequestOp } from "@ovntap/contracts";

const Pattern = z
  .string()
  .min(1, { error: "must not be empty (a name or glob)" })
  .max(256, { error: "must be at most 256 characters (a name or glob)" });

const OpOrAll = z.enum([...REQUEST_OPS, "*"], {
  error: `must be one of ${[...REQUEST_OPS, "*"].join(", ")}`,
});

const limitFields = {
  /** Mirrors not being deleted, per namespace. */
  maxActiveMirrors: z.number().int().min(0, { error: "must be ≥ 0" }),
  maxTtlSeconds: z
    .number()
    .int()
    .min(TTL_MIN_SECONDS, { error: `must be ≥ ${TTL_MIN_SECONDS} (the contract's shortest TTL)` })
    .max(TTL_MAX_SECONDS, { error: `must be ≤ ${TTL_MAX_SECONDS} (the contract's longest TTL)` }),
  /** IP sinks must be inside one of these (IPv4 and IPv6 CIDRs). */
  allowedSinkCidrs: z.array(Cidr),
  /** Whether a sink may be given as a pod (resolved to an IP by the applier, after this check). */
  allowPodSinks: z.boolean(),
};

export const PolicyRule = z
  .strictObject({
    description: z.string().max(1024).optional(),
    /** Principal names or globs. */
    principals: z.array(Pattern).default([]),
    /** Group names (from `groups`, or given by the principal resolver). */
    groups: z.array(Pattern).default([]),
    namespaces: z.array(Pattern).min(1, { error: "must list at least one namespace or glob" }),
    ops: z.array(OpOrAll).min(1, { error: "must list at least one op (or *)" }).default(["*"]),
    /** Raw OVN logical switch ports as sources (can reach any namespace's pods): admin only. */
    allowPortsSources: z.boolean().default(false),
    /** OVS bridge ports or VLANs on a node as sources (outside any namespace): admin only. */
    allowOvsSources: z.boolean().default(false),
    /** Delete and extend only mirrors this principal owns. */
    ownMirrorsOnly: z.boolean().default(false),
  })
  .refine((r) => r.principals.length + r.groups.length > 0, {
    error: "must name at least one principal or group",
    path: ["principals"],
  });
export type PolicyRule = z.output<typeof PolicyRule>;

export const Policy = z.strictObject({
  version: z.literal(1, { error: "must be 1" }).default(1),
  /** Trust the `principal` in request bodies when nothing authenticated the requester. */
  trustRequestPrincipal: z.boolean().default(false),
  /** Trust the `Nats-Request-Info` header (set by nats-server on a cross-account service import). */
  trustNatsRequestInfo: z.boolean().default(false),
  /** The principal of a request nobody vouches for. */
  anonymousPrincipal: Principal.default("anonymous"),
  protectedNamespaces: z.array(Pattern).default(["kube-system"]),
  groups: z.record(z.string().min(1).max(256), z.array(Pattern)).default({}),
  maxActiveMirrors: limitFields.maxActiveMirrors.default(10),
  maxTtlSeconds: limitFields.maxTtlSeconds.default(24 * 60 * 60),
  allowedSinkCidrs: limitFields.allowedSinkCidrs.default(["0.0.0.0/0", "::/0"]),
  allowPodSinks: limitFields.allowPodSinks.default(true),
  namespaceLimits: z
    .array(
      z.strictObject({
        namespaces: z.array(Pattern).min(1, { error: "must list at least one namespace or glob" }),
        maxActiveMirrors: limitFields.maxActiveMirrors.optional(),
        maxTtlSeconds: limitFields.maxTtlSeconds.optional(),
        allowedSinkCidrs: limitFields.allowedSinkCidrs.optional(),
        allowPodSinks: limitFields.allowPodSinks.optional(),
      }),
    )
    .default([]),
  rules: z.array(PolicyRule).min(1, { error: "must list at least one rule (nothing would be allowed)" }),
});
export type Policy = z.output<typeof Policy>;
export type PolicyInput = z.input<typeof Policy>;

export const DEFAULT_POLICY: Policy = Policy.parse({
  trustRequestPrincipal: true,
  rules: [
    { description: "default: everyone, everywhere not protected", principals: ["*"], namespaces: ["*"] },
  ],
});

/** A policy file that does not parse or validate; `issues` name each field. */
export class PolicyError extends Error {
  override readonly name = "PolicyError";
  constructor(
    readonly source: string,
    readonly issues: readonly ErrorIssue[],
    options?: { cause?: unknown },
  ) {
    super(
      `policy ${source} is invalid, fix: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")}`,
      options,
    );
  }
}

/** Parses policy text: JSON when it is JSON, else YAML (of which JSON is a subset anyway). */
export function parsePolicy(text: string, source = "(text)"): Policy {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new PolicyError(source, [{ path: "", message: `is not YAML or JSON: ${(err as Error).message}` }], {
      cause: err,
    });
  }
  const r = validate(Policy, raw ?? {}, "policy");
  if (!r.ok) throw new PolicyError(source, r.error.issues);
  return r.value;
}

export async function loadPolicyFile(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new PolicyError(path, [{ path: "", message: `cannot be read: ${(err as Error).message}` }], {
      cause: err,
    });
  }
  return parsePolicy(text, path);
}

// ---------------------------------------------------------------------------------------------
// Compiled form

/** `*` any run, `?` one character, everything else literal. */
export function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (const ch of pattern) {
    if (ch === "*") re += ".*";
    else if (ch === "?") re += ".";
    else re += ch.replace(/[.+^${}()|[\]\\/-]/g, "\\$&");
  }
  return new RegExp(`^${re}$`, "s");
}

type Matcher = (value: string) => boolean;

function matcher(patterns: readonly string[]): Matcher {
  const exact = new Set(patterns.filter((p) => !p.includes("*") && !p.includes("?")));
  const globs = patterns.filter((p) => p.includes("*") || p.includes("?")).map(globToRegExp);
  return (v) => exact.has(v) || globs.some((g) => g.test(v));
}

export interface NamespaceLimits {
  maxActiveMirrors: number;
  maxTtlSeconds: number;
  allowedSinkCidrs: readonly string[];
  allowPodSinks: boolean;
  /** Whether an IP sink is inside allowedSinkCidrs. */
  sinkAllowed(ip: string): boolean;
}

/** What the rules matching a request grant. */
export interface Grant {
  allowPortsSources: boolean;
  allowOvsSources: boolean;
  ownMirrorsOnly: boolean;
}

export interface Identity {
  principal: string;
  /** Groups the resolver vouches for (e.g. `nats-account:TEAM`), on top of the policy's own. */
  groups: readonly string[];
  /** Where the principal came from: "nats-request-info", "request", "anonymous", or a resolver's name. */
  source: string;
}

export interface CompiledPolicy {
  readonly policy: Policy;
  isProtected(namespace: string): boolean;
  limits(namespace: string): NamespaceLimits;
  /** The grant for this principal, op and namespace, or undefined when no rule allows it. */
  grant(identity: Identity, op: RequestOp, namespace: string): Grant | undefined;
}

function sinkMatcher(cidrs: readonly string[]): (ip: string) => boolean {
  // One list per family: Node's BlockList matches IPv4 addresses against IPv6 rules (::/0 would admit all).
  const v4 = new BlockList();
  const v6 = new BlockList();
  for (const cidr of cidrs) {
    const [net = "", prefix = "0"] = cidr.split("/");
    if (transportFamily(net) === 4) v4.addSubnet(net, Number(prefix), "ipv4");
    else v6.addSubnet(net, Number(prefix), "ipv6");
  }
  return (ip) => (transportFamily(ip) === 4 ? v4.check(ip, "ipv4") : v6.check(ip, "ipv6"));
}

export function compilePolicy(policy: Policy): CompiledPolicy {
  const isProtected = matcher(policy.protectedNamespaces);
  const groupMembers = new Map(Object.entries(policy.groups).map(([g, members]) => [g, matcher(members)]));
  const rules = policy.rules.map((r) => ({
    rule: r,
    principal: matcher(r.principals),
    namespace: matcher(r.namespaces),
    ops: new Set<string>(r.ops),
  }));
  const overrides = policy.namespaceLimits.map((l) => ({ limits: l, match: matcher(l.namespaces) }));
  const limitCache = new Map<string, NamespaceLimits>();

  function limits(namespace: string): NamespaceLimits {
    const cached = limitCache.get(namespace);
    if (cached) return cached;
    const o = overrides.find((x) => x.match(namespace))?.limits;
    const allowedSinkCidrs = o?.allowedSinkCidrs ?? policy.allowedSinkCidrs;
    const l: NamespaceLimits = {
      maxActiveMirrors: o?.maxActiveMirrors ?? policy.maxActiveMirrors,
      maxTtlSeconds: o?.maxTtlSeconds ?? policy.maxTtlSeconds,
      allowedSinkCidrs,
      allowPodSinks: o?.allowPodSinks ?? policy.allowPodSinks,
      sinkAllowed: sinkMatcher(allowedSinkCidrs),
    };
    if (limitCache.size < 10_000) limitCache.set(namespace, l);
    return l;
  }

  function inGroup(identity: Identity, group: string): boolean {
    if (identity.groups.includes(group)) return true;
    return groupMembers.get(group)?.(identity.principal) ?? false;
  }

  return {
    policy,
    isProtected,
    limits,
    grant(identity, op, namespace) {
      const matching = rules.filter(
        (r) =>
          (r.ops.has("*") || r.ops.has(op)) &&
          r.namespace(namespace) &&
          (r.principal(identity.principal) || r.rule.groups.some((g) => inGroup(identity, g))),
      );
      if (matching.length === 0) return undefined;
      return {
        allowPortsSources: matching.some((r) => r.rule.allowPortsSources),
        allowOvsSources: matching.some((r) => r.rule.allowOvsSources),
        // Restricted only when every rule that admits the request restricts it.
        ownMirrorsOnly: matching.every((r) => r.rule.ownMirrorsOnly),
      };
    },
  };
}
