/**
 * PCAP-over-IP (NetworkMiner's name for it; Wireshark `-i TCP@host:57012`, Zeek, Arkime's
 * `pcap-over-ip-client` reader): a TCP listener that writes a classic pcap stream — one global
 * header, then records — to every client, from the batches the pipeline seals.
 *
 *     const server = await PcapOverIpServer.start({ host: "0.0.0.0", port: 57012, logger });
 *     pipeline = new CapturePipeline({ …, onBatch: (b) => server.offer(b) });
 *
 * Choosing a mirror: a client that sends nothing (Wireshark does not) gets every mirror this
 * exporter sees. Within `selectTimeoutMs` (300 ms) of connecting, a client may send one line:
 *
 *     MIRROR <namespace>/<name>\n     only that mirror
 *     MIRROR *\n                      every mirror (the default)
 *     MIRROR _unknown\n               frames whose key maps to no mirror
 *
 * (`printf 'MIRROR shop/web\n' | nc host 57012 | tcpdump -r -`.) Anything else closes the
 * connection. The stream starts when the line has arrived or the time is up: the global header
 * (ns timestamps, little-endian, snaplen 65535, LINKTYPE_ETHERNET), then whole records only.
 * Mirrored frames that are not Ethernet (GRE carrying IP) are not sent: one stream has one link type.
 *
 * A slow client is dropped from, never waited for: when its socket holds more than
 * `clientBufferBytes` unsent, further batches skip it (counted in `drops` and per client in the
 * log when it leaves). Capture never slows down for a TCP client.
 */
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import type { Logger } from "@ovntap/runtime";
import type { SealedBatch } from "./pipeline.js";

export interface PcapOverIpOptions {
  /** Address to bind. */
  host: string;
  /** 0 takes an ephemeral port (see `port`). */
  port: number;
  logger: Logger;
  /** How long a new client may take to send its MIRROR line. Default 300 ms. */
  selectTimeoutMs?: number;
  /** Unsent bytes per client beyond which batches skip it. Default 16 MiB. */
  clientBufferBytes?: number;
  /** Connections beyond this are refused. Default 64. */
  maxClients?: number;
}

const PCAP_GLOBAL_HEADER = (() => {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(0xa1b23c4d, 0); // nanosecond timestamps
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeUInt32LE(65535, 16);
  b.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  return b;
})();
const LINKTYPE_ETHERNET = 1;
const MAX_LINE = 512;
const SELECT_RE = /^MIRROR\s+(\*|_unknown|[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9]*[a-z0-9])?)\s*$/i;

interface Client {
  readonly socket: Socket;
  readonly peer: string;
  /** undefined while selecting; "*" every mirror; "_unknown"; or `<ns>/<name>`. */
  selection: string | undefined;
  packets: number;
  drops: number;
}

export class PcapOverIpServer {
  readonly #server: Server;
  readonly #log: Logger;
  readonly #clients = new Set<Client>();
  readonly #clientBuffer: number;
  /** Records not sent to a client because its socket was backed up. */
  drops = 0;
  /** Records not sent because their link type is not Ethernet. */
  skipped = 0;

  private constructor(server: Server, log: Logger, clientBuffer: number) {
    this.#server = server;
    this.#log = log;
    this.#clientBuffer = clientBuffer;
  }

  static async start(opts: PcapOverIpOptions): Promise<PcapOverIpServer> {
    const log = opts.logger.child({ component: "pcap-over-ip" });
    const server = createServer();
    server.maxConnections = opts.maxClients ?? 64;
    const self = new PcapOverIpServer(server, log, opts.clientBufferBytes ?? 16 << 20);
    const selectMs = opts.selectTimeoutMs ?? 300;
    server.on("connection", (socket) => self.#accept(socket, selectMs));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port, opts.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (err) => log.error({ err }, "pcap-over-ip listener failed"));
    log.info({ host: opts.host, port: self.port }, "pcap-over-ip listening");
    return self;
  }

  get port(): number {
    const a = this.#server.address();
    return typeof a === "object" && a !== null ? a.port : 0;
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  #accept(socket: Socket, selectMs: number): void {
    socket.setNoDelay(true);
    const client: Client = {
      socket,
      peer: `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`,
      selection: undefined,
      packets: 0,
      drops: 0,
    };
    this.#clients.add(client);
    let line = "";
    const begin = (selection: string) => {
      if (client.selection !== undefined || socket.destroyed) return;
      clearTimeout(timer);
      client.selection = selection;
      socket.write(PCAP_GLOBAL_HEADER);
      this.#log.info({ peer: client.peer, selection }, "pcap-over-ip client streaming");
    };
    const timer = setTimeout(() => begin("*"), selectMs);
    socket.on("data", (chunk: Buffer) => {
      if (client.selection !== undefined) return; // what a client sends later is ignored
      line += chunk.toString("latin1");
      const nl = line.indexOf("\n");
      if (nl === -1 && line.length <= MAX_LINE) return;
      const m = nl === -1 ? null : SELECT_RE.exec(line.slice(0, nl).replace(/\r$/, ""));
      if (m === null) {
        this.#log.warn(
          { peer: client.peer },
          "pcap-over-ip client sent something other than 'MIRROR <ns>/<name>'",
        );
        clearTimeout(timer);
        socket.destroy();
        return;
      }
      const sel = m[1]!;
      begin(sel === "*" || sel === "_unknown" ? sel : sel.toLowerCase());
    });
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      clearTimeout(timer);
      this.#clients.delete(client);
      this.#log.info(
        { peer: client.peer, selection: client.selection, packets: client.packets, drops: client.drops },
        "pcap-over-ip client left",
      );
    });
  }

  /** A sealed batch: written to every client that selected its mirror and keeps up. */
  offer(batch: SealedBatch): void {
    if (this.#clients.size === 0) return;
    if (batch.linkType !== LINKTYPE_ETHERNET) {
      this.skipped += batch.count;
      return;
    }
    // The pipeline reuses the payload's memory; sockets keep what they are given until it is sent.
    let data: Buffer | undefined;
    for (const c of this.#clients) {
      const sel = c.selection;
      if (sel === undefined || c.socket.destroyed) continue;
      const wanted = batch.mirror === undefined ? sel === "_unknown" : sel === "*" || sel === batch.mirror;
      if (!wanted) continue;
      if (c.socket.writableLength + batch.payload.length > this.#clientBuffer) {
        c.drops += batch.count;
        this.drops += batch.count;
        continue;
      }
      data ??= Buffer.from(batch.payload);
      c.socket.write(data);
      c.packets += batch.count;
    }
  }

  async close(): Promise<void> {
    for (const c of this.#clients) c.socket.end();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      // Clients that do not read their last bytes are not waited for.
      setTimeout(() => {
        for (const c of this.#clients) c.socket.destroy();
      }, 1_000).unref();
    });
  }
}
