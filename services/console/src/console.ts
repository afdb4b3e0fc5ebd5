/**
 * The console's state and its feeds, without HTTP: the mirrors from the store (kept fresh by the
 * lifecycle events and a periodic re-read), the recent events from the `OVNTAP_EVENTS` stream (the
 * last N at start, then live), and every capture batch on `ovntap.v1.capture.>` (rates, and a
 * bounded ring for pcap downloads). Pages get a snapshot, then changes through `hub`.
 *
 *     const c = createConsole({ nc, store, logger, metrics, config });
 *     await c.start();
 *     c.snapshot();                                   // what a page that just connected is sent
 *     c.pcap("shop", "web", 30);                      // the last 30 s of shop/web, or undefined
 *     await c.stop();
 *
 * The console only reads: it subscribes and reads the store, never publishes, creates no stream
 * and writes nothing to Redis.
 */
import { performance } from "node:perf_hooks";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  AuditRecord,
  EVENTS_STREAM,
  EVENTS_STREAM_SUBJECTS,
  parseCaptureHeaders,
  parseSubject,
  SUBJECT_PREFIX,
  TERMINAL_PHASES,
  UNNAMED_MIRROR,
  validate,
} from "@ovntap/contracts";
import type { Logger, Metrics } from "@ovntap/runtime";
import { jitteredBackoff } from "@ovntap/runtime/internal";
import type { Store } from "@ovntap/store";
import { DEFAULT_CONFIG } from "./config.js";
import type { ConsoleConfig } from "./config.js";
import { pcapFromBatches } from "./pcap.js";
import type { PcapDownload } from "./pcap.js";
import { RATE_AVERAGE_SECONDS, RateBoard } from "./rates.js";
import type { RateSnapshot, RateTick } from "./rates.js";
import { scanRecords } from "./records.js";
import { CaptureRing } from "./ring.js";
import { SseHub } from "./sse.js";
import { eventView, mirrorView } from "./view.js";
import type { EventView, MirrorView } from "./view.js";

/** Every capture batch of every mirror and node. */
export const CAPTURE_WILDCARD = `${SUBJECT_PREFIX}.capture.>`;
/** After an event, the mirror is read this much later, so a burst of events makes one read. */
const READ_DELAY_MS = 150;
/** A mirror being deleted is read again this often until its record is purged. */
const GONE_RECHECK_MS = 2_000;
/** Lengths of pcap download the page offers, cut to the ring's age. */
export const PCAP_SECONDS_CHOICES = [10, 30, 60, 120, 300] as const;

export interface ConsoleDeps {
  nc: NatsConnection;
  store: Store;
  logger: Logger;
  metrics?: Metrics;
  config?: Partial<ConsoleConfig>;
  /** Milliseconds, never going back (the ring's order relies on it); default performance-based. */
  now?: () => number;
}

/** Per mirror: what the exporters reported lost, and batches this console did not receive. */
export interface CaptureLoss {
  /** Sum of the batches' `drops` headers. */
  drops: number;
  /** Gaps in the batches' per-node sequence numbers. */
  missedBatches: number;
}

export type EventsFeed = "starting" | "live" | "waiting for the event stream" | "reconnecting";

export interface Snapshot {
  serverTime: string;
  /** The last complete second the rates cover (the monotonic clock's Unix second). */
  second: number;
  windowSeconds: number;
  averageSeconds: number;
  pcapSeconds: number[];
  mirrors: MirrorView[];
  rates: Record<string, RateSnapshot & CaptureLoss>;
  events: EventView[];
  eventsFeed: EventsFeed;
}

export interface RatesMessage {
  /** The second these counts are for. */
  t: number;
  rates: Record<string, RateTick & CaptureLoss>;
}

