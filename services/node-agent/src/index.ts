/**
 * @ovntap/node-agent — one per node: announces the node's capabilities, reports the data-plane
 * truth of OVN mirrors, publishes mirror statistics, and applies `ovs`-source mirrors from the
 * `node.<node>` queue.
 *
 *   const agent = await createAgent({ ovs, sb, nc, redis, workerRedis, store, events, logger, metrics,
 *     config: { node: "worker-1" } });
 *   await agent.start();
 *
 * The pure parts work alone:
 *
 *   preflight({ encapsulation: "gre", family: 4, transport: { interface: "eth0", mtu: 1500 }, … });
 *   evaluateOvnMirrors({ expected, ovs, … });
 */
export { createAgent, PRINCIPAL, type Agent, type AgentDeps } from "./agent.js";
export { AgentEnv, agentConfig, DEFAULT_CONFIG, type AgentConfig } from "./config.js";
export { createAnnouncer, openBucket, type Announcer, type AnnouncerDeps } from "./announce.js";
export {
  DATAPLANE_KV_BUCKET,
  DataplaneRecord,
  DataplaneState,
  DataplaneWatcher,
  evaluateOvnMirrors,
  MirrorDataplane,
  type DataplaneWatcherDeps,
  type EvaluateInput,
} from "./dataplane.js";
export {
  checkErspanKernel,
  checkMtu,
  checkOutputNotSource,
  ERSPAN_MIN_KERNEL,
  parseKernelRelease,
  preflight,
  type PreflightCheck,
  type PreflightInput,
  type PreflightIssue,
} from "./preflight.js";
export {
  bridgesOf,
  findTransport,
  KERNEL_LINK_TYPES,
  probeCapabilities,
  probeKernelLinks,
  routeMtu,
  versionFrom,
  type KernelLinkType,
  type LinkProbe,
  type ProbeResult,
  type TransportInfo,
} from "./probe.js";
export { createStatsPublisher, type StatsPublisher } from "./stats.js";
export {
  createIp,
  execIp,
  IpCommandError,
  type Ip,
  type IpExec,
  type IpLink,
  type IpResult,
} from "./net/ip.js";
export {
  GENERATION_KEY,
  KEY_KEY,
  mirrorId,
  NODE_KEY,
  ovnTunnelPort,
  ovsRowName,
  OWNER_KEY,
  ownerOf,
  parseMirrorId,
  parseOvnRowName,
} from "./names.js";
export { OvsState, datapathOf } from "./ovs/state.js";
export { SbState, type ExpectedMirror } from "./ovn/sb.js";
export { KeyAllocator, KeyError, FIRST_ALLOCATED_KEY } from "./mirrors/keys.js";
export {
  planOvsMirror,
  planRemoval,
  tunnelInterface,
  type DesiredOvsMirror,
  type Plan,
  type PlanFailure,
  type TunnelWant,
} from "./mirrors/plan.js";
export {
  buildStatus,
  createMirrorService,
  type MirrorService,
  type ReconcileOutcome,
} from "./mirrors/service.js";
