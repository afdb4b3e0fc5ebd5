/**
 * Generated documentation: one JSON Schema file per public schema and an AsyncAPI 3.0.0 document
 * for every NATS channel, all derived from the zod schemas so they cannot drift from the code.
 *
 *     const files = await generateDocs();   // Map "schemas/mirror-spec.schema.json" → text
 *     await writeDocs(files, DOCS_DIR);
 *
 * Output is deterministic: keys are sorted at every level and the text is formatted with the repo's
 * prettier settings, so `prettier --check .` passes on it and a test can compare the committed
 * files with a fresh run byte for byte.
 */
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { AgentHeartbeat } from "./agent.js";
import { DATAPLANE_KV_BUCKET, DataplaneRecord } from "./dataplane.js";
import {
  CAPTURE_CONTENT_TYPE,
  CaptureBatchHeader,
  CaptureWireHeaders,
  FlowSummary,
  MirrorStats,
} from "./capture.js";
import { ErrorBody, ErrorCode } from "./errors.js";
import { AuditRecord, EventHeaders, LifecycleEvent } from "./events.js";
import { Labels, Timestamp } from "./fields.js";
import { NODE_QUEUE_PREFIX, NodeApplyJob, OVN_APPLY_QUEUE, OvnApplyJob } from "./jobs.js";
import {
  CreateRequest,
  DeleteRequest,
  ExtendRequest,
  GetRequest,
  ListReply,
  ListRequest,
  MirrorReply,
  MirrorRequest,
  Reply,
} from "./requests.js";
import { LabelSelector, MirrorFilter, MirrorSource, MirrorSpec, MirrorTarget, Sink } from "./spec.js";
import { MirrorRecord, MirrorStatus } from "./status.js";
import {
  AGENTS_KV_BUCKET,
  CAPTURE_STREAM,
  EVENTS_STREAM,
  EVENTS_STREAM_SUBJECTS,
  PCAP_OVER_IP_PORT,
  SUBJECT_PREFIX,
  UNKNOWN_TOKEN,
} from "./subjects.js";

/** The repo's `docs/` folder: this file is in `shared/contracts/src` (or `dist`), three levels below. */
export const DOCS_DIR = fileURLToPath(new URL("../../../docs/", import.meta.url));

/** Version of the wire contract (the `v1` in every subject). */
export const CONTRACT_VERSION = "1.0.0";

interface PublicSchema {
  readonly schema: z.ZodType;
  readonly description: string;
}

