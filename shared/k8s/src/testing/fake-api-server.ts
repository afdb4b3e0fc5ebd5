/**
 * A FAKE Kubernetes API server for tests. It stands in for kube-apiserver, which cannot be
 * installed where these tests run, and it is not one: no etcd, no admission, no OpenAPI
 * validation, no protobuf, no server-side apply. What it does implement is the REST wire
 * protocol that clients depend on, on a real HTTP(S) socket, so that `@kubernetes/client-node`
 * (KubeConfig, CoreV1Api, CustomObjectsApi, Watch, informers) drives it unmodified:
 *
 * - resources registered at construction (core pods, namespaces, events; kubeovn.io/v1 ips,
 *   cluster-scoped; ovntap.io/v1alpha1 trafficmirrors with a status subresource by default),
 *   on namespaced (`/api/v1/namespaces/{ns}/pods`) and cluster-scoped or all-namespaces paths;
 * - GET an object; list with `labelSelector`, `fieldSelector` (=, ==, != on dotted paths),
 *   `limit`/`continue` and `resourceVersion`/`resourceVersionMatch=Exact` (410 Gone when the
 *   version is older than the kept history); list metadata carries the resourceVersion;
 * - `watch=true`: a chunked stream of JSON lines `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR",
 *   "object":…}` from a resourceVersion (or, without one, the current state as ADDED first),
 *   `allowWatchBookmarks`, `timeoutSeconds`; an object that stops (starts) matching a watch's
 *   selectors arrives as DELETED (ADDED), as the watch cache does; a resourceVersion older than
 *   the bounded event history gets an ERROR event with a Status of code 410 (Expired);
 * - one global, monotonically increasing resourceVersion; uid, creationTimestamp;
 *   metadata.generation bumped on spec changes; no-op writes change nothing;
 * - POST (409 AlreadyExists with a Status body; `generateName`), PUT (409 Conflict on a stale
 *   resourceVersion; custom resources require one), PATCH (application/merge-patch+json,
 *   application/json-patch+json; strategic merge is treated as a merge patch for built-in
 *   resources and refused with 415 for custom ones, as the real server does), DELETE (finalizers
 *   hold an object with a deletionTimestamp until they are removed); the `status` subresource
 *   (writes to it change only `.status`, writes to the main resource never change `.status`);
 * - Bearer-token authentication (401) and, optionally, RBAC rules (403) and HTTPS;
 * - discovery (`/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}`, `/version`) so kubectl can
 *   look at it too.
 *
 * Every resource request it serves is recorded, with the RBAC verb, in `calls`.
 *
 *   const fake = await FakeApiServer.start({ token: "t0ken" });
 *   const kc = fake.kubeConfig();                 // a @kubernetes/client-node KubeConfig
 *   fake.put("pods", pod("web-1", "shop", { app: "web" }));
 *   const core = kc.makeApiClient(CoreV1Api);
 *   await core.listNamespacedPod({ namespace: "shop", labelSelector: "app=web" });
 *   fake.cutWatches();                            // every open watch dropped mid-stream
 *   fake.compactHistory();                        // the next watch from an older version: 410
 *   expect(apiCallKeys(fake.calls)).toEqual(apiCallKeys(APPLIER_API_CALLS));
 *   await fake.close();
 */
import { randomBytes, randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import type { ApiCall, ApiVerb } from "../calls.js";
import { matchesLabelSelector, parseLabelSelector } from "../selector.js";
import { deepEqual, type Json, jsonPatch, JsonPatchError, mergePatch } from "./patch.js";

/** A resource type the fake serves. */
export interface FakeResource {
  /** API group; "" for the core group. */
  readonly group: string;
  readonly version: string;
  /** Plural name, as in the URL. */
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** Whether it has a `status` subresource. */
  readonly status?: boolean;
  /** Whether metadata.generation is kept (default: custom resources and those with status). */
  readonly generation?: boolean;
}

/** The resources ovntap uses. */
export const FAKE_RESOURCES = {
  pods: { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true, status: true },
  namespaces: {
    group: "",
    version: "v1",
    plural: "namespaces",
    kind: "Namespace",
    namespaced: false,
    status: true,
  },
  events: { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true, generation: false },
  ips: { group: "kubeovn.io", version: "v1", plural: "ips", kind: "IP", namespaced: false },
  trafficmirrors: {
    group: "ovntap.io",
    version: "v1alpha1",
    plural: "trafficmirrors",
    kind: "TrafficMirror",
    namespaced: true,
    status: true,
  },
} as const satisfies Record<string, FakeResource>;

/** An RBAC PolicyRule (rbac.authorization.k8s.io/v1), `*` wildcards included. */
export interface FakePolicyRule {
  readonly apiGroups: readonly string[];
  /** `pods`, `pods/status`, `*`, `*\/status`. */
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
}

export interface FakeApiServerOptions {
  /** Served resources (default: every FAKE_RESOURCES entry). */
  resources?: readonly FakeResource[];
  /** Require `Authorization: Bearer <token>` (one of them); none: no authentication. */
  token?: string | readonly string[];
  /** Serve HTTPS with this key and (self-signed) certificate; plain HTTP when absent. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** When given, only requests these rules allow are served; others get 403 (recorded in `denied`). */
  rules?: readonly FakePolicyRule[];
  /** Events kept for watches and lists at an older resourceVersion. Default 1000. */
  historyLimit?: number;
  /** Send a BOOKMARK to every watch that allows them this often. Default: only on sendBookmarks(). */
  bookmarkIntervalMs?: number;
  host?: string;
  port?: number;
}

/** One request the fake served: its RBAC attributes, and the namespace when the path had one. */
export interface FakeApiCall extends ApiCall {
  readonly namespace?: string;
}

/** A Kubernetes object as JSON. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    generateName?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    deletionGracePeriodSeconds?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    ownerReferences?: unknown[];
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

interface HistoryEntry {
  readonly rv: number;
  readonly res: FakeResource;
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly obj: KubeObject;
  /** The object before this change (MODIFIED, DELETED). */
  readonly prev: KubeObject | undefined;
}

