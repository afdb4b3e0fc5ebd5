/**
 * The whole pipeline under faults, on the lab with every service as its own process (intake,
 * ovn-applier, node-agent, capture-exporter, and any other service the lab runs): a steady load
 * of creates and deletes over NATS, and a live capture — a `collector` mirror of pod-a (both
 * directions) while pod-a pings pod-b ten times a second, its batches read on
 * `ovntap.v1.capture.default.tap.<node>` as any consumer reads them. Then, one at a time, with the load running:
 *
 *   - every service the lab runs is killed with SIGKILL and started again SERVICE_DOWN_MS later
 *     (a crash, and the supervisor's restart);
 *   - nats-server (JetStream on its file store), redis-server (append-only file, fsync every
 *     second: the lab's default) and the NB ovsdb-server are stopped and started again
 *     SERVER_DOWN_MS later on the same files and port.
 *
 * After each fault the capture must resume and every request sent before the fault ended must
 * converge before the next fault. At the end: every accepted mirror in its final phase (Active,
 * or gone after Deleted), no orphaned or unreferenced NB Mirror row, OVS carrying exactly the
 * live mirrors, a complete audit trail per mirror in OVNTAP_EVENTS (each request's `requested` and
 * `accepted` once, the lifecycle in order, no eventId twice); then every mirror deleted and NB,
 * OVS and the store clean. Prints the figures table.
 *
 * What is measured, per fault, from the moment the faulted component reports ready again (a
 * service's readiness check, a server listening), so that a slow start on a busy machine is not
 * counted as the pipeline's recovery:
 *   - resume: until the subscriber receives a packet *captured* after that moment (not one a
 *     queue held through the fault);
 *   - hole: the longest stretch without a captured packet around the fault (for the exporter's
 *     own crash this is its whole absence, start-up included);
 *   - convergence: until every mirror whose request was sent before that moment is in the phase
 *     its last request asks for (store polled every POLL_MS).
 * "Capture resumes" is asserted with RESUME_DEADLINE_MS; the issue's target, resume ≤ 5 s, is
 * then checked as an expect on the measured figure, printed first.
 *
 * The load's mirrors mirror pods of the same logical switch bound to no chassis (pods of other
 * nodes, in a cluster), as in lifecycle-faults: OVS keeps at most 32 mirrors per bridge
 * (MAX_MIRRORS_PER_BRIDGE), and br-int carries only the capture mirror and at most
 * OVS_MIRRORS_MAX `ovs` mirrors of pod-b's port (the node agent's work: an OVS Mirror and a GRE
 * tunnel port each, pod-b's MTU lowered for the GRE overhead as the agent's preflight asks).
 *
 * Requests are retried under the same requestId until intake answers (no responder, a timeout,
 * UNAVAILABLE), as a client does; intake's dedupe makes that safe, and the trail checks it.
 * FAULT_SEED=<n> replays the mix of requests (not their timing); FAULT_ROUNDS=<n> injects the
 * whole fault sequence n times; OVNTAP_KEEP_LAB=1 leaves the lab up afterwards.
 */
import { randomUUID } from "node:crypto";
import { type NatsConnection, connect } from "@nats-io/transport-node";
import {
  type AuditRecord,
  captureSubject,
  EVENTS_STREAM,
  MAX_MIRRORS_PER_BRIDGE,
  type MirrorSpec,
  reqSubject,
} from "@ovntap/contracts";
import {
  type Lab,
  type LabServerName,
  makeTempDir,
  readText,
  run,
  sleep,
  startLab,
  waitFor,
} from "@ovntap/lab";
import { createStore, type Store, type StoredMirror } from "@ovntap/store";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Answer,
  CaptureWatch,
  faultSeed,
  formatFigures,
  formatTable,
  prng,
  requestUntilAnswered,
  steadyPing,
  stopLabUnlessKept,
  streamRecords,
} from "../support/faults.js";
import { nbctlRows, nbSchemaHasBothFilter, seconds, vsctlRows, writePolicy } from "../support/harness.js";

