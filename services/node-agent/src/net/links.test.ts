/**
 * The receiving-link creation path against recorded `ip -j -d link show` output. This machine's
 * kernel has no GRE modules (the real path is links.int.test.ts: LinkTypeUnsupported), so the
 * gretap and erspan records follow iproute2 6.1 (ip/link_gre.c `gre_print_opt`: keys as dotted
 * quads, `iseq`/`oseq`, `erspan_index`, `erspan_ver`) on the frame of a veth recorded here.
 */
import { createLogger } from "@ovntap/runtime";
import { describe, expect, it } from "vitest";
import { createIp, IpCommandError, type IpResult } from "./ip.js";
import {
  linkAddArgs,
  linkAlias,
  linkDifferences,
  LinkOwnedElsewhereError,
  LinkTypeUnsupportedError,
  parseGreKey,
  parseLinkAlias,
  ReceivingLinks,
  type ReceivingLinkSpec,
} from "./links.js";

const logger = createLogger({ name: "links-test", level: "silent" });

/** `ip -j -d link show dev rx0` of a veth with our alias, recorded on iproute2 6.1.0. */
const VETH = {
  ifindex: 3,
  link: "rx1",
  ifname: "rx0",
  flags: ["NO-CARRIER", "BROADCAST", "MULTICAST", "UP", "M-DOWN"],
  mtu: 1500,
  qdisc: "noqueue",
  operstate: "LOWERLAYERDOWN",
  linkmode: "DEFAULT",
  group: "default",
  txqlen: 1000,
  link_type: "ether",
  address: "82:d6:70:f3:ad:18",
  broadcast: "ff:ff:ff:ff:ff:ff",
  promiscuity: 0,
  allmulti: 0,
  min_mtu: 68,
  max_mtu: 65535,
  linkinfo: { info_kind: "veth" },
  inet6_addr_gen_mode: "eui64",
  num_tx_queues: 2,
  num_rx_queues: 2,
  gso_max_size: 65536,
  gso_max_segs: 65535,
  tso_max_size: 524280,
  tso_max_segs: 65535,
  gro_max_size: 65536,
  ifalias: "ovntap/mirror=default/web ovntap/generation=2",
};

/** `ip link add mirror1 type gretap local 172.19.0.21 key 99 dev net1`, then alias and up. */
function gretap(over: Record<string, unknown> = {}, data: Record<string, unknown> = {}) {
  return {
    ...VETH,
    ifindex: 7,
    link: undefined,
    ifname: "mirror1",
    flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
    mtu: 1462,
    operstate: "UNKNOWN",
    linkinfo: {
      info_kind: "gretap",
      info_data: {
        remote: "any",
        local: "172.19.0.21",
        link: "net1",
        ttl: 0,
        pmtudisc: true,
        ikey: "0.0.0.99",
        okey: "0.0.0.99",
        ...data,
      },
    },
    ifalias: "ovntap/mirror=shop/web ovntap/generation=3",
    ...over,
  };
}

/** `ip link add mirror2 type erspan seq key 7 erspan 7 local 172.19.0.21 remote 172.19.0.10`. */
const ERSPAN = {
  ...gretap(),
  ifname: "mirror2",
  mtu: 1450,
  linkinfo: {
    info_kind: "erspan",
    info_data: {
      remote: "172.19.0.10",
      local: "172.19.0.21",
      ttl: 0,
      pmtudisc: true,
      ikey: "0.0.0.7",
      okey: "0.0.0.7",
      iseq: true,
      oseq: true,
      erspan_index: 7,
      erspan_ver: 1,
    },
  },
};

const gre: ReceivingLinkSpec = {
  name: "mirror1",
  netns: "pod-ns",
  type: "gretap",
  local: "172.19.0.21",
  key: 99,
  dev: "net1",
  owner: "shop/web",
  generation: 3,
};
const erspan: ReceivingLinkSpec = {
  name: "mirror2",
  netns: "pod-ns",
  type: "erspan",
  local: "172.19.0.21",
  remote: "172.19.0.10",
  key: 7,
  erspanIndex: 7,
  owner: "shop/web",
  generation: 3,
};

const NO_DEVICE = { code: 1, stdout: "", stderr: 'Device "mirror1" does not exist.\n' };

