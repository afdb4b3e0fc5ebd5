/**
 * The mirror lifecycle under faults, on the lab with every service as its own process:
 * 200 creates (gre/erspan, egress/ingress/both) with 20 % of them re-sent under the same
 * requestId, at a steady rate over NATS, while the ovn-applier process is SIGKILLed 5 times
 * at random (and started again after a short pause) and the NB ovsdb-server is down for 10 s
 * (then back on the same database file and socket). Then: every accepted mirror Active, no
 * row added by a duplicate, no orphan row, keys distinct per sink, a complete audit trail per
 * mirror; then all deleted and NB clean. Prints the figures the lead quotes.
 *
 * Why most sources are pods bound to no chassis: OVS keeps at most 32 mirrors per bridge
 * (ofproto-dpif-mirror.h MAX_MIRRORS, a 32-bit mask). ovn-controller creates one OVS Mirror
 * on br-int for every NB Mirror row attached to a port bound on its chassis and does not
 * count them; ovs-vswitchd refuses the 33rd and later ("maximum of 32 port mirrors reached,
 * cannot create <name>", a WARN in its log, re-tried at every reconfiguration, so a freed
 * slot is taken by one of the waiting mirrors), while the chassis still reports hv_cfg ≥
 * nb_cfg. 200 mirrors on pod-a/pod-b would be "Active" in ovntap's sense (the chassis caught
 * up) with 168 of them mirroring nothing: not an honest convergence. So at most
 * BOUND_ROWS_MAX rows are attached to the lab chassis' pods, and those are checked down to
 * the packets at the sink; the others mirror pods of the same logical switch bound to no
 * chassis here (pods on other nodes, in a cluster), for which the only chassis has nothing
 * to program, so Active is exactly true.
 *
 * FAULT_SEED=<n> replays a run's schedule (the seed is printed); OVNTAP_KEEP_LAB=1 leaves the
 * lab up afterwards to read the services' logs (the command to remove it is printed).
 */
import { randomUUID } from "node:crypto";
import { type NatsConnection, connect } from "@nats-io/transport-node";
import {
  type AuditRecord,
  MAX_MIRRORS_PER_BRIDGE,
  type MirrorSpec,
  type Reply,
  reqSubject,
} from "@ovntap/contracts";
import {
  decodeGre,
  type Lab,
  makeTempDir,
  readText,
  sleep,
  startCapture,
  startLab,
  waitFor,
} from "@ovntap/lab";
import { createLogger } from "@ovntap/runtime";
import { createEventLog, createStore, type Store, type StoredMirror } from "@ovntap/store";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { faultSeed, prng, stopLabUnlessKept } from "../support/faults.js";
import { nbctlRows, nbSchemaHasBothFilter, seconds, writePolicy } from "../support/harness.js";

const MIRRORS = 200;
const DUPLICATE_SHARE = 0.2;
const SEND_INTERVAL_MS = 150;
const APPLIER_KILLS = 5;
const NB_DOWN_MS = 10_000;
/** Rows attached to pods bound to the lab chassis: each is an OVS Mirror on br-int (≤ 32). */
const BOUND_ROWS_MAX = 24;
/** Pods in NB that no chassis binds (pods of other nodes, in a cluster). */
const REMOTE_PODS = 16;
const NS = "default";
/**
 * Generous on purpose: a job a killed applier had taken stays `active` in BullMQ until the
 * stalled-job check hands it back (the applier's Worker: a LOCK_TTL_MS job lock, 15 s by default,
 * checked every third of it), and the mirror's own Redis lock lapses after the same TTL; seen:
 * up to 32 s from request to Active. With BullMQ's defaults (a 30 s lock, checked every 30 s)
 * it was 59 s and 114 s.
 */
const CONVERGE_DEADLINE_MS = 150_000;

