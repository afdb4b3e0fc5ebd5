/**
 * redis-server on a free loopback port, in a private directory, append-only file on
 * (so a restart keeps every acknowledged write, as the fault tests require).
 *
 *   const redis = await startRedisServer();
 *   // redis.url === "redis://127.0.0.1:<port>"
 *   await redis.halt();     // down until …
 *   await redis.start();    // … it listens on the same port with the same data again
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  type Daemon,
  freePort,
  isAlive,
  makeTempDir,
  readText,
  removeDir,
  requireBinary,
  spawnDaemon,
  stopOnFailure,
  waitFor,
} from "./proc.js";

export interface RedisServerOptions {
  dir?: string;
  appendonly?: boolean;
  netns?: string;
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly daemon: Daemon;
  /** Whether the server process runs (false after halt() or stop(), or when it died). */
  readonly running: boolean;
  restart(): Promise<void>;
  /** Stops the process (SIGTERM: it writes its append-only file) and keeps the port and data for start(). */
  halt(): Promise<void>;
  /** Starts it again after halt() (or a crash) on the same port with the same data. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const bin = await requireBinary("redis-server", "redis-server");
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? makeTempDir("ovntap-redis-");
  mkdirSync(dir, { recursive: true });

  const launch = async (port: number): Promise<Daemon | undefined> => {
    const log = join(dir, "redis-server.log");
    const before = readText(log).length;
    const daemon = spawnDaemon({
      name: "redis-server-stdout",
      cmd: bin,
      args: [
        "--bind",
        "127.0.0.1",
        "--port",
        String(port),
        "--dir",
        dir,
        "--logfile",
        log,
        "--appendonly",
        opts.appendonly === false ? "no" : "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
      ],
      dir,
      ...(opts.netns ? { netns: opts.netns } : {}),
    });
    const outcome = await stopOnFailure(
      daemon,
      waitFor(
        () => {
          const text = readText(log).slice(before);
          if (text.includes("Ready to accept connections")) return "ready";
          if (/Address already in use|Could not create server TCP listening socket/.test(text)) return "busy";
          return undefined;
        },
        { what: `redis-server to listen (log: ${log})`, timeoutMs: 20_000 },
      ),
    );
    if (outcome === "busy") {
      await daemon.stop();
      return undefined;
    }
    return daemon;
  };

  let port = 0;
  let daemon: Daemon | undefined;
  for (let attempt = 0; attempt < 5 && !daemon; attempt++) {
    port = await freePort();
    daemon = await launch(port);
  }
  if (!daemon) throw new Error("redis-server found no free port after 5 attempts");
  let current: Daemon = daemon;
  let removed = false;
  const relaunch = async () => {
    const d = await launch(port);
    if (!d) throw new Error(`redis-server could not listen on ${port} again`);
    current = d;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get daemon() {
      return current;
    },
    get running() {
      return isAlive(current.pid);
    },
    async restart() {
      await current.stop();
      await relaunch();
    },
    halt: () => current.stop(),
    async start() {
      if (removed) throw new Error("redis-server was stopped and its directory removed: start a new one");
      if (isAlive(current.pid)) return;
      await relaunch();
    },
    async stop() {
      await current.stop();
      if (ownDir) {
        removed = true;
        removeDir(dir);
      }
    },
  };
}
