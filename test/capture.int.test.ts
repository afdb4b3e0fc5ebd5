/**
 * Acceptance of the capture pipeline, end to end on the lab with every service running as its
 * own process: a `--collector` mirror of pod-a made with the real `ovntap create`; the capture
 * exporter takes the tunnels off the lab's transport interface with libpcap, decapsulates and
 * publishes them; `ovntap capture` (a process of its own) writes the pcap. The oracle is
 * tcpdump inside pod-a's namespace over the same interval, compared field by field by tshark.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CapturedPacket } from "@ovntap/packet";
import {
  type Capture,
  type CaptureProcess,
  type Lab,
  makeTempDir,
  podTraffic,
  removeDir,
  startCapture,
  startLab,
  startOvntapCapture,
  waitFor,
} from "@ovntap/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, ovntapCli, repoRoot, writePolicy } from "./support/harness.js";
import { field, notSeen, packetsOf, tsharkRows } from "./support/packets.js";

let lab: Lab;
let dir: string;
let ovntap: (...args: string[]) => Promise<CliResult>;

const ok = (r: CliResult) => {
  expect(r.code, `exit code; stderr: ${r.stderr}`).toBe(0);
  return r;
};

/** `ovntap capture ARGS…` as a user runs it, in a process of its own. */
function startCli(...args: string[]): CaptureProcess {
  const env = {
    PATH: process.env.PATH ?? "",
    HOME: dir,
    NATS_URL: lab.env.NATS_URL,
    OVNTAP_PRINCIPAL: "acceptance",
  };
  return startOvntapCapture(
    join(repoRoot, "services", "cli", "bin", "ovntap.js"),
    env,
    args,
    () => undefined,
  );
}

const traffic = (until: Promise<unknown>) => podTraffic(lab, until);

beforeAll(async () => {
  dir = makeTempDir("ovntap-capture-");
  const policy = writePolicy(dir, {
    trustRequestPrincipal: true,
    protectedNamespaces: ["kube-system"],
    maxActiveMirrors: 20,
    maxTtlSeconds: 86_400,
    rules: [{ principals: ["*"], namespaces: ["*"], ops: ["*"] }],
  });
  lab = await startLab({ serviceEnv: { POLICY_FILE: policy } });
  ovntap = ovntapCli(lab, dir);
  ok(
    await ovntap(
      ...["create", "tap", "-n", "default", "--pod", "pod-a", "--direction", "both", "--collector"],
      ...["--ttl", "600", "--wait"],
    ),
  );
}, 180_000);

afterAll(async () => {
  await lab?.stop();
  if (dir) removeDir(dir);
});

describe("capture of a --collector mirror on the lab", () => {
  it("ovntap capture -w x.pcap --count 20 holds the pods' real traffic, as tcpdump in pod-a sees it", async () => {
    const reference: Capture = await startCapture({ iface: "eth0", netns: lab.env.LAB_POD_A_NS });
    const file = join(dir, "x.pcap");
    const cap = startCli("tap", "-n", "default", "-w", file, "--count", "20");
    await cap.ready;
    await traffic(cap.done);
    const { code, stderr } = await cap.done;
    // Let tcpdump take the last mirrored packets' originals, then stop it.
    await lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP, { timeoutS: 1 });
    const ref = await reference.stop();
    expect(code, stderr).toBe(0);

    expect(await packetsOf(file)).toHaveLength(20);
    const refFile = join(dir, "ref.pcap");
    writeFileSync(refFile, ref);
    const got = await tsharkRows(file);
    const seen = await tsharkRows(refFile);
    expect(got).toHaveLength(20);
    // Every captured packet is one tcpdump saw in pod-a, each taken once.
    const missing = notSeen(got, seen);
    expect(
      missing,
      `captured rows tcpdump did not see in pod-a:\n${missing.join("\n")}\nseen:\n${seen.join("\n")}`,
    ).toEqual([]);
    // Both directions of pod-a's traffic, and more than one protocol.
    const sources = new Set(got.map((r) => field(r, "ip.src")).filter(Boolean));
    expect(sources).toEqual(new Set([lab.env.LAB_POD_A_IP, lab.env.LAB_POD_B_IP]));
    expect(new Set(got.map((r) => field(r, "ip.proto")).filter(Boolean)).size).toBeGreaterThan(1);
  }, 120_000);

  it("two subscribers receive identical streams", async () => {
    const a = startCli("tap", "-n", "default", "-w", join(dir, "a.pcap"), "--count", "30");
    const b = startCli("tap", "-n", "default", "-w", join(dir, "b.pcap"), "--count", "30");
    await Promise.all([a.ready, b.ready]);
    await traffic(Promise.all([a.done, b.done]));
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    const view = (p: CapturedPacket) => [p.seconds, p.nanos, p.originalLength, p.data.toString("hex")];
    const pa = await packetsOf(join(dir, "a.pcap"));
    const pb = await packetsOf(join(dir, "b.pcap"));
    expect(pa).toHaveLength(30);
    expect(pb.map(view)).toEqual(pa.map(view));
  }, 120_000);

  it("ovntap delete stops the stream: nothing more is published for the mirror", async () => {
    ok(await ovntap("delete", "tap", "-n", "default", "--wait"));
    const cap = startCli("tap", "-n", "default", "-w", join(dir, "after.pcap"), "--duration", "3s");
    await cap.ready;
    await traffic(cap.done);
    const r = await cap.done;
    expect(r.code, r.stderr).toBe(0);
    expect(await packetsOf(join(dir, "after.pcap"))).toHaveLength(0);
    await waitFor(async () => (await lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP)) || undefined, {
      what: "pods still reach each other",
      timeoutMs: 10_000,
    });
  }, 60_000);
});
