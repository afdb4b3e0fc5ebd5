/**
 * The console's one HTTP server: the page and its two files, the live stream, the state as JSON,
 * pcap downloads, beside the /healthz, /readyz, /metrics every ovntap service answers (this is
 * @ovntap/runtime's startHttpServer with the console's routes as its handler).
 *
 *   GET /                                  the page (public/index.html, console.js, console.css)
 *   GET /api/state                         the snapshot a page starts from, as JSON
 *   GET /api/stream                        Server-Sent Events: snapshot, mirrors, rates, event, feed
 *   GET /mirrors/<ns>/<name>/pcap?seconds=N  the last N seconds of a mirror as a pcap file
 *
 *   const server = await startConsoleServer({ host, port, logger, registry, checks, console: () => c });
 *
 * Everything is read-only: any method but GET and HEAD is refused. Responses carry a strict
 * Content-Security-Policy (scripts and styles from this origin only, nothing inline), and requests
 * whose Host is not an IP literal, `localhost`, or a name in `allowedHosts` are refused, so a web
 * page that rebinds its own DNS name to this address cannot read the captures through a browser.
 */
import { once } from "node:events";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { isIP } from "node:net";
import { fileURLToPath } from "node:url";
import type { Registry } from "prom-client";
import { startHttpServer } from "@ovntap/runtime";
import type { Logger, ReadinessCheck } from "@ovntap/runtime";
import type { Console } from "./console.js";
import { PCAP_CONTENT_TYPE, pcapFileName } from "./pcap.js";

/** Where the page's files are: `public/` beside `src/` and `dist/`. */
export const ASSETS_DIR = fileURLToPath(new URL("../public/", import.meta.url));

const ASSETS = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/console.js": { file: "console.js", type: "text/javascript; charset=utf-8" },
  "/console.css": { file: "console.css", type: "text/css; charset=utf-8" },
} as const;

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
} as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const PCAP_PATH = /^\/mirrors\/([^/]+)\/([^/]+)\/pcap$/;

export interface ConsoleServerOptions {
  host: string;
  /** 0 binds an ephemeral port (see `port` on the result). */
  port: number;
  logger: Logger;
  registry: Registry;
  checks: Record<string, ReadinessCheck>;
  /** Per-check timeout; default 800 ms, under Kubernetes' default 1 s probe timeout. */
  checkTimeoutMs?: number;
  /** The console once it exists; its routes answer 503 before. */
  console: () => Console | undefined;
  /** Host names (besides IP literals and `localhost`) the page may be reached by; `"*"` allows any. */
  allowedHosts?: readonly string[] | "*";
  /** Where index.html, console.js and console.css are; default ASSETS_DIR. */
  assetsDir?: string;
}

export interface ConsoleServer {
  readonly port: number;
  readonly host: string;
  /** `http://<host>:<port>` (loopback when bound to a wildcard address). */
  readonly url: string;
  close(): Promise<void>;
}

export class AssetsMissingError extends Error {
  override name = "AssetsMissingError";
}

function loadAssets(dir: string): Map<string, { body: Buffer; type: string }> {
  const out = new Map<string, { body: Buffer; type: string }>();
  for (const [path, a] of Object.entries(ASSETS)) {
    const file = new URL(a.file, `file://${dir.endsWith("/") ? dir : `${dir}/`}`);
    try {
      out.set(path, { body: readFileSync(file), type: a.type });
    } catch (err) {
      throw new AssetsMissingError(
        `the console page's file ${fileURLToPath(file)} cannot be read: the package's public/ folder must ship with dist/`,
        { cause: err },
      );
    }
  }
  return out;
}

/** Whether a request's Host header names this console in a way a rebinding attack cannot. */
export function hostAllowed(hostHeader: string | undefined, allowed: readonly string[] | "*"): boolean {
  if (allowed === "*") return true;
  if (hostHeader === undefined || hostHeader === "") return false;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:]+))(?::\d+)?$/.exec(hostHeader);
  if (!m) return false;
  const host = (m[1] ?? m[2] ?? "").toLowerCase();
  if (isIP(host) !== 0 || host === "localhost") return true;
  return allowed.some((h) => h.toLowerCase() === host);
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "content-type": "application/json",
    "cache-control": "no-store",
    ...headers,
  });
  res.end(JSON.stringify(body));
}

