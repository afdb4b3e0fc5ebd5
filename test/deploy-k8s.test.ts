/**
 * deploy/k8s: every kustomization renders with the repository's renderer exactly as the real
 * kustomize (`kubectl kustomize`, committed under deploy/k8s/rendered) renders it, every object
 * passes the Kubernetes API types and the cross-object checks, and each service gets the
 * environment its own configuration schema reads.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePolicy } from "@ovntap/intake";
import { MIRROR_FINALIZER, trafficMirrorCrd } from "@ovntap/k8s-controller";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  KustomizeUnsupportedError,
  objectId,
  renderKustomization,
  type KubeObject,
} from "../deploy/k8s/tools/kustomize.js";
import { serviceEnv, servicePackages } from "../deploy/k8s/tools/service-env.js";
import { podTemplate, referenceProblems, schemaProblems } from "../deploy/k8s/tools/validate.js";

const root = join(import.meta.dirname, "..");
const k8sDir = join(root, "deploy", "k8s");
const TARGETS = { base: "base", external: "overlays/external", bundled: "overlays/bundled" } as const;
type Target = keyof typeof TARGETS;
const REGENERATE = "regenerate with `sh deploy/k8s/tools/render-fixtures.sh` (needs kubectl)";

const render = (t: Target) => renderKustomization(join(k8sDir, TARGETS[t]));
const rendered: Record<Target, KubeObject[]> = {
  base: render("base"),
  external: render("external"),
  bundled: render("bundled"),
};

function kubectlFixture(t: Target): unknown[] {
  const text = readFileSync(join(k8sDir, "rendered", `${t}.yaml`), "utf8");
  return parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter((d) => d !== null);
}

type Container = {
  name: string;
  image: string;
  args?: string[];
  env?: {
    name: string;
    value?: string;
    valueFrom?: { configMapKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
  }[];
  ports?: { name?: string; containerPort: number }[];
  securityContext?: {
    runAsUser?: number;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string }[];
};

/** The ovntap containers of a render: the workload, its pod spec, and the service it runs. */
function ovntapContainers(objects: KubeObject[]) {
  const out: { workload: KubeObject; pod: Record<string, unknown>; container: Container; service: string }[] =
    [];
  for (const o of objects) {
    const t = podTemplate(o);
    if (!t) continue;
    for (const c of (t.spec.containers ?? []) as unknown as Container[]) {
      if (!/^(.*\/)?ovntap(:|@|$)/.test(c.image)) continue;
      out.push({
        workload: o,
        pod: t.spec as Record<string, unknown>,
        container: c,
        service: c.args?.[0] ?? "",
      });
    }
  }
  return out;
}

function find(objects: KubeObject[], kind: string, name: string): KubeObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} in the render`);
  return o;
}

/** An env var's value as the pod would see it, resolving ConfigMap references and the downward API. */
function resolveEnv(objects: KubeObject[], c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.configMapKeyRef) {
      const cm = find(objects, "ConfigMap", e.valueFrom.configMapKeyRef.name) as {
        data?: Record<string, string>;
      };
      env[e.name] = cm.data?.[e.valueFrom.configMapKeyRef.key] ?? "";
    } else if (e.valueFrom?.fieldRef?.fieldPath === "spec.nodeName") env[e.name] = "worker-1";
    else throw new Error(`env ${e.name} of ${c.name}: a source this test does not resolve`);
  }
  return env;
}

describe("deploy/k8s renders as kustomize renders it", () => {
  for (const t of Object.keys(TARGETS) as Target[]) {
    it(`${TARGETS[t]}: every document has apiVersion, kind and metadata.name, and equals kubectl kustomize's output`, () => {
      const objects = rendered[t];
      expect(objects.length).toBeGreaterThan(10);
      for (const o of objects) {
        expect(typeof o.apiVersion, objectId(o)).toBe("string");
        expect(typeof o.kind, objectId(o)).toBe("string");
        expect(typeof o.metadata.name, objectId(o)).toBe("string");
      }
      const reference = kubectlFixture(t) as KubeObject[];
      for (const o of reference)
        expect(Object.keys(o)).toEqual(expect.arrayContaining(["apiVersion", "kind", "metadata"]));
      // Same objects in the same order, each equal as parsed YAML.
      expect(objects.map(objectId), REGENERATE).toEqual(reference.map(objectId));
      for (const [i, o] of objects.entries())
        expect(o, `${objectId(o)}: ${REGENERATE}`).toEqual(reference[i]);
    });
  }

  it("every object of every render passes the Kubernetes API types and the cross-object checks", () => {
    for (const t of Object.keys(TARGETS) as Target[]) {
      expect(schemaProblems(rendered[t]), TARGETS[t]).toEqual([]);
      expect(referenceProblems(rendered[t]), TARGETS[t]).toEqual([]);
    }
  });

  it("the type check finds a typo, a wrong type and a missing field", () => {
    const d = structuredClone(find(rendered.external, "Deployment", "intake")) as KubeObject & {
      spec: { replicas: unknown; template: { spec: { containers: Record<string, unknown>[] } } };
    };
    const c = d.spec.template.spec.containers[0] as Record<string, unknown>;
    c.imagePullPolicyy = "Always";
    delete c.name;
    d.spec.replicas = "2";
    expect(schemaProblems([d])).toEqual([
      'Deployment ovntap/intake: spec.replicas: must be a number, not "2"',
      "Deployment ovntap/intake: spec.template.spec.containers[0].imagePullPolicyy: unknown field (V1Container)",
      "Deployment ovntap/intake: spec.template.spec.containers[0].name: is required (V1Container)",
    ]);
    const lonely = structuredClone(find(rendered.external, "Service", "intake"));
    expect(referenceProblems([lonely])).toEqual(["Service ovntap/intake: selects no workload's pods"]);
  });
});

