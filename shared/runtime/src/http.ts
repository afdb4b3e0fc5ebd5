/**
 * The small HTTP server every service runs for its orchestrator and Prometheus:
 *
 * - GET /healthz — liveness: the process answers, 200 `{"status":"ok"}`.
 * - GET /readyz  — readiness: runs every named check at once, each bounded by a timeout;
 *   200 when all pass, else 503 with the failing names.
 * - GET /metrics — the Prometheus registry, text exposition format.
 *
 *   const http = await startHttpServer({ host, port: 0, logger, registry: metrics.registry,
 *     checks: { nats: () => nats.isConnected() } });
 *   http.addCheck("redis", () => redis.isReady());
 *   // http.port is the bound port; await http.close() on shutdown
 *
 * A service with more to serve (the console's page) passes `handler`: every other path goes to it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "./logger.js";

/** Passes by returning true (or resolving to it); false, a throw, or the timeout fail it. */
export type ReadinessCheck = () => boolean | Promise<boolean>;

export interface HttpServerOptions {
  /** Address to bind; default "0.0.0.0". */
  host?: string;
  /** 0 binds an ephemeral port (see `port` on the result). */
  port: number;
  logger: Logger;
  registry: Registry;
  checks?: Record<string, ReadinessCheck>;
  /** Per-check timeout; default 800 ms, under Kubernetes' default 1 s probe timeout. */
  checkTimeoutMs?: number;
  /** Serves every path but the three above (404 when absent); a throw answers 500. */
  handler?: (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;
}

export interface CheckResult {
  ok: boolean;
  error?: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, CheckResult>;
  failing: string[];
}

export interface HttpServer {
  /** The port actually bound. */
  readonly port: number;
  readonly host: string;
  /** `http://<host>:<port>` (loopback when bound to a wildcard address). */
  readonly url: string;
  addCheck(name: string, check: ReadinessCheck): void;
  removeCheck(name: string): void;
  /** Runs the checks as /readyz does. */
  readiness(): Promise<ReadinessReport>;
  close(): Promise<void>;
}

export class HttpListenError extends Error {
  override name = "HttpListenError";
}

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const log = opts.logger.child({ component: "http" });
  const host = opts.host ?? "0.0.0.0";
  const checkTimeoutMs = opts.checkTimeoutMs ?? 800;
  const checks = new Map(Object.entries(opts.checks ?? {}));
  // Last outcome per check, to log transitions rather than every probe.
  const lastOk = new Map<string, boolean>();

  async function readiness(): Promise<ReadinessReport> {
    const entries = [...checks];
    const results = await Promise.all(entries.map(([, check]) => runCheck(check, checkTimeoutMs)));
    const report: ReadinessReport = { ready: true, checks: {}, failing: [] };
    entries.forEach(([name], i) => {
      const r = results[i] ?? { ok: false, error: "no result" };
      report.checks[name] = r;
      if (!r.ok) {
        report.ready = false;
        report.failing.push(name);
      }
      if (lastOk.get(name) !== r.ok) {
        if (r.ok) log.info({ check: name }, "readiness check passing");
        else log.warn({ check: name, error: r.error }, "readiness check failing");
        lastOk.set(name, r.ok);
      }
    });
    return report;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?", 1)[0];
    const known = path === "/healthz" || path === "/readyz" || path === "/metrics";
    if (!known) return opts.handler ? opts.handler(req, res) : send(res, 404, { status: "not found" });
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return send(res, 405, { status: "method not allowed" });
    }
    if (path === "/healthz") return send(res, 200, { status: "ok" });
    if (path === "/readyz") {
      const r = await readiness();
      return send(res, r.ready ? 200 : 503, {
        status: r.ready ? "ok" : "unavailable",
        ...(r.ready ? {} : { failing: r.failing }),
        checks: r.checks,
      });
    }
    const body = await opts.registry.metrics();
    res.writeHead(200, { "content-type": opts.registry.contentType });
    res.end(body); // node:http drops the body of a HEAD response itself
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err, path: req.url }, "http handler failed");
      if (!res.headersSent) send(res, 500, { status: "error" });
      else res.destroy();
    });
  });
  // Probes and scrapes are tiny; a slow client should not hold a socket for minutes.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      reject(new HttpListenError(`cannot listen on ${host}:${opts.port}: ${err.message}`, { cause: err }));
    };
    server.once("error", onError);
    server.listen(opts.port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", (err) => log.error({ err }, "http server error"));

  const port = (server.address() as AddressInfo).port;
  const shownHost =
    host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "[::1]" : host.includes(":") ? `[${host}]` : host;
  log.info({ host, port }, "http server listening");

  return {
    port,
    host,
    url: `http://${shownHost}:${port}`,
    addCheck: (name, check) => void checks.set(name, check),
    removeCheck: (name) => {
      checks.delete(name);
      lastOk.delete(name);
    },
    readiness,
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) return resolve();
        // A request still running gets a second to finish, then its socket is cut.
        const force = setTimeout(() => server.closeAllConnections(), 1_000);
        server.close((err) => {
          clearTimeout(force);
          if (err) reject(err);
          else resolve();
        });
        // Prometheus and kubelet keep connections alive; idle ones would hold close() open.
        server.closeIdleConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(text);
}

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, error: `timed out after ${timeoutMs} ms` }), timeoutMs);
  });
  const run = (async (): Promise<CheckResult> => {
    try {
      return (await check()) === true ? { ok: true } : { ok: false, error: "check returned false" };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  })();
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
