/**
 * Pcaps of real mirrored traffic, recorded from the lab for the packet decoders' cross-checks
 * against tshark: GRE with a key and ERSPAN type II from OVN mirrors, ERSPAN type III from an OVS
 * `erspan_ver=2` tunnel port under an OVS Mirror. Each file holds one round of traffic between
 * pod-a and pod-b — ARP (pod-a's neighbour cache is flushed first), an ICMP echo, a TCP request and
 * response, a UDP request and response — mirrored in both directions, as tcpdump sees it on the
 * lab's capture interface (LAB_CAPTURE_IF, in the root namespace). TCP and UDP go to the echo port.
 *
 *   const lab = await startLab({ services: false });
 *   const recorded = await recordFixtures({ lab, outDir });   // gre.pcap, erspan2.pcap, erspan3.pcap
 *   writeFileSync(join(outDir, "README.md"), fixturesReadme(recorded));
 *   await lab.stop();
 *
 * Both directions are two mirrors with a tunnel id each (OVN `from-lport` and `to-lport` rows; OVS
 * `select_src_port` and `select_dst_port` Mirrors): OVN 23.03 has no `both`, and one OVS Mirror
 * selecting a port both ways mirrors a packet only once, so an ARP reply OVN answers back out of the
 * port it came in by would be missing. Recording stops once every tunnel carried every protocol and
 * its TCP FIN, not after a fixed time.
 */
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decapsulate, decodeFrame, decodePcap, formatIp, TCP_FIN } from "@ovntap/packet";
import type { Decapsulated } from "@ovntap/packet";
import type { Lab } from "./lab.js";
import { LAB_TOPOLOGY } from "./lab.js";
import { makeTempDir, removeDir, requireBinary, run, waitFor } from "./proc.js";

export type FixtureName = "gre" | "erspan2" | "erspan3";
export type TunnelDirection = "from-lport" | "to-lport";
export type InnerProtocol = "arp" | "icmp" | "tcp" | "udp";

/** One mirror of a recording: its OVN row or OVS port name, the tunnel id it carries, its direction. */
export interface FixtureTunnel {
  readonly name: string;
  /** GRE key, or ERSPAN session id. */
  readonly id: number;
  readonly direction: TunnelDirection;
}

export interface FixtureSpec {
  readonly name: FixtureName;
  readonly file: string;
  /** What decapsulate() must say of every packet. */
  readonly kind: Decapsulated["kind"];
  /** GRE protocol type: the BPF filter keeps this fixture's packets only. */
  readonly greProtocol: number;
  readonly how: string;
  readonly tunnels: readonly [FixtureTunnel, FixtureTunnel];
}

/** ERSPAN III hardware id written by the OVS ports (`options:erspan_hwid`). */
export const ERSPAN3_HWID = 5;

export const FIXTURES: Readonly<Record<FixtureName, FixtureSpec>> = {
  gre: {
    name: "gre",
    file: "gre.pcap",
    kind: "gre",
    greProtocol: 0x6558,
    how: "OVN mirrors of type gre (ovn-nbctl mirror-add … gre KEY …)",
    tunnels: [
      { name: "fx-gre-from", id: 77, direction: "from-lport" },
      { name: "fx-gre-to", id: 78, direction: "to-lport" },
    ],
  },
  erspan2: {
    name: "erspan2",
    file: "erspan2.pcap",
    kind: "erspan2",
    greProtocol: 0x88be,
    how: "OVN mirrors of type erspan (ovn-nbctl mirror-add … erspan INDEX …; ovn-controller sets erspan_ver=1, type II)",
    tunnels: [
      { name: "fx-ers-from", id: 7, direction: "from-lport" },
      { name: "fx-ers-to", id: 8, direction: "to-lport" },
    ],
  },
  erspan3: {
    name: "erspan3",
    file: "erspan3.pcap",
    kind: "erspan3",
    greProtocol: 0x22eb,
    how:
      "OVS tunnel ports type=erspan options:erspan_ver=2 (type III) on br-int, each the output_port of an " +
      "OVS Mirror selecting pod-a's port (select_src_port: erspan_dir=0, ingress; select_dst_port: " +
      `erspan_dir=1, egress), erspan_hwid=${ERSPAN3_HWID}`,
    tunnels: [
      { name: "fx-e3-from", id: 9, direction: "from-lport" },
      { name: "fx-e3-to", id: 10, direction: "to-lport" },
    ],
  },
};

