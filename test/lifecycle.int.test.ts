/**
 * Acceptance of the mirror lifecycle, end to end through the real `ovntap` CLI (a process of
 * its own) against the lab with every service running as its own process, as deployed:
 * create → real NB rows (ovn-nbctl) → mirrored packets at the sink (GRE key / ERSPAN II
 * session id, decoded by tshark) → delete → rows gone and no more packets; refusals that
 * change nothing; out-of-band drift repaired; a foreign mirror never touched; TTL expiry on
 * time, also when the applier was killed over the deadline.
 *
 * Times are measured on NB itself: a monitor of the test's own timestamps every Mirror row
 * change as it arrives (test/support/harness.ts).
 */
import { TTL_MIN_SECONDS } from "@ovntap/contracts";
import { type GrePacket, type Lab, makeTempDir, removeDir, startLab, waitFor } from "@ovntap/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  allocatedKeys,
  type CliResult,
  erspanFilter,
  greKeyFilter,
  type MirrorView,
  NbObserver,
  nbSchemaHasBothFilter,
  nbSnapshot,
  ovntapCli,
  seconds,
  writePolicy,
} from "./support/harness.js";

const POD_A = "pod-a.default";
const POD_B = "pod-b.default";
/** A mirror made with ovn-nbctl, as an operator would: ovntap must never touch it. */
const FOREIGN = { name: "foreign", key: 4242 };
/** Gap between the two TTL mirrors' deadlines: ttl-a expires with the applier up, ttl-b while it is down. */
const TTL_GAP_MS = 6_000;

let lab: Lab;
let dir: string;
let ovntap: ReturnType<typeof ovntapCli>;
let nb: NbObserver;
let sink: string;
let foreignUuid: string;
const ttl: Record<"a" | "b", { name: string; expiresAt: number }> = {
  a: { name: "ttl-a", expiresAt: 0 },
  b: { name: "ttl-b", expiresAt: 0 },
};

const ok = (r: CliResult) => {
  expect(r.code, `exit code; stderr: ${r.stderr}`).toBe(0);
  return r;
};

async function get(name: string, ns = "default"): Promise<MirrorView> {
  return JSON.parse(ok(await ovntap("get", name, "-n", ns, "-o", "json")).stdout) as MirrorView;
}

/** Every event of a mirror's audit trail, oldest first (`ovntap events -o json`). */
async function trail(name: string, ns = "default") {
  const r = ok(await ovntap("events", "-n", ns, "--mirror", name, "-o", "json"));
  return r.stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; eventId: string; detail: Record<string, unknown> });
}

const pingAToB = () => lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP, { timeoutS: 1 });

/** Mirrored packets matching a BPF filter at the sink, while pod-a pings pod-b. */
const atSink = (filter: string, count = 3) =>
  lab.captureGre("sink", { filter, count, timeoutMs: 15_000, traffic: pingAToB });

/** ICMP inner frames only (an ARP carries no IP). */
const icmp = (packets: GrePacket[]) => packets.filter((p) => p.inner?.ipProto === 1);

async function createTtlMirror(name: string, pod: string): Promise<number> {
  ok(
    await ovntap(
      "create",
      name,
      ...["--pod", pod, "--direction", "egress", "--gre-sink", sink],
      ...["--ttl", String(TTL_MIN_SECONDS), "--wait"],
    ),
  );
  return Date.parse((await get(name)).mirror.expiresAt);
}

beforeAll(async () => {
  dir = makeTempDir("ovntap-lifecycle-");
  const policy = writePolicy(dir, {
    trustRequestPrincipal: true,
    protectedNamespaces: ["kube-system"],
    maxActiveMirrors: 20,
    maxTtlSeconds: 86_400,
    allowedSinkCidrs: ["198.51.100.0/24"],
    rules: [{ principals: ["*"], namespaces: ["*"], ops: ["*"] }],
  });
  lab = await startLab({ serviceEnv: { POLICY_FILE: policy } });
  sink = lab.env.LAB_SINK_IP;
  ovntap = ovntapCli(lab, dir);
  nb = await NbObserver.start(lab.env.OVN_NB_DB);

  // The TTL mirrors first, so their deadlines (the contract's shortest TTL) fall late in the suite.
  ttl.a.expiresAt = await createTtlMirror(ttl.a.name, "pod-b");

  await lab.nbctl(
    ...["mirror-add", FOREIGN.name, "gre", String(FOREIGN.key), "to-lport", sink],
    ...["--", "lsp-attach-mirror", POD_B, FOREIGN.name],
  );
  await lab.nbctl("--timeout=30", "--wait=hv", "sync");
  foreignUuid = (await nb.until(() => nb.byName(FOREIGN.name), "the foreign mirror in NB", 5_000))._uuid;

  await waitFor(() => Date.now() >= ttl.a.expiresAt - TTL_MIN_SECONDS * 1000 + TTL_GAP_MS, {
    what: "the second TTL mirror's slot",
    timeoutMs: TTL_GAP_MS + 5_000,
  });
  ttl.b.expiresAt = await createTtlMirror(ttl.b.name, "pod-b");
  expect(ttl.b.expiresAt - ttl.a.expiresAt).toBeGreaterThanOrEqual(TTL_GAP_MS - 500);
});

