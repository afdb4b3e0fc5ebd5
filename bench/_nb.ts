/**
 * The OVN Northbound side of the apply benchmark: a Kube-OVN-like population of logical switch
 * ports written in one transaction, the ovn-nbctl baseline, and a check of what ovntap left in NB.
 *
 *   const topo = topology({ lsps: 10_000, switches: 10, namespaces: 50 });
 *   await prefill(client, topo);                                   // one transaction
 *   const base = await nbctlBaseline({ db, count: 100, ports, sink, onProgress });
 */
import { execFile } from "node:child_process";
import { nbOp, type OvsdbClient } from "@ovntap/ovsdb";
import { now, progress, round1 } from "./_stats.js";

const NB = "OVN_Northbound";

export interface Topology {
  readonly lsps: number;
  readonly switches: number;
  /** Kubernetes namespaces `bench-00`…; each lives on one switch (a Kube-OVN subnet). */
  readonly namespaces: readonly string[];
  readonly podsPerNamespace: number;
}

export function topology(o: { lsps: number; switches: number; namespaces: number }): Topology {
  if (o.lsps % o.namespaces !== 0) throw new Error(`--lsps ${o.lsps} must be a multiple of --namespaces`);
  const width = String(o.namespaces - 1).length;
  return {
    lsps: o.lsps,
    switches: o.switches,
    namespaces: Array.from({ length: o.namespaces }, (_, i) => `bench-${String(i).padStart(width, "0")}`),
    podsPerNamespace: o.lsps / o.namespaces,
  };
}

/** Pod `j` of a namespace: `pod-0007`; its port, Kube-OVN style: `pod-0007.bench-03`. */
export const podName = (j: number): string => `pod-${String(j).padStart(4, "0")}`;
export const lspName = (ns: string, j: number): string => `${podName(j)}.${ns}`;
export const switchOf = (topo: Topology, nsIndex: number): string => `bench-ls-${nsIndex % topo.switches}`;

/**
 * Every switch and port in ONE transaction (what a cluster with that many pods looks like to
 * NB: names, addresses and Kube-OVN's external_ids). Returns the commit time in ms.
 */
export async function prefill(client: OvsdbClient, topo: Topology): Promise<number> {
  const ops = [];
  const portsBySwitch = new Map<string, string[]>();
  let n = 0;
  topo.namespaces.forEach((ns, nsIndex) => {
    const ls = switchOf(topo, nsIndex);
    const list = portsBySwitch.get(ls) ?? [];
    portsBySwitch.set(ls, list);
    for (let j = 0; j < topo.podsPerNamespace; j++, n++) {
      const uuidName = `lsp${n}`;
      // 0a:58 like Kube-OVN's generated MACs; 10.<100+switch>.x.y inside the switch's subnet.
      const mac = `0a:58:0a:${hex(nsIndex)}:${hex(j >> 8)}:${hex(j & 0xff)}`;
      const ip = `10.${100 + (nsIndex % topo.switches)}.${nsIndex}.${j % 250}`;
      ops.push(
        nbOp.insert(
          "Logical_Switch_Port",
          {
            name: lspName(ns, j),
            addresses: [`${mac} ${ip}`],
            external_ids: { pod: `${ns}/${podName(j)}`, ls, vendor: "kube-ovn" },
          },
          uuidName,
        ),
      );
      list.push(uuidName);
    }
  });
  for (const [ls, ports] of portsBySwitch) ops.push(nbOp.insert("Logical_Switch", { name: ls, ports }));
  ops.push(nbOp.comment(`ovntap bench: ${n} logical switch ports`));
  const t = now();
  await client.transact(NB, ops, { timeoutMs: 300_000 });
  return now() - t;
}

function hex(x: number): string {
  return (x & 0xff).toString(16).padStart(2, "0");
}

