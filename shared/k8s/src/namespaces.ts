/**
 * Namespaces as ovntap needs them: which exist, their labels (policies may select namespaces by
 * label), and whether they are being deleted.
 *
 *   const namespaces = namespaceInformer(kc, { logger });
 *   namespaces.start();
 *   await namespaces.waitForSync(30_000);
 *   namespaces.get(undefined, "shop")?.terminating;
 */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "@ovntap/runtime";
import { Informer, type InformerOptions } from "./informer.js";

export interface NamespaceInfo {
  readonly metadata: {
    readonly name: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly labels: Readonly<Record<string, string>>;
  };
  /** Being deleted (metadata.deletionTimestamp, or status.phase Terminating). */
  readonly terminating: boolean;
}

const record = (v: unknown): Record<string, unknown> =>
  typeof v === "object" && v !== null ? (v as Record<string, unknown>) : {};

/** A namespace from a list (client-node's V1Namespace) or a watch event (plain JSON). */
export function namespaceInfo(raw: unknown): NamespaceInfo {
  const meta = record(record(raw).metadata);
  const status = record(record(raw).status);
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(record(meta.labels))) if (typeof v === "string") labels[k] = v;
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  return {
    metadata: {
      name: str(meta.name) ?? "",
      ...(str(meta.uid) ? { uid: str(meta.uid) } : {}),
      ...(str(meta.resourceVersion) ? { resourceVersion: str(meta.resourceVersion) } : {}),
      labels,
    },
    terminating:
      (meta.deletionTimestamp !== undefined && meta.deletionTimestamp !== null) ||
      status.phase === "Terminating",
  };
}

/** An informer on every namespace. */
export function namespaceInformer(
  kubeConfig: KubeConfig,
  options: { logger: Logger } & Partial<
    Pick<InformerOptions<NamespaceInfo>, "backoff" | "watchTimeoutSeconds" | "idleTimeoutMs">
  >,
): Informer<NamespaceInfo> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const { logger, ...tuning } = options;
  return new Informer<NamespaceInfo>({
    name: "namespaces",
    kubeConfig,
    path: "/api/v1/namespaces",
    list: () => core.listNamespace(),
    transform: namespaceInfo,
    logger,
    ...tuning,
  });
}
