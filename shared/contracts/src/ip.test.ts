import { describe, expect, it } from "vitest";
import {
  canonicalIp,
  cidrHasHostBits,
  cidrNetwork,
  formatCidr,
  parseCidr,
  parseIp,
  sinkAddressProblem,
  transportFamily,
} from "./internal.js";

describe("IP literals", () => {
  it.each([
    ["10.0.0.1", "10.0.0.1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"],
    ["1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"],
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["::ffff:10.1.2.3", "10.1.2.3"],
    ["::FFFF:0a01:0203", "10.1.2.3"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
  ])("%s → %s", (input, canonical) => {
    expect(canonicalIp(input)).toBe(canonical);
    expect(canonicalIp(canonical)).toBe(canonical);
  });

  it.each([
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3.-4",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    ":1::",
    "1::2:3:4:5:6:7:8",
    "12345::",
    "fe80::1%eth0",
    "1.2.3.4::",
    "::1.2.3.4:1",
    "g::1",
    " 10.0.0.1",
  ])("refuses %j", (input) => {
    expect(parseIp(input)).toBeUndefined();
  });

  it("names the reason a sink is refused", () => {
    expect(sinkAddressProblem("127.0.0.1")).toMatch(/loopback/);
    expect(sinkAddressProblem("0.1.2.3")).toMatch(/0\.0\.0\.0\/8/);
    expect(sinkAddressProblem("239.255.255.255")).toMatch(/multicast/);
    expect(sinkAddressProblem("febf::1")).toMatch(/link-local/);
    expect(sinkAddressProblem("fec0::1")).toBeUndefined();
    expect(sinkAddressProblem("::ffff:169.254.0.1")).toMatch(/embeds an IPv4 address that is link-local/);
    expect(sinkAddressProblem("10.0.0.1")).toBeUndefined();
    expect(sinkAddressProblem("2001:db8::1")).toBeUndefined();
  });

  it("reports the transport family", () => {
    expect(transportFamily("10.0.0.1")).toBe(4);
    expect(transportFamily("::ffff:10.0.0.1")).toBe(4);
    expect(transportFamily("2001:db8::1")).toBe(6);
    expect(transportFamily("nope")).toBeUndefined();
  });
});

describe("CIDRs", () => {
  it("parses and canonicalises", () => {
    const c = parseCidr("2001:DB8::/32");
    expect(c && formatCidr(c)).toBe("2001:db8::/32");
    expect(parseCidr("10.0.0.0/8")?.prefix).toBe(8);
    for (const bad of ["10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/08", "x/1"]) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
  });

  it("detects host bits and finds the network", () => {
    const c = parseCidr("10.1.2.3/16");
    expect(c && cidrHasHostBits(c)).toBe(true);
    expect(c && formatCidr(cidrNetwork(c))).toBe("10.1.0.0/16");
    const n = parseCidr("10.1.0.0/16");
    expect(n && cidrHasHostBits(n)).toBe(false);
    const z = parseCidr("0.0.0.0/0");
    expect(z && cidrHasHostBits(z)).toBe(false);
    const v6 = parseCidr("2001:db8::1/64");
    expect(v6 && formatCidr(cidrNetwork(v6))).toBe("2001:db8::/64");
  });
});
