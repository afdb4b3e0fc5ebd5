/**
 * The native lab as code: real OVN and Open vSwitch (userspace `netdev` datapath) with
 * two "pods" and a mirror sink in network namespaces, plus NATS and Redis, all under
 * one temp dir, on ephemeral ports, under a unique name prefix `<p>` — so that two
 * labs run side by side on one machine.
 *
 *   const lab = await startLab({ services: false });
 *   await lab.nbctl("mirror-add", "m1", "gre", "77", "from-lport", lab.env.LAB_SINK_IP);
 *   await lab.nbctl("lsp-attach-mirror", "pod-a.default", "m1");
 *   await lab.stop();
 *
 * Faults, as a deployment meets them (each process comes back with the same files,
 * socket, port and environment, and the state file follows its new pid):
 *
 *   await lab.killService("ovn-applier");              // SIGKILL, a crash
 *   await lab.startService("ovn-applier");             // same env and HTTP port; resolves when ready
 *   await lab.stopServer("nb"); …; await lab.startServer("nb");   // NB down, then back
 *
 * Layout (every name carries the prefix; nothing in the root namespace has an address):
 *
 *   ns <p>-pa, <p>-pb     ns <p>-node                       root ns                      ns <p>-sink
 *                         (ovs-vswitchd, ovn-controller)
 *   eth0 10.16.0.11 ───── <p>-pa ┐
 *                                ├ br-int (OVN)
 *   eth0 10.16.0.12 ───── <p>-pb ┘
 *                         br-ul 198.51.100.1 ─ <p>-ul ── <p>-up ─ <p>-br ─ <p>-sk ── eth0 198.51.100.2
 *                                                        (Linux bridge)  LAB_CAPTURE_IF
 *
 * Why a node namespace per lab (found by running two ovs-vswitchd in one namespace):
 * - the netdev datapath is one tap named `ovs-netdev` per namespace; the second
 *   ovs-vswitchd gets "ovs-netdev: creating tap device failed: Device or resource busy"
 *   and then "failed to create bridge br-int: No such device": it has no datapath;
 * - every netdev bridge's internal port is a kernel tap named after the bridge, so two
 *   `br-int` (or `br-ul`) cannot share a namespace either, and two tunnel sources
 *   198.51.100.1/24 in one routing table would make the mirror's route ambiguous;
 * - those taps outlive ovs-vswitchd (killing it leaves `ovs-netdev`, `br-int`, `br-ul`
 *   behind): in the node namespace they go with `ip netns del`;
 * - unix sockets (`br-int.mgmt`, `br-int.snoop`, control sockets) are files, shared by
 *   all namespaces: OVS_RUNDIR/OVN_RUNDIR point them into the lab dir (ovn-controller
 *   honours OVN_RUNDIR and names its socket `ovn-controller.<pid>.ctl`; it rejects
 *   --unixctl), the other daemons get explicit --log-file/--unixctl paths.
 * NATS, Redis and the OVSDB servers stay in the root namespace on loopback and unix
 * sockets, so services and tests reach them directly. The transport path crosses the
 * root namespace through a per-lab Linux bridge without an address (or, on a kernel
 * without bridges, a tc redirect between the two veths), so a capture in the root
 * namespace — libpcap in the capture exporter — sees the mirrored traffic on
 * LAB_CAPTURE_IF = `<p>-sk`, and the host never routes a lab address.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type CaptureGreOptions, captureGre, type GrePacket } from "./capture.js";
import { formatEnvFile, type LabEnv } from "./env.js";
import {
  addrAdd,
  bridgeAdd,
  canMakeBridge,
  disableIpv6,
  linkExists,
  linkNames,
  linkUp,
  netnsAdd,
  netnsList,
  setMaster,
  tcJoin,
  vethAdd,
} from "./net.js";
import { startNatsServer } from "./nats.js";
import { type OvsdbServer, SCHEMAS, startOvsdbServer } from "./ovsdb.js";
import {
  type Daemon,
  freePort,
  isAlive,
  logTail,
  makeTempDir,
  procStartTime,
  readText,
  requireBinary,
  run,
  type RunOptions,
  type RunResult,
  spawnDaemon,
  waitFor,
} from "./proc.js";
import { startRedisServer } from "./redis.js";
import {
  discoverServices,
  findRepoRoot,
  type ServiceInfo,
  startService,
  type StartServiceOptions,
  waitServiceReady,
} from "./services.js";
import {
  LAB_MARKER,
  type LabState,
  labDirStem,
  newState,
  type ProcRecord,
  readState,
  sameProcess,
  teardown,
  type TeardownProgress,
  writeState,
} from "./state.js";
import { ping, type PingOptions, tcpRoundTrip, type TcpRoundTripOptions } from "./traffic.js";

/** The logical topology every lab has (the Kube-OVN names of the issue). */
export const LAB_TOPOLOGY = {
  logicalSwitch: "ovn-default",
  podCidr: "10.16.0.0/16",
  podA: { lsp: "pod-a.default", ip: "10.16.0.11", mac: "00:00:00:00:00:01" },
  podB: { lsp: "pod-b.default", ip: "10.16.0.12", mac: "00:00:00:00:00:02" },
  /** The transport network (TEST-NET-2): tunnel source on br-ul, and the sink. */
  transportPrefixLen: 24,
  tunnelSrcIp: "198.51.100.1",
  sinkIp: "198.51.100.2",
} as const;