export interface Console {
  readonly hub: SseHub;
  readonly config: ConsoleConfig;
  start(): Promise<void>;
  stop(): Promise<void>;
  snapshot(): Snapshot;
  /** Whether the store was read once and the capture subscription is up (for /readyz). */
  isReady(): boolean;
  /**
   * The batches of `<namespace>/<name>` received in the last `seconds` as one pcap file; undefined
   * when the console knows no such mirror (not in the store, nothing captured).
   */
  pcap(namespace: string, name: string, seconds: number): PcapDownload | undefined;
  /** Re-reads every mirror from the store (also done every `refreshMs`). */
  refresh(): Promise<void>;
}

const monotonicNow = () => performance.timeOrigin + performance.now();

export function createConsole(deps: ConsoleDeps): Console {
  const config: ConsoleConfig = {
    ...DEFAULT_CONFIG,
    ...deps.config,
    ring: { ...DEFAULT_CONFIG.ring, ...deps.config?.ring },
  };
  const log = deps.logger.child({ component: "console" });
  const now = deps.now ?? monotonicNow;
  const { nc, store } = deps;
  const ring = new CaptureRing(config.ring);
  const rates = new RateBoard();
  const loss = new Map<string, CaptureLoss>();
  /** Last batch sequence per `<id> <node>`. */
  const sequences = new Map<string, number>();
  const mirrors = new Map<string, MirrorView>();
  const events: EventView[] = [];
  const pcapSeconds = PCAP_SECONDS_CHOICES.filter((s) => s * 1000 <= config.ring.maxAgeMs);

  const m = deps.metrics;
  const batchesTotal = m?.counter({
    name: "console_capture_batches_total",
    help: "Capture batches received, by result (kept, invalid, unattributed)",
    labelNames: ["result"],
  });
  const packetsTotal = m?.counter({
    name: "console_capture_packets_total",
    help: "Packets in the capture batches kept",
  });
  const pcapTotal = m?.counter({ name: "console_pcap_downloads_total", help: "pcap files served" });
  const eventsTotal = m?.counter({
    name: "console_events_total",
    help: "Lifecycle events read from the stream",
  });
  const slowPages = m?.counter({
    name: "console_pages_cut_total",
    help: "Live pages cut off for not reading their stream (CONSOLE_CLIENT_BUFFER_BYTES)",
  });
  const storeErrors = m?.counter({ name: "console_store_errors_total", help: "Failed reads of the store" });
  m?.gauge({
    name: "console_pages",
    help: "Live pages connected",
    collect() {
      this.set(hub.size);
    },
  });
  m?.gauge({
    name: "console_ring_bytes",
    help: "Bytes of capture batches held for pcap downloads (payloads plus bookkeeping)",
    collect() {
      this.set(ring.stats().bytes);
    },
  });
  m?.gauge({
    name: "console_ring_batches",
    help: "Capture batches held for pcap downloads",
    collect() {
      this.set(ring.stats().batches);
    },
  });
  m?.counter({
    name: "console_ring_evicted_total",
    help: "Capture batches dropped from the ring, by reason (age, mirror_bytes, total_bytes, too_large)",
    labelNames: ["reason"],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(ring.stats().evicted)) this.inc({ reason }, n);
    },
  });

  const hub = new SseHub({
    maxClients: config.maxClients,
    maxBufferBytes: config.clientBufferBytes,
    onSlowClient: () => slowPages?.inc(),
  });

  let stopped = false;
  let storeLoaded = false;
  let captureSub: Subscription | undefined;
  let eventsFeed: EventsFeed = "starting";
  let eventsLoop: Promise<void> | undefined;
  let eventMessages: ConsumerMessages | undefined;
  let wakeEvents: (() => void) | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let refresher: NodeJS.Timeout | undefined;
  let lastTick = Math.floor(now() / 1000) - 1;
  const lossOf = (id: string): CaptureLoss => loss.get(id) ?? { drops: 0, missedBatches: 0 };

  // ---------------------------------------------------------------------------------------------
  // Mirrors

  /** Bumped by every read of one mirror; a full re-read leaves alone mirrors read after it began. */
  let readCounter = 0;
  const readAt = new Map<string, number>();
  const pendingReads = new Map<string, { due: number; timer: NodeJS.Timeout }>();
  let mirrorsTimer: NodeJS.Timeout | undefined;
  let refreshing: Promise<void> | undefined;

  const mirrorList = () => [...mirrors.values()].sort((a, b) => a.id.localeCompare(b.id));
  const announceMirrors = () => {
    if (mirrorsTimer !== undefined || stopped) return;
    mirrorsTimer = setTimeout(() => {
      mirrorsTimer = undefined;
      hub.broadcast("mirrors", { serverTime: new Date().toISOString(), mirrors: mirrorList() });
    }, 100);
  };

  async function refresh(): Promise<void> {
    if (refreshing !== undefined) return refreshing;
    const began = ++readCounter;
    refreshing = (async () => {
      try {
        const all = await store.listMirrors();
        const seen = new Set<string>();
        for (const stored of all) {
          const v = mirrorView(stored);
          seen.add(v.id);
          if ((readAt.get(v.id) ?? 0) > began) continue;
          mirrors.set(v.id, v);
        }
        for (const id of mirrors.keys()) {
          if (!seen.has(id) && (readAt.get(id) ?? 0) <= began) mirrors.delete(id);
        }
        if (!storeLoaded) log.info({ mirrors: mirrors.size }, "mirrors loaded");
        storeLoaded = true;
        announceMirrors();
      } catch (err) {
        storeErrors?.inc();
        log.warn({ err }, "cannot read the mirrors from the store; keeping the last known");
      } finally {
        refreshing = undefined;
        for (const [id, at] of readAt) if (at <= began) readAt.delete(id);
      }
    })();
    return refreshing;
  }

  async function refreshOne(namespace: string, name: string): Promise<void> {
    const id = `${namespace}/${name}`;
    readAt.set(id, ++readCounter);
    try {
      const stored = await store.getMirror(namespace, name);
      if (stored === undefined) mirrors.delete(id);
      else mirrors.set(id, mirrorView(stored));
      announceMirrors();
      // The applier announces `deleted` before it purges the record: look again until it is gone.
      if (stored !== undefined && (stored.deleting || TERMINAL_PHASES.includes(stored.status.phase))) {
        scheduleRead(namespace, name, GONE_RECHECK_MS);
      }
    } catch (err) {
      storeErrors?.inc();
      log.warn({ err, mirror: id }, "cannot read a mirror from the store");
    } finally {
      // The marks only matter while a full re-read is running.
      if (refreshing === undefined) readAt.delete(id);
    }
  }

  /**
   * Several events about one mirror in a burst (accepted, applying, applied, active) make one
   * read, READ_DELAY_MS after the first; a sooner read replaces a later one already planned.
   */
  function scheduleRead(namespace: string, name: string, delayMs = READ_DELAY_MS): void {
    const id = `${namespace}/${name}`;
    if (stopped) return;
    const due = now() + delayMs;
    const planned = pendingReads.get(id);
    if (planned !== undefined) {
      if (planned.due <= due) return;
      clearTimeout(planned.timer);
    }
    const timer = setTimeout(() => {
      pendingReads.delete(id);
      void refreshOne(namespace, name);
    }, delayMs);
    pendingReads.set(id, { due, timer });
  }

  // ---------------------------------------------------------------------------------------------
  // Capture batches

  function onBatch(msg: Msg): void {
    const subject = parseSubject(msg.subject);
    if (subject?.kind !== "capture") {
      batchesTotal?.inc({ result: "unattributed" });
      return;
    }
    const header = msg.headers ? parseCaptureHeaders(msg.headers) : undefined;
    // The subject is what NATS permissions vouch for; a header naming another mirror is not trusted.
    if (
      header === undefined ||
      !header.ok ||
      header.value.namespace !== subject.namespace ||
      header.value.mirror !== subject.mirror
    ) {
      batchesTotal?.inc({ result: "invalid" });
      return;
    }
    const h = header.value;
    const scan = scanRecords(msg.data);
    if (scan.count === 0) {
      batchesTotal?.inc({ result: "invalid" });
      return;
    }
    if (scan.error !== undefined)
      log.debug({ subject: msg.subject, error: scan.error }, "damaged batch tail left out");
    const id = `${subject.namespace}/${subject.mirror}`;
    const at = now();
    if (!rates.add(id, at, scan.count, scan.wireBytes)) {
      batchesTotal?.inc({ result: "invalid" });
      return;
    }
    ring.push(id, {
      receivedAtMs: at,
      stream: `${h.node} ${h.encap} ${h.key ?? ""}`,
      linkType: h.linkType,
      snaplen: h.snaplen,
      count: scan.count,
      // A copy: the message's bytes belong to the NATS client.
      payload: Buffer.from(msg.data.subarray(0, scan.validBytes)),
    });
    const l = loss.get(id) ?? { drops: 0, missedBatches: 0 };
    l.drops += h.drops;
    const seqKey = `${id} ${h.node}`;
    const last = sequences.get(seqKey);
    // A smaller number means the exporter restarted: a new sequence, not a gap.
    if (last !== undefined && h.sequence > last + 1) l.missedBatches += h.sequence - last - 1;
    sequences.set(seqKey, h.sequence);
    loss.set(id, l);
    batchesTotal?.inc({ result: "kept" });
    packetsTotal?.inc(scan.count);
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle events

  function rememberEvent(v: EventView): void {
    events.push(v);
    if (events.length > config.events) events.splice(0, events.length - config.events);
  }

  function onEvent(msg: JsMsg): void {
    eventsTotal?.inc();
    let raw: unknown;
    try {
      raw = msg.json<unknown>();
    } catch {
      raw = undefined;
    }
    const record =
      raw !== null && typeof raw === "object" && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
    const parsed = validate(AuditRecord, { ...record, seq: msg.seq }, "event");
    const str = (v: unknown) => (typeof v === "string" ? v : "");
    const view: EventView = parsed.ok
      ? eventView(parsed.value, msg.seq)
      : {
          // From a newer producer, or damaged: shown as far as it can be read.
          seq: msg.seq,
          time: str(record.time),
          mirror: `${str(record.namespace)}/${str(record.mirror)}`,
          type: str(record.type) || "unreadable",
          principal: str(record.principal),
          generation: typeof record.generation === "number" ? record.generation : 0,
          summary: "",
        };
    rememberEvent(view);
    hub.broadcast("event", view);
    const subject = parseSubject(msg.subject);
    if (subject?.kind === "events" && subject.mirror !== UNNAMED_MIRROR && view.type !== "capture_drops") {
      scheduleRead(subject.namespace, subject.mirror);
    }
  }

  function setFeed(feed: EventsFeed): void {
    if (feed === eventsFeed) return;
    eventsFeed = feed;
    hub.broadcast("feed", { eventsFeed: feed });
  }

  /** Reads the stream from the last `config.events` events on, then follows it; resumes after its last sequence. */
  async function followEvents(): Promise<void> {
    const js = jetstream(nc);
    let lastSeq = 0;
    for (let attempt = 0; !stopped;) {
      try {
        const jsm = await jetstreamManager(nc);
        const { state } = await jsm.streams.info(EVENTS_STREAM);
        const startSeq =
          lastSeq > 0 ? lastSeq + 1 : Math.max(1, state.first_seq, state.last_seq - config.events + 1);
        const consumer = await js.consumers.get(EVENTS_STREAM, {
          filter_subjects: EVENTS_STREAM_SUBJECTS,
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: startSeq,
        });
        eventMessages = await consumer.consume({ max_messages: 256 });
        if (stopped) break;
        log.info({ startSeq }, "following lifecycle events");
        setFeed("live");
        attempt = 0;
        for await (const msg of eventMessages) {
          if (msg.seq <= lastSeq) continue;
          lastSeq = msg.seq;
          onEvent(msg);
        }
        // The consumer ended without being told to (the connection closed): start over.
        if (!stopped) setFeed("reconnecting");
      } catch (err) {
        if (stopped) break;
        const missing = /stream not found/i.test(err instanceof Error ? err.message : String(err));
        const feed: EventsFeed = missing ? "waiting for the event stream" : "reconnecting";
        if (feed !== eventsFeed)
          log.warn(
            { err, stream: EVENTS_STREAM },
            missing ? "no event stream yet; retrying" : "event feed interrupted; retrying",
          );
        setFeed(feed);
      } finally {
        await eventMessages?.close().catch(() => undefined);
        eventMessages = undefined;
      }
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, jitteredBackoff(attempt++, { baseMs: 500, maxMs: 10_000 }));
        wakeEvents = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wakeEvents = undefined;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The second ticker

  function tick(): void {
    const t = now();
    const closed = Math.floor(t / 1000) - 1;
    // A late timer sends every second it missed (at most a window's worth).
    for (let s = Math.max(lastTick + 1, closed - rates.window + 1); s <= closed; s++) {
      const out: Record<string, RateTick & CaptureLoss> = {};
      for (const [id, r] of Object.entries(rates.tick(s))) out[id] = { ...r, ...lossOf(id) };
      hub.broadcast("rates", { t: s, rates: out } satisfies RatesMessage);
    }
    lastTick = Math.max(lastTick, closed);
    ring.expire(t);
    for (const id of rates.prune(closed, (id) => mirrors.has(id))) {
      loss.delete(id);
      for (const k of sequences.keys()) if (k.startsWith(`${id} `)) sequences.delete(k);
    }
    if (!stopped) ticker = setTimeout(tick, 1000 - (now() % 1000) + 20);
  }

  return {
    hub,
    config,

    async start() {
      captureSub = nc.subscribe(CAPTURE_WILDCARD, {
        callback: (err, msg) => {
          if (err !== null) {
            log.warn({ err }, "capture subscription error");
            return;
          }
          onBatch(msg);
        },
      });
      await refresh();
      if (!storeLoaded) log.warn("starting without the mirrors; retrying every CONSOLE_REFRESH_MS");
      refresher = setInterval(() => void refresh(), config.refreshMs);
      refresher.unref();
      eventsLoop = followEvents();
      lastTick = Math.floor(now() / 1000) - 1;
      ticker = setTimeout(tick, 1000 - (now() % 1000) + 20);
      log.info(
        {
          ringSeconds: config.ring.maxAgeMs / 1000,
          ringBytes: config.ring.maxTotalBytes,
          events: config.events,
        },
        "console started",
      );
    },

    async stop() {
      stopped = true;
      clearTimeout(ticker);
      clearInterval(refresher);
      clearTimeout(mirrorsTimer);
      for (const p of pendingReads.values()) clearTimeout(p.timer);
      pendingReads.clear();
      hub.close();
      captureSub?.unsubscribe();
      eventMessages?.stop();
      wakeEvents?.();
      await eventsLoop;
      await refreshing;
      log.info({ ring: ring.stats() }, "console stopped");
    },

    snapshot(): Snapshot {
      const second = lastTick;
      const r: Record<string, RateSnapshot & CaptureLoss> = {};
      for (const [id, s] of Object.entries(rates.snapshot(second))) r[id] = { ...s, ...lossOf(id) };
      return {
        serverTime: new Date().toISOString(),
        second,
        windowSeconds: rates.window,
        averageSeconds: RATE_AVERAGE_SECONDS,
        pcapSeconds,
        mirrors: mirrorList(),
        rates: r,
        events: [...events],
        eventsFeed,
      };
    },

    isReady: () => storeLoaded && captureSub !== undefined && !captureSub.isClosed(),

    pcap(namespace, name, seconds) {
      const id = `${namespace}/${name}`;
      if (!mirrors.has(id) && !ring.has(id)) return undefined;
      const t = now();
      ring.expire(t);
      pcapTotal?.inc();
      return pcapFromBatches(ring.since(id, t - seconds * 1000));
    },

    refresh,
  };
}
