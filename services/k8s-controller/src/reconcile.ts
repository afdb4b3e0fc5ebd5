/**
 * One reconcile of one TrafficMirror: compare the resource with the mirror intake holds, send
 * what closes the gap, and write what came back into `.status`. Level-based: every pass starts
 * from a `get`, never from the event that triggered it, so a missed or repeated trigger changes
 * nothing.
 *
 *     const result = await reconcile(deps, tm);   // { requeueAfterMs? }; throws to be retried
 *
 * The mirror is `<namespace>/<name>` of the resource, its spec the resource's `.spec` with the
 * owner label `ovntap.io/trafficmirror-uid` added. A mirror without that label (made with the
 * CLI, or left by a resource since deleted) is never changed: the resource says ALREADY_EXISTS.
 *
 * Requests carry ids derived from the resource's uid and generation, so a controller restarted
 * mid-way sends the same ids again and intake answers them as the duplicates they are:
 *
 * - added, or a new generation with another spec: `delete` the old mirror (`…:<gen>:replace`),
 *   wait until it is gone, then `create` (`…:<gen>:create`);
 * - a new generation where only `ttlSeconds` changed: `extend` (`…:<gen>:extend`);
 * - the resource deleted: `delete` (`…:finalize`), then the finalizer `ovntap.io/mirror` goes.
 *
 * A refusal is final for its generation (the resource says Accepted=False with intake's code and
 * message, and nothing is sent again until the spec changes), except QUOTA_EXCEEDED and
 * ALREADY_EXISTS, which another mirror's deletion can lift, and the retryable codes.
 */
import { ERROR_CODE_INFO, MirrorSpec, TTL_DEFAULT_SECONDS } from "@ovntap/contracts";
import type { ErrorBody, MirrorReply } from "@ovntap/contracts";
import type { Logger } from "@ovntap/runtime";
import { MIRROR_FINALIZER, OWNER_UID_LABEL } from "./crd.js";
import { IntakeUnavailableError } from "./intake-client.js";
import type { IntakeClient, IntakeRequest } from "./intake-client.js";
import type { Condition, ConditionStatus, TrafficMirror, TrafficMirrorStatus } from "./resource.js";

type MirrorReplyOk = Extract<MirrorReply, { ok: true }>;

/** Writes to the Kubernetes API; a write to a resource that is gone throws ResourceGoneError. */
export interface TrafficMirrorWriter {
  /** Sets metadata.finalizers; fails (to be retried) if the resource changed since `tm` was read. */
  setFinalizers(tm: TrafficMirror, finalizers: string[]): Promise<TrafficMirror>;
  /** Replaces `.status` through the status subresource. */
  writeStatus(tm: TrafficMirror, status: TrafficMirrorStatus): Promise<void>;
}

/** The resource was deleted while it was being reconciled: nothing is left to do. */
export class ResourceGoneError extends Error {
  override readonly name = "ResourceGoneError";
}

export interface ReconcileDeps {
  intake: IntakeClient;
  kube: TrafficMirrorWriter;
  /** The `principal` of every request. */
  principal: string;
  logger: Logger;
  /** While a replaced mirror is being deleted, look again after this long. */
  replacePollMs: number;
  now?: () => Date;
  /** A unique token for read requests (gets are not idempotent: each must be answered afresh). */
  nonce?: () => string;
}

export interface ReconcileResult {
  /** Reconcile again after this long even if nothing triggers it. */
  requeueAfterMs?: number;
}

/** Codes a later pass may see lifted without the resource changing. */
const RETRY_ON_RESYNC = new Set(["QUOTA_EXCEEDED", "ALREADY_EXISTS"]);

export const requestIds = {
  create: (uid: string, gen: number) => `k8s:${uid}:${gen}:create`,
  replace: (uid: string, gen: number) => `k8s:${uid}:${gen}:replace`,
  extend: (uid: string, gen: number) => `k8s:${uid}:${gen}:extend`,
  finalize: (uid: string) => `k8s:${uid}:finalize`,
  get: (uid: string, nonce: string) => `k8s:${uid}:get:${nonce}`,
};

