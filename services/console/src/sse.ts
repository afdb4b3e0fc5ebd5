/**
 * Server-Sent Events to the pages (the WHATWG HTML "Server-sent events" section): `event:` and
 * `data:` lines, a blank line after each message. Every message is serialized once for all pages.
 *
 *     const hub = new SseHub({ maxClients: 32, maxBufferBytes: 1 << 20 });
 *     hub.open(req, res, [["snapshot", state]]);    // false (and a 503) when full
 *     hub.broadcast("rates", { t, rates });
 *
 * A page that stops reading is cut off once `maxBufferBytes` wait unsent on its socket, instead of
 * growing the server's memory: its EventSource reconnects by itself and gets a fresh snapshot.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export interface SseHubOptions {
  maxClients: number;
  maxBufferBytes: number;
  /** A comment line this often keeps proxies from closing an idle stream; default 15 s. */
  heartbeatMs?: number;
  /** Told when a page is cut off for not reading. */
  onSlowClient?: () => void;
}

/** One SSE message: `event: <name>` and its JSON data. */
export function sseMessage(event: string, data: unknown): string {
  // JSON.stringify escapes line breaks inside strings, so the data is one `data:` line.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export class SseHub {
  readonly #opts: SseHubOptions;
  readonly #clients = new Set<ServerResponse>();
  readonly #heartbeat: NodeJS.Timeout;
  #closed = false;

  constructor(opts: SseHubOptions) {
    this.#opts = opts;
    this.#heartbeat = setInterval(() => this.#write(": ping\n\n"), opts.heartbeatMs ?? 15_000);
    this.#heartbeat.unref();
  }

  get size(): number {
    return this.#clients.size;
  }

  /** Starts a stream on `res` with `initial` messages; false when the hub is full or closed (then a 503 was sent). */
  open(req: IncomingMessage, res: ServerResponse, initial: readonly (readonly [string, unknown])[]): boolean {
    if (this.#closed || this.#clients.size >= this.#opts.maxClients) {
      res.writeHead(503, {
        "content-type": "application/json",
        "retry-after": "5",
        "cache-control": "no-store",
      });
      res.end(
        JSON.stringify({
          error: `at most ${this.#opts.maxClients} live pages at once (CONSOLE_MAX_CLIENTS)`,
        }),
      );
      return false;
    }
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      // Proxies such as nginx buffer responses unless told otherwise.
      "x-accel-buffering": "no",
    });
    res.write(`retry: 2000\n\n${initial.map(([e, d]) => sseMessage(e, d)).join("")}`);
    this.#clients.add(res);
    const drop = () => this.#clients.delete(res);
    req.on("close", drop);
    res.on("close", drop);
    return true;
  }

  broadcast(event: string, data: unknown): void {
    if (this.#clients.size === 0) return;
    this.#write(sseMessage(event, data));
  }

  /** Ends every stream; later opens are refused. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }

  #write(text: string): void {
    for (const res of this.#clients) {
      if (res.writableLength > this.#opts.maxBufferBytes) {
        this.#clients.delete(res);
        this.#opts.onSlowClient?.();
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }
}