describe("the renderer", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  function kustomization(files: Record<string, string>): string {
    const dir = mkdtempSync(join(tmpdir(), "ovntap-kustomize-"));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return dir;
  }

  const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec:
      containers:
        - {name: c0, image: busybox:1}
        - name: c
          image: ovntap
          env: [{name: A, value: "1"}, {name: B, value: "2"}, {name: C, value: "3"}]
`;

  it("merges associative lists the way kustomize does: the patch's items first, then the rest", () => {
    // The expected objects are what `kubectl kustomize` (kustomize v5.5.0) printed for this input.
    const dir = kustomization({
      "kustomization.yaml":
        "resources: [d.yaml]\npatches: [{path: p.yaml}]\nimages: [{name: ovntap, newTag: '2'}]\n",
      "d.yaml": deployment,
      "p.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers:
        - name: c
          env: [{name: B, value: "9"}, {name: Z, value: z}]
        - {name: side, image: ovntap}
`,
    });
    const [d] = renderKustomization(dir) as [KubeObject & { spec: { template: { spec: unknown } } }];
    expect(d.spec.template.spec).toEqual({
      containers: [
        {
          name: "c",
          image: "ovntap:2",
          env: [
            { name: "B", value: "9" },
            { name: "Z", value: "z" },
            { name: "A", value: "1" },
            { name: "C", value: "3" },
          ],
        },
        { name: "side", image: "ovntap:2" },
        { name: "c0", image: "busybox:1" },
      ],
    });
  });

  it("refuses what it does not implement, by name, instead of rendering something else", () => {
    const cases: Record<string, string> = {
      commonLabels: "resources: [d.yaml]\ncommonLabels: {a: b}\n",
      configMapGenerator: "resources: [d.yaml]\nconfigMapGenerator: [{name: x, literals: [a=b]}]\n",
      "a patch target": "resources: [d.yaml]\npatches: [{patch: '[]', target: {kind: Deployment}}]\n",
      includeSelectors: "resources: [d.yaml]\nlabels: [{pairs: {a: b}, includeSelectors: true}]\n",
    };
    for (const [what, text] of Object.entries(cases)) {
      const dir = kustomization({ "kustomization.yaml": text, "d.yaml": deployment });
      expect(() => renderKustomization(dir), what).toThrow(KustomizeUnsupportedError);
    }
  });
});

