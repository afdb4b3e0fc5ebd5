/**
 * Live capture with libpcap through the `cap` binding: promiscuous, immediate mode, snaplen 65535,
 * a BPF filter (`ip proto 47 or ip6 proto 47` on a transport interface; none on a local mirror
 * interface), the kernel ring of `bufferBytes`.
 *
 *     const src = new LiveCaptureSource({ device: "eth1", filter: "ip proto 47 or ip6 proto 47" });
 *     void src.run(pipeline);     // until src.stop()
 *
 * What the binding does not give, and what follows from it:
 * - no timestamps: each frame is stamped with a nanosecond wall clock when it reaches JavaScript
 *   (`WallClock`), so timestamps carry the event loop's delay, not the kernel's arrival time;
 * - no `pcap_stats`: drops in the kernel ring are not visible; only the exporter's own drops
 *   (queue full, publish errors) are counted;
 * - one shared buffer for every frame (the STYLE.md trap): the pipeline copies each frame before
 *   `ingest` returns.
 * The binding delivers frames from libuv's poll callback, one synchronous call per frame, so a
 * flood keeps the event loop busy; the pipeline then cannot publish, its queue fills and it drops,
 * counted, rather than slowing the capture.
 */
import { createRequire } from "node:module";
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from "@ovntap/packet";
import type { CaptureSource, FrameSink, SourceResult } from "./source.js";

/** The parts of `cap` (it ships no types) this source uses. */
interface CapHandle {
  open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
  close(): void;
  on(event: "packet", listener: (nbytes: number, truncated: boolean) => void): void;
  removeAllListeners(event?: string): void;
}
interface CapModule {
  Cap: (new () => CapHandle) & { deviceList(): { name: string }[] };
}

let capModule: CapModule | undefined;
function loadCap(): CapModule {
  capModule ??= createRequire(import.meta.url)("cap") as CapModule;
  return capModule;
}

/** The interfaces libpcap can open. */
export function captureDevices(): string[] {
  return loadCap()
    .Cap.deviceList()
    .map((d) => d.name);
}

/**
 * Nanoseconds since the epoch without an allocation per read: the epoch offset is taken once
 * (Date.now() + performance.timeOrigin agree to well under a millisecond) and the monotonic
 * `performance.now()` carries it forward, so the clock never steps backwards with NTP.
 */
export class WallClock {
  sec = 0;
  nsec = 0;
  readonly #originSec: number;
  readonly #originNs: number;
  constructor() {
    const originMs = performance.timeOrigin;
    this.#originSec = Math.floor(originMs / 1000);
    this.#originNs = Math.round((originMs - this.#originSec * 1000) * 1e6);
  }
  now(): void {
    const ns = this.#originNs + performance.now() * 1e6;
    const whole = Math.floor(ns / 1e9);
    this.sec = this.#originSec + whole;
    this.nsec = Math.floor(ns - whole * 1e9);
  }
}

export class LiveCaptureError extends Error {
  override name = "LiveCaptureError";
}

export interface LiveCaptureOptions {
  /** Interface name (CAPTURE_INTERFACE). */
  device: string;
  /** BPF expression; empty for every frame. */
  filter: string;
  /** Kernel capture buffer (pcap_set_buffer_size). Default 32 MiB. */
  bufferBytes?: number;
}

const LINK_TYPES: Readonly<Record<string, number>> = { ETHERNET: LINKTYPE_ETHERNET, RAW: LINKTYPE_RAW };

export class LiveCaptureSource implements CaptureSource {
  readonly description: string;
  readonly #opts: LiveCaptureOptions;
  #cap: CapHandle | undefined;
  #done: (() => void) | undefined;
  #frames = 0;
  #bytes = 0;

  constructor(opts: LiveCaptureOptions) {
    this.#opts = opts;
    this.description = `interface ${opts.device}${opts.filter ? ` (${opts.filter})` : ""}`;
  }

  /** Frames seen so far. */
  get frames(): number {
    return this.#frames;
  }

  async run(sink: FrameSink): Promise<SourceResult> {
    const { Cap } = loadCap();
    const cap = new Cap();
    // One frame at a time (65535 is the binding's snaplen), in the sink's arena when it has one.
    const buffer = sink.frameBuffer?.(65535) ?? Buffer.alloc(65535);
    let type: string;
    try {
      type = cap.open(this.#opts.device, this.#opts.filter, this.#opts.bufferBytes ?? 32 << 20, buffer);
    } catch (err) {
      throw new LiveCaptureError(
        `cannot capture on ${JSON.stringify(this.#opts.device)}: ${err instanceof Error ? err.message : String(err)}; ` +
          `check CAPTURE_INTERFACE (one of: ${safeDevices().join(", ")}), CAPTURE_BPF, and CAP_NET_RAW`,
        { cause: err },
      );
    }
    const linkType = LINK_TYPES[type];
    if (linkType === undefined) {
      cap.close();
      throw new LiveCaptureError(
        `interface ${JSON.stringify(this.#opts.device)} has link type ${type}; the exporter reads Ethernet or raw IP captures (not "any")`,
      );
    }
    sink.linkType = linkType;
    this.#cap = cap;
    const clock = new WallClock();
    cap.on("packet", (nbytes) => {
      clock.now();
      this.#frames++;
      this.#bytes += nbytes;
      sink.ingest(buffer, 0, nbytes, nbytes, clock.sec, clock.nsec);
    });
    return new Promise((resolve) => {
      this.#done = () => resolve({ frames: this.#frames, bytes: this.#bytes });
    });
  }

  stop(): void {
    const cap = this.#cap;
    this.#cap = undefined;
    if (cap !== undefined) {
      cap.removeAllListeners("packet");
      cap.close();
    }
    this.#done?.();
  }
}

function safeDevices(): string[] {
  try {
    return captureDevices();
  } catch {
    return [];
  }
}
