/**
 * The offline verbs, on capture files (no NATS, no server):
 *
 *   ovntap decode mirror.pcap                 # one tcpdump-style line per packet, tunnel first
 *   ovntap decode mirror.pcap --json | jq 'select(.error != null)'
 *   ovntap decap erspan.pcap -w inner.pcap --session 7
 *   tcpdump -i eth1 -w - 'ip proto 47' | ovntap decap - -w - | tshark -r -
 *
 * `decode` streams the file (pcap or pcapng, either byte order; `-` is standard input) and prints
 * one JSON object (`decodePacketRecord`, see @ovntap/packet) or one line per packet, in order.
 * `decap` writes the mirrored frames of every GRE / ERSPAN packet (`decapCapture`) and reports on
 * stderr what it read, wrote and left out — every packet is accounted for.
 */
import { createReadStream } from "node:fs";
import { resolve } from "node:path";
import {
  CaptureStreamReader,
  decapCapture,
  decodePacketRecord,
  formatDecapsulatedSummary,
  isNotEncapsulated,
} from "@ovntap/packet";
import type { DecapSink, DecapStats, DecodeFailure } from "@ovntap/packet";
import type { Values } from "./args.js";
import { timeOfDay } from "./capture.js";
import { describeCause, EXIT, UsageError } from "./errors.js";
import { parseInteger } from "./values.js";

/** Standard output: text for `decode`, bytes for `decap -w -`, with backpressure when it has it. */
export interface OfflineStdout {
  write(chunk: string | Uint8Array): unknown;
  once?(event: "drain", listener: () => void): unknown;
}

export interface OfflineCommand {
  readonly values: Values;
  readonly positionals: readonly string[];
  readonly stdout: OfflineStdout;
  readonly stderr: { write(chunk: string): unknown };
  /** Read for `-`. */
  readonly stdin?: AsyncIterable<Buffer | string>;
  /** Relative paths are resolved here. */
  readonly cwd: string;
}

/** A file or stream that cannot be read as a capture: exit 1 with this message. */
export class CaptureFileError extends Error {
  override readonly name = "CaptureFileError";
}

function inputOf(verb: "decode" | "decap", c: OfflineCommand): string {
  if (c.positionals.length !== 1) {
    throw new UsageError(
      c.positionals.length === 0
        ? "needs the capture FILE (pcap or pcapng; '-' reads standard input)"
        : `takes one FILE, got ${c.positionals.map((p) => JSON.stringify(p)).join(" ")}`,
      verb,
    );
  }
  const file = c.positionals[0]!;
  if (file === "-" && c.stdin === undefined)
    throw new UsageError("'-': there is no standard input here", verb);
  return file;
}

const toBuffer = (chunk: Buffer | string): Buffer => (typeof chunk === "string" ? Buffer.from(chunk) : chunk);

