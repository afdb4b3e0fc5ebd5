/**
 * The `ovn-apply` BullMQ queue, producer side.
 *
 *     const queue = createApplyQueue({ connection: redis });
 *     await enqueueApply(queue, { namespace: "shop", name: "web", generation: 2, reason: "delete" });
 *
 * The job id is `mirrorJobId(job)` (`shop/web@2`), so enqueuing the same generation twice is one job:
 * BullMQ ignores an `add` whose id it still holds. That is what makes "write Redis, then enqueue"
 * safe without a transaction: if the process dies in between, the applier's sweep
 * (`store.pendingReconcile()` → `enqueueApply`) adds the missing job, and if it did not die the
 * sweep's add folds into the existing job.
 */
import { Queue } from "bullmq";
import type { JobsOptions } from "bullmq";
import { mirrorJobId, OVN_APPLY_QUEUE, OvnApplyJob } from "@ovntap/contracts";
import type { Logger, RedisClient } from "@ovntap/runtime";

/** The BullMQ job name of every `ovn-apply` job. */
export const APPLY_JOB_NAME = "apply";

/**
 * Retries with exponential backoff (1 s, 2 s, 4 s … about 17 min over 10 attempts). Finished jobs are
 * kept (completed 1 day, failed 7 days) so that a re-add of the same generation within that time is
 * a no-op; GENERATION_RETENTION_SECONDS outlives both.
 */
export const APPLY_JOB_OPTIONS = {
  attempts: 10,
  backoff: { type: "exponential", delay: 1_000 },
  removeOnComplete: { age: 24 * 60 * 60, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 60 * 60 },
} as const satisfies JobsOptions;

export type ApplyQueue = Queue<OvnApplyJob, unknown, typeof APPLY_JOB_NAME>;

export interface ApplyQueueOptions {
  /** An ioredis connection; a "client" role connection is right for a producer. */
  connection: RedisClient["redis"];
  /** BullMQ key prefix; BullMQ's default ("bull") when absent. Workers must use the same. */
  prefix?: string;
  /** Where the queue's connection errors go (an EventEmitter "error" without a listener would throw). */
  logger?: Logger;
}

export function createApplyQueue(opts: ApplyQueueOptions): ApplyQueue {
  const queue = new Queue<OvnApplyJob, unknown, typeof APPLY_JOB_NAME>(OVN_APPLY_QUEUE, {
    connection: opts.connection,
    ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}),
    defaultJobOptions: APPLY_JOB_OPTIONS,
  });
  const log = opts.logger?.child({ component: "queue", queue: OVN_APPLY_QUEUE });
  queue.on("error", (err) => log?.warn({ err }, "queue connection error"));
  return queue;
}

export interface EnqueueResult {
  jobId: string;
}

/**
 * Adds the job for this mirror generation (validated against OvnApplyJob), or does nothing when
 * BullMQ still holds a job with that id. `options` override APPLY_JOB_OPTIONS (not the job id).
 */
export async function enqueueApply(
  queue: ApplyQueue,
  job: OvnApplyJob,
  options: Omit<JobsOptions, "jobId"> = {},
): Promise<EnqueueResult> {
  const data = OvnApplyJob.parse(job);
  const jobId = mirrorJobId(data);
  await queue.add(APPLY_JOB_NAME, data, { ...APPLY_JOB_OPTIONS, ...options, jobId });
  return { jobId };
}
