/**
 * Publishing batches on one NATS connection without ever waiting on it. nats.js `publish` never
 * blocks: it appends to an outbound buffer that grows without bound while the socket or the server
 * is slow, or the connection is down. So the exporter keeps its own account of how much it handed
 * over and the server has not yet read: every `ackEveryBytes` it sends a PING (`nc.flush()`), and the
 * PONG — which the server sends only after reading everything before it — acknowledges those bytes.
 * `canPublish()` is false while more than `maxInFlightBytes` are unacknowledged or the connection is
 * down; the pipeline then keeps batches in its bounded queue, and drops (counted) when that is full.
 *
 *     const p = new NatsPublisher({ nc, maxInFlightBytes: 8 << 20, onWritable: () => pipeline.drain() });
 *     if (p.canPublish()) p.publish(subject, payload, headers);
 *
 * A slow subscriber is the server's business: nats-server buffers per subscriber connection (and
 * cuts off a slow consumer), so one subscriber that stops reading never slows this publisher or
 * the other subscribers.
 */
import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node";

export interface BatchPublisher {
  /** True when a batch handed over now would go out without piling up behind a slow connection. */
  canPublish(): boolean;
  /**
   * Hands a batch to the transport; throws if the transport refuses it (closed, over max_payload).
   * The caller reuses `payload`'s memory after the next microtask checkpoint, so an implementation
   * copies it by then (nats.js packs its outbound buffer in a microtask queued by the publish, or
   * at once) or sends it synchronously.
   */
  publish(subject: string, payload: Uint8Array, headers: MsgHdrs): void;
  /** Bytes handed over and not yet acknowledged. */
  readonly inFlightBytes: number;
  /** Largest payload the transport accepts (headers included), if it says. */
  readonly maxPayload: number | undefined;
  /** Resolves once everything handed over is acknowledged (or the connection failed). */
  flush(): Promise<void>;
}

export interface NatsPublisherOptions {
  nc: NatsConnection;
  /** Unacknowledged bytes beyond which `canPublish` is false. Default 8 MiB. */
  maxInFlightBytes?: number;
  /** A PING after this many bytes. Default a quarter of maxInFlightBytes. */
  ackEveryBytes?: number;
  /** Whether the connection is up (default: not closed); while false nothing is published. */
  isConnected?: () => boolean;
  /** Called when acknowledgements opened the window again. */
  onWritable?: () => void;
}

export class NatsPublisher implements BatchPublisher {
  readonly #nc: NatsConnection;
  readonly #maxInFlight: number;
  readonly #ackEvery: number;
  readonly #isConnected: () => boolean;
  readonly #onWritable: (() => void) | undefined;
  #published = 0;
  #acked = 0;
  #pinged = 0;

  constructor(opts: NatsPublisherOptions) {
    this.#nc = opts.nc;
    this.#maxInFlight = opts.maxInFlightBytes ?? 8 << 20;
    this.#ackEvery = Math.max(
      1,
      Math.min(opts.ackEveryBytes ?? this.#maxInFlight / 4, this.#maxInFlight / 2),
    );
    this.#isConnected = opts.isConnected ?? (() => !opts.nc.isClosed());
    this.#onWritable = opts.onWritable;
  }

  get inFlightBytes(): number {
    return this.#published - this.#acked;
  }

  get maxPayload(): number | undefined {
    return this.#nc.info?.max_payload;
  }

  canPublish(): boolean {
    return this.#published - this.#acked < this.#maxInFlight && this.#isConnected();
  }

  publish(subject: string, payload: Uint8Array, headers: MsgHdrs): void {
    this.#nc.publish(subject, payload, { headers });
    this.#published += payload.length;
    if (this.#published - this.#pinged >= this.#ackEvery) this.#ping();
  }

  #ping(): void {
    const mark = this.#published;
    this.#pinged = mark;
    this.#nc.flush().then(
      () => {
        if (mark > this.#acked) this.#acked = mark;
        this.#onWritable?.();
      },
      () => {
        // The connection dropped (nats.js rejects pending PONGs): what was in flight is lost or
        // resent by nobody; start counting afresh so the window reopens after the reconnect.
        if (mark > this.#acked) this.#acked = mark;
        this.#onWritable?.();
      },
    );
  }

  async flush(): Promise<void> {
    if (this.#nc.isClosed()) return;
    const mark = this.#published;
    this.#pinged = mark;
    try {
      await this.#nc.flush();
    } catch {
      // closed or disconnected: nothing more will be acknowledged
    }
    if (mark > this.#acked) this.#acked = mark;
  }
}