const NS = "default";
const CAPTURE_MIRROR = "tap";
/** One request every this often, all through the run. */
const OP_INTERVAL_MS = 300;
/** Mirrors alive (created, not deleted): below LOW only creates, at HIGH only deletes. */
const ALIVE_LOW = 12;
const ALIVE_HIGH = 28;
/** Share of creates that are `ovs` mirrors of pod-b's port, at most OVS_MIRRORS_MAX alive at once. */
const OVS_SHARE = 0.15;
const OVS_MIRRORS_MAX = 3;
/** Pods in NB that no chassis binds. */
const REMOTE_PODS = 12;
/** Requests sent at once just before each fault, and how long before it (a random lead in [MIN, MAX]). */
const BURST = 6;
const BURST_LEAD_MIN_MS = 5;
const BURST_LEAD_MAX_MS = 150;
const SERVICE_DOWN_MS = 1_000;
const SERVER_DOWN_MS = 2_000;
const WARMUP_MS = 4_000;
/** At least this long between a fault's end and the next fault. */
const FAULT_SPACING_MS = 3_000;
/** Load after the last fault. */
const TAIL_MS = 3_000;
const RESUME_DEADLINE_MS = 60_000;
/** The issue's acceptance criterion: capture resumes within 5 s after each fault. */
const RESUME_TARGET_MS = 5_000;
/**
 * Generous on purpose: a job a killed applier (or agent) had taken stays `active` in BullMQ
 * until its lock (LOCK_TTL_MS / JOB_LOCK_MS, 15 s) lapses and the stalled-job check hands it
 * back, and the mirror's own Redis lock lapses with it.
 */
const CONVERGE_DEADLINE_MS = 120_000;
const POLL_MS = 250;
const ANSWER = { timeoutMs: 3_000, retryMs: 250, deadlineMs: 90_000 };
const ROUNDS = Math.max(1, Number(process.env.FAULT_ROUNDS ?? 1));
const SERVERS: readonly { name: LabServerName; label: string }[] = [
  { name: "nats", label: "restart nats-server" },
  { name: "redis", label: "restart redis-server" },
  { name: "nb", label: "restart NB ovsdb-server" },
];

interface Op {
  kind: "create" | "delete";
  requestId: string;
  issuedAt: number;
  answer?: Answer;
}

interface Tracked {
  name: string;
  spec: MirrorSpec;
  ovs: boolean;
  /** Logical switch ports (OVN mirrors) the rows must be attached to. */
  ports: string[];
  create: Op;
  del?: Op;
  /** First poll that saw it Active at its generation, not being deleted. */
  activeAt?: number;
  /** First poll after its delete was sent that found no record. */
  goneAt?: number;
}

interface FaultRun {
  label: string;
  startedAt: number;
  /** When the component was started again. */
  restartAt: number;
  /** When it reported ready (a service) or listened (a server): the fault's end. */
  endedAt: number;
  resumeMs?: number;
  holeMs?: number;
  convergeMs?: number;
  /** Mirrors whose requests were sent before the end. */
  cohort?: number;
  /** Mirrors whose requests were not yet carried out (not in their final phase) when the fault began. */
  unsettled: number;
}

const bothAsOneRow = nbSchemaHasBothFilter();
const rowNames = (name: string, direction: MirrorSpec["direction"]) =>
  direction === "both" && !bothAsOneRow
    ? [`ovntap.${NS}.${name}.in`, `ovntap.${NS}.${name}.out`]
    : [`ovntap.${NS}.${name}`];
const ok = (op: Op | undefined) => op?.answer?.reply?.ok === true;
const STATE_EVENTS: readonly string[] = [
  "applying",
  "applied",
  "active",
  "degraded",
  "failed",
  "deleted",
  "expired",
];

let lab: Lab;
let dir: string;
let nc: NatsConnection;
let redis: Redis;
let store: Store;
let watch: CaptureWatch;
let ping: { stop(): Promise<void> } | undefined;
let tap: Tracked;

/** The store as the last poll saw it, by mirror name (undefined while Redis was away). */
let lastSeen = new Map<string, StoredMirror>();

