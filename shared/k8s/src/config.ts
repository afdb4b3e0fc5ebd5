/**
 * How a component finds the Kubernetes API: in a pod, through its service account (the token and
 * CA kubelet mounts, KUBERNETES_SERVICE_HOST/PORT); outside, through a kubeconfig file.
 *
 *   const mode = kubernetesMode(process.env.KUBERNETES, process.env);   // "off" | "in-cluster" | "kubeconfig"
 *   if (mode !== "off") {
 *     const kc = loadKubeConfig({ mode, env: process.env });
 *     kc.makeApiClient(CoreV1Api);
 *   }
 *
 * In-cluster, the token is read through client-node's `tokenFile` provider, which re-reads it
 * every minute: bound service account tokens are rotated by kubelet.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { isIPv6 } from "node:net";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";

export const KUBERNETES_MODES = ["off", "in-cluster", "kubeconfig"] as const;
export type KubernetesMode = (typeof KUBERNETES_MODES)[number];

/** Where kubelet mounts a pod's service account. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export class KubeConfigError extends Error {
  override name = "KubeConfigError";
}

/**
 * The mode to use: the one asked for, else in-cluster when running in a pod
 * (KUBERNETES_SERVICE_HOST is set), else off.
 */
export function kubernetesMode(
  asked: KubernetesMode | undefined,
  env: NodeJS.ProcessEnv = process.env,
): KubernetesMode {
  if (asked !== undefined) return asked;
  return env.KUBERNETES_SERVICE_HOST ? "in-cluster" : "off";
}

export interface LoadKubeConfigOptions {
  mode: "in-cluster" | "kubeconfig";
  /** kubeconfig file (mode kubeconfig). Default: the first of $KUBECONFIG, else ~/.kube/config. */
  kubeconfig?: string | undefined;
  /** Context to use instead of the file's current-context. */
  context?: string | undefined;
  /** KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT, KUBECONFIG. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The service account's token, ca.crt and namespace (mode in-cluster). Default SERVICE_ACCOUNT_DIR. */
  serviceAccountDir?: string;
}

export function loadKubeConfig(options: LoadKubeConfigOptions): KubeConfig {
  const env = options.env ?? process.env;
  const kc = new KubeConfig();
  if (options.mode === "in-cluster") {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT;
    if (!host || !port) {
      throw new KubeConfigError(
        "KUBERNETES=in-cluster needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, which kubelet sets in every pod; outside a cluster use KUBERNETES=kubeconfig with KUBECONFIG",
      );
    }
    const dir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
    const tokenFile = join(dir, "token");
    const caFile = join(dir, "ca.crt");
    for (const f of [tokenFile, caFile]) {
      if (!existsSync(f)) {
        throw new KubeConfigError(
          `${f} is missing: the pod needs its service account token mounted (automountServiceAccountToken must not be false)`,
        );
      }
    }
    const nsFile = join(dir, "namespace");
    const namespace = existsSync(nsFile) ? readFileSync(nsFile, "utf8").trim() : undefined;
    kc.loadFromOptions({
      clusters: [
        {
          name: "in-cluster",
          server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
          caFile,
          skipTLSVerify: false,
        },
      ],
      users: [{ name: "service-account", authProvider: { name: "tokenFile", config: { tokenFile } } }],
      contexts: [
        {
          name: "in-cluster",
          cluster: "in-cluster",
          user: "service-account",
          ...(namespace ? { namespace } : {}),
        },
      ],
      currentContext: "in-cluster",
    });
    return kc;
  }
  const file =
    options.kubeconfig ??
    env.KUBECONFIG?.split(":").find((f) => f !== "") ??
    join(env.HOME ?? homedir(), ".kube", "config");
  if (!existsSync(file)) {
    throw new KubeConfigError(
      `kubeconfig ${file} does not exist: set KUBECONFIG to the file that reaches the cluster`,
    );
  }
  try {
    kc.loadFromFile(file);
  } catch (err) {
    throw new KubeConfigError(`kubeconfig ${file} could not be read: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      throw new KubeConfigError(`kubeconfig ${file} has no context ${options.context}`);
    }
    kc.setCurrentContext(options.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new KubeConfigError(
      `kubeconfig ${file} has no current context with a cluster; set current-context`,
    );
  }
  return kc;
}
