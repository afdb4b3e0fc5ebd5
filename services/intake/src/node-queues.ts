/**
 * Producers of the per-node BullMQ queues `node.<node>` (contracts `nodeQueue`), one Queue per
 * node made on first use, for mirrors whose sources are `ovs`: that node's agent applies them.
 *
 *     const queues = createNodeQueues({ connection: redis, prefix: "bull" });
 *     await queues.enqueue({ namespace: "shop", name: "web", generation: 1, reason: "create", node: "worker-1" });
 *     await queues.close();
 *
 * Same job ids and options as `ovn-apply` (`<ns>/<name>@<generation>`, the store's
 * APPLY_JOB_OPTIONS), so a duplicated or repeated enqueue of one generation is one job.
 */
import { mirrorJobId, NodeApplyJob, nodeQueue } from "@ovntap/contracts";
import type { Logger, RedisClient } from "@ovntap/runtime";
import { APPLY_JOB_NAME, APPLY_JOB_OPTIONS } from "@ovntap/store";
import { Queue } from "bullmq";

export type NodeQueue = Queue<NodeApplyJob, unknown, typeof APPLY_JOB_NAME>;

export interface NodeQueues {
  /** The queue of `node` (made on first use). */
  queue(node: string): NodeQueue;
  /** Adds the job for this mirror generation to its node's queue, validated against NodeApplyJob. */
  enqueue(job: NodeApplyJob): Promise<{ jobId: string; queue: string }>;
  close(): Promise<void>;
}

export interface NodeQueuesOptions {
  /** A "client" role ioredis connection (a producer's). */
  connection: RedisClient["redis"];
  /** BullMQ key prefix; the node agents must use the same (their BULLMQ_PREFIX). */
  prefix?: string | undefined;
  logger?: Logger | undefined;
}

export function createNodeQueues(opts: NodeQueuesOptions): NodeQueues {
  const queues = new Map<string, NodeQueue>();
  const queue = (node: string): NodeQueue => {
    const name = nodeQueue(node);
    let q = queues.get(name);
    if (!q) {
      q = new Queue<NodeApplyJob, unknown, typeof APPLY_JOB_NAME>(name, {
        connection: opts.connection,
        ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}),
        defaultJobOptions: APPLY_JOB_OPTIONS,
      });
      const log = opts.logger?.child({ component: "queue", queue: name });
      q.on("error", (err) => log?.warn({ err }, "queue connection error"));
      queues.set(name, q);
    }
    return q;
  };
  return {
    queue,
    async enqueue(job) {
      const data = NodeApplyJob.parse(job);
      const jobId = mirrorJobId(data);
      const q = queue(data.node);
      await q.add(APPLY_JOB_NAME, data, { ...APPLY_JOB_OPTIONS, jobId });
      return { jobId, queue: q.name };
    },
    async close() {
      const all = [...queues.values()];
      queues.clear();
      await Promise.all(all.map((q) => q.close()));
    },
  };
}
