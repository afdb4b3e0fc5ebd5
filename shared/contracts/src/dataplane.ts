/**
 * What the node agents see of ovntap's OVN mirrors on their nodes, and the GRE keys / ERSPAN
 * session ids they hold for their own tunnels — the two things the ovn-applier reads from them.
 *
 *     const rec = DataplaneRecord.parse((await kv.get(node))?.json());   // bucket DATAPLANE_KV_BUCKET
 *     const errors = rec.mirrors.filter((m) => m.state === "error");
 *
 *     const claims = await redis.hgetall(nodeKeyClaimsKey("{ovntap}", "198.51.100.2"));
 *     for (const [key, value] of Object.entries(claims)) parseKeyClaim(value);   // { node, namespace, name }
 *
 * ovn-controller turns each OVN mirror into an OVS Mirror and a tunnel port `ovn-<row>` on the
 * integration bridge, and when OVS refuses them nothing in OVN says so (`Interface.error`
 * "could not add network device … (File exists)" for a second tunnel to one sink with one
 * key). Each agent writes the state of every ovntap OVN mirror row its node must program to
 * `ovntap_dataplane[<node>]`: `programmed`, `pending` (ovn-controller or ovs-vswitchd still at
 * it), or `error` with the text; the applier turns an error into phase Degraded.
 */
import { z } from "zod";
import { BridgeName, MirrorName, Namespace, NodeName, portName, text, Timestamp } from "./fields.js";

/** JetStream KV bucket: each node agent's data-plane record, keyed by node name. */
export const DATAPLANE_KV_BUCKET = "ovntap_dataplane";

/**
 * An agent rewrites its record whenever a mirror's state changes and at least this often, so a
 * record whose `time` is older than a few of these periods was left by an agent that is gone.
 */
export const DATAPLANE_REFRESH_MS = 30_000;

/** A reader treats a record older than this as stale: its agent is gone, its states unknown. */
export const DATAPLANE_STALE_MS = 3 * DATAPLANE_REFRESH_MS;

export const DataplaneState = z.enum(["programmed", "pending", "error"]);
export type DataplaneState = z.infer<typeof DataplaneState>;

/** One ovntap OVN mirror row on one node. */
export const MirrorDataplane = z.object({
  namespace: Namespace,
  mirror: MirrorName,
  /** The NB/SB Mirror row name (`ovntap.<ns>.<name>[.in|.out]`), also the OVS Mirror ovn-controller creates. */
  row: text("row name", 256).min(1, { error: "must not be empty (row name)" }),
  /** The integration bridge the row belongs on. */
  bridge: BridgeName.optional(),
  /** The tunnel port ovn-controller creates, `ovn-<row>`. */
  port: portName("an OVS port name").optional(),
  state: DataplaneState,
  /** Why not programmed: the OVS error text (`Interface.error`) or what is missing. */
  message: text("message").optional(),
  /** Which component failed: ovs-vswitchd refusing a row, or ovn-controller not creating them. */
  component: z.enum(["ovs", "ovn-controller"]).optional(),
  /** When the row entered this state, as the agent saw it. */
  since: Timestamp,
});
export type MirrorDataplane = z.infer<typeof MirrorDataplane>;

/** The value of `ovntap_dataplane[<node>]`. */
export const DataplaneRecord = z.object({
  node: NodeName,
  /** The OVN chassis name (OVS `external_ids:system-id`). */
  chassis: text("chassis name", 256),
  /** When the agent wrote the record (see DATAPLANE_STALE_MS). */
  time: Timestamp,
  mirrors: z.array(MirrorDataplane),
});
export type DataplaneRecord = z.infer<typeof DataplaneRecord>;

/**
 * Redis HASH of the keys node agents hold towards one sink (canonical IP text, contracts
 * `canonicalIp`) for their own tunnel ports: field = the GRE key or ERSPAN session id in
 * decimal, value = `<node> <namespace>/<name>` (`formatKeyClaim`), taken with HSETNX. `prefix`
 * is the store's key prefix (`{ovntap}` by default), so the hash lives in the store's Redis
 * Cluster slot. The ovn-applier allocates no key an agent holds towards the same sink; the
 * agents in turn avoid every key of an OVN Mirror row (from Southbound, where northd copies NB).
 */
export function nodeKeyClaimsKey(prefix: string, sink: string): string {
  return `${prefix}:node-agent:keys:${sink}`;
}

/** The value of one claim: `<node> <namespace>/<name>`. */
export function formatKeyClaim(claim: { node: string; namespace: string; name: string }): string {
  return `${claim.node} ${claim.namespace}/${claim.name}`;
}

/** Inverse of `formatKeyClaim`, or undefined for a value it did not produce. */
export function parseKeyClaim(value: string): { node: string; namespace: string; name: string } | undefined {
  const m = /^(\S+) ([a-z0-9-]+)\/([a-z0-9-]+)$/.exec(value);
  return m?.[1] && m[2] && m[3] ? { node: m[1], namespace: m[2], name: m[3] } : undefined;
}