/** The mirror spec a resource asks for: its spec, its name and namespace, and the owner label. */
export function desiredSpec(tm: TrafficMirror): Record<string, unknown> {
  const spec = tm.spec ?? {};
  const labels =
    typeof spec.labels === "object" && spec.labels !== null ? (spec.labels as Record<string, string>) : {};
  return {
    ...spec,
    name: tm.metadata.name,
    namespace: tm.metadata.namespace,
    labels: { ...labels, [OWNER_UID_LABEL]: tm.metadata.uid },
  };
}

/** Canonical text of a spec without its TTL, for comparing the resource's with intake's. */
function comparable(spec: unknown): string {
  const parsed = MirrorSpec.safeParse(spec);
  const value = { ...((parsed.success ? parsed.data : spec) as Record<string, unknown>) };
  delete value.ttlSeconds;
  return JSON.stringify(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

function generationOf(tm: TrafficMirror): number {
  return tm.metadata.generation ?? 1;
}

function condition(status: TrafficMirrorStatus | undefined, type: Condition["type"]): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

/** Conditions with lastTransitionTime kept where the status did not change. */
function conditions(
  previous: TrafficMirrorStatus | undefined,
  generation: number,
  now: Date,
  next: { type: Condition["type"]; status: ConditionStatus; reason: string; message: string }[],
): Condition[] {
  return next.map((c) => {
    const old = condition(previous, c.type);
    return {
      ...c,
      lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now.toISOString(),
      observedGeneration: generation,
    };
  });
}

/** The status for intake's answer about the mirror (from get, create, extend or delete). */
export function statusFromReply(
  tm: TrafficMirror,
  reply: MirrorReplyOk,
  now: Date,
  accepted: { status: ConditionStatus; reason: string; message: string },
  observedGeneration = generationOf(tm),
): TrafficMirrorStatus {
  const { mirror, status } = reply;
  const target = mirror.spec.target;
  const literalSink = "sink" in target && typeof target.sink === "string" ? target.sink : undefined;
  const active = status.phase === "Active";
  return {
    phase: status.phase,
    observedGeneration,
    conditions: conditions(tm.status, observedGeneration, now, [
      { type: "Accepted", ...accepted },
      {
        type: "Ready",
        status: active ? "True" : "False",
        reason: active ? "Active" : (status.reason ?? status.phase),
        message: status.message ?? `the mirror is ${status.phase}`,
      },
    ]),
    attachedPorts: status.ports,
    ...(status.key !== undefined ? { key: status.key } : {}),
    ...(status.sessionId !== undefined ? { sessionId: status.sessionId } : {}),
    ...((status.sink ?? literalSink) !== undefined ? { sink: status.sink ?? literalSink } : {}),
    ...(status.nodes ? { nodes: status.nodes } : {}),
    expiresAt: status.expiresAt ?? mirror.expiresAt,
    mirrorGeneration: mirror.generation,
    ...(status.message !== undefined ? { message: status.message } : {}),
  };
}

/** The status of a refusal: Accepted=False with intake's code as the reason. */
export function statusRejected(tm: TrafficMirror, error: ErrorBody, now: Date): TrafficMirrorStatus {
  const generation = generationOf(tm);
  const issues = error.issues?.length
    ? ` (${error.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")})`
    : "";
  const message = `${error.message}${issues}`;
  return {
    phase: "Rejected",
    observedGeneration: generation,
    conditions: conditions(tm.status, generation, now, [
      { type: "Accepted", status: "False", reason: error.code, message },
      { type: "Ready", status: "False", reason: "Rejected", message: "intake refused the mirror" },
    ]),
    message,
  };
}

function sameStatus(a: TrafficMirrorStatus | undefined, b: TrafficMirrorStatus): boolean {
  return JSON.stringify(sortKeys(a ?? {})) === JSON.stringify(sortKeys(b));
}

export async function reconcile(deps: ReconcileDeps, input: TrafficMirror): Promise<ReconcileResult> {
  const now = deps.now ?? (() => new Date());
  const nonce = deps.nonce ?? (() => `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`);
  const log = deps.logger.child({ namespace: input.metadata.namespace, trafficMirror: input.metadata.name });
  const { namespace, name, uid } = input.metadata;
  const generation = generationOf(input);
  const base = { principal: deps.principal };
  let tm = input;

  const send = (body: IntakeRequest) => deps.intake.request(namespace, { ...body, ...base });
  const get = () => send({ requestId: requestIds.get(uid, nonce()), op: "get", namespace, name });
  const ours = (reply: MirrorReplyOk) => reply.mirror.spec.labels?.[OWNER_UID_LABEL] === uid;
  const writeStatus = async (status: TrafficMirrorStatus) => {
    if (sameStatus(tm.status, status)) return;
    await deps.kube.writeStatus(tm, status);
    tm = { ...tm, status };
  };

  try {
    // Deleted: the mirror goes first, then the finalizer, then (the API server) the resource.
    if (tm.metadata.deletionTimestamp) {
      if (!tm.metadata.finalizers?.includes(MIRROR_FINALIZER)) return {};
      const current = await get();
      if (current.ok && ours(current) && !current.mirror.deletionRequestedAt) {
        const reply = await send({ requestId: requestIds.finalize(uid), op: "delete", namespace, name });
        if (!reply.ok && reply.error.code !== "NOT_FOUND") {
          log.warn(
            { code: reply.error.code, message: reply.error.message },
            "intake refused to delete the mirror",
          );
          return failed(reply.error);
        }
        log.info({ mirror: `${namespace}/${name}` }, "mirror deleted with its TrafficMirror");
      }
      await deps.kube.setFinalizers(
        tm,
        tm.metadata.finalizers.filter((f) => f !== MIRROR_FINALIZER),
      );
      return {};
    }

    // A refusal stands until the spec changes, unless another mirror's fate can lift it.
    const accepted = condition(tm.status, "Accepted");
    if (
      tm.status?.phase === "Rejected" &&
      accepted?.observedGeneration === generation &&
      !RETRY_ON_RESYNC.has(accepted.reason)
    ) {
      return {};
    }

    if (!tm.metadata.finalizers?.includes(MIRROR_FINALIZER)) {
      tm = await deps.kube.setFinalizers(tm, [...(tm.metadata.finalizers ?? []), MIRROR_FINALIZER]);
    }

    const desired = desiredSpec(tm);
    const current = await get();

    if (!current.ok && current.error.code !== "NOT_FOUND") {
      // Refused to read (a protected namespace, a policy): the create gets the same verdict.
      if (!ERROR_CODE_INFO[current.error.code].retryable) return await create();
      return failed(current.error);
    }
    if (!current.ok) {
      // Gone. Created for this generation before: expired or deleted, not to be made again.
      if (
        accepted?.status === "True" &&
        accepted.observedGeneration === generation &&
        tm.status?.phase !== "Rejected"
      ) {
        const expired =
          tm.status?.expiresAt !== undefined && Date.parse(tm.status.expiresAt) <= now().getTime();
        const phase = expired ? "Expired" : "Deleted";
        const { attachedPorts: _p, ...rest } = tm.status ?? {};
        await writeStatus({
          ...rest,
          phase,
          conditions: conditions(tm.status, generation, now(), [
            { type: "Accepted", status: "True", reason: accepted.reason, message: accepted.message },
            {
              type: "Ready",
              status: "False",
              reason: phase,
              message: expired
                ? "the mirror expired (spec.ttlSeconds); change the spec to make it again"
                : "the mirror was deleted outside this resource; change the spec to make it again",
            },
          ]),
        });
        return {};
      }
      return await create();
    }
    if (!ours(current)) {
      const owner = current.mirror.spec.labels?.[OWNER_UID_LABEL];
      await writeStatus(
        statusRejected(
          tm,
          {
            code: "ALREADY_EXISTS",
            message: `mirror ${namespace}/${name} exists and ${owner ? `belongs to another TrafficMirror (uid ${owner})` : `was made outside Kubernetes (owner ${current.mirror.owner})`}; delete it or rename this resource`,
          },
          now(),
        ),
      );
      return {};
    }
    if (current.mirror.deletionRequestedAt) {
      // Our old mirror on its way out (a replaced spec): look again until it is gone.
      await writeStatus(replacing(current));
      return { requeueAfterMs: deps.replacePollMs };
    }
    if (comparable(current.mirror.spec) !== comparable(desired)) {
      const reply = await send({
        requestId: requestIds.replace(uid, generation),
        op: "delete",
        namespace,
        name,
      });
      if (!reply.ok && reply.error.code !== "NOT_FOUND") return failed(reply.error);
      log.info({ generation }, "spec changed: the mirror is replaced");
      if (reply.ok) await writeStatus(replacing(reply));
      return { requeueAfterMs: deps.replacePollMs };
    }
    const currentIds = [requestIds.create(uid, generation), requestIds.extend(uid, generation)];
    const answered = accepted?.status === "True" && accepted.observedGeneration === generation;
    if (!currentIds.includes(current.mirror.requestId) && !answered) {
      // Same mirror, another generation: only the TTL can differ. It restarts from now.
      const ttlSeconds = typeof desired.ttlSeconds === "number" ? desired.ttlSeconds : TTL_DEFAULT_SECONDS;
      const reply = await send({
        requestId: requestIds.extend(uid, generation),
        op: "extend",
        namespace,
        name,
        ttlSeconds,
      });
      if (!reply.ok) return refused(reply.error);
      await writeStatus(acceptedStatus(reply));
      return {};
    }
    await writeStatus(acceptedStatus(current));
    return {};
  } catch (err) {
    if (err instanceof ResourceGoneError) return {};
    if (err instanceof IntakeUnavailableError && !tm.metadata.deletionTimestamp) {
      // Say so, unless this generation was answered already (then the status stays true).
      if (condition(tm.status, "Accepted")?.observedGeneration !== generation) {
        const ready = condition(tm.status, "Ready");
        const unavailable = { status: "Unknown", reason: "IntakeUnavailable", message: err.message } as const;
        await writeStatus({
          ...tm.status,
          conditions: conditions(tm.status, generation, now(), [
            { type: "Accepted", ...unavailable },
            ready
              ? { type: "Ready", status: ready.status, reason: ready.reason, message: ready.message }
              : { type: "Ready", ...unavailable },
          ]),
        }).catch((e: unknown) => log.warn({ err: e }, "could not write the status"));
      }
    }
    throw err;
  }

  function acceptedStatus(reply: MirrorReplyOk): TrafficMirrorStatus {
    return statusFromReply(tm, reply, now(), {
      status: "True",
      reason: "Accepted",
      message: `intake accepted the mirror (its generation ${reply.mirror.generation})`,
    });
  }

  function replacing(reply: MirrorReplyOk): TrafficMirrorStatus {
    const previous = tm.status?.observedGeneration;
    return statusFromReply(
      tm,
      reply,
      now(),
      {
        status: "Unknown",
        reason: "Replacing",
        message: `the spec changed: the previous mirror is being deleted before generation ${generation} is created`,
      },
      previous ?? generation,
    );
  }

  async function create(): Promise<ReconcileResult> {
    const reply = await send({
      requestId: requestIds.create(uid, generation),
      op: "create",
      spec: desiredSpec(tm),
    });
    if (!reply.ok) return refused(reply.error);
    log.info(
      { generation, mirrorGeneration: reply.mirror.generation, phase: reply.status.phase },
      "mirror created",
    );
    await writeStatus(acceptedStatus(reply));
    return {};
  }

  /** Intake said no: retry a retryable code, record the rest as the generation's verdict. */
  async function refused(error: ErrorBody): Promise<ReconcileResult> {
    if (ERROR_CODE_INFO[error.code].retryable) return failed(error);
    log.info({ generation, code: error.code }, "intake refused the mirror");
    await writeStatus(statusRejected(tm, error, now()));
    return {};
  }

  /** A refusal that may pass later: thrown, so the queue retries with backoff. */
  function failed(error: ErrorBody): never {
    throw new IntakeRefusedError(error);
  }
}

/** Intake answered with a retryable error (or refused to delete): the reconcile is retried later. */
export class IntakeRefusedError extends Error {
  override readonly name = "IntakeRefusedError";
  constructor(readonly error: ErrorBody) {
    super(`intake answered ${error.code}: ${error.message}`);
  }
}
