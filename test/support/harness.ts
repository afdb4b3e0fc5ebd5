/**
 * What the acceptance tests share: an intake policy file, the real `ovntap` CLI as a process,
 * an observer of OVN Northbound (its own OVSDB monitor, timestamping every Mirror row change),
 * ovn-nbctl output as data, and BPF filters that select one mirror's packets at the sink.
 *
 *   const lab = await startLab({ serviceEnv: { POLICY_FILE: writePolicy(dir, policy) } });
 *   const ovntap = ovntapCli(lab, dir);
 *   const nb = await NbObserver.start(lab.env.OVN_NB_DB);
 *   expect((await ovntap("get", "m1", "-o", "json")).code).toBe(0);
 *   await nb.until(() => nb.byName("ovntap.default.m1"), "the row", 5_000);
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MirrorRecord, MirrorStatus } from "@ovntap/contracts";
import { type Lab, run, SCHEMAS, waitFor } from "@ovntap/lab";
import { OvsdbClient } from "@ovntap/ovsdb";

export const repoRoot = join(import.meta.dirname, "..", "..");

/** Writes an intake policy (JSON is YAML) and returns its path, for POLICY_FILE. */
export function writePolicy(dir: string, policy: Record<string, unknown>): string {
  const file = join(dir, "policy.json");
  writeFileSync(file, `${JSON.stringify({ version: 1, ...policy }, null, 2)}\n`);
  return file;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time of the command. */
  ms: number;
}

/**
 * The `ovntap` command as a user runs it: `node services/cli/bin/ovntap.js` in a process of
 * its own, with only NATS_URL and a principal in its environment, in `cwd` (not the
 * repository, so it never reads a `.lab/env` there).
 */
export function ovntapCli(lab: Lab, cwd: string, principal = "acceptance") {
  const bin = join(repoRoot, "services", "cli", "bin", "ovntap.js");
  return async (...args: string[]): Promise<CliResult> => {
    const t = Date.now();
    const r = await run(process.execPath, [bin, ...args], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: cwd,
        NATS_URL: lab.env.NATS_URL,
        OVNTAP_PRINCIPAL: principal,
      },
      allowFail: true,
      timeoutMs: 180_000,
    });
    return { ...r, ms: Date.now() - t };
  };
}

/** `ovntap get -o json`. */
export interface MirrorView {
  mirror: MirrorRecord;
  status: MirrorStatus;
}

/** The `<row>=<index>` pairs of the KeyAllocated condition: every key of a mirror, by row name. */
export function allocatedKeys(view: MirrorView): Record<string, number> {
  const message = view.status.conditions?.find((c) => c.type === "KeyAllocated")?.message ?? "";
  return Object.fromEntries(
    [...message.matchAll(/([\w.-]+)=(\d+)/g)].map((m): [string, number] => [m[1] ?? "", Number(m[2])]),
  );
}

/** Whether this NB schema lets a Mirror row carry `filter=both` (OVN ≥ 23.06), read from the schema itself. */
export function nbSchemaHasBothFilter(schemaFile: string = SCHEMAS.nb): boolean {
  const schema = JSON.parse(readFileSync(schemaFile, "utf8")) as {
    tables: { Mirror: { columns: { filter: { type: { key: { enum?: unknown } } } } } };
  };
  return JSON.stringify(schema.tables.Mirror.columns.filter.type.key.enum ?? []).includes('"both"');
}

type OvsJson =
  | string
  | number
  | boolean
  | ["uuid" | "named-uuid", string]
  | ["set", OvsJson[]]
  | ["map", [OvsJson, OvsJson][]];

function fromOvsJson(v: OvsJson): unknown {
  if (!Array.isArray(v)) return v;
  switch (v[0]) {
    case "uuid":
    case "named-uuid":
      return v[1];
    case "set":
      return v[1].map(fromOvsJson);
    case "map":
      return Object.fromEntries(v[1].map(([k, x]) => [String(fromOvsJson(k)), fromOvsJson(x)]));
  }
}

/** The `--format=json` output of ovn-nbctl / ovs-vsctl `list` as plain rows. */
function jsonRows(out: string): Record<string, unknown>[] {
  const { headings, data } = JSON.parse(out) as { headings: string[]; data: OvsJson[][] };
  return data.map((row) => Object.fromEntries(headings.map((h, i) => [h, fromOvsJson(row[i]!)])));
}

/** `ovn-nbctl --format=json list <table>` as plain rows (uuids as strings, sets as arrays, maps as objects). */
export async function nbctlRows(lab: Lab, table: string, columns?: readonly string[]) {
  return jsonRows(
    await lab.nbctl("--format=json", ...(columns ? [`--columns=${columns.join(",")}`] : []), "list", table),
  );
}

