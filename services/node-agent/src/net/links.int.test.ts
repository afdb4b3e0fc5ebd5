/**
 * Receiving links with the real iproute2 and kernel: this kernel has no GRE modules, so a gretap
 * or erspan link request fails with LinkTypeUnsupported and the `--collector` suggestion, and
 * leaves nothing behind; links the agent can make here (a veth stands in for ownership) are only
 * removed by their owner.
 */
import { randomBytes } from "node:crypto";
import { run } from "@ovntap/lab";
import { createLogger } from "@ovntap/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createIp, type IpLink } from "./ip.js";
import { linkAlias, LinkTypeUnsupportedError, ReceivingLinks } from "./links.js";

const logger = createLogger({ name: "links-test", level: "silent" });
const ns = `ovntap-links-${randomBytes(3).toString("hex")}`;

beforeAll(async () => {
  await run("ip", ["netns", "add", ns]);
  await run("ip", ["-n", ns, "link", "add", "net1", "type", "veth", "peer", "name", "net1p"]);
  await run("ip", ["-n", ns, "addr", "add", "198.51.100.21/24", "dev", "net1"]);
});
afterAll(async () => {
  await run("ip", ["netns", "del", ns]);
});

const names = async () =>
  (JSON.parse((await run("ip", ["-n", ns, "-j", "link", "show"])).stdout) as IpLink[])
    .map((l) => l.ifname)
    .sort();

describe("receiving links on this kernel", () => {
  it.each([
    ["gretap", { type: "gretap", key: 99, dev: "net1" }],
    ["erspan", { type: "erspan", key: 7, erspanIndex: 7, remote: "198.51.100.10" }],
  ] as const)(
    "a %s link fails with LinkTypeUnsupported and the collector suggestion",
    async (type, extra) => {
      const before = await names();
      const links = new ReceivingLinks({ ip: createIp(), logger, node: "lab-node" });
      const err = await links
        .ensure({
          name: "mirror1",
          netns: ns,
          local: "198.51.100.21",
          owner: "shop/web",
          generation: 1,
          ...extra,
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LinkTypeUnsupportedError);
      expect(err).toMatchObject({
        code: "LINK_TYPE_UNSUPPORTED",
        linkType: type,
        kernelMessage: "Error: Unknown device type.\n",
      });
      expect((err as Error).message).toContain(`the kernel of node lab-node cannot create ${type} links`);
      expect((err as Error).message).toContain("use a --collector target instead");
      expect(await names()).toEqual(before);
    },
  );

  it("lists and removes only links marked as the mirror's", async () => {
    await run("ip", ["-n", ns, "link", "add", "mine0", "type", "veth", "peer", "name", "mine0p"]);
    await run("ip", ["-n", ns, "link", "set", "dev", "mine0", "alias", linkAlias("shop/web", 4)]);
    const links = new ReceivingLinks({ ip: createIp(), logger, node: "lab-node" });
    expect((await links.list(ns)).map((l) => [l.name, l.owner, l.generation])).toEqual([
      ["mine0", "shop/web", 4],
    ]);
    expect(await links.remove({ name: "net1", netns: ns, owner: "shop/web" })).toBe(false);
    expect(await links.remove({ name: "mine0", netns: ns, owner: "other/x" })).toBe(false);
    expect(await links.remove({ name: "mine0", netns: ns, owner: "shop/web" })).toBe(true);
    expect(await names()).toEqual(["lo", "net1", "net1p"]);
    expect(await links.remove({ name: "mine0", netns: ns, owner: "shop/web" })).toBe(false);
  });
});
