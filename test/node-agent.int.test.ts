/**
 * Acceptance of the node agent in the pipeline, end to end through the real `ovntap` CLI (a
 * process of its own) against the lab with every service running as its own process — intake,
 * the ovn-applier, the node agent (in the lab's node namespace through NODE_NETNS), the capture
 * exporter:
 *
 * - an `ovs` mirror made with `ovntap create --ovs-node … --ovs-bridge br-int --ovs-port …`
 *   goes through intake to `node.<node>`, the agent builds its GRE tunnel port, the mirror is
 *   Active and GRE with its key reaches the sink; `ovntap delete` removes the rows;
 * - the MTU preflight: a mirrored port as large as the transport is Degraded with the numbers;
 * - a receiving link asked for in the spec: on this kernel LinkTypeUnsupported, with the
 *   collector suggestion;
 * - an owned OVN mirror whose tunnel OVS refuses (a second tunnel to one sink with one key) is
 *   reported Degraded with the OVS error text within 5 s of the error appearing in OVS, and
 *   Active again once OVS takes it: once with the other tunnel made in OVS directly (ovs-vsctl,
 *   where NB cannot see it), and OVS refusing ours;
 * - once with two OVN mirrors forced onto one sink and key by hand with ovn-nbctl (someone's
 *   mirror put on the key ovntap allocated to ours): the applier keeps our key (the receivers
 *   were set up with it), OVS refuses the other tunnel, and ours is Degraded with OVS's text
 *   until the other mirror is gone.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AuditRecord } from "@ovntap/contracts";
import { type Lab, makeTempDir, removeDir, run, startLab, waitFor } from "@ovntap/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, greKeyFilter, type MirrorView, ovntapCli, writePolicy } from "./support/harness.js";

let lab: Lab;
let dir: string;
let ovntap: ReturnType<typeof ovntapCli>;
let sink: string;
let node: string;

const ok = (r: CliResult) => {
  expect(r.code, `exit code; stderr: ${r.stderr}`).toBe(0);
  return r;
};

async function get(name: string): Promise<MirrorView> {
  return JSON.parse(ok(await ovntap("get", name, "-o", "json")).stdout) as MirrorView;
}

async function trail(name: string): Promise<AuditRecord[]> {
  const r = ok(await ovntap("events", "--mirror", name, "-o", "json"));
  return r.stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRecord);
}

/** Polls `ovntap get` until the status satisfies `ok`. */
const waitStatus = (name: string, ok: (v: MirrorView) => boolean, what: string, timeoutMs = 30_000) =>
  waitFor(
    async () => {
      const r = await ovntap("get", name, "-o", "json");
      if (r.code !== 0) return undefined;
      const v = JSON.parse(r.stdout) as MirrorView;
      return ok(v) ? v : undefined;
    },
    { what: `${name}: ${what}`, timeoutMs, intervalMs: 50 },
  );

/** An OVS row's column, bare ("" when the row or the value is absent). */
const ovsColumn = async (table: string, name: string, column: string) =>
  (await lab.vsctl("--bare", `--columns=${column}`, "find", table, `name=${name}`)).trim();

const pingAToB = () =>
  lab.exec(lab.env.LAB_POD_A_NS, "ping", ["-n", "-q", "-c", "1", "-W", "1", lab.env.LAB_POD_B_IP], {
    allowFail: true,
  });

