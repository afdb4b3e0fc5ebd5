/**
 * docker-compose.yml, beyond its schema (test/repository.test.ts): the lab in containers runs
 * every service, gives each only variables its configuration reads and every one it requires,
 * and gives it what the native lab (deploy/lab) gives it — the same servers, the same sink, the
 * same node — on the same topology.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { LAB_ENV_NAMES, LAB_TOPOLOGY } from "@ovntap/lab";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderKustomization } from "../deploy/k8s/tools/kustomize.js";
import { serviceEnv, servicePackages } from "../deploy/k8s/tools/service-env.js";

const root = join(import.meta.dirname, "..");

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  network_mode?: string;
  user?: string;
  cap_add?: string[];
  privileged?: boolean;
  profiles?: string[];
  ports?: string[];
}

const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8")) as {
  services: Record<string, ComposeService>;
};

/** The services that run the ovntap image, by the program they run. */
const ovntap = Object.entries(compose.services)
  .filter(([, s]) => s.build?.dockerfile === "deploy/docker/Dockerfile")
  .map(([name, s]) => ({ name, service: s, program: s.command?.[0] ?? "" }));
const programs = ovntap.filter((x) => x.program !== "cli" && !x.service.profiles?.length);

/** Variables the native lab gives every service it starts (deploy/lab: env.ts, services.ts, lab.ts). */
const LAB_GIVES = new Set<string>([...LAB_ENV_NAMES, "NODE_NAME", "COLLECTOR_SINK", "CAPTURE_INTERFACE"]);

describe("docker-compose.yml", () => {
  it("runs every service but the TrafficMirror controller, each under its own name", () => {
    const wanted = servicePackages(root)
      .filter((p) => p.service && p.name !== "k8s-controller")
      .map((p) => p.name);
    const run = programs.map((x) => x.program);
    for (const name of wanted) expect(run, `services/${name}`).toContain(name);
    expect(run).not.toContain("k8s-controller");
    for (const x of programs) expect(x.name).toBe(x.program);
    expect(new Set(run)).toEqual(
      new Set(["intake", "ovn-applier", "node-agent", "capture-exporter", "console"]),
    );
  });

  it("sets only variables each service reads, every one it requires, with valid values", async () => {
    for (const { name, service, program } of programs) {
      const env = await serviceEnv(root, program);
      const set = service.environment ?? {};
      const where = `compose service ${name} (${env.source})`;
      expect(
        Object.keys(set).filter((n) => !env.names.has(n)),
        `${where}: not read`,
      ).toEqual([]);
      expect(
        [...env.required].filter((n) => set[n] === undefined),
        `${where}: required, not set`,
      ).toEqual([]);
      expect(env.check(set), `${where}: values`).toEqual([]);
      expect(service.healthcheck?.test.join(" "), `${where}: healthcheck`).toContain("/healthz");
    }
  });

  it("gives each service what the native lab gives it, on the lab's addresses", async () => {
    const byName = compose.services;
    for (const { name, service, program } of programs) {
      const env = await serviceEnv(root, program);
      const set = service.environment ?? {};
      const expected = [...LAB_GIVES].filter((v) => env.names.has(v));
      expect(
        expected.filter((v) => set[v] === undefined),
        `${name}: variables the lab sets`,
      ).toEqual([]);
      if (set.COLLECTOR_SINK) expect(set.COLLECTOR_SINK, name).toBe(LAB_TOPOLOGY.sinkIp);
      // Every server named is a service of this file.
      for (const v of ["NATS_URL", "REDIS_URL", "OVN_NB_DB", "OVN_SB_DB"]) {
        const value = set[v];
        if (!value) continue;
        const host = /^(?:[a-z]+:\/\/|tcp:)([^:/]+)/.exec(value)?.[1] ?? "";
        expect(Object.keys(byName), `${name} ${v}=${value}`).toContain(host);
      }
    }
    // One node: the agent and the exporter share the OVS node's network and its name.
    const node = byName["ovs-node"]?.environment?.NODE_NAME;
    for (const name of ["node-agent", "capture-exporter"]) {
      expect(byName[name]?.network_mode, name).toBe("service:ovs-node");
      expect(byName[name]?.environment?.NODE_NAME, name).toBe(node);
    }
  });

  it("grants root and capabilities as deploy/k8s does, and nothing to the others", () => {
    const k8s = renderKustomization(join(root, "deploy", "k8s", "base"));
    const caps = (program: string) => {
      const workload = k8s.find((o) =>
        JSON.stringify((o.spec as { template?: unknown } | undefined)?.template ?? {}).includes(
          `"args":["${program}"]`,
        ),
      );
      const c = (
        workload?.spec as {
          template: {
            spec: {
              containers: { securityContext?: { capabilities?: { add?: string[] }; runAsUser?: number } }[];
            };
          };
        }
      ).template.spec.containers[0];
      return { add: c?.securityContext?.capabilities?.add ?? [], root: c?.securityContext?.runAsUser === 0 };
    };
    for (const { name, service, program } of programs) {
      const k = caps(program);
      expect(service.cap_add ?? [], name).toEqual(k.add);
      expect(service.user === "0", name).toBe(k.root);
      expect(service.privileged, name).toBeUndefined();
    }
    expect(compose.services["ovs-node"]?.privileged).toBe(true);
  });

  it("builds the lab's topology in the OVN node: its switch, pods, tunnel source and sink", () => {
    const script = readFileSync(join(root, "deploy", "docker", "ovn-lab.sh"), "utf8");
    const { logicalSwitch, podA, podB, tunnelSrcIp, sinkIp, transportPrefixLen } = LAB_TOPOLOGY;
    expect(script).toContain(`ls-add ${logicalSwitch}`);
    for (const pod of [podA, podB]) {
      const [podName] = pod.lsp.split(".");
      expect(script).toContain(`pod ${podName} ${pod.ip} ${pod.mac}`);
    }
    expect(script).toContain("$1.default"); // the port of pod X is X.default, as in the lab
    expect(script).toContain(`ovn-encap-ip=${tunnelSrcIp}`);
    expect(script).toContain(`${tunnelSrcIp}/${transportPrefixLen} dev br-ul`);
    expect(script).toContain(`${sinkIp}/${transportPrefixLen} dev eth0`);
    expect(script).toContain("datapath_type=netdev");
    expect(compose.services["capture-exporter"]?.environment?.CAPTURE_INTERFACE).toBe("ul0");
    expect(script).toContain("add-port br-ul ul0");
    const check = spawnSync("sh", ["-n", join(root, "deploy", "docker", "ovn-lab.sh")], { encoding: "utf8" });
    expect(check.stderr).toBe("");
    expect(check.status).toBe(0);
  });

  it("keeps the console's packets on the host's loopback", () => {
    expect(compose.services.console?.ports).toEqual(["127.0.0.1:8080:8080"]);
    expect(compose.services.console?.environment?.HTTP_HOST).toBe("0.0.0.0");
  });
});