export const FIXTURE_NAMES: readonly FixtureName[] = ["gre", "erspan2", "erspan3"];
export const INNER_PROTOCOLS: readonly InnerProtocol[] = ["arp", "icmp", "tcp", "udp"];

// ---------------------------------------------------------------------------------------------
// Mirrors

async function ovnMirrors(lab: Lab, spec: FixtureSpec): Promise<() => Promise<void>> {
  const type = spec.kind === "gre" ? "gre" : "erspan";
  const lsp = LAB_TOPOLOGY.podA.lsp;
  const args: string[] = [];
  for (const t of spec.tunnels) {
    if (args.length) args.push("--");
    args.push("mirror-add", t.name, type, String(t.id), t.direction, lab.env.LAB_SINK_IP);
    args.push("--", "lsp-attach-mirror", lsp, t.name);
  }
  await lab.nbctl(...args);
  await lab.nbctl("--timeout=60", "--wait=hv", "sync");
  // ovn-controller made each row an OVS tunnel port `ovn-<name>` that vswitchd accepted.
  for (const t of spec.tunnels) {
    await waitFor(
      async () =>
        (await lab.vsctl("--if-exists", "get", "Interface", `ovn-${t.name}`, "ofport"))
          .trim()
          .match(/^[1-9]/),
      { what: `OVS port ovn-${t.name} of mirror ${t.name}`, timeoutMs: 30_000 },
    );
  }
  return async () => {
    const down: string[] = [];
    for (const t of spec.tunnels) {
      if (down.length) down.push("--");
      down.push("lsp-detach-mirror", lsp, t.name, "--", "mirror-del", t.name);
    }
    await lab.nbctl(...down);
    await lab.nbctl("--timeout=60", "--wait=hv", "sync");
  };
}

async function ovsErspan3Mirrors(lab: Lab, spec: FixtureSpec): Promise<() => Promise<void>> {
  const bridge = lab.names.integrationBridge;
  const pod = lab.env.LAB_POD_A_PORT;
  const args = ["--", "--id=@pod", "get", "Port", pod];
  for (const [i, t] of spec.tunnels.entries()) {
    const egress = t.direction === "to-lport";
    args.push(
      ...["--", "add-port", bridge, t.name],
      ...["--", "set", "Interface", t.name, "type=erspan", "options:erspan_ver=2"],
      `options:erspan_dir=${egress ? 1 : 0}`,
      `options:erspan_hwid=${ERSPAN3_HWID}`,
      `options:remote_ip=${lab.env.LAB_SINK_IP}`,
      `options:key=${t.id}`,
      ...["--", `--id=@o${i}`, "get", "Port", t.name],
      ...["--", `--id=@m${i}`, "create", "Mirror", `name=${t.name}`],
      `${egress ? "select_dst_port" : "select_src_port"}=@pod`,
      `output_port=@o${i}`,
      ...["--", "add", "Bridge", bridge, "mirrors", `@m${i}`],
    );
  }
  // Without --no-wait, ovs-vsctl returns once ovs-vswitchd has applied the change.
  await lab.vsctl(...args);
  for (const t of spec.tunnels) {
    const error = (await lab.vsctl("get", "Interface", t.name, "error")).trim();
    if (error !== "[]") throw new Error(`OVS refused the ERSPAN port ${t.name}: ${error}`);
  }
  return async () => {
    const down: string[] = [];
    for (const t of spec.tunnels) {
      down.push(...["--", "--if-exists", "del-port", bridge, t.name]);
      const uuid = (await lab.vsctl("--bare", "--columns=_uuid", "find", "Mirror", `name=${t.name}`)).trim();
      if (uuid) down.push(...["--", "remove", "Bridge", bridge, "mirrors", uuid]);
    }
    await lab.vsctl(...down);
  };
}

