/**
 * BullMQ queues and job payloads.
 *
 *     await queue.add("apply", job, { jobId: mirrorJobId(job) });
 *
 * The job id is `<namespace>/<name>@<generation>`, so a redelivered or duplicated job for the same
 * generation is the same job: BullMQ ignores an `add` whose id it still holds. Every change of
 * desired state bumps the generation, so a new generation always gets a new job; a resync of an
 * unchanged generation folds into the one already queued, which is what a level-based applier wants.
 */
import { z } from "zod";
import { JobIdError } from "./errors.js";
import { DNS1123_LABEL_RE, DNS1123_SUBDOMAIN_RE, MirrorName, Namespace, NodeName } from "./fields.js";
import { DNS1123_LABEL_MAX, DNS1123_SUBDOMAIN_MAX } from "./limits.js";
import { Generation } from "./status.js";

export const OVN_APPLY_QUEUE = "ovn-apply";
/** Prefix of the per-node queues, `node.<node>`. */
export const NODE_QUEUE_PREFIX = "node.";

/** The queue of one node's agent. Node names contain no ':' (BullMQ uses it in its Redis keys). */
export function nodeQueue(node: string): string {
  if (typeof node !== "string" || node.length > DNS1123_SUBDOMAIN_MAX || !DNS1123_SUBDOMAIN_RE.test(node)) {
    throw new JobIdError(
      "node",
      `${JSON.stringify(node)} is not a Kubernetes node name (a DNS-1123 subdomain)`,
    );
  }
  return `${NODE_QUEUE_PREFIX}${node}`;
}

/** Why a job was queued; informational, the applier always converges on the whole desired state. */
export const JOB_REASONS = [
  "create",
  "delete",
  "extend",
  "expire",
  "resync",
  "drift",
  "pods_changed",
] as const;
export const JobReason = z.enum(JOB_REASONS, { error: `must be one of ${JOB_REASONS.join(", ")}` });
export type JobReason = z.infer<typeof JobReason>;

export const OvnApplyJob = z.object({
  namespace: Namespace,
  name: MirrorName,
  generation: Generation,
  reason: JobReason,
});
export type OvnApplyJob = z.infer<typeof OvnApplyJob>;

/** A job for `node.<node>`: the agent applies the OVS side of a mirror on its node. */
export const NodeApplyJob = OvnApplyJob.extend({ node: NodeName });
export type NodeApplyJob = z.infer<typeof NodeApplyJob>;

/**
 * `<namespace>/<name>@<generation>`. BullMQ refuses custom ids containing ':' ("Custom Id cannot
 * contain :") and ids that are integers; DNS labels, '/' and '@' avoid both.
 */
export function mirrorJobId(job: { namespace: string; name: string; generation: number }): string {
  for (const [argument, value] of [
    ["namespace", job.namespace],
    ["name", job.name],
  ] as const) {
    if (typeof value !== "string" || value.length > DNS1123_LABEL_MAX || !DNS1123_LABEL_RE.test(value)) {
      throw new JobIdError(argument, `${JSON.stringify(value)} is not a DNS-1123 label`);
    }
  }
  if (!Number.isSafeInteger(job.generation) || job.generation < 1) {
    throw new JobIdError("generation", `${String(job.generation)} is not a positive integer`);
  }
  return `${job.namespace}/${job.name}@${job.generation}`;
}

const JOB_ID_RE = /^([a-z0-9-]+)\/([a-z0-9-]+)@([1-9][0-9]*)$/;

/** Inverse of `mirrorJobId`, or `undefined` for ids it did not produce. */
export function parseMirrorJobId(
  id: string,
): { namespace: string; name: string; generation: number } | undefined {
  const m = JOB_ID_RE.exec(id);
  if (!m) return undefined;
  const [, namespace = "", name = "", gen = ""] = m;
  const generation = Number(gen);
  if (
    namespace.length > DNS1123_LABEL_MAX ||
    name.length > DNS1123_LABEL_MAX ||
    !DNS1123_LABEL_RE.test(namespace) ||
    !DNS1123_LABEL_RE.test(name) ||
    !Number.isSafeInteger(generation)
  ) {
    return undefined;
  }
  return { namespace, name, generation };
}
