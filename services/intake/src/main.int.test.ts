import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { reqSubject, Reply } from "@ovntap/contracts";
import {
  httpGet,
  startNatsServer,
  startRedisServer,
  waitFor,
  type NatsServer,
  type RedisServer,
} from "@ovntap/lab";
import { connectNats, createLogger, type NatsClient } from "@ovntap/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The process the lab starts, from source (the lab runs dist/main.js, the same code built).
const main = join(import.meta.dirname, "main.ts");

describe("intake main.ts as a process", () => {
  let nats: NatsServer;
  let redis: RedisServer;
  let client: NatsClient;
  let child: ChildProcess;
  const lines: Record<string, unknown>[] = [];
  let stderr = "";

  beforeAll(async () => {
    nats = await startNatsServer();
    redis = await startRedisServer();
    client = await connectNats({
      url: nats.url,
      name: "main-test",
      logger: createLogger({ name: "t", level: "silent" }),
    });
    child = spawn(process.execPath, ["--conditions=@ovntap/source", "--import", "tsx", main], {
      cwd: import.meta.dirname,
      env: {
        ...process.env,
        NATS_URL: nats.url,
        REDIS_URL: redis.url,
        HTTP_HOST: "127.0.0.1",
        HTTP_PORT: "0",
        LOG_LEVEL: "info",
        STORE_PREFIX: `{main-${randomUUID()}}`,
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
    await client?.close();
    await nats?.stop();
    await redis?.stop();
  });

  it("becomes ready, answers requests, exports metrics, and exits 0 on SIGTERM", async () => {
    const listening = await waitFor(() => lines.find((l) => l.msg === "http server listening"), {
      what: `the http server (stderr: ${stderr})`,
      timeoutMs: 30_000,
    });
    const port = Number(listening.port);
    await waitFor(async () => (await httpGet(port, "/readyz")).status === 200, {
      what: `/readyz 200 (stderr: ${stderr})`,
      timeoutMs: 30_000,
    });
    expect(lines.some((l) => l.msg === "no POLICY_FILE, using the built-in default policy")).toBe(true);
    const readyz = JSON.parse((await httpGet(port, "/readyz")).body) as { checks: Record<string, unknown> };
    expect(Object.keys(readyz.checks).sort()).toEqual(["intake", "nats", "redis"]);
    // Ready means subscribed: the log line comes before /readyz turns 200.
    expect(lines.some((l) => l.msg === "intake listening")).toBe(true);

    const body = {
      requestId: randomUUID(),
      op: "create",
      principal: "lab-user",
      spec: {
        name: "web",
        namespace: "default",
        sources: { type: "pods", names: ["pod-a"] },
        direction: "both",
        target: { type: "gre", sink: "198.51.100.2" },
      },
    };
    const msg = await client.nc
      .request(reqSubject("default"), JSON.stringify(body), { timeout: 10_000 })
      .catch((err: unknown) => {
        throw new Error(`request failed; intake logged: ${lines.map((l) => JSON.stringify(l)).join("\n")}`, {
          cause: err,
        });
      });
    const reply = Reply.parse(msg.json());
    expect(reply.ok && "mirror" in reply && reply.mirror.owner).toBe("lab-user");

    const metrics = await httpGet(port, "/metrics");
    expect(metrics.body).toMatch(/ovntap_intake_requests_total\{op="create",outcome="accepted"\} 1/);

    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(lines.some((l) => l.msg === "intake stopped")).toBe(true);
  });
});
