import { ENCAP_OVERHEAD } from "@ovntap/contracts";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkErspanKernel,
  checkMtu,
  checkOutputNotSource,
  parseKernelRelease,
  preflight,
} from "./preflight.js";

const transport = (mtu: number) => ({ interface: "eth0", mtu });

describe("MTU headroom", () => {
  it.each([
    ["gre", 4, 42],
    ["gre", 6, 62],
    ["erspan2", 4, 50],
    ["erspan2", 6, 70],
    ["erspan3", 4, 54],
    ["erspan3", 6, 74],
  ] as const)("%s over IPv%i needs port MTU + %i", (encapsulation, family, overhead) => {
    const ports = [{ name: "veth1", mtu: 1500 }];
    expect(checkMtu({ encapsulation, family, transport: transport(1500 + overhead), ports })).toBeUndefined();
    const issue = checkMtu({ encapsulation, family, transport: transport(1500 + overhead - 1), ports });
    expect(issue).toMatchObject({
      check: "mtu",
      reason: "MtuTooSmall",
      code: "MTU_TOO_SMALL",
      blocking: false,
    });
    // The numbers compared are in the message.
    expect(issue?.message).toContain(`MTU ${1500 + overhead - 1} < ${1500 + overhead}`);
    expect(issue?.message).toContain(`port veth1 MTU 1500 + ${overhead} bytes`);
    expect(issue?.message).toContain(`IPv${family}`);
  });

  it("judges by the largest mirrored port and skips ports without a known MTU", () => {
    const issue = checkMtu({
      encapsulation: "gre",
      family: 4,
      transport: transport(1542),
      ports: [
        { name: "small", mtu: 1400 },
        { name: "jumbo", mtu: 9000 },
        { name: "unknown", mtu: null },
      ],
    });
    expect(issue?.message).toMatch(
      /^transport eth0 MTU 1542 < 9042: mirrored port jumbo MTU 9000 \+ 42 bytes of GRE/,
    );
    expect(
      checkMtu({
        encapsulation: "gre",
        family: 4,
        transport: transport(1000),
        ports: [{ name: "x", mtu: null }],
      }),
    ).toBeUndefined();
  });

  it("passes exactly when transport ≥ port + ENCAP_OVERHEAD (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("gre", "erspan2", "erspan3" as const),
        fc.constantFrom(4 as const, 6 as const),
        fc.integer({ min: 68, max: 65535 }),
        fc.integer({ min: 68, max: 65535 }),
        (encapsulation, family, portMtu, transportMtu) => {
          const overhead = ENCAP_OVERHEAD[encapsulation][family === 4 ? "ipv4" : "ipv6"];
          const issue = checkMtu({
            encapsulation,
            family,
            transport: transport(transportMtu),
            ports: [{ name: "p", mtu: portMtu }],
          });
          expect(issue === undefined).toBe(transportMtu >= portMtu + overhead);
        },
      ),
    );
  });
});

describe("ERSPAN on the kernel datapath", () => {
  it("reads kernel releases", () => {
    expect(parseKernelRelease("6.1.0-18-amd64")).toEqual([6, 1, 0]);
    expect(parseKernelRelease("4.18.0-553.el8_10.x86_64")).toEqual([4, 18, 0]);
    expect(parseKernelRelease("3.10")).toEqual([3, 10, 0]);
    expect(parseKernelRelease("unknown")).toBeUndefined();
  });

  it("needs Linux ≥ 4.18 on the system datapath only", () => {
    const erspan = (kernelRelease: string, datapathType = "system") =>
      checkErspanKernel({ encapsulation: "erspan2", datapathType, kernelRelease });
    expect(erspan("4.17.19")).toMatchObject({
      check: "erspan-kernel",
      reason: "ErspanNeedsLinux418",
      code: "UNSUPPORTED",
      blocking: true,
    });
    expect(erspan("4.17.19")?.message).toContain("needs Linux ≥ 4.18; this node runs 4.17.19");
    expect(erspan("3.10.0-1160.el7.x86_64")).toBeDefined();
    expect(erspan("4.18.0")).toBeUndefined();
    expect(erspan("5.4.0")).toBeUndefined();
    expect(erspan("4.17.19", "netdev")).toBeUndefined();
    expect(erspan("4.17.19", "")).toBeDefined(); // empty datapath_type is the kernel datapath
    expect(
      checkErspanKernel({ encapsulation: "gre", datapathType: "system", kernelRelease: "3.10" }),
    ).toBeUndefined();
    expect(
      checkErspanKernel({ encapsulation: "erspan3", datapathType: "system", kernelRelease: undefined }),
    ).toBeUndefined();
  });
});

describe("output is not a source", () => {
  it("refuses an output port among the sources and an output VLAN among the source VLANs", () => {
    const issue = checkOutputNotSource({ outputPort: "p3", sourcePorts: ["p1", "p3"] });
    expect(issue).toMatchObject({ check: "output-is-source", reason: "OutputIsSource", blocking: true });
    expect(issue?.message).toContain("output port p3 is also a source port");
    expect(checkOutputNotSource({ outputPort: "p3", sourcePorts: ["p1"] })).toBeUndefined();
    expect(
      checkOutputNotSource({ sourcePorts: [], outputVlan: 10, sourceVlans: [10, 20] })?.message,
    ).toContain("output VLAN 10 is also a source VLAN");
    expect(checkOutputNotSource({ sourcePorts: [], outputVlan: 30, sourceVlans: [10, 20] })).toBeUndefined();
  });
});

describe("preflight", () => {
  it("runs the checks that apply, blocking issues first", () => {
    const issues = preflight({
      encapsulation: "erspan2",
      family: 4,
      transport: transport(1500),
      ports: [{ name: "p1", mtu: 1500 }],
      datapathType: "system",
      kernelRelease: "4.15.0",
    });
    expect(issues.map((i) => i.check)).toEqual(["erspan-kernel", "mtu"]);
    expect(
      preflight({
        ports: [{ name: "p1", mtu: 9000 }],
        datapathType: "system",
        kernelRelease: "4.15.0",
        outputPort: "p2",
      }),
    ).toEqual([]); // a local output adds no encapsulation
  });
});
