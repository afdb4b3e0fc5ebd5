/**
 * The lab CLI (`npm run lab:up`, `lab:down`, `lab`): what each verb does, apart from
 * the process plumbing in cli.ts, so it can be tested in-process.
 *
 *   lab demo [--keep] [--count N]
 *   lab up [--env-out PATH] [--no-services] [--prefix P] [--transport auto|bridge|tc]
 *   lab down [--state PATH]
 *   lab status [--state PATH]
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LAB_ENV_NAMES } from "./env.js";
import { runDemo } from "./demo.js";
import { type LabProgress, LabNeedsRootError, startLab, stopLabFromState } from "./lab.js";
import { linkExists, netnsList } from "./net.js";
import { findRepoRoot } from "./services.js";
import { type LabState, readState, sameProcess, teardown } from "./state.js";

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  isRoot(): boolean;
  /** Aborted on SIGINT/SIGTERM while `up` runs. */
  signal?: AbortSignal;
  repoRoot?: string;
}

const USAGE = `usage: lab <command> [options]

  demo    the product end to end (root): the lab and every service, a --collector mirror of
          pod-a, its packets printed live while the pods talk, a summary and the mirror's events,
          then everything torn down
            --keep            leave the lab and the mirror running, and print what to try next
            --count N         packets to show (default 24)
  up      bring the lab up (root)
            --env-out PATH   where to write the env file (default <repo>/.lab/env)
            --no-services     do not start the services under services/
            --prefix P        name prefix for namespaces and links (default random)
            --transport T     auto | bridge | tc (how the sink path crosses the root namespace)
  down    tear the lab down (root)
            --state PATH      state file (default <repo>/.lab/state.json)
  status  show what of the lab runs
            --state PATH
`;