beforeAll(async () => {
  dir = makeTempDir("ovntap-node-agent-");
  const policy = writePolicy(dir, {
    trustRequestPrincipal: true,
    protectedNamespaces: ["kube-system"],
    maxActiveMirrors: 20,
    maxTtlSeconds: 86_400,
    allowedSinkCidrs: ["198.51.100.0/24"],
    rules: [{ principals: ["*"], namespaces: ["*"], ops: ["*"], allowOvsSources: true }],
  });
  lab = await startLab({ serviceEnv: { POLICY_FILE: policy } });
  sink = lab.env.LAB_SINK_IP;
  node = lab.env.LAB_NODE;
  ovntap = ovntapCli(lab, dir);
  // Headroom for GRE on pod-a's port (the transport br-ul has MTU 1500, GRE with a key adds 42).
  await run("ip", ["-n", lab.nodeNs, "link", "set", lab.env.LAB_POD_A_PORT, "mtu", "1400"]);
  await run("ip", ["-n", lab.env.LAB_POD_A_NS, "link", "set", "eth0", "mtu", "1400"]);
  await waitFor(
    async () => (await lab.vsctl("get", "Interface", lab.env.LAB_POD_A_PORT, "mtu")).trim() === "1400",
    {
      what: "OVS to see pod-a's port at MTU 1400",
    },
  );
});

afterAll(async () => {
  await lab?.stop();
  if (dir) removeDir(dir);
});

