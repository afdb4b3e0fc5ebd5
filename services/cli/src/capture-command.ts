/**
 * The `ovntap capture` verb: flags → a checked plan → runCapture → the closing summary and exit code.
 *
 *   ovntap capture web -n shop                         # one line per packet, like tcpdump
 *   ovntap capture web -n shop -w web.pcap --count 100
 *   ovntap capture web -n shop -w - --filter 'tcp port 443' | tshark -r -
 *   ovntap capture web -n shop -w web.pcapng --pcapng --duration 30s
 *
 * Flags are all checked before anything connects; a bad `--filter` points at its offending token.
 */
import { MirrorName, Namespace, validate } from "@ovntap/contracts";
import { compileFilter, FilterSyntaxError } from "@ovntap/packet";
import type { FrameFilter } from "@ovntap/packet";
import { oneName } from "./args.js";
import type { Values } from "./args.js";
import {
  CaptureError,
  counterLine,
  describeMirror,
  fileSink,
  newStats,
  pcapngOutput,
  pcapOutput,
  printOutput,
  runCapture,
  stopText,
  streamSink,
  summaryLine,
} from "./capture.js";
import type { ByteSink, ByteStream, CaptureOutput, CaptureStats, MirrorDescription } from "./capture.js";
import type { Session } from "./client.js";
import { describeCause, EXIT, ReplyError, UsageError } from "./errors.js";
import { keyText, sinkText } from "./format.js";
import type { MirrorView } from "./format.js";
import { parseDurationMs, parseInteger } from "./values.js";

/** How often the live counter is redrawn on a terminal. */
const COUNTER_INTERVAL_MS = 250;

/** Standard output or error: text, bytes too for `-w -` (with backpressure), maybe a terminal. */
export interface CaptureStdio extends ByteStream {
  write(chunk: string | Uint8Array): unknown;
  readonly isTTY?: boolean;
}

export interface CaptureCommand {
  readonly values: Values;
  readonly positionals: readonly string[];
  /** From -n, $OVNTAP_NAMESPACE, or the default. */
  readonly namespace: string;
  readonly stdout: CaptureStdio;
  readonly stderr: CaptureStdio;
  readonly signal?: AbortSignal;
  /** The CLI's NATS session (long-lived: a capture outlasts a reconnect). */
  readonly withSession: <T>(fn: (session: Session, timeoutMs: number) => Promise<T>) => Promise<T>;
  /** `get` through intake, for the pcapng interface description. */
  readonly getMirror: (
    session: Session,
    namespace: string,
    name: string,
    timeoutMs: number,
  ) => Promise<MirrorView>;
  readonly version: string;
}

interface Plan {
  readonly mirror: string;
  readonly write: string | undefined;
  readonly pcapng: boolean;
  readonly count: number | undefined;
  readonly durationMs: number | undefined;
  readonly filter: FrameFilter | undefined;
}

function plan(c: CaptureCommand): Plan {
  const { values } = c;
  const mirror = oneName("capture", values, c.positionals, "MIRROR");
  const m = validate(MirrorName, mirror);
  if (!m.ok) throw new UsageError(`MIRROR: ${m.error.issues[0]?.message ?? "invalid"}`, "capture");
  const n = validate(Namespace, c.namespace);
  if (!n.ok) throw new UsageError(`--namespace: ${n.error.issues[0]?.message ?? "invalid"}`, "capture");
  const write = values.write;
  if (write === "")
    throw new UsageError("-w/--write: needs a file name, or '-' for standard output", "capture");
  if (values.pcapng && write === undefined)
    throw new UsageError("--pcapng goes with -w FILE (without -w, packets are printed)", "capture");
  let count: number | undefined;
  if (values.count !== undefined) {
    count = parseInteger("--count", values.count, "capture");
    if (count < 1) throw new UsageError("--count: must be at least 1", "capture");
  }
  let durationMs: number | undefined;
  if (values.duration !== undefined) {
    durationMs = parseDurationMs("--duration", values.duration, "capture");
    if (durationMs < 1) throw new UsageError("--duration: must be more than 0", "capture");
  }
  let filter: FrameFilter | undefined;
  if (values.filter !== undefined) {
    try {
      filter = compileFilter(values.filter);
    } catch (e) {
      if (!(e instanceof FilterSyntaxError)) throw e;
      const pointer = e.pointer
        .split("\n")
        .map((l) => `  ${l}`)
        .join("\n");
      throw new UsageError(`--filter: ${e.message}\n${pointer}`, "capture");
    }
  }
  return { mirror, write, pcapng: values.pcapng === true, count, durationMs, filter };
}

