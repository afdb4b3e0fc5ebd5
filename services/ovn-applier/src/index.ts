/**
 * @ovntap/ovn-applier — reconciles mirrors into OVN Northbound: keys, Mirror rows,
 * Logical_Switch_Port.mirror_rules, the chassis catching up, drift, expiry.
 *
 *   const applier = await createApplier({ nb, redis, workerRedis, store, events, logger, metrics });
 *   await applier.start();
 *
 * The NB reconcile core (nb/) works without Redis or BullMQ:
 *
 *   const state = await NbState.start(client, { logger });
 *   const nb = await NbReconciler.create({ state, logger });
 *   const r = await nb.converge({ namespace, name, generation, spec });   // r.phase: Active | Degraded
 */
export {
  createApplier,
  DATAPLANE_REASON,
  type Applier,
  type ApplierDeps,
  type ReconcileOutcome,
} from "./applier.js";
export {
  DataplaneView,
  describeProblems,
  type DataplaneProblem,
  type DataplaneViewOptions,
  type MirrorDataplaneView,
} from "./dataplane.js";
export { ApplierEnv, applierConfig, DEFAULT_CONFIG, type ApplierConfig } from "./config.js";
export {
  KubeFollower,
  kubeView,
  NO_MATCHING_PODS,
  podOfPort,
  selectionStatus,
  selectorOf,
  sinkPodOf,
} from "./kube.js";
export { LockBusyError, MirrorLocks, type MirrorLocksOptions } from "./lock.js";
export { buildStatus, condition, conditionsOf, eventIds, PRINCIPAL, sameStatus } from "./status.js";
export { ReconcileError, reasonOf } from "./nb/errors.js";
export { canonicalSink, FIRST_ALLOCATED_KEY, keySpace, lowestFree, type KeySpace } from "./nb/keys.js";
export {
  GENERATION_KEY,
  KEY_KEY,
  mirrorId,
  OWNER_KEY,
  ownerOf,
  parseMirrorId,
  ROW_PREFIX,
  rowName,
  tunnelPortName,
  type MirrorKey,
  type RowPart,
} from "./nb/names.js";
export { planOperations, type PlannedTransaction } from "./nb/ops.js";
export {
  arrayView,
  ownedRows,
  planMirror,
  resolveSpec,
  type Change,
  type DesiredMirror,
  type DesiredRow,
  type GlobalRow,
  type KeyGuard,
  type KubeView,
  type MirrorRow,
  type NbView,
  type Plan,
  type PlannedRow,
  type PlanOptions,
  type PortRow,
  type Resolution,
} from "./nb/plan.js";
export {
  NbReconciler,
  toReconcileError,
  type AppliedRow,
  type ApplyOptions,
  type ApplyResult,
  type ConvergeOptions,
  type ConvergeResult,
  type NbReconcilerOptions,
  type RemoveResult,
} from "./nb/reconciler.js";
export { NB, NbState, type ChassisWait, type NbStateEvents } from "./nb/state.js";
export { NbWatcher, type NbWatcherOptions, type TriggerReason } from "./nb/watcher.js";
