/**
 * Desired state, status and request dedupe in Redis. See the module comment of index.ts for the
 * key layout; the writes are the Lua scripts in scripts.ts.
 */
import { LifecycleEvent, MirrorRecord, MirrorStatus, Reply, TTL_DEFAULT_SECONDS } from "@ovntap/contracts";
import type { JobReason, MirrorReply, MirrorSpec } from "@ovntap/contracts";
import type { RedisClient } from "@ovntap/runtime";
import { StoreArgumentError, StoreContentionError, StoreDataError } from "./errors.js";
import { DEFAULT_PREFIX, mirrorId, parseMirrorId, storeKeys } from "./keys.js";
import type { StoreKeys } from "./keys.js";
import { CREATE, DELETE, EXPIRE, MARK_PUBLISHED, PURGE, SET_STATUS, EXTEND } from "./scripts.js";

type Redis = RedisClient["redis"];

/** A successful create/delete/get/extend reply. */
export type MirrorReplyOk = Extract<MirrorReply, { ok: true }>;

/** How long a request's dedupe record (and its reply) is kept: 24 h. */
export const REQUEST_RETENTION_SECONDS = 24 * 60 * 60;
/**
 * How long a purged mirror's generation counter is kept: 30 days, longer than BullMQ keeps any
 * `ovn-apply` job (see APPLY_JOB_OPTIONS), so a mirror re-created under the same name continues the
 * sequence and never gets the job id of a job BullMQ still holds.
 */
export const GENERATION_RETENTION_SECONDS = 30 * 24 * 60 * 60;
/** Compare-and-set attempts before StoreContentionError. */
const CAS_ATTEMPTS = 16;

/** What a compare-and-set step returns to be run again. */
const RETRY = Symbol("retry");

