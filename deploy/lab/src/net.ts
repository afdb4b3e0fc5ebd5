/**
 * Thin wrappers over iproute2 for what the lab creates: network namespaces, veth pairs,
 * a Linux bridge in the root namespace, and the probes that tell what the kernel has.
 * Every function names the namespace it acts in (undefined = the root namespace).
 */
import { run } from "./proc.js";

/** Linux IFNAMSIZ is 16 with the trailing NUL. */
export const MAX_IFNAME = 15;

export function checkIfName(name: string): string {
  if (name.length > MAX_IFNAME || !/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new Error(`interface name '${name}' is not valid (at most ${MAX_IFNAME} of [A-Za-z0-9_.-])`);
  }
  return name;
}

function ip(netns: string | undefined, args: readonly string[]) {
  return run("ip", netns ? ["-n", netns, ...args] : args, { timeoutMs: 20_000 });
}

export async function netnsList(): Promise<string[]> {
  const { stdout } = await run("ip", ["netns", "list"], { allowFail: true });
  // "name (id: 3)" or "name"
  return stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter(Boolean);
}

/** Adds a namespace (its loopback stays down: bring it up with linkUp("lo", name)). */
export async function netnsAdd(name: string): Promise<void> {
  await run("ip", ["netns", "add", name]);
}

export async function netnsDel(name: string): Promise<void> {
  const r = await run("ip", ["netns", "del", name], { allowFail: true });
  if (r.code !== 0 && (await netnsList()).includes(name)) {
    throw new Error(`could not delete network namespace ${name}: ${r.stderr.trim()}`);
  }
}

/** Link names in a namespace, without the `@ifN` peer suffix. */
export async function linkNames(netns?: string): Promise<string[]> {
  const { stdout } = await ip(netns, ["-o", "link", "show"]);
  const names: string[] = [];
  for (const line of stdout.split("\n")) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m?.[1]) names.push(m[1]);
  }
  return names;
}

export async function linkExists(name: string, netns?: string): Promise<boolean> {
  const r = await run("ip", [...(netns ? ["-n", netns] : []), "link", "show", "dev", name], {
    allowFail: true,
  });
  return r.code === 0;
}

export async function linkDel(name: string, netns?: string): Promise<void> {
  if (!(await linkExists(name, netns))) return;
  const r = await ip(netns, ["link", "del", "dev", name]).catch((err: unknown) => err);
  // The peer of a veth goes with it; a concurrent delete is not an error either.
  if (r instanceof Error && (await linkExists(name, netns))) throw r;
}

/**
 * A veth pair: `name` in `netns`, `peer` in `peerNetns` (both default to root). Created
 * in one call so no half-made pair is ever visible.
 */
export async function vethAdd(
  name: string,
  netns: string | undefined,
  peer: string,
  peerNetns: string | undefined,
): Promise<void> {
  checkIfName(name);
  checkIfName(peer);
  // `ip link add NAME netns A type veth peer name PEER netns B` creates each end directly
  // in its namespace, so a pod's `eth0` never exists, even briefly, beside the root's.
  await ip(undefined, [
    ...["link", "add", name, ...(netns ? ["netns", netns] : [])],
    ...["type", "veth", "peer", "name", peer, ...(peerNetns ? ["netns", peerNetns] : [])],
  ]);
}

export async function linkUp(name: string, netns?: string, mac?: string): Promise<void> {
  if (mac) await ip(netns, ["link", "set", "dev", name, "address", mac]);
  await ip(netns, ["link", "set", "dev", name, "up"]);
}

export async function addrAdd(name: string, cidr: string, netns?: string): Promise<void> {
  await ip(netns, ["addr", "add", cidr, "dev", name]);
}

/**
 * A Linux bridge in the root namespace that ignores the host's firewall: with
 * br_netfilter loaded, bridged IPv4 would otherwise traverse the host's iptables
 * FORWARD chain, and a host policy could silently drop the lab's transport traffic.
 */
export async function bridgeAdd(name: string): Promise<void> {
  checkIfName(name);
  await ip(undefined, ["link", "add", name, "type", "bridge"]);
  await ip(undefined, [
    "link",
    "set",
    "dev",
    name,
    "type",
    "bridge",
    "nf_call_iptables",
    "0",
    "nf_call_ip6tables",
    "0",
    "nf_call_arptables",
    "0",
  ]).catch(() => {
    /* older kernels lack the per-bridge switches; the defaults then apply */
  });
}

export async function setMaster(name: string, master: string): Promise<void> {
  await ip(undefined, ["link", "set", "dev", name, "master", master]);
}

/**
 * Joins two root-namespace links without a bridge: tc redirects every frame arriving
 * on one to the other's egress, both ways. The u32 classifier matching everything is
 * used because `matchall` is not built into every kernel (it is missing here).
 */
export async function tcJoin(a: string, b: string): Promise<void> {
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    await run("tc", ["qdisc", "add", "dev", from, "ingress"]);
    await run("tc", [
      ...["filter", "add", "dev", from, "parent", "ffff:", "protocol", "all"],
      ...["u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", to],
    ]);
  }
}

/**
 * Stops a namespace (or a root-namespace link) from speaking IPv6: link-local router
 * solicitations and MLD reports would otherwise ride the lab's links and its mirrors,
 * so a test that counts mirrored packets would count them too.
 */
export async function disableIpv6(netns: string | undefined, ifname = "all"): Promise<void> {
  const keys =
    ifname === "all"
      ? ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
      : [`net.ipv6.conf.${ifname}.disable_ipv6=1`];
  await run("sysctl", ["-q", "-w", ...keys], { allowFail: true, ...(netns ? { netns } : {}) });
}

/** Whether the kernel can make a Linux bridge (probed with a throwaway one). */
export async function canMakeBridge(probeName: string): Promise<boolean> {
  const r = await run("ip", ["link", "add", checkIfName(probeName), "type", "bridge"], { allowFail: true });
  if (r.code !== 0) return false;
  await linkDel(probeName);
  return true;
}
