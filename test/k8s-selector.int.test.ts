/**
 * Acceptance of selector mirrors and sink pods, end to end as a user drives them: the real
 * `ovntap` CLI (a process of its own) → intake → the ovn-applier, each a process of the lab
 * (services/*\/dist, with every other service beside them), on the lab's real OVN Northbound,
 * with Kubernetes reached by the applier through a kubeconfig file — pointing at the FAKE API
 * server of @ovntap/k8s/testing, which stands in for kube-apiserver (none is installable here)
 * and speaks its wire protocol: list, watch streams, resourceVersion, bookmarks, 410 Gone.
 *
 * - `ovntap create web -l app=web` with 3 matching pods and 1 that does not: 3 ports hold the NB
 *   Mirror row in their mirror_rules (the pods' LSPs are added to the lab's logical switch with
 *   ovn-nbctl; they need not be bound to a chassis), `ovntap get -o json` says Active with the 3
 *   ports, `ovntap events` has a port_attached for each;
 * - a pod deleted → its port detached; a pod relabelled into the selector → attached (the time
 *   each took is printed as a figure, not asserted);
 * - a watch cut mid-stream, and a watch cut whose version is then compacted away (410 Gone, so
 *   the applier lists again): a change made while the watch was down is applied after the resync;
 * - `ovntap create --sink-pod tap/receiver` resolves through ips.kubeovn.io, and an IP change
 *   moves the NB Mirror's sink; `--provider` picks the pod's attachment network address; a sink
 *   pod in a namespace the principal may not mirror into is refused by intake's policy;
 * - a selector that selects nothing yet is Active with the reason NoMatchingPods, and attaches
 *   the first pod that appears; a mirror that fails puts Warning Events on its pods;
 * - `ovntap delete` detaches every port (port_detached, mirror_deleted) and removes the row;
 * - Kubernetes Events on the pods, and the exact set of API calls the applier made, which is
 *   APPLIER_API_CALLS; the fake enforces the deployment's ClusterRole for the applier
 *   (deploy/k8s/base/rbac.yaml), and nothing is denied.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { AuditRecord } from "@ovntap/contracts";
import { apiCallKeys, APPLIER_API_CALLS } from "@ovntap/k8s";
import {
  FakeApiServer,
  type FakePolicyRule,
  kubeOvnIpObject,
  type KubeObject,
  podObject,
} from "@ovntap/k8s/testing";
import { type Lab, makeTempDir, removeDir, startLab, waitFor } from "@ovntap/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  type CliResult,
  type MirrorView,
  NbObserver,
  ovntapCli,
  repoRoot,
  writePolicy,
} from "./support/harness.js";

const NS = "shop";
/** Where the receiving pod lives: a namespace the policy lets the principal mirror into. */
const SINK_NS = "tap";
const SWITCH = "ovn-default";
/** Generous: the lab shares a busy 2-core machine. Speed is printed, not asserted. */
const DEADLINE_MS = 60_000;

let lab: Lab;
let dir: string;
let fake: FakeApiServer;
let nb: NbObserver;
let ovntap: ReturnType<typeof ovntapCli>;
let sink: string;
const figures: string[] = [];

const lsp = (pod: string) => `${pod}.${NS}`;
const rowOf = (mirror: string) => `ovntap.${NS}.${mirror}`;

const ok = (r: CliResult) => {
  expect(r.code, `exit code; stderr: ${r.stderr}`).toBe(0);
  return r;
};

/** `ovntap get NAME -n shop -o json`. */
async function get(mirror: string): Promise<MirrorView> {
  return JSON.parse(ok(await ovntap("get", mirror, "-n", NS, "-o", "json")).stdout) as MirrorView;
}

/** `ovntap events -n shop --mirror NAME -o json`: the mirror's audit trail. */
async function trail(mirror: string): Promise<AuditRecord[]> {
  const r = ok(await ovntap("events", "-n", NS, "--mirror", mirror, "-o", "json"));
  return r.stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRecord);
}

/** Polls `ovntap events` until the trail satisfies `ok`. */
const waitTrail = (mirror: string, ok: (t: AuditRecord[]) => boolean, what: string) =>
  waitFor(
    async () => {
      const t = await trail(mirror);
      return ok(t) ? t : undefined;
    },
    { what: `${mirror}: ${what}`, timeoutMs: DEADLINE_MS, intervalMs: 50 },
  );

