/**
 * How the agent names and marks what it owns, and how it recognises ovntap's OVN mirrors.
 *
 *   mirrorId({ namespace: "shop", name: "web" })   // "shop/web"
 *   ovsRowName({ namespace: "shop", name: "web" }) // "ovntap.shop.web": the OVS Mirror row and tunnel port
 *   parseOvnRowName("ovntap.shop.web.in")          // { namespace: "shop", name: "web", part: "in" }
 *
 * The OVN applier names NB `Mirror` rows `ovntap.<ns>.<name>[.in|.out]` (DNS labels never hold
 * '.', so the name is injective); ovn-controller copies the name to the OVS Mirror it creates on
 * br-int and names the tunnel port `ovn-<name>`. The agent's own OVS rows (ovs sources) use the
 * same `ovntap.<ns>.<name>`; they are told apart from ovn-controller's by `external_ids`:
 * ovn-controller marks its rows `ovn-owned=true`, the agent marks its own `ovntap/mirror`.
 * Ownership is never inferred from a name: only rows whose `ovntap/mirror` names the mirror
 * are updated or deleted.
 */

/** external_ids key naming the owning mirror, `<namespace>/<name>`. */
export const OWNER_KEY = "ovntap/mirror";
/** external_ids key holding the desired-state generation the row was written for. */
export const GENERATION_KEY = "ovntap/generation";
/** external_ids key of a tunnel Interface: the GRE key / ERSPAN session id the agent chose. */
export const KEY_KEY = "ovntap/key";
/** external_ids key naming the node whose agent wrote the row. */
export const NODE_KEY = "ovntap/node";
/** external_ids key of the agent's transient revalidation ports (value: the node). */
export const REVALIDATE_KEY = "ovntap/revalidate";
/** ovn-controller's mark on the OVS rows it creates (controller/mirror.c). */
export const OVN_OWNED_KEY = "ovn-owned";

export const ROW_PREFIX = "ovntap";

export interface MirrorKey {
  readonly namespace: string;
  readonly name: string;
}

const LABEL = "[a-z0-9](?:[-a-z0-9]*[a-z0-9])?";
const ID_RE = new RegExp(`^(${LABEL})/(${LABEL})$`);
const ROW_RE = new RegExp(`^${ROW_PREFIX}\\.(${LABEL})\\.(${LABEL})(?:\\.(in|out))?$`);

export function mirrorId(ref: MirrorKey): string {
  return `${ref.namespace}/${ref.name}`;
}

export function parseMirrorId(id: string): MirrorKey | undefined {
  const m = ID_RE.exec(id);
  return m?.[1] && m[2] ? { namespace: m[1], name: m[2] } : undefined;
}

/** The OVS Mirror row and tunnel port of an ovs-source mirror. */
export function ovsRowName(ref: MirrorKey): string {
  return `${ROW_PREFIX}.${ref.namespace}.${ref.name}`;
}

/** An ovntap OVN mirror row name (NB = SB = the OVS Mirror ovn-controller makes), or undefined. */
export function parseOvnRowName(row: string): (MirrorKey & { part: "in" | "out" | undefined }) | undefined {
  const m = ROW_RE.exec(row);
  if (!m?.[1] || !m[2]) return undefined;
  return { namespace: m[1], name: m[2], part: m[3] as "in" | "out" | undefined };
}

/** The OVS tunnel port ovn-controller creates for an OVN mirror row. */
export function ovnTunnelPort(row: string): string {
  return `ovn-${row}`;
}

/** The owner of a row, or undefined for rows ovntap does not own. */
export function ownerOf(row: {
  readonly external_ids: Readonly<Record<string, string>>;
}): string | undefined {
  const v = row.external_ids[OWNER_KEY];
  return v === undefined || v === "" ? undefined : v;
}