/** Before a compare-and-set retry: a random pause growing with the attempt, so racing writers spread out. */
function casPause(attempt: number): Promise<void> {
  if (attempt === 0) return Promise.resolve();
  const ms = Math.random() * Math.min(2 ** attempt, 100);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface StoreOptions {
  /** An ioredis connection (`connectRedis({ role: "client" }).redis`). */
  redis: Redis;
  /** Key prefix; default `{ovntap}` (a Redis Cluster hash tag: all keys in one slot). */
  prefix?: string;
  /** Seconds a dedupe record is kept; default REQUEST_RETENTION_SECONDS. */
  requestRetentionSeconds?: number;
  /** Seconds a purged mirror's generation counter is kept; default GENERATION_RETENTION_SECONDS. */
  generationRetentionSeconds?: number;
  /** The time source; tests pass a fixed clock. */
  now?: () => Date;
}

/** Why a mirror is being deleted; the `deleted` event's reason. */
export type DeleteReason = "request" | "expired";

/** One stored mirror: the desired state, the last status, and whether it is being deleted. */
export interface StoredMirror {
  record: MirrorRecord;
  /** The last status an applier wrote (intake writes Pending at create). */
  status: MirrorStatus;
  deleting: boolean;
  deleteReason?: DeleteReason;
}

/** A request intake accepted, as remembered for deduplication. */
export interface StoredRequest {
  requestId: string;
  /** `requestHash` of what was accepted. */
  hash: string;
  /** The reply sent the first time; sent again, unchanged, for a duplicate. */
  reply: Reply;
  namespace: string;
  name: string;
  generation: number;
  /** The events to publish for this request (the outbox). */
  events: LifecycleEvent[];
  /** False until `markEventsPublished`: a duplicate then publishes `events` again (same msg ids). */
  eventsPublished: boolean;
}

/** Common to the three request-driven writes. */
export interface RequestWrite {
  requestId: string;
  /** `requestHash(...)` of the request as the caller defines sameness (body plus principal). */
  requestHash: string;
  now?: Date;
}

export interface CreateInput extends RequestWrite {
  spec: MirrorSpec;
  /** The principal that owns the mirror. */
  owner: string;
  /** Most mirrors (not being deleted) the namespace may hold, this one included; no limit when absent. */
  maxActive?: number;
  /** The events to store with the dedupe record (the outbox), built from the final record. */
  events?: (record: MirrorRecord) => LifecycleEvent[];
}

export interface DeleteInput extends RequestWrite {
  namespace: string;
  name: string;
  events?: (record: MirrorRecord) => LifecycleEvent[];
}

export interface ExtendInput extends RequestWrite {
  namespace: string;
  name: string;
  ttlSeconds: number;
  events?: (record: MirrorRecord, previous: MirrorRecord) => LifecycleEvent[];
}

/** A request id seen before with the same hash: reply `request.reply` and change nothing. */
export interface Duplicate {
  type: "duplicate";
  request: StoredRequest;
}
/** A request id seen before with another body: CONFLICT. */
export interface Conflict {
  type: "conflict";
  requestId: string;
}

export type CreateOutcome =
  | { type: "created"; record: MirrorRecord; status: MirrorStatus; reply: MirrorReplyOk }
  | { type: "already_exists"; record: MirrorRecord; status: MirrorStatus | undefined }
  | { type: "quota_exceeded"; active: number; limit: number }
  | Duplicate
  | Conflict;

export type DeleteOutcome =
  | { type: "deleted"; record: MirrorRecord; status: MirrorStatus; reply: MirrorReplyOk }
  /** Already marked for deletion: nothing changed (reply with the current state). */
  | { type: "already_deleting"; record: MirrorRecord; status: MirrorStatus }
  | { type: "not_found" }
  | Duplicate
  | Conflict;

export type ExtendOutcome =
  | {
      type: "extended";
      record: MirrorRecord;
      previous: MirrorRecord;
      status: MirrorStatus;
      reply: MirrorReplyOk;
    }
  /** Being deleted: cannot be extended. */
  | { type: "deleting"; record: MirrorRecord }
  | { type: "not_found" }
  | Duplicate
  | Conflict;

export type ExpireOutcome =
  | { type: "expired"; record: MirrorRecord }
  | { type: "not_due"; expiresAt: string }
  | { type: "already_deleting" }
  | { type: "not_found" };

export type SetStatusOutcome =
  | { type: "updated" }
  /** The stored status is for a newer generation: this one was dropped. */
  | { type: "stale"; storedGeneration: number }
  /** The status names a generation the record does not have yet. */
  | { type: "ahead"; recordGeneration: number }
  | { type: "not_found" };

export type PurgeOutcome =
  | { type: "purged"; record: MirrorRecord; status: MirrorStatus | undefined }
  | { type: "generation_mismatch"; generation: number }
  /** Refused: only a mirror marked for deletion (delete request or expiry) is purged. */
  | { type: "not_deleting" }
  | { type: "not_found" };

/** A mirror whose expiry has come. */
export interface DueExpiry {
  namespace: string;
  name: string;
  expiresAt: string;
}

/** A mirror whose desired generation has not been applied yet (status.observedGeneration < generation). */
export interface PendingMirror {
  namespace: string;
  name: string;
  generation: number;
  observedGeneration: number;
  deleting: boolean;
  /** The job reason to enqueue it with. */
  reason: JobReason;
}

export interface Store {
  readonly keys: StoreKeys;
  getRecord(namespace: string, name: string): Promise<MirrorRecord | undefined>;
  getStatus(namespace: string, name: string): Promise<MirrorStatus | undefined>;
  getMirror(namespace: string, name: string): Promise<StoredMirror | undefined>;
  listRecords(namespace?: string): Promise<MirrorRecord[]>;
  listMirrors(namespace?: string, scan?: ScanOptions): Promise<StoredMirror[]>;
  /**
   * listMirrors a pipeline at a time (in id order), for a scan over thousands of mirrors that
   * need not hold them all at once.
   */
  scanMirrors(namespace?: string, scan?: ScanOptions): AsyncGenerator<StoredMirror[]>;
  countActive(namespace: string): Promise<number>;
  applyCreate(input: CreateInput): Promise<CreateOutcome>;
  applyDelete(input: DeleteInput): Promise<DeleteOutcome>;
  applyExtend(input: ExtendInput): Promise<ExtendOutcome>;
  applyExpire(namespace: string, name: string, now?: Date): Promise<ExpireOutcome>;
  setStatus(namespace: string, name: string, status: MirrorStatus): Promise<SetStatusOutcome>;
  purge(namespace: string, name: string, generation: number): Promise<PurgeOutcome>;
  dueExpiries(now?: Date, limit?: number): Promise<DueExpiry[]>;
  pendingReconcile(scan?: ScanOptions): Promise<PendingMirror[]>;
  lookupRequest(requestId: string): Promise<StoredRequest | undefined>;
  markEventsPublished(requestId: string): Promise<boolean>;
}

/** The Pending status intake writes at create, and shows until an applier writes one. */
export function pendingStatus(record: MirrorRecord, now: Date): MirrorStatus {
  return {
    phase: "Pending",
    generation: record.generation,
    observedGeneration: 0,
    ports: [],
    expiresAt: record.expiresAt,
    updatedAt: now.toISOString(),
  };
}

/**
 * Mirrors read per pipeline by the scans over every mirror (listMirrors, pendingReconcile): with
 * thousands of mirrors one pipeline held Redis, and then the reader's event loop parsing every
 * record, for a hundred milliseconds and more, stalling every request in flight. Between chunks
 * both go on with other work.
 */
const SCAN_CHUNK = 100;

/** How a scan over every mirror shares the process and Redis with other work. */
export interface ScanOptions {
  /**
   * A pause between pipelines (ms): a periodic background scan spreads out instead of taking
   * the CPU in one burst from the requests in flight. Default 0.
   */
  pauseMs?: number;
}

function pause(scan: ScanOptions | undefined): Promise<void> {
  const ms = scan?.pauseMs ?? 0;
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function createStore(opts: StoreOptions): Store {
  const { redis } = opts;
  const keys = storeKeys(opts.prefix ?? DEFAULT_PREFIX);
  const retention = opts.requestRetentionSeconds ?? REQUEST_RETENTION_SECONDS;
  const tombstone = opts.generationRetentionSeconds ?? GENERATION_RETENTION_SECONDS;
  const clock = opts.now ?? (() => new Date());

  function parse<T>(key: string, what: string, text: string, schema: { parse(v: unknown): T }): T {
    try {
      return schema.parse(JSON.parse(text));
    } catch (err) {
      throw new StoreDataError(key, `${what} is not valid JSON for its schema`, { cause: err });
    }
  }
  const parseRecord = (key: string, text: string) => parse(key, "record", text, MirrorRecord);
  const parseStatus = (key: string, text: string) => parse(key, "status", text, MirrorStatus);
  const parseReply = (key: string, text: string) => parse(key, "reply", text, Reply);
  const parseMirrorReply = (key: string, text: string): MirrorReplyOk => {
    const reply = parseReply(key, text);
    if (!reply.ok || !("mirror" in reply)) throw new StoreDataError(key, "reply is not a mirror reply");
    return reply;
  };

  function stored(key: string, fields: (string | null)[]): StoredMirror | undefined {
    const [record, status, deleting, deleteReason] = fields;
    if (!record) return undefined;
    const r = parseRecord(key, record);
    return {
      record: r,
      status: status ? parseStatus(key, status) : pendingStatus(r, new Date(r.updatedAt ?? r.createdAt)),
      deleting: deleting === "1",
      ...(deleteReason === "request" || deleteReason === "expired" ? { deleteReason } : {}),
    };
  }

  const MIRROR_FIELDS = ["record", "status", "deleting", "deleteReason"] as const;

  async function getMirror(namespace: string, name: string): Promise<StoredMirror | undefined> {
    const key = keys.mirror(namespace, name);
    return stored(key, await redis.hmget(key, ...MIRROR_FIELDS));
  }

  async function listMirrors(namespace?: string, scan?: ScanOptions): Promise<StoredMirror[]> {
    const out: StoredMirror[] = [];
    for await (const chunk of scanMirrors(namespace, scan)) out.push(...chunk);
    return out;
  }

  async function* scanMirrors(namespace?: string, scan?: ScanOptions): AsyncGenerator<StoredMirror[]> {
    const ids =
      namespace === undefined
        ? await redis.smembers(keys.mirrors)
        : (await redis.smembers(keys.namespace(namespace))).map((n) => mirrorId(namespace, n));
    for await (const rows of readMirrorFields(ids, MIRROR_FIELDS, scan)) {
      const out: StoredMirror[] = [];
      for (const { ref, fields } of rows) {
        const m = stored(keys.mirror(ref.namespace, ref.name), fields);
        if (m) out.push(m);
      }
      yield out;
    }
  }

  /**
   * `fields` of the mirrors `ids`, in id order, SCAN_CHUNK per pipeline with `scan`'s pause
   * between pipelines. A mirror purged since its id was read comes back with null fields.
   */
  async function* readMirrorFields(
    ids: string[],
    fields: readonly string[],
    scan: ScanOptions | undefined,
  ): AsyncGenerator<{ ref: { namespace: string; name: string }; fields: (string | null)[] }[]> {
    const refs = ids.sort().flatMap((id) => {
      const ref = parseMirrorId(id);
      return ref ? [ref] : [];
    });
    for (const [n, chunk] of chunks(refs, SCAN_CHUNK).entries()) {
      if (n > 0) await pause(scan);
      const pipeline = redis.pipeline();
      for (const ref of chunk) pipeline.hmget(keys.mirror(ref.namespace, ref.name), ...fields);
      const results = (await pipeline.exec()) ?? [];
      yield chunk.map((ref, i) => {
        const [err, values] = results[i] ?? [null, []];
        if (err) throw err;
        return { ref, fields: values as (string | null)[] };
      });
    }
  }

  function requestEvents(text: string, key: string): LifecycleEvent[] {
    try {
      const raw: unknown = JSON.parse(text);
      return Array.isArray(raw) ? raw.map((e) => LifecycleEvent.parse(e)) : [];
    } catch (err) {
      throw new StoreDataError(key, "events are not valid lifecycle events", { cause: err });
    }
  }

  async function lookupRequest(requestId: string): Promise<StoredRequest | undefined> {
    const key = keys.request(requestId);
    const h = await redis.hgetall(key);
    if (!h.hash || !h.reply) return undefined;
    return {
      requestId,
      hash: h.hash,
      reply: parseReply(key, h.reply),
      namespace: h.namespace ?? "",
      name: h.name ?? "",
      generation: Number(h.generation ?? 0),
      events: requestEvents(h.events ?? "[]", key),
      eventsPublished: h.published === "1",
    };
  }

  /** The duplicate/conflict outcomes every request script shares. */
  function dedupeOutcome(
    requestId: string,
    input: RequestWrite,
    result: string[],
  ): Duplicate | Conflict | undefined {
    const [type, reply = "", published = "0", events = "[]"] = result;
    const key = keys.request(requestId);
    if (type === "conflict") return { type: "conflict", requestId };
    if (type !== "duplicate") return undefined;
    const parsed = parseReply(key, reply);
    const mirror = "mirror" in parsed ? parsed.mirror : undefined;
    return {
      type: "duplicate",
      request: {
        requestId,
        hash: input.requestHash,
        reply: parsed,
        namespace: mirror?.spec.namespace ?? "",
        name: mirror?.spec.name ?? "",
        generation: mirror?.generation ?? 0,
        events: requestEvents(events, key),
        eventsPublished: published === "1",
      },
    };
  }

  /**
   * Runs one read-then-script step until it does not come back `RETRY` (the script saw the
   * generation move since the read), pausing between attempts; StoreContentionError after
   * CAS_ATTEMPTS.
   */
  async function compareAndSet<T>(key: string, step: () => Promise<T | typeof RETRY>): Promise<T> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      await casPause(attempt);
      const out = await step();
      if (out !== RETRY) return out;
    }
    throw new StoreContentionError(key, CAS_ATTEMPTS);
  }

  async function applyCreate(input: CreateInput): Promise<CreateOutcome> {
    const { spec } = input;
    const now = input.now ?? clock();
    const key = keys.mirror(spec.namespace, spec.name);
    const genKey = keys.generation(spec.namespace, spec.name);
    return compareAndSet(key, async () => {
      const previous = Number((await redis.get(genKey)) ?? 0);
      const record: MirrorRecord = {
        spec,
        generation: previous + 1,
        owner: input.owner,
        createdAt: now.toISOString(),
        updatedAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + (spec.ttlSeconds ?? TTL_DEFAULT_SECONDS) * 1000).toISOString(),
        requestId: input.requestId,
      };
      const status = pendingStatus(record, now);
      const events = input.events?.(record) ?? [];
      const result = await CREATE.run(
        redis,
        [
          key,
          genKey,
          keys.mirrors,
          keys.namespace(spec.namespace),
          keys.active(spec.namespace),
          keys.expiries,
          keys.request(input.requestId),
        ],
        [
          input.requestHash,
          retention,
          JSON.stringify(events),
          spec.namespace,
          spec.name,
          previous,
          JSON.stringify(record),
          JSON.stringify(status),
          Date.parse(record.expiresAt),
          input.maxActive ?? -1,
          mirrorId(spec.namespace, spec.name),
        ],
      );
      const dedupe = dedupeOutcome(input.requestId, input, result);
      if (dedupe) return dedupe;
      const [type, a = "", b = ""] = result;
      switch (type) {
        case "created":
          return { type, record, status, reply: parseMirrorReply(key, a) };
        case "already_exists":
          return {
            type,
            record: parseRecord(key, a),
            status: b ? parseStatus(key, b) : undefined,
          };
        case "quota_exceeded":
          return { type, active: Number(a), limit: input.maxActive ?? 0 };
        case "stale":
          return RETRY;
        default:
          throw new StoreDataError(key, `create script returned ${String(type)}`);
      }
    });
  }

  /** Reads the record a delete or extend builds on; `undefined` still runs the script (dedupe first). */
  async function current(key: string): Promise<{ record: MirrorRecord | undefined; generation: number }> {
    const [record, generation] = await redis.hmget(key, "record", "generation");
    return { record: record ? parseRecord(key, record) : undefined, generation: Number(generation ?? 0) };
  }

  async function applyDelete(input: DeleteInput): Promise<DeleteOutcome> {
    const { namespace, name } = input;
    const now = input.now ?? clock();
    const key = keys.mirror(namespace, name);
    return compareAndSet(key, async () => {
      const cur = await current(key);
      const record: MirrorRecord | undefined = cur.record && {
        ...cur.record,
        generation: cur.generation + 1,
        updatedAt: now.toISOString(),
        requestId: input.requestId,
        deletionRequestedAt: now.toISOString(),
      };
      const events = record ? (input.events?.(record) ?? []) : [];
      const result = await DELETE.run(
        redis,
        [
          key,
          keys.generation(namespace, name),
          keys.active(namespace),
          keys.expiries,
          keys.request(input.requestId),
        ],
        [
          input.requestHash,
          retention,
          JSON.stringify(events),
          namespace,
          name,
          cur.generation,
          record ? JSON.stringify(record) : "{}",
          record ? JSON.stringify(pendingStatus(record, now)) : "{}",
          "request",
          mirrorId(namespace, name),
        ],
      );
      const dedupe = dedupeOutcome(input.requestId, input, result);
      if (dedupe) return dedupe;
      const [type, a = "", , c = ""] = result;
      switch (type) {
        case "deleted":
          if (!record) return RETRY; // created between our read and the script: read again
          return { type, record, status: parseStatus(key, c), reply: parseMirrorReply(key, a) };
        case "already_deleting": {
          const r = parseRecord(key, a);
          return { type, record: r, status: c ? parseStatus(key, c) : pendingStatus(r, now) };
        }
        case "not_found":
          return { type };
        case "stale":
          return RETRY;
        default:
          throw new StoreDataError(key, `delete script returned ${String(type)}`);
      }
    });
  }

  async function applyExtend(input: ExtendInput): Promise<ExtendOutcome> {
    const { namespace, name } = input;
    const now = input.now ?? clock();
    const key = keys.mirror(namespace, name);
    return compareAndSet(key, async () => {
      const cur = await current(key);
      const previous = cur.record;
      const record: MirrorRecord | undefined = previous && {
        ...previous,
        generation: cur.generation + 1,
        updatedAt: now.toISOString(),
        requestId: input.requestId,
        expiresAt: new Date(now.getTime() + input.ttlSeconds * 1000).toISOString(),
      };
      const events = record && previous ? (input.events?.(record, previous) ?? []) : [];
      const result = await EXTEND.run(
        redis,
        [key, keys.generation(namespace, name), keys.expiries, keys.request(input.requestId)],
        [
          input.requestHash,
          retention,
          JSON.stringify(events),
          namespace,
          name,
          cur.generation,
          record ? JSON.stringify(record) : "{}",
          record ? JSON.stringify(pendingStatus(record, now)) : "{}",
          record ? Date.parse(record.expiresAt) : 0,
          mirrorId(namespace, name),
        ],
      );
      const dedupe = dedupeOutcome(input.requestId, input, result);
      if (dedupe) return dedupe;
      const [type, a = "", , c = ""] = result;
      switch (type) {
        case "extended":
          if (!record || !previous) return RETRY;
          return {
            type,
            record,
            previous,
            status: parseStatus(key, c),
            reply: parseMirrorReply(key, a),
          };
        case "deleting":
          return { type, record: parseRecord(key, a) };
        case "not_found":
          return { type };
        case "stale":
          return RETRY;
        default:
          throw new StoreDataError(key, `extend script returned ${String(type)}`);
      }
    });
  }

  async function applyExpire(namespace: string, name: string, at?: Date): Promise<ExpireOutcome> {
    const now = at ?? clock();
    const key = keys.mirror(namespace, name);
    return compareAndSet(key, async () => {
      const cur = await current(key);
      // requestId stays that of the request which set the previous generation (events.ts).
      const record: MirrorRecord | undefined = cur.record && {
        ...cur.record,
        generation: cur.generation + 1,
        updatedAt: now.toISOString(),
        deletionRequestedAt: now.toISOString(),
      };
      const result = await EXPIRE.run(
        redis,
        [key, keys.generation(namespace, name), keys.active(namespace), keys.expiries],
        [
          now.getTime(),
          cur.generation,
          record ? JSON.stringify(record) : "{}",
          name,
          mirrorId(namespace, name),
        ],
      );
      const [type, a = ""] = result;
      switch (type) {
        case "expired":
          if (!record) return RETRY;
          return { type, record };
        case "not_due":
          return { type, expiresAt: new Date(Number(a)).toISOString() };
        case "already_deleting":
        case "not_found":
          return { type };
        case "stale":
          return RETRY;
        default:
          throw new StoreDataError(key, `expire script returned ${String(type)}`);
      }
    });
  }

  async function setStatus(namespace: string, name: string, status: MirrorStatus): Promise<SetStatusOutcome> {
    const checked = MirrorStatus.parse(status);
    if (checked.observedGeneration > checked.generation) {
      throw new StoreArgumentError(
        `status of ${mirrorId(namespace, name)}: observedGeneration ${checked.observedGeneration} exceeds generation ${checked.generation}`,
      );
    }
    const key = keys.mirror(namespace, name);
    const [type, a = ""] = await SET_STATUS.run(
      redis,
      [key],
      [JSON.stringify(checked), checked.generation, checked.observedGeneration],
    );
    switch (type) {
      case "updated":
      case "not_found":
        return { type };
      case "stale":
        return { type, storedGeneration: Number(a) };
      case "ahead":
        return { type, recordGeneration: Number(a) };
      default:
        throw new StoreDataError(key, `setStatus script returned ${String(type)}`);
    }
  }

  async function purge(namespace: string, name: string, generation: number): Promise<PurgeOutcome> {
    const key = keys.mirror(namespace, name);
    const [type, a = "", b = ""] = await PURGE.run(
      redis,
      [
        key,
        keys.generation(namespace, name),
        keys.mirrors,
        keys.namespace(namespace),
        keys.active(namespace),
        keys.expiries,
      ],
      [generation, tombstone, name, mirrorId(namespace, name)],
    );
    switch (type) {
      case "purged":
        return { type, record: parseRecord(key, a), status: b ? parseStatus(key, b) : undefined };
      case "generation_mismatch":
        return { type, generation: Number(a) };
      case "not_deleting":
      case "not_found":
        return { type };
      default:
        throw new StoreDataError(key, `purge script returned ${String(type)}`);
    }
  }

  async function dueExpiries(at?: Date, limit = 100): Promise<DueExpiry[]> {
    const now = at ?? clock();
    const flat = await redis.zrangebyscore(
      keys.expiries,
      "-inf",
      now.getTime(),
      "WITHSCORES",
      "LIMIT",
      0,
      limit,
    );
    const out: DueExpiry[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const ref = parseMirrorId(flat[i] ?? "");
      if (ref) out.push({ ...ref, expiresAt: new Date(Number(flat[i + 1])).toISOString() });
    }
    return out;
  }

  async function pendingReconcile(scan?: ScanOptions): Promise<PendingMirror[]> {
    const ids = await redis.smembers(keys.mirrors);
    const out: PendingMirror[] = [];
    const fields = ["generation", "observedGeneration", "deleting", "deleteReason"];
    for await (const rows of readMirrorFields(ids, fields, scan)) {
      for (const {
        ref,
        fields: [gen, observed, deleting, reason],
      } of rows) {
        if (gen === null || gen === undefined) continue; // purged meanwhile
        const generation = Number(gen);
        const observedGeneration = Number(observed ?? 0);
        if (observedGeneration >= generation) continue;
        const isDeleting = deleting === "1";
        out.push({
          ...ref,
          generation,
          observedGeneration,
          deleting: isDeleting,
          reason: isDeleting ? (reason === "expired" ? "expire" : "delete") : "resync",
        });
      }
    }
    return out;
  }

  async function markEventsPublished(requestId: string): Promise<boolean> {
    const [type] = await MARK_PUBLISHED.run(redis, [keys.request(requestId)], []);
    return type === "updated";
  }

  return {
    keys,
    async getRecord(namespace, name) {
      const key = keys.mirror(namespace, name);
      const text = await redis.hget(key, "record");
      return text ? parseRecord(key, text) : undefined;
    },
    async getStatus(namespace, name) {
      const key = keys.mirror(namespace, name);
      const text = await redis.hget(key, "status");
      return text ? parseStatus(key, text) : undefined;
    },
    getMirror,
    async listRecords(namespace) {
      return (await listMirrors(namespace)).map((m) => m.record);
    },
    listMirrors,
    scanMirrors,
    countActive: (namespace) => redis.scard(keys.active(namespace)),
    applyCreate,
    applyDelete,
    applyExtend,
    applyExpire,
    setStatus,
    purge,
    dueExpiries,
    pendingReconcile,
    lookupRequest,
    markEventsPublished,
  };
}
