/**
 * iproute2 as the agent uses it: `ip [-n NETNS] [-j] …`, with JSON for everything it reads.
 * One injectable function runs the binary, so the code that builds commands and reads their
 * JSON is tested against recorded `ip -j` output, and the same code drives the real `ip`.
 *
 *   const ip = createIp({ netns: "node-ns" });
 *   const links = await ip.json<IpLink[]>(["-d", "link", "show"]);
 *   await ip.run(["link", "set", "dev", "x", "up"]);
 */
import { execFile } from "node:child_process";

/** What one `ip` invocation returned. */
export interface IpResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `ip` with these arguments (already including `-n`/`-j`); never throws on a non-zero exit. */
export type IpExec = (args: readonly string[]) => Promise<IpResult>;

/** `ip` exited non-zero; `stderr` is iproute2's own message ("Error: Unknown device type."). */
export class IpCommandError extends Error {
  override name = "IpCommandError";
  constructor(
    readonly args: readonly string[],
    readonly code: number,
    readonly stderr: string,
  ) {
    super(`ip ${args.join(" ")} failed (exit ${code}): ${stderr.trim() || "no message"}`);
  }
}

/** The real binary; `ip` not found is reported as exit 127 with a hint, like a shell would. */
export const execIp: IpExec = (args) =>
  new Promise((resolve) => {
    execFile("ip", [...args], { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === "ENOENT") {
        resolve({ code: 127, stdout: "", stderr: "ip: command not found (install iproute2)" });
        return;
      }
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });

export interface Ip {
  /** The namespace every command runs in (undefined: the agent's own). */
  readonly netns: string | undefined;
  /** Runs a command; throws IpCommandError on a non-zero exit. */
  run(args: readonly string[]): Promise<IpResult>;
  /** Runs a command; resolves with the result whatever the exit code. */
  tryRun(args: readonly string[]): Promise<IpResult>;
  /** Runs `ip -j …` and parses its JSON (an empty output is `[]`). */
  json<T>(args: readonly string[]): Promise<T>;
  /** The same commands in another namespace. */
  in(netns: string | undefined): Ip;
}

export function createIp(opts: { netns?: string | undefined; exec?: IpExec } = {}): Ip {
  const exec = opts.exec ?? execIp;
  const full = (args: readonly string[]) => (opts.netns ? ["-n", opts.netns, ...args] : [...args]);
  const self: Ip = {
    netns: opts.netns,
    async run(args) {
      const argv = full(args);
      const r = await exec(argv);
      if (r.code !== 0) throw new IpCommandError(argv, r.code, r.stderr);
      return r;
    },
    tryRun: (args) => exec(full(args)),
    async json<T>(args: readonly string[]): Promise<T> {
      const r = await self.run(["-j", ...args]);
      const text = r.stdout.trim();
      // iproute2 prints nothing (not "[]") for an empty dump in some versions.
      return (text === "" ? [] : JSON.parse(text)) as T;
    },
    in: (netns) => createIp({ netns, exec }),
  };
  return self;
}

// ---------------------------------------------------------------------------------------
// The parts of `ip -j` output the agent reads (iproute2 ip/ipaddress.c, ip/link_gre.c).

export interface IpAddrInfo {
  /** "inet" or "inet6". */
  family: string;
  local: string;
  prefixlen: number;
  scope?: string;
}

export interface IpLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu: number;
  operstate?: string;
  link_type?: string;
  address?: string;
  /** `ip link set dev X alias …`; the agent marks the links it owns here. */
  ifalias?: string;
  /** The peer's or lower device's name (veth, vlan, `dev` of a tunnel). */
  link?: string;
  /** With `-d`. */
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
  addr_info?: IpAddrInfo[];
}

export interface IpRoute {
  dst?: string;
  gateway?: string;
  dev?: string;
  prefsrc?: string;
  flags?: string[];
}
