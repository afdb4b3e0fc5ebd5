/**
 * CPU time of the lab's processes over a phase, from /proc/<pid>/stat (utime + stime), so a
 * report can say what the machine spent its cores on while ovntap was being measured.
 *
 *   const before = cpuSnapshot(procs);  … phase …
 *   progress("cpu", cpuReport(before, cpuSnapshot(procs), wallMs));   // "ovn-northd 92%, …"
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, setPriority } from "node:os";

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** utime + stime of a process in seconds, or undefined when it is gone. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command (field 2) is in parentheses and may contain spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return undefined;
  }
}

export interface Proc {
  readonly name: string;
  readonly pid: number;
}

export type CpuSnapshot = ReadonlyMap<string, number>;

export function cpuSnapshot(procs: readonly Proc[]): CpuSnapshot {
  const out = new Map<string, number>();
  for (const p of procs) {
    const s = cpuSeconds(p.pid);
    if (s !== undefined) out.set(p.name, (out.get(p.name) ?? 0) + s);
  }
  const self = process.cpuUsage();
  out.set("bench (this process)", (self.user + self.system) / 1e6);
  const machine = machineSeconds();
  out.set(MACHINE, machine.busy);
  out.set(STEAL, machine.steal);
  return out;
}

const MACHINE = "\u0000machine";
const STEAL = "\u0000steal";

/**
 * Busy CPU seconds of the whole machine (all cores), from /proc/stat, and of those the time
 * stolen: a virtual machine's vCPU ready to run while the host ran something else.
 */
function machineSeconds(): { busy: number; steal: number } {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const [, ...nums] = line.trim().split(/\s+/);
    const v = nums.map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: (total - idle) / clockTicks(), steal: (v[7] ?? 0) / clockTicks() };
  } catch {
    return { busy: 0, steal: 0 };
  }
}

/**
 * "ovn-northd 92%, nb 6%, … (these 150%; the whole machine 190% of 200%)": % of one core over
 * `wallMs`, busiest first; the machine's share shows what other work (not this lab) took.
 */
export function cpuReport(before: CpuSnapshot, after: CpuSnapshot, wallMs: number): string {
  const rows: [string, number][] = [];
  let total = 0;
  for (const [name, s] of after) {
    if (name === MACHINE || name === STEAL) continue;
    const used = s - (before.get(name) ?? 0);
    total += used;
    rows.push([name, used]);
  }
  rows.sort((a, b) => b[1] - a[1]);
  const pct = (s: number) => `${Math.round((s / (wallMs / 1000)) * 100)}%`;
  const machine = (after.get(MACHINE) ?? 0) - (before.get(MACHINE) ?? 0);
  const steal = (after.get(STEAL) ?? 0) - (before.get(STEAL) ?? 0);
  return `${rows
    .filter(([, s]) => s > 0.005 * (wallMs / 1000))
    .map(([n, s]) => `${n} ${pct(s)}`)
    .join(
      ", ",
    )} (these ${pct(total)}; the whole machine ${pct(machine)} of ${availableParallelism()}00%, of which stolen by the host ${pct(steal)})`;
}

/** Redis `INFO commandstats` as command → calls (through redis-cli, which comes with redis-server). */
export function redisCalls(url: string): Map<string, number> {
  const out = new Map<string, number>();
  try {
    const text = execFileSync("redis-cli", ["-u", url, "INFO", "commandstats"], { encoding: "utf8" });
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1] ?? "", Number(m[2]));
  } catch {
    /* no redis-cli: no breakdown */
  }
  return out;
}

/** "12.3 Redis commands per mirror (evalsha 5.1, hgetall 2, …)" between two redisCalls(). */
export function redisReport(
  before: Map<string, number>,
  after: Map<string, number>,
  mirrors: number,
): string {
  const rows = [...after]
    .map(([c, n]) => [c, (n - (before.get(c) ?? 0)) / mirrors] as const)
    .filter(([, n]) => n >= 0.05)
    .sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((a, [, n]) => a + n, 0);
  return `${total.toFixed(1)} Redis commands per mirror (${rows.map(([c, n]) => `${c} ${n.toFixed(1)}`).join(", ")})`;
}