interface OpenWatch {
  readonly res: FakeResource;
  readonly namespace: string | undefined;
  readonly matches: (o: KubeObject) => boolean;
  readonly bookmarks: boolean;
  readonly response: ServerResponse;
  timer: NodeJS.Timeout | undefined;
  closed: boolean;
}

/** A `meta/v1 Status` failure. */
export interface KubeStatus {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure";
  message: string;
  reason: string;
  details?: { name?: string; group?: string; kind?: string };
  code: number;
}

class HttpError extends Error {
  constructor(readonly status: KubeStatus) {
    super(status.message);
  }
}

function failure(code: number, reason: string, message: string, details?: KubeStatus["details"]): HttpError {
  return new HttpError({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  });
}

const apiVersionOf = (r: FakeResource) => (r.group ? `${r.group}/${r.version}` : r.version);
const keyOf = (ns: string | undefined, name: string) => `${ns ?? ""}/${name}`;
const resKey = (r: FakeResource) => (r.group ? `${r.plural}.${r.group}` : r.plural);
const keepsGeneration = (r: FakeResource) => r.generation ?? (r.group !== "" || r.status === true);
/** RFC 3339 with seconds, as metav1.Time marshals. */
const timestamp = (d = new Date()) => `${d.toISOString().slice(0, 19)}Z`;

/** The fields of an object outside metadata (and status, when it is a subresource). */
function specOf(r: FakeResource, o: KubeObject): Record<string, unknown> {
  const { metadata: _m, apiVersion: _a, kind: _k, ...rest } = o;
  if (r.status) delete rest.status;
  return rest;
}

/** A field selector term's value on an object: a dotted path, missing fields read as "". */
function fieldValue(o: KubeObject, path: string): string {
  let cur: unknown = o;
  for (const p of path.split(".")) {
    if (typeof cur !== "object" || cur === null) return "";
    cur = (cur as Record<string, unknown>)[p];
  }
  if (typeof cur === "string") return cur;
  return typeof cur === "number" || typeof cur === "boolean" ? String(cur) : "";
}

function fieldMatcher(text: string | null): (o: KubeObject) => boolean {
  if (!text) return () => true;
  const terms = text
    .split(",")
    .filter((t) => t.trim() !== "")
    .map((t) => {
      const m = /^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(t);
      if (!m) throw failure(400, "BadRequest", `invalid field selector term "${t}"`);
      return { path: m[1]!, neg: m[2] === "!=", value: m[3]! };
    });
  return (o) => terms.every((t) => (fieldValue(o, t.path) === t.value) !== t.neg);
}

function labelMatcher(text: string | null): (o: KubeObject) => boolean {
  if (!text) return () => true;
  let sel;
  try {
    sel = parseLabelSelector(text);
  } catch (err) {
    throw failure(400, "BadRequest", `unable to parse requirement: ${(err as Error).message}`);
  }
  return (o) => matchesLabelSelector(o.metadata.labels, sel);
}

function ruleAllows(rules: readonly FakePolicyRule[], call: ApiCall, name: string | undefined): boolean {
  const resource = call.subresource ? `${call.resource}/${call.subresource}` : call.resource;
  return rules.some(
    (r) =>
      (r.apiGroups.includes("*") || r.apiGroups.includes(call.group)) &&
      (r.verbs.includes("*") || r.verbs.includes(call.verb)) &&
      (r.resources.includes("*") ||
        r.resources.includes(resource) ||
        (call.subresource !== undefined && r.resources.includes(`*/${call.subresource}`))) &&
      (!r.resourceNames?.length || (name !== undefined && r.resourceNames.includes(name))),
  );
}

/** A parsed resource path. */
interface Target {
  res: FakeResource;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

export class FakeApiServer {
  /** Every resource request served, in order. */
  readonly calls: FakeApiCall[] = [];
  /** Requests refused by `rules` (403). */
  readonly denied: FakeApiCall[] = [];
  private readonly resources: readonly FakeResource[];
  private readonly store = new Map<string, Map<string, KubeObject>>();
  private history: HistoryEntry[] = [];
  /** Changes at or below this version are no longer in `history`. */
  private compactedRv = 0;
  private rv = 0;
  private readonly watches = new Set<OpenWatch>();
  private readonly sockets = new Set<Socket>();
  private readonly tokens: readonly string[];
  private readonly historyLimit: number;
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private rules: readonly FakePolicyRule[] | undefined;
  private server!: Server;
  /** Base URL, e.g. http://127.0.0.1:39211. */
  url = "";