async function* chunksOf(file: string, c: OfflineCommand): AsyncGenerator<Buffer> {
  if (file === "-") {
    for await (const chunk of c.stdin!) yield toBuffer(chunk);
    return;
  }
  const stream = createReadStream(resolve(c.cwd, file), { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } catch (e) {
    throw new CaptureFileError(`cannot read ${file}: ${describeCause(e)}`, { cause: e });
  }
}

function describeFailure(where: string, f: DecodeFailure): string {
  if (f.reason === "bad-magic" && f.at === 0) return `${where} is not a pcap or pcapng file`;
  if (f.reason === "truncated")
    return `${where} ends inside a ${f.layer} record at byte ${f.at} (a cut file?)`;
  return `${where} is damaged: ${f.reason} in a ${f.layer} record at byte ${f.at}`;
}

/** Writes text, waiting when the stream says it is full. */
async function writeText(out: OfflineStdout, text: string): Promise<void> {
  if (text === "") return;
  if (out.write(text) !== false || typeof out.once !== "function") return;
  await new Promise<void>((r) => out.once!("drain", r));
}

/** `ovntap decode FILE [--json]`. */
export async function decodeCommand(c: OfflineCommand): Promise<number> {
  const file = inputOf("decode", c);
  const json = c.values.json === true;
  const where = file === "-" ? "standard input" : file;
  const reader = new CaptureStreamReader();
  let n = 0;
  try {
    for await (const chunk of chunksOf(file, c)) {
      const r = reader.push(chunk);
      let text = "";
      for (const p of r.packets) {
        n++;
        const rec = decodePacketRecord(p.data, p.linkType, p.originalLength, n);
        if (json) {
          text += `${JSON.stringify(rec)}\n`;
          continue;
        }
        let line = formatDecapsulatedSummary(p.data, p.linkType);
        // Name the problem when the summary does not already end with tcpdump's marker.
        if (rec.error !== null && !line.endsWith("]")) line += ` [${rec.error}]`;
        text += `${timeOfDay(p.seconds, p.nanos)} ${line}\n`;
      }
      await writeText(c.stdout, text);
      if (!r.ok) throw new CaptureFileError(describeFailure(where, r));
    }
    const tail = reader.end();
    if (tail !== undefined) throw new CaptureFileError(describeFailure(where, tail));
    return EXIT.OK;
  } catch (e) {
    if (!(e instanceof CaptureFileError)) throw e;
    c.stderr.write(`ovntap decode: ${e.message}${n > 0 ? ` (after ${n} packets)` : ""}\n`);
    return EXIT.FAILED;
  }
}

const MAX_KEY = 0xffffffff;
const MAX_SESSION = 1023;

interface DecapPlan {
  readonly input: string;
  readonly output: string;
  readonly format: "pcap" | "pcapng";
  readonly key: number | undefined;
  readonly session: number | undefined;
}

function decapPlan(c: OfflineCommand): DecapPlan {
  const input = inputOf("decap", c);
  const { values } = c;
  const output = values.write;
  if (output === undefined || output === "")
    throw new UsageError("needs -w FILE (the capture to write; '-' writes standard output)", "decap");
  if (output !== "-" && input !== "-" && resolve(c.cwd, output) === resolve(c.cwd, input))
    throw new UsageError(`-w ${output}: that is the input file; write to another file`, "decap");
  if (values.key !== undefined && values.session !== undefined)
    throw new UsageError("--key and --session select one tunnel each: give one of them", "decap");
  let key: number | undefined;
  if (values.key !== undefined) {
    key = parseInteger("--key", values.key, "decap");
    if (key < 0 || key > MAX_KEY) throw new UsageError(`--key: must be 0..${MAX_KEY} (a GRE key)`, "decap");
  }
  let session: number | undefined;
  if (values.session !== undefined) {
    session = parseInteger("--session", values.session, "decap");
    if (session < 0 || session > MAX_SESSION)
      throw new UsageError(`--session: must be 0..${MAX_SESSION} (an ERSPAN session id)`, "decap");
  }
  const format = values.pcapng === true || /\.pcapng$/i.test(output) ? "pcapng" : "pcap";
  return { input, output, format, key, session };
}

function stdoutSink(out: OfflineStdout): DecapSink {
  return {
    async write(bytes) {
      // The stream may hold the chunk until it is flushed: hand it a copy of the reused buffer.
      if (out.write(Buffer.from(bytes)) !== false || typeof out.once !== "function") return;
      await new Promise<void>((r) => out.once!("drain", r));
    },
  };
}

const LINK_NAMES: Readonly<Record<number, string>> = { 1: "Ethernet", 101: "raw IP" };

function counts(m: Record<string, number>): string {
  return Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
}

/** The closing report: every packet read is in exactly one of its numbers. */
export function decapSummary(s: DecapStats, output: string, p: { key?: number; session?: number }): string[] {
  const lines: string[] = [];
  const t = s.tunnels;
  const to = output === "-" ? "standard output" : output;
  lines.push(
    `${s.packets} packets read, ${s.written} written to ${to} (${s.outputFormat}, ${s.linkTypes.map((l) => LINK_NAMES[l] ?? `link type ${l}`).join(" + ")}); unwrapped: GRE ${t.gre}, ERSPAN II ${t.erspan2}, ERSPAN III ${t.erspan3}`,
  );
  const notEncapsulated: Record<string, number> = {};
  const notUnwrapped: Record<string, number> = {};
  for (const [k, v] of Object.entries(s.failures))
    (isNotEncapsulated(k) ? notEncapsulated : notUnwrapped)[k] = v;
  const sum = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
  if (sum(notEncapsulated) > 0)
    lines.push(`not GRE/ERSPAN, left out: ${sum(notEncapsulated)} (${counts(notEncapsulated)})`);
  if (sum(notUnwrapped) > 0)
    lines.push(`malformed or not unwrapped, left out: ${sum(notUnwrapped)} (${counts(notUnwrapped)})`);
  if (s.otherTunnel > 0)
    lines.push(
      `other tunnels, left out: ${s.otherTunnel} (not ${p.key !== undefined ? `GRE key ${p.key}` : `ERSPAN session ${p.session}`})`,
    );
  if (s.linkTypeMismatch > 0)
    lines.push(
      `${s.linkTypeMismatch} mirrored frames left out: not ${LINK_NAMES[s.linkTypes[0] ?? 1] ?? "of the file's link type"}, and a pcap holds one link type; write pcapng (-w FILE.pcapng or --pcapng) to keep them`,
    );
  if (s.written === 0 && s.packets > 0 && s.linkTypeMismatch === 0)
    lines.push(
      s.otherTunnel > 0
        ? "nothing written: no packet of that tunnel"
        : "nothing written: no GRE or ERSPAN packet in the input",
    );
  return lines;
}

/** `ovntap decap IN -w OUT [--key K | --session S] [--pcapng]`. */
export async function decapCommand(c: OfflineCommand): Promise<number> {
  const p = decapPlan(c);
  const say = (text: string) => void c.stderr.write(`ovntap decap: ${text}\n`);
  const where = p.input === "-" ? "standard input" : p.input;
  let stats: DecapStats;
  try {
    stats = await decapCapture(
      p.input === "-" ? chunksOf("-", c) : resolve(c.cwd, p.input),
      p.output === "-" ? stdoutSink(c.stdout) : resolve(c.cwd, p.output),
      {
        format: p.format,
        ...(p.key !== undefined ? { key: p.key } : {}),
        ...(p.session !== undefined ? { session: p.session } : {}),
      },
    );
  } catch (e) {
    // fs errors name their path: the input's, or else the output's.
    const path = (e as { path?: unknown }).path;
    say(
      typeof path === "string" && path === resolve(c.cwd, p.input)
        ? `cannot read ${p.input}: ${describeCause(e)}`
        : typeof path === "string"
          ? `cannot write ${p.output}: ${describeCause(e)}`
          : describeCause(e),
    );
    return EXIT.FAILED;
  }
  if (stats.inputError !== undefined && stats.inputFormat === undefined) {
    say(describeFailure(where, stats.inputError));
    return EXIT.FAILED;
  }
  for (const line of decapSummary(stats, p.output, p)) say(line);
  if (stats.inputError !== undefined) {
    say(`${describeFailure(where, stats.inputError)}; the packets before it were written`);
    return EXIT.FAILED;
  }
  return stats.linkTypeMismatch > 0 ? EXIT.FAILED : EXIT.OK;
}
