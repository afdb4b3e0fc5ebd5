/**
 * The hook that starts ovntap's services in the lab. A service is a workspace
 * `services/<name>` whose package.json says
 *
 *   "ovntap": { "service": true, "ready": "<regex, optional>" }
 *
 * (`"lab": false` beside `service` keeps a service out of the lab: one that needs what the
 * lab does not have, such as the TrafficMirror controller and its Kubernetes API server.)
 * and whose build leaves `dist/main.js`. The lab runs each as its own process,
 * `node services/<name>/dist/main.js`, from the repo root, with the lab's env vars,
 * its log in `<lab dir>/service-<name>.log`. With `ready`, the lab waits until a log
 * line matches it; without, it only makes sure the process did not die at once.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { get } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LabEnv } from "./env.js";
import { type Daemon, isAlive, readText, spawnDaemon, waitFor } from "./proc.js";

export interface ServiceInfo {
  name: string;
  dir: string;
  main: string;
  ready?: RegExp;
}

export class ServiceNotBuiltError extends Error {
  override name = "ServiceNotBuiltError";
}

/** The repo root: the nearest ancestor whose package.json declares workspaces. */
export function findRepoRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      const json = JSON.parse(readFileSync(pkg, "utf8")) as { workspaces?: unknown };
      if (json.workspaces) return dir;
    }
    if (dirname(dir) === dir) throw new Error(`no workspace root above ${from}`);
  }
}

/** Every `services/<name>` marked as a service, sorted by name. */
export function discoverServices(repoRoot: string): ServiceInfo[] {
  const root = join(repoRoot, "services");
  if (!existsSync(root)) return [];
  const out: ServiceInfo[] = [];
  for (const name of readdirSync(root).sort()) {
    const pkgPath = join(root, name, "package.json");
    if (!existsSync(pkgPath)) continue;
    const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as {
      ovntap?: { service?: unknown; ready?: unknown; lab?: unknown };
    };
    if (pkg.ovntap?.service !== true || pkg.ovntap.lab === false) continue;
    const dir = join(root, name);
    out.push({
      name,
      dir,
      main: join(dir, "dist", "main.js"),
      ...(typeof pkg.ovntap.ready === "string" ? { ready: new RegExp(pkg.ovntap.ready) } : {}),
    });
  }
  return out;
}

export interface StartServiceOptions {
  labDir: string;
  repoRoot: string;
  env: LabEnv;
  /** Extra variables for the process (markers, run dirs). */
  extraEnv?: Record<string, string>;
  /**
   * Variables for the service's own configuration (POLICY_FILE, LOG_LEVEL, tuning): they
   * override the inherited environment but not the lab's (env, HTTP_HOST/HTTP_PORT, extraEnv).
   */
  serviceEnv?: Readonly<Record<string, string>>;
  /** Loopback port for the service's /healthz, /readyz and /metrics (HTTP_PORT). */
  httpPort: number;
  timeoutMs?: number;
}

/** Starts one service (wait for it with waitServiceReady). */
export function startService(svc: ServiceInfo, opts: StartServiceOptions): Daemon {
  if (!existsSync(svc.main)) {
    throw new ServiceNotBuiltError(
      `service ${svc.name} is not built (${svc.main} is missing): run 'npm run build'`,
    );
  }
  return spawnDaemon({
    name: `service-${svc.name}`,
    cmd: process.execPath,
    args: [svc.main],
    dir: opts.labDir,
    cwd: opts.repoRoot,
    env: {
      ...process.env,
      ...opts.serviceEnv,
      ...opts.env,
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: String(opts.httpPort),
      NODE_NAME: opts.env.LAB_NODE,
      ...opts.extraEnv,
    },
  });
}

/**
 * GET http://127.0.0.1:<port><path> → status and body; status 0 and an empty body when nothing
 * answers within `timeoutMs` (default 2 s). For the services' /healthz, /readyz and /metrics.
 */
export function httpGet(
  port: number,
  path: string,
  timeoutMs = 2_000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = get({ host: "127.0.0.1", port, path, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", () => resolve({ status: 0, body: "" }));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve({ status: 0, body: "" }));
  });
}

/** GET http://127.0.0.1:<port><path> → status code, or 0 when nothing answers within 1 s. */
export async function httpStatus(port: number, path: string): Promise<number> {
  return (await httpGet(port, path, 1_000)).status;
}

/**
 * Waits for a started service: its `ready` line when its package.json names one, else
 * its /readyz answering 200 on the HTTP port the lab gave it. A service that dies
 * first fails the wait at once.
 */
export async function waitServiceReady(
  svc: ServiceInfo,
  daemon: Daemon,
  httpPort: number,
  timeoutMs = 30_000,
  /** Where this run's lines begin in the log (a restarted service appends to it). */
  logOffset = 0,
): Promise<void> {
  const outcome = await waitFor(
    async () => {
      if (!isAlive(daemon.pid)) return "exited";
      if (svc.ready) return svc.ready.test(readText(daemon.log).slice(logOffset)) && "ready";
      return (await httpStatus(httpPort, "/readyz")) === 200 && "ready";
    },
    { what: `service ${svc.name} to be ready (log: ${daemon.log})`, timeoutMs },
  );
  if (outcome === "exited") throw new Error(`service ${svc.name} exited at start (log: ${daemon.log})`);
}