beforeAll(async () => {
  dir = makeTempDir("ovntap-pipeline-faults-");
  const policy = writePolicy(dir, {
    trustRequestPrincipal: true,
    maxActiveMirrors: 1_000,
    allowedSinkCidrs: ["198.51.100.0/24"],
    rules: [{ principals: ["*"], namespaces: ["*"], ops: ["*"], allowOvsSources: true }],
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
  // Headroom for GRE on pod-b's port (the transport br-ul has MTU 1500, GRE with a key adds 42).
  await run("ip", ["-n", lab.nodeNs, "link", "set", lab.env.LAB_POD_B_PORT, "mtu", "1400"]);
  await run("ip", ["-n", lab.env.LAB_POD_B_NS, "link", "set", "eth0", "mtu", "1400"]);
  await waitFor(
    async () => (await lab.vsctl("get", "Interface", lab.env.LAB_POD_B_PORT, "mtu")).trim() === "1400",
    { what: "OVS to see pod-b's port at MTU 1400" },
  );

  // The test's own client reconnects at once and forever, as a consumer that must not miss much.
  nc = await connect({
    servers: lab.env.NATS_URL,
    name: "pipeline-faults",
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
    reconnectJitter: 50,
  });
  redis = new Redis(lab.env.REDIS_URL);
  redis.on("error", () => undefined); // reconnects by itself while redis-server restarts
  store = createStore({ redis });

  // The live capture: a collector mirror of pod-a, traffic, and a subscriber.
  const spec: MirrorSpec = {
    name: CAPTURE_MIRROR,
    namespace: NS,
    sources: { type: "pods", names: ["pod-a"] },
    direction: "both",
    target: { type: "collector" },
    ttlSeconds: 3_600,
  };
  const create: Op = { kind: "create", requestId: randomUUID(), issuedAt: Date.now() };
  create.answer = await requestUntilAnswered(
    nc,
    reqSubject(NS),
    { requestId: create.requestId, principal: "fault-test", op: "create", spec },
    ANSWER,
  );
  expect(create.answer.reply, create.answer.error).toMatchObject({ ok: true });
  tap = { name: CAPTURE_MIRROR, spec, ovs: false, ports: [`pod-a.${NS}`], create };
  await waitFor(
    async () => {
      const m = await store.getMirror(NS, CAPTURE_MIRROR);
      return m?.status.phase === "Active" && m.status.observedGeneration === m.record.generation;
    },
    { what: "the capture mirror to be Active", timeoutMs: 60_000, intervalMs: 100 },
  );
  tap.activeAt = Date.now();
  watch = CaptureWatch.start(nc, captureSubject(NS, CAPTURE_MIRROR, lab.env.LAB_NODE));
  await nc.flush();
  ping = steadyPing(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP);
  await watch.resumedAfter(Date.now(), 30_000);
}, 240_000);

afterAll(async () => {
  await ping?.stop();
  await watch?.stop();
  await nc?.close();
  redis?.disconnect();
  await stopLabUnlessKept(lab, dir);
});

describe("the pipeline under faults", () => {
  it(
    "converges and keeps capturing through a crash of every service and restarts of NATS, Redis and NB",
    { timeout: 900_000 },
    async () => {
      const began = Date.now();
      const seed = faultSeed();
      const random = prng(seed);
      const sink = lab.env.LAB_SINK_IP;
      const node = lab.env.LAB_NODE;
      const subject = reqSubject(NS);
      const vswitchdLog = `${lab.dir}/ovs-vswitchd.log`;
      const vswitchdLogFrom = readText(vswitchdLog).length;
      const tracked: Tracked[] = [];
      const runs: FaultRun[] = [];
      const figures: [string, string][] = [["seed", String(seed)]];
      const t0 = Date.now();
      const rel = (t: number) => seconds(t - t0);

      // ---- The store, polled: when each mirror first reached the phase its requests ask for.
      let polling = true;
      const poller = (async () => {
        while (polling) {
          try {
            const mirrors = await store.listMirrors(NS);
            const now = Date.now();
            lastSeen = new Map(mirrors.map((m) => [m.record.spec.name, m]));
            for (const t of tracked) {
              const m = lastSeen.get(t.name);
              if (
                m &&
                !m.deleting &&
                m.status.phase === "Active" &&
                m.status.observedGeneration === m.record.generation
              )
                t.activeAt ??= now;
              if (!m && t.del) t.goneAt ??= now;
            }
          } catch {
            // redis-server is restarting: the next poll catches up.
          }
          await sleep(POLL_MS);
        }
      })();

      /**
       * When a mirror reached what the requests sent before `end` ask for: gone if its delete
       * was sent by then, else Active (or gone, when a later delete overtook its create).
       * `null`: a request that was refused or never answered (reported at the end).
       */
      const settledAt = (t: Tracked, end: number): number | undefined | null => {
        if (t.del && t.del.issuedAt < end) return t.del.answer && !ok(t.del) ? null : t.goneAt;
        if (t.create.answer && !ok(t.create)) return null;
        return t.activeAt ?? (t.del ? t.goneAt : undefined);
      };
      const cohortOf = (end: number) => tracked.filter((t) => t.create.issuedAt < end);
      const describeMirror = (t: Tracked) => {
        const m = lastSeen.get(t.name);
        return `${t.name}${t.del ? " (deleted)" : ""}: ${m ? `${m.status.phase}${m.deleting ? " deleting" : ""} ${"reason" in m.status ? m.status.reason : ""}` : "no record"}`;
      };
      /** Waits until everything sent before `end` settled; resolves with the last settle time. */
      const converged = async (end: number, deadlineMs: number) => {
        try {
          return await waitFor(
            () => {
              let last = end;
              for (const t of cohortOf(end)) {
                const at = settledAt(t, end);
                if (at === undefined) return undefined;
                if (at !== null) last = Math.max(last, at);
              }
              return last;
            },
            { what: "the mirrors to converge", timeoutMs: deadlineMs, intervalMs: POLL_MS },
          );
        } catch (err) {
          const stuck = cohortOf(end).filter((t) => settledAt(t, end) === undefined);
          throw new Error(
            `${stuck.length} mirrors not converged ${seconds(deadlineMs)} after ${rel(end)}: ${stuck.map(describeMirror).join("; ")}`,
            { cause: err },
          );
        }
      };

      // ---- The load: one request every OP_INTERVAL_MS; each is retried until intake answers.
      const inFlight: Promise<void>[] = [];
      const send = (op: Op, body: Record<string, unknown>) =>
        inFlight.push(
          requestUntilAnswered(
            nc,
            subject,
            { requestId: op.requestId, principal: "fault-test", op: op.kind, ...body },
            ANSWER,
          ).then((a) => void (op.answer = a)),
        );
      let creates = 0;
      const aliveOvs = () => tracked.filter((t) => t.ovs && !t.del).length;
      const createOne = (kind?: "ovs") => {
        const ovs = (kind === "ovs" || random() < OVS_SHARE) && aliveOvs() < OVS_MIRRORS_MAX;
        const direction = (["egress", "ingress", "both"] as const)[Math.floor(random() * 3)]!;
        const name = `m${String(creates++).padStart(4, "0")}`;
        const pods = [`pod-r${Math.floor(random() * REMOTE_PODS)}`];
        if (random() < 0.2) pods.push(`pod-r${(Number(pods[0]!.slice(5)) + 5) % REMOTE_PODS}`);
        const spec: MirrorSpec = ovs
          ? {
              name,
              namespace: NS,
              sources: { type: "ovs", node, bridge: "br-int", ports: [lab.env.LAB_POD_B_PORT] },
              direction,
              target: { type: "gre", sink },
              ttlSeconds: 3_600,
            }
          : {
              name,
              namespace: NS,
              sources: { type: "pods", names: pods },
              direction,
              target: random() < 0.5 ? { type: "erspan", sink } : { type: "gre", sink },
              ttlSeconds: 3_600,
            };
        const create: Op = { kind: "create", requestId: randomUUID(), issuedAt: Date.now() };
        tracked.push({ name, spec, ovs, ports: ovs ? [] : pods.map((p) => `${p}.${NS}`), create });
        send(create, { spec });
      };
      const deleteOne = (t: Tracked) => {
        t.del = { kind: "delete", requestId: randomUUID(), issuedAt: Date.now() };
        send(t.del, { namespace: NS, name: t.name });
      };
      const deletable = () => tracked.filter((t) => !t.del && ok(t.create));
      /** One request of the steady load: a create, or a delete of an accepted mirror. */
      const step = () => {
        const alive = tracked.filter((t) => !t.del).length;
        const candidates = deletable();
        const wantDelete = alive >= ALIVE_HIGH || (alive > ALIVE_LOW && random() < 0.5);
        if (wantDelete && candidates.length > 0)
          deleteOne(candidates[Math.floor(random() * candidates.length)]!);
        else createOne();
      };
      /**
       * A burst just before a fault, so that it lands on work in flight (requests inside intake,
       * jobs inside the applier or the agent) rather than between two requests. Before the agent's
       * crash, the burst is its kind of work: its ovs mirrors deleted and new ones created.
       */
      const burst = (service?: string) => {
        if (service === "node-agent") {
          for (const t of deletable().filter((d) => d.ovs)) deleteOne(t);
          while (aliveOvs() < OVS_MIRRORS_MAX) createOne("ovs");
        } else {
          for (let i = 0; i < BURST; i++) step();
        }
      };
      let loading = true;
      const load = (async () => {
        const from = Date.now();
        for (let k = 0; loading; k++) {
          await sleep(Math.max(0, from + k * OP_INTERVAL_MS - Date.now()));
          if (loading) step();
        }
      })();

      let loadEnded = 0;
      try {
        try {
          await sleep(WARMUP_MS);

          // ---- The faults, one at a time.
          const services = lab
            .services()
            .map((s) => s.name)
            .sort();
          const faults = [
            ...services.map((name) => ({ label: `kill -9 ${name}`, service: name })),
            ...SERVERS.map((s) => ({ label: s.label, server: s.name })),
          ];
          for (let round = 0; round < ROUNDS; round++) {
            for (const f of faults) {
              burst("service" in f ? f.service : undefined);
              await sleep(BURST_LEAD_MIN_MS + random() * (BURST_LEAD_MAX_MS - BURST_LEAD_MIN_MS));
              const startedAt = Date.now();
              const unsettled = cohortOf(startedAt).filter(
                (t) => settledAt(t, startedAt) === undefined,
              ).length;
              let restartAt: number;
              if ("service" in f) {
                await lab.killService(f.service, "SIGKILL");
                await sleep(SERVICE_DOWN_MS);
                restartAt = Date.now();
                await lab.startService(f.service); // resolves once /readyz answers 200
              } else {
                await lab.stopServer(f.server);
                await sleep(SERVER_DOWN_MS);
                restartAt = Date.now();
                await lab.startServer(f.server); // resolves once it listens
              }
              const r: FaultRun = { label: f.label, startedAt, restartAt, endedAt: Date.now(), unsettled };
              runs.push(r);
              const [first, settled] = await Promise.all([
                watch.resumedAfter(r.endedAt, RESUME_DEADLINE_MS),
                converged(r.endedAt, CONVERGE_DEADLINE_MS),
              ]);
              r.resumeMs = first.receivedMs - r.endedAt;
              r.holeMs = watch.longestHole(r.startedAt - 1_000, first.capturedMs);
              r.convergeMs = settled - r.endedAt;
              r.cohort = cohortOf(r.endedAt).length;
              await sleep(Math.max(0, r.endedAt + FAULT_SPACING_MS - Date.now()));
            }
          }
          await sleep(TAIL_MS);
        } finally {
          loading = false;
          await load;
          await Promise.all(inFlight);
          loadEnded = Date.now();
        }

        // ---- Every request answered, none refused.
        const ops = tracked.flatMap((t) => (t.del ? [t.create, t.del] : [t.create]));
        expect(
          ops.filter((o) => !ok(o)).map((o) => [o.kind, o.requestId, o.answer?.error ?? o.answer?.reply]),
        ).toEqual([]);

        // ---- Every mirror in its final phase.
        await converged(loadEnded, CONVERGE_DEADLINE_MS);
        const alive = [tap, ...tracked.filter((t) => !t.del)];
        const deleted = tracked.filter((t) => t.del);
        const stored = await store.listMirrors(NS);
        expect(stored.map((m) => m.record.spec.name).sort()).toEqual(alive.map((t) => t.name).sort());
        expect(
          stored
            .filter(
              (m) =>
                m.deleting ||
                m.status.phase !== "Active" ||
                m.status.observedGeneration !== m.record.generation,
            )
            .map((m) => `${m.record.spec.name} ${m.status.phase}`),
        ).toEqual([]);
        // Request to final phase, per request: a create to Active (unless a delete overtook it), a delete to gone.
        const spans = tracked
          .flatMap((t) => [
            ...(t.activeAt !== undefined ? [t.activeAt - t.create.issuedAt] : []),
            ...(t.del && t.goneAt !== undefined ? [t.goneAt - t.del.issuedAt] : []),
          ])
          .sort((a, b) => a - b);
        const longest = runs.reduce((a, b) => ((b.convergeMs ?? 0) > (a.convergeMs ?? 0) ? b : a), runs[0]!);
        figures.push(
          [
            "mirrors converged",
            `${alive.length}/${alive.length} Active (the capture mirror and ${alive.length - 1} of the load), ${deleted.length}/${deleted.length} Deleted; request → final phase: median ${seconds(spans[Math.floor(spans.length / 2)] ?? 0)}, longest ${seconds(spans[spans.length - 1] ?? 0)}`,
          ],
          [
            "longest convergence",
            `${seconds(longest.convergeMs ?? 0)} after ${longest.label} (${longest.cohort} mirrors sent before it ended)`,
          ],
        );

        // ---- NB: each live OVN mirror's rows, attached where they should be; nothing else.
        const rows = await nbctlRows(lab, "Mirror");
        const lsps = await nbctlRows(lab, "Logical_Switch_Port", ["name", "mirror_rules"]);
        const owner = (r: Record<string, unknown>) =>
          (r.external_ids as Record<string, string>)["ovntap/mirror"];
        const referenced = new Set(lsps.flatMap((p) => p.mirror_rules as string[]));
        const live = new Set(stored.map((m) => `${NS}/${m.record.spec.name}`));
        expect(rows.filter((r) => !owner(r) || !live.has(owner(r)!)).map((r) => [r.name, owner(r)])).toEqual(
          [],
        );
        expect(rows.filter((r) => !referenced.has(r._uuid as string)).map((r) => r.name)).toEqual([]);
        const wrong: unknown[] = [];
        for (const t of alive.filter((a) => !a.ovs)) {
          const mine = rows.filter((r) => owner(r) === `${NS}/${t.name}`);
          const attachedTo = (uuid: unknown) =>
            lsps
              .filter((p) => (p.mirror_rules as string[]).includes(uuid as string))
              .map((p) => String(p.name))
              .sort();
          if (
            JSON.stringify(mine.map((r) => String(r.name)).sort()) !==
              JSON.stringify(rowNames(t.name, t.spec.direction)) ||
            mine.some((r) => JSON.stringify(attachedTo(r._uuid)) !== JSON.stringify([...t.ports].sort()))
          )
            wrong.push({
              mirror: t.name,
              rows: mine.map((r) => [r.name, attachedTo(r._uuid)]),
              ports: t.ports,
            });
        }
        expect(wrong).toEqual([]);
        expect(rows.filter((r) => alive.some((t) => t.ovs && owner(r) === `${NS}/${t.name}`))).toEqual([]);
        const keys = rows.map((r) => `${String(r.sink)}/${String(r.type)}/${Number(r.index)}`);
        expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);

        // ---- OVS: the capture mirror's rows (ovn-controller's) and the live ovs mirrors (the agent's), nothing else.
        const liveOvs = alive.filter((t) => t.ovs).map((t) => `ovntap.${NS}.${t.name}`);
        const ovsMirrors = (await vsctlRows(lab, "Mirror", ["name"])).map((r) => String(r.name)).sort();
        expect(ovsMirrors).toEqual([...rowNames(CAPTURE_MIRROR, "both"), ...liveOvs].sort());
        expect(ovsMirrors.length).toBeLessThanOrEqual(MAX_MIRRORS_PER_BRIDGE);
        const agentPorts = (await vsctlRows(lab, "Port", ["name", "external_ids"]))
          .filter((p) => {
            const ids = p.external_ids as Record<string, string>;
            return ids["ovntap/mirror"] && !ids["ovntap/revalidate"];
          })
          .map((p) => String(p.name))
          .sort();
        expect(agentPorts).toEqual([...liveOvs].sort());
        expect(readText(vswitchdLog).slice(vswitchdLogFrom)).not.toMatch(
          /maximum of \d+ port mirrors reached/,
        );
        figures.push([
          "NB and OVS",
          `${rows.length} NB Mirror rows for ${alive.length - liveOvs.length} OVN mirrors, 0 orphaned, 0 unreferenced, 0 keys reused; ${ovsMirrors.length} OVS mirrors on br-int (${liveOvs.length} ovs mirrors, limit ${MAX_MIRRORS_PER_BRIDGE})`,
        ]);

        // ---- The audit trail: every request's events once, each mirror's lifecycle in order.
        const records = await streamRecords(nc, EVENTS_STREAM, `ovntap.v1.events.${NS}.>`);
        const ids = new Map<string, number>();
        for (const e of records) ids.set(e.eventId, (ids.get(e.eventId) ?? 0) + 1);
        expect([...ids].filter(([, n]) => n > 1)).toEqual([]);
        const trails = new Map<string, AuditRecord[]>();
        for (const e of records) trails.set(e.mirror, [...(trails.get(e.mirror) ?? []), e]);
        const broken: unknown[] = [];
        const extra = new Map<string, number>();
        for (const t of [tap, ...tracked]) {
          const trail = trails.get(t.name) ?? [];
          const types: string[] = trail.map((e) => e.type);
          const problems: string[] = [];
          for (const op of t.del ? [t.create, t.del] : [t.create]) {
            const mine = trail.filter((e) => e.requestId === op.requestId).map((e) => e.type);
            const requested = mine.filter((x) => x === "requested").length;
            const accepted = mine.filter((x) => x === "accepted").length;
            if (requested !== 1 || accepted !== 1 || mine.indexOf("requested") > mine.indexOf("accepted"))
              problems.push(`${op.kind}: requested ×${requested}, accepted ×${accepted}`);
          }
          // The create's lifecycle in order, when it got that far before a delete overtook it.
          const at = (type: string, from = 0) => types.indexOf(type, from);
          if (t.activeAt !== undefined) {
            const lifecycle = ["requested", "accepted", "applying", "applied", "active"];
            const missing = lifecycle.filter((x) => at(x) < 0);
            const seq = lifecycle.map((x) => at(x));
            if (missing.length) problems.push(`create lifecycle without ${missing.join(", ")}`);
            else if (seq.some((x, i) => i > 0 && x < seq[i - 1]!))
              problems.push("create lifecycle out of order");
          }
          const states = types.filter((x) => STATE_EVENTS.includes(x));
          if (t.del) {
            const acceptedDelete = trail.findIndex(
              (e) => e.requestId === t.del!.requestId && e.type === "accepted",
            );
            if (at("deleted", acceptedDelete) < 0) problems.push("no deleted after the delete's accepted");
            if (states[states.length - 1] !== "deleted")
              problems.push(`last state event ${states[states.length - 1]}`);
          } else if (states[states.length - 1] !== "active") {
            problems.push(`last state event ${states[states.length - 1]}`);
          }
          if (problems.length)
            broken.push({
              mirror: t.name,
              problems,
              trail: trail.map((e) => `${e.type} ${rel(Date.parse(e.time))} g${e.generation} [${e.eventId}]`),
            });
          // Beyond one requested/accepted per request and one of each lifecycle step: retries, repairs.
          const expected = new Map([
            ["requested", t.del ? 2 : 1],
            ["accepted", t.del ? 2 : 1],
            ["applying", 1],
            ["applied", 1],
            ["active", 1],
            ["deleted", 1],
          ]);
          for (const x of types) {
            const left = expected.get(x) ?? 0;
            if (left > 0) expected.set(x, left - 1);
            else extra.set(x, (extra.get(x) ?? 0) + 1);
          }
        }
        expect(broken).toEqual([]);
        figures.push([
          "audit trail",
          `${records.length} events for ${tracked.length + 1} mirrors, 0 ids twice, every request's requested/accepted once, every lifecycle in order; beyond it: ${[...extra].map(([k, v]) => `${k} ×${v}`).join(", ") || "nothing"}`,
        ]);

        // ---- Capture over the run.
        figures.push([
          "capture",
          `${watch.packets.length} packets in ${watch.batches.length} batches from ${watch.runs()} exporter runs; batches lost by sequence ${watch.lostBatches()}, drops reported ${watch.batches.reduce((n, b) => n + b.drops, 0)}`,
        ]);
        expect(watch.invalid).toEqual([]);

        // ---- Everything deleted: NB, OVS and the store clean.
        const deleting = Date.now();
        const deletes = await Promise.all(
          alive.map((t) =>
            requestUntilAnswered(
              nc,
              subject,
              { requestId: randomUUID(), principal: "fault-test", op: "delete", namespace: NS, name: t.name },
              ANSWER,
            ),
          ),
        );
        expect(deletes.filter((d) => d.reply?.ok !== true)).toEqual([]);
        await waitFor(
          async () =>
            (await store.listMirrors(NS)).length === 0 &&
            (await nbctlRows(lab, "Mirror", ["name"])).length === 0 &&
            (await vsctlRows(lab, "Mirror", ["name"])).length === 0,
          { what: "the store, NB and OVS to be empty of mirrors", timeoutMs: 120_000, intervalMs: 500 },
        );
        expect(
          (await nbctlRows(lab, "Logical_Switch_Port", ["mirror_rules"])).every(
            (p) => (p.mirror_rules as string[]).length === 0,
          ),
        ).toBe(true);
        expect(
          (await vsctlRows(lab, "Port", ["name", "external_ids"])).filter(
            (p) => (p.external_ids as Record<string, string>)["ovntap/mirror"],
          ),
        ).toEqual([]);
        figures.push([
          "delete all",
          `${deletes.length} deletes → store, NB and OVS empty in ${seconds(Date.now() - deleting)}`,
        ]);
      } finally {
        polling = false;
        await poller;
        const ops = tracked.flatMap((t) => (t.del ? [t.create, t.del] : [t.create]));
        const retries = new Map<string, number>();
        for (const op of ops)
          for (const why of op.answer?.retries ?? []) retries.set(why, (retries.get(why) ?? 0) + 1);
        figures.splice(
          1,
          0,
          [
            "faults injected",
            `${runs.length}: ${[...new Set(runs.map((r) => r.label))].join(", ")} (services down ${seconds(SERVICE_DOWN_MS)}, servers ${seconds(SERVER_DOWN_MS)})`,
          ],
          [
            "requests",
            `${ops.length} over ${seconds((loadEnded || Date.now()) - t0)} (${ops.filter((o) => o.kind === "create").length} creates, ${ops.filter((o) => o.kind === "delete").length} deletes, ${tracked.filter((t) => t.ovs).length} of the creates ovs mirrors); ${ops.filter(ok).length} accepted; sent again under the same requestId: ${[...retries].map(([k, v]) => `${k} ×${v}`).join(", ") || "never"}`,
          ],
        );
        const kinds = [...new Set(runs.map((r) => r.label))];
        const worst = (label: string, key: "resumeMs" | "holeMs" | "convergeMs") => {
          const values = runs.filter((r) => r.label === label).map((r) => r[key]);
          return values.some((v) => v === undefined) ? "—" : seconds(Math.max(...(values as number[])));
        };
        const table = formatTable(
          ["fault", "at", "in flight", "ready after", "resumed", "hole", "converged", "of mirrors"],
          kinds.map((label) => {
            const rs = runs.filter((r) => r.label === label);
            return [
              label,
              rs.map((r) => rel(r.startedAt)).join(", "),
              String(Math.max(...rs.map((r) => r.unsettled))),
              seconds(Math.max(...rs.map((r) => r.endedAt - r.restartAt))),
              worst(label, "resumeMs"),
              worst(label, "holeMs"),
              worst(label, "convergeMs"),
              String(Math.max(...rs.map((r) => r.cohort ?? 0))),
            ];
          }),
        );
        figures.push(
          ...table.map((line, i): [string, string] => [i === 0 ? "per fault (worst of rounds)" : "", line]),
          ...[
            "in flight: mirrors whose requests were being carried out when the fault began",
            "ready after: from the restart to ready (a service) or listening (a server)",
            "resumed: from ready until a packet captured after it is received",
            "hole: the longest stretch without a captured packet around the fault",
            "converged: from ready until every mirror requested before it (of mirrors) is in its final phase",
          ].map((legend): [string, string] => ["", `  ${legend}`]),
        );
        figures.push(["wall time", seconds(Date.now() - began)]);
        console.log(formatFigures("pipeline under faults", figures));
      }

      // The issue's target, on the measured figures (printed above): capture resumes within 5 s
      // of the faulted component being ready again.
      for (const r of runs)
        expect(r.resumeMs, `capture resumed after ${r.label}`).toBeLessThanOrEqual(RESUME_TARGET_MS);
    },
  );
});
