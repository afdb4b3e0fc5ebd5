/**
 * @ovntap/k8s-controller — the TrafficMirror controller: each `trafficmirrors.ovntap.io`
 * resource becomes requests to intake over NATS, and the outcome its `.status`.
 */
export {
  CRD_GROUP,
  CRD_KIND,
  CRD_NAME,
  CRD_PLURAL,
  CRD_VERSION,
  crdSpecSchema,
  MIRROR_FINALIZER,
  OWNER_UID_LABEL,
  specSchema,
  statusSchema,
  structuralProblems,
  toStructural,
  trafficMirrorCrd,
} from "./crd.js";
export type { Schema } from "./crd.js";
export { CONTROLLER_PRINCIPAL, ControllerEnv, controllerConfig, DEFAULT_CONFIG } from "./config.js";
export type { ControllerConfig } from "./config.js";
export { createController } from "./controller.js";
export type { Controller, ControllerDeps } from "./controller.js";
export { createIntakeClient, IntakeUnavailableError } from "./intake-client.js";
export type { IntakeClient, IntakeRequest } from "./intake-client.js";
export { trafficMirrorInformer, trafficMirrorWriter } from "./kube.js";
export { createWorkQueue } from "./queue.js";
export type { WorkQueue, WorkQueueOptions } from "./queue.js";
export {
  desiredSpec,
  IntakeRefusedError,
  reconcile,
  requestIds,
  ResourceGoneError,
  statusFromReply,
  statusRejected,
} from "./reconcile.js";
export type { ReconcileDeps, ReconcileResult, TrafficMirrorWriter } from "./reconcile.js";
export { CONTROLLER_API_CALLS, keyOf, splitKey } from "./resource.js";
export type { Condition, TrafficMirror, TrafficMirrorStatus } from "./resource.js";