/** Empties Redis' SLOWLOG (commands over 10 ms by default), so a phase's own can be read after. */
export function redisSlowlogReset(url: string): void {
  try {
    execFileSync("redis-cli", ["-u", url, "SLOWLOG", "RESET"], { encoding: "utf8" });
  } catch {
    /* no redis-cli */
  }
}

/** "3 commands over 10 ms, longest 42 ms (evalsha …)" from Redis' SLOWLOG. */
export function redisSlowlog(url: string): string {
  try {
    const text = execFileSync("redis-cli", ["-u", url, "--json", "SLOWLOG", "GET", "128"], {
      encoding: "utf8",
    });
    const entries = JSON.parse(text) as [number, number, number, string[]][];
    if (entries.length === 0) return "no Redis command took over 10 ms";
    const longest = entries.reduce((a, b) => (b[2] > a[2] ? b : a));
    return `${entries.length} Redis commands over 10 ms, longest ${Math.round(longest[2] / 1000)} ms (${longest[3].slice(0, 2).join(" ")})`;
  } catch {
    return "Redis SLOWLOG unavailable";
  }
}

/** A BullMQ job's add / start / finish times (ms since the epoch), read straight from its hash. */
export function bullJobTimes(
  url: string,
  queue: string,
  jobId: string,
): { added: number; started: number; finished: number } | undefined {
  try {
    const out = execFileSync(
      "redis-cli",
      ["-u", url, "HMGET", `bull:${queue}:${jobId}`, "timestamp", "processedOn", "finishedOn"],
      { encoding: "utf8" },
    )
      .trim()
      .split("\n")
      .map(Number);
    const [added, started, finished] = out;
    if (!added || !started || !finished) return undefined;
    return { added, started, finished };
  } catch {
    return undefined;
  }
}

/** "2 AOF rewrites, last fork 180 ms": Redis persistence work that stalls every client while it forks. */
export function redisPersistence(url: string): string {
  try {
    const text = execFileSync("redis-cli", ["-u", url, "INFO", "all"], { encoding: "utf8" });
    const field = (name: string) => new RegExp(`^${name}:(\\S+)`, "m").exec(text)?.[1];
    const rewrites = Number(field("aof_rewrites") ?? 0);
    const forkMs = Number(field("latest_fork_usec") ?? 0) / 1000;
    const aofMb = Number(field("aof_current_size") ?? 0) / 2 ** 20;
    return `Redis: ${rewrites} AOF rewrite(s), last fork ${forkMs.toFixed(0)} ms, AOF now ${aofMb.toFixed(0)} MB`;
  } catch {
    return "Redis persistence stats unavailable";
  }
}

/**
 * Puts a process at the lowest CPU priority: nice 19, and — where the kernel groups processes
 * by session (CONFIG_SCHED_AUTOGROUP) — its autogroup's nice as well. A daemon that detached
 * (setsid) is an autogroup of its own, and the scheduler shares the cores between autogroups
 * before a process's own nice counts, so nice alone changes nothing for it. Returns what was
 * set, for the report; throws when neither could be.
 */
export function lowestCpuPriority(pid: number): string {
  const done: string[] = [];
  try {
    setPriority(pid, 19);
    done.push("nice 19");
  } catch {
    /* reported below when nothing worked */
  }
  let autogroups = false;
  try {
    autogroups = readFileSync("/proc/sys/kernel/sched_autogroup_enabled", "utf8").trim() === "1";
  } catch {
    /* no autogroup support */
  }
  if (autogroups) {
    try {
      writeFileSync(`/proc/${pid}/autogroup`, "19");
      done.push("autogroup nice 19");
    } catch {
      /* not ours to change */
    }
  }
  if (done.length === 0) throw new Error(`could not lower the CPU priority of pid ${pid}`);
  return done.join(", ");
}