// ---------------------------------------------------------------------------------------------
// Traffic

/**
 * The echo port (RFC 862) for the TCP and UDP exchanges: tshark decodes it as Echo whatever the
 * client's ephemeral port is, instead of guessing a protocol from a random port.
 */
export const ECHO_PORT = 7;

// One datagram echoed back, then exit. argv: ip, port.
const UDP_ECHO_SERVER = `
const s = require("node:dgram").createSocket("udp4");
s.on("message", (m, r) => s.send(m, r.port, r.address, () => s.close()));
s.bind(Number(process.argv[2]), process.argv[1], () => process.stdout.write("listening " + s.address().port + "\\n"));
`;
// Sends argv payload, prints the answer. argv: ip, port, payload.
const UDP_ECHO_CLIENT = `
const [ip, port, payload] = process.argv.slice(1);
const s = require("node:dgram").createSocket("udp4");
const timer = setTimeout(() => { process.stderr.write("no UDP echo"); process.exit(1); }, 5000);
s.on("message", (m) => { process.stdout.write(m); clearTimeout(timer); s.close(); });
s.send(payload, Number(port), ip);
`;

/** A UDP request from pod-a and its echo from pod-b; returns what came back. */
export async function udpRoundTrip(lab: Lab, payload: string): Promise<string> {
  const server = spawn(
    "ip",
    [
      "netns",
      "exec",
      lab.env.LAB_POD_B_NS,
      process.execPath,
      "-e",
      UDP_ECHO_SERVER,
      lab.env.LAB_POD_B_IP,
      String(ECHO_PORT),
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      let err = "";
      const timer = setTimeout(() => reject(new Error(`UDP echo server did not bind: ${err}`)), 10_000);
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
    });
    const r = await run(
      process.execPath,
      ["-e", UDP_ECHO_CLIENT, lab.env.LAB_POD_B_IP, String(port), payload],
      {
        netns: lab.env.LAB_POD_A_NS,
        timeoutMs: 10_000,
      },
    );
    return r.stdout;
  } finally {
    if (server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
  }
}

/** One round: ARP (pod-a's neighbour cache flushed), an ICMP echo, a TCP and a UDP request/response. */
export async function trafficRound(lab: Lab): Promise<void> {
  const { LAB_POD_A_NS: podA, LAB_POD_B_IP: podB } = lab.env;
  await lab.exec(podA, "ip", ["neigh", "flush", "all"]);
  if (!(await lab.ping(podA, podB, { count: 1, timeoutS: 2 })))
    throw new Error(`pod-a (${podA}) got no echo reply from ${podB}`);
  const tcp = "ovntap fixture: tcp request";
  const tcpBack = await lab.tcpRoundTrip({ payload: tcp, port: ECHO_PORT });
  if (tcpBack !== tcp) throw new Error(`TCP echo came back as ${JSON.stringify(tcpBack)}`);
  const udp = "ovntap fixture: udp request";
  const udpBack = await udpRoundTrip(lab, udp);
  if (udpBack !== udp) throw new Error(`UDP echo came back as ${JSON.stringify(udpBack)}`);
}

// ---------------------------------------------------------------------------------------------
// What a file holds

export interface TunnelContents {
  readonly id: number;
  readonly packets: number;
  /** Inner packets by protocol. */
  readonly inner: Readonly<Record<InnerProtocol | "other", number>>;
  /** TCP segments with FIN: a TCP exchange recorded to its end in this direction. */
  readonly tcpFins: number;
}

