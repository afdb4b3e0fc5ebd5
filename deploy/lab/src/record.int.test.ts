/**
 * The fixture recorder, live on a lab: it records gre.pcap, erspan2.pcap and erspan3.pcap into a
 * temp dir, and each file holds, in each tunnel (one per direction), at least one ARP, ICMP, TCP and
 * UDP packet, decoded by @ovntap/packet and, independently, by tshark; the mirrors it made are gone
 * afterwards. Needs root, tcpdump and tshark.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decapsulate, decodeFrame, decodePcap, formatIp, formatMac } from "@ovntap/packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Lab, LAB_TOPOLOGY, makeTempDir, removeDir, run, startLab } from "./index.js";
import { ERSPAN3_HWID, FIXTURE_NAMES, FIXTURES, fixturesReadme, recordFixtures } from "./record.js";
import type { FixtureName, Recorded } from "./record.js";

let lab: Lab;
let dir: string;
let recorded: Recorded;

beforeAll(async () => {
  lab = await startLab({ services: false });
  dir = makeTempDir("ovntap-fixtures-");
  recorded = await recordFixtures({ lab, outDir: dir });
});
afterAll(async () => {
  await lab?.stop();
  if (dir) removeDir(dir);
});

type Proto = "arp" | "icmp" | "tcp" | "udp";

/** tunnel id → inner protocols, by our decoders. */
function ours(name: FixtureName): Map<number, Set<Proto>> {
  const spec = FIXTURES[name];
  const pcap = decodePcap(readFileSync(join(dir, spec.file)));
  if (!pcap.ok) throw new Error(`${spec.file}: ${pcap.reason}`);
  expect(pcap.error).toBeUndefined();
  const out = new Map<number, Set<Proto>>();
  for (const r of pcap.records) {
    const d = decapsulate(r.data);
    if (!d.ok) throw new Error(`${spec.file}: a packet does not decapsulate: ${d.reason} at ${d.at}`);
    expect(d.kind).toBe(spec.kind);
    expect([formatIp(d.outer.src), formatIp(d.outer.dst)]).toEqual([
      LAB_TOPOLOGY.tunnelSrcIp,
      lab.env.LAB_SINK_IP,
    ]);
    const tunnel = spec.tunnels.find((t) => t.id === d.tunnelId);
    expect(tunnel, `tunnel id ${d.tunnelId} in ${spec.file}`).toBeDefined();
    if (d.kind === "erspan3") {
      // select_src_port → ingress (0), select_dst_port → egress (1).
      expect(d.erspan.direction).toBe(tunnel?.direction === "to-lport" ? 1 : 0);
      expect(d.erspan.hwId).toBe(ERSPAN3_HWID);
    }
    const f = decodeFrame(d.inner, d.innerLinkType);
    if (!f.ok || f.error !== undefined) throw new Error(`${spec.file}: an inner frame does not decode`);
    // Every inner frame is pod-a's: sent by it (from-lport) or to it (to-lport, or broadcast).
    const podA = LAB_TOPOLOGY.podA.mac;
    const mac = tunnel?.direction === "from-lport" ? f.eth?.src : f.eth?.dst;
    expect(mac && formatMac(mac)).toBe(podA);
    const proto: Proto | undefined =
      f.arp !== undefined ? "arp" : f.l4?.protocol === "icmpv6" ? undefined : f.l4?.protocol;
    if (proto === undefined)
      throw new Error(`${spec.file}: an inner packet is neither ARP, ICMP, TCP nor UDP`);
    const set = out.get(d.tunnelId!) ?? new Set<Proto>();
    set.add(proto);
    out.set(d.tunnelId!, set);
  }
  return out;
}

/** tunnel id → inner protocols and ERSPAN version, by tshark. */
async function theirs(
  name: FixtureName,
): Promise<Map<number, { protos: Set<Proto>; version?: number; greProto: number }>> {
  const spec = FIXTURES[name];
  const { stdout } = await run("tshark", [
    ...["-n", "-r", join(dir, spec.file), "-T", "fields", "-E", "separator=|"],
    ...[
      "-e",
      "gre.proto",
      "-e",
      "gre.key",
      "-e",
      "erspan.version",
      "-e",
      "erspan.spanid",
      "-e",
      "frame.protocols",
    ],
  ]);
  const out = new Map<number, { protos: Set<Proto>; version?: number; greProto: number }>();
  for (const line of stdout.split("\n").filter(Boolean)) {
    const [greProto = "", key = "", version = "", span = "", protocols = ""] = line.split("|");
    const id = Number(name === "gre" ? key : span);
    const entry = out.get(id) ?? { protos: new Set<Proto>(), greProto: Number(greProto) };
    if (version !== "") entry.version = Number(version);
    const layers = protocols.split(":");
    // Past the tunnel (…:gre[:erspan]:eth:ethertype:…) the inner layers follow.
    const inner = layers.slice(layers.lastIndexOf("eth"));
    for (const p of ["arp", "icmp", "tcp", "udp"] as const) if (inner.includes(p)) entry.protos.add(p);
    out.set(id, entry);
  }
  return out;
}

describe("recording pcaps from the lab", () => {
  it.each(FIXTURE_NAMES)(
    "%s: every tunnel carries ARP, ICMP, TCP and UDP, by our decoders and by tshark",
    async (name) => {
      const spec = FIXTURES[name];
      const ids = spec.tunnels.map((t) => t.id).sort((a, b) => a - b);
      const mine = ours(name);
      expect([...mine.keys()].sort((a, b) => a - b)).toEqual(ids);
      for (const id of ids) expect([...mine.get(id)!].sort()).toEqual(["arp", "icmp", "tcp", "udp"]);

      const tshark = await theirs(name);
      expect([...tshark.keys()].sort((a, b) => a - b)).toEqual(ids);
      for (const id of ids) {
        const t = tshark.get(id)!;
        expect([...t.protos].sort()).toEqual(["arp", "icmp", "tcp", "udp"]);
        expect(t.greProto).toBe(spec.greProtocol);
        // ERSPAN's version field: 1 = type II, 2 = type III.
        expect(t.version).toBe(name === "erspan2" ? 1 : name === "erspan3" ? 2 : undefined);
      }
      // Small: one round of traffic.
      const r = recorded.recordings.find((x) => x.spec.name === name)!;
      expect(r.contents.packets).toBeGreaterThanOrEqual(12);
      expect(r.contents.packets).toBeLessThanOrEqual(60);
    },
  );

  it("removes the mirrors it made, and writes a README naming the versions", async () => {
    expect((await lab.nbctl("--bare", "--columns=name", "list", "Mirror")).trim()).toBe("");
    expect((await lab.vsctl("--bare", "--columns=name", "list", "Mirror")).trim()).toBe("");
    expect(
      (await lab.vsctl("list-ports", lab.names.integrationBridge))
        .split("\n")
        .filter((p) => p.startsWith("fx-") || p.startsWith("ovn-fx-")),
    ).toEqual([]);

    const readme = fixturesReadme(recorded);
    expect(readme).toContain(recorded.versions.ovs);
    expect(readme).toContain(recorded.versions.ovn);
    expect(recorded.versions.ovs).toMatch(/Open vSwitch\) \d+\.\d+/);
    expect(recorded.versions.ovn).toMatch(/ovn-controller \d+\.\d+/);
    for (const name of FIXTURE_NAMES) expect(readme).toContain(`\`${FIXTURES[name].file}\``);
  });
});
