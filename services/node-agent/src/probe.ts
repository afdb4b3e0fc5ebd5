/**
 * The capability probe: what this node can do for a mirror, found by asking the node itself
 * rather than trusting version numbers.
 *
 *   const caps = await probeCapabilities({ ip, ovs, logger });   // AgentCapabilities
 *
 * - Kernel receiving links (`gretap`, `ip6gretap`, `erspan`, `ip6erspan`): tried with a real
 *   `ip link add` in a throwaway network namespace, then removed with it. A kernel without the
 *   module answers "Unknown device type"; nothing is left behind either way.
 * - The transport interface, its MTU and addresses: configured, else the interface holding
 *   `external_ids:ovn-encap-ip` (the tunnel source ovn-controller uses), else the interface of
 *   the default route.
 * - OVS and OVN versions, the kernel release, the datapath types vswitchd supports, and each
 *   bridge's mirror count against the 32 slots OVS has.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { release } from "node:os";
import { AgentCapabilities, canonicalIp, MAX_MIRRORS_PER_BRIDGE, type AgentBridge } from "@ovntap/contracts";
import { columnEnum, type DatabaseSchema } from "@ovntap/ovsdb";
import type { Logger } from "@ovntap/runtime";
import type { Ip, IpLink, IpRoute } from "./net/ip.js";
import { datapathOf, type OvsState } from "./ovs/state.js";

export const KERNEL_LINK_TYPES = ["gretap", "ip6gretap", "erspan", "ip6erspan"] as const;
export type KernelLinkType = (typeof KERNEL_LINK_TYPES)[number];

/** Arguments of a throwaway link of each type (documentation addresses; never brought up). */
const PROBE_ARGS: Record<KernelLinkType, readonly string[]> = {
  gretap: ["local", "203.0.113.1", "remote", "203.0.113.2", "key", "1"],
  ip6gretap: ["local", "2001:db8::1", "remote", "2001:db8::2", "key", "1"],
  // The Kube-OVN guide's form: `type erspan seq key <session> erspan <index> local … remote …`.
  erspan: ["seq", "key", "1", "erspan", "1", "local", "203.0.113.1", "remote", "203.0.113.2"],
  ip6erspan: ["seq", "key", "1", "erspan", "1", "local", "2001:db8::1", "remote", "2001:db8::2"],
};

export interface LinkProbe {
  supported: boolean;
  /** iproute2's message when not ("Error: Unknown device type."). */
  error?: string;
}

/**
 * Tries `ip link add` of each type in a fresh namespace `ovntap-probe-<random>` and deletes
 * the namespace (with whatever was created in it) afterwards.
 */
export async function probeKernelLinks(
  ip: Ip,
  opts: { types?: readonly KernelLinkType[]; namespace?: string } = {},
): Promise<Record<KernelLinkType, LinkProbe>> {
  const types = opts.types ?? KERNEL_LINK_TYPES;
  const root = ip.in(undefined);
  const ns = opts.namespace ?? `ovntap-probe-${randomBytes(4).toString("hex")}`;
  const out = {} as Record<KernelLinkType, LinkProbe>;
  const added = await root.tryRun(["netns", "add", ns]);
  if (added.code !== 0) {
    const error = `cannot create a probe namespace: ${added.stderr.trim()}`;
    for (const t of types) out[t] = { supported: false, error };
    return out;
  }
  try {
    const inNs = root.in(ns);
    for (const t of types) {
      const r = await inNs.tryRun(["link", "add", "probe0", "type", t, ...PROBE_ARGS[t]]);
      out[t] = r.code === 0 ? { supported: true } : { supported: false, error: r.stderr.trim() };
      if (r.code === 0) await inNs.tryRun(["link", "del", "probe0"]);
    }
  } finally {
    await root.tryRun(["netns", "del", ns]);
  }
  return out;
}

export interface TransportInfo {
  interface: string;
  mtu: number;
  addresses: string[];
  /** How it was found, for the logs. */
  source: "config" | "encap-ip" | "default-route" | "fallback";
}

const usable = (l: IpLink) => l.ifname !== "lo" && l.link_type !== "loopback";

function addressesOf(link: IpLink): string[] {
  const out: string[] = [];
  for (const a of link.addr_info ?? []) {
    if (a.scope === "link" || a.scope === "host") continue;
    const c = canonicalIp(a.local);
    if (c) out.push(c);
  }
  return out;
}

/** The transport interface: configured, else the holder of the encap IP, else the default route's. */
export async function findTransport(
  ip: Ip,
  opts: { configured?: string | undefined; encapIps?: readonly string[] },
): Promise<TransportInfo> {
  const links = await ip.json<IpLink[]>(["addr", "show"]);
  const info = (l: IpLink, source: TransportInfo["source"]): TransportInfo => ({
    interface: l.ifname,
    mtu: Math.min(65535, Math.max(68, l.mtu)),
    addresses: addressesOf(l),
    source,
  });
  if (opts.configured) {
    const l = links.find((x) => x.ifname === opts.configured);
    if (!l) {
      throw new Error(
        `TRANSPORT_INTERFACE: no interface ${opts.configured}${ip.netns ? ` in network namespace ${ip.netns}` : ""}`,
      );
    }
    return info(l, "config");
  }
  const encap = new Set((opts.encapIps ?? []).map((a) => canonicalIp(a)).filter((a) => a !== undefined));
  if (encap.size > 0) {
    const l = links.find((x) => (x.addr_info ?? []).some((a) => encap.has(canonicalIp(a.local) ?? "")));
    if (l) return info(l, "encap-ip");
  }
  for (const family of ["-4", "-6"]) {
    const routes = await ip.json<IpRoute[]>([family, "route", "show", "default"]).catch(() => []);
    const dev = routes.find((r) => r.dev)?.dev;
    const l = dev ? links.find((x) => x.ifname === dev) : undefined;
    if (l) return info(l, "default-route");
  }
  const l = links.find((x) => usable(x) && x.flags?.includes("UP")) ?? links.find(usable) ?? links[0];
  if (!l) throw new Error(`no network interface${ip.netns ? ` in network namespace ${ip.netns}` : ""}`);
  return info(l, "fallback");
}