describe("the node agent in the pipeline, through the ovntap CLI", () => {
  it("runs beside the other services", () => {
    const agent = lab.services().find((s) => s.name === "node-agent");
    expect(agent?.running).toBe(true);
  });

  it("an ovs mirror from `ovntap create --ovs-…` is Active and GRE with its key reaches the sink", async () => {
    const created = ok(
      await ovntap(
        ...["create", "tap", "--ovs-node", node, "--ovs-bridge", "br-int"],
        ...["--ovs-port", lab.env.LAB_POD_A_PORT, "--direction", "egress", "--gre-sink", sink],
        ...["--ttl", "600", "--wait"],
      ),
    );
    console.log(`create tap --ovs-… --wait: ${created.ms} ms`);
    const view = await get("tap");
    expect(view.mirror.spec.sources).toEqual({
      type: "ovs",
      node,
      bridge: "br-int",
      ports: [lab.env.LAB_POD_A_PORT],
    });
    const key = view.status.key!;
    expect(view.status).toMatchObject({
      phase: "Active",
      observedGeneration: 1,
      sink,
      nodes: [node],
      ports: [lab.env.LAB_POD_A_PORT],
      tunnels: [{ type: "gre", index: key, direction: "egress" }],
    });
    expect(key).toBeGreaterThanOrEqual(1);
    // The agent's rows on br-int: the Mirror, and its tunnel port towards the sink with the key.
    expect(await ovsColumn("Mirror", "ovntap.default.tap", "name")).toBe("ovntap.default.tap");
    expect(await lab.vsctl("get", "Interface", "ovntap.default.tap", "options")).toBe(
      `{key="${key}", remote_ip="${sink}"}\n`,
    );
    // Applied by the node agent, not the ovn-applier (nothing in NB).
    expect(await lab.nbctl("--bare", "--columns=name", "find", "Mirror", "name=ovntap.default.tap")).toBe("");
    const types = (await trail("tap")).map((e) => [e.type, e.principal]);
    expect(types).toEqual(
      expect.arrayContaining([
        ["applying", "system:ovntap:node-agent"],
        ["applied", "system:ovntap:node-agent"],
        ["active", "system:ovntap:node-agent"],
      ]),
    );

    const packets = await lab.captureGre("sink", {
      filter: greKeyFilter(key),
      count: 3,
      timeoutMs: 15_000,
      traffic: pingAToB,
    });
    expect(packets.length).toBe(3);
    for (const p of packets) {
      expect(p).toMatchObject({
        key,
        greProto: 0x6558,
        outer: { dst: sink },
        inner: { srcMac: "00:00:00:00:00:01" },
      });
    }

    ok(await ovntap("delete", "tap", "--wait"));
    expect(await ovsColumn("Mirror", "ovntap.default.tap", "name")).toBe("");
    expect(await ovsColumn("Port", "ovntap.default.tap", "name")).toBe("");
    expect((await ovntap("get", "tap")).stderr).toMatch(/^NOT_FOUND: /);
  });

  it("a mirrored port as large as the transport fails the MTU preflight: Degraded with the numbers", async () => {
    const r = await ovntap(
      ...["create", "big", "--ovs-node", node, "--ovs-bridge", "br-int"],
      ...["--ovs-port", lab.env.LAB_POD_B_PORT, "--direction", "egress", "--gre-sink", sink, "--wait"],
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("default/big is Degraded: MtuTooSmall");
    const view = await get("big");
    expect(view.status.phase).toBe("Degraded");
    expect(view.status.reason).toBe("MtuTooSmall");
    expect(view.status.message).toContain(
      `transport br-ul MTU 1500 < 1542: mirrored port ${lab.env.LAB_POD_B_PORT} MTU 1500 + 42 bytes of GRE with a key over IPv4`,
    );
    ok(await ovntap("delete", "big", "--wait"));
  });

  it("a receiving link on this kernel: LinkTypeUnsupported with the collector suggestion", async () => {
    const rx = `${lab.prefix}-rx`;
    await run("ip", ["netns", "add", rx]);
    try {
      const file = join(dir, "rx.yaml");
      writeFileSync(
        file,
        [
          "name: rx",
          "namespace: default",
          `sources: { type: ovs, node: ${node}, bridge: br-int, ports: [${lab.env.LAB_POD_A_PORT}] }`,
          "direction: egress",
          `target: { type: gre, sink: ${sink}, receiver: { netns: ${rx}, link: mirror1 } }`,
          "",
        ].join("\n"),
      );
      const r = await ovntap("create", "-f", file, "--wait");
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("LINK_TYPE_UNSUPPORTED");
      expect(r.stderr).toContain(`the kernel of node ${node} cannot create gretap links`);
      expect(r.stderr).toContain("use a --collector target instead");
      expect((await get("rx")).status).toMatchObject({ phase: "Failed", reason: "LinkTypeUnsupported" });
      expect(await ovsColumn("Mirror", "ovntap.default.rx", "name")).toBe("");
      ok(await ovntap("delete", "rx", "--wait"));
    } finally {
      await run("ip", ["netns", "del", rx]).catch(() => undefined);
    }
  });

  it("an owned OVN mirror whose tunnel OVS refuses is Degraded with the OVS error text within 5 s", async () => {
    const key = 4242;
    const port = "ovn-ovntap.default.web";
    const text = `could not add network device ${port} to ofproto (File exists)`;
    // Someone's tunnel to the sink with the key, made in OVS where NB cannot see it.
    await lab.vsctl(
      ...["add-port", "br-int", "hand-gre", "--", "set", "Interface", "hand-gre", "type=gre"],
      ...[`options:remote_ip=${sink}`, `options:key=${key}`],
    );
    await waitFor(async () => /^\d+$/.test(await ovsColumn("Interface", "hand-gre", "ofport")), {
      what: "hand-gre added",
    });

    // The owned mirror with the same key: OVN takes it, ovn-controller makes its tunnel port,
    // OVS refuses it.
    ok(
      await ovntap(
        ...["create", "web", "--pod", "pod-a", "--direction", "egress"],
        ...["--gre-sink", sink, "--key", String(key), "--ttl", "600"],
      ),
    );
    await waitFor(async () => (await ovsColumn("Interface", port, "error")).replace(/^"|"$/g, "") === text, {
      what: `OVS to refuse ${port}`,
      timeoutMs: 30_000,
      intervalMs: 20,
    });
    const refusedAt = Date.now();
    const degraded = await waitStatus(
      "web",
      (v) => v.status.phase === "Degraded",
      "Degraded within 5 s of OVS refusing its tunnel",
      5_000,
    );
    console.log(`OVS refused the tunnel → Degraded seen through the CLI in ${Date.now() - refusedAt} ms`);
    expect(degraded.status.reason).toBe("DataplaneError");
    expect(degraded.status.message).toContain(text);
    expect(degraded.status.message).toContain(`node ${node}`);
    expect(degraded.status.key).toBe(key);
    const events = await trail("web");
    const d = events.find((e) => e.type === "degraded");
    expect(d?.detail).toMatchObject({ reason: "DataplaneError" });
    expect((d?.detail as { message: string }).message).toContain(text);
    expect(events.find((e) => e.type === "dataplane_error")?.detail).toMatchObject({
      component: "ovs",
      message: text,
      node,
      port,
    });

    // The other tunnel gone, and the refused port with it (ovs-vswitchd does not retry a port
    // it refused until its row changes; ovn-controller makes it again): Active again, and the
    // trail says the error ended.
    await lab.vsctl("del-port", "br-int", "hand-gre");
    await lab.vsctl("--if-exists", "del-port", "br-int", port);
    const back = await waitStatus("web", (v) => v.status.phase === "Active", "Active again", 30_000);
    expect(back.status.conditions?.find((c) => c.type === "DataplaneProgrammed")).toMatchObject({
      status: "True",
    });
    const after = await waitFor(
      async () => {
        const t = await trail("web");
        return t.some((e) => e.type === "dataplane_ok") ? t : undefined;
      },
      { what: "the dataplane_ok event" },
    );
    expect(after.find((e) => e.type === "dataplane_ok")?.detail).toMatchObject({ previous: text, node });
    ok(await ovntap("delete", "web", "--wait"));
  });

  it("two OVN mirrors forced onto one sink and key with ovn-nbctl: the owned one keeps its key and is Degraded with OVS's text", async () => {
    ok(
      await ovntap(
        ...["create", "ours", "--pod", "pod-a", "--direction", "egress"],
        ...["--gre-sink", sink, "--ttl", "600", "--wait"],
      ),
    );
    const before = await get("ours");
    expect(before.status.phase).toBe("Active");
    const key = before.status.key;
    expect(key).toBeTypeOf("number");
    const theirs = "ovn-theirs";
    const text = `could not add network device ${theirs} to ofproto (File exists)`;

    // Someone's mirror on our key towards our sink, on a pod bound to the same chassis.
    await lab.nbctl(
      ...["mirror-add", "theirs", "gre", String(key), "from-lport", sink],
      ...["--", "lsp-attach-mirror", "pod-b.default", "theirs"],
    );
    await waitFor(
      async () => (await ovsColumn("Interface", theirs, "error")).replace(/^"|"$/g, "") === text,
      {
        what: `OVS to refuse ${theirs}`,
        timeoutMs: 30_000,
        intervalMs: 20,
      },
    );
    const refusedAt = Date.now();
    const degraded = await waitStatus(
      "ours",
      (v) => v.status.phase === "Degraded",
      "Degraded within 5 s of OVS refusing the colliding tunnel",
      5_000,
    );
    console.log(
      `OVS refused the colliding tunnel → Degraded seen through the CLI in ${Date.now() - refusedAt} ms`,
    );
    expect(degraded.status.reason).toBe("DataplaneError");
    expect(degraded.status.message).toContain(text);
    expect(degraded.status.message).toContain("tunnel key contention");
    // Our key stays what the user was told, in the status and in NB.
    expect(degraded.status.key).toBe(key);
    const index = (
      await lab.nbctl("--bare", "--columns=index", "find", "Mirror", "name=ovntap.default.ours")
    ).trim();
    expect(Number(index)).toBe(key);
    expect((await trail("ours")).find((e) => e.type === "dataplane_error")?.detail).toMatchObject({
      component: "ovs",
      node,
      port: "ovn-ovntap.default.ours",
    });

    // Their mirror removed: ours is Active again, on the same key.
    await lab.nbctl("mirror-del", "theirs");
    const back = await waitStatus("ours", (v) => v.status.phase === "Active", "Active again", 30_000);
    expect(back.status.key).toBe(key);
    ok(await ovntap("delete", "ours", "--wait"));
  });
});
