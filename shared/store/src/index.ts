/**
 * @ovntap/store — desired state, status and request dedupe in Redis; the `ovn-apply` queue; the
 * audit event log in JetStream. Intake writes desired state; the appliers read it, write status,
 * purge deleted mirrors, and publish lifecycle events.
 *
 *     const store = createStore({ redis: redisClient.redis });
 *     const r = await store.applyCreate({ spec, owner, requestId, requestHash: requestHash(body), maxActive: 10 });
 *     if (r.type === "created") await enqueueApply(queue, { ...ref, generation: r.record.generation, reason: "create" });
 *
 *     // applier
 *     await store.setStatus(ns, name, { phase: "Active", generation, observedGeneration: generation, … });
 *     await store.purge(ns, name, generation);     // after the NB rows are gone
 *     for (const p of await store.pendingReconcile()) await enqueueApply(queue, p);   // periodic sweep
 *
 * ## Redis layout (prefix `{ovntap}`, a Redis Cluster hash tag: every key in one slot)
 *
 * | key | type | content |
 * |---|---|---|
 * | `{ovntap}:mirror:<ns>/<name>` | HASH | `record` (MirrorRecord JSON), `generation`, `expiresAtMs`, `deleting` ("1" once deletion is requested), `deleteReason` (request / expired), `status` (MirrorStatus JSON), `statusGeneration`, `observedGeneration` |
 * | `{ovntap}:generation:<ns>/<name>` | STRING | last generation used for the name; kept 30 days after a purge so a re-created mirror continues the sequence and never reuses a job id |
 * | `{ovntap}:mirrors` | SET | every `<ns>/<name>` |
 * | `{ovntap}:ns:<ns>` | SET | names stored in the namespace (deleting ones included) |
 * | `{ovntap}:active:<ns>` | SET | names not being deleted: the quota count |
 * | `{ovntap}:expiries` | ZSET | `<ns>/<name>` scored by expiresAt in ms (not deleting ones): the TTL sweep |
 * | `{ovntap}:request:<requestId>` | HASH, TTL 24 h | `hash` (sha256 of the canonical request), `reply` (the first reply, verbatim), `namespace`, `name`, `generation`, `events` (outbox JSON), `published` |
 *
 * Every write is one Lua script: its preconditions (dedupe, exists / not exists, quota, the
 * generation it was built on) and all of its writes happen in one atomic step, and it returns a typed
 * outcome. Generations count up by one on every change of desired state (create, delete, extend,
 * expire). `setStatus` never lets a status go back to an older generation.
 *
 * ## Store, then enqueue
 *
 * Intake writes the record, then enqueues with the deterministic job id `<ns>/<name>@<generation>`.
 * A crash in between loses nothing: the record's `observedGeneration` stays below its `generation`,
 * so `pendingReconcile()` reports it and the applier's sweep enqueues it; if the job was added after
 * all, the sweep's add is the same job and BullMQ ignores it.
 */

export {
  createStore,
  GENERATION_RETENTION_SECONDS,
  pendingStatus,
  REQUEST_RETENTION_SECONDS,
} from "./store.js";
export type {
  Conflict,
  CreateInput,
  CreateOutcome,
  DeleteInput,
  DeleteOutcome,
  DeleteReason,
  DueExpiry,
  Duplicate,
  ExpireOutcome,
  ExtendInput,
  ExtendOutcome,
  MirrorReplyOk,
  PendingMirror,
  PurgeOutcome,
  RequestWrite,
  ScanOptions,
  SetStatusOutcome,
  Store,
  StoredMirror,
  StoredRequest,
  StoreOptions,
} from "./store.js";

export { DEFAULT_PREFIX, mirrorId, parseMirrorId, storeKeys } from "./keys.js";
export type { StoreKeys } from "./keys.js";

export { canonicalJson, requestHash } from "./hash.js";

export { StoreArgumentError, StoreContentionError, StoreDataError } from "./errors.js";

export { APPLY_JOB_NAME, APPLY_JOB_OPTIONS, createApplyQueue, enqueueApply } from "./queue.js";
export type { ApplyQueue, ApplyQueueOptions, EnqueueResult } from "./queue.js";

export {
  createEventLog,
  EVENTS_DUPLICATE_WINDOW_MS,
  EVENTS_STREAM_SPEC,
  eventId,
  eventSubjectOf,
  makeEvent,
} from "./events.js";
export type { EventFields, EventLog, EventLogOptions, HistoryOptions, PublishResult } from "./events.js";