/** Kernel and OVS names of a lab with this prefix (see the layout in the module comment). */
export function labNames(prefix: string) {
  return {
    nodeNs: `${prefix}-node`,
    podANs: `${prefix}-pa`,
    podBNs: `${prefix}-pb`,
    sinkNs: `${prefix}-sink`,
    /** Node-namespace ends of the pod veths = their OVS ports on br-int. */
    podAPort: `${prefix}-pa`,
    podBPort: `${prefix}-pb`,
    /** Node-namespace end of the transport veth, an OVS port on br-ul. */
    uplink: `${prefix}-ul`,
    uplinkRoot: `${prefix}-up`,
    sinkRoot: `${prefix}-sk`,
    bridge: `${prefix}-br`,
    /** Chassis name = OVS system-id = LAB_NODE. */
    chassis: `${prefix}-node`,
    integrationBridge: "br-int",
    transportBridge: "br-ul",
  } as const;
}

export type LabNames = ReturnType<typeof labNames>;

export interface LabProgress {
  step: string;
  status: "start" | "wait" | "done";
  /** Milliseconds since the step started. */
  elapsedMs: number;
  detail?: string;
}

export interface LabOptions {
  /** Name prefix for namespaces, links and the temp dir: [a-z][a-z0-9]{1,9}. Random when omitted. */
  prefix?: string;
  /**
   * Where to write the env file. `<lab dir>/env` is always written; this is an extra
   * copy (the CLI passes `<repo>/.lab/env`). Tests leave it out, so parallel labs never
   * share a file.
   */
  envFile?: string;
  /** Also keep state.json here, updated at every step (the CLI's `.lab/state.json`). */
  stateCopy?: string;
  /** Start the services under services/ (default true). */
  services?: boolean;
  /**
   * Extra environment for every service (a POLICY_FILE for intake, LOG_LEVEL, an applier's
   * tuning); the lab's own variables (the env file's, HTTP_HOST/HTTP_PORT) still win.
   */
  serviceEnv?: Readonly<Record<string, string>>;
  /** Where services/ is; found from this module's location when omitted. */
  repoRoot?: string;
  /** How the transport crosses the root namespace; "auto" = a bridge if the kernel has one, else tc. */
  transport?: "auto" | "bridge" | "tc";
  /** Deadline of each readiness wait (default 60 s). */
  waitTimeoutMs?: number;
  onProgress?: (p: LabProgress) => void;
  /** Aborting stops the start at the next step or wait, cleans up and rejects. */
  signal?: AbortSignal;
}

export class LabNeedsRootError extends Error {
  override name = "LabNeedsRootError";
  constructor() {
    super(
      "the lab needs root: run as root or with sudo — it creates network namespaces and starts Open vSwitch",
    );
  }
}

/** A service the lab runs: its current process, the loopback port of its /healthz, /readyz, /metrics, its log. */
export interface LabService {
  name: string;
  pid: number;
  httpPort: number;
  log: string;
  /** Whether that process still runs. */
  running: boolean;
}

export interface LabServiceStartOptions {
  /** Wait until the service is ready (its ready line, else /readyz answering 200); default true. */
  waitReady?: boolean;
  /** Deadline of the readiness wait; the lab's waitTimeoutMs by default. */
  timeoutMs?: number;
}

/** The lab's servers that tests may stop and start: NATS, Redis, and the three OVSDB servers. */
export type LabServerName = "nats" | "redis" | "nb" | "sb" | "ovs";
export const LAB_SERVER_NAMES: readonly LabServerName[] = ["nats", "redis", "nb", "sb", "ovs"];

export interface LogTail {
  file: string;
  tail: string;
}

/** startLab failed at `step`; what it had made is removed (see `cleanupError` if not all). */
export class LabStartError extends Error {
  override name = "LabStartError";
  cleanupError: unknown;
  constructor(
    readonly step: string,
    cause: unknown,
    readonly logs: LogTail[],
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const tails = logs
      .filter((l) => l.tail)
      .map((l) => `\n--- ${l.file} (last lines) ---\n${l.tail}`)
      .join("");
    super(`lab start failed at step "${step}": ${reason}${tails}`, { cause });
  }
}

