import { describe, expect, it } from "vitest";
import { contendedBy } from "./dataplane.js";
import type { InterfaceRow } from "./ovs/state.js";

const iface = (
  name: string,
  options: Record<string, string>,
  extra: Partial<InterfaceRow> = {},
): InterfaceRow =>
  ({
    _uuid: `uuid-${name}`,
    name,
    type: "gre",
    options,
    ofport: 5,
    mtu: 1500,
    external_ids: {},
    admin_state: "up",
    link_state: "up",
    ...extra,
  }) as InterfaceRow;

describe("contendedBy", () => {
  const ours = iface("ovn-ovntap.shop.web", { remote_ip: "198.51.100.2", key: "7" });
  const refused = "could not add network device ovn-theirs to ofproto (File exists)";

  it("finds a refused tunnel of the same type to the same remote with the same key", () => {
    const theirs = iface(
      "ovn-theirs",
      { remote_ip: "198.51.100.2", key: "7" },
      { error: refused, ofport: -1 },
    );
    expect(contendedBy(ours, [ours, theirs])?.name).toBe("ovn-theirs");
  });

  it("ignores tunnels that differ in remote, key or type, and tunnels OVS took", () => {
    const others = [
      iface("a", { remote_ip: "198.51.100.3", key: "7" }, { error: refused }),
      iface("b", { remote_ip: "198.51.100.2", key: "8" }, { error: refused }),
      iface("c", { remote_ip: "198.51.100.2", key: "7" }, { error: refused, type: "erspan" }),
      iface("d", { remote_ip: "198.51.100.2", key: "7" }),
    ];
    expect(contendedBy(ours, [ours, ...others])).toBeUndefined();
  });

  it("an absent key is key 0, as OVS reads it", () => {
    const keyless = iface("ovn-x", { remote_ip: "198.51.100.2" });
    const zero = iface("z", { remote_ip: "198.51.100.2", key: "0" }, { error: refused });
    expect(contendedBy(keyless, [keyless, zero])?.name).toBe("z");
    expect(contendedBy(iface("no-remote", {}), [zero])).toBeUndefined();
  });
});