/** An `ip` that answers from a script and records every command. */
function scriptedIp(answers: (args: string) => IpResult | undefined) {
  const calls: string[] = [];
  const ip = createIp({
    exec: (args) => {
      const cmd = args.join(" ");
      calls.push(cmd);
      return Promise.resolve(answers(cmd) ?? { code: 0, stdout: "", stderr: "" });
    },
  });
  return { ip, calls };
}
const json = (v: unknown): IpResult => ({ code: 0, stdout: JSON.stringify([v]), stderr: "" });

describe("receiving links: commands and parsing", () => {
  it("builds the Kube-OVN guide's commands", () => {
    expect(linkAddArgs(gre).join(" ")).toBe("link add mirror1 type gretap key 99 local 172.19.0.21 dev net1");
    expect(linkAddArgs(erspan).join(" ")).toBe(
      "link add mirror2 type erspan seq key 7 erspan 7 local 172.19.0.21 remote 172.19.0.10",
    );
    expect(linkAddArgs({ ...erspan, erspanVersion: 2 }).join(" ")).toBe(
      "link add mirror2 type erspan seq key 7 erspan_ver 2 local 172.19.0.21 remote 172.19.0.10",
    );
  });

  it("reads keys as iproute2 prints them and the ownership alias", () => {
    expect(parseGreKey("0.0.0.99")).toBe(99);
    expect(parseGreKey("0.1.0.0")).toBe(65536);
    expect(parseGreKey("255.255.255.255")).toBe(0xffffffff);
    expect(parseGreKey(42)).toBe(42);
    expect(parseGreKey("1.2.3")).toBeUndefined();
    expect(parseLinkAlias(linkAlias("shop/web", 3))).toEqual({ owner: "shop/web", generation: 3 });
    expect(parseLinkAlias("uplink to rack 3")).toBeUndefined();
    expect(parseLinkAlias(undefined)).toBeUndefined();
  });

  it("compares a recorded link with a spec", () => {
    expect(linkDifferences(gretap(), gre)).toEqual([]);
    expect(linkDifferences(ERSPAN, erspan)).toEqual([]);
    expect(linkDifferences(gretap({}, { ikey: "0.0.0.98", okey: "0.0.0.98" }), gre)).toEqual([
      "key 0.0.0.98/0.0.0.98 ≠ 99",
    ]);
    expect(linkDifferences(ERSPAN, { ...erspan, erspanIndex: 8 })).toEqual(["erspan_index 7 ≠ 8"]);
    expect(linkDifferences(VETH, gre)[0]).toBe("type veth ≠ gretap");
  });
});