const NEEDS_ROOT =
  "the lab needs root: run as root or with sudo — it creates network namespaces and starts Open vSwitch\n";

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Runs one CLI invocation; resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = argv;
  const repoRoot = io.repoRoot ?? findRepoRoot();
  const labDir = join(repoRoot, ".lab");
  const defaultState = join(labDir, "state.json");
  let args: ReturnType<typeof parse>;
  try {
    args = parse(rest);
  } catch (err) {
    io.err(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  const stateFile = args.state ?? defaultState;

  switch (verb) {
    case "demo": {
      if (!io.isRoot()) return fail(io, NEEDS_ROOT);
      if (existsSync(defaultState) && readState(defaultState).pids.some(sameProcess)) {
        return fail(io, `a lab is already up: run 'npm run lab:down' first\n`);
      }
      const count = args.count === undefined ? undefined : Number(args.count);
      if (count !== undefined && !(Number.isInteger(count) && count >= 1 && count <= 100_000)) {
        return fail(
          io,
          `--count: must be a whole number from 1 to 100000, not ${JSON.stringify(args.count)}\n`,
        );
      }
      try {
        const r = await runDemo({
          repoRoot,
          out: (t) => io.out(t),
          keep: args.keep === true,
          ...(count !== undefined ? { count } : {}),
          envFile: join(labDir, "env"),
          stateCopy: defaultState,
          ...(args.keep ? {} : { pcapOut: join(labDir, "demo.pcap") }),
          ...(io.signal ? { signal: io.signal } : {}),
          onProgress: (p) => io.out(progressLine(p)),
        });
        return r.leftovers ? 1 : 0;
      } catch (err) {
        if (err instanceof LabNeedsRootError) return fail(io, NEEDS_ROOT);
        return fail(io, `${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
    case "up": {
      if (!io.isRoot()) return fail(io, NEEDS_ROOT);
      if (existsSync(defaultState)) {
        const old = readState(defaultState);
        if (old.pids.some(sameProcess)) {
          return fail(
            io,
            `a lab is already up (prefix ${old.prefix}, ${old.dir}): run 'npm run lab:down' first\n`,
          );
        }
        io.out(`▸ removing what is left of an earlier lab (${old.prefix})\n`);
        await teardown(old, (m) => io.out(`  ${m}\n`));
      }
      const envFile = args["env-out"] ?? join(labDir, "env");
      try {
        const lab = await startLab({
          envFile,
          stateCopy: defaultState,
          services: !args["no-services"],
          ...(args.prefix ? { prefix: args.prefix } : {}),
          ...(args.transport ? { transport: args.transport as "auto" | "bridge" | "tc" } : {}),
          ...(io.signal ? { signal: io.signal } : {}),
          onProgress: (p) => io.out(progressLine(p)),
        });
        io.out(`✓ lab ${lab.prefix} is up in ${secs(lab.startupMs)}\n`);
        io.out(`  env file: ${envFile}   (load it: . ${envFile})\n`);
        io.out(`  state:    ${defaultState}\n`);
        for (const n of LAB_ENV_NAMES) io.out(`  ${n}=${lab.env[n]}\n`);
        io.out(`  stop it:  npm run lab:down\n`);
        return 0;
      } catch (err) {
        if (err instanceof LabNeedsRootError) return fail(io, NEEDS_ROOT);
        return fail(io, `${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
    case "down": {
      if (!io.isRoot()) return fail(io, NEEDS_ROOT);
      if (!existsSync(stateFile)) {
        io.out(`no lab is up (no ${stateFile})\n`);
        return 0;
      }
      const state = readState(stateFile);
      io.out(`▸ tearing down lab ${state.prefix} (${state.dir})\n`);
      const t = Date.now();
      try {
        await stopLabFromState(stateFile, (m) => io.out(`  ${m}\n`));
      } catch (err) {
        return fail(io, `${err instanceof Error ? err.message : String(err)}\n`);
      }
      io.out(`✓ lab ${state.prefix} is down (${secs(Date.now() - t)})\n`);
      return 0;
    }
    case "status": {
      if (!existsSync(stateFile)) {
        io.out(`no lab is up (no ${stateFile})\n`);
        return 3;
      }
      const up = await printStatus(readState(stateFile), io);
      return up ? 0 : 3;
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      io.out(USAGE);
      return verb === undefined ? 2 : 0;
    default:
      io.err(`unknown command '${verb}'\n\n${USAGE}`);
      return 2;
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: {
      // Not --env-file: Node 20 takes that flag for itself wherever it stands on the command line.
      "env-out": { type: "string" },
      "no-services": { type: "boolean" },
      prefix: { type: "string" },
      transport: { type: "string" },
      state: { type: "string" },
      keep: { type: "boolean" },
      count: { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  }).values;
}

function fail(io: CliIo, message: string): number {
  io.err(`✗ ${message}`);
  return 1;
}

export function progressLine(p: LabProgress): string {
  switch (p.status) {
    case "start":
      return `▸ ${p.step}\n`;
    case "wait":
      return `  … waiting for ${p.detail ?? p.step} (${secs(p.elapsedMs)})\n`;
    case "done":
      return `  ✓ ${p.step} (${p.elapsedMs} ms)\n`;
  }
}

/** Prints each recorded process, namespace and root link; true when all are there. */
async function printStatus(state: LabState, io: CliIo): Promise<boolean> {
  let ok = state.ready;
  io.out(
    `lab ${state.prefix} (${state.dir}), started ${state.createdAt}${state.ready ? "" : ", NOT READY"}\n`,
  );
  for (const p of state.pids) {
    const alive = sameProcess(p);
    ok &&= alive;
    io.out(`  ${alive ? "✓" : "✗"} ${p.name.replace(/\.out$/, "")} pid ${p.pid}${alive ? "" : " (gone)"}\n`);
  }
  const present = new Set(await netnsList());
  for (const ns of state.netns) {
    ok &&= present.has(ns);
    io.out(`  ${present.has(ns) ? "✓" : "✗"} netns ${ns}\n`);
  }
  for (const l of state.links.filter((x) => x.netns === undefined)) {
    const there = await linkExists(l.name);
    ok &&= there;
    io.out(`  ${there ? "✓" : "✗"} ${l.kind} ${l.name}\n`);
  }
  if (state.env) io.out(`  capture on ${state.env.LAB_CAPTURE_IF}; sink ${state.env.LAB_SINK_IP}\n`);
  io.out(ok ? "up\n" : "not (fully) up: 'npm run lab:down' cleans up\n");
  return ok;
}