export interface Lab {
  readonly prefix: string;
  /** The lab's temp dir (LAB_DIR). */
  readonly dir: string;
  readonly env: LabEnv;
  readonly names: LabNames;
  /** Where ovs-vswitchd and ovn-controller run, and the pod veths' node ends live. */
  readonly nodeNs: string;
  /** NB also on TCP: `tcp:127.0.0.1:<port>`. */
  readonly nbTcp: string;
  readonly stateFile: string;
  /** The env file written into the lab dir (and opts.envFile, if given). */
  readonly envFile: string;
  /** OVS_RUNDIR/OVN_RUNDIR of the node (br-int.mgmt lives here). */
  readonly runDir: string;
  /** Wall time of startLab, and of each step. */
  readonly startupMs: number;
  readonly timings: Readonly<Record<string, number>>;
  /** A snapshot of what the lab made. */
  state(): LabState;
  /** Runs a command inside a namespace (undefined = root), with the lab's OVS/OVN run dirs. */
  exec(ns: string | undefined, cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** ovn-nbctl against the lab's NB; resolves with stdout. */
  nbctl(...args: string[]): Promise<string>;
  sbctl(...args: string[]): Promise<string>;
  /** ovs-vsctl against the node's Open_vSwitch database. */
  vsctl(...args: string[]): Promise<string>;
  /** ovs-ofctl with the node's run dir (`lab.ofctl("dump-flows", "br-int")`). */
  ofctl(...args: string[]): Promise<string>;
  /** ovs-appctl to one of the lab's daemons. */
  appctl(
    target: "ovs-vswitchd" | "ovn-controller" | "ovn-northd" | "nb" | "sb" | "ovs",
    ...args: string[]
  ): Promise<string>;
  ping(fromNs: string, ip: string, opts?: PingOptions): Promise<boolean>;
  tcpRoundTrip(opts?: Partial<TcpRoundTripOptions>): Promise<string>;
  /**
   * GRE/ERSPAN packets captured at the sink (`at: "sink"`, eth0 in the sink namespace)
   * or on LAB_CAPTURE_IF in the root namespace (`at: "capture-if"`).
   */
  captureGre(
    at: "sink" | "capture-if",
    opts?: Omit<CaptureGreOptions, "iface" | "netns">,
  ): Promise<GrePacket[]>;
  /** The services the lab started (after restarts: their current processes). */
  services(): LabService[];
  /**
   * Sends `signal` to a service (default SIGKILL: a crash) and resolves once it has exited.
   * Nothing restarts it: call startService.
   */
  killService(name: string, signal?: NodeJS.Signals): Promise<void>;
  /**
   * Starts a service that is not running again, as the lab first did: the same environment,
   * the same HTTP port, its log appended to. Resolves once it is ready (see the options).
   */
  startService(name: string, opts?: LabServiceStartOptions): Promise<LabService>;
  /** killService(name, SIGTERM: a graceful stop), then startService. */
  restartService(name: string, opts?: LabServiceStartOptions): Promise<LabService>;
  /**
   * Stops one of the lab's servers (SIGTERM, then SIGKILL) and keeps what it serves: the
   * database file and socket (nb, sb, ovs), the port and store (nats, redis). Clients see it
   * go away until startServer.
   */
  stopServer(name: LabServerName): Promise<void>;
  /** Starts a stopped server again with the same files, socket and port; resolves once it listens. */
  startServer(name: LabServerName): Promise<void>;
  /** stopServer, then startServer. */
  restartServer(name: LabServerName): Promise<void>;
  /** Stops every process, deletes every namespace, link and file the lab made. Idempotent. */
  stop(): Promise<void>;
}

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0;

const BINARIES: readonly (readonly [string, string])[] = [
  ["ip", "iproute2"],
  ["ovsdb-server", "openvswitch-switch"],
  ["ovsdb-tool", "openvswitch-switch"],
  ["ovs-vswitchd", "openvswitch-switch"],
  ["ovs-vsctl", "openvswitch-switch"],
  ["ovs-ofctl", "openvswitch-switch"],
  ["ovn-northd", "ovn-central"],
  ["ovn-nbctl", "ovn-central"],
  ["ovn-sbctl", "ovn-central"],
  ["ovn-controller", "ovn-host"],
  ["nats-server", "nats-server"],
  ["redis-server", "redis-server"],
  ["ethtool", "ethtool"],
  ["ping", "iputils-ping"],
  ["sysctl", "procps"],
];

const PREFIX_RE = /^[a-z][a-z0-9]{1,9}$/;

async function pickPrefix(): Promise<string> {
  const [ns, links] = await Promise.all([netnsList(), linkNames()]);
  const taken = (p: string) => [...ns, ...links].some((n) => n.startsWith(`${p}-`));
  for (;;) {
    const p = `ot${Math.random().toString(36).slice(2, 6).padEnd(4, "0")}`;
    if (!taken(p)) return p;
  }
}

/**
 * Brings a lab up and resolves once pod-a pings pod-b through OVN and the chassis has
 * caught up with NB (`--wait=hv`). On failure removes what it made and rejects with
 * LabStartError naming the step and the relevant log tails.
 */
export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  if (!isRoot()) throw new LabNeedsRootError();
  if (opts.prefix !== undefined && !PREFIX_RE.test(opts.prefix)) {
    throw new Error(`LabOptions.prefix '${opts.prefix}' must match ${PREFIX_RE.source}`);
  }
  const began = Date.now();
  const waitTimeoutMs = opts.waitTimeoutMs ?? 60_000;
  const progress = opts.onProgress ?? (() => {});
  await Promise.all(BINARIES.map(([b, pkg]) => requireBinary(b, pkg)));

  const prefix = opts.prefix ?? (await pickPrefix());
  const n = labNames(prefix);
  const dir = makeTempDir(labDirStem(prefix));
  const runDir = join(dir, "run");
  mkdirSync(runDir);
  const state = newState(prefix, dir);
  const stateFile = join(dir, "state.json");
  const statePaths = [stateFile, ...(opts.stateCopy ? [opts.stateCopy] : [])];
  if (opts.stateCopy) {
    mkdirSync(dirname(opts.stateCopy), { recursive: true });
    state.files.push(opts.stateCopy);
  }
  const save = () => writeState(state, statePaths);
  save();