function execNbctl(args: readonly string[]): Promise<void> {
  // A person's or a script's ovn-nbctl: one process per command, no daemon mode.
  const env = { ...process.env };
  delete env.OVN_NB_DAEMON;
  return new Promise((resolve, reject) => {
    execFile("ovn-nbctl", args, { env, maxBuffer: 16 << 20 }, (err, _out, stderr) => {
      if (err) reject(new Error(`ovn-nbctl ${args.join(" ")} failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

export interface NbctlResult {
  readonly count: number;
  readonly totalMs: number;
  readonly perS: number;
  readonly callMs: readonly number[];
}

/**
 * `count` sequential `ovn-nbctl --db=<nb> mirror-add <name> gre <key> from-lport <sink> --
 * lsp-attach-mirror <lsp> <name>`, one process each, then one batch that removes them again.
 */
export async function nbctlBaseline(o: {
  db: string;
  count: number;
  ports: readonly string[];
  sink: string;
}): Promise<NbctlResult> {
  const names: string[] = [];
  const callMs: number[] = [];
  const t0 = now();
  let lastReport = t0;
  for (let i = 0; i < o.count; i++) {
    const name = `nbctl-bench-${i}`;
    const port = o.ports[i % o.ports.length] ?? "";
    const t = now();
    await execNbctl([
      `--db=${o.db}`,
      ...["mirror-add", name, "gre", String(i + 1), "from-lport", o.sink],
      ...["--", "lsp-attach-mirror", port, name],
    ]);
    callMs.push(now() - t);
    names.push(name);
    if (now() - lastReport >= 2_000) {
      lastReport = now();
      progress("ovn-nbctl baseline", `${i + 1}/${o.count} (${round1(((i + 1) / (now() - t0)) * 1000)}/s)`);
    }
  }
  const totalMs = now() - t0;
  // Clean up in one invocation: detach, then delete (a referenced Mirror row cannot go first).
  const commands = [
    ...names.map((name, i) => ["lsp-detach-mirror", o.ports[i % o.ports.length] ?? "", name]),
    ...names.map((name) => ["mirror-del", name]),
  ];
  await execNbctl([`--db=${o.db}`, ...commands.flatMap((c, i) => (i === 0 ? c : ["--", ...c]))]);
  return { count: o.count, totalMs, perS: (o.count / totalMs) * 1000, callMs };
}

export interface NbCheck {
  /** Mirror rows whose external_ids name an ovntap mirror, by that mirror id. */
  readonly owned: ReadonlyMap<string, { uuid: string; sink: string; index: number }>;
  /** Port name → Mirror row uuids in its mirror_rules (only ports that have some). */
  readonly attached: ReadonlyMap<string, readonly string[]>;
  /** sink → how many rows use each key there (more than 1 = a collision). */
  readonly keyCollisions: number;
}

/** Reads back what ovntap wrote (one select per table, independent of any service's cache). */
export async function readBack(client: OvsdbClient): Promise<NbCheck> {
  const [mirrors, ports] = (await client.transact(
    NB,
    [
      nbOp.select("Mirror", [], ["_uuid", "sink", "index", "external_ids"]),
      nbOp.select("Logical_Switch_Port", [["mirror_rules", "!=", []]], ["name", "mirror_rules"]),
    ],
    { timeoutMs: 120_000 },
  )) as [
    { rows: { _uuid: string; sink: string; index: number; external_ids: Record<string, string> }[] },
    { rows: { name: string; mirror_rules: string[] }[] },
  ];
  const owned = new Map<string, { uuid: string; sink: string; index: number }>();
  const keys = new Map<string, number>();
  let keyCollisions = 0;
  for (const r of mirrors.rows) {
    const k = `${r.sink} ${r.index}`;
    const c = (keys.get(k) ?? 0) + 1;
    keys.set(k, c);
    if (c > 1) keyCollisions++;
    const owner = r.external_ids["ovntap/mirror"];
    if (owner) owned.set(owner, { uuid: r._uuid, sink: r.sink, index: r.index });
  }
  const attached = new Map<string, readonly string[]>();
  for (const p of ports.rows) attached.set(p.name, p.mirror_rules);
  return { owned, attached, keyCollisions };
}
