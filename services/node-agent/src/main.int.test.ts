/**
 * main.ts as the process the lab and the DaemonSet run: configuration from the environment, the
 * OVN Southbound remote found in the node's own OVS (`external_ids:ovn-remote`), /healthz,
 * /readyz, /metrics, structured logs, and a graceful exit on SIGTERM.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { AGENTS_KV_BUCKET, AgentHeartbeat } from "@ovntap/contracts";
import { httpGet, startLab, waitFor, type Lab } from "@ovntap/lab";
import { connectNats, createLogger, type NatsClient } from "@ovntap/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const main = join(import.meta.dirname, "main.ts");

describe("node-agent main.ts as a process", () => {
  let lab: Lab;
  let nats: NatsClient;
  let child: ChildProcess;
  const lines: Record<string, unknown>[] = [];
  let stderr = "";

  beforeAll(async () => {
    lab = await startLab({ services: false });
    nats = await connectNats({
      url: lab.env.NATS_URL,
      name: "main-test",
      logger: createLogger({ name: "t", level: "silent" }),
    });
    child = spawn(process.execPath, ["--conditions=@ovntap/source", "--import", "tsx", main], {
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
        HEARTBEAT_INTERVAL_MS: "1000",
        STORE_PREFIX: `{main-${randomUUID()}}`,
        BULLMQ_PREFIX: `bull-${randomUUID().slice(0, 8)}`,
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
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await nats?.close();
    await lab?.stop();
  });

  it("becomes ready, announces itself, exports metrics, and exits 0 on SIGTERM", async () => {
    const listening = await waitFor(() => lines.find((l) => l.msg === "node-agent listening"), {
      what: `the agent to listen (stderr: ${stderr})`,
      timeoutMs: 60_000,
    });
    const port = Number(listening.port);
    await waitFor(async () => (await httpGet(port, "/readyz")).status === 200, {
      what: `/readyz 200 (stderr: ${stderr})`,
      timeoutMs: 30_000,
    });
    expect((await httpGet(port, "/healthz")).status).toBe(200);
    const readyz = JSON.parse((await httpGet(port, "/readyz")).body) as { checks: Record<string, unknown> };
    // sb: found through the node's ovn-remote, not configured.
    expect(Object.keys(readyz.checks).sort()).toEqual(["nats", "ovs", "redis", "sb", "worker"]);
    expect(lines.some((l) => l.msg === "node-agent started" && l.ovnChecks === true)).toBe(true);

    const kv = await new Kvm(nats.nc).open(AGENTS_KV_BUCKET);
    const hb = AgentHeartbeat.parse(
      await waitFor(async () => (await kv.get(lab.env.LAB_NODE))?.json<unknown>(), { what: "heartbeat" }),
    );
    expect(hb.capabilities.transport.interface).toBe("br-ul");

    const metrics = await httpGet(port, "/metrics");
    expect(metrics.body).toMatch(/ovntap_node_agent_bridge_mirrors\{bridge="br-int",node="[^"]+"\} 0/);
    expect(metrics.body).toContain("ovntap_process_cpu_seconds_total");

    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(lines.some((l) => l.msg === "node-agent stopped")).toBe(true);
    const after = await kv.get(lab.env.LAB_NODE);
    expect(after?.operation).not.toBe("PUT");
  });
});
