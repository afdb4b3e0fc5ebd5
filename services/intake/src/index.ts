/**
 * @ovntap/intake — the service that answers mirror requests (see intake.ts for the flow, policy.ts
 * for the policy file, principal.ts for how requesters are identified). `main.ts` runs it.
 *
 *     const intake = createIntake({ nc, redis, logger, policy: await watchPolicyFile(path, { logger }) });
 *     await intake.start();
 */
export { boundedError, createIntake, INTAKE_PRINCIPAL, INTAKE_QUEUE_GROUP } from "./intake.js";
export type { Handled, IncomingRequest, Intake, IntakeDeps, Outcome } from "./intake.js";
export { createNodeQueues } from "./node-queues.js";
export type { NodeQueue, NodeQueues, NodeQueuesOptions } from "./node-queues.js";
export {
  compilePolicy,
  DEFAULT_POLICY,
  globToRegExp,
  loadPolicyFile,
  parsePolicy,
  Policy,
  PolicyError,
  PolicyRule,
} from "./policy.js";
export type { CompiledPolicy, Grant, Identity, NamespaceLimits, PolicyInput } from "./policy.js";
export { staticPolicy, watchPolicyFile } from "./policy-source.js";
export type { PolicySource, WatchPolicyOptions } from "./policy-source.js";
export { natsRequestInfoResolver, REQUEST_INFO_HEADER, resolveIdentity } from "./principal.js";
export type { PrincipalResolver, RequestContext } from "./principal.js";