/** Polls `ovntap get -o json` until the status satisfies `ok`. */
const waitStatus = (mirror: string, ok: (s: MirrorView["status"]) => boolean, what: string) =>
  waitFor(
    async () => {
      const r = await ovntap("get", mirror, "-n", NS, "-o", "json");
      if (r.code !== 0) return undefined;
      const v = JSON.parse(r.stdout) as MirrorView;
      return ok(v.status) ? v.status : undefined;
    },
    { what: `${mirror}: ${what}`, timeoutMs: DEADLINE_MS, intervalMs: 50 },
  );

/** Pods (by name) whose LSP holds the mirror's NB row in mirror_rules. */
function attached(mirror: string): string[] {
  const row = nb.byName(rowOf(mirror));
  if (!row) return [];
  return ["batch-1", "db-1", "web-1", "web-2", "web-3"].filter((p) =>
    nb.attachedTo(lsp(p)).some((m) => m._uuid === row._uuid),
  );
}

/** Waits for the attached set; returns how long it took from `since`. */
async function untilAttached(
  mirror: string,
  want: string[],
  what: string,
  since = Date.now(),
): Promise<number> {
  const sorted = [...want].sort();
  await waitFor(() => JSON.stringify(attached(mirror)) === JSON.stringify(sorted) && Date.now(), {
    what: `${what}: attached ${sorted.join(",") || "nothing"} (now ${attached(mirror).join(",")})`,
    timeoutMs: DEADLINE_MS,
    intervalMs: 5,
  });
  return Date.now() - since;
}

const portOf = (e: AuditRecord) => String((e.detail as { port?: unknown }).port);

/** The rules of the ovn-applier's ClusterRole in the deployment: the fake enforces them. */
function applierRules(): FakePolicyRule[] {
  const docs = parseAllDocuments(
    readFileSync(join(repoRoot, "deploy", "k8s", "base", "rbac.yaml"), "utf8"),
  ).map(
    (d) => d.toJSON() as { kind?: string; metadata?: { name?: string }; rules?: FakePolicyRule[] } | null,
  );
  const role = docs.find((d) => d?.kind === "ClusterRole" && d.metadata?.name === "ovntap-ovn-applier");
  if (!role?.rules) throw new Error("deploy/k8s/base/rbac.yaml has no ClusterRole ovntap-ovn-applier");
  return role.rules;
}

const relabel = (pod: string, labels: Record<string, string>) =>
  fake.modify("pods", NS, pod, (p: KubeObject) => (p.metadata.labels = labels));

beforeAll(async () => {
  dir = makeTempDir("ovntap-k8s-selector-");
  // Authenticated by the kubeconfig's token, authorized by the deployment's ClusterRole.
  fake = await FakeApiServer.start({ token: randomBytes(16).toString("hex"), rules: applierRules() });
  const kubeconfig = fake.writeKubeconfig(join(dir, "kubeconfig"));
  // The pods exist before the applier starts; their LSPs are added once NB is up.
  fake.put("namespaces", { metadata: { name: NS } });
  for (const [name, app] of [
    ["web-1", "web"],
    ["web-2", "web"],
    ["web-3", "web"],
    ["db-1", "db"],
  ] as const) {
    fake.put("pods", podObject({ name, namespace: NS, labels: { app }, nodeName: "node-1" }));
  }
  // Intake's policy: the CLI's principal may mirror in shop, and into tap where its receiving
  // pod lives; pod sinks allowed, IP sinks only in the lab's network.
  const policy = writePolicy(dir, {
    trustRequestPrincipal: true,
    protectedNamespaces: ["kube-system"],
    maxActiveMirrors: 20,
    maxTtlSeconds: 86_400,
    allowedSinkCidrs: ["198.51.100.0/24"],
    allowPodSinks: true,
    rules: [{ principals: ["acceptance"], namespaces: [NS, SINK_NS], ops: ["*"] }],
  });
  // Every service gets the environment; the ovn-applier is the one that reads KUBERNETES.
  lab = await startLab({
    serviceEnv: { POLICY_FILE: policy, KUBERNETES: "kubeconfig", KUBECONFIG: kubeconfig },
  });
  sink = lab.env.LAB_SINK_IP;
  ovntap = ovntapCli(lab, dir, "acceptance");
  await lab.nbctl(
    ...["web-1", "web-2", "web-3", "db-1", "batch-1"].flatMap((p) => ["--", "lsp-add", SWITCH, lsp(p)]),
  );
  nb = await NbObserver.start(lab.env.OVN_NB_DB);
}, 240_000);

