/**
 * Node agent heartbeat and capabilities, published on `ovntap.v1.agents.<node>` and stored in the
 * `ovntap_agents` KV bucket under the node name. The applier reads it before it places an OVS
 * mirror or picks an encapsulation: what the kernel can receive, how much MTU headroom the transport
 * has, how many of a bridge's 32 mirror slots are taken.
 */
import { z } from "zod";
import { BridgeName, counter, intIn, NodeName, portName, text, Timestamp } from "./fields.js";
import { IpAddress } from "./capture.js";
import { MAX_MIRRORS_PER_BRIDGE } from "./limits.js";

const version = text("version", 64).min(1, { error: "must not be empty (version)" });

export const AgentBridge = z
  .object({
    name: BridgeName,
    /** OVS `Bridge.datapath_type`: `system` (kernel) or `netdev` (userspace); empty in OVSDB means system. */
    datapathType: text("datapath type", 32),
    /** Mirror rows on the bridge, ours and everyone else's (ovn-controller's included). */
    mirrors: intIn(0, 1024, "mirror rows on a bridge"),
    /** `MAX_MIRRORS_PER_BRIDGE` unless a future OVS raises it. */
    mirrorLimit: intIn(1, 1024, "mirror slots per bridge"),
  })
  .superRefine((b, ctx) => {
    if (b.mirrors > b.mirrorLimit) {
      ctx.addIssue({
        code: "custom",
        path: ["mirrors"],
        message: `must be ≤ mirrorLimit (${b.mirrorLimit}; OVS allows ${MAX_MIRRORS_PER_BRIDGE} mirrors per bridge)`,
      });
    }
  });
export type AgentBridge = z.infer<typeof AgentBridge>;

export const AgentCapabilities = z.object({
  versions: z.object({
    ovs: version,
    /** Absent on nodes without ovn-controller. */
    ovn: version.optional(),
    kernel: version,
    agent: version,
  }),
  /** Datapath types ovs-vswitchd supports (`Open_vSwitch.datapath_types`). */
  datapathTypes: z.array(text("datapath type", 32)),
  /**
   * Receiving link types the kernel can create (probed with a throwaway `ip link add`); ERSPAN on
   * the kernel datapath needs Linux ≥ 4.18.
   */
  kernelLinks: z.object({
    gretap: z.boolean(),
    ip6gretap: z.boolean(),
    erspan: z.boolean(),
    ip6erspan: z.boolean(),
  }),
  /** Whether the OVN NB schema's Mirror table accepts `filter: both` and `type: local` (OVN ≥ 23.06). */
  ovnMirror: z.object({ both: z.boolean(), local: z.boolean() }).optional(),
  /** The interface tunnels leave by, and its MTU: the headroom check compares it with ENCAP_OVERHEAD. */
  transport: z.object({
    interface: portName("an interface name"),
    mtu: intIn(68, 65535, "an IPv4 link MTU is 68..65535 (RFC 791)"),
    addresses: z.array(IpAddress),
  }),
  bridges: z.array(AgentBridge),
});
export type AgentCapabilities = z.infer<typeof AgentCapabilities>;

export const AgentHeartbeat = z.object({
  node: NodeName,
  time: Timestamp,
  /** Seconds until the next heartbeat; a reader treats the agent as gone after about three missed. */
  intervalSeconds: intIn(1, 3600, "a heartbeat interval is 1 s to 1 h"),
  /** Process start, so a restart is visible. */
  startedAt: Timestamp,
  /** Mirrors this agent currently applies. */
  mirrors: counter("mirrors"),
  capabilities: AgentCapabilities,
});
export type AgentHeartbeat = z.infer<typeof AgentHeartbeat>;
