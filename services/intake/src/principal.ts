/**
 * Who sent a request.
 *
 * nats-server does not tell a subscriber which user published a message. What it can do:
 *
 * 1. **The subject proves the namespace.** Give each team a NATS user whose permissions allow
 *    publishing only to its namespaces' request subjects (`namespaceSubjects(ns).req`, e.g.
 *    `ovntap.v1.req.shop`) and subscribing to its own reply inboxes and its events. Intake requires
 *    the body's namespace to equal the subject's (`validateRequest(raw, { subject })`), so a team
 *    can act only where NATS lets it publish — whatever it claims in `principal`:
 *
 *        authorization {
 *          users = [
 *            { user: shop-team, password: "…", permissions: {
 *                publish:   { allow: ["ovntap.v1.req.shop"] },
 *                subscribe: { allow: ["_INBOX_shop-team.>", "ovntap.v1.events.shop.>", "ovntap.v1.capture.shop.>"] } } }
 *            { user: intake, password: "…", permissions: {
 *                publish: { allow: [">"] }, subscribe: { allow: ["ovntap.v1.req.>", "_INBOX.>"] } } }
 *          ]
 *        }
 *
 *    The team's client sets `inboxPrefix: "_INBOX_shop-team"`, so it cannot read other teams'
 *    replies. The policy then needs no per-principal rules: NATS already decided the namespace.
 *
 * 2. **The user, from nats-server itself.** Put intake in its own account that exports the
 *    service `ovntap.v1.req.>`, and each team in an account that imports it with `share: true`.
 *    nats-server then stamps every request crossing the import with a `Nats-Request-Info` header
 *    (JSON ClientInfo: `acc`, `user`, `name`, `name_tag`, `tags`…) that the requester cannot set
 *    itself; set `trustNatsRequestInfo: true` in the policy. Without `share` the header carries
 *    only the account. Only trust it when no requester shares intake's own account, where a
 *    client could write the header itself.
 *
 *        accounts {
 *          OVNTAP: { jetstream: enabled, users: [{ user: intake, password: "…" }],
 *                    exports: [{ service: "ovntap.v1.req.>" }] }
 *          SHOP:   { users: [{ user: alice, password: "…" }],
 *                    imports: [{ service: { account: OVNTAP, subject: "ovntap.v1.req.shop" }, share: true }] }
 *        }
 *
 * 3. **An auth callout or a gateway** that authenticates the user and republishes with a header
 *    of its own: write a `PrincipalResolver` for it and pass it to `createIntake`.
 *
 * Resolution order: the injected resolvers, then `Nats-Request-Info` when trusted, then the body's
 * `principal` when `trustRequestPrincipal`, else the policy's `anonymousPrincipal`.
 */
import type { MsgHdrs } from "@nats-io/transport-node";
import { Principal } from "@ovntap/contracts";
import type { CompiledPolicy, Identity } from "./policy.js";

export type { Identity } from "./policy.js";

/** The header nats-server adds on a cross-account service import (ClientInfoHdr in its source). */
export const REQUEST_INFO_HEADER = "Nats-Request-Info";

export interface RequestContext {
  subject: string;
  headers: MsgHdrs | undefined;
  /** The body's `principal`, when the body has a valid one. */
  claimed: string | undefined;
}

/** Pluggable: returns the authenticated identity, or undefined to let the next source decide. */
export interface PrincipalResolver {
  readonly name: string;
  resolve(ctx: RequestContext): Identity | undefined;
}

const isPrincipal = (s: unknown): s is string => typeof s === "string" && Principal.safeParse(s).success;

/**
 * Reads `Nats-Request-Info`. The principal is the user's name tag (JWT logins), else its user
 * name or nkey, else `nats-account:<account>`; groups are `nats-account:<account>` and
 * `nats-tag:<tag>` for each JWT tag.
 */
export function natsRequestInfoResolver(): PrincipalResolver {
  return {
    name: "nats-request-info",
    resolve(ctx) {
      const raw = ctx.headers?.get(REQUEST_INFO_HEADER);
      if (!raw) return undefined;
      let info: { acc?: unknown; user?: unknown; name_tag?: unknown; tags?: unknown };
      try {
        info = JSON.parse(raw) as typeof info;
      } catch {
        return undefined;
      }
      const account = typeof info.acc === "string" && info.acc ? info.acc : undefined;
      const groups = [
        ...(account ? [`nats-account:${account}`] : []),
        ...(Array.isArray(info.tags)
          ? info.tags.filter((t): t is string => typeof t === "string").map((t) => `nats-tag:${t}`)
          : []),
      ];
      const candidates = [info.name_tag, info.user === "[REDACTED]" ? undefined : info.user];
      const principal = candidates.find(isPrincipal) ?? (account ? `nats-account:${account}` : undefined);
      if (!isPrincipal(principal)) return undefined;
      return { principal, groups, source: "nats-request-info" };
    },
  };
}

const requestInfo = natsRequestInfoResolver();

export function resolveIdentity(
  policy: CompiledPolicy,
  resolvers: readonly PrincipalResolver[],
  ctx: RequestContext,
): Identity {
  for (const r of resolvers) {
    const id = r.resolve(ctx);
    if (id && isPrincipal(id.principal)) return id;
  }
  if (policy.policy.trustNatsRequestInfo) {
    const id = requestInfo.resolve(ctx);
    if (id) return id;
  }
  if (policy.policy.trustRequestPrincipal && isPrincipal(ctx.claimed)) {
    return { principal: ctx.claimed, groups: [], source: "request" };
  }
  return { principal: policy.policy.anonymousPrincipal, groups: [], source: "anonymous" };
}
