/**
 * What a lab made, written down as it is made (`<lab dir>/state.json`), so that the
 * process that started it, or any other one (`lab:down`), removes exactly that: the
 * processes by pid, the namespaces, the root-namespace links and bridges, the files
 * and the temp dir. And the check that nothing of a lab is left.
 *
 *   await stopLabFromState(`${labDir}/state.json`);
 *   expect(await listLeftovers("ot4k2x")).toEqual(NO_LEFTOVERS);
 */
import { readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LabEnv } from "./env.js";
import { linkDel, linkExists, linkNames, netnsDel, netnsList } from "./net.js";
import { isAlive, killPid, procStartTime, readText, removeDir, waitFor } from "./proc.js";

export interface ProcRecord {
  /** Short name; also the daemon's log file stem. */
  name: string;
  pid: number;
  /** From procStartTime(): guards against killing a process that reused the pid. */
  startTime: string | undefined;
  log: string;
  netns?: string;
}

export interface LinkRecord {
  name: string;
  /** Namespace the link lives in; undefined = root. */
  netns?: string;
  kind: "veth" | "bridge";
}

export interface LabState {
  version: 1;
  prefix: string;
  dir: string;
  createdAt: string;
  /** True once startLab resolved. */
  ready: boolean;
  pids: ProcRecord[];
  netns: string[];
  links: LinkRecord[];
  /** OVS bridges (they live in the node namespace's ovs-vswitchd and vanish with it). */
  ovsBridges: string[];
  /** Directories to remove (the lab dir first). */
  dirs: string[];
  /** Files outside the dirs: the env file and the state copy the CLI keeps in `.lab/`. */
  files: string[];
  env?: LabEnv;
  /** The services the lab started, with the loopback port of their /healthz, /readyz, /metrics. */
  services?: { name: string; pid: number; httpPort: number; log: string }[];
  /** Milliseconds each start step took, and the total. */
  timings?: Record<string, number>;
}

/** The temp dir name of a lab: a unique prefix makes its leftovers findable. */
export const labDirStem = (prefix: string) => `ovntap-lab-${prefix}-`;

export function newState(prefix: string, dir: string): LabState {
  return {
    version: 1,
    prefix,
    dir,
    createdAt: new Date().toISOString(),
    ready: false,
    pids: [],
    netns: [],
    links: [],
    ovsBridges: [],
    dirs: [dir],
    files: [],
  };
}