/** A stderr line that keeps clear of the live counter when there is one. */
class StatusLine {
  #shown = false;
  constructor(
    private readonly stderr: CaptureStdio,
    readonly live: boolean,
  ) {}

  /** A line that stays (a notice, the summary). */
  line(text: string): void {
    this.stderr.write(`${this.#shown ? "\r\x1b[K" : ""}${text}\n`);
    this.#shown = false;
  }

  /** The counter, redrawn in place. */
  counter(text: string): void {
    if (!this.live) return;
    this.stderr.write(`\r\x1b[K${text}`);
    this.#shown = true;
  }
}

async function fetchDescription(
  c: CaptureCommand,
  session: Session,
  timeoutMs: number,
  mirror: string,
): Promise<MirrorDescription> {
  try {
    const view = await c.getMirror(session, c.namespace, mirror, timeoutMs);
    return describeMirror(c.namespace, mirror, {
      spec: view.mirror.spec,
      generation: view.mirror.generation,
      sink: sinkText(view.mirror.spec.target, view.status),
      key: keyText(view.mirror.spec.target, view.status),
    });
  } catch (e) {
    const why = e instanceof ReplyError ? e.error.message : describeCause(e);
    return describeMirror(c.namespace, mirror, { error: why });
  }
}

export async function captureCommand(c: CaptureCommand): Promise<number> {
  const p = plan(c);
  const toStdout = p.write === "-";
  if (toStdout && c.stdout.isTTY === true)
    throw new UsageError(
      "-w -: standard output is a terminal; pipe it (… | tshark -r -) or write a file with -w FILE",
      "capture",
    );
  // The live counter goes with a pcap being written, and only to a terminal; else one summary line.
  const status = new StatusLine(c.stderr, p.write !== undefined && c.stderr.isTTY === true);
  const say = (text: string) => status.line(`ovntap capture: ${text}`);

  // Open the file before subscribing: a path that cannot be written fails now, not at the first packet.
  let sink: ByteSink | undefined;
  try {
    if (p.write !== undefined) sink = toStdout ? streamSink(c.stdout, c.signal) : await fileSink(p.write);
  } catch (e) {
    if (e instanceof CaptureError) {
      c.stderr.write(`ovntap capture: ${e.message}\n`);
      return EXIT.FAILED;
    }
    throw e;
  }

  return c.withSession(async (session, timeoutMs) => {
    let output: CaptureOutput;
    if (sink === undefined) output = printOutput((text) => void c.stdout.write(text));
    else if (p.pcapng)
      output = await pcapngOutput(
        sink,
        { namespace: c.namespace, name: p.mirror },
        () => fetchDescription(c, session, timeoutMs, p.mirror),
        `ovntap ${c.version}`,
      );
    else
      output = pcapOutput(sink, (h, fileLinkType) =>
        say(
          `node ${h.node}: skipped a batch of link type ${h.linkType}: the pcap holds link type ${fileLinkType} (--pcapng keeps both)`,
        ),
      );

    let last = 0;
    const live = (s: CaptureStats) => {
      const t = Date.now();
      if (t - last < COUNTER_INTERVAL_MS) return;
      last = t;
      status.counter(counterLine(s));
    };
    try {
      const { stats, stoppedBy } = await runCapture(session.nc, {
        namespace: c.namespace,
        mirror: p.mirror,
        output,
        ...(p.count !== undefined ? { count: p.count } : {}),
        ...(p.durationMs !== undefined ? { durationMs: p.durationMs } : {}),
        ...(p.filter !== undefined ? { filter: p.filter } : {}),
        ...(c.signal !== undefined ? { signal: c.signal } : {}),
        notice: say,
        onBatch: live,
        // Like tcpdump's "listening on": from here on nothing published is missed.
        onSubscribed: (subject) => {
          const into = toStdout ? " to standard output" : p.write !== undefined ? ` into ${p.write}` : "";
          say(
            `capturing ${c.namespace}/${p.mirror} from every node (${subject})${into}${p.pcapng ? " as pcapng" : ""}`,
          );
          status.counter(counterLine(newStats()));
        },
      });
      say(summaryLine(stats, stopText(stoppedBy, p.count, p.durationMs)));
      return EXIT.OK;
    } catch (e) {
      if (e instanceof CaptureError) {
        say(e.message);
        return EXIT.FAILED;
      }
      throw e;
    }
  });
}
