/**
 * Receiving links: the kernel end of a remote mirror, as the Kube-OVN guide makes it inside the
 * receiving pod — created, owned and removed by the agent through iproute2 (`ip -j` to read).
 *
 *   const links = new ReceivingLinks({ ip, logger, node: "worker-1" });
 *   await links.ensure({ name: "mirror1", netns: "cni-1234", type: "gretap", local: "172.19.0.21",
 *                        key: 99, dev: "net1", owner: "shop/web", generation: 3 });
 *   // ip link add mirror1 type gretap local 172.19.0.21 key 99 dev net1
 *   await links.ensure({ …, type: "erspan", remote: "172.19.0.10", key: 7, erspanIndex: 7 });
 *   // ip link add mirror1 type erspan seq key 7 erspan 7 local 172.19.0.21 remote 172.19.0.10
 *   await links.remove({ name: "mirror1", netns: "cni-1234", owner: "shop/web" });
 *
 * Ownership is the link's alias (`ip link set dev X alias "ovntap/mirror=<ns>/<name> ovntap/generation=<g>"`):
 * a link of that name without our mark, or marked for another mirror, is never changed or removed.
 * A link whose parameters differ from the request is replaced. Where the kernel lacks the link
 * type (no `ip_gre` / `ip6_gre` module: "Unknown device type"), `ensure` fails with
 * LinkTypeUnsupportedError, which suggests a `--collector` target: the capture exporter receives
 * GRE and ERSPAN in user space.
 */
import { canonicalIp, ERROR_CODES, type ErrorCode } from "@ovntap/contracts";
import type { Logger } from "@ovntap/runtime";
import { OWNER_KEY, GENERATION_KEY } from "../names.js";
import { IpCommandError, type Ip, type IpLink } from "./ip.js";

export const RECEIVING_LINK_TYPES = ["gretap", "ip6gretap", "erspan", "ip6erspan"] as const;
export type ReceivingLinkType = (typeof RECEIVING_LINK_TYPES)[number];

export interface ReceivingLinkSpec {
  /** The link's name (IFNAMSIZ: at most 15 bytes). */
  name: string;
  /** The named network namespace to make it in (the receiving pod's); the agent's node namespace when absent. */
  netns?: string | undefined;
  type: ReceivingLinkType;
  /** The receiving address (the pod's attachment IP). */
  local: string;
  /** The sending tunnel endpoint; ERSPAN links need it, gretap may leave it out (any). */
  remote?: string | undefined;
  /** GRE key, or the ERSPAN session id. */
  key: number;
  /** ERSPAN type II index (the Kube-OVN guide and ovn-controller use the session id). */
  erspanIndex?: number | undefined;
  /** 1 = ERSPAN type II (the default), 2 = type III. */
  erspanVersion?: 1 | 2 | undefined;
  /** Lower device (the pod's attachment interface, e.g. net1). */
  dev?: string | undefined;
  /** The owning mirror, `<ns>/<name>`. */
  owner: string;
  generation: number;
}

/** The kernel cannot create this link type. Not retryable: use a collector target. */
export class LinkTypeUnsupportedError extends Error {
  override name = "LinkTypeUnsupportedError";
  readonly code: ErrorCode = ERROR_CODES.LINK_TYPE_UNSUPPORTED;
  readonly suggestion: string;
  constructor(
    readonly linkType: ReceivingLinkType,
    readonly node: string,
    readonly kernelMessage: string,
  ) {
    const suggestion =
      "use a --collector target instead: the capture exporter receives GRE and ERSPAN in user space and needs no kernel link";
    super(
      `the kernel of node ${node} cannot create ${linkType} links (iproute2: ${kernelMessage.trim() || "no message"}); ${suggestion}`,
    );
    this.suggestion = suggestion;
  }
}

/** A link of that name exists and is not this mirror's. */
export class LinkOwnedElsewhereError extends Error {
  override name = "LinkOwnedElsewhereError";
  readonly code: ErrorCode = ERROR_CODES.ALREADY_EXISTS;
  constructor(name: string, netns: string | undefined, owner: string | undefined) {
    super(
      `a link named ${name}${netns ? ` in network namespace ${netns}` : ""} exists and belongs to ${
        owner ? `mirror ${owner}` : "someone else (no ovntap mark in its alias)"
      }; it is never touched: pick another name`,
    );
  }
}