/** `ovs-vsctl --format=json list <table>` on the lab node's Open_vSwitch database, as plain rows. */
export async function vsctlRows(lab: Lab, table: string, columns?: readonly string[]) {
  return jsonRows(
    await lab.vsctl("--format=json", ...(columns ? [`--columns=${columns.join(",")}`] : []), "list", table),
  );
}

/** The NB rows ovntap's refusals must not touch: Mirror rows, LSP attachments, nb_cfg. */
export async function nbSnapshot(lab: Lab) {
  const sort = (rows: Record<string, unknown>[]) =>
    rows.sort((a, b) => String(a.name).localeCompare(String(b.name)));
  return {
    mirrors: sort(await nbctlRows(lab, "Mirror")),
    ports: sort(await nbctlRows(lab, "Logical_Switch_Port", ["name", "mirror_rules"])),
    nbCfg: (await lab.nbctl("get", "NB_Global", ".", "nb_cfg")).trim(),
  };
}

export interface NbMirror {
  readonly _uuid: string;
  readonly name: string;
  readonly filter: string;
  readonly sink: string;
  readonly type: string;
  readonly index: number;
  readonly external_ids: Readonly<Record<string, string>>;
}

export interface NbChange {
  /** Date.now() when the monitor update arrived. */
  t: number;
  type: "insert" | "update" | "delete";
  uuid: string;
  name: string;
  row: NbMirror;
}

/**
 * OVN Northbound as the tests see it: an OVSDB monitor of its own on Mirror and
 * Logical_Switch_Port (name, mirror_rules), with every Mirror row change timestamped as it
 * arrives — how long a repair or an expiry took is read from here, not polled.
 */
export class NbObserver {
  readonly changes: NbChange[] = [];

  private constructor(private readonly client: OvsdbClient) {
    client.cache.table("OVN_Northbound", "Mirror").on("change", (ev) => {
      const row = (ev.type === "delete" ? ev.old : ev.new) as unknown as NbMirror;
      this.changes.push({ t: Date.now(), type: ev.type, uuid: ev.uuid, name: row.name, row });
    });
  }

  static async start(remote: string): Promise<NbObserver> {
    const client = await OvsdbClient.connect({ remote, database: "OVN_Northbound" });
    const observer = new NbObserver(client);
    await client.monitor("OVN_Northbound", {
      Mirror: {},
      Logical_Switch_Port: { columns: ["name", "mirror_rules"] },
    });
    return observer;
  }

  get connected(): boolean {
    return this.client.connected;
  }

  mirrors(): NbMirror[] {
    return [...this.client.cache.table("OVN_Northbound", "Mirror").rows()];
  }

  byName(name: string): NbMirror | undefined {
    return this.mirrors().find((m) => m.name === name);
  }

  /** Rows ovntap owns (external_ids `ovntap/mirror`), by owner `<ns>/<name>`. */
  owned(): Map<string, NbMirror[]> {
    const out = new Map<string, NbMirror[]>();
    for (const m of this.mirrors()) {
      const owner = m.external_ids["ovntap/mirror"];
      if (owner) out.set(owner, [...(out.get(owner) ?? []), m]);
    }
    return out;
  }

  /** The Mirror rows attached to a logical switch port (its mirror_rules). */
  attachedTo(lsp: string): NbMirror[] {
    const port = [...this.client.cache.table("OVN_Northbound", "Logical_Switch_Port").rows()].find(
      (p) => p.name === lsp,
    );
    const uuids = new Set(port?.mirror_rules ?? []);
    return this.mirrors().filter((m) => uuids.has(m._uuid));
  }

  /** The first change of `type` to a row named `name` at or after `since`. */
  change(name: string, type: NbChange["type"], since = 0): NbChange | undefined {
    return this.changes.find((c) => c.name === name && c.type === type && c.t >= since);
  }

  /** Waits (20 ms polls of the local cache) for a condition on NB. */
  until<T>(cond: () => T, what: string, timeoutMs: number): Promise<NonNullable<T>> {
    return waitFor(cond, { what, timeoutMs, intervalMs: 20 });
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/**
 * BPF filters for one mirror's packets at the sink. They read the outer IPv4 header as 20
 * bytes (OVS sets no IP options) and GRE without checksum (OVN does not ask for one):
 * GRE with key = flags(2) proto(2) key(4); ERSPAN type II = GRE flags(2) proto 0x88be(2)
 * sequence(4), then ver/vlan(2) and cos/en/t/session id(2), the session id in its low 10 bits.
 */
export const greKeyFilter = (key: number) => `ip proto 47 and ip[22:2] = 0x6558 and ip[24:4] = ${key}`;
export const erspanFilter = (sessionId: number) =>
  `ip proto 47 and ip[22:2] = 0x88be and (ip[30:2] & 0x3ff) = ${sessionId}`;

export const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
