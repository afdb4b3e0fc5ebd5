/**
 * JSON-RPC 1.0 over a stream, as OVSDB uses it (RFC 7047 §4): messages are JSON values
 * written back to back, with no length prefix and no delimiter. This parser finds value
 * boundaries incrementally by tracking strings, escapes and nesting depth over raw bytes,
 * so a chunk may end anywhere — inside a string, inside an escape, inside a multi-byte
 * UTF-8 character — and a value is decoded exactly once, when its last byte arrives.
 *
 *   const parser = new JsonStreamParser((value) => handle(value));
 *   socket.on("data", (chunk) => parser.push(chunk));
 *
 * All structural bytes (`{}[]",\`) are ASCII and UTF-8 continuation bytes are >= 0x80,
 * so scanning bytes never mistakes part of a character for structure. Top-level strings,
 * objects and arrays end at their closing byte; top-level bare literals (numbers, true,
 * false, null) end at the next whitespace or structural byte, or at `end()`.
 */
import { ProtocolError } from "../errors.js";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

function isWhitespace(b: number): boolean {
  // RFC 8259 §2: space, tab, line feed, carriage return.
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

function isStructural(b: number): boolean {
  return (
    b === OPEN_BRACE ||
    b === CLOSE_BRACE ||
    b === OPEN_BRACKET ||
    b === CLOSE_BRACKET ||
    b === QUOTE ||
    b === COMMA ||
    b === COLON
  );
}

export interface JsonStreamParserOptions {
  /** Refuse a single value larger than this many bytes (a runaway peer). Default: unlimited. */
  maxValueBytes?: number;
}

export class JsonStreamParser {
  /** Bytes of the value in progress that arrived in earlier chunks. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Nesting depth inside the current object/array; 0 between values. */
  private depth = 0;
  private inValue = false;
  private inString = false;
  private escaped = false;
  private inLiteral = false;
  private readonly maxValueBytes: number;

  constructor(
    private readonly onValue: (value: unknown) => void,
    options: JsonStreamParserOptions = {},
  ) {
    this.maxValueBytes = options.maxValueBytes ?? Number.POSITIVE_INFINITY;
  }

  /** Bytes held for a value not yet complete. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Feeds a chunk; calls `onValue` once per complete value, in order. Throws ProtocolError
   * on bad input (the stream cannot be resynchronised: close it). `onValue` must not throw.
   */
  push(chunk: Uint8Array): void {
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const len = buf.length;
    // Start of the current value within this chunk (0 when it began in an earlier chunk).
    let start = 0;
    let i = 0;
    let nextQuote = -2; // -2: not searched yet
    let nextBackslash = -2;
    while (i < len) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        // Skip to the next quote or backslash: long strings are the common case. The
        // positions found are remembered (-1: none left in this chunk), so a string full
        // of escapes is still scanned once, not once per escape.
        if (nextQuote !== -1 && nextQuote < i) nextQuote = buf.indexOf(QUOTE, i);
        if (nextBackslash !== -1 && nextBackslash < i) nextBackslash = buf.indexOf(BACKSLASH, i);
        const q = nextQuote;
        const bs = nextBackslash;
        if (q === -1 && bs === -1) break; // the string continues in the next chunk
        if (bs !== -1 && (q === -1 || bs < q)) {
          this.escaped = true;
          i = bs + 1;
          continue;
        }
        this.inString = false;
        i = q + 1;
        if (this.depth === 0) {
          this.complete(buf, start, i);
          start = i;
        }
        continue;
      }
      const b = buf[i] as number;
      if (this.inLiteral) {
        if (isWhitespace(b) || isStructural(b)) {
          this.complete(buf, start, i);
          start = i;
          continue; // re-examine this byte between values
        }
        i++;
        continue;
      }
      if (!this.inValue) {
        if (isWhitespace(b)) {
          i++;
          start = i;
          continue;
        }
        if (b === CLOSE_BRACE || b === CLOSE_BRACKET || b === COMMA || b === COLON) {
          this.reset();
          throw new ProtocolError(`unexpected '${String.fromCharCode(b)}' between JSON values`);
        }
        this.inValue = true;
        start = i;
        if (b === OPEN_BRACE || b === OPEN_BRACKET) this.depth = 1;
        else if (b === QUOTE) this.inString = true;
        else this.inLiteral = true;
        i++;
        continue;
      }
      // Inside an object or array.
      if (b === QUOTE) this.inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) this.depth++;
      else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        this.depth--;
        if (this.depth === 0) {
          i++;
          this.complete(buf, start, i);
          start = i;
          continue;
        }
      }
      i++;
    }
    if (this.inValue && start < len) {
      const rest = buf.subarray(start, len);
      this.pending.push(rest);
      this.pendingBytes += rest.length;
      if (this.pendingBytes > this.maxValueBytes) {
        this.reset();
        throw new ProtocolError(`a JSON value exceeds ${this.maxValueBytes} bytes`);
      }
    }
  }

  /** The stream ended: completes a trailing bare literal, or throws if a value is cut off. */
  end(): void {
    if (this.inLiteral) {
      this.complete(Buffer.alloc(0), 0, 0);
      return;
    }
    if (this.inValue) {
      const n = this.pendingBytes;
      this.reset();
      throw new ProtocolError(`stream ended inside a JSON value (${n} bytes buffered)`);
    }
  }

  private reset(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.depth = 0;
    this.inValue = false;
    this.inString = false;
    this.escaped = false;
    this.inLiteral = false;
  }

  private complete(buf: Buffer, start: number, end: number): void {
    const tail = buf.subarray(start, end);
    const bytes = this.pending.length === 0 ? tail : Buffer.concat([...this.pending, tail]);
    this.reset();
    if (bytes.length > this.maxValueBytes) {
      throw new ProtocolError(`a JSON value exceeds ${this.maxValueBytes} bytes`);
    }
    const text = bytes.toString("utf8");
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new ProtocolError(`invalid JSON from peer: ${(err as Error).message}`, { cause: err });
    }
    this.onValue(value);
  }
}
