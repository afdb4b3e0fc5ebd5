/**
 * Preflight: the checks that say why a mirror cannot work before it silently does not. Pure
 * functions over what the agent knows of the node; each failure names the numbers it compared.
 *
 *   const issues = preflight({
 *     encapsulation: "gre", family: 4,
 *     transport: { interface: "eth0", mtu: 1500 },
 *     ports: [{ name: "veth1", mtu: 1500 }],
 *     datapathType: "system", kernelRelease: "5.15.0-91-generic",
 *     outputPort: "veth3", sourcePorts: ["veth1"],
 *   });
 *   // [{ check: "mtu", reason: "MtuTooSmall", blocking: false,
 *   //    message: "transport eth0 MTU 1500 < 1542: mirrored port veth1 MTU 1500 + 42 bytes of GRE over IPv4 …" }]
 *
 * A blocking issue means the agent does not write the mirror (it would do harm or nothing); a
 * non-blocking one leaves it in place. Either way the mirror is Degraded with the issue's reason.
 */
import { ENCAP_OVERHEAD, type Encapsulation, type ErrorCode, type IpFamily } from "@ovntap/contracts";

export type PreflightCheck = "mtu" | "erspan-kernel" | "output-is-source";

export interface PreflightIssue {
  check: PreflightCheck;
  /** Status reason (CamelCase). */
  reason: string;
  code: ErrorCode;
  message: string;
  /** True when the mirror must not be written at all. */
  blocking: boolean;
}

const ENCAP_NAME: Record<Encapsulation, string> = {
  gre: "GRE with a key",
  erspan2: "ERSPAN type II",
  erspan3: "ERSPAN type III",
};

export interface MtuInput {
  encapsulation: Encapsulation;
  family: IpFamily;
  /** The interface the tunnel leaves by (the route to the sink), and its MTU. */
  transport: { interface: string; mtu: number };
  /** The mirrored ports and their MTUs (OVS `Interface.mtu`); ports without a known MTU are skipped. */
  ports: readonly { name: string; mtu: number | null | undefined }[];
}

/**
 * Transport MTU ≥ mirrored port MTU + encapsulation overhead (ENCAP_OVERHEAD: the inner Ethernet
 * header, outer IP, GRE, ERSPAN). OVS sets DF on tunnel packets, so a full-size mirrored frame
 * that does not fit is dropped, not fragmented.
 */
export function checkMtu(input: MtuInput): PreflightIssue | undefined {
  const overhead = ENCAP_OVERHEAD[input.encapsulation][input.family === 4 ? "ipv4" : "ipv6"];
  let worst: { name: string; mtu: number } | undefined;
  for (const p of input.ports) {
    if (typeof p.mtu !== "number" || p.mtu <= 0) continue;
    if (!worst || p.mtu > worst.mtu) worst = { name: p.name, mtu: p.mtu };
  }
  if (!worst) return undefined;
  const needed = worst.mtu + overhead;
  if (input.transport.mtu >= needed) return undefined;
  return {
    check: "mtu",
    reason: "MtuTooSmall",
    code: "MTU_TOO_SMALL",
    blocking: false,
    message:
      `transport ${input.transport.interface} MTU ${input.transport.mtu} < ${needed}: mirrored port ${worst.name} ` +
      `MTU ${worst.mtu} + ${overhead} bytes of ${ENCAP_NAME[input.encapsulation]} over IPv${input.family}; ` +
      `frames larger than ${input.transport.mtu - overhead} bytes are dropped (OVS sets DF). ` +
      `Raise the transport MTU to ${needed} or lower the port MTU to ${input.transport.mtu - overhead}`,
  };
}

/** "6.1.0-18-amd64" → [6, 1, 0]; undefined when it does not start with a version. */
export function parseKernelRelease(release: string): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release.trim());
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/** The first Linux release whose OVS kernel datapath can send ERSPAN (the erspan vport). */
export const ERSPAN_MIN_KERNEL = [4, 18] as const;

