/**
 * Process plumbing for the lab and the test launchers: run a command, start a daemon
 * detached (so it outlives `lab:up` and is stopped later by pid), wait on a condition
 * with a deadline, stop by pid.
 *
 *   const d = await spawnDaemon({ name: "redis", cmd: "redis-server", args, dir });
 *   await waitFor(() => logHas(d.log, "Ready to accept"), { what: "redis ready" });
 *   await d.stop();
 */
import { execFile, spawn } from "node:child_process";
import { constants, openSync, closeSync, readFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { access } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

export class CommandError extends Error {
  override name = "CommandError";
  constructor(
    readonly cmd: string,
    readonly args: readonly string[],
    readonly code: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${cmd} ${args.join(" ")} exited with ${code}: ${stderr.trim() || stdout.trim()}`);
  }
}

export class MissingBinaryError extends Error {
  override name = "MissingBinaryError";
  constructor(
    readonly binary: string,
    readonly debianPackage: string,
  ) {
    super(
      `${binary} is not installed: run 'npm run lab:up' or 'npm test' as root (they install it), ` +
        `or 'apt-get install -y ${debianPackage}'`,
    );
  }
}

export class TimeoutError extends Error {
  override name = "TimeoutError";
}

export interface RunOptions {
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFail?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion. Throws CommandError on a non-zero exit unless allowFail. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [c, a] = opts.netns ? ["ip", ["netns", "exec", opts.netns, cmd, ...args]] : [cmd, [...args]];
  return new Promise((resolve, reject) => {
    const child = execFile(
      c,
      a,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        if (err && (err as NodeJS.ErrnoException).code === "ENOENT") {
          reject(new Error(`${c}: command not found`, { cause: err }));
          return;
        }
        if (code !== 0 && !opts.allowFail) reject(new CommandError(c, a, code, stdout, stderr));
        else resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Resolves a binary on PATH (plus the sbin directories Debian puts daemons in). */
export async function which(binary: string): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin", "/usr/local/sbin"];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, binary);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Returns the absolute path of a binary, or throws MissingBinaryError naming the package. */
export async function requireBinary(binary: string, debianPackage: string): Promise<string> {
  const p = await which(binary);
  if (!p) throw new MissingBinaryError(binary, debianPackage);
  return p;
}

export interface WaitOptions {
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
}

/** Polls `cond` until it returns a truthy value, or throws TimeoutError naming `what`. */
export async function waitFor<T>(cond: () => T | Promise<T>, opts: WaitOptions): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new TimeoutError(`timed out waiting for ${opts.what}`, { cause: last });
    }
    await sleep(opts.intervalMs ?? 50);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Asks the kernel for a free TCP port on loopback (for servers that cannot bind port 0 themselves). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  // A zombie still answers signal 0. A daemon started by an earlier process (`lab:up`)
  // is reparented to pid 1, which may reap it seconds later: it has exited all the same.
  const stat = readText(`/proc/${pid}/stat`);
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X";
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the pid is gone. */
export async function killPid(pid: number, graceMs = 5_000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  try {
    await waitFor(() => !isAlive(pid), { what: `pid ${pid} to exit`, timeoutMs: graceMs, intervalMs: 20 });
  } catch {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
    await waitFor(() => !isAlive(pid), { what: `pid ${pid} to die`, timeoutMs: 5_000, intervalMs: 20 });
  }
}

export function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
}

export interface DaemonSpec {
  /** Short name, used for the log file `<dir>/<name>.log`. */
  name: string;
  cmd: string;
  args: readonly string[];
  dir: string;
  env?: NodeJS.ProcessEnv;
  /** Start inside this network namespace. */
  netns?: string;
  /** Working directory; the caller's when omitted. */
  cwd?: string;
}

export interface Daemon {
  readonly name: string;
  readonly pid: number;
  readonly log: string;
  /** SIGTERM, then SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL at once (fault injection). */
  kill(): Promise<void>;
}

/**
 * Starts a long-running process detached from this one (its own process group,
 * stdout and stderr appended to `<dir>/<name>.log`), so it survives the caller and
 * is stopped by pid. The caller waits for readiness in the daemon's own terms.
 */
export function spawnDaemon(spec: DaemonSpec): Daemon {
  const log = join(spec.dir, `${spec.name}.log`);
  const fd = openSync(log, "a");
  const [c, a] = spec.netns
    ? ["ip", ["netns", "exec", spec.netns, spec.cmd, ...spec.args]]
    : [spec.cmd, [...spec.args]];
  const child = spawn(c, a, {
    detached: true,
    stdio: ["ignore", fd, fd],
    env: spec.env ?? process.env,
    ...(spec.cwd ? { cwd: spec.cwd } : {}),
  });
  closeSync(fd);
  child.unref();
  child.on("error", () => {
    /* reported through the readiness wait and the log */
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${spec.cmd} could not be started`);
  return daemonFromPid(spec.name, pid, log);
}

export function daemonFromPid(name: string, pid: number, log: string): Daemon {
  return {
    name,
    pid,
    log,
    stop: (graceMs?: number) => killPid(pid, graceMs),
    kill: async () => {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        return;
      }
      await waitFor(() => !isAlive(pid), { what: `${name} to die`, timeoutMs: 5_000, intervalMs: 20 });
    },
  };
}

/**
 * Awaits a daemon's readiness and stops the daemon if it never gets ready, so a failed
 * start leaves no process behind for the caller to find.
 */
export async function stopOnFailure<T>(daemon: Daemon, ready: Promise<T>): Promise<T> {
  try {
    return await ready;
  } catch (err) {
    await daemon.stop(2_000).catch(() => {
      /* the readiness error is the one worth reporting */
    });
    throw err;
  }
}

/**
 * The kernel's start time of a process (clock ticks since boot, field 22 of
 * /proc/<pid>/stat). Recorded beside a pid so a later stop can tell the process it
 * started from an unrelated one that reused the pid.
 */
export function procStartTime(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  // comm (field 2) may contain spaces and parentheses: fields resume after the last ")".
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return rest[19];
}

/** The last `lines` lines of a text file ("" when it does not exist). */
export function logTail(path: string, lines = 20): string {
  const text = readText(path).trimEnd();
  return text ? text.split("\n").slice(-lines).join("\n") : "";
}
