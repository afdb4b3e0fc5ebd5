/**
 * The NB reconcile core against a real lab: OVN NB/SB, ovn-northd, OVS (netdev datapath) and
 * ovn-controller, pods in namespaces, a sink. Asserts on the NB rows (read back with the real
 * ovn-nbctl), the OVS tunnel ports ovn-controller made, and the GRE/ERSPAN packets at the sink.
 */
import { LAB_TOPOLOGY, startLab, waitFor, type GrePacket, type Lab } from "@ovntap/lab";
import { OvsdbClient } from "@ovntap/ovsdb";
import { createLogger } from "@ovntap/runtime";
import { MirrorSpec } from "@ovntap/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mirrorId, OWNER_KEY, tunnelPortName } from "./names.js";
import type { DesiredMirror } from "./plan.js";
import { NbReconciler, type ConvergeResult } from "./reconciler.js";
import { NbState } from "./state.js";
import { NbWatcher, type TriggerReason } from "./watcher.js";

const logger = createLogger({
  name: "ovn-applier-test",
  level: (process.env.TEST_LOG_LEVEL as "info") ?? "silent",
});
const NS = "default";
const timings: Record<string, number[]> = { appliedMs: [], activeMs: [], driftRepairMs: [] };

let lab: Lab;
let client: OvsdbClient;
let state: NbState;
let nb: NbReconciler;
let watcher: NbWatcher;
/** What the harness reconciles when the watcher fires: the "store" of this test. */
const desiredById = new Map<string, DesiredMirror>();
const triggered: { id: string; reason: TriggerReason; result?: ConvergeResult; error?: unknown }[] = [];
const extraClients: OvsdbClient[] = [];

function desired(name: string, spec: Partial<MirrorSpec>, generation = 1): DesiredMirror {
  const full = MirrorSpec.parse({
    name,
    namespace: NS,
    sources: { type: "pods", names: ["pod-a"] },
    direction: "egress",
    target: { type: "gre", sink: lab.env.LAB_SINK_IP },
    ...spec,
  });
  const d = { namespace: NS, name, generation, spec: full };
  desiredById.set(mirrorId(d), d);
  return d;
}

async function converge(d: DesiredMirror, hvTimeoutMs = 20_000): Promise<ConvergeResult> {
  const r = await nb.converge(d, { hvTimeoutMs });
  timings.appliedMs?.push(r.appliedMs);
  if (r.activeMs !== undefined) timings.activeMs?.push(r.activeMs);
  return r;
}

async function remove(d: DesiredMirror): Promise<void> {
  desiredById.delete(mirrorId(d));
  const r = await nb.remove(d);
  // Wait for the chassis so the next test starts from a dataplane without this mirror.
  if (r.nbCfg !== undefined) await state.waitHvCfg(r.nbCfg, { timeoutMs: 20_000 });
}

interface NbctlMirror {
  uuid: string;
  name: string;
  type: string;
  sink: string;
  filter: string;
  index: number;
  external_ids: Record<string, string>;
}

/** NB Mirror rows as the real ovn-nbctl reads them. */
async function nbMirrors(): Promise<NbctlMirror[]> {
  const out = JSON.parse(
    await lab.nbctl(
      "--format=json",
      "--columns=_uuid,name,type,sink,filter,index,external_ids",
      "list",
      "Mirror",
    ),
  ) as { data: [[string, string], string, string, string, string, number, [string, [string, string][]]][] };
  return out.data.map(([u, name, type, sink, filter, index, ids]) => ({
    uuid: u[1],
    name,
    type,
    sink,
    filter,
    index,
    external_ids: Object.fromEntries(ids[1]),
  }));
}

async function mirrorRules(lsp: string): Promise<string[]> {
  const out = await lab.nbctl("--bare", "--columns=mirror_rules", "list", "Logical_Switch_Port", lsp);
  return out.split(/\s+/).filter(Boolean);
}

