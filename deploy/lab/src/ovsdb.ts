/**
 * A standalone ovsdb-server with a given schema (the real OVN NB/SB or Open_vSwitch
 * schema installed by Debian), a fresh database file, a unix socket and optionally a
 * TCP remote on an ephemeral loopback port.
 *
 *   const nb = await startOvsdbServer({ schema: SCHEMAS.nb, name: "nb", tcp: true });
 *   // nb.unix === "unix:/…/nb.sock", nb.tcp === "tcp:127.0.0.1:<port>"
 *   await nb.restart();    // same database file, same socket, same TCP port
 *   await nb.halt();       // down (clients see the socket vanish) until …
 *   await nb.start();      // … it serves the same file on the same socket and port again
 */
import { existsSync, mkdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import {
  type Daemon,
  isAlive,
  makeTempDir,
  readText,
  removeDir,
  requireBinary,
  run,
  spawnDaemon,
  stopOnFailure,
  waitFor,
} from "./proc.js";

/** The schema files Debian's packages install. */
export const SCHEMAS = {
  nb: "/usr/share/ovn/ovn-nb.ovsschema",
  sb: "/usr/share/ovn/ovn-sb.ovsschema",
  vswitch: "/usr/share/openvswitch/vswitch.ovsschema",
} as const;

export interface OvsdbServerOptions {
  schema: string;
  /** Short name for files: `<dir>/<name>.db`, `.sock`, `.ctl`, `.log`. Default "db". */
  name?: string;
  dir?: string;
  /** Also listen on TCP 127.0.0.1 at an ephemeral port. */
  tcp?: boolean;
  netns?: string;
  /** Extra ovsdb-server arguments. */
  extraArgs?: readonly string[];
}

export interface OvsdbServer {
  /** `unix:<path>` remote. */
  readonly unix: string;
  readonly socketPath: string;
  /** `tcp:127.0.0.1:<port>` remote, when asked for. */
  readonly tcp: string | undefined;
  readonly dbFile: string;
  readonly ctl: string;
  readonly dir: string;
  readonly daemon: Daemon;
  /** Whether the server process runs (false after halt() or stop(), or when it died). */
  readonly running: boolean;
  restart(): Promise<void>;
  /** Stops the process (SIGTERM, then SIGKILL) and keeps the database file, socket path and TCP port for start(). */
  halt(): Promise<void>;
  /** Starts it again after halt() (or a crash): the same database file, socket and TCP port. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startOvsdbServer(opts: OvsdbServerOptions): Promise<OvsdbServer> {
  const bin = await requireBinary("ovsdb-server", "openvswitch-switch");
  const tool = await requireBinary("ovsdb-tool", "openvswitch-switch");
  if (!existsSync(opts.schema)) {
    throw new Error(`schema ${opts.schema} is missing: install ovn-central / openvswitch-switch`);
  }
  const name = opts.name ?? "db";
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? makeTempDir(`ovntap-${name}-`);
  mkdirSync(dir, { recursive: true });
  const dbFile = join(dir, `${name}.db`);
  const socketPath = join(dir, `${name}.sock`);
  const ctl = join(dir, `${name}.ctl`);
  const log = join(dir, `${name}.log`);
  if (!existsSync(dbFile)) await run(tool, ["create", dbFile, opts.schema]);

  let tcpPort = 0;
  const launch = async (): Promise<Daemon> => {
    const before = readText(log).length;
    const args = [
      `--log-file=${log}`,
      `--unixctl=${ctl}`,
      `--remote=punix:${socketPath}`,
      ...(opts.tcp ? [`--remote=ptcp:${tcpPort}:127.0.0.1`] : []),
      ...(opts.extraArgs ?? []),
      dbFile,
    ];
    // stdout/stderr go to `<name>.out`; ovsdb-server writes its own log to `<name>.log`.
    const daemon = spawnDaemon({
      name: `${name}.out`,
      cmd: bin,
      args,
      dir,
      ...(opts.netns ? { netns: opts.netns } : {}),
    });
    await stopOnFailure(
      daemon,
      waitFor(
        () => {
          if (!existsSync(socketPath)) return false;
          if (!opts.tcp) return true;
          // A fixed port (restart) is not logged; probe it.
          if (tcpPort !== 0) return canConnect(tcpPort);
          // socket_util: "0:127.0.0.1: listening on port 46389"
          const m = /listening on port (\d+)/.exec(readText(log).slice(before));
          if (m?.[1]) tcpPort = Number(m[1]);
          return m !== null;
        },
        { what: `ovsdb-server ${name} to listen (log: ${log})`, timeoutMs: 20_000 },
      ),
    );
    return daemon;
  };

  let daemon = await launch();
  let removed = false;
  const halt = async () => {
    await daemon.stop();
    // A killed server leaves its socket file; the next launch waits for a fresh one.
    removeDir(socketPath);
  };
  return {
    unix: `unix:${socketPath}`,
    socketPath,
    get tcp() {
      return opts.tcp ? `tcp:127.0.0.1:${tcpPort}` : undefined;
    },
    dbFile,
    ctl,
    dir,
    get daemon() {
      return daemon;
    },
    get running() {
      return isAlive(daemon.pid);
    },
    async restart() {
      await halt();
      daemon = await launch();
    },
    halt,
    async start() {
      if (removed)
        throw new Error(`ovsdb-server ${name} was stopped and its directory removed: start a new one`);
      if (isAlive(daemon.pid)) return;
      removeDir(socketPath);
      daemon = await launch();
    },
    async stop() {
      await daemon.stop();
      if (ownDir) {
        removed = true;
        removeDir(dir);
      }
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