interface Planned {
  name: string;
  spec: MirrorSpec;
  requestId: string;
  /** Sources bound to the lab chassis (pod-a/pod-b): mirrored for real on br-int. */
  bound: boolean;
  /** Logical switch ports the mirror must be attached to. */
  ports: string[];
}

interface Sent {
  mirror: Planned;
  duplicate: boolean;
  at: number;
  reply?: Reply;
  error?: string;
}

const bothAsOneRow = nbSchemaHasBothFilter();
const rowsOf = (direction: MirrorSpec["direction"]) => (direction === "both" && !bothAsOneRow ? 2 : 1);

function plan(random: () => number, sink: string): Planned[] {
  const directions = ["egress", "ingress", "both"] as const;
  const out: Planned[] = [];
  let boundRows = 0;
  for (let i = 0; i < MIRRORS; i++) {
    const direction = directions[i % 3]!;
    const bound = i % 8 === 0 && boundRows + rowsOf(direction) <= BOUND_ROWS_MAX;
    if (bound) boundRows += rowsOf(direction);
    const pods = bound
      ? [["pod-a"], ["pod-b"], ["pod-a", "pod-b"]][Math.floor(i / 8) % 3]!
      : [`pod-r${i % REMOTE_PODS}`, ...(i % 5 === 0 ? [`pod-r${(i + 7) % REMOTE_PODS}`] : [])];
    const erspan = random() < 0.5;
    const spec: MirrorSpec = {
      name: `f${String(i).padStart(3, "0")}`,
      namespace: NS,
      sources: { type: "pods", names: pods },
      direction,
      target: erspan ? { type: "erspan", sink } : { type: "gre", sink },
      ttlSeconds: 3_600,
    };
    out.push({ name: spec.name, spec, requestId: randomUUID(), bound, ports: pods.map((p) => `${p}.${NS}`) });
  }
  return out;
}

/** `count` instants in [from, to] at least `gap` apart, sorted. */
function spreadTimes(random: () => number, count: number, from: number, to: number, gap: number): number[] {
  for (;;) {
    const t = Array.from({ length: count }, () => from + random() * (to - from)).sort((a, b) => a - b);
    if (t.every((x, i) => i === 0 || x - t[i - 1]! >= gap)) return t;
  }
}

const expectedRowNames = (m: Planned) =>
  rowsOf(m.spec.direction) === 2
    ? [`ovntap.${NS}.${m.name}.in`, `ovntap.${NS}.${m.name}.out`]
    : [`ovntap.${NS}.${m.name}`];

let lab: Lab;
let dir: string;
let nc: NatsConnection;
let redis: Redis;
let store: Store;

beforeAll(async () => {
  dir = makeTempDir("ovntap-faults-");
  const policy = writePolicy(dir, {
    trustRequestPrincipal: true,
    maxActiveMirrors: 1_000,
    allowedSinkCidrs: ["198.51.100.0/24"],
    rules: [{ principals: ["*"], namespaces: ["*"], ops: ["*"] }],
  });
  lab = await startLab({ serviceEnv: { POLICY_FILE: policy } });
  const remote: string[] = [];
  for (let i = 0; i < REMOTE_PODS; i++) {
    const lsp = `pod-r${i}.${NS}`;
    const n = 0x20 + i;
    remote.push(
      ...["--", "lsp-add", "ovn-default", lsp],
      ...["--", "lsp-set-addresses", lsp, `00:00:00:00:01:${n.toString(16)} 10.16.1.${n}`],
    );
  }
  await lab.nbctl(...remote.slice(1));
  nc = await connect({ servers: lab.env.NATS_URL });
  redis = new Redis(lab.env.REDIS_URL, { lazyConnect: false });
  store = createStore({ redis });
});

afterAll(async () => {
  await nc?.close();
  redis?.disconnect();
  await stopLabUnlessKept(lab, dir);
});

