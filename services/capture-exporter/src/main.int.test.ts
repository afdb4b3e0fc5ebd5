/**
 * main.ts as the process the lab and a deployment run: configuration from the environment, ready on
 * /readyz, a replayed file's frames published, metrics on /metrics, exit 0 on SIGTERM after
 * flushing; and exit 78 naming the variable when the configuration cannot work.
 */
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { captureSubject } from "@ovntap/contracts";
import { httpGet, waitFor } from "@ovntap/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { innerFrames, tunnelFrame, writePcap } from "./testing/frames.js";
import { NODE, NS, startHarness } from "./testing/harness.js";
import type { Harness } from "./testing/harness.js";

const main = join(import.meta.dirname, "main.ts");

let h: Harness;
let child: ChildProcess | undefined;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await h?.stop();
});

describe("capture-exporter main.ts as a process", () => {
  it("replays CAPTURE_FILE to NATS, is ready, exports metrics, and exits 0 on SIGTERM", async () => {
    await h.recordMirror({ name: "web", tunnels: [{ type: "gre", index: 7 }] });
    const frames = innerFrames(25);
    const path = join(h.dir, "main.pcap");
    await writePcap(
      path,
      frames.map((f, i) => ({ frame: tunnelFrame({ type: "gre", key: 7 }, f), sec: 30, nsec: i })),
    );
    const sub = await h.subscribe(captureSubject(NS, "web", NODE));

    const storePrefix = h.store.keys.prefix;
    child = spawn(process.execPath, ["--conditions=@ovntap/source", "--import", "tsx", main], {
      cwd: import.meta.dirname,
      env: {
        ...process.env,
        NATS_URL: h.nats.url,
        REDIS_URL: h.redis.url,
        NODE_NAME: NODE,
        CAPTURE_FILE: path,
        PCAP_OVER_IP_PORT: "0",
        HTTP_HOST: "127.0.0.1",
        HTTP_PORT: "0",
        LOG_LEVEL: "info",
        STORE_PREFIX: storePrefix,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: Record<string, unknown>[] = [];
    let out = "";
    let stderr = "";
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

    const listening = await waitFor(() => lines.find((l) => l.msg === "http server listening"), {
      what: `the http server (stderr: ${stderr})`,
      timeoutMs: 30_000,
    });
    const port = Number(listening.port);
    await waitFor(async () => (await httpGet(port, "/readyz")).status === 200, {
      what: `/readyz 200 (stderr: ${stderr})`,
      timeoutMs: 30_000,
    });
    const readyz = JSON.parse((await httpGet(port, "/readyz")).body) as { checks: Record<string, unknown> };
    expect(Object.keys(readyz.checks).sort()).toEqual(["keymap", "nats", "redis", "source"]);
    await waitFor(() => sub.packets() === frames.length, {
      what: `the file's frames on NATS (log: ${lines.map((l) => JSON.stringify(l)).join("\n")})`,
      timeoutMs: 20_000,
    });
    const metrics = (await httpGet(port, "/metrics")).body;
    expect(metrics).toMatch(/ovntap_exporter_published_packets_total\{mirror="shop\/web",node="node-1"\} 25/);
    expect(metrics).toMatch(/ovntap_exporter_frames_total\{node="node-1"\} 25/);

    const exited = new Promise<number | null>((resolve) => child!.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(lines.some((l) => l.msg === "exporter stopped")).toBe(true);
  });

  it("exits 78 naming the variable when no source is configured", () => {
    const r = spawnSync(process.execPath, ["--conditions=@ovntap/source", "--import", "tsx", main], {
      cwd: import.meta.dirname,
      env: { ...process.env, NATS_URL: h.nats.url, REDIS_URL: h.redis.url, NODE_NAME: NODE, HTTP_PORT: "0" },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(/CAPTURE_INTERFACE: is required/);
  });
});