describe("ReceivingLinks against recorded ip -j output", () => {
  it("creates, marks and brings up a missing link, in the pod's namespace", async () => {
    let created = false;
    const { ip, calls } = scriptedIp((cmd) => {
      if (cmd.startsWith("-n pod-ns -j -d link show dev mirror1"))
        return created ? json(gretap()) : NO_DEVICE;
      if (cmd.startsWith("-n pod-ns link add")) created = true;
      return undefined;
    });
    const r = await new ReceivingLinks({ ip, logger, node: "n1" }).ensure(gre);
    expect(r.action).toBe("created");
    expect(r.link.ifname).toBe("mirror1");
    expect(calls).toEqual([
      "-n pod-ns -j -d link show dev mirror1",
      "-n pod-ns link add mirror1 type gretap key 99 local 172.19.0.21 dev net1",
      "-n pod-ns link set dev mirror1 alias ovntap/mirror=shop/web ovntap/generation=3",
      "-n pod-ns link set dev mirror1 up",
      "-n pod-ns -j -d link show dev mirror1",
    ]);
  });

  it("leaves a matching link alone, re-marking a new generation", async () => {
    const { ip, calls } = scriptedIp((cmd) =>
      cmd.includes("link show dev mirror2") ? json(ERSPAN) : undefined,
    );
    const links = new ReceivingLinks({ ip, logger, node: "n1" });
    expect((await links.ensure(erspan)).action).toBe("unchanged");
    expect(calls.filter((c) => !c.includes("show"))).toEqual([]);
    calls.length = 0;
    expect((await links.ensure({ ...erspan, generation: 4 })).action).toBe("unchanged");
    expect(calls.filter((c) => !c.includes("show"))).toEqual([
      "-n pod-ns link set dev mirror2 alias ovntap/mirror=shop/web ovntap/generation=4",
    ]);
  });

  it("replaces an owned link whose parameters changed", async () => {
    let replaced = false;
    const { ip, calls } = scriptedIp((cmd) => {
      if (cmd.includes("link show dev mirror1"))
        return json(replaced ? gretap({}, { ikey: "0.0.1.0", okey: "0.0.1.0" }) : gretap());
      if (cmd.includes("link add")) replaced = true;
      return undefined;
    });
    const r = await new ReceivingLinks({ ip, logger, node: "n1" }).ensure({ ...gre, key: 256 });
    expect(r.action).toBe("replaced");
    expect(calls).toContain("-n pod-ns link del dev mirror1");
    expect(calls).toContain("-n pod-ns link add mirror1 type gretap key 256 local 172.19.0.21 dev net1");
  });

  it("never touches a link it does not own", async () => {
    const { ip, calls } = scriptedIp((cmd) =>
      cmd.includes("link show dev mirror1") ? json(gretap({ ifalias: "set up by hand" })) : undefined,
    );
    const links = new ReceivingLinks({ ip, logger, node: "n1" });
    await expect(links.ensure(gre)).rejects.toBeInstanceOf(LinkOwnedElsewhereError);
    await expect(links.ensure(gre)).rejects.toThrow(
      /belongs to someone else \(no ovntap mark in its alias\)/,
    );
    expect(await links.remove({ name: "mirror1", netns: "pod-ns", owner: "shop/web" })).toBe(false);
    expect(calls.some((c) => c.includes("del") || c.includes("add") || c.includes(" set "))).toBe(false);
  });

  it("fails with LinkTypeUnsupported and the collector suggestion where the kernel lacks the type", async () => {
    const { ip, calls } = scriptedIp((cmd) => {
      if (cmd.includes("link show")) return NO_DEVICE;
      if (cmd.includes("link add")) return { code: 2, stdout: "", stderr: "Error: Unknown device type.\n" };
      return undefined;
    });
    const err = await new ReceivingLinks({ ip, logger, node: "n1" }).ensure(gre).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LinkTypeUnsupportedError);
    expect(err).toMatchObject({ code: "LINK_TYPE_UNSUPPORTED", linkType: "gretap" });
    expect((err as Error).message).toBe(
      "the kernel of node n1 cannot create gretap links (iproute2: Error: Unknown device type.); use a --collector target instead: the capture exporter receives GRE and ERSPAN in user space and needs no kernel link",
    );
    expect(calls.filter((c) => c.includes(" set ") || c.includes(" del "))).toEqual([]);
  });

  it("reports any other failure of ip as itself", async () => {
    const { ip } = scriptedIp((cmd) => {
      if (cmd.includes("link show")) return NO_DEVICE;
      if (cmd.includes("link add"))
        return {
          code: 2,
          stdout: "",
          stderr: 'Error: either "local" is duplicate, or "172.19.0.300" is a garbage.\n',
        };
      return undefined;
    });
    await expect(
      new ReceivingLinks({ ip, logger, node: "n1" }).ensure({ ...gre, local: "172.19.0.300" }),
    ).rejects.toBeInstanceOf(IpCommandError);
  });

  it("removes and lists the links it owns", async () => {
    const { ip, calls } = scriptedIp((cmd) => {
      if (cmd.includes("link show dev mirror1")) return json(gretap());
      if (cmd === "-n pod-ns -j -d link show") {
        return {
          code: 0,
          stdout: JSON.stringify([VETH, gretap(), { ...VETH, ifname: "eth0", ifalias: undefined }]),
          stderr: "",
        };
      }
      return undefined;
    });
    const links = new ReceivingLinks({ ip, logger, node: "n1" });
    expect((await links.list("pod-ns")).map((l) => [l.name, l.owner, l.generation, l.type])).toEqual([
      ["rx0", "default/web", 2, "veth"],
      ["mirror1", "shop/web", 3, "gretap"],
    ]);
    expect(await links.remove({ name: "mirror1", netns: "pod-ns", owner: "other/mirror" })).toBe(false);
    expect(await links.remove({ name: "mirror1", netns: "pod-ns", owner: "shop/web" })).toBe(true);
    expect(calls).toContain("-n pod-ns link del dev mirror1");
  });
});
