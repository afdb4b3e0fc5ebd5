/**
 * The controller's Kubernetes side, on @kubernetes/client-node: the TrafficMirror informer (list
 * and watch in every namespace, from @ovntap/k8s) and the two writes — the finalizer, a merge
 * patch on the resource carrying its resourceVersion (so a concurrent change fails with 409 and
 * the reconcile runs again on the new object), and `.status`, a JSON patch on the status
 * subresource. Custom resources take no strategic merge patch.
 */
import {
  ApiException,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from "@kubernetes/client-node";
import { Informer } from "@ovntap/k8s";
import type { Logger } from "@ovntap/runtime";
import { CRD_GROUP, CRD_PLURAL, CRD_VERSION } from "./crd.js";
import { ResourceGoneError } from "./reconcile.js";
import type { TrafficMirrorWriter } from "./reconcile.js";
import type { TrafficMirror } from "./resource.js";

export function trafficMirrorInformer(kubeConfig: KubeConfig, logger: Logger): Informer<TrafficMirror> {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  return new Informer<TrafficMirror>({
    name: `${CRD_PLURAL}.${CRD_GROUP}`,
    kubeConfig,
    path: `/apis/${CRD_GROUP}/${CRD_VERSION}/${CRD_PLURAL}`,
    list: () =>
      api.listClusterCustomObject({ group: CRD_GROUP, version: CRD_VERSION, plural: CRD_PLURAL }) as Promise<{
        items: unknown[];
        metadata?: { resourceVersion?: string };
      }>,
    // Custom objects come back as plain JSON from lists and watches alike.
    transform: (raw) => raw as TrafficMirror,
    logger,
  });
}

async function gone<T>(tm: TrafficMirror, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) {
      throw new ResourceGoneError(`TrafficMirror ${tm.metadata.namespace}/${tm.metadata.name} is gone`, {
        cause: err,
      });
    }
    throw err;
  }
}

export function trafficMirrorWriter(kubeConfig: KubeConfig): TrafficMirrorWriter {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  const target = (tm: TrafficMirror) => ({
    group: CRD_GROUP,
    version: CRD_VERSION,
    plural: CRD_PLURAL,
    namespace: tm.metadata.namespace,
    name: tm.metadata.name,
  });
  return {
    setFinalizers: (tm, finalizers) =>
      gone(
        tm,
        () =>
          api.patchNamespacedCustomObject(
            {
              ...target(tm),
              body: { metadata: { finalizers, resourceVersion: tm.metadata.resourceVersion } },
            },
            setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
          ) as Promise<TrafficMirror>,
      ),
    writeStatus: async (tm, status) => {
      await gone(tm, () =>
        api.patchNamespacedCustomObjectStatus(
          { ...target(tm), body: [{ op: "add", path: "/status", value: status }] },
          setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
        ),
      );
    },
  };
}