describe("mirror lifecycle under faults", () => {
  it(
    "converges every accepted mirror through applier crashes and an NB outage, then cleans up",
    { timeout: 300_000 },
    async () => {
      const began = Date.now();
      const seed = faultSeed();
      const random = prng(seed);
      const sink = lab.env.LAB_SINK_IP;
      const mirrors = plan(random, sink);
      const byName = new Map(mirrors.map((m) => [m.name, m]));
      const vswitchdLog = `${lab.dir}/ovs-vswitchd.log`;
      const vswitchdLogFrom = readText(vswitchdLog).length;

      // The send schedule: each original in order, each duplicate 1–15 slots after its original.
      const dupes = new Set<number>();
      while (dupes.size < Math.round(MIRRORS * DUPLICATE_SHARE)) dupes.add(Math.floor(random() * MIRRORS));
      const schedule = [
        ...mirrors.map((m, i) => ({ slot: i, mirror: m, duplicate: false })),
        ...[...dupes].map((i) => ({ slot: i + 1 + random() * 14, mirror: mirrors[i]!, duplicate: true })),
      ].sort((a, b) => a.slot - b.slot);
      const loadMs = schedule.length * SEND_INTERVAL_MS;

      // The faults, on the same clock as the load.
      const killAt = spreadTimes(random, APPLIER_KILLS, 2_000, loadMs - 2_000, 4_000);
      const nbDownAt = loadMs * (0.25 + random() * 0.2);
      const faults: string[] = [];
      const t0 = Date.now();
      const rel = (t: number) => `${seconds(t - t0)}`;
      const until = (ms: number) => sleep(Math.max(0, t0 + ms - Date.now()));

      const kills = (async () => {
        for (const at of killAt) {
          await until(at);
          await lab.killService("ovn-applier", "SIGKILL");
          const killed = Date.now();
          const pause = 300 + random() * 1_700;
          await sleep(pause);
          // Not waiting for readiness: a restart during the NB outage is ready only once NB is back.
          const { pid } = await lab.startService("ovn-applier", { waitReady: false });
          faults.push(
            `applier SIGKILL at ${rel(killed)}, started again (pid ${pid}) after ${Math.round(pause)} ms`,
          );
        }
      })();
      const nbOutage = (async () => {
        await until(nbDownAt);
        await lab.stopServer("nb");
        const down = Date.now();
        await sleep(NB_DOWN_MS);
        await lab.startServer("nb");
        faults.push(`NB ovsdb-server stopped at ${rel(down)} for ${seconds(Date.now() - down)}`);
      })();

      // The load: one request every SEND_INTERVAL_MS, replies collected as they come.
      const subject = reqSubject(NS);
      const sent: Sent[] = [];
      const inFlight: Promise<void>[] = [];
      for (const [k, s] of schedule.entries()) {
        await until(k * SEND_INTERVAL_MS);
        const entry: Sent = { mirror: s.mirror, duplicate: s.duplicate, at: Date.now() };
        sent.push(entry);
        const body = {
          requestId: s.mirror.requestId,
          principal: "fault-test",
          op: "create",
          spec: s.mirror.spec,
        };
        inFlight.push(
          nc.request(subject, JSON.stringify(body), { timeout: 20_000 }).then(
            (msg) => void (entry.reply = msg.json<Reply>()),
            (err: unknown) => void (entry.error = err instanceof Error ? err.message : String(err)),
          ),
        );
      }
      await Promise.all([...inFlight, kills, nbOutage]);
      const loadEnded = Date.now();

      // Replies: every create accepted (intake was not faulted), each duplicate answered with the first reply.
      const originals = sent.filter((s) => !s.duplicate);
      const duplicates = sent.filter((s) => s.duplicate);
      const accepted = originals.filter((s) => s.reply?.ok === true);
      const firstReply = new Map(originals.map((s) => [s.mirror.name, s.reply]));
      const sameReply = duplicates.filter(
        (d) => JSON.stringify(d.reply) === JSON.stringify(firstReply.get(d.mirror.name)),
      );
      expect(
        originals.filter((s) => s.reply?.ok !== true).map((s) => [s.mirror.name, s.error ?? s.reply]),
      ).toEqual([]);
      expect(
        duplicates.filter((d) => !sameReply.includes(d)).map((d) => [d.mirror.name, d.error ?? d.reply]),
      ).toEqual([]);

      // Every accepted mirror Active (the applier restarted last may still be connecting).
      const applier = lab.services().find((s) => s.name === "ovn-applier")!;
      await waitFor(
        async () =>
          (await fetch(`http://127.0.0.1:${applier.httpPort}/readyz`).catch(() => undefined))?.status === 200,
        { what: "the applier to be ready after the faults", timeoutMs: 60_000 },
      );
      let last: StoredMirror[] = [];
      const notActive = () =>
        accepted
          .map((s) => last.find((m) => m.record.spec.name === s.mirror.name))
          .filter(
            (m) => !m || m.status.phase !== "Active" || m.status.observedGeneration !== m.record.generation,
          );
      try {
        await waitFor(
          async () => {
            last = await store.listMirrors(NS);
            return notActive().length === 0;
          },
          { what: "every accepted mirror to be Active", timeoutMs: CONVERGE_DEADLINE_MS, intervalMs: 500 },
        );
      } catch (err) {
        const stuck = notActive().map(
          (m) => m && `${m.record.spec.name} ${m.status.phase} ${m.status.reason ?? ""}`,
        );
        throw new Error(`not Active after ${seconds(CONVERGE_DEADLINE_MS)}: ${stuck.join("; ")}`, {
          cause: err,
        });
      }
      const converged = Date.now();

      // NB: one row per mirror (two for an emulated `both`), attached where it should be; no orphans; keys distinct per sink.
      const rows = await nbctlRows(lab, "Mirror");
      const ports = await nbctlRows(lab, "Logical_Switch_Port", ["name", "mirror_rules"]);
      const owned = new Map<string, Record<string, unknown>[]>();
      for (const r of rows) {
        const owner = (r.external_ids as Record<string, string>)["ovntap/mirror"];
        if (owner) owned.set(owner, [...(owned.get(owner) ?? []), r]);
      }
      const live = new Set(last.map((m) => `${NS}/${m.record.spec.name}`));
      expect([...owned.keys()].filter((o) => !live.has(o))).toEqual([]);
      const wrongRows: unknown[] = [];
      for (const s of accepted) {
        const m = s.mirror;
        const mine = owned.get(`${NS}/${m.name}`) ?? [];
        const names = mine.map((r) => String(r.name)).sort();
        const attachedTo = (uuid: unknown) =>
          ports
            .filter((p) => (p.mirror_rules as string[]).includes(uuid as string))
            .map((p) => String(p.name))
            .sort();
        if (
          JSON.stringify(names) !== JSON.stringify(expectedRowNames(m)) ||
          mine.some((r) => JSON.stringify(attachedTo(r._uuid)) !== JSON.stringify([...m.ports].sort()))
        ) {
          wrongRows.push({
            mirror: m.name,
            rows: mine.map((r) => [r.name, attachedTo(r._uuid)]),
            expected: [expectedRowNames(m), m.ports],
          });
        }
      }
      expect(wrongRows).toEqual([]);
      const keysBySink = new Map<string, number[]>();
      for (const r of rows)
        keysBySink.set(String(r.sink), [...(keysBySink.get(String(r.sink)) ?? []), Number(r.index)]);
      for (const [s, keys] of keysBySink)
        expect(
          keys.filter((k, i) => keys.indexOf(k) !== i),
          `keys reused towards ${s}`,
        ).toEqual([]);
      const ownedRows = [...owned.values()].flat();
      expect(ownedRows).toHaveLength(accepted.reduce((n, s) => n + rowsOf(s.mirror.spec.direction), 0));

      // The dataplane, honestly: one OVS Mirror on br-int per row attached to a bound pod, none
      // refused by ovs-vswitchd, and each of them delivering packets at the sink.
      const boundRows = ownedRows.filter((r) => byName.get(String(r.name).split(".")[2]!)?.bound);
      const ovsMirrors = (await lab.vsctl("--bare", "--columns=name", "list", "Mirror"))
        .split("\n")
        .filter(Boolean);
      expect(ovsMirrors.sort()).toEqual(boundRows.map((r) => String(r.name)).sort());
      expect(ovsMirrors.length).toBeLessThanOrEqual(MAX_MIRRORS_PER_BRIDGE);
      expect(readText(vswitchdLog).slice(vswitchdLogFrom)).not.toMatch(/maximum of \d+ port mirrors reached/);
      const capture = await startCapture({
        netns: lab.env.LAB_SINK_NS,
        iface: "eth0",
        filter: "ip proto 47",
        timeoutMs: 30_000,
      });
      const wanted = new Set(boundRows.map((r) => `${String(r.type)}:${Number(r.index)}`));
      const seen = new Set<string>();
      const captureStarted = Date.now();
      while (Date.now() - captureStarted < 4_000)
        await lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP, { timeoutS: 1 });
      for (const p of await decodeGre(await capture.stop())) {
        if (p.erspan) seen.add(`erspan:${p.erspan.spanId}`);
        else if (p.key !== undefined) seen.add(`gre:${p.key}`);
      }
      expect([...wanted].filter((w) => !seen.has(w))).toEqual([]);

      // The audit trail of every mirror: the whole sequence once, no event id twice.
      const events = createEventLog({ nc, logger: createLogger({ name: "fault-test", level: "silent" }) });
      const trails = new Map<string, AuditRecord[]>();
      const names = accepted.map((s) => s.mirror.name);
      for (let i = 0; i < names.length; i += 8) {
        await Promise.all(names.slice(i, i + 8).map(async (n) => trails.set(n, await events.history(NS, n))));
      }
      const required: readonly string[] = ["requested", "accepted", "applying", "applied", "active"];
      const incomplete: unknown[] = [];
      const reusedIds: unknown[] = [];
      const toActive: { name: string; ms: number }[] = [];
      const extra = new Map<string, number>();
      const repeated: { mirror: string; trail: AuditRecord[] }[] = [];
      for (const [n, trail] of trails) {
        const types: string[] = trail.map((e) => e.type);
        const firsts = required.map((t) => types.indexOf(t));
        if (
          firsts.some((x, i) => x < 0 || (i > 0 && x < firsts[i - 1]!)) ||
          types.filter((t) => t === "requested" || t === "accepted").length !== 2
        ) {
          incomplete.push({ mirror: n, types });
        }
        const ids = trail.map((e) => e.eventId);
        if (new Set(ids).size !== ids.length) reusedIds.push({ mirror: n, ids });
        const requested = trail.find((e) => e.type === "requested");
        const active = trail.find((e) => e.type === "active");
        if (requested && active)
          toActive.push({ name: n, ms: Date.parse(active.time) - Date.parse(requested.time) });
        // Beyond the sequence: other types, and a required type again (under another id).
        for (const [k, t] of types.entries()) {
          if (required.includes(t) && types.indexOf(t) === k) continue;
          extra.set(t, (extra.get(t) ?? 0) + 1);
          if (required.includes(t)) repeated.push({ mirror: n, trail });
        }
      }
      expect(incomplete).toEqual([]);
      expect(reusedIds).toEqual([]);
      toActive.sort((a, b) => a.ms - b.ms);
      const longest = toActive[toActive.length - 1]!;
      const median = toActive[Math.floor(toActive.length / 2)]!;

      // Delete them all: NB has no ovntap row left, the store no record.
      const deleting = Date.now();
      const deletes = await Promise.all(
        accepted.map(async (s, k) => {
          await sleep(k * 20);
          const body = {
            requestId: randomUUID(),
            principal: "fault-test",
            op: "delete",
            namespace: NS,
            name: s.mirror.name,
          };
          return (await nc.request(subject, JSON.stringify(body), { timeout: 20_000 })).json<Reply>();
        }),
      );
      expect(deletes.filter((r) => !r.ok)).toEqual([]);
      await waitFor(
        async () =>
          (await store.listMirrors(NS)).length === 0 &&
          (await nbctlRows(lab, "Mirror", ["external_ids"])).every(
            (r) => !(r.external_ids as Record<string, string>)["ovntap/mirror"],
          ),
        { what: "NB and the store to be empty of ovntap mirrors", timeoutMs: 120_000, intervalMs: 500 },
      );
      const cleaned = Date.now();
      expect(await nbctlRows(lab, "Mirror")).toEqual([]);
      expect(
        (await nbctlRows(lab, "Logical_Switch_Port", ["mirror_rules"])).every(
          (p) => (p.mirror_rules as string[]).length === 0,
        ),
      ).toBe(true);
      expect((await lab.vsctl("--bare", "--columns=name", "list", "Mirror")).trim()).toBe("");

      const figures: [string, string][] = [
        ["seed", String(seed)],
        [
          "faults injected",
          `${APPLIER_KILLS} applier SIGKILLs + NB ovsdb-server down ${seconds(NB_DOWN_MS)}`,
        ],
        ...faults
          .sort((a, b) => Number(/at ([\d.]+) s/.exec(a)?.[1]) - Number(/at ([\d.]+) s/.exec(b)?.[1]))
          .map((f) => ["  fault", f] as [string, string]),
        [
          "requests",
          `${sent.length} over ${seconds(loadEnded - t0)}: ${originals.length} creates + ${duplicates.length} duplicates (same requestId and body)`,
        ],
        [
          "accepted",
          `${accepted.length}/${originals.length}; duplicates answered with the first reply: ${sameReply.length}/${duplicates.length}`,
        ],
        [
          "mirrors converged (Active)",
          `${accepted.length}/${accepted.length}, ${seconds(converged - loadEnded)} after the last request`,
        ],
        [
          "time to Active (requested → active)",
          `median ${seconds(median.ms)}, longest ${seconds(longest.ms)} (${longest.name})`,
        ],
        [
          `  ${longest.name}'s trail`,
          (trails.get(longest.name) ?? []).map((e) => `${e.type} ${rel(Date.parse(e.time))}`).join(", "),
        ],
        [
          "NB rows",
          `${ownedRows.length} owned (${accepted.length} mirrors), 0 orphans, 0 keys reused per sink`,
        ],
        [
          "bound to the lab chassis",
          `${boundRows.length} rows = ${ovsMirrors.length} OVS mirrors on br-int (limit ${MAX_MIRRORS_PER_BRIDGE}), ${wanted.size}/${wanted.size} keys seen at the sink`,
        ],
        [
          "audit trail",
          `${[...trails.values()].reduce((n, t) => n + t.length, 0)} events, ${trails.size}/${accepted.length} complete, 0 ids twice; beyond the sequence: ${[...extra].map(([t, c]) => `${t} ×${c}`).join(", ") || "nothing else"}`,
        ],
        ["delete all", `${deletes.length} deletes → NB and store empty in ${seconds(cleaned - deleting)}`],
        ["wall time", seconds(Date.now() - began)],
      ];
      for (const r of repeated) {
        figures.push([
          `  ${r.mirror}'s trail`,
          r.trail.map((e) => `${e.type} ${rel(Date.parse(e.time))} [${e.eventId}]`).join(", "),
        ]);
      }
      const width = Math.max(...figures.map(([k]) => k.length));
      console.log(
        `\nlifecycle under faults\n${figures.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join("\n")}\n`,
      );
    },
  );
});