  const daemonEnv: NodeJS.ProcessEnv = {
    ...process.env,
    OVS_RUNDIR: runDir,
    OVN_RUNDIR: runDir,
    OVS_LOGDIR: dir,
    OVN_LOGDIR: dir,
    OVS_DBDIR: dir,
    OVN_DBDIR: dir,
    [LAB_MARKER]: prefix,
  };
  const log = (name: string) => join(dir, `${name}.log`);
  const track = (d: Daemon, netns?: string) => {
    state.pids.push({
      name: d.name,
      pid: d.pid,
      startTime: procStartTime(d.pid),
      log: d.log,
      ...(netns ? { netns } : {}),
    });
    save();
  };
  const timings: Record<string, number> = {};

  /** Runs one start step: progress, timing, and on failure the step's name and log tails. */
  const step = async <T>(name: string, logs: readonly string[], fn: () => Promise<T>): Promise<T> => {
    if (opts.signal?.aborted) throw new LabStartError(name, new Error("interrupted"), []);
    const t = Date.now();
    progress({ step: name, status: "start", elapsedMs: 0 });
    try {
      const v = await fn();
      timings[name] = Date.now() - t;
      progress({ step: name, status: "done", elapsedMs: timings[name] });
      return v;
    } catch (err) {
      if (err instanceof LabStartError) throw err;
      // An interrupted start is not a failure of the step: no log tails.
      if (opts.signal?.aborted) throw new LabStartError(name, new Error("interrupted"), []);
      throw new LabStartError(
        name,
        err,
        logs.map((file) => ({ file, tail: logTail(file, 15) })),
      );
    }
  };

  /**
   * A bounded condition wait that reports progress every 2 s, honours the signal, and
   * fails at once when one of `daemons` dies (instead of waiting out the deadline).
   */
  const waitUntil = async <T>(
    what: string,
    stepName: string,
    cond: () => T | Promise<T>,
    daemons: readonly Daemon[] = [],
  ): Promise<NonNullable<T>> => {
    const t = Date.now();
    let lastReport = t;
    const r = await waitFor(
      async () => {
        if (opts.signal?.aborted) return { kind: "aborted" } as const;
        const dead = daemons.find((d) => !isAlive(d.pid));
        if (dead) return { kind: "dead", dead } as const;
        if (Date.now() - lastReport >= 2_000) {
          lastReport = Date.now();
          progress({ step: stepName, status: "wait", elapsedMs: Date.now() - t, detail: what });
        }
        const v = await cond();
        return v ? ({ kind: "value", value: v } as const) : undefined;
      },
      { what, timeoutMs: waitTimeoutMs, intervalMs: 100 },
    );
    if (r.kind === "aborted") throw new Error("aborted");
    if (r.kind === "dead")
      throw new Error(`${r.dead.name.replace(/\.out$/, "")} exited (log: ${r.dead.log})`);
    return r.value;
  };

  const vsctl = async (...args: string[]) =>
    (await run("ovs-vsctl", [`--db=unix:${join(dir, "ovs.sock")}`, ...args], { env: daemonEnv })).stdout;
  const nbctl = async (...args: string[]) =>
    (await run("ovn-nbctl", [`--db=unix:${join(dir, "nb.sock")}`, ...args])).stdout;
  const sbctl = async (...args: string[]) =>
    (await run("ovn-sbctl", [`--db=unix:${join(dir, "sb.sock")}`, ...args])).stdout;