describe("what deploy/k8s deploys", () => {
  const base = rendered.base;

  it("runs every service, each in the image with its entrypoint argument", () => {
    const deployed = new Set(ovntapContainers(base).map((x) => x.service));
    const packages = servicePackages(root);
    for (const p of packages.filter((x) => x.service))
      expect(deployed, `services/${p.name}`).toContain(p.name);
    for (const s of deployed)
      expect(
        packages.map((p) => p.name),
        `args [${s}]`,
      ).toContain(s);
    // The console is deployed too, whether or not the lab runs it.
    expect(deployed).toEqual(
      new Set(["intake", "ovn-applier", "capture-exporter", "node-agent", "k8s-controller", "console"]),
    );
  });

  it("sets only variables each service reads, and every variable it requires, with valid values", async () => {
    for (const t of Object.keys(TARGETS) as Target[]) {
      for (const { container, service, workload } of ovntapContainers(rendered[t])) {
        const env = await serviceEnv(root, service);
        const set = (container.env ?? []).map((e) => e.name);
        const where = `${TARGETS[t]} ${workload.kind} ${workload.metadata.name} (${env.source})`;
        expect(
          set.filter((n) => !env.names.has(n)),
          `${where}: variables the service does not read`,
        ).toEqual([]);
        expect(
          [...env.required].filter((n) => !set.includes(n)),
          `${where}: required variables not set`,
        ).toEqual([]);
        const values = resolveEnv(rendered[t], container);
        expect(env.check(values), `${where}: values`).toEqual([]);
        // Probes and Services come from outside the pod: the service must not listen on loopback.
        const effective = env.effective(values);
        if (effective) expect(["0.0.0.0", "::"], `${where}: HTTP_HOST`).toContain(effective.HTTP_HOST);
      }
    }
  });

  it("gives intake and the ovn-applier two replicas and a disruption budget", () => {
    for (const name of ["intake", "ovn-applier"]) {
      expect((find(base, "Deployment", name).spec as { replicas: number }).replicas).toBe(2);
      const pdb = find(base, "PodDisruptionBudget", name).spec as { minAvailable: number };
      expect(pdb.minAvailable).toBe(1);
    }
    for (const name of ["capture-exporter", "k8s-controller", "console"]) {
      expect((find(base, "Deployment", name).spec as { replicas: number }).replicas).toBe(1);
    }
  });

  it("runs the node agent on every node in the host network, with the node's OVS and OVN sockets", () => {
    const ds = find(base, "DaemonSet", "node-agent");
    const t = podTemplate(ds)!;
    const pod = t.spec as Record<string, unknown>;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe("ClusterFirstWithHostNet");
    expect(pod.tolerations).toEqual([{ operator: "Exists" }]);
    const [c] = t.spec.containers as unknown as Container[];
    expect(c?.securityContext?.capabilities).toEqual({ drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW"] });
    expect(c?.env).toContainEqual({
      name: "NODE_NAME",
      valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } },
    });
    expect(c?.volumeMounts?.map((m) => m.mountPath).sort()).toEqual(["/run/openvswitch", "/run/ovn"]);
    const volumes = pod.volumes as { hostPath: { path: string } }[];
    expect(volumes.map((v) => v.hostPath.path).sort()).toEqual(["/run/openvswitch", "/run/ovn"]);
    expect(find(base, "Service", "node-agent").spec).toMatchObject({ clusterIP: "None" });
  });

  it("runs as non-root with no capabilities, except the two programs the kernel makes root", () => {
    const root0: Record<string, string[]> = {
      "node-agent": ["NET_ADMIN", "NET_RAW"],
      "capture-exporter": ["NET_RAW"],
    };
    for (const { container, pod, service } of ovntapContainers(base)) {
      const sc = container.securityContext;
      expect(sc?.allowPrivilegeEscalation, service).toBe(false);
      expect(sc?.capabilities?.drop, service).toEqual(["ALL"]);
      if (service in root0) {
        expect(sc?.runAsUser, service).toBe(0);
        expect(sc?.capabilities?.add, service).toEqual(root0[service]);
      } else {
        expect(sc?.capabilities?.add, service).toBeUndefined();
        expect((pod.securityContext as { runAsNonRoot?: boolean }).runAsNonRoot, service).toBe(true);
      }
    }
  });

  it("mounts a Kubernetes token only where the service calls the API", () => {
    const callers = new Set(["ovn-applier", "k8s-controller"]);
    for (const { container, pod, service } of ovntapContainers(base)) {
      const sa = find(base, "ServiceAccount", pod.serviceAccountName as string);
      expect(sa.metadata.name, service).toBe(service);
      const mounted = pod.automountServiceAccountToken !== false && sa.automountServiceAccountToken !== false;
      expect(mounted, service).toBe(callers.has(service));
      const kubernetes = container.env?.find((e) => e.name === "KUBERNETES")?.value;
      expect(kubernetes, service).toBe(callers.has(service) ? "in-cluster" : undefined);
    }
  });

  it("serves every service's HTTP port behind a Service for /metrics, and probes /healthz and /readyz", () => {
    for (const { container, workload } of ovntapContainers(base)) {
      const port = container.ports?.find((p) => p.name === "http");
      expect(port, workload.metadata.name).toBeDefined();
      const httpPort = container.env?.find((e) => e.name === "HTTP_PORT")?.value;
      expect(Number(httpPort), workload.metadata.name).toBe(port?.containerPort);
      const svc = find(base, "Service", workload.metadata.name);
      expect(svc.metadata.annotations, workload.metadata.name).toMatchObject({
        "prometheus.io/scrape": "true",
        "prometheus.io/port": httpPort,
      });
      const c = container as Container & { readinessProbe?: unknown; livenessProbe?: unknown };
      expect(c.readinessProbe).toMatchObject({ httpGet: { path: "/readyz", port: "http" } });
      expect(c.livenessProbe).toMatchObject({ httpGet: { path: "/healthz", port: "http" } });
    }
  });

  it("holds a policy intake accepts, mounted where intake reads it", () => {
    const cm = find(base, "ConfigMap", "ovntap-policy") as unknown as { data: Record<string, string> };
    const policy = parsePolicy(cm.data["policy.yaml"] ?? "", "ConfigMap ovntap-policy");
    expect(policy.protectedNamespaces).toEqual(expect.arrayContaining(["kube-system", "ovntap"]));
    const intake = ovntapContainers(base).find((x) => x.service === "intake")!;
    const file = intake.container.env?.find((e) => e.name === "POLICY_FILE")?.value ?? "";
    const mount = intake.container.volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
    expect(mount?.name).toBe("policy");
    expect(file.slice((mount?.mountPath.length ?? 0) + 1)).toBe("policy.yaml");
  });

  it("installs the TrafficMirror CRD the controller generates", () => {
    const crd = find(base, "CustomResourceDefinition", "trafficmirrors.ovntap.io");
    const { labels, ...metadata } = crd.metadata;
    expect({ ...crd, metadata }).toEqual(trafficMirrorCrd());
    expect(labels).toEqual({ "app.kubernetes.io/part-of": "ovntap" });
    expect(MIRROR_FINALIZER).toBe("ovntap.io/mirror");
  });

  it("lets in only what each pod serves", () => {
    const policies = base.filter((o) => o.kind === "NetworkPolicy");
    expect(policies.find((p) => p.metadata.name === "default-deny-ingress")?.spec).toEqual({
      podSelector: {},
      policyTypes: ["Ingress"],
    });
    const http = find(base, "NetworkPolicy", "allow-http").spec as { ingress: unknown[] };
    expect(http.ingress).toEqual([{ ports: [{ protocol: "TCP", port: 8080 }] }]);
    // Every HTTP port is let in by exactly one policy; the console's only for labelled pods.
    for (const { workload } of ovntapContainers(base)) {
      if (workload.kind === "DaemonSet") continue; // the host network: no NetworkPolicy applies
      const labels = podTemplate(workload)!.labels;
      const admitting = policies.filter((p) => {
        const sel = (
          p.spec as {
            podSelector: {
              matchLabels?: Record<string, string>;
              matchExpressions?: { key: string; values: string[] }[];
            };
          }
        ).podSelector;
        const byLabels = Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
        const byExpr = (sel.matchExpressions ?? []).every((e) => e.values.includes(labels[e.key] ?? ""));
        return (
          (p.spec as { ingress?: unknown[] }).ingress &&
          byLabels &&
          byExpr &&
          (sel.matchLabels || sel.matchExpressions)
        );
      });
      expect(
        admitting.map((p) => p.metadata.name),
        workload.metadata.name,
      ).toHaveLength(1);
    }
    const consolePolicy = find(base, "NetworkPolicy", "allow-console").spec as {
      ingress: { from: unknown[] }[];
    };
    expect(consolePolicy.ingress[0]?.from).toEqual([
      { namespaceSelector: {}, podSelector: { matchLabels: { "ovntap.io/console-access": "true" } } },
    ]);
  });

  it("points the external overlay at existing servers and the bundled one at its own", () => {
    const endpoints = (t: Target) =>
      (find(rendered[t], "ConfigMap", "ovntap-endpoints") as unknown as { data: Record<string, string> })
        .data;
    expect(endpoints("external").NATS_URL).toMatch(/^nats:\/\/.*messaging/);
    expect(endpoints("bundled")).toMatchObject({
      NATS_URL: "nats://nats.ovntap.svc:4222",
      REDIS_URL: "redis://redis.ovntap.svc:6379",
    });
    const nats = find(rendered.bundled, "StatefulSet", "nats").spec as {
      template: { spec: { containers: Container[] } };
      volumeClaimTemplates: unknown[];
    };
    expect(nats.template.spec.containers[0]?.args).toEqual(expect.arrayContaining(["-js", "-sd", "/data"]));
    expect(nats.volumeClaimTemplates).toHaveLength(1);
    const redis = find(rendered.bundled, "StatefulSet", "redis").spec as {
      template: { spec: { containers: Container[] } };
    };
    expect(redis.template.spec.containers[0]?.args?.join(" ")).toContain("--appendonly yes");
    expect(rendered.external.some((o) => o.kind === "StatefulSet")).toBe(false);
    for (const t of ["external", "bundled"] as const) {
      for (const { container } of ovntapContainers(rendered[t]))
        expect(container.image).toBe("ovntap/ovntap:0.1.0");
    }
  });
});
