/**
 * The intake's environment, beside the runtime variables every service reads (HTTP_HOST,
 * HTTP_PORT, LOG_LEVEL, …): where NATS and Redis are, the policy file, and the names it shares
 * with the ovn-applier and the node agents (STORE_PREFIX, BULLMQ_PREFIX).
 */
import { envVar, natsEnv, redisEnv } from "@ovntap/runtime";
import { z } from "zod";
import { INTAKE_QUEUE_GROUP } from "./intake.js";

export const IntakeEnv = z.object({
  ...natsEnv,
  ...redisEnv,
  /** YAML or JSON policy; the built-in DEFAULT_POLICY when unset. Reloaded on change. */
  POLICY_FILE: envVar.string().optional(),
  INTAKE_QUEUE_GROUP: envVar.string().default(INTAKE_QUEUE_GROUP),
  /** Key prefix of the store in Redis (default `{ovntap}`). */
  STORE_PREFIX: envVar.string().optional(),
  /**
   * BullMQ key prefix of the `ovn-apply` and `node.<node>` queues (BullMQ's default when unset);
   * the ovn-applier and the node agents must be given the same BULLMQ_PREFIX.
   */
  BULLMQ_PREFIX: envVar.string().optional(),
});
export type IntakeEnv = z.infer<typeof IntakeEnv>;