afterAll(async () => {
  if (figures.length) console.log(`figures:\n  ${figures.join("\n  ")}`);
  await nb?.close();
  await lab?.stop();
  await fake?.close();
  if (dir) removeDir(dir);
});

describe("selector mirrors and sink pods through the ovntap CLI and the Kubernetes API (fake API server)", () => {
  it("intake runs, and the lab's ovn-applier lists and watches pods and ips.kubeovn.io through the kubeconfig", async () => {
    for (const name of ["intake", "ovn-applier"]) {
      expect(lab.services().find((s) => s.name === name)?.running, name).toBe(true);
    }
    await waitFor(() => fake.openWatches >= 2, { what: "the applier's two watches", timeoutMs: DEADLINE_MS });
    expect(
      fake.calls
        .filter((c) => c.verb === "watch")
        .map((c) => `${c.group}/${c.resource}`)
        .sort(),
    ).toEqual(["/pods", "kubeovn.io/ips"]);
  });

  it("`ovntap create -l app=web`, 3 matching pods and 1 that does not: 3 ports attached, Active, port_attached for each", async () => {
    const t0 = Date.now();
    // NB is watched while the command runs: the ports may be attached before the CLI exits.
    const ports = untilAttached("web", ["web-1", "web-2", "web-3"], "the selector's pods", t0);
    ports.catch(() => undefined); // awaited below, once the command is known to have succeeded
    const created = ok(
      await ovntap(
        ...["create", "web", "-n", NS, "-l", "app=web", "--direction", "egress"],
        ...["--gre-sink", sink, "--ttl", "1h"],
      ),
    );
    figures.push(`ovntap create -l app=web, process start → exit (accepted by intake): ${created.ms} ms`);
    figures.push(`ovntap create -l app=web started → 3 ports attached in NB: ${await ports} ms`);
    const status = await waitStatus(
      "web",
      (s) => s.phase === "Active" && s.ports.length === 3,
      "Active with 3 ports",
    );
    expect(status.ports).toEqual([lsp("web-1"), lsp("web-2"), lsp("web-3")]);
    expect(status.conditions?.find((c) => c.type === "PodsSelected")).toMatchObject({ status: "True" });
    const view = await get("web");
    expect(view.mirror.spec.sources).toEqual({ type: "selector", matchLabels: { app: "web" } });
    expect(view.mirror.owner).toBe("acceptance");
    const row = nb.byName(rowOf("web"));
    expect(row).toMatchObject({ sink, type: "gre", filter: "from-lport" });
    expect(nb.attachedTo(lsp("db-1"))).toEqual([]);

    const t = await waitTrail(
      "web",
      (x) => x.filter((e) => e.type === "port_attached").length === 3,
      "three port_attached events",
    );
    expect(
      t
        .filter((e) => e.type === "port_attached")
        .map((e) => e.detail)
        .sort((a, b) =>
          String((a as { port: string }).port).localeCompare(String((b as { port: string }).port)),
        ),
    ).toEqual(
      ["web-1", "web-2", "web-3"].map((p) => ({
        port: lsp(p),
        pod: { namespace: NS, name: p },
        node: "node-1",
      })),
    );
    // Selector changes are not drift.
    expect(t.map((e) => e.type)).not.toContain("drift_repaired");
  });

  it("a pod deleted is detached; a pod relabelled into the selector is attached", async () => {
    let t0 = Date.now();
    fake.remove("pods", NS, "web-2");
    const detachMs = await untilAttached("web", ["web-1", "web-3"], "web-2 deleted", t0);
    figures.push(`pod deleted → port detached in NB: ${detachMs} ms`);

    t0 = Date.now();
    relabel("db-1", { app: "web" });
    const attachMs = await untilAttached("web", ["web-1", "web-3", "db-1"], "db-1 relabelled", t0);
    figures.push(`pod relabelled into the selector → port attached in NB: ${attachMs} ms`);

    const t = await waitTrail(
      "web",
      (x) => x.some((e) => e.type === "port_attached" && portOf(e) === lsp("db-1")),
      "port_attached db-1",
    );
    expect(t.find((e) => e.type === "port_detached")?.detail).toEqual({
      port: lsp("web-2"),
      pod: { namespace: NS, name: "web-2" },
      reason: "pod_deleted",
    });
  });

  it("a watch cut mid-stream: a change made while it was down arrives", async () => {
    const watchesBefore = fake.calls.filter((c) => c.verb === "watch" && c.resource === "pods").length;
    const listsBefore = fake.calls.filter((c) => c.verb === "list" && c.resource === "pods").length;
    expect(fake.cutWatches({ partialLine: true })).toBeGreaterThanOrEqual(2);
    // No watch is open now (the fake runs in this process: the applier cannot reconnect before
    // this synchronous code yields).
    expect(fake.openWatches).toBe(0);
    const t0 = Date.now();
    relabel("web-3", { app: "other" });
    const ms = await untilAttached(
      "web",
      ["web-1", "db-1"],
      "web-3 relabelled out while the watch was down",
      t0,
    );
    figures.push(`watch cut, change while down → applied after the resumed watch: ${ms} ms`);
    expect(fake.calls.filter((c) => c.verb === "watch" && c.resource === "pods").length).toBeGreaterThan(
      watchesBefore,
    );
    // Resumed from its resourceVersion: no new list.
    expect(fake.calls.filter((c) => c.verb === "list" && c.resource === "pods").length).toBe(listsBefore);
    // The event follows the status (written once the chassis caught up).
    const t = await waitTrail(
      "web",
      (x) => x.some((e) => e.type === "port_detached" && portOf(e) === lsp("web-3")),
      "port_detached web-3",
    );
    expect(t.find((e) => e.type === "port_detached" && portOf(e) === lsp("web-3"))?.detail).toMatchObject({
      reason: "selector_changed",
    });
  });

  it("a watch cut and its version compacted away (410 Gone): the applier lists again and misses nothing", async () => {
    await waitFor(() => fake.openWatches >= 2, { what: "the watches back", timeoutMs: DEADLINE_MS });
    const listsBefore = fake.calls.filter((c) => c.verb === "list" && c.resource === "pods").length;
    fake.cutWatches();
    const t0 = Date.now();
    relabel("web-3", { app: "web" }); // back in: the same pod attached a second time
    fake.remove("pods", NS, "web-1");
    fake.compactHistory();
    const ms = await untilAttached("web", ["web-3", "db-1"], "after the relist", t0);
    figures.push(`watch cut + 410 Gone, changes while down → applied after the relist: ${ms} ms`);
    expect(fake.calls.filter((c) => c.verb === "list" && c.resource === "pods").length).toBeGreaterThan(
      listsBefore,
    );
    // What `ovntap get` says follows NB.
    const status = await waitStatus(
      "web",
      (s) => JSON.stringify(s.ports) === JSON.stringify([lsp("db-1"), lsp("web-3")]),
      "the ports db-1 and web-3",
    );
    expect(status.phase).toBe("Active");
  });

  it("Kubernetes Events on the pods: attached, detached, and a repeat aggregated into count", async () => {
    const ev = await waitFor(
      () => {
        const list = fake.list("events", NS) as (KubeObject & {
          reason: string;
          count: number;
          involvedObject: { name: string };
          reportingComponent: string;
        })[];
        const web3 = list.find((e) => e.involvedObject.name === "web-3" && e.reason === "MirrorAttached");
        return web3 && web3.count >= 2 ? list : undefined;
      },
      { what: "web-3's MirrorAttached Event counted twice", timeoutMs: DEADLINE_MS },
    );
    const byPod = (pod: string, reason: string) =>
      ev.filter((e) => e.involvedObject.name === pod && e.reason === reason);
    expect(byPod("web-1", "MirrorAttached").length).toBe(1);
    expect(byPod("web-3", "MirrorDetached").length).toBe(1);
    expect(byPod("db-1", "MirrorAttached").length).toBe(1);
    expect(byPod("web-3", "MirrorAttached")[0]).toMatchObject({
      type: "Normal",
      reportingComponent: "ovntap",
      involvedObject: { kind: "Pod", namespace: NS, name: "web-3" },
    });
    expect((byPod("web-3", "MirrorAttached")[0] as unknown as { message: string }).message).toMatch(
      /^attached to ovntap mirror shop\/web \(egress, GRE key \d+ to 198\.51\.100\.\d+\)$/,
    );
  });

  it("`ovntap create --sink-pod` resolves through ips.kubeovn.io, and an IP change moves the NB Mirror's sink", async () => {
    fake.put("ips.kubeovn.io", kubeOvnIpObject({ pod: "receiver", namespace: SINK_NS, ip: sink }));
    ok(
      await ovntap(
        ...["create", "to-pod", "-n", NS, "--pod", "db-1", "--direction", "ingress"],
        ...["--sink-pod", `${SINK_NS}/receiver`, "--ttl", "1h", "--wait", "--timeout", "2m"],
      ),
    );
    const view = await get("to-pod");
    expect(view.mirror.spec.target).toEqual({
      type: "gre",
      sink: { pod: { namespace: SINK_NS, name: "receiver" } },
    });
    expect(view.status.phase).toBe("Active");
    expect(view.status.sink).toBe(sink);
    expect(nb.byName(rowOf("to-pod"))?.sink).toBe(sink);

    const moved = "198.51.100.3";
    const t0 = Date.now();
    fake.modify("ips.kubeovn.io", undefined, `receiver.${SINK_NS}`, (o: KubeObject) => {
      Object.assign(o.spec as object, { ipAddress: moved, v4IpAddress: moved });
    });
    await waitFor(() => nb.byName(rowOf("to-pod"))?.sink === moved, {
      what: "the NB Mirror's sink to follow the pod's new IP",
      timeoutMs: DEADLINE_MS,
      intervalMs: 5,
    });
    figures.push(`sink pod IP changed → NB Mirror sink moved: ${Date.now() - t0} ms`);
    const after = await waitStatus(
      "to-pod",
      (s) => s.sink === moved && s.phase === "Active",
      "Active towards the new IP",
    );
    expect(after.ports).toEqual([lsp("db-1")]);
    expect((await trail("to-pod")).map((e) => e.type)).not.toContain("drift_repaired");
  });

  it("`--sink-pod … --provider` mirrors to the pod's attachment network address", async () => {
    // The receiver's second interface, on an attachment network: its own ips.kubeovn.io object.
    const provider = `attachnet.${SINK_NS}.ovn`;
    const attachIp = "203.0.113.7";
    fake.put(
      "ips.kubeovn.io",
      kubeOvnIpObject({ pod: "receiver", namespace: SINK_NS, ip: attachIp, provider }),
    );
    ok(
      await ovntap(
        ...["create", "to-net1", "-n", NS, "--pod", "db-1", "--direction", "egress"],
        ...["--sink-pod", `${SINK_NS}/receiver`, "--provider", provider, "--ttl", "1h"],
        ...["--wait", "--timeout", "2m"],
      ),
    );
    const view = await get("to-net1");
    expect(view.mirror.spec.target).toEqual({
      type: "gre",
      sink: { pod: { namespace: SINK_NS, name: "receiver", provider } },
    });
    expect(view.status).toMatchObject({ phase: "Active", sink: attachIp, ports: [lsp("db-1")] });
    expect(nb.byName(rowOf("to-net1"))).toMatchObject({ sink: attachIp, type: "gre", filter: "from-lport" });
    // The primary network's address stays the other mirror's.
    expect(nb.byName(rowOf("to-pod"))?.sink).toBe("198.51.100.3");
  });

  it("a sink pod in a namespace the principal may not mirror into is refused by intake", async () => {
    fake.put("ips.kubeovn.io", kubeOvnIpObject({ pod: "receiver", namespace: "elsewhere", ip: sink }));
    const r = await ovntap(
      ...["create", "far", "-n", NS, "--pod", "db-1", "--direction", "ingress"],
      ...["--sink-pod", "elsewhere/receiver", "--ttl", "1h"],
    );
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^SINK_NOT_ALLOWED: /);
    expect(r.stderr).toContain("elsewhere/receiver");
    expect((await ovntap("get", "far", "-n", NS)).stderr).toMatch(/^NOT_FOUND: /);
    expect(nb.byName(rowOf("far"))).toBeUndefined();
  });

  it("a selector that selects no pod yet is Active (NoMatchingPods) and attaches the first one that appears", async () => {
    ok(
      await ovntap(
        ...["create", "batch", "-n", NS, "--selector", "app=batch", "--direction", "egress"],
        ...["--gre-sink", sink, "--ttl", "1h", "--wait", "--timeout", "2m"],
      ),
    );
    const idle = await waitStatus("batch", (s) => s.phase === "Active", "Active");
    expect(idle).toMatchObject({ reason: "NoMatchingPods", ports: [] });
    expect(idle.message).toMatch(/no running pod in shop matches app=batch yet/);
    expect(idle.conditions?.find((c) => c.type === "PodsSelected")).toMatchObject({
      status: "False",
      reason: "NoMatchingPods",
    });
    // The rows and the key are in place already.
    expect(nb.byName(rowOf("batch"))).toBeDefined();

    const t0 = Date.now();
    fake.put(
      "pods",
      podObject({ name: "batch-1", namespace: NS, labels: { app: "batch" }, nodeName: "node-1" }),
    );
    const ms = await untilAttached("batch", ["batch-1"], "the first batch pod", t0);
    figures.push(`first pod for an idle selector → attached in NB: ${ms} ms`);
    const busy = await waitStatus("batch", (s) => s.ports.length === 1, "one port");
    expect(busy.phase).toBe("Active");
    expect(busy.reason).toBeUndefined();
  });

  it("a mirror that fails tells its pods with Warning Events", async () => {
    const key = (await get("web")).status.key;
    expect(key).toBeTypeOf("number");
    // The key the web mirror holds towards the same sink: KEY_IN_USE, terminal.
    const r = await ovntap(
      ...["create", "clash", "-n", NS, "-l", "app=web", "--direction", "egress"],
      ...["--gre-sink", sink, "--key", String(key), "--ttl", "1h", "--wait", "--timeout", "2m"],
    );
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/shop\/clash (failed: KEY_IN_USE|is Failed: KeyInUse)/);
    const failed = await waitStatus("clash", (s) => s.phase === "Failed", "Failed");
    expect(failed.reason).toBe("KeyInUse");
    const warnings = await waitFor(
      () => {
        const w = (
          fake.list("events", NS) as (KubeObject & {
            reason: string;
            type: string;
            message: string;
            involvedObject: { name: string };
          })[]
        ).filter((e) => e.reason === "MirrorFailed");
        return w.length === 2 ? w : undefined;
      },
      { what: "MirrorFailed on the two selected pods", timeoutMs: DEADLINE_MS },
    );
    expect(warnings.map((e) => e.involvedObject.name).sort()).toEqual(["db-1", "web-3"]);
    for (const w of warnings) {
      expect(w.type).toBe("Warning");
      expect(w.message).toMatch(/^ovntap mirror shop\/clash failed: KEY_IN_USE: /);
    }
  });

  it("`ovntap delete` detaches every selected port and removes the NB row", async () => {
    expect(attached("web")).toEqual(["db-1", "web-3"]);
    const t0 = Date.now();
    ok(await ovntap("delete", "web", "-n", NS, "--wait", "--timeout", "2m"));
    figures.push(`ovntap delete --wait of a selector mirror with 2 ports: ${Date.now() - t0} ms`);
    expect(nb.byName(rowOf("web"))).toBeUndefined();
    for (const pod of ["db-1", "web-3"]) {
      expect(nb.attachedTo(lsp(pod)).map((m) => m.name)).not.toContain(rowOf("web"));
    }
    expect((await ovntap("get", "web", "-n", NS)).stderr).toMatch(/^NOT_FOUND: /);
    const t = await waitTrail("web", (x) => x.some((e) => e.type === "deleted"), "the deleted event");
    const detached = t.filter(
      (e) => e.type === "port_detached" && (e.detail as { reason?: string }).reason === "mirror_deleted",
    );
    expect(detached.map(portOf).sort()).toEqual([lsp("db-1"), lsp("web-3")]);
    // Each port_detached comes before the deleted event.
    const deletedAt = t.findIndex((e) => e.type === "deleted");
    for (const e of detached) expect(t.indexOf(e)).toBeLessThan(deletedAt);
  });

  it("the applier made exactly the API calls APPLIER_API_CALLS lists (what its RBAC grants)", async () => {
    await waitFor(() => fake.calls.some((c) => c.verb === "patch" && c.resource === "events"), {
      what: "an Event patch",
      timeoutMs: DEADLINE_MS,
    });
    expect(apiCallKeys(fake.calls)).toEqual(apiCallKeys(APPLIER_API_CALLS));
    expect(fake.denied).toEqual([]);
  });
});