  let env: LabEnv;
  let nbTcp: string;
  let launchers!: Record<LabServerName, ServerLauncher>;
  const serviceRuntime = new Map<string, ServiceRuntime>();
  try {
    // 1. Servers and namespaces at once: nothing among them depends on another.
    const [servers] = await allSettled([
      step(
        "servers",
        [log("nb"), log("sb"), log("ovs"), log("nats-server"), log("redis-server")],
        async () => {
          const started = await Promise.allSettled([
            startNatsServer({ dir: join(dir, "nats") }),
            startRedisServer({ dir: join(dir, "redis") }),
            startOvsdbServer({ schema: SCHEMAS.nb, name: "nb", dir, tcp: true }),
            startOvsdbServer({ schema: SCHEMAS.sb, name: "sb", dir }),
            startOvsdbServer({ schema: SCHEMAS.vswitch, name: "ovs", dir }),
          ] as const);
          for (const s of started) if (s.status === "fulfilled") track(s.value.daemon);
          const failed = started.find((s) => s.status === "rejected");
          if (failed) throw failed.reason;
          const [nats, redis, nb, sb, ovs] = started.map(
            (s) => (s as PromiseFulfilledResult<unknown>).value,
          ) as [
            Awaited<ReturnType<typeof startNatsServer>>,
            Awaited<ReturnType<typeof startRedisServer>>,
            Awaited<ReturnType<typeof startOvsdbServer>>,
            Awaited<ReturnType<typeof startOvsdbServer>>,
            Awaited<ReturnType<typeof startOvsdbServer>>,
          ];
          return { nats, redis, nb, sb, ovs };
        },
      ),
      step("namespaces and links", [], () => makeNetwork(n, state, save, opts.transport ?? "auto")),
    ]);
    const { nats, redis, nb, sb, ovs } = servers;
    launchers = servers;
    nbTcp = nb.tcp ?? "";

    // 2. Configuration written before the daemons that act on it start, so they come up
    //    in their final state at once instead of reconfiguring.
    await allSettled([
      step("node Open_vSwitch config", [log("ovs")], async () => {
        await vsctl(
          ...["--no-wait", "init"],
          ...["--", "set", "Open_vSwitch", ".", `external_ids:system-id=${n.chassis}`],
          `external_ids:ovn-remote=${sb.unix}`,
          "external_ids:ovn-encap-type=geneve",
          `external_ids:ovn-encap-ip=${LAB_TOPOLOGY.tunnelSrcIp}`,
          `external_ids:ovn-bridge=${n.integrationBridge}`,
          ...["--", "add-br", n.integrationBridge],
          ...["--", "set", "Bridge", n.integrationBridge, "datapath_type=netdev", "fail-mode=secure"],
          ...["--", "add-br", n.transportBridge],
          ...["--", "set", "Bridge", n.transportBridge, "datapath_type=netdev"],
          ...["--", "add-port", n.transportBridge, n.uplink],
          ...["--", "add-port", n.integrationBridge, n.podAPort],
          ...["--", "set", "Interface", n.podAPort, `external_ids:iface-id=${LAB_TOPOLOGY.podA.lsp}`],
          ...["--", "add-port", n.integrationBridge, n.podBPort],
          ...["--", "set", "Interface", n.podBPort, `external_ids:iface-id=${LAB_TOPOLOGY.podB.lsp}`],
        );
        state.ovsBridges.push(n.integrationBridge, n.transportBridge);
        save();
      }),
      step("NB logical switch and ports", [log("nb")], async () => {
        const { podA, podB, logicalSwitch } = LAB_TOPOLOGY;
        await nbctl(
          ...["ls-add", logicalSwitch],
          ...["--", "lsp-add", logicalSwitch, podA.lsp],
          ...["--", "lsp-set-addresses", podA.lsp, `${podA.mac} ${podA.ip}`],
          ...["--", "lsp-add", logicalSwitch, podB.lsp],
          ...["--", "lsp-set-addresses", podB.lsp, `${podB.mac} ${podB.ip}`],
        );
      }),
      step("ovn-northd", [log("ovn-northd")], async () => {
        const d = spawnDaemon({
          name: "ovn-northd.out",
          cmd: "ovn-northd",
          args: [
            `--log-file=${log("ovn-northd")}`,
            `--unixctl=${join(dir, "ovn-northd.ctl")}`,
            `--ovnnb-db=${nb.unix}`,
            `--ovnsb-db=${sb.unix}`,
          ],
          dir,
          env: daemonEnv,
        });
        track(d);
        await waitUntil(
          "ovn-northd to take the SB lock",
          "ovn-northd",
          () => /lock acquired|now active/.test(readText(log("ovn-northd"))),
          [d],
        );
      }),
    ]);

    // 3. ovs-vswitchd in the node namespace. A write without --no-wait returns only once
    //    ovs-vswitchd applied the database (cur_cfg caught up with next_cfg).
    await step("ovs-vswitchd", [log("ovs-vswitchd"), log("ovs-vswitchd.out")], async () => {
      const d = spawnDaemon({
        name: "ovs-vswitchd.out",
        cmd: "ovs-vswitchd",
        args: [
          `--log-file=${log("ovs-vswitchd")}`,
          `--unixctl=${join(dir, "ovs-vswitchd.ctl")}`,
          "-vconsole:off",
          ovs.unix,
        ],
        dir,
        env: daemonEnv,
        netns: n.nodeNs,
      });
      track(d, n.nodeNs);
      await vsctl(
        `--timeout=${Math.ceil(waitTimeoutMs / 1000)}`,
        "set",
        "Open_vSwitch",
        ".",
        `external_ids:ovntap-lab=${prefix}`,
      );
      const errors = (await vsctl("--format=csv", "--data=bare", "--columns=name,error", "list", "Interface"))
        .split("\n")
        .slice(1)
        .filter((l) => l.split(",")[1]);
      if (errors.length) throw new Error(`OVS interfaces in error: ${errors.join("; ")}`);
      // br-ul's internal port is a tap ovs-vswitchd creates; the tunnel source goes on it.
      await waitUntil(
        `tap ${n.transportBridge} in ${n.nodeNs}`,
        "ovs-vswitchd",
        () => linkExists(n.transportBridge, n.nodeNs),
        [d],
      );
      await addrAdd(
        n.transportBridge,
        `${LAB_TOPOLOGY.tunnelSrcIp}/${LAB_TOPOLOGY.transportPrefixLen}`,
        n.nodeNs,
      );
      await linkUp(n.transportBridge, n.nodeNs);
    });

    // 4. ovn-controller: registers the chassis, programs br-int, binds the pods' ports.
    await step(
      "ovn-controller",
      [log("ovn-controller"), log("ovn-controller.out"), log("ovn-northd")],
      async () => {
        const d = spawnDaemon({
          name: "ovn-controller.out",
          cmd: "ovn-controller",
          // No --unixctl: ovn-controller 23.03 rejects it; its control socket is
          // `<OVN_RUNDIR>/ovn-controller.<pid>.ctl`, inside the lab dir all the same.
          args: [`--log-file=${log("ovn-controller")}`, "-vconsole:off", ovs.unix],
          dir,
          env: daemonEnv,
          netns: n.nodeNs,
        });
        track(d, n.nodeNs);
        await waitUntil(
          `chassis ${n.chassis} in SB`,
          "ovn-controller",
          async () =>
            (await sbctl("--bare", "--columns=name", "list", "Chassis")).split("\n").includes(n.chassis),
          [d],
        );
        for (const lsp of [LAB_TOPOLOGY.podA.lsp, LAB_TOPOLOGY.podB.lsp]) {
          await waitUntil(
            `${lsp} bound to ${n.chassis}`,
            "ovn-controller",
            async () =>
              (
                await sbctl("--bare", "--columns=chassis", "find", "Port_Binding", `logical_port=${lsp}`)
              ).trim(),
            [d],
          );
        }
      },
    );

    await step("chassis caught up with NB (--wait=hv)", [log("ovn-controller"), log("ovn-northd")], () =>
      nbctl(`--timeout=${Math.ceil(waitTimeoutMs / 1000)}`, "--wait=hv", "sync"),
    );

    await step("pod-a pings pod-b", [log("ovn-controller"), log("ovs-vswitchd")], async () => {
      await waitUntil(`${n.podANs} to ping ${LAB_TOPOLOGY.podB.ip}`, "pod-a pings pod-b", () =>
        ping(n.podANs, LAB_TOPOLOGY.podB.ip, { timeoutS: 1 }),
      );
      // Flows exist on br-int (ovn-controller really programmed it, through the lab's run dir).
      const agg = await run("ovs-ofctl", ["dump-aggregate", `unix:${join(runDir, "br-int.mgmt")}`]);
      if (!/flow_count=[1-9]/.test(agg.stdout)) throw new Error(`br-int has no flows: ${agg.stdout.trim()}`);
    });

    env = {
      NATS_URL: nats.url,
      REDIS_URL: redis.url,
      OVN_NB_DB: nb.unix,
      OVN_SB_DB: sb.unix,
      OVS_DB: ovs.unix,
      LAB_DIR: dir,
      LAB_NODE: n.chassis,
      LAB_POD_A_NS: n.podANs,
      LAB_POD_B_NS: n.podBNs,
      LAB_POD_A_IP: LAB_TOPOLOGY.podA.ip,
      LAB_POD_B_IP: LAB_TOPOLOGY.podB.ip,
      LAB_POD_A_PORT: n.podAPort,
      LAB_POD_B_PORT: n.podBPort,
      LAB_SINK_NS: n.sinkNs,
      LAB_SINK_IP: LAB_TOPOLOGY.sinkIp,
      LAB_CAPTURE_IF: n.sinkRoot,
    };
    const labEnv = env;
    state.env = labEnv;

    if (opts.services !== false) {
      const repoRoot = opts.repoRoot ?? findRepoRoot();
      const services = discoverServices(repoRoot);
      if (services.length) {
        await step("services", [], async () => {
          const names = services.map((s) => s.name).join(", ");
          progress({ step: "services", status: "wait", elapsedMs: 0, detail: `services ${names}` });
          const extraEnv = { OVS_RUNDIR: runDir, OVN_RUNDIR: runDir, [LAB_MARKER]: prefix };
          const started: (readonly [ServiceInfo, Daemon, number])[] = [];
          state.services = [];
          for (const svc of services) {
            const httpPort = await freePort();
            const startOpts: StartServiceOptions = {
              labDir: dir,
              repoRoot,
              env: labEnv,
              extraEnv,
              httpPort,
              // The sink of `collector` mirrors is the lab's sink address, where the
              // capture exporter sees the tunnels (on LAB_CAPTURE_IF); its PCAP-over-IP
              // listener is off, so labs side by side do not collide on port 57012. A
              // test's own serviceEnv may say otherwise.
              // Services run in the root namespace; the node agent reaches the node's links
              // and routes in the node namespace (NODE_NETNS).
              serviceEnv: {
                COLLECTOR_SINK: labEnv.LAB_SINK_IP,
                CAPTURE_INTERFACE: labEnv.LAB_CAPTURE_IF,
                NODE_NETNS: n.nodeNs,
                PCAP_OVER_IP_PORT: "0",
                ...opts.serviceEnv,
              },
            };
            serviceRuntime.set(svc.name, { svc, opts: startOpts });
            const d = startService(svc, startOpts);
            track(d);
            state.services.push({ name: svc.name, pid: d.pid, httpPort, log: d.log });
            save();
            started.push([svc, d, httpPort] as const);
          }
          try {
            await Promise.all(
              started.map(([svc, d, httpPort]) => waitServiceReady(svc, d, httpPort, waitTimeoutMs)),
            );
          } catch (err) {
            throw new LabStartError(
              `services`,
              err,
              started.map(([, d]) => ({ file: d.log, tail: logTail(d.log, 15) })),
            );
          }
        });
      }
    }

    await step("env file", [], () => {
      const text = formatEnvFile(labEnv);
      writeFileSync(join(dir, "env"), text);
      if (opts.envFile) {
        mkdirSync(dirname(opts.envFile), { recursive: true });
        state.files.push(opts.envFile);
        save();
        writeFileSync(opts.envFile, text);
      }
      return Promise.resolve();
    });

    // Everything recorded must still run: a daemon that died after its readiness check
    // (a service crashing on its first connection) fails the start here, not later.
    await step(
      "final check",
      state.pids.map((p) => p.log),
      () => {
        const dead = state.pids.filter((p) => !sameProcess(p));
        if (dead.length)
          throw new Error(`exited after start: ${dead.map((p) => `${p.name} (pid ${p.pid})`).join(", ")}`);
        return Promise.resolve();
      },
    );
  } catch (err) {
    const failure = err instanceof LabStartError ? err : new LabStartError("start", err, []);
    try {
      await teardown(state);
    } catch (cleanupErr) {
      failure.cleanupError = cleanupErr;
      failure.message += `\ncleanup after the failure also failed: ${
        cleanupErr instanceof Error ? cleanupErr.message : String(cleanupErr)
      } (state: ${stateFile}; run 'lab down --state ${stateFile}' to retry)`;
    }
    throw failure;
  }

