/**
 * Acceptance test of the native lab, against everything real: two labs side by side,
 * OVN mirrors made with the real ovn-nbctl, GRE seen at each sink and on each lab's
 * LAB_CAPTURE_IF in the root namespace, and nothing left after teardown.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  decodeGre,
  type GrePacket,
  isAlive,
  type Lab,
  LAB_ENV_NAMES,
  LAB_TOPOLOGY,
  listLeftovers,
  NO_LEFTOVERS,
  readLabEnvFile,
  run,
  startCapture,
  startLab,
} from "./index.js";
import { linkNames } from "./net.js";
import { findRepoRoot } from "./services.js";

const repoRoot = findRepoRoot();

/** Mirrors pod-a's egress (from-lport) to the lab's sink with the real ovn-nbctl and the env file's OVN_NB_DB. */
async function addGreMirror(lab: Lab, name: string, key: number): Promise<void> {
  const env = { ...process.env, ...readLabEnvFile(lab.envFile) };
  const nbctl = (...args: string[]) => run("ovn-nbctl", args, { env });
  await nbctl("mirror-add", name, "gre", String(key), "from-lport", lab.env.LAB_SINK_IP);
  await nbctl("lsp-attach-mirror", LAB_TOPOLOGY.podA.lsp, name);
  await nbctl("--timeout=30", "--wait=hv", "sync");
  // ovn-controller turned the NB row into an OVS tunnel port on br-int.
  expect(await lab.vsctl("get", "Interface", `ovn-${name}`, "options:key")).toContain(String(key));
}

const pingAToB = (lab: Lab) => () => lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP, { timeoutS: 1 });

function expectMirrored(packets: GrePacket[], lab: Lab, key: number) {
  expect(packets.length).toBeGreaterThanOrEqual(3);
  for (const p of packets) {
    expect(p).toMatchObject({
      outer: { src: LAB_TOPOLOGY.tunnelSrcIp, dst: lab.env.LAB_SINK_IP },
      greProto: 0x6558,
      key,
      // from-lport: what pod-a sends (its echo requests to pod-b; the ARP has no IP)
      inner: { srcMac: LAB_TOPOLOGY.podA.mac },
    });
  }
  expect(
    packets.some((p) => p.inner?.src === lab.env.LAB_POD_A_IP && p.inner.dst === lab.env.LAB_POD_B_IP),
  ).toBe(true);
}

