/**
 * Finding the API: a kubeconfig with a bearer token, and in-cluster (the service account's token
 * and CA, KUBERNETES_SERVICE_HOST/PORT) against the fake API server over HTTPS.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiException, CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeConfigError, kubernetesMode, loadKubeConfig } from "./config.js";
import { FakeApiServer } from "./testing/fake-api-server.js";
import { podObject, selfSignedCertificate } from "./testing/objects.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ovntap-k8s-config-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("kubernetesMode", () => {
  it("is in-cluster in a pod, off elsewhere, unless asked", () => {
    expect(kubernetesMode(undefined, { KUBERNETES_SERVICE_HOST: "10.96.0.1" })).toBe("in-cluster");
    expect(kubernetesMode(undefined, {})).toBe("off");
    expect(kubernetesMode("off", { KUBERNETES_SERVICE_HOST: "10.96.0.1" })).toBe("off");
    expect(kubernetesMode("kubeconfig", {})).toBe("kubeconfig");
  });
});

describe("loadKubeConfig", () => {
  it("kubeconfig: the file's server and bearer token reach the API; a wrong token is refused", async () => {
    const fake = await FakeApiServer.start({ token: "s3cret" });
    try {
      fake.put("pods", podObject({ name: "web-1", namespace: "shop" }));
      const file = fake.writeKubeconfig(join(dir, "kubeconfig"));
      const kc = loadKubeConfig({ mode: "kubeconfig", env: { KUBECONFIG: file } });
      const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: "shop" });
      expect(pods.items.map((p) => p.metadata?.name)).toEqual(["web-1"]);

      const wrong = fake.writeKubeconfig(join(dir, "wrong"), { token: "nope" });
      const denied = loadKubeConfig({ mode: "kubeconfig", kubeconfig: wrong }).makeApiClient(CoreV1Api);
      await expect(denied.listNamespacedPod({ namespace: "shop" })).rejects.toSatisfy(
        (e) => e instanceof ApiException && e.code === 401,
      );
    } finally {
      await fake.close();
    }
  });

  it("in-cluster: the service account token and CA, and the host and port from the environment", async () => {
    const tls = selfSignedCertificate();
    const fake = await FakeApiServer.start({ token: "sa-token", tls });
    try {
      fake.put("pods", podObject({ name: "web-1", namespace: "shop" }));
      const sa = join(dir, "serviceaccount");
      mkdirSync(sa, { recursive: true });
      writeFileSync(join(sa, "token"), "sa-token");
      writeFileSync(join(sa, "ca.crt"), tls.cert);
      writeFileSync(join(sa, "namespace"), "ovntap\n");
      const port = new URL(fake.url).port;
      const kc = loadKubeConfig({
        mode: "in-cluster",
        env: { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: port },
        serviceAccountDir: sa,
      });
      expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe("ovntap");
      const pods = await kc.makeApiClient(CoreV1Api).listPodForAllNamespaces();
      expect(pods.items.map((p) => p.metadata?.name)).toEqual(["web-1"]);
      expect(fake.calls).toEqual([{ verb: "list", group: "", resource: "pods" }]);
    } finally {
      await fake.close();
    }
  });

  it("says what is missing", () => {
    expect(() => loadKubeConfig({ mode: "in-cluster", env: {} })).toThrow(/KUBERNETES_SERVICE_HOST/);
    expect(() =>
      loadKubeConfig({
        mode: "in-cluster",
        env: { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" },
        serviceAccountDir: join(dir, "none"),
      }),
    ).toThrow(/token is missing/);
    expect(() => loadKubeConfig({ mode: "kubeconfig", kubeconfig: join(dir, "absent") })).toThrow(
      KubeConfigError,
    );
    expect(() => loadKubeConfig({ mode: "kubeconfig", kubeconfig: join(dir, "absent") })).toThrow(
      /KUBECONFIG/,
    );
  });
});