/** The MTU of the interface the route to `dst` leaves by (`ip route get`), or undefined. */
export async function routeMtu(ip: Ip, dst: string): Promise<{ dev: string; mtu: number } | undefined> {
  const routes = await ip.json<IpRoute[]>(["route", "get", dst]).catch(() => [] as IpRoute[]);
  const dev = routes[0]?.dev;
  if (!dev) return undefined;
  const links = await ip.json<IpLink[]>(["link", "show", "dev", dev]).catch(() => [] as IpLink[]);
  const mtu = links[0]?.mtu;
  return mtu === undefined ? undefined : { dev, mtu };
}

function firstLine(cmd: string, args: readonly string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(cmd, [...args], { timeout: 10_000 }, (err, stdout) => {
      resolve(err ? undefined : String(stdout).split("\n")[0]?.trim());
    });
  });
}

/** "ovs-vswitchd (Open vSwitch) 3.1.0" / "ovn-controller 23.03.1" → the version. */
export function versionFrom(line: string | undefined): string | undefined {
  const m = line ? /(\d+\.\d+(?:\.\d+)?[^\s]*)\s*$/.exec(line) : null;
  return m?.[1];
}

let agentVersion: string | undefined;
/** The package version (package.json sits beside src/ and dist/). */
export function getAgentVersion(): string {
  if (agentVersion) return agentVersion;
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    agentVersion = pkg.version ?? "0.0.0";
  } catch {
    agentVersion = "0.0.0";
  }
  return agentVersion;
}

/** Bridges and their mirror slots, from the OVS monitor. */
export function bridgesOf(ovs: OvsState): AgentBridge[] {
  return ovs
    .bridges()
    .map((b) => ({
      name: b.name,
      datapathType: datapathOf(b),
      mirrors: Math.min(b.mirrors.length, 1024),
      mirrorLimit: Math.max(MAX_MIRRORS_PER_BRIDGE, Math.min(b.mirrors.length, 1024)),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export interface ProbeDeps {
  /** iproute2 in the node's network namespace. */
  ip: Ip;
  ovs: OvsState;
  logger: Logger;
  transportInterface?: string | undefined;
  /** The OVN Southbound schema, when connected: whether Mirror takes `both` and `local`. */
  sbSchema?: DatabaseSchema | undefined;
}

export interface ProbeResult {
  capabilities: AgentCapabilities;
  transport: TransportInfo;
  links: Record<KernelLinkType, LinkProbe>;
}

/** Everything at once; the bridges part is cheap and refreshed by `withBridges` on every heartbeat. */
export async function probeCapabilities(deps: ProbeDeps): Promise<ProbeResult> {
  const root = deps.ovs.root();
  const encapIps = (root?.external_ids["ovn-encap-ip"] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const [links, transport, ovsLine, ovnLine] = await Promise.all([
    probeKernelLinks(deps.ip),
    findTransport(deps.ip, { configured: deps.transportInterface, encapIps }),
    root?.ovs_version ? Promise.resolve(undefined) : firstLine("ovs-vswitchd", ["--version"]),
    firstLine("ovn-controller", ["--version"]),
  ]);
  const ovsVersion = root?.ovs_version || versionFrom(ovsLine) || "unknown";
  const ovnVersion = versionFrom(ovnLine);
  const sb = deps.sbSchema;
  const capabilities = AgentCapabilities.parse({
    versions: {
      ovs: ovsVersion,
      ...(ovnVersion ? { ovn: ovnVersion } : {}),
      kernel: release(),
      agent: getAgentVersion(),
    },
    datapathTypes: [...(root?.datapath_types ?? [])].sort(),
    kernelLinks: {
      gretap: links.gretap.supported,
      ip6gretap: links.ip6gretap.supported,
      erspan: links.erspan.supported,
      ip6erspan: links.ip6erspan.supported,
    },
    ...(sb
      ? {
          ovnMirror: {
            both: columnEnum(sb, "Mirror", "filter").includes("both"),
            local: columnEnum(sb, "Mirror", "type").includes("local"),
          },
        }
      : {}),
    transport: { interface: transport.interface, mtu: transport.mtu, addresses: transport.addresses },
    bridges: bridgesOf(deps.ovs),
  });
  deps.logger.info(
    {
      kernelLinks: capabilities.kernelLinks,
      transport: { ...capabilities.transport, source: transport.source },
      versions: capabilities.versions,
    },
    "capabilities probed",
  );
  return { capabilities, transport, links };
}