describe("native lab", () => {
  const labs: Lab[] = [];
  afterAll(async () => {
    for (const lab of labs) await lab.stop();
  });
  const rootLinksBefore = linkNames();

  it("comes up with pods that ping and talk TCP through OVN", async () => {
    const lab = await startLab({ services: false });
    labs.push(lab);
    console.log(`lab ${lab.prefix} up in ${lab.startupMs} ms`, lab.timings);

    expect(readLabEnvFile(lab.envFile)).toEqual(lab.env);
    expect(
      readFileSync(lab.envFile, "utf8")
        .trimEnd()
        .split("\n")
        .map((l) => /^export ([A-Z_]+)='/.exec(l)?.[1]),
    ).toEqual([...LAB_ENV_NAMES]);
    expect(existsSync(lab.stateFile)).toBe(true);

    // ovn-controller programmed br-int: chassis registered, ports bound, flows there.
    expect(await lab.sbctl("--bare", "--columns=name", "list", "Chassis")).toContain(lab.env.LAB_NODE);
    expect(await lab.vsctl("list-ports", "br-int")).toContain(lab.env.LAB_POD_A_PORT);
    expect(await lab.ofctl("dump-aggregate", "br-int")).toMatch(/flow_count=[1-9]/);

    expect(await lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP, { count: 3, intervalS: 0.2 })).toBe(
      true,
    );
    const payload = `hello from ${lab.prefix} ${"x".repeat(3000)}`; // more than one segment
    expect(await lab.tcpRoundTrip({ payload })).toBe(payload);
  });

  it("mirrors pod-a over GRE: at the sink and on LAB_CAPTURE_IF in the root namespace", async () => {
    const lab = labs[0]!;
    await addGreMirror(lab, "m77", 77);
    // Open the root-namespace capture first: every packet that reaches the sink has
    // crossed LAB_CAPTURE_IF before, so it sees at least what the sink sees.
    const root = await startCapture({
      iface: lab.env.LAB_CAPTURE_IF,
      filter: "ip proto 47",
      count: 3,
      timeoutMs: 15_000,
    });
    const atSink = await lab.captureGre("sink", { count: 3, timeoutMs: 15_000, traffic: pingAToB(lab) });
    const atRoot = await decodeGre(await root.pcap);
    expectMirrored(atSink, lab, 77);
    expectMirrored(atRoot, lab, 77);
  });

  it("runs a second lab alongside; each lab's mirror reaches only its own sink", async () => {
    // The second lab crosses the root namespace with tc instead of a bridge (the path
    // for kernels without bridges), so both transports are exercised.
    const lab2 = await startLab({ services: false, transport: "tc" });
    labs.push(lab2);
    const lab1 = labs[0]!;
    console.log(`second lab ${lab2.prefix} up in ${lab2.startupMs} ms`);
    expect(lab2.prefix).not.toBe(lab1.prefix);
    expect(lab2.dir).not.toBe(lab1.dir);

    expect(await lab1.ping(lab1.env.LAB_POD_A_NS, lab1.env.LAB_POD_B_IP)).toBe(true);
    expect(await lab2.ping(lab2.env.LAB_POD_A_NS, lab2.env.LAB_POD_B_IP)).toBe(true);
    expect(await lab2.tcpRoundTrip({ payload: "second" })).toBe("second");

    await addGreMirror(lab2, "m88", 88);

    // Lab 1's traffic until its sink saw 3 mirrored packets; lab 2's sink listens meanwhile.
    const lab2Sink = await startCapture({
      netns: lab2.env.LAB_SINK_NS,
      iface: "eth0",
      filter: "ip proto 47",
      timeoutMs: 30_000,
    });
    const lab1Seen = await lab1.captureGre("sink", { count: 3, timeoutMs: 15_000, traffic: pingAToB(lab1) });
    const lab2Seen = await decodeGre(await lab2Sink.stop());
    expectMirrored(lab1Seen, lab1, 77);
    expect(lab2Seen.filter((p) => p.key === 77)).toEqual([]);

    // And the other way round, with lab 2's key, seen on lab 2's root capture interface too.
    const lab1Sink = await startCapture({
      netns: lab1.env.LAB_SINK_NS,
      iface: "eth0",
      filter: "ip proto 47",
      timeoutMs: 30_000,
    });
    const lab2Root = await startCapture({
      iface: lab2.env.LAB_CAPTURE_IF,
      filter: "ip proto 47",
      count: 3,
      timeoutMs: 15_000,
    });
    const lab2AtSink = await lab2.captureGre("sink", {
      count: 3,
      timeoutMs: 15_000,
      traffic: pingAToB(lab2),
    });
    const lab2AtRoot = await decodeGre(await lab2Root.pcap);
    const lab1Got = await decodeGre(await lab1Sink.stop());
    expectMirrored(lab2AtSink, lab2, 88);
    expectMirrored(lab2AtRoot, lab2, 88);
    expect(lab1Got.filter((p) => p.key === 88)).toEqual([]);
  });

  it("tears both down (one from another process, by its state file) and leaves nothing", async () => {
    const [lab1, lab2] = labs as [Lab, Lab];
    const pids = [...lab1.state().pids, ...lab2.state().pids].map((p) => p.pid);
    expect(pids.every(isAlive)).toBe(true);

    // lab:down's path: the CLI in a process of its own, given only the state file.
    const t = Date.now();
    const cli = spawn(
      join(repoRoot, "node_modules", ".bin", "tsx"),
      [join(repoRoot, "deploy", "lab", "src", "cli.ts"), "down", "--state", lab2.stateFile],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    cli.stdout.on("data", (d: Buffer) => (output += d.toString()));
    cli.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => cli.on("close", resolve));
    expect(code, output).toBe(0);
    await lab1.stop();
    console.log(`both labs down in ${Date.now() - t} ms (one through the CLI)`);

    expect(pids.filter(isAlive)).toEqual([]);
    for (const lab of [lab1, lab2]) {
      expect(await listLeftovers(lab.prefix)).toEqual(NO_LEFTOVERS);
      expect(existsSync(lab.dir)).toBe(false);
    }
    // No netdev-datapath tap escaped into the root namespace.
    const before = await rootLinksBefore;
    const leaked = (await linkNames()).filter(
      (l) => ["ovs-netdev", "br-int", "br-ul"].includes(l) && !before.includes(l),
    );
    expect(leaked).toEqual([]);
  });
});