/** The OVS tunnel port ovn-controller made for a row: its options, or undefined. */
async function tunnelOptions(row: string): Promise<string | undefined> {
  const out = await lab.vsctl("--if-exists", "get", "Interface", tunnelPortName(row), "options");
  return out.trim() || undefined;
}

const pingAtoB = () => lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP, { timeoutS: 1 });

async function capture(count: number, timeoutMs = 8_000): Promise<GrePacket[]> {
  return lab.captureGre("sink", { count, timeoutMs, traffic: pingAtoB, trafficIntervalMs: 200 });
}

beforeAll(async () => {
  lab = await startLab({ services: false });
  client = await OvsdbClient.connect({ remote: lab.nbTcp, database: "OVN_Northbound", logger });
  state = await NbState.start(client, { logger });
  nb = await NbReconciler.create({ state, logger });
  watcher = new NbWatcher(state, nb, { logger, checkIntervalMs: 1_000 });
  watcher.on("trigger", (id, reason) => {
    const d = desiredById.get(id);
    const entry: (typeof triggered)[number] = { id, reason };
    triggered.push(entry);
    const work = d ? nb.converge(d, { hvTimeoutMs: 20_000 }) : nb.remove(id);
    work.then(
      (r) => {
        if ("phase" in r) {
          entry.result = r;
          if (r.phase === "Degraded" && r.reason === "ChassisNotSynced" && r.nbCfg !== undefined) {
            watcher.awaitChassis(id, r.nbCfg);
          }
        }
      },
      (err: unknown) => (entry.error = err),
    );
  });
  watcher.start();
}, 120_000);

afterAll(async () => {
  watcher?.stop();
  await state?.stop();
  await client?.close();
  for (const c of extraClients) await c.close();
  await lab?.stop();
  console.log("ovn-applier NB core timings (ms)", JSON.stringify(timings));
});