export interface PcapContents {
  readonly packets: number;
  /** Packets that are not `kind` (should be none: the BPF filter keeps one GRE protocol). */
  readonly foreign: number;
  readonly tunnels: ReadonlyMap<number, TunnelContents>;
  readonly outer: ReadonlySet<string>;
}

/** Decapsulate and classify every packet of a (possibly still growing) pcap. */
export function pcapContents(bytes: Buffer, kind: Decapsulated["kind"]): PcapContents {
  const tunnels = new Map<
    number,
    { id: number; packets: number; inner: Record<InnerProtocol | "other", number>; tcpFins: number }
  >();
  const outer = new Set<string>();
  let foreign = 0;
  const pcap = decodePcap(bytes);
  const records = pcap.ok ? pcap.records : [];
  for (const r of records) {
    const d = decapsulate(r.data);
    if (!d.ok || d.kind !== kind || d.tunnelId === undefined) {
      foreign++;
      continue;
    }
    outer.add(`${formatIp(d.outer.src)} > ${formatIp(d.outer.dst)}`);
    let t = tunnels.get(d.tunnelId);
    if (t === undefined) {
      t = { id: d.tunnelId, packets: 0, inner: { arp: 0, icmp: 0, tcp: 0, udp: 0, other: 0 }, tcpFins: 0 };
      tunnels.set(d.tunnelId, t);
    }
    t.packets++;
    const f = decodeFrame(d.inner, d.innerLinkType);
    const proto: InnerProtocol | "other" = !f.ok
      ? "other"
      : f.arp !== undefined
        ? "arp"
        : f.l4?.protocol === "tcp" || f.l4?.protocol === "udp" || f.l4?.protocol === "icmp"
          ? f.l4.protocol
          : "other";
    t.inner[proto]++;
    if (f.ok && f.l4?.protocol === "tcp" && (f.l4.flags & TCP_FIN) !== 0) t.tcpFins++;
  }
  return { packets: records.length, foreign, tunnels, outer };
}

