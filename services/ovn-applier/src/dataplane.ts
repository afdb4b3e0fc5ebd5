/**
 * What the node agents report of ovntap's OVN mirrors on their nodes (JetStream KV bucket
 * `ovntap_dataplane`, one contracts `DataplaneRecord` per node): OVN accepts a mirror that OVS
 * then refuses — a second tunnel to one sink with one key gets `Interface.error` "could not add
 * network device … (File exists)" — and only the node can tell. The applier reports such a
 * mirror Degraded with the OVS text instead of Active, and Active again once it is programmed.
 *
 *   const view = new DataplaneView({ logger });
 *   view.on("change", (id) => reconcileSoon(id));   // a mirror's problems appeared, changed or ended
 *   await view.start(nc);                           // watches the bucket (waits for it to exist)
 *   view.problems("shop/web");                      // [{ node, row, message, component, since }]
 *
 * Records older than DATAPLANE_STALE_MS were left by an agent that is gone: their states are
 * unknown, not errors, and are ignored (a periodic check notices records going stale).
 *
 * The bucket is read with an ordered push consumer on its stream (last value per key, then
 * every update), as @nats-io/kv's `watch()` does.
 */
import { EventEmitter } from "node:events";
import { DeliverPolicy, jetstream, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { DATAPLANE_KV_BUCKET, DATAPLANE_STALE_MS, DataplaneRecord } from "@ovntap/contracts";
import type { Logger } from "@ovntap/runtime";

/** One OVN mirror row a node's data plane does not carry, as its agent reported it. */
export interface DataplaneProblem {
  readonly node: string;
  readonly row: string;
  readonly message: string;
  readonly component: "ovs" | "ovn-controller";
  readonly since: string;
}

/** A mirror's data plane across the nodes that reported it (fresh records only). */
export interface MirrorDataplaneView {
  readonly problems: readonly DataplaneProblem[];
  /** Nodes reporting at least one of the mirror's rows programmed. */
  readonly programmedOn: readonly string[];
}

export interface DataplaneViewOptions {
  logger: Logger;
  /** Records older than this are ignored. Default DATAPLANE_STALE_MS. */
  staleMs?: number;
  /** Period of the check for records going stale. Default 5 s. */
  checkIntervalMs?: number;
  /** Delay between attempts to watch a bucket that does not exist yet. Default 2 s. */
  retryMs?: number;
  now?: () => number;
}

const STREAM = `KV_${DATAPLANE_KV_BUCKET}`;
const SUBJECT_PREFIX = `$KV.${DATAPLANE_KV_BUCKET}.`;

export class DataplaneView extends EventEmitter<{ change: [id: string] }> {
  private readonly records = new Map<string, DataplaneRecord>();
  /** Per mirror id, a fingerprint of what problems() and programmedOn returned last. */
  private readonly seen = new Map<string, string>();
  private readonly log: Logger;
  private readonly staleMs: number;
  private readonly now: () => number;
  private messages: ConsumerMessages | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private watching = false;

  constructor(private readonly options: DataplaneViewOptions) {
    super();
    this.setMaxListeners(0);
    this.log = options.logger.child({ component: "dataplane" });
    this.staleMs = options.staleMs ?? DATAPLANE_STALE_MS;
    this.now = options.now ?? (() => Date.now());
  }

  /** Whether the bucket is being watched (it exists and the consumer runs). */
  get ready(): boolean {
    return this.watching;
  }

  /** The mirror's data plane as the fresh records report it. */
  mirror(id: string): MirrorDataplaneView {
    const problems: DataplaneProblem[] = [];
    const programmedOn = new Set<string>();
    const now = this.now();
    for (const rec of this.records.values()) {
      if (now - Date.parse(rec.time) > this.staleMs) continue;
      for (const m of rec.mirrors) {
        if (`${m.namespace}/${m.mirror}` !== id) continue;
        if (m.state === "error") {
          problems.push({
            node: rec.node,
            row: m.row,
            message: m.message ?? "not programmed",
            component: m.component ?? "ovs",
            since: m.since,
          });
        } else if (m.state === "programmed") programmedOn.add(rec.node);
      }
    }
    problems.sort((a, b) => a.node.localeCompare(b.node) || a.row.localeCompare(b.row));
    return { problems, programmedOn: [...programmedOn].sort() };
  }

  problems(id: string): readonly DataplaneProblem[] {
    return this.mirror(id).problems;
  }

  /** A node's record was written (or deleted, `undefined`): mirrors whose view changed emit `change`. */
  apply(node: string, record: DataplaneRecord | undefined): void {
    const before = this.records.get(node);
    if (record) this.records.set(node, record);
    else this.records.delete(node);
    const ids = new Set<string>();
    for (const r of [before, record]) for (const m of r?.mirrors ?? []) ids.add(`${m.namespace}/${m.mirror}`);
    this.compare(ids);
  }

  /** Re-evaluates every mirror (records going stale change views without a write). */
  check(): void {
    const ids = new Set(this.seen.keys());
    for (const r of this.records.values()) for (const m of r.mirrors) ids.add(`${m.namespace}/${m.mirror}`);
    this.compare(ids);
  }

  private compare(ids: Iterable<string>): void {
    for (const id of ids) {
      const v = this.mirror(id);
      const print =
        v.problems.length === 0 && v.programmedOn.length === 0
          ? undefined
          : JSON.stringify([v.problems.map((p) => [p.node, p.row, p.message]), v.programmedOn]);
      if (print === this.seen.get(id)) continue;
      if (print === undefined) this.seen.delete(id);
      else this.seen.set(id, print);
      this.emit("change", id);
    }
  }

  /** Watches the bucket until stop(); resolves once the first attempt to watch it is made. */
  async start(nc: NatsConnection): Promise<void> {
    this.stopped = false;
    this.timer = setInterval(() => this.check(), this.options.checkIntervalMs ?? 5_000);
    this.timer.unref();
    let first!: () => void;
    const attempted = new Promise<void>((r) => (first = r));
    this.running = this.loop(nc, first);
    await attempted;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.messages?.stop();
    await this.running;
  }

  private async loop(nc: NatsConnection, attempted: () => void): Promise<void> {
    const js = jetstream(nc);
    let missing = false;
    while (!this.stopped && !nc.isClosed()) {
      try {
        const consumer = await js.consumers.getPushConsumer(STREAM, {
          filter_subjects: `${SUBJECT_PREFIX}>`,
          deliver_policy: DeliverPolicy.LastPerSubject,
        });
        this.messages = await consumer.consume({ callback: (m) => this.onMessage(m) });
        this.watching = true;
        missing = false;
        this.log.info({ bucket: DATAPLANE_KV_BUCKET }, "watching the node agents' data-plane records");
        attempted();
        if (this.stopped) this.messages.stop();
        await this.messages.closed();
      } catch (err) {
        attempted();
        // No agent created the bucket yet (or JetStream is unreachable for a moment): look again.
        if (!missing)
          this.log.info({ err, bucket: DATAPLANE_KV_BUCKET }, "data-plane bucket not watched yet");
        missing = true;
      } finally {
        this.watching = false;
        this.messages = undefined;
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, this.options.retryMs ?? 2_000).unref());
    }
    attempted();
  }

  private onMessage(m: JsMsg): void {
    if (!m.subject.startsWith(SUBJECT_PREFIX)) return;
    const node = m.subject.slice(SUBJECT_PREFIX.length);
    const op = m.headers?.get("KV-Operation");
    if (op === "DEL" || op === "PURGE") {
      this.apply(node, undefined);
      return;
    }
    let parsed;
    try {
      parsed = DataplaneRecord.safeParse(m.json());
    } catch (err) {
      this.log.warn({ err, node }, "data-plane record is not JSON; ignored");
      return;
    }
    if (!parsed.success) {
      this.log.warn({ node, issues: parsed.error.issues.slice(0, 5) }, "invalid data-plane record ignored");
      return;
    }
    this.apply(node, parsed.data);
  }
}

/** `ovs on node n1: could not add network device … (File exists)`; several joined with "; ". */
export function describeProblems(problems: readonly DataplaneProblem[]): string {
  return problems
    .map((p) => `${p.component} on node ${p.node} (${p.row}): ${p.message}`)
    .join("; ")
    .slice(0, 4000);
}
