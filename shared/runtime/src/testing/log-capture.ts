/**
 * A pino destination that keeps every line in memory, parsed, so tests assert on what a
 * component logged (and never scrape stdout).
 *
 *   const logs = captureLogs();
 *   const logger = createLogger({ name: "t", level: "debug", destination: logs.stream });
 *   await logs.waitFor((r) => r.msg === "nats reconnected");
 */
import { Writable } from "node:stream";

export interface LogRecord {
  level: string;
  msg?: string;
  [field: string]: unknown;
}

export interface LogCapture {
  readonly stream: Writable;
  readonly records: readonly LogRecord[];
  /** Records whose message is `msg`. */
  messages(msg: string): LogRecord[];
  /** Resolves with the first record (already logged or future) matching `match`; rejects after `timeoutMs`. */
  waitFor(match: (r: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
}

export function captureLogs(): LogCapture {
  const records: LogRecord[] = [];
  const waiters = new Set<{ match: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }>();
  let partial = "";
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      partial += chunk.toString();
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        if (!line.trim()) continue;
        const record = JSON.parse(line) as LogRecord;
        records.push(record);
        for (const w of waiters) {
          if (w.match(record)) {
            waiters.delete(w);
            w.resolve(record);
          }
        }
      }
      done();
    },
  });
  return {
    stream,
    records,
    messages: (msg) => records.filter((r) => r.msg === msg),
    waitFor(match, timeoutMs = 30_000) {
      const seen = records.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = {
          match,
          resolve: (r: LogRecord) => {
            clearTimeout(timer);
            resolve(r);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no matching log record within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
  };
}
