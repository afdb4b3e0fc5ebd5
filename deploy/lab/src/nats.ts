/**
 * nats-server on an ephemeral loopback port, JetStream on, in a private directory.
 * Modelled on nats.js `nst/src/launcher.ts` (port -1 and the ports file).
 *
 *   const nats = await startNatsServer();
 *   // nats.url === "nats://127.0.0.1:<port>"
 *   await nats.restart();   // same port, same JetStream store
 *   await nats.halt();      // down until …
 *   await nats.start();     // … it listens on the same port with the same store again
 *   await nats.stop();
 */
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import {
  type Daemon,
  isAlive,
  makeTempDir,
  readText,
  removeDir,
  requireBinary,
  spawnDaemon,
  stopOnFailure,
  waitFor,
} from "./proc.js";

export interface NatsServerOptions {
  /** Directory for the store, log and ports file; a fresh temp dir when omitted (removed on stop). */
  dir?: string;
  jetstream?: boolean;
  /** Extra configuration file text (e.g. authorization blocks), written to `<dir>/nats.conf`. */
  config?: string;
  /** Start inside this network namespace (loopback of that namespace). */
  netns?: string;
}

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly daemon: Daemon;
  /** Whether the server process runs (false after halt() or stop(), or when it died). */
  readonly running: boolean;
  /** Stops and starts it again on the same port with the same JetStream store. */
  restart(): Promise<void>;
  /** Stops the process (SIGTERM, then SIGKILL) and keeps the port and the store for start(). */
  halt(): Promise<void>;
  /** Starts it again after halt() (or a crash) on the same port with the same JetStream store. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = await requireBinary("nats-server", "nats-server");
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? makeTempDir("ovntap-nats-");
  mkdirSync(dir, { recursive: true });
  const portsDir = join(dir, "ports");
  mkdirSync(portsDir, { recursive: true });
  let confArgs: string[] = [];
  if (opts.config) {
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(dir, "nats.conf"), opts.config);
    confArgs = ["-c", join(dir, "nats.conf")];
  }

  const launch = async (port: number) => {
    for (const f of readdirSync(portsDir)) removeDir(join(portsDir, f));
    const args = [
      ...confArgs,
      "-a",
      "127.0.0.1",
      "-p",
      String(port),
      "--ports_file_dir",
      portsDir,
      ...(opts.jetstream === false ? [] : ["-js", "-sd", join(dir, "jetstream")]),
    ];
    const daemon = spawnDaemon({
      name: "nats-server",
      cmd: bin,
      args,
      dir,
      ...(opts.netns ? { netns: opts.netns } : {}),
    });
    const url = await stopOnFailure(
      daemon,
      waitFor(
        () => {
          const file = readdirSync(portsDir).find((f) => f.endsWith(".ports"));
          if (!file) return undefined;
          const ports = JSON.parse(readText(join(portsDir, file)) || "{}") as { nats?: string[] };
          return ports.nats?.[0];
        },
        { what: `nats-server to listen (log: ${daemon.log})`, timeoutMs: 20_000 },
      ),
    );
    return { daemon, url };
  };

  let { daemon, url } = await launch(-1);
  const port = Number(new URL(url).port);
  let removed = false;
  const server: NatsServer = {
    get url() {
      return url;
    },
    port,
    dir,
    get daemon() {
      return daemon;
    },
    get running() {
      return isAlive(daemon.pid);
    },
    async restart() {
      await daemon.stop();
      ({ daemon, url } = await launch(port));
    },
    halt: () => daemon.stop(),
    async start() {
      if (removed) throw new Error("nats-server was stopped and its directory removed: start a new one");
      if (isAlive(daemon.pid)) return;
      ({ daemon, url } = await launch(port));
    },
    async stop() {
      await daemon.stop();
      if (ownDir) {
        removed = true;
        removeDir(dir);
      }
    },
  };
  return server;
}