describe("NB reconcile core on a real lab", () => {
  it("gre/egress: row, attachment, GRE with the allocated key at the sink; delete removes it all", async () => {
    const d = desired("gre-egress", {});
    const r = await converge(d);
    expect(r).toMatchObject({
      outcome: "applied",
      phase: "Active",
      missingPorts: [],
      ports: ["pod-a.default"],
    });
    expect(r.hvCfg).toBeGreaterThanOrEqual(r.nbCfg!);
    const row = r.rows[0]!;
    expect(row).toMatchObject({ name: "ovntap.default.gre-egress", filter: "from-lport", type: "gre" });
    expect(r.key).toBe(row.index);

    expect(await lab.nbctl("mirror-list")).toContain("ovntap.default.gre-egress");
    const [nbRow] = (await nbMirrors()).filter((m) => m.name === row.name);
    expect(nbRow).toMatchObject({
      uuid: row.uuid,
      type: "gre",
      sink: lab.env.LAB_SINK_IP,
      filter: "from-lport",
      index: row.index,
      external_ids: { [OWNER_KEY]: "default/gre-egress", "ovntap/generation": "1" },
    });
    expect(await mirrorRules(LAB_TOPOLOGY.podA.lsp)).toEqual([row.uuid]);
    // Active means the chassis applied it: the tunnel port is already there.
    expect(await tunnelOptions(row.name)).toContain(`key="${row.index}"`);

    const packets = await capture(3);
    expect(packets.length).toBeGreaterThanOrEqual(3);
    for (const p of packets) {
      expect(p).toMatchObject({
        outer: { src: LAB_TOPOLOGY.tunnelSrcIp, dst: lab.env.LAB_SINK_IP },
        greProto: 0x6558,
        key: row.index,
        inner: { srcMac: LAB_TOPOLOGY.podA.mac },
      });
    }

    // A second converge of the same generation changes nothing.
    expect(await converge(d)).toMatchObject({ outcome: "unchanged", phase: "Active", changes: [] });

    await remove(d);
    expect((await nbMirrors()).filter((m) => m.name === row.name)).toEqual([]);
    expect(await mirrorRules(LAB_TOPOLOGY.podA.lsp)).toEqual([]);
    expect(await tunnelOptions(row.name)).toBeUndefined();
    expect(await capture(1, 2_500)).toEqual([]);
  });

  it("erspan/ingress: span id at the sink carries what pod-a receives", async () => {
    const d = desired("erspan-in", {
      direction: "ingress",
      target: { type: "erspan", sink: lab.env.LAB_SINK_IP },
    });
    const r = await converge(d);
    expect(r).toMatchObject({ phase: "Active", rows: [{ filter: "to-lport", type: "erspan" }] });
    expect(r.sessionId).toBe(r.rows[0]!.index);
    expect(await tunnelOptions(r.rows[0]!.name)).toContain(`erspan_idx="${r.sessionId}"`);
    const packets = await capture(3);
    expect(packets.length).toBeGreaterThanOrEqual(3);
    for (const p of packets) {
      expect(p).toMatchObject({ greProto: 0x88be, erspan: { version: 1, spanId: r.sessionId } });
      // to-lport: frames delivered to pod-a (pod-b's replies), never what pod-a sends
      expect(p.inner?.srcMac).not.toBe(LAB_TOPOLOGY.podA.mac);
    }
    await remove(d);
    expect(await capture(1, 2_500)).toEqual([]);
  });

  it("both on OVN 23.03: two rows, two distinct keys, both directions at the sink", async () => {
    expect(nb.capabilities.mirrorFilterBoth).toBe(false);
    const d = desired("both", { direction: "both" });
    const r = await converge(d);
    expect(r.phase).toBe("Active");
    expect(r.rows.map((x) => [x.name, x.filter])).toEqual([
      ["ovntap.default.both.out", "from-lport"],
      ["ovntap.default.both.in", "to-lport"],
    ]);
    const [out, inn] = r.rows.map((x) => x.index) as [number, number];
    expect(out).not.toBe(inn);
    expect((await mirrorRules(LAB_TOPOLOGY.podA.lsp)).sort()).toEqual(r.rows.map((x) => x.uuid).sort());
    const packets = await capture(8);
    const egress = packets.filter((p) => p.key === out);
    const ingress = packets.filter((p) => p.key === inn);
    expect(egress.length).toBeGreaterThan(0);
    expect(ingress.length).toBeGreaterThan(0);
    expect(egress.every((p) => p.inner?.srcMac === LAB_TOPOLOGY.podA.mac)).toBe(true);
    expect(ingress.every((p) => p.inner?.srcMac !== LAB_TOPOLOGY.podA.mac)).toBe(true);
    await remove(d);
    expect((await nbMirrors()).filter((m) => m.name.startsWith("ovntap.default.both"))).toEqual([]);
  });

  it("allocation avoids keys of unowned mirrors to the same sink, and never touches them", async () => {
    const sink = lab.env.LAB_SINK_IP;
    await lab.nbctl("mirror-add", "manual0", "gre", "0", "from-lport", sink);
    await lab.nbctl("mirror-add", "manual1", "erspan", "1", "to-lport", sink);
    await lab.nbctl("lsp-attach-mirror", LAB_TOPOLOGY.podB.lsp, "manual0");
    const before = (await nbMirrors()).filter((m) => m.name.startsWith("manual"));
    try {
      const d = desired("avoid", {});
      const r = await converge(d);
      expect(r.key).toBe(2);
      // The chassis made our tunnel (a duplicate key would leave Interface.error "File exists").
      expect(await lab.vsctl("get", "Interface", tunnelPortName(r.rows[0]!.name), "error")).not.toMatch(
        /exists/,
      );
      await remove(d);
      expect((await nbMirrors()).filter((m) => m.name.startsWith("manual"))).toEqual(before);
      expect(await mirrorRules(LAB_TOPOLOGY.podB.lsp)).toEqual([
        before.find((m) => m.name === "manual0")!.uuid,
      ]);
      // A requested key that an unowned row uses is refused (terminal).
      await expect(
        nb.converge(desired("taken", { target: { type: "gre", sink, key: 1 } }), { hvTimeoutMs: 5_000 }),
      ).rejects.toMatchObject({ code: "KEY_IN_USE", retryable: false });
      desiredById.delete("default/taken");
    } finally {
      await lab.nbctl("mirror-del", "manual0");
      await lab.nbctl("mirror-del", "manual1");
    }
  });

  it("concurrent allocators (separate NB connections) for one sink never share a key", async () => {
    const N = 8;
    const replicas = await Promise.all(
      Array.from({ length: N }, async () => {
        const c = await OvsdbClient.connect({ remote: lab.nbTcp, database: "OVN_Northbound", logger });
        extraClients.push(c);
        const s = await NbState.start(c, { logger });
        return NbReconciler.create({ state: s, logger });
      }),
    );
    // Half of them mirror both directions: two rows each, every row its own key.
    const ds = replicas.map((_, i) => desired(`race-${i}`, i % 2 ? { direction: "both" } : {}));
    const results = await Promise.all(replicas.map((rep, i) => rep.apply(ds[i]!)));
    const keys = results.flatMap((r) => r.rows.map((x) => x.index));
    expect(keys).toHaveLength(N + N / 2);
    expect(new Set(keys).size).toBe(keys.length);
    // The guards really were contended: some replica had to re-plan.
    const conflicts = replicas.reduce((n, rep) => n + rep.counters.keyConflicts, 0);
    console.log("concurrent allocation", {
      replicas: N,
      rows: keys.length,
      conflicts,
      attempts: results.map((r) => r.attempts),
    });
    expect(conflicts).toBeGreaterThan(0);
    // NB agrees (read back independently).
    const rows = (await nbMirrors()).filter((m) => m.name.startsWith("ovntap.default.race-"));
    expect(new Set(rows.map((m) => m.index)).size).toBe(rows.length);
    expect(rows).toHaveLength(keys.length);
    for (const d of ds) await remove(d);
    for (const rep of replicas) await rep.state.stop();
  });

  it("concurrent reconciles in one process towards one sink: distinct keys, no lost key races", async () => {
    const N = 12;
    const ds = Array.from({ length: N }, (_, i) => desired(`local-race-${i}`, {}));
    const conflictsBefore = nb.counters.keyConflicts;
    const results = await Promise.all(ds.map((d) => nb.apply(d)));
    const keys = results.map((r) => r.key);
    expect(new Set(keys).size).toBe(N);
    // Commits that allocate towards one sink are serialized in the process and re-planned on
    // the cache the previous one left: nobody had to re-plan after a failed guard.
    expect(nb.counters.keyConflicts).toBe(conflictsBefore);
    const rows = (await nbMirrors()).filter((m) => m.name.startsWith("ovntap.default.local-race-"));
    expect(new Set(rows.map((m) => m.index)).size).toBe(N);
    for (const d of ds) await remove(d);
  });

  it("drift is repaired from monitor events: mirror-del, detach, index edit; an unowned mirror is untouched", async () => {
    const sink = lab.env.LAB_SINK_IP;
    await lab.nbctl("mirror-add", "bystander", "gre", "500", "from-lport", sink);
    await lab.nbctl("lsp-attach-mirror", LAB_TOPOLOGY.podA.lsp, "bystander");
    const [bystander] = (await nbMirrors()).filter((m) => m.name === "bystander");
    const d = desired("drift", {});
    try {
      const r = await converge(d);
      const name = r.rows[0]!.name;
      const key = r.rows[0]!.index;
      const ours = async () => (await nbMirrors()).find((m) => m.name === name);

      // The out-of-band edit runs inside, after the trigger count is taken: the repair can
      // finish before ovn-nbctl even returns.
      const repaired = async (what: string, edit: () => Promise<unknown>, check: () => Promise<boolean>) => {
        const seen = triggered.length;
        await edit();
        const t0 = Date.now();
        await waitFor(check, { what, timeoutMs: 5_000, intervalMs: 20 });
        timings.driftRepairMs?.push(Date.now() - t0);
        // The reconcile that did it reports drift (the rows were at this generation already).
        await waitFor(() => triggered.slice(seen).some((t) => t.id === "default/drift" && t.result?.drift), {
          what: `${what}: drift reported`,
          timeoutMs: 5_000,
        });
      };

      await repaired(
        "row re-created after mirror-del",
        () => lab.nbctl("mirror-del", name),
        async () => {
          const m = await ours();
          return (
            m !== undefined && m.index === key && (await mirrorRules(LAB_TOPOLOGY.podA.lsp)).includes(m.uuid)
          );
        },
      );
      const drift = triggered.filter((t) => t.id === "default/drift" && t.result?.drift).at(-1)!.result!;
      expect(drift.changes).toEqual(expect.arrayContaining([{ table: "Mirror", name, action: "created" }]));

      const uuid = (await ours())!.uuid;
      await repaired(
        "re-attached after lsp-detach-mirror",
        () => lab.nbctl("lsp-detach-mirror", LAB_TOPOLOGY.podA.lsp, name),
        async () => (await mirrorRules(LAB_TOPOLOGY.podA.lsp)).includes(uuid),
      );

      // ovn-nbctl's `set` finds Mirror rows by uuid only.
      await repaired(
        "index and filter put back",
        () => lab.nbctl("set", "Mirror", uuid, "index=777", "filter=to-lport"),
        async () => {
          const m = await ours();
          return m?.index === key && m.filter === "from-lport";
        },
      );

      // The bystander kept its row, its key and its attachment throughout.
      expect((await nbMirrors()).find((m) => m.name === "bystander")).toEqual(bystander);
      expect(await mirrorRules(LAB_TOPOLOGY.podA.lsp)).toContain(bystander!.uuid);
      // Editing the bystander triggers nothing for it (not ours).
      const seen = triggered.length;
      await lab.nbctl("set", "Mirror", bystander!.uuid, "index=501");
      await lab.nbctl("--wait=sb", "sync");
      expect((await nbMirrors()).find((m) => m.name === "bystander")?.index).toBe(501);
      expect(triggered.slice(seen).filter((t) => t.result?.changes.length)).toEqual([]);

      await remove(d);
      expect((await nbMirrors()).find((m) => m.name === "bystander")?.index).toBe(501);
      expect(await mirrorRules(LAB_TOPOLOGY.podA.lsp)).toEqual([bystander!.uuid]);
    } finally {
      await remove(d);
      await lab.nbctl("mirror-del", "bystander");
    }
  });

  it("a missing port is Degraded, then attached when ovn-nbctl lsp-add creates it", async () => {
    const d = desired("late-port", { sources: { type: "pods", names: ["pod-a", "pod-late"] } });
    const r = await converge(d);
    expect(r).toMatchObject({
      phase: "Degraded",
      reason: "PortNotFound",
      ports: ["pod-a.default"],
      missingPorts: ["pod-late.default"],
    });
    // The rest was applied.
    expect(await mirrorRules(LAB_TOPOLOGY.podA.lsp)).toEqual([r.rows[0]!.uuid]);
    const seen = triggered.length;
    await lab.nbctl("lsp-add", LAB_TOPOLOGY.logicalSwitch, "pod-late.default");
    try {
      await waitFor(async () => (await mirrorRules("pod-late.default")).includes(r.rows[0]!.uuid), {
        what: "the new port attached",
        timeoutMs: 5_000,
        intervalMs: 20,
      });
      const after = await waitFor(
        () => triggered.slice(seen).find((t) => t.id === "default/late-port" && t.result)?.result,
        { what: "reconcile after lsp-add", timeoutMs: 20_000 },
      );
      expect(after).toMatchObject({ phase: "Active", missingPorts: [] });
      expect(triggered.slice(seen).find((t) => t.id === "default/late-port")?.reason).toBe("port");
    } finally {
      await remove(d);
      await lab.nbctl("lsp-del", "pod-late.default");
    }
  });

  it("inlineWaitMs: Applying until the chassis has the commit, the deadline counted from the commit", async () => {
    const ctl = lab.state().pids.find((p) => p.name === "ovn-controller.out");
    expect(ctl).toBeDefined();
    const d = desired("hand-off", {});
    const other = desired("hand-off-bystander", {});
    process.kill(ctl!.pid, "SIGSTOP");
    try {
      const t0 = Date.now();
      const first = await nb.converge(d, { hvTimeoutMs: 60_000, inlineWaitMs: 0 });
      expect(first).toMatchObject({ outcome: "applied", phase: "Applying", reason: "WaitingForChassis" });
      expect(Date.now() - t0).toBeLessThan(5_000); // returned without waiting for the chassis
      expect(first.chassisDeadline).toBeGreaterThanOrEqual(first.committedAt! + 60_000);
      expect(first.chassisDeadline).toBeLessThanOrEqual(Date.now() + 60_000);
      // Another write bumps nb_cfg; a follow-up for the unchanged mirror still waits for the
      // nb_cfg of its own commit, under the same deadline.
      await nb.apply(other);
      expect(state.global()!.nb_cfg).toBeGreaterThan(first.nbCfg!);
      const again = await nb.converge(d, { hvTimeoutMs: 60_000, inlineWaitMs: 0 });
      expect(again).toMatchObject({ outcome: "unchanged", phase: "Applying", nbCfg: first.nbCfg });
      expect(again.chassisDeadline).toBe(first.chassisDeadline);
      // Past the deadline (a short timeout here), the same call reports Degraded.
      const late = await nb.converge(d, { hvTimeoutMs: 1, inlineWaitMs: 0 });
      expect(late).toMatchObject({ phase: "Degraded", reason: "ChassisNotSynced", nbCfg: first.nbCfg });
      process.kill(ctl!.pid, "SIGCONT");
      const active = await nb.converge(d, { hvTimeoutMs: 60_000, inlineWaitMs: 20_000 });
      expect(active).toMatchObject({ outcome: "unchanged", phase: "Active", nbCfg: first.nbCfg });
      expect(active.hvCfg).toBeGreaterThanOrEqual(first.nbCfg!);
    } finally {
      process.kill(ctl!.pid, "SIGCONT");
      await remove(d);
      await remove(other);
    }
  });

  it("Active only once hv_cfg catches up: Degraded while ovn-controller is stopped, Active after", async () => {
    const ctl = lab.state().pids.find((p) => p.name === "ovn-controller.out");
    expect(ctl).toBeDefined();
    const d = desired("slow-chassis", {});
    // SIGSTOP freezes the lab's own ovn-controller (started by this test's lab); SIGCONT in finally.
    process.kill(ctl!.pid, "SIGSTOP");
    let r: ConvergeResult;
    try {
      const seen = triggered.length;
      r = await converge(d, 1_500);
      expect(r).toMatchObject({ outcome: "applied", phase: "Degraded", reason: "ChassisNotSynced" });
      expect(r.hvCfg ?? -1).toBeLessThan(r.nbCfg!);
      expect(state.global()!.hv_cfg).toBeLessThan(r.nbCfg!);
      watcher.awaitChassis(mirrorId(d), r.nbCfg!);
      process.kill(ctl!.pid, "SIGCONT");
      const active = await waitFor(
        () =>
          triggered
            .slice(seen)
            .find((t) => t.id === "default/slow-chassis" && t.reason === "chassis" && t.result)?.result,
        { what: "Active after the chassis caught up", timeoutMs: 20_000 },
      );
      expect(active).toMatchObject({ phase: "Active", outcome: "unchanged" });
      expect(active.hvCfg).toBeGreaterThanOrEqual(r.nbCfg!);
    } finally {
      process.kill(ctl!.pid, "SIGCONT");
      await remove(d);
    }
  });
});