export interface OwnedLink {
  name: string;
  netns: string | undefined;
  owner: string;
  generation: number;
  type: string;
  link: IpLink;
}

/** The alias that marks a link as ours. */
export function linkAlias(owner: string, generation: number): string {
  return `${OWNER_KEY}=${owner} ${GENERATION_KEY}=${generation}`;
}

/** The owner and generation in an alias, or undefined when it is not ours. */
export function parseLinkAlias(alias: string | undefined): { owner: string; generation: number } | undefined {
  if (!alias) return undefined;
  const m = new RegExp(`^${OWNER_KEY}=(\\S+) ${GENERATION_KEY}=(\\d+)$`).exec(alias.trim());
  return m?.[1] && m[2] ? { owner: m[1], generation: Number(m[2]) } : undefined;
}

/** iproute2 prints GRE keys as dotted quads ("0.0.0.99", inet_ntop of the key); numbers pass through. */
export function parseGreKey(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v !== "string") return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  const parts = v.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** The `ip link add` arguments for a spec (the Kube-OVN guide's forms). */
export function linkAddArgs(spec: ReceivingLinkSpec): string[] {
  const args = ["link", "add", spec.name, "type", spec.type];
  if (spec.type === "erspan" || spec.type === "ip6erspan") {
    args.push("seq", "key", String(spec.key));
    const version = spec.erspanVersion ?? 1;
    if (version !== 1) args.push("erspan_ver", String(version));
    else args.push("erspan", String(spec.erspanIndex ?? spec.key));
  } else {
    args.push("key", String(spec.key));
  }
  args.push("local", spec.local);
  if (spec.remote) args.push("remote", spec.remote);
  if (spec.dev) args.push("dev", spec.dev);
  return args;
}

/** What about an existing link differs from the spec ([] when it matches). */
export function linkDifferences(link: IpLink, spec: ReceivingLinkSpec): string[] {
  const out: string[] = [];
  const kind = link.linkinfo?.info_kind;
  if (kind !== spec.type) out.push(`type ${kind ?? "?"} ≠ ${spec.type}`);
  const d = link.linkinfo?.info_data ?? {};
  const addr = (v: unknown) => (typeof v === "string" ? (canonicalIp(v) ?? v) : undefined);
  if (addr(d.local) !== canonicalIp(spec.local)) out.push(`local ${String(d.local)} ≠ ${spec.local}`);
  const remote = addr(d.remote);
  const wantRemote = spec.remote ? canonicalIp(spec.remote) : undefined;
  if ((remote === "any" ? undefined : remote) !== wantRemote)
    out.push(`remote ${String(d.remote)} ≠ ${spec.remote ?? "any"}`);
  if (parseGreKey(d.ikey) !== spec.key || parseGreKey(d.okey) !== spec.key) {
    out.push(`key ${String(d.ikey)}/${String(d.okey)} ≠ ${spec.key}`);
  }
  if (spec.type === "erspan" || spec.type === "ip6erspan") {
    const version = spec.erspanVersion ?? 1;
    if (Number(d.erspan_ver ?? 1) !== version) out.push(`erspan_ver ${String(d.erspan_ver)} ≠ ${version}`);
    if (version === 1 && Number(d.erspan_index) !== (spec.erspanIndex ?? spec.key)) {
      out.push(`erspan_index ${String(d.erspan_index)} ≠ ${spec.erspanIndex ?? spec.key}`);
    }
  }
  if (spec.dev && d.link !== spec.dev) out.push(`dev ${String(d.link)} ≠ ${spec.dev}`);
  return out;
}

const UNSUPPORTED = /Unknown device type|Operation not supported|not supported/i;
const MISSING = /does not exist|Cannot find device/i;

export class ReceivingLinks {
  private readonly log: Logger;
  constructor(private readonly o: { ip: Ip; logger: Logger; node: string }) {
    this.log = o.logger.child({ component: "links" });
  }

  private ipIn(netns: string | undefined): Ip {
    return netns === undefined ? this.o.ip : this.o.ip.in(netns);
  }

  /** The link `name`, or undefined. */
  async get(name: string, netns?: string): Promise<IpLink | undefined> {
    try {
      const links = await this.ipIn(netns).json<IpLink[]>(["-d", "link", "show", "dev", name]);
      return links[0];
    } catch (err) {
      if (err instanceof IpCommandError && MISSING.test(err.stderr)) return undefined;
      throw err;
    }
  }

  /** Makes the link exist as the spec says; throws LinkTypeUnsupportedError or LinkOwnedElsewhereError. */
  async ensure(
    spec: ReceivingLinkSpec,
  ): Promise<{ action: "created" | "unchanged" | "replaced"; link: IpLink }> {
    const ip = this.ipIn(spec.netns);
    const existing = await this.get(spec.name, spec.netns);
    let action: "created" | "replaced" = "created";
    if (existing) {
      const mark = parseLinkAlias(existing.ifalias);
      if (mark?.owner !== spec.owner) throw new LinkOwnedElsewhereError(spec.name, spec.netns, mark?.owner);
      const diff = linkDifferences(existing, spec);
      if (diff.length === 0) {
        if (mark.generation !== spec.generation) {
          await ip.run(["link", "set", "dev", spec.name, "alias", linkAlias(spec.owner, spec.generation)]);
        }
        if (!existing.flags?.includes("UP")) await ip.run(["link", "set", "dev", spec.name, "up"]);
        return { action: "unchanged", link: (await this.get(spec.name, spec.netns)) ?? existing };
      }
      this.log.info(
        { link: spec.name, netns: spec.netns, mirror: spec.owner, diff },
        "receiving link replaced",
      );
      await ip.run(["link", "del", "dev", spec.name]);
      action = "replaced";
    }
    const add = await ip.tryRun(linkAddArgs(spec));
    if (add.code !== 0) {
      if (UNSUPPORTED.test(add.stderr))
        throw new LinkTypeUnsupportedError(spec.type, this.o.node, add.stderr);
      throw new IpCommandError(linkAddArgs(spec), add.code, add.stderr);
    }
    try {
      await ip.run(["link", "set", "dev", spec.name, "alias", linkAlias(spec.owner, spec.generation)]);
      await ip.run(["link", "set", "dev", spec.name, "up"]);
    } catch (err) {
      // Never leave an unmarked link we made: nobody would own it.
      await ip.tryRun(["link", "del", "dev", spec.name]);
      throw err;
    }
    const link = await this.get(spec.name, spec.netns);
    if (!link) throw new Error(`link ${spec.name} vanished right after it was created`);
    this.log.info(
      { link: spec.name, netns: spec.netns, mirror: spec.owner, type: spec.type, action },
      "receiving link ready",
    );
    return { action, link };
  }

  /** Removes the link when it is `owner`'s; false when it is absent or not ours. */
  async remove(ref: { name: string; netns?: string | undefined; owner: string }): Promise<boolean> {
    const existing = await this.get(ref.name, ref.netns);
    if (!existing) return false;
    if (parseLinkAlias(existing.ifalias)?.owner !== ref.owner) return false;
    await this.ipIn(ref.netns).run(["link", "del", "dev", ref.name]);
    this.log.info({ link: ref.name, netns: ref.netns, mirror: ref.owner }, "receiving link removed");
    return true;
  }

  /** Every link in the namespace marked as a mirror's. */
  async list(netns?: string): Promise<OwnedLink[]> {
    const links = await this.ipIn(netns).json<IpLink[]>(["-d", "link", "show"]);
    const out: OwnedLink[] = [];
    for (const link of links) {
      const mark = parseLinkAlias(link.ifalias);
      if (!mark) continue;
      out.push({ name: link.ifname, netns, ...mark, type: link.linkinfo?.info_kind ?? "", link });
    }
    return out;
  }
}