/** What is still missing for `spec`: every tunnel with every protocol and a TCP FIN. Empty when complete. */
export function missing(spec: FixtureSpec, c: PcapContents): string[] {
  const out: string[] = [];
  for (const t of spec.tunnels) {
    const got = c.tunnels.get(t.id);
    const lacks: string[] = INNER_PROTOCOLS.filter((p) => (got?.inner[p] ?? 0) === 0);
    if ((got?.tcpFins ?? 0) === 0) lacks.push("tcp FIN");
    if (lacks.length) out.push(`${t.name} (id ${t.id}, ${t.direction}): ${lacks.join(", ")}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Recording

interface Tcpdump {
  stop(): Promise<void>;
}

/** tcpdump writing `file` packet by packet (-U), started once it says it is listening. */
async function tcpdumpToFile(iface: string, filter: string, file: string): Promise<Tcpdump> {
  const tcpdump = await requireBinary("tcpdump", "tcpdump");
  // -Z root: Debian's tcpdump would otherwise drop to user tcpdump, who cannot write the lab's dir.
  const child = spawn(tcpdump, ["-i", iface, "-n", "-U", "-Z", "root", "-s", "262144", "-w", file, filter], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes("listening on")) resolve();
    });
    child.on("error", reject);
    void exited.then((code) => reject(new Error(`tcpdump on ${iface} exited (${code}): ${stderr.trim()}`)));
  });
  return {
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
      await exited;
    },
  };
}

export interface RecordOptions {
  readonly lab: Lab;
  /** Where the pcaps go (created if missing). */
  readonly outDir: string;
  /** Default: all three. */
  readonly only?: readonly FixtureName[];
  /** How long one recording may wait for its traffic (default 60 s). */
  readonly timeoutMs?: number;
  readonly onProgress?: (line: string) => void;
}

export interface FixtureRecording {
  readonly spec: FixtureSpec;
  /** The pcap written. */
  readonly path: string;
  readonly contents: PcapContents;
}

export interface ToolVersions {
  readonly ovs: string;
  readonly ovn: string;
  readonly tcpdump: string;
  readonly libpcap: string;
  readonly kernel: string;
  readonly os: string;
}

export interface Recorded {
  readonly recordings: readonly FixtureRecording[];
  readonly versions: ToolVersions;
}

async function firstLine(cmd: string, args: readonly string[]): Promise<string> {
  const r = await run(cmd, args, { allowFail: true });
  return (
    `${r.stdout}${r.stderr}`
      .split("\n")
      .find((l) => l.trim() !== "")
      ?.trim() ?? "unknown"
  );
}

export async function toolVersions(): Promise<ToolVersions> {
  const tcpdump = await run("tcpdump", ["--version"], { allowFail: true });
  const lines = `${tcpdump.stdout}${tcpdump.stderr}`.split("\n");
  let os = "unknown";
  try {
    os = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? os;
  } catch {
    /* not Linux-like: keep unknown */
  }
  return {
    ovs: await firstLine("ovs-vswitchd", ["--version"]),
    ovn: await firstLine("ovn-controller", ["--version"]),
    tcpdump: lines.find((l) => l.startsWith("tcpdump"))?.trim() ?? "unknown",
    libpcap: lines.find((l) => l.startsWith("libpcap"))?.trim() ?? "unknown",
    kernel: await firstLine("uname", ["-sr"]),
    os,
  };
}

/** Records one fixture: mirrors up, capture, one round of traffic until complete, mirrors down. */
export async function recordFixture(
  lab: Lab,
  spec: FixtureSpec,
  path: string,
  opts: { timeoutMs?: number; onProgress?: (line: string) => void } = {},
): Promise<FixtureRecording> {
  const say = opts.onProgress ?? (() => {});
  const tmp = makeTempDir(`ovntap-fixture-${spec.name}-`);
  const file = join(tmp, spec.file);
  say(
    `${spec.name}: mirrors ${spec.tunnels.map((t) => `${t.name} (${t.direction}, id ${t.id})`).join(", ")}`,
  );
  const teardown = spec.kind === "erspan3" ? await ovsErspan3Mirrors(lab, spec) : await ovnMirrors(lab, spec);
  try {
    // GRE's protocol type sits 2 octets into its header, after a 20-octet IPv4 header (OVS sends no options).
    const filter = `ip proto 47 and ip[22:2] = 0x${spec.greProtocol.toString(16).padStart(4, "0")}`;
    const capture = await tcpdumpToFile(lab.env.LAB_CAPTURE_IF, filter, file);
    try {
      say(`${spec.name}: capturing on ${lab.env.LAB_CAPTURE_IF} (${filter}); traffic`);
      await trafficRound(lab);
      let left: string[] = [];
      await waitFor(
        () => {
          left = missing(spec, pcapContents(readFileSync(file), spec.kind));
          return left.length === 0;
        },
        {
          what: `${spec.file} to hold every protocol in both directions`,
          timeoutMs: opts.timeoutMs ?? 60_000,
          intervalMs: 100,
        },
      ).catch((e: unknown) => {
        throw new Error(`${spec.file} is incomplete: ${left.join("; ")}`, { cause: e });
      });
    } finally {
      await capture.stop();
    }
    const contents = pcapContents(readFileSync(file), spec.kind);
    if (contents.foreign > 0)
      throw new Error(`${spec.file}: ${contents.foreign} packets are not ${spec.kind}`);
    copyFileSync(file, path);
    say(`${spec.name}: ${contents.packets} packets → ${path}`);
    await teardown();
    return { spec, path, contents };
  } catch (e) {
    // The recording's own failure is the one to report; a teardown failing after it is noted in it.
    await teardown().catch((down: unknown) => {
      if (e instanceof Error) e.message += `; removing the mirrors afterwards failed too: ${String(down)}`;
    });
    throw e;
  } finally {
    removeDir(tmp);
  }
}

export async function recordFixtures(opts: RecordOptions): Promise<Recorded> {
  mkdirSync(opts.outDir, { recursive: true });
  const recordings: FixtureRecording[] = [];
  for (const name of opts.only ?? FIXTURE_NAMES) {
    const spec = FIXTURES[name];
    recordings.push(
      await recordFixture(opts.lab, spec, join(opts.outDir, spec.file), {
        ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      }),
    );
  }
  return { recordings, versions: await toolVersions() };
}

// ---------------------------------------------------------------------------------------------
// The README beside the files

export function fixturesReadme(r: Recorded): string {
  const v = r.versions;
  const rows = r.recordings.flatMap(({ spec, contents }) =>
    spec.tunnels.map((t) => {
      const c = contents.tunnels.get(t.id);
      const inner = c ? INNER_PROTOCOLS.map((p) => `${p} ${c.inner[p]}`).join(", ") : "none";
      return `| \`${spec.file}\` | ${spec.kind} | ${t.id} | ${t.direction} | ${c?.packets ?? 0} | ${inner} |`;
    }),
  );
  return `# Pcaps recorded from the lab

Real mirrored traffic from Open vSwitch and OVN, for cross-checking the decoders in
\`@ovntap/packet\` (and \`ovntap decode\`) against tshark. Every packet is a mirrored frame
inside its tunnel, as it crossed the lab's transport network (captured with tcpdump on
\`LAB_CAPTURE_IF\` in the root namespace): Ethernet, IPv4 ${LAB_TOPOLOGY.tunnelSrcIp} → ${LAB_TOPOLOGY.sinkIp},
GRE, and for ERSPAN its header, then pod-a's frame.

| file | encapsulation | how |
|---|---|---|
${r.recordings.map(({ spec }) => `| \`${spec.file}\` | ${spec.kind} (GRE protocol 0x${spec.greProtocol.toString(16).padStart(4, "0")}) | ${spec.how} |`).join("\n")}

