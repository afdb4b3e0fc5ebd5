import { afterEach, describe, expect, it } from "vitest";
import { startHttpServer, type HttpServer } from "./http.js";
import { createLogger } from "./logger.js";
import { createMetrics } from "./metrics.js";
import { captureLogs } from "./testing/log-capture.js";

const servers: HttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(checks: Parameters<typeof startHttpServer>[0]["checks"] = {}, checkTimeoutMs?: number) {
  const logs = captureLogs();
  const logger = createLogger({ name: "http-test", level: "debug", destination: logs.stream });
  const metrics = createMetrics();
  const server = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    logger,
    registry: metrics.registry,
    checks,
    ...(checkTimeoutMs !== undefined ? { checkTimeoutMs } : {}),
  });
  servers.push(server);
  return { server, metrics, logs };
}

describe("startHttpServer", () => {
  it("binds an ephemeral port and answers /healthz", async () => {
    const { server } = await start();
    expect(server.port).toBeGreaterThan(0);
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("/readyz is 503 naming the failing check, then 200 once it passes", async () => {
    let natsUp = false;
    const { server, logs } = await start({ nats: () => natsUp, redis: async () => Promise.resolve(true) });
    const down = await fetch(`${server.url}/readyz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({
      status: "unavailable",
      failing: ["nats"],
      checks: { nats: { ok: false }, redis: { ok: true } },
    });
    natsUp = true;
    const up = await fetch(`${server.url}/readyz`);
    expect(up.status).toBe(200);
    expect(await up.json()).toEqual({ status: "ok", checks: { nats: { ok: true }, redis: { ok: true } } });
    // Transitions are logged once each, not every probe.
    expect(logs.messages("readiness check failing")).toHaveLength(1);
    expect(logs.messages("readiness check passing").map((r) => r.check)).toEqual(["redis", "nats"]);
  });

  it("a check that hangs or throws fails within the timeout, with the reason", async () => {
    const { server } = await start(
      {
        hangs: () => new Promise<boolean>(() => undefined),
        throws: () => {
          throw new Error("redis LOADING");
        },
      },
      100,
    );
    server.addCheck("late", () => true);
    const t = Date.now();
    const res = await fetch(`${server.url}/readyz`);
    expect(Date.now() - t).toBeLessThan(2_000);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      failing: ["hangs", "throws"],
      checks: {
        hangs: { ok: false, error: "timed out after 100 ms" },
        throws: { ok: false, error: "redis LOADING" },
        late: { ok: true },
      },
    });
    server.removeCheck("hangs");
    server.removeCheck("throws");
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  it("/metrics exposes the ovntap_ default process metrics and the service's own", async () => {
    const { server, metrics } = await start();
    const requests = metrics.counter({
      name: "test_requests_total",
      help: "Requests by outcome",
      labelNames: ["outcome"],
    });
    requests.inc({ outcome: "accepted" }, 3);
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toContain("ovntap_process_cpu_user_seconds_total");
    expect(text).toContain("ovntap_nodejs_eventloop_lag_seconds");
    expect(text).toContain('ovntap_test_requests_total{outcome="accepted"} 3');
  });

  it("404 for unknown paths, 405 for other methods, query strings ignored", async () => {
    const { server } = await start();
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    const post = await fetch(`${server.url}/healthz`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect((await fetch(`${server.url}/healthz?verbose=1`)).status).toBe(200);
    const head = await fetch(`${server.url}/metrics`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("a handler serves every other path; the probes stay the server's, a throw is a 500", async () => {
    const server = await startHttpServer({
      host: "127.0.0.1",
      port: 0,
      logger: createLogger({ name: "http-test", level: "silent" }),
      registry: createMetrics().registry,
      handler: (req, res) => {
        if (req.url === "/boom") throw new Error("boom");
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(`page ${req.method} ${req.url}`);
      },
    });
    servers.push(server);
    const page = await fetch(`${server.url}/page?x=1`);
    expect(await page.text()).toBe("page GET /page?x=1");
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: "ok" });
    expect((await fetch(`${server.url}/boom`)).status).toBe(500);
  });

  it("close() returns although a client keeps its connection alive", async () => {
    const { server } = await start();
    const res = await fetch(`${server.url}/healthz`, { headers: { connection: "keep-alive" } });
    await res.text();
    await server.close();
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  it("reports a port already in use", async () => {
    const { server } = await start();
    const logger = createLogger({ name: "t", destination: captureLogs().stream });
    await expect(
      startHttpServer({ host: "127.0.0.1", port: server.port, logger, registry: createMetrics().registry }),
    ).rejects.toThrow(`cannot listen on 127.0.0.1:${server.port}`);
  });
});