export async function startConsoleServer(opts: ConsoleServerOptions): Promise<ConsoleServer> {
  const assets = loadAssets(opts.assetsDir ?? ASSETS_DIR);
  const allowedHosts = opts.allowedHosts ?? [];

  async function pcap(c: Console, res: ServerResponse, ns: string, name: string, query: URLSearchParams) {
    const maxSeconds = Math.floor(c.config.ring.maxAgeMs / 1000);
    const raw = query.get("seconds") ?? "30";
    const seconds = /^\d{1,7}$/.test(raw) ? Number(raw) : NaN;
    if (!(seconds >= 1 && seconds <= maxSeconds)) {
      return send(res, 400, {
        error: `seconds must be an integer from 1 to ${maxSeconds} (CONSOLE_RING_SECONDS), got ${JSON.stringify(raw.slice(0, 32))}`,
      });
    }
    const file = c.pcap(ns, name, seconds);
    if (file === undefined)
      return send(res, 404, { error: `no mirror ${ns}/${name} is known to this console` });
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "content-type": PCAP_CONTENT_TYPE,
      "content-length": String(file.length),
      "content-disposition": `attachment; filename="${pcapFileName(ns, name, new Date())}"`,
      "cache-control": "no-store",
      "ovntap-packets": String(file.packets),
      "ovntap-omitted": String(file.omitted),
    });
    for (const chunk of file.chunks) {
      if (res.destroyed) return;
      if (!res.write(chunk)) await Promise.race([once(res, "drain"), once(res, "close")]);
    }
    res.end();
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://console.invalid");
    const path = url.pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return send(res, 405, { error: "the console is read-only: GET and HEAD only" }, { allow: "GET, HEAD" });
    }
    if (!hostAllowed(req.headers.host, allowedHosts)) {
      return send(res, 403, {
        error:
          "this Host is not one the console answers to: reach it by IP address or localhost, or list the name in CONSOLE_ALLOWED_HOSTS",
      });
    }
    const asset = assets.get(path);
    if (asset !== undefined) {
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        "content-type": asset.type,
        "content-length": String(asset.body.length),
        "cache-control": "no-cache",
      });
      res.end(asset.body);
      return;
    }
    if (path === "/favicon.ico") {
      res.writeHead(204, SECURITY_HEADERS);
      res.end();
      return;
    }
    const c = opts.console();
    const known = path === "/api/state" || path === "/api/stream" || PCAP_PATH.test(path);
    if (!known) return send(res, 404, { error: "not found" });
    if (c === undefined) return send(res, 503, { error: "starting" }, { "retry-after": "1" });
    if (path === "/api/state") return send(res, 200, c.snapshot());
    if (path === "/api/stream") {
      if (req.method === "HEAD") {
        res.writeHead(200, { ...SECURITY_HEADERS, "content-type": "text/event-stream; charset=utf-8" });
        res.end();
        return;
      }
      c.hub.open(req, res, [["snapshot", c.snapshot()]]);
      return;
    }
    const [, ns = "", name = ""] = PCAP_PATH.exec(path) ?? [];
    if (!DNS_LABEL.test(ns) || !DNS_LABEL.test(name)) {
      return send(res, 400, { error: "namespace and mirror name must be DNS-1123 labels (a-z, 0-9, '-')" });
    }
    return pcap(c, res, ns, name, url.searchParams);
  }

  const http = await startHttpServer({
    host: opts.host,
    port: opts.port,
    logger: opts.logger,
    registry: opts.registry,
    checks: opts.checks,
    ...(opts.checkTimeoutMs !== undefined ? { checkTimeoutMs: opts.checkTimeoutMs } : {}),
    handler: handle,
  });
  return { port: http.port, host: http.host, url: http.url, close: () => http.close() };
}
