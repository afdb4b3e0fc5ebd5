/**
 * Traffic between the lab's namespaces for tests: ping, and a TCP round trip through a
 * one-shot echo server (plain Node in the namespace; no netcat needed).
 *
 *   await ping("ot4k2x-pa", "10.16.0.12");                       // → true
 *   await tcpRoundTrip({ serverNs: "ot4k2x-pb", serverIp: "10.16.0.12",
 *                        clientNs: "ot4k2x-pa", payload: "hello" }); // → "hello"
 */
import { spawn } from "node:child_process";
import { run } from "./proc.js";

export interface PingOptions {
  count?: number;
  /** Seconds to wait for each reply (ping -W). */
  timeoutS?: number;
  /** Seconds between echo requests (ping -i, at least 0.002 for root). */
  intervalS?: number;
}

/** True when every echo request got a reply. */
export async function ping(fromNs: string, ip: string, opts: PingOptions = {}): Promise<boolean> {
  const count = opts.count ?? 1;
  const r = await run(
    "ping",
    [
      ...["-n", "-q", "-c", String(count), "-W", String(opts.timeoutS ?? 1)],
      ...(opts.intervalS !== undefined ? ["-i", String(opts.intervalS)] : []),
      ip,
    ],
    {
      netns: fromNs,
      allowFail: true,
      timeoutMs: (count * ((opts.intervalS ?? 1) + (opts.timeoutS ?? 1)) + 5) * 1000,
    },
  );
  return r.code === 0 && new RegExp(`${count} received`).test(r.stdout);
}

// One connection, echoed back, then exit. argv: ip, port.
const ECHO_SERVER = `
const net = require("node:net");
const [ip, port] = process.argv.slice(1);
const s = net.createServer((c) => { s.close(); c.pipe(c); });
s.listen(Number(port), ip, () => process.stdout.write("listening " + s.address().port + "\\n"));
`;

// Sends argv payload, half-closes, prints everything that comes back. argv: ip, port, payload.
const ECHO_CLIENT = `
const net = require("node:net");
const [ip, port, payload] = process.argv.slice(1);
const chunks = [];
const c = net.connect(Number(port), ip, () => c.end(payload));
c.on("data", (d) => chunks.push(d));
c.on("end", () => process.stdout.write(Buffer.concat(chunks)));
c.on("error", (e) => { process.stderr.write(String(e)); process.exit(1); });
`;

export interface TcpRoundTripOptions {
  serverNs: string;
  serverIp: string;
  clientNs: string;
  /** Default "ovntap lab tcp check". */
  payload?: string;
  /** Default 0: the server takes an ephemeral port. */
  port?: number;
  timeoutMs?: number;
}

/** Runs an echo server in one namespace and a client in another; returns what came back. */
export async function tcpRoundTrip(opts: TcpRoundTripOptions): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const payload = opts.payload ?? "ovntap lab tcp check";
  const server = spawn(
    "ip",
    [
      "netns",
      "exec",
      opts.serverNs,
      process.execPath,
      "-e",
      ECHO_SERVER,
      opts.serverIp,
      String(opts.port ?? 0),
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      let err = "";
      const timer = setTimeout(() => reject(new Error(`echo server did not listen: ${err}`)), timeoutMs);
      server.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /listening (\d+)/.exec(out);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      server.stderr.on("data", (d: Buffer) => (err += d.toString()));
      server.on("error", reject);
      server.on("close", (code) => reject(new Error(`echo server exited with ${code}: ${err}`)));
    });
    const r = await run(process.execPath, ["-e", ECHO_CLIENT, opts.serverIp, String(port), payload], {
      netns: opts.clientNs,
      timeoutMs,
    });
    return r.stdout;
  } finally {
    if (server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
  }
}