  state.ready = true;
  state.timings = { ...timings, total: Date.now() - began };
  save();
  return makeLab({
    state,
    env,
    nbTcp,
    runDir,
    stateFile,
    envFile: opts.envFile ?? join(dir, "env"),
    daemonEnv,
    save,
    launchers,
    serviceRuntime,
    waitTimeoutMs,
  });
}

/** Namespaces, veths, the root bridge; every one recorded before the next is made. */
async function makeNetwork(
  n: LabNames,
  state: LabState,
  save: () => void,
  transport: "auto" | "bridge" | "tc",
): Promise<void> {
  for (const ns of [n.nodeNs, n.podANs, n.podBNs, n.sinkNs]) {
    await netnsAdd(ns);
    state.netns.push(ns);
    save();
    await linkUp("lo", ns);
    await disableIpv6(ns);
  }
  const pods = [
    [n.podANs, n.podAPort, LAB_TOPOLOGY.podA],
    [n.podBNs, n.podBPort, LAB_TOPOLOGY.podB],
  ] as const;
  for (const [ns, port, pod] of pods) {
    // Both ends live in namespaces the lab deletes; the pair goes with them.
    await vethAdd(port, n.nodeNs, "eth0", ns);
    state.links.push({ name: port, netns: n.nodeNs, kind: "veth" });
    save();
    await linkUp(port, n.nodeNs);
    await linkUp("eth0", ns, pod.mac);
    await addrAdd("eth0", `${pod.ip}/16`, ns);
    // The userspace datapath does not complete checksums the veth left to offload:
    // with tx offload on, TCP segments arrive with bad checksums (ICMP still works).
    await run("ethtool", ["-K", "eth0", "tx", "off"], { netns: ns });
  }

  await vethAdd(n.uplink, n.nodeNs, n.uplinkRoot, undefined);
  state.links.push({ name: n.uplinkRoot, kind: "veth" });
  save();
  await vethAdd(n.sinkRoot, undefined, "eth0", n.sinkNs);
  state.links.push({ name: n.sinkRoot, kind: "veth" });
  save();
  for (const l of [n.uplinkRoot, n.sinkRoot]) await disableIpv6(undefined, l);

  const useBridge = transport === "bridge" || (transport === "auto" && (await canMakeBridge(n.bridge)));
  if (useBridge) {
    await bridgeAdd(n.bridge);
    state.links.push({ name: n.bridge, kind: "bridge" });
    save();
    await disableIpv6(undefined, n.bridge);
    await setMaster(n.uplinkRoot, n.bridge);
    await setMaster(n.sinkRoot, n.bridge);
    await linkUp(n.bridge);
  } else {
    await tcJoin(n.uplinkRoot, n.sinkRoot);
  }
  await linkUp(n.uplinkRoot);
  await linkUp(n.sinkRoot);
  await linkUp(n.uplink, n.nodeNs);
  await linkUp("eth0", n.sinkNs);
  await addrAdd("eth0", `${LAB_TOPOLOGY.sinkIp}/${LAB_TOPOLOGY.transportPrefixLen}`, n.sinkNs);
}

