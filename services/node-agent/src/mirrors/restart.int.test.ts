/**
 * The agent SIGKILLed in the middle of a job: its OVS transaction committed, ovs-vswitchd not yet
 * caught up (stopped with SIGSTOP, so the job waits for it), the process killed. Restarted, the
 * job comes back from BullMQ (its lock lapses) and completes, with exactly one set of rows and no
 * transient port left behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { Queue } from "bullmq";
import { mirrorJobId, MirrorSpec, nodeQueue, type NodeApplyJob } from "@ovntap/contracts";
import { startLab, waitFor, type Lab } from "@ovntap/lab";
import { connectRedis, createLogger, type RedisClient } from "@ovntap/runtime";
import { createStore, requestHash, type Store } from "@ovntap/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const main = join(import.meta.dirname, "..", "main.ts");
const logger = createLogger({ name: "node-agent-test", level: "silent" });
const runId = randomUUID().slice(0, 8);
const storePrefix = `{nar-${runId}}`;
const bullmqPrefix = `bull-nar-${runId}`;

let lab: Lab;
let redis: RedisClient;
let store: Store;
let producer: Queue<NodeApplyJob>;
const children: ChildProcess[] = [];

function startAgent(): { child: ChildProcess; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const child = spawn(process.execPath, ["--conditions=@ovntap/source", "--import", "tsx", main], {
    cwd: import.meta.dirname,
    env: {
      ...process.env,
      NODE_NAME: lab.env.LAB_NODE,
      NODE_NETNS: lab.nodeNs,
      OVS_DB: lab.env.OVS_DB,
      NATS_URL: lab.env.NATS_URL,
      REDIS_URL: lab.env.REDIS_URL,
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: "0",
      LOG_LEVEL: "info",
      STORE_PREFIX: storePrefix,
      BULLMQ_PREFIX: bullmqPrefix,
      JOB_LOCK_MS: "3000",
      VSWITCHD_TIMEOUT_MS: "120000",
      // The job, not the start-up resync, is what this test follows.
      RESYNC_INTERVAL_MS: "600000",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
    let nl: number;
    while ((nl = out.indexOf("\n")) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  children.push(child);
  return { child, lines };
}

const exited = (c: ChildProcess) =>
  new Promise<void>((resolve) =>
    c.exitCode !== null || c.signalCode !== null ? resolve() : c.on("exit", () => resolve()),
  );

beforeAll(async () => {
  lab = await startLab({ services: false });
  redis = await connectRedis({ url: lab.env.REDIS_URL, logger, role: "client" });
  store = createStore({ redis: redis.redis, prefix: storePrefix });
  producer = new Queue<NodeApplyJob>(nodeQueue(lab.env.LAB_NODE), {
    connection: redis.redis,
    prefix: bullmqPrefix,
  });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  const vswitchd = lab?.state().pids.find((p) => p.name === "ovs-vswitchd.out");
  if (vswitchd) process.kill(vswitchd.pid, "SIGCONT");
  await producer?.close();
  await redis?.close();
  await lab?.stop();
});

async function ownedRows(table: "Mirror" | "Port", key: string, value: string): Promise<string[]> {
  const out = await lab.vsctl("--bare", "--columns=name", "find", table, `external_ids:${key}=${value}`);
  return out
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
}

describe("agent killed mid-job", () => {
  it("completes the job after a restart, with no duplicate rows", async () => {
    const node = lab.env.LAB_NODE;
    const first = startAgent();
    await waitFor(() => first.lines.find((l) => l.msg === "node-agent listening"), {
      what: "agent up",
      timeoutMs: 60_000,
    });

    const vswitchd = lab.state().pids.find((p) => p.name === "ovs-vswitchd.out");
    if (!vswitchd) throw new Error("no ovs-vswitchd in the lab");
    process.kill(vswitchd.pid, "SIGSTOP");

    const spec = MirrorSpec.parse({
      name: "survivor",
      namespace: "default",
      direction: "both",
      sources: { type: "ovs", node, bridge: "br-int", ports: [lab.env.LAB_POD_A_PORT] },
      target: { type: "ovsVlan", node, bridge: "br-int", vlan: 100 },
    });
    const r = await store.applyCreate({
      spec,
      owner: "alice",
      requestId: randomUUID(),
      requestHash: requestHash({ op: "create", spec }),
    });
    if (r.type !== "created") throw new Error(r.type);
    const job: NodeApplyJob = {
      namespace: "default",
      name: "survivor",
      generation: r.record.generation,
      reason: "create",
      node,
    };
    const jobId = mirrorJobId(job);
    await producer.add("apply", job, { jobId, attempts: 5 });

    // Committed to OVSDB, waiting for the stopped ovs-vswitchd: mid-job.
    await waitFor(async () => (await ownedRows("Mirror", "ovntap/mirror", "default/survivor")).length === 1, {
      what: "the mirror row committed",
    });
    expect(await (await producer.getJob(jobId))?.getState()).toBe("active");
    first.child.kill("SIGKILL");
    await exited(first.child);
    process.kill(vswitchd.pid, "SIGCONT");
    // The killed agent left its transient revalidation port behind.
    expect(await ownedRows("Port", "ovntap/revalidate", node)).toHaveLength(1);

    const second = startAgent();
    await waitFor(async () => (await (await producer.getJob(jobId))?.getState()) === "completed", {
      what: "the job completed after the restart",
      timeoutMs: 60_000,
    });
    const status = await waitFor(
      async () => {
        const s = await store.getStatus("default", "survivor");
        return s?.phase === "Active" ? s : undefined;
      },
      { what: "survivor Active" },
    );
    expect(status.observedGeneration).toBe(r.record.generation);
    expect(await ownedRows("Mirror", "ovntap/mirror", "default/survivor")).toEqual([
      "ovntap.default.survivor",
    ]);
    await waitFor(async () => (await ownedRows("Port", "ovntap/revalidate", node)).length === 0, {
      what: "the leftover revalidation port removed",
    });
    second.child.kill("SIGTERM");
    await exited(second.child);
  });
});