afterAll(async () => {
  await nb?.close();
  await lab?.stop();
  if (dir) removeDir(dir);
});

describe("mirror lifecycle through the ovntap CLI", () => {
  it("GRE egress: rows in NB, packets with the allocated key at the sink; delete removes both", async () => {
    const created = ok(
      await ovntap(
        ...["create", "--name", "m1", "--namespace", "default", "--pod", "pod-a"],
        ...["--direction", "egress", "--gre-sink", sink, "--ttl", "600", "--wait"],
      ),
    );
    console.log(`create m1 --wait: ${created.ms} ms`);
    const view = await get("m1");
    expect(view.status).toMatchObject({ phase: "Active", observedGeneration: 1, sink, ports: [POD_A] });
    const key = view.status.key!;
    expect(key).toBeGreaterThan(0);
    expect(key).not.toBe(FOREIGN.key);

    // The real ovn-nbctl sees the row, and pod-a's port carries it.
    const list = await lab.nbctl("mirror-list");
    expect(list).toMatch(
      new RegExp(
        `ovntap\\.default\\.m1:\\s+Type\\s+:\\s+gre\\s+Sink\\s+:\\s+${sink.replaceAll(".", "\\.")}\\s+` +
          `Filter\\s+:\\s+from-lport\\s+Index/Key:\\s+${key}\\b`,
      ),
    );
    const row = nb.byName("ovntap.default.m1")!;
    expect(row.external_ids).toMatchObject({ "ovntap/mirror": "default/m1", "ovntap/generation": "1" });
    expect(await lab.nbctl("get", "Logical_Switch_Port", POD_A, "mirror_rules")).toContain(row._uuid);

    // What pod-a sends, GRE-encapsulated with that key, at the sink.
    const packets = await atSink(greKeyFilter(key));
    expect(packets.length).toBeGreaterThanOrEqual(3);
    for (const p of packets) {
      expect(p).toMatchObject({
        outer: { dst: sink },
        greProto: 0x6558,
        key,
        inner: { srcMac: "00:00:00:00:00:01" },
      });
    }
    expect(icmp(packets).length).toBeGreaterThan(0);
    for (const p of icmp(packets)) {
      expect(p.inner).toMatchObject({ src: lab.env.LAB_POD_A_IP, dst: lab.env.LAB_POD_B_IP });
    }

    const deleted = ok(await ovntap("delete", "m1", "--wait"));
    console.log(`delete m1 --wait: ${deleted.ms} ms`);
    expect(await lab.nbctl("--bare", "--columns=_uuid", "find", "Mirror", "name=ovntap.default.m1")).toBe("");
    expect(await lab.nbctl("get", "Logical_Switch_Port", POD_A, "mirror_rules")).not.toContain(row._uuid);
    const gone = await ovntap("get", "m1");
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^NOT_FOUND: /);

    // Pinging on: GRE keeps arriving (the foreign mirror sees pod-b's ingress), none with m1's key.
    const after = await lab.captureGre("sink", { timeoutMs: 3_000, traffic: pingAToB });
    expect(after.filter((p) => p.key === FOREIGN.key).length).toBeGreaterThan(0);
    expect(after.filter((p) => p.key === key)).toEqual([]);
  });

  it("ERSPAN ingress: ERSPAN type II with the allocated session id at the sink; delete removes it", async () => {
    ok(
      await ovntap(
        ...["create", "m2", "--pod", "pod-a", "--direction", "ingress", "--erspan-sink", sink],
        ...["--ttl", "600", "--wait"],
      ),
    );
    const view = await get("m2");
    expect(view.status.phase).toBe("Active");
    const sessionId = view.status.sessionId!;
    expect(sessionId).toBeGreaterThan(0);
    expect(await lab.nbctl("mirror-list")).toMatch(
      new RegExp(
        `ovntap\\.default\\.m2:\\s+Type\\s+:\\s+erspan\\s+Sink[^\\n]*\\n\\s+Filter\\s+:\\s+to-lport\\s+Index/Key:\\s+${sessionId}\\b`,
      ),
    );
    const row = nb.byName("ovntap.default.m2")!;
    expect(nb.attachedTo(POD_A).map((m) => m.name)).toContain(row.name);

    // to-lport: what pod-a receives (pod-b's echo replies), as ERSPAN version 1 = type II.
    const packets = await atSink(erspanFilter(sessionId));
    expect(packets.length).toBeGreaterThanOrEqual(3);
    for (const p of packets) {
      expect(p).toMatchObject({
        outer: { dst: sink },
        greProto: 0x88be,
        erspan: { version: 1, spanId: sessionId },
      });
    }
    expect(icmp(packets).length).toBeGreaterThan(0);
    for (const p of icmp(packets)) {
      expect(p.inner).toMatchObject({
        dstMac: "00:00:00:00:00:01",
        src: lab.env.LAB_POD_B_IP,
        dst: lab.env.LAB_POD_A_IP,
      });
    }

    ok(await ovntap("delete", "m2", "--wait"));
    expect(nb.byName(row.name)).toBeUndefined();
    expect(await lab.nbctl("--bare", "--columns=_uuid", "find", "Mirror", `name=${row.name}`)).toBe("");
    const after = await lab.captureGre("sink", { timeoutMs: 3_000, traffic: pingAToB });
    expect(after.filter((p) => p.key === FOREIGN.key).length).toBeGreaterThan(0);
    expect(after.filter((p) => p.erspan?.spanId === sessionId)).toEqual([]);
  });

  it("direction both: two rows and two keys on this OVN, each direction mirrored under its own key", async () => {
    ok(
      await ovntap(
        ...["create", "m3", "--pod", "pod-a", "--direction", "both", "--gre-sink", sink],
        ...["--ttl", "600", "--wait"],
      ),
    );
    const view = await get("m3");
    expect(view.status.phase).toBe("Active");
    const keys = allocatedKeys(view);
    const rows = nb.owned().get("default/m3") ?? [];

    if (nbSchemaHasBothFilter()) {
      // OVN ≥ 23.06: one row with filter=both, one key, both directions under it.
      expect(rows.map((r) => [r.name, r.filter, r.index])).toEqual([
        ["ovntap.default.m3", "both", view.status.key],
      ]);
      const packets = icmp(await atSink(greKeyFilter(view.status.key!), 6));
      expect(packets.some((p) => p.inner?.src === lab.env.LAB_POD_A_IP)).toBe(true);
      expect(packets.some((p) => p.inner?.src === lab.env.LAB_POD_B_IP)).toBe(true);
    } else {
      // OVN 23.03 (this lab): Mirror.filter is from-lport | to-lport, so two rows with two keys.
      const out = rows.find((r) => r.name === "ovntap.default.m3.out");
      const inn = rows.find((r) => r.name === "ovntap.default.m3.in");
      expect(rows).toHaveLength(2);
      expect(out).toMatchObject({ filter: "from-lport", type: "gre", sink });
      expect(inn).toMatchObject({ filter: "to-lport", type: "gre", sink });
      expect(keys).toEqual({ [out!.name]: out!.index, [inn!.name]: inn!.index });
      expect(out!.index).not.toBe(inn!.index);
      expect(
        nb
          .attachedTo(POD_A)
          .map((m) => m.name)
          .sort(),
      ).toEqual([inn!.name, out!.name].sort());

      const sent = icmp(await atSink(greKeyFilter(out!.index)));
      const received = icmp(await atSink(greKeyFilter(inn!.index)));
      expect(sent.length).toBeGreaterThan(0);
      expect(received.length).toBeGreaterThan(0);
      for (const p of sent)
        expect(p.inner).toMatchObject({ src: lab.env.LAB_POD_A_IP, dst: lab.env.LAB_POD_B_IP });
      for (const p of received)
        expect(p.inner).toMatchObject({ src: lab.env.LAB_POD_B_IP, dst: lab.env.LAB_POD_A_IP });
    }

    ok(await ovntap("delete", "m3", "--wait"));
    expect(nb.owned().get("default/m3")).toBeUndefined();
    expect(nb.attachedTo(POD_A).filter((m) => m.name.startsWith("ovntap.default.m3"))).toEqual([]);
    const after = await lab.captureGre("sink", { timeoutMs: 3_000, traffic: pingAToB });
    expect(after.filter((p) => p.key === FOREIGN.key).length).toBeGreaterThan(0);
    expect(after.filter((p) => p.key !== undefined && Object.values(keys).includes(p.key))).toEqual([]);
  });

  it("refuses a sink outside the policy and a protected namespace: exit 1, the code printed, NB unchanged", async () => {
    const before = await nbSnapshot(lab);

    const outside = await ovntap(
      ...["create", "out-of-policy", "--pod", "pod-a", "--direction", "egress"],
      ...["--gre-sink", "10.99.0.9", "--wait"],
    );
    expect(outside.code).toBe(1);
    expect(outside.stderr).toMatch(/^SINK_NOT_ALLOWED: sink 10\.99\.0\.9 is outside/);
    expect(outside.stderr).toContain("198.51.100.0/24");

    const protectedNs = await ovntap(
      ...["create", "sneaky", "-n", "kube-system", "--pod", "coredns-0", "--direction", "both"],
      ...["--gre-sink", sink, "--wait"],
    );
    expect(protectedNs.code).toBe(1);
    expect(protectedNs.stderr).toMatch(/^NAMESPACE_PROTECTED: namespace "kube-system" is protected/);

    // The refusal audited, nothing stored, nothing in NB.
    expect(
      (await trail("out-of-policy")).map((e) => [e.type, (e.detail.error as { code?: string })?.code]),
    ).toEqual([
      ["requested", undefined],
      ["rejected", "SINK_NOT_ALLOWED"],
    ]);
    expect((await trail("sneaky", "kube-system")).map((e) => e.type)).toEqual(["requested", "rejected"]);
    expect((await ovntap("get", "out-of-policy")).stderr).toMatch(/^NOT_FOUND: /);
    expect(await nbSnapshot(lab)).toEqual(before);
  });

  it("repairs an out-of-band ovn-nbctl mirror-del of an owned mirror within 5 s", async () => {
    ok(
      await ovntap(
        ...["create", "m-drift", "--pod", "pod-a", "--direction", "egress", "--gre-sink", sink],
        ...["--ttl", "600", "--wait"],
      ),
    );
    const name = "ovntap.default.m-drift";
    const original = nb.byName(name)!;
    const key = (await get("m-drift")).status.key;
    expect(original.index).toBe(key);

    const t0 = Date.now();
    await lab.nbctl("mirror-del", name);
    const removed = await nb.until(() => nb.change(name, "delete", t0), "the row's deletion in NB", 5_000);
    const back = await nb.until(
      () => {
        const row = nb.byName(name);
        const attached = row && nb.attachedTo(POD_A).some((m) => m._uuid === row._uuid);
        return row && row._uuid !== original._uuid && attached ? row : undefined;
      },
      "the mirror to be repaired",
      10_000,
    );
    const inserted = nb.change(name, "insert", removed.t)!;
    const repairMs = inserted.t - removed.t;
    console.log(
      `drift repair: mirror-del seen → row back ${repairMs} ms (from the command's start ${inserted.t - t0} ms)`,
    );
    expect(repairMs).toBeLessThanOrEqual(5_000);
    expect(back).toMatchObject({ type: "gre", filter: "from-lport", sink, index: key });
    expect(back.external_ids).toMatchObject({ "ovntap/mirror": "default/m-drift" });

    const repaired = (await trail("m-drift")).filter((e) => e.type === "drift_repaired");
    expect(repaired.length).toBeGreaterThanOrEqual(1);
    expect((await get("m-drift")).status.phase).toBe("Active");
    // The repaired mirror mirrors.
    expect((await atSink(greKeyFilter(key!))).length).toBeGreaterThanOrEqual(3);
    ok(await ovntap("delete", "m-drift", "--wait"));
  });

  it(
    "expires a mirror within 2 s of its deadline, and promptly after an applier killed over its deadline restarts",
    { timeout: 180_000 },
    async () => {
      const rowA = `ovntap.default.${ttl.a.name}`;
      const rowB = `ovntap.default.${ttl.b.name}`;
      expect(nb.byName(rowA)).toBeDefined();

      // 1. The applier runs: the rows go at the deadline.
      const goneA = await nb.until(
        () => nb.change(rowA, "delete"),
        `${rowA} to expire`,
        Math.max(0, ttl.a.expiresAt - Date.now()) + 10_000,
      );
      const latenessA = goneA.t - ttl.a.expiresAt;
      console.log(`expiry: ${ttl.a.name} rows gone ${latenessA} ms after its deadline`);
      expect(latenessA).toBeGreaterThanOrEqual(0);
      expect(latenessA).toBeLessThanOrEqual(2_000);
      expect((await ovntap("get", ttl.a.name)).stderr).toMatch(/^NOT_FOUND: /);
      const trailA = (await trail(ttl.a.name)).map((e) => [e.type, e.detail.reason]);
      expect(trailA).toContainEqual(["expired", undefined]);
      expect(trailA).toContainEqual(["deleted", "expired"]);

      // 2. The applier is killed before ttl-b's deadline and comes back only after it.
      if (Date.now() > ttl.b.expiresAt - 1_000) {
        // A slow run left no time before ttl-b's deadline: give it a new one.
        ok(await ovntap("extend", ttl.b.name, "--ttl", String(TTL_MIN_SECONDS)));
        ttl.b.expiresAt = Date.parse((await get(ttl.b.name)).mirror.expiresAt);
      }
      await lab.killService("ovn-applier", "SIGKILL");
      const killedAt = Date.now();
      expect(killedAt).toBeLessThan(ttl.b.expiresAt);
      await waitFor(() => Date.now() >= ttl.b.expiresAt + 2_000, {
        what: `${ttl.b.name}'s deadline to pass with the applier down`,
        timeoutMs: ttl.b.expiresAt + 2_000 - Date.now() + 5_000,
      });
      // Nobody else removes rows: they are still there, past the deadline.
      expect(nb.byName(rowB)).toBeDefined();
      const restarting = Date.now();
      const applier = await lab.startService("ovn-applier");
      const ready = Date.now();
      const goneB = await nb.until(
        () => nb.change(rowB, "delete"),
        `${rowB} to expire after the restart`,
        10_000,
      );
      console.log(
        `expiry across a restart: applier killed ${ttl.b.expiresAt - killedAt} ms before ${ttl.b.name}'s ` +
          `deadline, started again ${restarting - ttl.b.expiresAt} ms after it (pid ${applier.pid}, ready in ` +
          `${ready - restarting} ms); rows gone ${goneB.t - restarting} ms after the start ` +
          `(${seconds(goneB.t - ttl.b.expiresAt)} after the deadline, of which the applier was down ` +
          `${seconds(restarting - ttl.b.expiresAt)})`,
      );
      // Promptly: as soon as the restarted applier runs (its expiry sweep runs at start).
      expect(goneB.t - ready).toBeLessThanOrEqual(2_000);
      expect(await lab.nbctl("--bare", "--columns=_uuid", "find", "Mirror", `name=${rowB}`)).toBe("");
      await waitFor(async () => (await ovntap("get", ttl.b.name)).code === 1, {
        what: `${ttl.b.name} to be purged`,
        timeoutMs: 10_000,
      });
      const trailB = (await trail(ttl.b.name)).map((e) => [e.type, e.detail.reason]);
      expect(trailB).toContainEqual(["expired", undefined]);
      expect(trailB).toContainEqual(["deleted", "expired"]);
    },
  );

  it("never touched the mirror it does not own", () => {
    const foreign = nb.byName(FOREIGN.name);
    expect(foreign).toMatchObject({
      _uuid: foreignUuid,
      type: "gre",
      filter: "to-lport",
      sink,
      index: FOREIGN.key,
    });
    expect(foreign?.external_ids).toEqual({});
    expect(nb.changes.filter((c) => c.uuid === foreignUuid).map((c) => c.type)).toEqual(["insert"]);
    expect(nb.attachedTo(POD_B).map((m) => m.name)).toContain(FOREIGN.name);
    // And no owned row ever took its key.
    expect(
      nb.changes.filter((c) => c.row.external_ids["ovntap/mirror"] && c.row.index === FOREIGN.key),
    ).toEqual([]);
    expect([...nb.owned().keys()]).toEqual([]);
  });
});