/** Writes atomically (temp file + rename): a reader never sees half a state. */
export function writeState(state: LabState, paths: readonly string[]): void {
  const text = `${JSON.stringify(state, null, 2)}\n`;
  for (const p of paths) {
    const tmp = `${p}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, p);
  }
}

export function readState(path: string): LabState {
  const text = readText(path);
  if (!text) throw new Error(`no lab state at ${path}`);
  const s = JSON.parse(text) as Partial<LabState>;
  if (s.version !== 1 || typeof s.prefix !== "string" || !Array.isArray(s.pids)) {
    throw new Error(`${path} is not a lab state file`);
  }
  return { ...newState(s.prefix, s.dir ?? ""), ...s };
}

/** The pid still runs the process the lab started (not a later one with the same pid). */
export function sameProcess(rec: ProcRecord): boolean {
  if (!isAlive(rec.pid)) return false;
  return rec.startTime === undefined || procStartTime(rec.pid) === rec.startTime;
}

export interface TeardownProgress {
  (message: string): void;
}

/**
 * Removes everything the state lists, in the order that lets each step succeed:
 * processes first (a namespace with a live process in it outlives `ip netns del`,
 * and ovs-vswitchd's taps with it), then namespaces, then root-namespace links and
 * bridges, then files and dirs. Keeps going past failures and reports them together.
 */
export async function teardown(state: LabState, progress: TeardownProgress = () => {}): Promise<void> {
  const errors: unknown[] = [];
  const attempt = async (what: string, fn: () => Promise<void> | void) => {
    try {
      await fn();
    } catch (err) {
      errors.push(new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
    }
  };

  const live = state.pids.filter(sameProcess);
  if (live.length) progress(`stopping ${live.length} processes`);
  // Services first (they hold connections to the servers), then the rest at once.
  const services = live.filter((p) => p.name.startsWith("service-"));
  const rest = live.filter((p) => !p.name.startsWith("service-"));
  for (const group of [services, rest]) {
    await Promise.all(
      group.map((p) => attempt(`stop ${p.name} (pid ${p.pid})`, () => killPid(p.pid, 5_000))),
    );
  }
  // Processes of this lab the state never heard of (a start interrupted between spawn
  // and record) are found by the lab dir in their command line, and stopped too.
  for (const p of findLabProcesses(state.prefix).filter(isLabDaemon)) {
    await attempt(`stop stray pid ${p.pid}`, () => killPid(p.pid, 2_000));
  }

  const present = new Set(await netnsList());
  const namespaces = state.netns.filter((n) => present.has(n));
  if (namespaces.length) progress(`deleting namespaces ${namespaces.join(" ")}`);
  for (const ns of namespaces) await attempt(`delete netns ${ns}`, () => netnsDel(ns));

  // Root-namespace links: a veth whose peer sat in a deleted namespace goes away by
  // itself, but asynchronously (the kernel cleans a namespace up in a workqueue), so
  // delete explicitly and then wait for every one to be gone.
  const rootLinks = state.links.filter((l) => l.netns === undefined);
  for (const l of [...rootLinks].sort(
    (a, b) => (a.kind === "bridge" ? 1 : 0) - (b.kind === "bridge" ? 1 : 0),
  )) {
    await attempt(`delete link ${l.name}`, () => linkDel(l.name));
  }
  if (rootLinks.length) {
    await attempt("links to disappear", async () => {
      await waitFor(
        async () => {
          for (const l of rootLinks) if (await linkExists(l.name)) return false;
          return true;
        },
        { what: `links ${rootLinks.map((l) => l.name).join(" ")} to disappear`, timeoutMs: 10_000 },
      );
    });
  }

  for (const f of state.files) await attempt(`remove ${f}`, () => rmSync(f, { force: true }));
  for (const d of state.dirs) await attempt(`remove ${d}`, () => removeDir(d));
  if (errors.length) throw new AggregateError(errors, `lab ${state.prefix} teardown left things behind`);
}

export interface LabProcess {
  pid: number;
  cmdline: string;
  /** Carries the OVNTAP_LAB marker (a process the lab spawned, or its child). */
  marked: boolean;
}

export interface Leftovers {
  processes: LabProcess[];
  netns: string[];
  links: string[];
  dirs: string[];
}

export const NO_LEFTOVERS: Leftovers = Object.freeze({ processes: [], netns: [], links: [], dirs: [] });

export function isClean(l: Leftovers): boolean {
  return !l.processes.length && !l.netns.length && !l.links.length && !l.dirs.length;
}

/** Programs the lab runs; a stray is stopped only if it is one of them (not, say, a `tail -f` of a log). */
const LAB_PROGRAMS = new Set([
  "ovsdb-server",
  "ovs-vswitchd",
  "ovn-northd",
  "ovn-controller",
  "nats-server",
  "redis-server",
  "tcpdump",
  "ip",
]);

function isLabDaemon(p: { cmdline: string; marked: boolean }): boolean {
  const argv0 = p.cmdline.split(" ")[0] ?? "";
  return p.marked || LAB_PROGRAMS.has(argv0.slice(argv0.lastIndexOf("/") + 1));
}

/** Environment marker on every process the lab spawns itself (services included). */
export const LAB_MARKER = "OVNTAP_LAB";

/**
 * Processes of this lab: those whose command line names the lab dir (every daemon is
 * given paths inside it) or whose environment carries `OVNTAP_LAB=<prefix>`. Not
 * LAB_DIR: a shell that sourced the env file has that too, and is not the lab's.
 */
export function findLabProcesses(prefix: string): LabProcess[] {
  const stem = labDirStem(prefix);
  const out: LabProcess[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    const cmdline = readText(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim();
    if (!cmdline) continue; // kernel threads and processes already gone
    const marked = `\0${readText(`/proc/${pid}/environ`)}`.includes(`\0${LAB_MARKER}=${prefix}\0`);
    if (marked || cmdline.includes(stem)) out.push({ pid, cmdline, marked });
  }
  return out;
}

/**
 * What of the lab with this prefix is still on the machine: processes (see
 * findLabProcesses), namespaces and root-namespace links named `<prefix>-…`, and temp
 * dirs named after it. Empty lists mean the lab is completely gone.
 */
export async function listLeftovers(prefix: string): Promise<Leftovers> {
  const mine = (n: string) => n.startsWith(`${prefix}-`);
  const stem = labDirStem(prefix);
  let dirs: string[] = [];
  try {
    dirs = readdirSync(tmpdir())
      .filter((d) => d.startsWith(stem))
      .map((d) => join(tmpdir(), d));
  } catch {
    /* no tmpdir, no dirs */
  }
  return {
    processes: findLabProcesses(prefix),
    netns: (await netnsList()).filter(mine),
    links: (await linkNames()).filter(mine),
    dirs,
  };
}
