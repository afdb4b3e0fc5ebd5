/**
 * `npm run lab`: the product end to end on the lab, as a newcomer first sees it.
 *
 *   1. the lab comes up with every service as its own process (intake, ovn-applier,
 *      capture-exporter, node-agent);
 *   2. `ovntap create tap --pod pod-a --direction both --collector --wait`;
 *   3. `ovntap capture tap` prints the mirrored packets, one line each like tcpdump, while
 *      pod-a talks to pod-b (ICMP, a TCP request/response, UDP); a second subscriber writes the
 *      same stream to `<lab dir>/demo.pcap`;
 *   4. a summary: packets, bytes, drops, and the mirror's lifecycle events (`ovntap events`);
 *   5. `ovntap delete tap --wait`, the lab torn down, and a check that nothing is left.
 *
 * With `keep`, steps 5 is skipped: the lab stays up (`.lab/env`, `npm run lab:down`) and what to
 * try next is printed. Every `ovntap` here is the real CLI in a process of its own.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { LAB_ENV_NAMES } from "./env.js";
import { type Lab, type LabProgress, startLab } from "./lab.js";
import { run } from "./proc.js";
import { isClean, listLeftovers } from "./state.js";
import { udpRoundTrip } from "./record.js";
import { tcpRoundTrip } from "./traffic.js";

export interface DemoOptions {
  repoRoot: string;
  out(text: string): void;
  /** Leave the lab and the mirror running. */
  keep?: boolean;
  /** Packets to show before the summary. Default 24. */
  count?: number;
  /** Where the second subscriber writes the pcap; default `<lab dir>/demo.pcap`. */
  pcapOut?: string;
  envFile?: string;
  stateCopy?: string;
  signal?: AbortSignal;
  onProgress?: (p: LabProgress) => void;
  /** Called once the lab is up, before the mirror exists (tests start their own observers here). */
  onLab?: (lab: Lab) => Promise<void> | void;
  /** Called once the packets are captured, before the mirror is deleted. */
  afterCapture?: (lab: Lab) => Promise<void> | void;
}

export interface DemoResult {
  /** The packet lines `ovntap capture` printed. */
  lines: string[];
  /** The same packets, as the second subscriber wrote them. */
  pcap: string;
  /** `ovntap events` lines for the mirror. */
  events: string[];
  summary: string;
  labDir: string;
  /** Whether anything of the lab was left after teardown (always false with keep). */
  leftovers: boolean;
}