export interface ErspanInput {
  encapsulation: Encapsulation;
  /** `Bridge.datapath_type`, "system" for the kernel datapath. */
  datapathType: string;
  kernelRelease: string | undefined;
}

/** ERSPAN on the kernel datapath needs Linux ≥ 4.18; the userspace (netdev) datapath does not care. */
export function checkErspanKernel(input: ErspanInput): PreflightIssue | undefined {
  if (input.encapsulation === "gre") return undefined;
  if (input.datapathType !== "system" && input.datapathType !== "") return undefined;
  const v = input.kernelRelease ? parseKernelRelease(input.kernelRelease) : undefined;
  if (!v) return undefined; // unknown: nothing to say
  const [major, minor] = v;
  const [needMajor, needMinor] = ERSPAN_MIN_KERNEL;
  if (major > needMajor || (major === needMajor && minor >= needMinor)) return undefined;
  return {
    check: "erspan-kernel",
    reason: "ErspanNeedsLinux418",
    code: "UNSUPPORTED",
    blocking: true,
    message:
      `${ENCAP_NAME[input.encapsulation]} on the kernel datapath needs Linux ≥ ${needMajor}.${needMinor}; ` +
      `this node runs ${input.kernelRelease ?? "an unknown kernel"}. Use a gre or collector target, or a netdev bridge`,
  };
}

export interface OutputInput {
  /** The output port (ovsPort target), if any. */
  outputPort?: string | undefined;
  sourcePorts: readonly string[];
  outputVlan?: number | undefined;
  sourceVlans?: readonly number[] | undefined;
}

/**
 * The output may not also be a source: OVS dedicates `output_port` to mirroring (it drops the
 * port's own traffic, vswitch.xml Mirror), and a VLAN mirrored onto itself loops.
 */
export function checkOutputNotSource(input: OutputInput): PreflightIssue | undefined {
  if (input.outputPort !== undefined && input.sourcePorts.includes(input.outputPort)) {
    return {
      check: "output-is-source",
      reason: "OutputIsSource",
      code: "INVALID_REQUEST",
      blocking: true,
      message: `output port ${input.outputPort} is also a source port: OVS dedicates the output port to mirroring and drops its own traffic`,
    };
  }
  if (input.outputVlan !== undefined && (input.sourceVlans ?? []).includes(input.outputVlan)) {
    return {
      check: "output-is-source",
      reason: "OutputIsSource",
      code: "INVALID_REQUEST",
      blocking: true,
      message: `output VLAN ${input.outputVlan} is also a source VLAN: mirroring a VLAN onto itself loops`,
    };
  }
  return undefined;
}

export interface PreflightInput {
  /** Undefined for local outputs (ovsPort, ovsVlan), which add no encapsulation. */
  encapsulation?: Encapsulation | undefined;
  family?: IpFamily | undefined;
  transport?: { interface: string; mtu: number } | undefined;
  ports: readonly { name: string; mtu: number | null | undefined }[];
  datapathType: string;
  kernelRelease: string | undefined;
  outputPort?: string | undefined;
  outputVlan?: number | undefined;
  sourceVlans?: readonly number[] | undefined;
}

/** Every check that applies; blocking issues first. */
export function preflight(input: PreflightInput): PreflightIssue[] {
  const issues: (PreflightIssue | undefined)[] = [
    checkOutputNotSource({
      outputPort: input.outputPort,
      sourcePorts: input.ports.map((p) => p.name),
      outputVlan: input.outputVlan,
      sourceVlans: input.sourceVlans,
    }),
  ];
  if (input.encapsulation) {
    issues.push(
      checkErspanKernel({
        encapsulation: input.encapsulation,
        datapathType: input.datapathType,
        kernelRelease: input.kernelRelease,
      }),
    );
    if (input.transport && input.family) {
      issues.push(
        checkMtu({
          encapsulation: input.encapsulation,
          family: input.family,
          transport: input.transport,
          ports: input.ports,
        }),
      );
    }
  }
  return issues
    .filter((i): i is PreflightIssue => i !== undefined)
    .sort((a, b) => Number(b.blocking) - Number(a.blocking));
}