  private constructor(private readonly options: FakeApiServerOptions) {
    this.resources = options.resources ?? Object.values(FAKE_RESOURCES);
    for (const r of this.resources) this.store.set(resKey(r), new Map());
    this.tokens =
      options.token === undefined ? [] : typeof options.token === "string" ? [options.token] : options.token;
    this.historyLimit = options.historyLimit ?? 1000;
    this.rules = options.rules;
  }

  static async start(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const fake = new FakeApiServer(options);
    const handler = (req: IncomingMessage, res: ServerResponse) => fake.handle(req, res);
    fake.server = options.tls
      ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, handler)
      : createHttpServer(handler);
    fake.server.on("connection", (s: Socket) => {
      fake.sockets.add(s);
      s.on("close", () => fake.sockets.delete(s));
    });
    fake.server.on("secureConnection", (s: Socket) => {
      fake.sockets.add(s);
      s.on("close", () => fake.sockets.delete(s));
    });
    const host = options.host ?? "127.0.0.1";
    await new Promise<void>((resolve, reject) => {
      fake.server.once("error", reject);
      fake.server.listen(options.port ?? 0, host, () => resolve());
    });
    const { port } = fake.server.address() as AddressInfo;
    fake.url = `${options.tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${port}`;
    if (options.bookmarkIntervalMs) {
      fake.bookmarkTimer = setInterval(() => fake.sendBookmarks(), options.bookmarkIntervalMs);
      fake.bookmarkTimer.unref();
    }
    return fake;
  }

  /** The current (latest) resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Watches open right now. */
  get openWatches(): number {
    return this.watches.size;
  }

  // -------------------------------------------------------------------------------------------
  // Test controls

  /**
   * Creates or replaces an object directly (no admission, no subresource rules: `.status` is
   * taken as given). Returns the stored object. `resource`: "pods", "ips.kubeovn.io", ….
   */
  put(resource: string, object: KubeObject): KubeObject {
    const res = this.resource(resource);
    const name = object.metadata.name;
    if (!name) throw new Error("put: metadata.name is required");
    const ns = res.namespaced ? (object.metadata.namespace ?? "default") : undefined;
    const old = this.objects(res).get(keyOf(ns, name));
    const candidate = structuredClone(object);
    if (old) {
      candidate.metadata = {
        ...candidate.metadata,
        uid: old.metadata.uid,
        creationTimestamp: old.metadata.creationTimestamp,
        ...(old.metadata.generation !== undefined ? { generation: old.metadata.generation } : {}),
      };
      return this.commit(res, old, candidate, false);
    }
    return this.insert(res, ns, candidate);
  }

  /** Changes an object in place through a function (labels, status, …), like put(). */
  modify(
    resource: string,
    namespace: string | undefined,
    name: string,
    change: (o: KubeObject) => void,
  ): KubeObject {
    const current = this.get(resource, namespace, name);
    if (!current) throw new Error(`modify: ${resource} ${keyOf(namespace, name)} does not exist`);
    change(current);
    return this.put(resource, current);
  }

  /** Deletes an object at once (finalizers are not waited for). Returns whether it existed. */
  remove(resource: string, namespace: string | undefined, name: string): boolean {
    const res = this.resource(resource);
    const old = this.objects(res).get(keyOf(res.namespaced ? namespace : undefined, name));
    if (!old) return false;
    this.delete(res, old);
    return true;
  }