Each file holds one round of traffic between pod-a (${LAB_TOPOLOGY.podA.ip}, ${LAB_TOPOLOGY.podA.mac}) and
pod-b (${LAB_TOPOLOGY.podB.ip}, ${LAB_TOPOLOGY.podB.mac}): pod-a's neighbour cache flushed so it
ARPs, one ICMP echo, one TCP request and response (connection to FIN) and one UDP request and
response, both to pod-b's echo port ${ECHO_PORT} (so tshark decodes their payload as Echo). Both directions of pod-a's port are mirrored by two mirrors with a tunnel id each:
\`from-lport\` (what pod-a sends; OVS \`select_src_port\`, ERSPAN III direction 0 = ingress) and
\`to-lport\` (what pod-a receives; \`select_dst_port\`, direction 1 = egress). OVN 23.03 has no
\`both\`, and one OVS Mirror selecting a port both ways mirrors a packet only once (an ARP reply
sent back out of the port its request came in by would be missing), hence two.

| file | encapsulation | GRE key / ERSPAN session | direction | packets | inner |
|---|---|---|---|---|---|
${rows.join("\n")}

Recorded with:

- ${v.ovs}
- ${v.ovn}
- ${v.tcpdump}, ${v.libpcap} (files in tcpdump's default format: pcap, microseconds)
- ${v.kernel}, ${v.os}; the userspace (netdev) datapath

Record them again (as root; the lab is started and removed by the script):

    npx tsx --conditions=@ovntap/source deploy/lab/src/record-fixtures.ts [OUT_DIR]

It writes the three pcaps and this README into OUT_DIR (default: this folder). The recording
path itself is tested by \`deploy/lab/src/record.int.test.ts\`.
`;
}