const MIRROR = "tap";
const NAMESPACE = "default";

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const out = (text: string) => opts.out(text);
  const count = opts.count ?? 24;
  const cli = join(opts.repoRoot, "services", "cli", "bin", "ovntap.js");
  out("▸ starting the lab: NATS, Redis, OVN NB/SB, ovn-northd, Open vSwitch, ovn-controller, the services\n");
  const lab = await startLab({
    repoRoot: opts.repoRoot,
    ...(opts.envFile ? { envFile: opts.envFile } : {}),
    ...(opts.stateCopy ? { stateCopy: opts.stateCopy } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  let stopped = false;
  try {
    out(
      `✓ lab ${lab.prefix} up in ${(lab.startupMs / 1000).toFixed(1)} s; services: ${lab
        .services()
        .map((s) => s.name)
        .join(", ")}\n`,
    );
    await opts.onLab?.(lab);
    const env = {
      PATH: process.env.PATH ?? "",
      HOME: lab.dir,
      NATS_URL: lab.env.NATS_URL,
      OVNTAP_PRINCIPAL: "demo",
    };
    const ovntap = async (...args: string[]) => {
      const r = await run(process.execPath, [cli, ...args], { env, allowFail: true, timeoutMs: 120_000 });
      if (r.code !== 0)
        throw new Error(`ovntap ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
      return r.stdout;
    };

    out(`\n$ ovntap create ${MIRROR} -n ${NAMESPACE} --pod pod-a --direction both --collector --wait\n`);
    out(
      await ovntap(
        "create",
        MIRROR,
        "-n",
        NAMESPACE,
        "--pod",
        "pod-a",
        "--direction",
        "both",
        "--collector",
        "--ttl",
        "10m",
        "--wait",
      ),
    );

    const pcap = opts.pcapOut ?? join(lab.dir, "demo.pcap");
    out(`\n$ ovntap capture ${MIRROR} -n ${NAMESPACE} --count ${count}      (and pod-a talks to pod-b)\n`);
    const lines: string[] = [];
    let summary = "";
    const printer = startOvntapCapture(
      cli,
      env,
      [MIRROR, "-n", NAMESPACE, "--count", String(count)],
      (line) => {
        lines.push(line);
        out(`${line}\n`);
      },
    );
    const writer = startOvntapCapture(
      cli,
      env,
      [MIRROR, "-n", NAMESPACE, "--count", String(count), "-w", pcap],
      () => undefined,
    );
    await Promise.all([printer.ready, writer.ready]);
    const both = Promise.all([printer.done, writer.done]);
    await podTraffic(lab, both);
    const [p, w] = await both;
    if (p.code !== 0 || w.code !== 0) throw new Error(`ovntap capture failed: ${p.stderr}${w.stderr}`);
    summary = lastLine(p.stderr);
    await opts.afterCapture?.(lab);

    out(`\n${summary}\n`);
    out(`  (the same ${count} packets are in ${pcap}: tshark -r ${pcap})\n`);
    out(`\n$ ovntap events ${MIRROR} -n ${NAMESPACE}\n`);
    const events = (await ovntap("events", MIRROR, "-n", NAMESPACE))
      .split("\n")
      .filter((l) => l.trim() !== "");
    out(`${events.join("\n")}\n`);

    if (opts.keep) {
      out(`\n✓ the lab is up, with mirror ${NAMESPACE}/${MIRROR}. Try:\n${tryNext(lab)}`);
      stopped = true; // left running on purpose
      return { lines, pcap, events, summary, labDir: lab.dir, leftovers: false };
    }
    out(`\n$ ovntap delete ${MIRROR} -n ${NAMESPACE} --wait\n`);
    out(await ovntap("delete", MIRROR, "-n", NAMESPACE, "--wait"));
    out("\n▸ tearing the lab down\n");
    await lab.stop();
    stopped = true;
    const left = await listLeftovers(lab.prefix);
    const leftovers = !isClean(left);
    out(leftovers ? `✗ left behind: ${JSON.stringify(left)}\n` : "✓ nothing left behind\n");
    return { lines, pcap, events, summary, labDir: lab.dir, leftovers };
  } finally {
    if (!stopped) await lab.stop().catch(() => undefined);
  }
}

export interface CaptureProcess {
  ready: Promise<void>;
  done: Promise<{ code: number | null; stderr: string }>;
}

/**
 * `ovntap capture …` (the CLI at `cli`) in a process of its own: `onLine` gets each line it
 * prints, `ready` resolves once it says it is capturing (nothing published after is missed).
 */
export function startOvntapCapture(
  cli: string,
  env: Record<string, string>,
  args: readonly string[],
  onLine: (line: string) => void,
): CaptureProcess {
  const child = spawn(process.execPath, [cli, "capture", ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let buffered = "";
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    if (stderr.includes("capturing ")) markReady();
  });
  child.stdout.on("data", (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      onLine(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  });
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on("close", (code) => {
      markReady();
      if (buffered) onLine(buffered);
      resolve({ code, stderr });
    }),
  );
  return { ready, done };
}

/** Until `until` settles: a ping, a TCP request and its response, a UDP request and its echo, again. */
export async function podTraffic(lab: Lab, until: Promise<unknown>): Promise<void> {
  let finished = false;
  void until.finally(() => (finished = true));
  while (!finished) {
    await lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP, { timeoutS: 1 });
    if (finished) break;
    await tcpRoundTrip({
      serverNs: lab.env.LAB_POD_B_NS,
      serverIp: lab.env.LAB_POD_B_IP,
      clientNs: lab.env.LAB_POD_A_NS,
      payload: "GET / HTTP/1.0",
    });
    if (finished) break;
    await udpRoundTrip(lab, "ovntap demo: a UDP request");
  }
}

function lastLine(text: string): string {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  return lines[lines.length - 1] ?? "";
}

function tryNext(lab: Lab): string {
  const envFile = join(lab.dir, "env");
  const console = lab.services().find((s) => s.name === "console");
  return [
    ...(console ? [`  open http://127.0.0.1:${console.httpPort}/   # the live console`] : []),
    `  . ${existsSync(".lab/env") ? ".lab/env" : envFile}`,
    `  npx ovntap list`,
    `  npx ovntap capture ${MIRROR} -n ${NAMESPACE}                 # live, like tcpdump (Ctrl-C to stop)`,
    `  npx ovntap capture ${MIRROR} -n ${NAMESPACE} -w - | tshark -r -`,
    `  ip netns exec $LAB_POD_A_NS ping -c 3 $LAB_POD_B_IP`,
    `  npx ovntap create m1 -n ${NAMESPACE} --pod pod-b --direction egress --gre-sink $LAB_SINK_IP --wait`,
    `  ovn-nbctl --db=$OVN_NB_DB mirror-list`,
    `  npx ovntap events --follow`,
    `  npx ovntap delete ${MIRROR} -n ${NAMESPACE} --wait`,
    `  npm run lab:down`,
    `  (the lab's variables: ${LAB_ENV_NAMES.join(", ")})`,
    "",
  ].join("\n");
}