/** What the lab needs of a server launcher to stop and start it in place. */
type ServerLauncher = Pick<OvsdbServer, "daemon" | "halt" | "start" | "restart">;

/** How a service was started, to start it again the same way. */
interface ServiceRuntime {
  svc: ServiceInfo;
  opts: StartServiceOptions;
}

interface MakeLabArgs {
  state: LabState;
  env: LabEnv;
  nbTcp: string;
  runDir: string;
  stateFile: string;
  envFile: string;
  daemonEnv: NodeJS.ProcessEnv;
  /** Writes the state file(s). */
  save: () => void;
  launchers: Record<LabServerName, ServerLauncher>;
  serviceRuntime: ReadonlyMap<string, ServiceRuntime>;
  waitTimeoutMs: number;
}

function makeLab(a: MakeLabArgs): Lab {
  const { state, env } = a;
  const names = labNames(state.prefix);
  const dir = state.dir;
  const out = async (cmd: string, args: readonly string[]) =>
    (await run(cmd, args, { env: a.daemonEnv })).stdout;
  let stopping: Promise<void> | undefined;

  /** Records that the process `oldPid` was replaced by `d`, so teardown stops the new one. */
  const replaced = (oldPid: number, d: Daemon) => {
    const rec: ProcRecord = { name: d.name, pid: d.pid, startTime: procStartTime(d.pid), log: d.log };
    const i = state.pids.findIndex((p) => p.pid === oldPid);
    if (i >= 0) state.pids[i] = rec;
    else state.pids.push(rec);
    a.save();
  };
  const serviceRecord = (name: string) => {
    const rec = state.services?.find((s) => s.name === name);
    if (!rec) {
      const known = (state.services ?? []).map((s) => s.name).join(", ") || "none";
      throw new Error(`the lab runs no service '${name}' (its services: ${known})`);
    }
    return rec;
  };
  const killService = async (name: string, signal: NodeJS.Signals = "SIGKILL") => {
    const rec = serviceRecord(name);
    if (!isAlive(rec.pid)) return;
    try {
      process.kill(rec.pid, signal);
    } catch {
      return; // gone meanwhile
    }
    await waitFor(() => !isAlive(rec.pid), {
      what: `service ${name} (pid ${rec.pid}) to exit after ${signal}`,
      timeoutMs: signal === "SIGKILL" ? 10_000 : 60_000,
      intervalMs: 20,
    });
  };
  const startServiceAgain = async (name: string, o: LabServiceStartOptions = {}): Promise<LabService> => {
    const rec = serviceRecord(name);
    const rt = a.serviceRuntime.get(name);
    if (!rt) throw new Error(`service '${name}' was not started by this lab process`);
    if (isAlive(rec.pid)) throw new Error(`service ${name} still runs (pid ${rec.pid}): kill it first`);
    const logOffset = readText(rec.log).length;
    const d = startService(rt.svc, rt.opts);
    replaced(rec.pid, d);
    rec.pid = d.pid;
    a.save();
    if (o.waitReady !== false) {
      await waitServiceReady(rt.svc, d, rt.opts.httpPort, o.timeoutMs ?? a.waitTimeoutMs, logOffset);
    }
    return { ...rec, running: isAlive(d.pid) };
  };
  const launcher = (name: LabServerName) => {
    const l = a.launchers[name];
    if (!l) throw new Error(`no lab server '${name}' (servers: ${LAB_SERVER_NAMES.join(", ")})`);
    return l;
  };
  /** Runs a start of a server and records its new process. */
  const startingServer = async (name: LabServerName, how: (l: ServerLauncher) => Promise<void>) => {
    const l = launcher(name);
    const oldPid = l.daemon.pid;
    await how(l);
    if (l.daemon.pid !== oldPid) replaced(oldPid, l.daemon);
  };

  return {
    prefix: state.prefix,
    dir,
    env,
    names,
    nodeNs: names.nodeNs,
    nbTcp: a.nbTcp,
    stateFile: a.stateFile,
    envFile: a.envFile,
    runDir: a.runDir,
    startupMs: state.timings?.total ?? 0,
    timings: state.timings ?? {},
    state: () => structuredClone(state),
    exec: (ns, cmd, args, opts = {}) =>
      run(cmd, args, { env: a.daemonEnv, ...opts, ...(ns ? { netns: ns } : {}) }),
    nbctl: (...args) => out("ovn-nbctl", [`--db=${env.OVN_NB_DB}`, ...args]),
    sbctl: (...args) => out("ovn-sbctl", [`--db=${env.OVN_SB_DB}`, ...args]),
    vsctl: (...args) => out("ovs-vsctl", [`--db=${env.OVS_DB}`, ...args]),
    ofctl: (...args) => out("ovs-ofctl", args),
    appctl: (target, ...args) => out("ovs-appctl", ["-t", controlSocket(state, a.runDir, target), ...args]),
    ping: (fromNs, ip, opts) => ping(fromNs, ip, opts),
    tcpRoundTrip: (opts = {}) =>
      tcpRoundTrip({
        serverNs: env.LAB_POD_B_NS,
        serverIp: env.LAB_POD_B_IP,
        clientNs: env.LAB_POD_A_NS,
        ...opts,
      }),
    captureGre: (at, opts = {}) =>
      captureGre({
        ...opts,
        ...(at === "sink" ? { netns: env.LAB_SINK_NS, iface: "eth0" } : { iface: env.LAB_CAPTURE_IF }),
      }),
    services: () => (state.services ?? []).map((s) => ({ ...s, running: isAlive(s.pid) })),
    killService,
    startService: startServiceAgain,
    restartService: async (name, o) => {
      await killService(name, "SIGTERM");
      return startServiceAgain(name, o);
    },
    stopServer: (name) => launcher(name).halt(),
    startServer: (name) => startingServer(name, (l) => l.start()),
    restartServer: (name) => startingServer(name, (l) => l.restart()),
    stop: () => (stopping ??= teardown(state)),
  };
}

/** The unixctl socket of a lab daemon (ovn-controller names its own after its pid). */
function controlSocket(state: LabState, runDir: string, target: string): string {
  if (target !== "ovn-controller") return join(state.dir, `${target}.ctl`);
  const rec = state.pids.find((p) => p.name === "ovn-controller.out");
  return join(runDir, `ovn-controller.${rec?.pid ?? 0}.ctl`);
}

/** Tears down the lab a state file describes (from any process: `lab:down`). */
export async function stopLabFromState(stateFile: string, progress?: TeardownProgress): Promise<void> {
  if (!isRoot()) throw new LabNeedsRootError();
  await teardown(readState(stateFile), progress);
}

/**
 * Like Promise.all, but waits for every promise to settle before rejecting: a step
 * still running in parallel must not record things after teardown has begun.
 */
async function allSettled<T extends readonly unknown[]>(
  ps: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results = await Promise.allSettled(ps);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}