  /** A copy of a stored object. */
  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const res = this.resource(resource);
    const o = this.objects(res).get(keyOf(res.namespaced ? namespace : undefined, name));
    return o && structuredClone(o);
  }

  /** Copies of the stored objects of a resource (in one namespace, or all). */
  list(resource: string, namespace?: string): KubeObject[] {
    const res = this.resource(resource);
    return [...this.objects(res).values()]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .map((o) => structuredClone(o));
  }

  /**
   * Drops every open watch mid-stream: the connection is destroyed without the chunked
   * terminator (with `partialLine`, after half of a JSON line), as a dying API server or a
   * load balancer does. Returns how many were cut.
   */
  cutWatches(options: { partialLine?: boolean } = {}): number {
    const n = this.watches.size;
    for (const w of [...this.watches]) {
      this.closeWatch(w);
      if (options.partialLine) w.response.write('{"type":"MODIFIED","object":{"kind":');
      w.response.socket?.destroy();
    }
    return n;
  }

  /**
   * Forgets the event history, as etcd compaction does: a watch (or an Exact list) from any
   * version before now gets 410 Gone. With `expireWatches`, every open watch also gets an ERROR
   * event with a 410 Status and ends, as the watch cache does with a watcher it dropped.
   */
  compactHistory(options: { expireWatches?: boolean } = {}): void {
    this.compactedRv = this.rv;
    this.history = [];
    if (options.expireWatches) {
      for (const w of [...this.watches]) {
        this.writeEvent(w, "ERROR", this.goneStatus(0).status);
        this.endWatch(w);
      }
    }
  }

  /** Sends a BOOKMARK at the current resourceVersion to every open watch that allows them. */
  sendBookmarks(): number {
    let n = 0;
    for (const w of this.watches) {
      if (!w.bookmarks) continue;
      this.writeEvent(w, "BOOKMARK", {
        kind: w.res.kind,
        apiVersion: apiVersionOf(w.res),
        metadata: { resourceVersion: String(this.rv) },
      });
      n++;
    }
    return n;
  }

  /** Replaces the RBAC rules (undefined: everything is allowed). */
  setRules(rules: readonly FakePolicyRule[] | undefined): void {
    this.rules = rules;
  }

  /** Forgets the recorded calls. */
  resetCalls(): void {
    this.calls.length = 0;
    this.denied.length = 0;
  }

  /** A kubeconfig (as an object; JSON is YAML) that points at this server. */
  kubeconfigObject(options: { token?: string; namespace?: string } = {}): Record<string, unknown> {
    const token = options.token ?? this.tokens[0];
    return {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "fake",
          cluster: {
            server: this.url,
            // client-node refuses plain http:// unless told to skip TLS verification.
            ...(this.options.tls
              ? { "certificate-authority-data": Buffer.from(this.options.tls.cert).toString("base64") }
              : { "insecure-skip-tls-verify": true }),
          },
        },
      ],
      users: [{ name: "fake-user", user: token ? { token } : {} }],
      contexts: [
        {
          name: "fake",
          context: {
            cluster: "fake",
            user: "fake-user",
            ...(options.namespace ? { namespace: options.namespace } : {}),
          },
        },
      ],
      "current-context": "fake",
    };
  }

  /** Writes kubeconfigObject() to `path` (mode 0600) and returns the path. */
  writeKubeconfig(path: string, options: { token?: string; namespace?: string } = {}): string {
    writeFileSync(path, `${JSON.stringify(this.kubeconfigObject(options), null, 2)}\n`, { mode: 0o600 });
    return path;
  }

  /** A client-node KubeConfig for this server. */
  kubeConfig(options: { token?: string; namespace?: string } = {}): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromString(JSON.stringify(this.kubeconfigObject(options)));
    return kc;
  }

  async close(): Promise<void> {
    clearInterval(this.bookmarkTimer);
    for (const w of [...this.watches]) this.endWatch(w);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // -------------------------------------------------------------------------------------------
  // Store

  private resource(name: string): FakeResource {
    const r = this.resources.find((x) => resKey(x) === name || (x.group === "" && x.plural === name));
    if (!r)
      throw new Error(`resource ${name} is not served (known: ${this.resources.map(resKey).join(", ")})`);
    return r;
  }

  private objects(res: FakeResource): Map<string, KubeObject> {
    return this.store.get(resKey(res))!;
  }

  private record(entry: Omit<HistoryEntry, "rv">): number {
    const rv = ++this.rv;
    entry.obj.metadata.resourceVersion = String(rv);
    const e: HistoryEntry = { ...entry, rv };
    this.history.push(e);
    while (this.history.length > this.historyLimit) {
      const dropped = this.history.shift()!;
      this.compactedRv = dropped.rv;
    }
    for (const w of this.watches) this.dispatch(w, e);
    return rv;
  }

  private insert(res: FakeResource, ns: string | undefined, obj: KubeObject): KubeObject {
    const name = obj.metadata.name!;
    obj.apiVersion = apiVersionOf(res);
    obj.kind = res.kind;
    obj.metadata = {
      ...obj.metadata,
      name,
      ...(ns !== undefined ? { namespace: ns } : {}),
      uid: obj.metadata.uid ?? randomUUID(),
      creationTimestamp: obj.metadata.creationTimestamp ?? timestamp(),
      ...(keepsGeneration(res) ? { generation: 1 } : {}),
    };
    if (!res.namespaced) delete obj.metadata.namespace;
    delete obj.metadata.deletionTimestamp;
    this.objects(res).set(keyOf(ns, name), obj);
    this.record({ res, type: "ADDED", obj, prev: undefined });
    return structuredClone(obj);
  }

  /**
   * Stores `next` in place of `old`: generation, no-op detection, and (`finalize`, API writes)
   * the deletion of an object whose deletion only its finalizers held up.
   */
  private commit(res: FakeResource, old: KubeObject, next: KubeObject, finalize = true): KubeObject {
    next.apiVersion = apiVersionOf(res);
    next.kind = res.kind;
    next.metadata.name = old.metadata.name;
    if (old.metadata.namespace !== undefined) next.metadata.namespace = old.metadata.namespace;
    if (old.metadata.deletionTimestamp) next.metadata.deletionTimestamp = old.metadata.deletionTimestamp;
    if (keepsGeneration(res)) {
      const gen = old.metadata.generation ?? 1;
      next.metadata.generation = deepEqual(specOf(res, old), specOf(res, next)) ? gen : gen + 1;
    }
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    if (deepEqual(old, next)) return structuredClone(old);
    if (
      finalize &&
      next.metadata.deletionTimestamp &&
      !next.metadata.finalizers?.length &&
      !next.metadata.deletionGracePeriodSeconds
    ) {
      this.delete(res, next);
      return structuredClone(next);
    }
    this.objects(res).set(keyOf(old.metadata.namespace, old.metadata.name!), next);
    this.record({ res, type: "MODIFIED", obj: next, prev: old });
    return structuredClone(next);
  }

  private delete(res: FakeResource, obj: KubeObject): void {
    const key = keyOf(obj.metadata.namespace, obj.metadata.name!);
    const prev = this.objects(res).get(key);
    this.objects(res).delete(key);
    this.record({ res, type: "DELETED", obj: structuredClone(obj), prev });
  }

  /** The objects of a resource as they were at `rv` (rolled back through the history). */
  private snapshot(res: FakeResource, rv: number): Map<string, KubeObject> {
    if (rv < this.compactedRv) throw this.goneStatus(rv);
    const state = new Map(this.objects(res));
    for (let i = this.history.length - 1; i >= 0 && this.history[i]!.rv > rv; i--) {
      const e = this.history[i]!;
      if (e.res !== res) continue;
      const key = keyOf(e.obj.metadata.namespace, e.obj.metadata.name!);
      if (e.type === "ADDED") state.delete(key);
      else if (e.prev) state.set(key, e.prev);
    }
    return state;
  }

  private goneStatus(rv: number): HttpError {
    return failure(410, "Expired", `too old resource version: ${rv} (${this.compactedRv + 1})`);
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.route(req, res).catch((err: unknown) => {
      const status =
        err instanceof HttpError
          ? err.status
          : failure(500, "InternalError", `fake API server: ${String(err)}`).status;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      this.send(res, status.code, status);
    });
  }

  private send(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
    res.end(text);
  }

  private authenticate(req: IncomingMessage): void {
    if (this.tokens.length === 0) return;
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
    if (!m || !this.tokens.includes(m[1]!.trim())) throw failure(401, "Unauthorized", "Unauthorized");
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.authenticate(req);
    const url = new URL(req.url ?? "/", "http://fake");
    const segs = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? "GET";

    if (method === "GET" && this.discovery(segs, res)) return;
    const target = this.parse(segs);
    if (!target)
      throw failure(404, "NotFound", `the server could not find the requested resource (${url.pathname})`);

    const q = url.searchParams;
    const watch = q.get("watch") === "true" || q.get("watch") === "1";
    const verb = this.verbOf(method, target, watch);
    const call: FakeApiCall = {
      verb,
      group: target.res.group,
      resource: target.res.plural,
      ...(target.subresource ? { subresource: target.subresource } : {}),
      ...(target.namespace !== undefined ? { namespace: target.namespace } : {}),
    };
    if (this.rules && !ruleAllows(this.rules, call, target.name)) {
      this.denied.push(call);
      const scope =
        target.namespace !== undefined ? `in the namespace "${target.namespace}"` : "at the cluster scope";
      throw failure(
        403,
        "Forbidden",
        `${target.res.plural}${target.name ? ` "${target.name}"` : ""} is forbidden: cannot ${verb} resource "${target.res.plural}${target.subresource ? `/${target.subresource}` : ""}" in API group "${target.res.group}" ${scope}`,
      );
    }
    this.calls.push(call);

    switch (verb) {
      case "get":
        return this.send(res, 200, this.mustGet(target));
      case "list":
        return this.send(res, 200, this.listResponse(target, q));
      case "watch":
        return this.startWatch(target, q, res);
      case "create":
        return this.send(res, 201, this.create(target, await this.body(req)));
      case "update":
        return this.send(res, 200, this.update(target, await this.body(req)));
      case "patch":
        return this.send(
          res,
          200,
          this.patch(target, req.headers["content-type"] ?? "", await this.body(req)),
        );
      case "delete":
        return this.send(res, 200, this.deleteRequest(target, await this.body(req, true)));
      default:
        throw failure(405, "MethodNotAllowed", `${verb} is not supported by the fake API server`);
    }
  }

  private verbOf(method: string, t: Target, watch: boolean): ApiVerb {
    const collection = t.name === undefined;
    switch (method) {
      case "GET":
        return collection ? (watch ? "watch" : "list") : "get";
      case "POST":
        if (!collection) throw failure(405, "MethodNotAllowed", "POST goes to a collection");
        return "create";
      case "PUT":
        if (collection) throw failure(405, "MethodNotAllowed", "PUT needs an object name");
        return "update";
      case "PATCH":
        if (collection) throw failure(405, "MethodNotAllowed", "PATCH needs an object name");
        return "patch";
      case "DELETE":
        return collection ? "deletecollection" : "delete";
      default:
        throw failure(405, "MethodNotAllowed", `method ${method} is not allowed`);
    }
  }

  /**
   * /api/v1/[namespaces/{ns}/]{plural}[/{name}[/{sub}]] and
   * /apis/{group}/{version}/[namespaces/{ns}/]{plural}[/{name}[/{sub}]].
   */
  private parse(segs: string[]): Target | undefined {
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === "api" && segs.length >= 3) {
      [group, version, rest] = ["", segs[1]!, segs.slice(2)];
    } else if (segs[0] === "apis" && segs.length >= 4) {
      [group, version, rest] = [segs[1]!, segs[2]!, segs.slice(3)];
    } else {
      return undefined;
    }
    const find = (plural: string) =>
      this.resources.find((r) => r.group === group && r.version === version && r.plural === plural);
    let namespace: string | undefined;
    if (rest[0] === "namespaces" && rest.length >= 3) {
      const r = find(rest[2]!);
      if (r?.namespaced) {
        namespace = rest[1]!;
        rest = rest.slice(2);
      }
    }
    const res = find(rest[0]!);
    if (!res || rest.length > 3) return undefined;
    if (namespace === undefined && res.namespaced && rest.length > 1) return undefined;
    const subresource = rest[2];
    if (subresource !== undefined && !(subresource === "status" && res.status)) return undefined;
    return { res, namespace, name: rest[1], subresource };
  }

  private discovery(segs: string[], res: ServerResponse): boolean {
    const path = segs.join("/");
    const groups = [...new Set(this.resources.filter((r) => r.group).map((r) => r.group))];
    const resourceList = (group: string, version: string) => ({
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion: group ? `${group}/${version}` : version,
      resources: this.resources
        .filter((r) => r.group === group && r.version === version)
        .flatMap((r) => [
          {
            name: r.plural,
            singularName: r.kind.toLowerCase(),
            namespaced: r.namespaced,
            kind: r.kind,
            verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
          },
          ...(r.status
            ? [
                {
                  name: `${r.plural}/status`,
                  singularName: "",
                  namespaced: r.namespaced,
                  kind: r.kind,
                  verbs: ["get", "patch", "update"],
                },
              ]
            : []),
        ]),
    });
    if (path === "version") {
      this.send(res, 200, {
        major: "1",
        minor: "31",
        gitVersion: "v1.31.0-ovntap-fake",
        platform: "linux/amd64",
      });
    } else if (path === "api") {
      this.send(res, 200, { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] });
    } else if (path === "apis") {
      this.send(res, 200, {
        kind: "APIGroupList",
        apiVersion: "v1",
        groups: groups.map((g) => {
          const versions = [
            ...new Set(this.resources.filter((r) => r.group === g).map((r) => r.version)),
          ].map((v) => ({ groupVersion: `${g}/${v}`, version: v }));
          return { name: g, versions, preferredVersion: versions[0] };
        }),
      });
    } else if (segs[0] === "api" && segs.length === 2) {
      this.send(res, 200, resourceList("", segs[1]!));
    } else if (segs[0] === "apis" && segs.length === 3 && groups.includes(segs[1]!)) {
      this.send(res, 200, resourceList(segs[1]!, segs[2]!));
    } else {
      return false;
    }
    return true;
  }

  private async body(req: IncomingMessage, optional = false): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      // kube-apiserver refuses request bodies over 3 MiB.
      if (size > 3 * 1024 * 1024) throw failure(413, "RequestEntityTooLarge", "request body over 3 MiB");
      chunks.push(c);
    }
    const text = Buffer.concat(chunks).toString("utf8").trim();
    if (text === "") {
      if (optional) return undefined;
      throw failure(400, "BadRequest", "the request needs a body");
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw failure(400, "BadRequest", "the request body is not JSON (the fake API server speaks JSON only)");
    }
  }

  private notFound(t: Target, name: string): HttpError {
    return failure(404, "NotFound", `${resKey(t.res)} "${name}" not found`, {
      name,
      ...(t.res.group ? { group: t.res.group } : {}),
      kind: t.res.plural,
    });
  }

  private mustGet(t: Target): KubeObject {
    const o = this.objects(t.res).get(keyOf(t.namespace, t.name!));
    if (!o) throw this.notFound(t, t.name!);
    return o;
  }

  private listResponse(t: Target, q: URLSearchParams): unknown {
    const labels = labelMatcher(q.get("labelSelector"));
    const fields = fieldMatcher(q.get("fieldSelector"));
    const limit = Number(q.get("limit") ?? 0);
    const cont = q.get("continue");
    let atRv = this.rv;
    let after = "";
    if (cont) {
      try {
        const c = JSON.parse(Buffer.from(cont, "base64url").toString("utf8")) as {
          rv: number;
          after: string;
        };
        [atRv, after] = [c.rv, c.after];
      } catch {
        throw failure(400, "BadRequest", "invalid continue token");
      }
      if (atRv < this.compactedRv) {
        throw failure(
          410,
          "Expired",
          "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        );
      }
    } else if (q.get("resourceVersionMatch") === "Exact") {
      atRv = Number(q.get("resourceVersion") ?? "");
      if (!Number.isSafeInteger(atRv) || atRv <= 0)
        throw failure(400, "BadRequest", "resourceVersionMatch=Exact needs a resourceVersion");
      if (atRv > this.rv)
        throw failure(504, "Timeout", `Too large resource version: ${atRv}, current: ${this.rv}`);
    }
    const state = atRv === this.rv ? this.objects(t.res) : this.snapshot(t.res, atRv);
    const items = [...state.entries()]
      .filter(([k, o]) => k > after && (t.namespace === undefined || o.metadata.namespace === t.namespace))
      .filter(([, o]) => labels(o) && fields(o))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const page = limit > 0 ? items.slice(0, limit) : items;
    const more = limit > 0 && items.length > limit;
    const last = page[page.length - 1];
    return {
      kind: `${t.res.kind}List`,
      apiVersion: apiVersionOf(t.res),
      metadata: {
        resourceVersion: String(atRv),
        ...(more && last
          ? {
              continue: Buffer.from(JSON.stringify({ rv: atRv, after: last[0] })).toString("base64url"),
              remainingItemCount: items.length - page.length,
            }
          : {}),
      },
      items: page.map(([, o]) => o),
    };
  }

  private startWatch(t: Target, q: URLSearchParams, res: ServerResponse): void {
    const labels = labelMatcher(q.get("labelSelector"));
    const fields = fieldMatcher(q.get("fieldSelector"));
    const rvText = q.get("resourceVersion") ?? "";
    const from = rvText === "" || rvText === "0" ? undefined : Number(rvText);
    if (from !== undefined && (!Number.isSafeInteger(from) || from < 0))
      throw failure(400, "BadRequest", `invalid resourceVersion ${JSON.stringify(rvText)}`);
    const w: OpenWatch = {
      res: t.res,
      namespace: t.namespace,
      matches: (o) =>
        (w.namespace === undefined || o.metadata.namespace === w.namespace) && labels(o) && fields(o),
      bookmarks: q.get("allowWatchBookmarks") === "true",
      response: res,
      timer: undefined,
      closed: false,
    };
    res.writeHead(200, {
      "Content-Type": "application/json",
      "Transfer-Encoding": "chunked",
      "Cache-Control": "no-cache",
    });
    res.flushHeaders();
    res.on("close", () => this.closeWatch(w));
    if (from !== undefined && from < this.compactedRv) {
      // kube-apiserver answers an expired version inside the stream, then ends it.
      this.writeEvent(w, "ERROR", this.goneStatus(from).status);
      res.end();
      return;
    }
    if (from === undefined) {
      const initial = [...this.objects(t.res).entries()].sort(([a], [b]) => (a < b ? -1 : 1));
      for (const [, o] of initial) if (w.matches(o)) this.writeEvent(w, "ADDED", o);
    } else {
      for (const e of this.history) if (e.rv > from) this.dispatch(w, e);
    }
    this.watches.add(w);
    const timeout = Number(q.get("timeoutSeconds") ?? 0);
    if (timeout > 0) {
      w.timer = setTimeout(() => this.endWatch(w), timeout * 1000);
      w.timer.unref();
    }
  }

  /** One change as this watch sees it (selector transitions become ADDED / DELETED). */
  private dispatch(w: OpenWatch, e: HistoryEntry): void {
    if (e.res !== w.res || w.closed) return;
    const now = e.type !== "DELETED" && w.matches(e.obj);
    const before = e.prev !== undefined && w.matches(e.prev);
    if (e.type === "ADDED") {
      if (now) this.writeEvent(w, "ADDED", e.obj);
    } else if (e.type === "MODIFIED") {
      if (now && before) this.writeEvent(w, "MODIFIED", e.obj);
      else if (now) this.writeEvent(w, "ADDED", e.obj);
      else if (before) {
        const gone = structuredClone(e.prev);
        gone.metadata.resourceVersion = String(e.rv);
        this.writeEvent(w, "DELETED", gone);
      }
    } else if (w.matches(e.obj) || before) {
      this.writeEvent(w, "DELETED", e.obj);
    }
  }

  private writeEvent(w: OpenWatch, type: WatchEventType, object: unknown): void {
    if (w.closed) return;
    w.response.write(`${JSON.stringify({ type, object })}\n`);
  }

  private closeWatch(w: OpenWatch): void {
    w.closed = true;
    clearTimeout(w.timer);
    this.watches.delete(w);
  }

  /** Ends a watch cleanly (the chunked terminator), as a server-side timeout does. */
  private endWatch(w: OpenWatch): void {
    this.closeWatch(w);
    w.response.end();
  }

  private create(t: Target, body: unknown): KubeObject {
    if (t.subresource) throw failure(405, "MethodNotAllowed", "create on a subresource");
    const obj = this.asObject(body, t);
    let name = obj.metadata.name;
    if (!name && obj.metadata.generateName) {
      name = `${obj.metadata.generateName}${randomBytes(4).toString("hex").slice(0, 5)}`;
    }
    if (!name)
      throw failure(
        422,
        "Invalid",
        `${t.res.kind} is invalid: metadata.name: Required value: name or generateName is required`,
      );
    obj.metadata.name = name;
    if (t.res.namespaced && obj.metadata.namespace !== undefined && obj.metadata.namespace !== t.namespace) {
      throw failure(
        400,
        "BadRequest",
        `the namespace of the provided object does not match the namespace sent on the request`,
      );
    }
    if (this.objects(t.res).has(keyOf(t.namespace, name))) {
      throw failure(409, "AlreadyExists", `${resKey(t.res)} "${name}" already exists`, {
        name,
        ...(t.res.group ? { group: t.res.group } : {}),
        kind: t.res.plural,
      });
    }
    // A status subresource's stanza is ignored on create (the CRD strategy resets it).
    if (t.res.status && t.res.group !== "") delete obj.status;
    for (const k of ["resourceVersion", "uid", "creationTimestamp", "deletionTimestamp", "generation"]) {
      delete obj.metadata[k];
    }
    return this.insert(t.res, t.namespace, obj);
  }

  private asObject(body: unknown, t: Target): KubeObject {
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw failure(400, "BadRequest", "the request body must be a JSON object");
    }
    const o = body as KubeObject;
    if (typeof o.metadata !== "object" || o.metadata === null) o.metadata = {};
    if (o.kind !== undefined && o.kind !== t.res.kind) {
      throw failure(400, "BadRequest", `the body is a ${String(o.kind)}, this endpoint takes ${t.res.kind}`);
    }
    return o;
  }

  /** Applies a write to `old` per subresource rules and the resourceVersion precondition. */
  private write(t: Target, old: KubeObject, candidate: KubeObject, requireRv: boolean): KubeObject {
    const rv = candidate.metadata.resourceVersion;
    if (rv === undefined || rv === "") {
      if (requireRv && t.res.group !== "") {
        throw failure(
          422,
          "Invalid",
          `${t.res.kind}.${t.res.group} "${old.metadata.name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`,
        );
      }
    } else if (rv !== old.metadata.resourceVersion) {
      throw failure(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${resKey(t.res)} "${old.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name: old.metadata.name!, ...(t.res.group ? { group: t.res.group } : {}), kind: t.res.plural },
      );
    }
    let next: KubeObject;
    if (t.subresource === "status") {
      next = structuredClone(old);
      if (candidate.status === undefined) delete next.status;
      else next.status = candidate.status;
    } else {
      next = structuredClone(candidate);
      next.metadata = {
        ...candidate.metadata,
        uid: old.metadata.uid,
        creationTimestamp: old.metadata.creationTimestamp,
        ...(old.metadata.generation !== undefined ? { generation: old.metadata.generation } : {}),
      };
      if (t.res.status) {
        if (old.status === undefined) delete next.status;
        else next.status = structuredClone(old.status);
      }
    }
    return this.commit(t.res, old, next);
  }

  private update(t: Target, body: unknown): KubeObject {
    const old = this.mustGet(t);
    const obj = this.asObject(body, t);
    if (obj.metadata.name !== undefined && obj.metadata.name !== t.name) {
      throw failure(
        400,
        "BadRequest",
        `the name of the object (${obj.metadata.name}) does not match the name on the URL (${t.name})`,
      );
    }
    return this.write(t, old, obj, true);
  }

  private patch(t: Target, contentType: string, body: unknown): KubeObject {
    const old = this.mustGet(t);
    const type = contentType.split(";")[0]!.trim().toLowerCase();
    let patched: Json;
    try {
      switch (type) {
        case "application/merge-patch+json":
          patched = mergePatch(old, body);
          break;
        case "application/json-patch+json":
          patched = jsonPatch(old, body);
          break;
        case "application/strategic-merge-patch+json":
          if (t.res.group !== "") {
            throw failure(
              415,
              "UnsupportedMediaType",
              "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            );
          }
          // Lists would merge by their patchMergeKey on a real server; a merge patch for these simple objects.
          patched = mergePatch(old, body);
          break;
        default:
          throw failure(
            415,
            "UnsupportedMediaType",
            `the fake API server does not take PATCH bodies of type ${JSON.stringify(type)}: use application/merge-patch+json or application/json-patch+json`,
          );
      }
    } catch (err) {
      if (err instanceof JsonPatchError) {
        throw failure(err.testFailed ? 422 : 400, err.testFailed ? "Invalid" : "BadRequest", err.message);
      }
      throw err;
    }
    const obj = this.asObject(patched, t);
    if (obj.metadata.name !== old.metadata.name)
      throw failure(400, "BadRequest", "a patch cannot change metadata.name");
    return this.write(t, old, obj, false);
  }

  private deleteRequest(t: Target, body: unknown): KubeObject {
    if (t.subresource) throw failure(405, "MethodNotAllowed", "delete on a subresource");
    const old = this.mustGet(t);
    const pre = (body as { preconditions?: { uid?: string; resourceVersion?: string } } | undefined)
      ?.preconditions;
    if (
      (pre?.uid && pre.uid !== old.metadata.uid) ||
      (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion)
    ) {
      throw failure(409, "Conflict", `Precondition failed for ${resKey(t.res)} "${t.name}"`);
    }
    if (old.metadata.finalizers?.length) {
      if (old.metadata.deletionTimestamp) return structuredClone(old);
      const next = structuredClone(old);
      next.metadata.deletionTimestamp = timestamp();
      next.metadata.deletionGracePeriodSeconds = 0;
      this.objects(t.res).set(keyOf(old.metadata.namespace, old.metadata.name!), next);
      this.record({ res: t.res, type: "MODIFIED", obj: next, prev: old });
      return structuredClone(next);
    }
    // Immediate, pods included: there is no kubelet here to confirm a graceful deletion.
    this.delete(t.res, old);
    return structuredClone(old);
  }
}