/** Every schema other services put on the wire or in storage, by the name it is exported under. */
export const PUBLIC_SCHEMAS: Readonly<Record<string, PublicSchema>> = {
  MirrorSpec: {
    schema: MirrorSpec,
    description: "A mirror: sources, direction, target, filter, snaplen, TTL.",
  },
  MirrorSource: {
    schema: MirrorSource,
    description: "What to mirror: pods, a label selector, logical ports or OVS ports/VLANs.",
  },
  MirrorTarget: { schema: MirrorTarget, description: "Where mirrored packets go." },
  Sink: {
    schema: Sink,
    description: "A tunnel sink: a unicast IP literal or a pod resolved through ips.kubeovn.io.",
  },
  MirrorFilter: { schema: MirrorFilter, description: "Which mirrored packets the exporter keeps." },
  LabelSelector: { schema: LabelSelector, description: "A Kubernetes label selector." },
  Labels: { schema: Labels, description: "Kubernetes-style labels." },
  MirrorRequest: { schema: MirrorRequest, description: "Any request on ovntap.v1.req.<namespace>." },
  CreateRequest: { schema: CreateRequest, description: "Create a mirror." },
  DeleteRequest: { schema: DeleteRequest, description: "Delete a mirror." },
  GetRequest: { schema: GetRequest, description: "Read one mirror." },
  ListRequest: { schema: ListRequest, description: "List a namespace's mirrors." },
  ExtendRequest: { schema: ExtendRequest, description: "Set a mirror's expiry to ttlSeconds from now." },
  Reply: { schema: Reply, description: "Any reply to a request." },
  MirrorReply: { schema: MirrorReply, description: "Reply to create, delete, get, extend." },
  ListReply: { schema: ListReply, description: "Reply to list." },
  ErrorBody: { schema: ErrorBody, description: "The error of a failed reply or a rejected event." },
  ErrorCode: { schema: ErrorCode, description: "Error codes." },
  Timestamp: { schema: Timestamp, description: "RFC 3339 UTC time with a Z." },
  MirrorStatus: { schema: MirrorStatus, description: "Observed state of a mirror." },
  MirrorRecord: { schema: MirrorRecord, description: "Desired state of a mirror, as stored." },
  LifecycleEvent: {
    schema: LifecycleEvent,
    description: "An event on ovntap.v1.events.<namespace>.<mirror>.",
  },
  AuditRecord: {
    schema: AuditRecord,
    description: "A lifecycle event as read back from the OVNTAP_EVENTS stream.",
  },
  EventHeaders: { schema: EventHeaders, description: "NATS headers of a lifecycle event." },
  CaptureBatchHeader: { schema: CaptureBatchHeader, description: "Typed metadata of a capture batch." },
  CaptureWireHeaders: {
    schema: CaptureWireHeaders,
    description: "NATS headers of a capture batch, as strings.",
  },
  FlowSummary: { schema: FlowSummary, description: "Per-5-tuple counters for one interval." },
  MirrorStats: { schema: MirrorStats, description: "Mirror counters from the node agent or the exporter." },
  AgentHeartbeat: { schema: AgentHeartbeat, description: "A node agent's heartbeat and capabilities." },
  DataplaneRecord: {
    schema: DataplaneRecord,
    description: `A node agent's view of ovntap's OVN mirrors on its node: the value of ${DATAPLANE_KV_BUCKET}[<node>].`,
  },
  OvnApplyJob: {
    schema: OvnApplyJob,
    description: `Payload of a job on the BullMQ queue ${OVN_APPLY_QUEUE}.`,
  },
  NodeApplyJob: { schema: NodeApplyJob, description: "Payload of a job on the BullMQ queue node.<node>." },
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Deep copy with object keys in code-point order. */
export function sortKeys(value: unknown): Json {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const out: { [key: string]: Json } = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value as Json;
}

/**
 * Draft-07 JSON Schemas of what a producer may send (`io: "input"`), one per public schema. A public
 * schema used inside another becomes a `$ref` built by `uri` (a file name for docs/schemas, a
 * component pointer in AsyncAPI); everything else is inlined. Cross-field rules (superRefine) have
 * no JSON Schema form: the zod schemas stay the authority.
 */
export function jsonSchemas(uri: (name: string) => string): Record<string, Record<string, unknown>> {
  const ids = z.registry<{ id: string }>();
  for (const [name, { schema }] of Object.entries(PUBLIC_SCHEMAS)) ids.add(schema, { id: name });
  const { schemas } = z.toJSONSchema(ids, {
    target: "draft-07",
    io: "input",
    uri,
    cycles: "throw",
    reused: "inline",
  });
  if ("__shared" in schemas)
    throw new Error("unexpected shared JSON Schema definitions: a schema is recursive");
  return schemas;
}

export function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

export function schemaFileName(name: string): string {
  return `${kebab(name)}.schema.json`;
}

const ref = (path: string) => ({ $ref: path });

const PARAMS = {
  namespace: { description: "Kubernetes namespace (a DNS-1123 label)." },
  mirror: { description: "Mirror name (a DNS-1123 label), unique within its namespace." },
  node: {
    description:
      "Kubernetes node name with each '.' written as '_' (nodeToken), so that it stays one subject token.",
  },
};

/** The AsyncAPI 3.0.0 document, from the point of view of the ovntap platform as a whole. */
export function buildAsyncApi(): Json {
  const schemas: Record<string, unknown> = {};
  const converted = jsonSchemas((name) => `#/components/schemas/${name}`);
  for (const [name, { description }] of Object.entries(PUBLIC_SCHEMAS)) {
    // Components are addressed by their place in the document, not by `$id`s of their own.
    const { $schema: _schema, $id: _id, ...json } = converted[name] ?? {};
    schemas[name] = { ...json, title: name, description };
  }
  schemas.PcapRecords = {
    type: "string",
    format: "binary",
    title: "PcapRecords",
    description:
      "Classic pcap records without a global header: per record a 16-byte little-endian header (ts_sec, ts_nsec, incl_len, orig_len) and incl_len frame bytes. Write one global header with magic 0xA1B23C4D (nanoseconds), version 2.4, the batch's snaplen and link type, then append payloads.",
  };

  const messages = {
    MirrorRequest: {
      name: "MirrorRequest",
      title: "Mirror request",
      summary: "create | delete | get | list | extend, with a requestId for idempotence.",
      contentType: "application/json",
      payload: ref("#/components/schemas/MirrorRequest"),
    },
    Reply: {
      name: "Reply",
      title: "Reply",
      summary: "{ok: true, mirror, status} | {ok: true, items} | {ok: false, error}.",
      contentType: "application/json",
      payload: ref("#/components/schemas/Reply"),
    },
    LifecycleEvent: {
      name: "LifecycleEvent",
      title: "Lifecycle event",
      summary: "One step in a mirror's life; the stream is the audit trail.",
      contentType: "application/json",
      headers: ref("#/components/schemas/EventHeaders"),
      payload: ref("#/components/schemas/LifecycleEvent"),
    },
    CaptureBatch: {
      name: "CaptureBatch",
      title: "Capture batch",
      summary: "Decapsulated mirrored frames as pcap records; metadata in headers.",
      contentType: CAPTURE_CONTENT_TYPE,
      headers: ref("#/components/schemas/CaptureWireHeaders"),
      payload: ref("#/components/schemas/PcapRecords"),
    },
    FlowSummary: {
      name: "FlowSummary",
      title: "Flow summary",
      summary: "Per-5-tuple packet and byte counters for one interval.",
      contentType: "application/json",
      payload: ref("#/components/schemas/FlowSummary"),
    },
    MirrorStats: {
      name: "MirrorStats",
      title: "Mirror statistics",
      contentType: "application/json",
      payload: ref("#/components/schemas/MirrorStats"),
    },
    AgentHeartbeat: {
      name: "AgentHeartbeat",
      title: "Agent heartbeat",
      summary: "Versions, kernel link support, transport MTU, bridge mirror counts.",
      contentType: "application/json",
      payload: ref("#/components/schemas/AgentHeartbeat"),
    },
  };

  const p = SUBJECT_PREFIX;
  const channels = {
    requests: {
      address: `${p}.req.{namespace}`,
      title: "Requests",
      description:
        "Request/reply. The namespace in the body must equal the one in the subject. A request without a reply subject is still processed; its outcome shows in events.",
      parameters: { namespace: PARAMS.namespace },
      messages: { request: ref("#/components/messages/MirrorRequest") },
    },
    replies: {
      address: null,
      title: "Replies",
      description: "The requester's reply subject (a NATS inbox).",
      messages: { reply: ref("#/components/messages/Reply") },
    },
    events: {
      address: `${p}.events.{namespace}.{mirror}`,
      title: "Lifecycle events",
      description: `Stored in the JetStream stream ${EVENTS_STREAM} (subjects ${EVENTS_STREAM_SUBJECTS}; file storage, no delete, no purge).`,
      parameters: { namespace: PARAMS.namespace, mirror: PARAMS.mirror },
      messages: { event: ref("#/components/messages/LifecycleEvent") },
    },
    capture: {
      address: `${p}.capture.{namespace}.{mirror}.{node}`,
      title: "Capture batches",
      description: `Core NATS; optionally kept for replay in the JetStream stream ${CAPTURE_STREAM} with a max age. The exporter also serves PCAP-over-IP on TCP ${PCAP_OVER_IP_PORT}.`,
      parameters: { namespace: PARAMS.namespace, mirror: PARAMS.mirror, node: PARAMS.node },
      messages: { batch: ref("#/components/messages/CaptureBatch") },
    },
    captureUnknown: {
      address: `${p}.capture.${UNKNOWN_TOKEN}.{node}`,
      title: "Unmapped capture batches",
      description:
        "Frames whose GRE key or ERSPAN session id maps to no mirror; Ovntap-Key says which. Namespace and mirror headers are absent.",
      parameters: { node: PARAMS.node },
      messages: { batch: ref("#/components/messages/CaptureBatch") },
    },
    flows: {
      address: `${p}.flows.{namespace}.{mirror}`,
      title: "Flow summaries",
      parameters: { namespace: PARAMS.namespace, mirror: PARAMS.mirror },
      messages: { flows: ref("#/components/messages/FlowSummary") },
    },
    stats: {
      address: `${p}.stats.{namespace}.{mirror}`,
      title: "Mirror statistics",
      parameters: { namespace: PARAMS.namespace, mirror: PARAMS.mirror },
      messages: { stats: ref("#/components/messages/MirrorStats") },
    },
    agents: {
      address: `${p}.agents.{node}`,
      title: "Agent heartbeats",
      description: `The latest heartbeat per node is also kept in the JetStream KV bucket ${AGENTS_KV_BUCKET}, keyed by node name.`,
      parameters: { node: PARAMS.node },
      messages: { heartbeat: ref("#/components/messages/AgentHeartbeat") },
    },
  };

  const operations = {
    handleRequest: {
      action: "receive",
      title: "Handle a request",
      summary: "intake validates, authorizes, dedupes by requestId, stores desired state and replies.",
      channel: ref("#/channels/requests"),
      messages: [ref("#/channels/requests/messages/request")],
      reply: { channel: ref("#/channels/replies"), messages: [ref("#/channels/replies/messages/reply")] },
    },
    publishEvent: {
      action: "send",
      title: "Publish a lifecycle event",
      channel: ref("#/channels/events"),
      messages: [ref("#/channels/events/messages/event")],
    },
    publishCapture: {
      action: "send",
      title: "Publish a capture batch",
      channel: ref("#/channels/capture"),
      messages: [ref("#/channels/capture/messages/batch")],
    },
    publishUnknownCapture: {
      action: "send",
      title: "Publish frames that map to no mirror",
      channel: ref("#/channels/captureUnknown"),
      messages: [ref("#/channels/captureUnknown/messages/batch")],
    },
    publishFlows: {
      action: "send",
      title: "Publish flow summaries",
      channel: ref("#/channels/flows"),
      messages: [ref("#/channels/flows/messages/flows")],
    },
    publishStats: {
      action: "send",
      title: "Publish mirror statistics",
      channel: ref("#/channels/stats"),
      messages: [ref("#/channels/stats/messages/stats")],
    },
    publishHeartbeat: {
      action: "send",
      title: "Publish an agent heartbeat",
      channel: ref("#/channels/agents"),
      messages: [ref("#/channels/agents/messages/heartbeat")],
    },
  };

  return sortKeys({
    asyncapi: "3.0.0",
    info: {
      title: "ovntap",
      version: CONTRACT_VERSION,
      description:
        "Traffic mirroring for Kube-OVN / OVN / Open vSwitch as an event pipeline. Operations are described from the point of view of the ovntap services taken together. Generated from @ovntap/contracts; do not edit.",
      license: { name: "Apache-2.0" },
    },
    defaultContentType: "application/json",
    servers: {
      nats: { host: "nats:4222", protocol: "nats", description: "The cluster's NATS (JetStream enabled)." },
    },
    channels,
    operations,
    components: { messages, schemas },
    "x-ovntap-kv": {
      description: "JetStream KV buckets (keys are node names).",
      buckets: {
        [AGENTS_KV_BUCKET]: { payload: ref("#/components/schemas/AgentHeartbeat") },
        [DATAPLANE_KV_BUCKET]: { payload: ref("#/components/schemas/DataplaneRecord") },
      },
    },
    "x-ovntap-queues": {
      description: "BullMQ queues on Redis (not NATS); the job id is <namespace>/<name>@<generation>.",
      queues: {
        [OVN_APPLY_QUEUE]: { payload: ref("#/components/schemas/OvnApplyJob") },
        [`${NODE_QUEUE_PREFIX}{node}`]: { payload: ref("#/components/schemas/NodeApplyJob") },
      },
    },
  });
}

async function format(text: string, path: string): Promise<string> {
  // Loaded on demand: suites importing `./internal` for the arbitraries need not load prettier.
  const prettier = await import("prettier");
  const options = (await prettier.resolveConfig(path)) ?? {};
  return prettier.format(text, { ...options, filepath: path });
}

/** Every generated file, by path relative to `dir` (posix separators), formatted as committed. */
export async function generateDocs(dir: string = DOCS_DIR): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const converted = jsonSchemas(schemaFileName);
  for (const [name, { description }] of Object.entries(PUBLIC_SCHEMAS)) {
    const json = sortKeys({
      ...converted[name],
      $id: schemaFileName(name),
      title: name,
      description,
      $comment: "Generated from @ovntap/contracts by `npm run contracts:docs`; do not edit.",
    });
    const rel = `schemas/${schemaFileName(name)}`;
    files.set(rel, await format(JSON.stringify(json), join(dir, rel)));
  }
  files.set("asyncapi.json", await format(JSON.stringify(buildAsyncApi()), join(dir, "asyncapi.json")));
  return files;
}

/** Write `files` under `dir` and remove `*.schema.json` files in `dir/schemas` that are no longer generated. */
export async function writeDocs(files: ReadonlyMap<string, string>, dir: string = DOCS_DIR): Promise<void> {
  await mkdir(join(dir, "schemas"), { recursive: true });
  for (const old of await readdir(join(dir, "schemas"))) {
    if (old.endsWith(".schema.json") && !files.has(`schemas/${old}`)) await rm(join(dir, "schemas", old));
  }
  for (const [rel, text] of files) await writeFile(join(dir, rel), text);
}
