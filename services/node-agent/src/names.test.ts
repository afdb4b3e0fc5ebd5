import { describe, expect, it } from "vitest";
import { mirrorId, ovnTunnelPort, ovsRowName, ownerOf, parseMirrorId, parseOvnRowName } from "./names.js";

describe("names", () => {
  it("reads the OVN applier's row names, the .in/.out halves included", () => {
    expect(parseOvnRowName("ovntap.shop.web")).toEqual({ namespace: "shop", name: "web", part: undefined });
    expect(parseOvnRowName("ovntap.shop.web-1.in")).toEqual({ namespace: "shop", name: "web-1", part: "in" });
    expect(parseOvnRowName("ovntap.shop.web.out")).toEqual({ namespace: "shop", name: "web", part: "out" });
    for (const other of [
      "mirror1",
      "ovntap.shop",
      "ovntap.Shop.web",
      "ovntap.shop.web.both",
      "x.ovntap.shop.web",
    ]) {
      expect(parseOvnRowName(other), other).toBeUndefined();
    }
    expect(ovnTunnelPort("ovntap.shop.web.in")).toBe("ovn-ovntap.shop.web.in");
  });

  it("names the agent's own rows and reads ownership only from external_ids", () => {
    expect(ovsRowName({ namespace: "shop", name: "web" })).toBe("ovntap.shop.web");
    expect(mirrorId({ namespace: "shop", name: "web" })).toBe("shop/web");
    expect(parseMirrorId("shop/web")).toEqual({ namespace: "shop", name: "web" });
    expect(parseMirrorId("shop/web/x")).toBeUndefined();
    expect(ownerOf({ external_ids: { "ovntap/mirror": "shop/web" } })).toBe("shop/web");
    expect(ownerOf({ external_ids: { "ovn-owned": "true" } })).toBeUndefined();
    expect(ownerOf({ external_ids: { "ovntap/mirror": "" } })).toBeUndefined();
  });
});
