/**
 * @ovntap/contracts — the only coupling between ovntap services: zod schemas for everything on the
 * wire, subject and queue names, limits and error codes. A schema and its inferred type share a
 * name (`MirrorSpec` is both).
 *
 *     import { reqSubject, validateRequest, MirrorSpec } from "@ovntap/contracts";
 */

export {
  DNS1123_LABEL_MAX,
  DNS1123_SUBDOMAIN_MAX,
  ENCAP_OVERHEAD,
  ERSPAN_SESSION_MAX,
  FILTER_CIDRS_MAX,
  FILTER_PORTS_MAX,
  FLOWS_PER_MESSAGE_MAX,
  GRE_KEY_MAX,
  IFNAME_MAX,
  LABEL_NAME_MAX,
  LABEL_PREFIX_MAX,
  LABEL_VALUE_MAX,
  LABELS_MAX,
  MAX_MIRRORS_PER_BRIDGE,
  MESSAGE_MAX,
  NETNS_NAME_MAX,
  OUTPUT_VLAN_MIN,
  PORT_MAX,
  PORT_NAME_MAX,
  PRINCIPAL_MAX,
  REQUEST_ID_MAX,
  SELECTOR_EXPRESSIONS_MAX,
  SELECTOR_VALUES_MAX,
  SNAPLEN_MAX,
  SNAPLEN_MIN,
  SOURCE_ITEMS_MAX,
  TIMESTAMP_NS_MAX,
  TTL_DEFAULT_SECONDS,
  TTL_MAX_SECONDS,
  TTL_MIN_SECONDS,
  VLAN_MAX,
  VLAN_MIN,
} from "./limits.js";
export type { Encapsulation } from "./limits.js";

export {
  BridgeName,
  LabelKey,
  Labels,
  LabelValue,
  MirrorName,
  Namespace,
  NodeName,
  PodName,
  Principal,
  RequestId,
  Timestamp,
  TimestampNs,
} from "./fields.js";

export { canonicalIp, sinkAddressProblem, transportFamily } from "./ip.js";
export type { IpFamily } from "./ip.js";

export {
  Cidr,
  CollectorTarget,
  Direction,
  encapOverhead,
  ErspanTarget,
  FILTER_PROTOCOLS,
  GreTarget,
  LabelSelector,
  LabelSelectorRequirement,
  MirrorFilter,
  MirrorSource,
  MirrorSpec,
  MirrorTarget,
  NetnsName,
  OvsPortTarget,
  OvsSource,
  OvsVlanTarget,
  PodSink,
  PodsSource,
  PortMatch,
  PortRange,
  PortsSource,
  ReceiverLink,
  SelectorSource,
  Sink,
  SinkAddress,
  Snaplen,
  TARGETS_FOR_SOURCE,
  targetEncapsulation,
  TtlSeconds,
} from "./spec.js";
export type { FilterProtocol, SourceType, TargetType } from "./spec.js";

export {
  ContractValidationError,
  ERROR_CODE_INFO,
  ERROR_CODES,
  ErrorBody,
  ErrorCode,
  ErrorIssue,
  JobIdError,
  SubjectTokenError,
} from "./errors.js";

export { formatPath, issuesFromZod, parseOrThrow, summarizeIssues, validate } from "./validate.js";
export type { InvalidRequestError, ValidationResult } from "./validate.js";

export {
  checkSubjectNamespace,
  CreateRequest,
  DeleteRequest,
  ErrorReply,
  ExtendRequest,
  GetRequest,
  ListReply,
  ListReplyOk,
  ListRequest,
  MirrorListItem,
  MirrorReply,
  MirrorReplyOk,
  MirrorRequest,
  Reply,
  REQUEST_OPS,
  requestNamespace,
  validateRequest,
  validateSpec,
} from "./requests.js";
export type { RequestOp } from "./requests.js";

export {
  Generation,
  MIRROR_PHASES,
  MirrorCondition,
  MirrorTunnel,
  MirrorRecord,
  MirrorRef,
  MirrorStatus,
  TERMINAL_PHASES,
} from "./status.js";
export type { MirrorPhase } from "./status.js";

export {
  AuditRecord,
  EVENT_DETAILS,
  EVENT_TYPES,
  EventHeaders,
  LifecycleEvent,
  UNNAMED_MIRROR,
} from "./events.js";
export type { EventDetail, EventType, LifecycleEventOf } from "./events.js";

export {
  CAPTURE_CONTENT_TYPE,
  CAPTURE_ENCAPS,
  CAPTURE_HEADERS,
  CaptureBatchHeader,
  CaptureWireHeaders,
  FlowRecord,
  FlowSummary,
  formatCaptureHeaders,
  IpAddress,
  LINKTYPE_ETHERNET,
  MirrorStats,
  parseCaptureHeaders,
  PCAP_MAGIC_NANOSECONDS,
  PCAP_RECORD_HEADER_BYTES,
  PCAP_VERSION_MAJOR,
  PCAP_VERSION_MINOR,
} from "./capture.js";
export type { HeaderSource } from "./capture.js";

export { AgentBridge, AgentCapabilities, AgentHeartbeat } from "./agent.js";

export {
  DATAPLANE_KV_BUCKET,
  DATAPLANE_REFRESH_MS,
  DATAPLANE_STALE_MS,
  DataplaneRecord,
  DataplaneState,
  formatKeyClaim,
  MirrorDataplane,
  nodeKeyClaimsKey,
  parseKeyClaim,
} from "./dataplane.js";

export {
  JOB_REASONS,
  JobReason,
  mirrorJobId,
  NODE_QUEUE_PREFIX,
  NodeApplyJob,
  nodeQueue,
  OVN_APPLY_QUEUE,
  OvnApplyJob,
  parseMirrorJobId,
} from "./jobs.js";

export {
  AGENTS_KV_BUCKET,
  agentSubject,
  agentWildcard,
  CAPTURE_STREAM,
  CAPTURE_STREAM_SUBJECTS,
  captureSubject,
  EVENTS_STREAM,
  EVENTS_STREAM_SUBJECTS,
  eventSubject,
  flowSubject,
  namespaceSubjects,
  nodeFromToken,
  nodeToken,
  parseSubject,
  PCAP_OVER_IP_PORT,
  reqSubject,
  reqWildcard,
  statsSubject,
  SUBJECT_PREFIX,
  UNKNOWN_TOKEN,
  unknownCaptureSubject,
} from "./subjects.js";
export type { ParsedSubject } from "./subjects.js";
export { matchesLabelSelector } from "./selector.js";
