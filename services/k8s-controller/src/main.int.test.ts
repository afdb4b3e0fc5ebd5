/**
 * main.ts as a process (from source; the image runs dist/main.js, the same code built) against
 * the FAKE Kubernetes API server of @ovntap/k8s/testing, reached through a kubeconfig file, and
 * a real nats-server with no intake behind it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeApiServer, waitUntil } from "@ovntap/k8s/testing";
import { httpGet, startNatsServer, type NatsServer } from "@ovntap/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TrafficMirror } from "./resource.js";

const main = join(import.meta.dirname, "main.ts");

describe("k8s-controller main.ts as a process", () => {
  let nats: NatsServer;
  let fake: FakeApiServer;
  let child: ChildProcess;
  let dir: string;
  const lines: Record<string, unknown>[] = [];
  let stderr = "";

  beforeAll(async () => {
    [nats, fake] = await Promise.all([startNatsServer(), FakeApiServer.start({ token: "main-token" })]);
    dir = mkdtempSync(join(tmpdir(), "ovntap-k8s-controller-"));
    const kubeconfig = fake.writeKubeconfig(join(dir, "kubeconfig"));
    const { KUBERNETES_SERVICE_HOST: _h, KUBERNETES_SERVICE_PORT: _p, ...env } = process.env;
    child = spawn(process.execPath, ["--conditions=@ovntap/source", "--import", "tsx", main], {
      cwd: import.meta.dirname,
      env: {
        ...env,
        NATS_URL: nats.url,
        KUBERNETES: "kubeconfig",
        KUBECONFIG: kubeconfig,
        HTTP_HOST: "127.0.0.1",
        HTTP_PORT: "0",
        LOG_LEVEL: "info",
        REQUEST_TIMEOUT_MS: "1000",
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
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await nats?.stop();
    await fake?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("becomes ready, says when intake does not answer, exports metrics, and exits 0 on SIGTERM", async () => {
    const listening = await waitUntil(
      () => lines.find((l) => l.msg === "http server listening"),
      `the http server (stderr: ${stderr})`,
      30_000,
    );
    const port = Number(listening.port);
    await waitUntil(async () => (await httpGet(port, "/readyz")).status === 200, "/readyz 200", 30_000);
    const readyz = JSON.parse((await httpGet(port, "/readyz")).body) as { checks: Record<string, unknown> };
    expect(Object.keys(readyz.checks).sort()).toEqual(["controller", "nats"]);

    fake.put("trafficmirrors.ovntap.io", {
      apiVersion: "ovntap.io/v1alpha1",
      kind: "TrafficMirror",
      metadata: { name: "web", namespace: "shop" },
      spec: { sources: { type: "pods", names: ["web-0"] }, direction: "both", target: { type: "collector" } },
    });
    const tm = await waitUntil(
      () => {
        const o = fake.get("trafficmirrors.ovntap.io", "shop", "web") as TrafficMirror | undefined;
        return o?.status?.conditions?.find((c) => c.type === "Accepted") ? o : undefined;
      },
      "the status of shop/web",
      30_000,
    );
    expect(tm.status?.conditions?.find((c) => c.type === "Accepted")).toMatchObject({
      status: "Unknown",
      reason: "IntakeUnavailable",
    });
    expect(tm.metadata.finalizers).toEqual(["ovntap.io/mirror"]);

    const metrics = await httpGet(port, "/metrics");
    expect(metrics.body).toMatch(/ovntap_k8s_controller_reconciles_total\{result="error"\} [1-9]/);

    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
