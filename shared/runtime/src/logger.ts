/**
 * The one logger every ovntap program uses: pino, JSON lines on stdout, base fields
 * `{service, pid, hostname}`, secrets masked, written synchronously.
 *
 *   const log = createLogger({ name: "intake", level: config.LOG_LEVEL });
 *   log.info({ mirror, key }, "mirror applied");   // constant message, data in fields
 *   flushLogger(log);                              // before process.exit
 *
 * Synchronous writes: pino's asynchronous destination buffers lines and loses the last
 * ones when the process dies (a crash, process.exit in a signal handler). ovntap's
 * services log little, so the cost of a write(2) per line buys complete logs.
 */
import { hostname } from "node:os";
import { pino, type DestinationStream, type Logger as PinoLogger } from "pino";
import { redactSecrets, redactUrl } from "./redact.js";

export type Logger = PinoLogger;

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /** Service name, logged as `service` on every line. */
  name: string;
  level?: LogLevel;
  /** Where lines go; a synchronous stdout destination by default. Tests pass a stream to read them. */
  destination?: DestinationStream;
  /** Extra fields on every line (e.g. `{ node }` for the node agent). */
  base?: Record<string, unknown>;
  /** Extra pino redaction paths, on top of the key- and URL-based masking always applied. */
  redact?: string[];
}

export function createLogger(opts: LoggerOptions): Logger {
  const destination = opts.destination ?? pino.destination({ dest: 1, sync: true });
  return pino(
    {
      level: opts.level ?? "info",
      base: { service: opts.name, pid: process.pid, hostname: hostname(), ...opts.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        // Label, not number: log pipelines and humans both read "warn" more easily than 40.
        level: (label) => ({ level: label }),
        bindings: (bindings) => redactSecrets(bindings),
        log: (record) => redactSecrets(record),
      },
      // pino applies the bindings formatter to the root logger only, and error messages
      // are serialized after the log formatter: scrubbing URLs in the finished line covers
      // child bindings (log.child({ url })) and errors too.
      hooks: { streamWrite: redactUrl },
      ...(opts.redact?.length ? { redact: { paths: opts.redact, censor: "***" } } : {}),
    },
    destination,
  );
}

/**
 * Writes out anything the logger's destination still holds. A no-op for the default
 * synchronous destination, needed for buffered ones; never throws, because it runs on
 * the way out of the process where nothing more can be done about a failed write.
 */
export function flushLogger(logger: Logger): void {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
    { flushSync?: () => void } | undefined;
  try {
    stream?.flushSync?.();
  } catch {
    /* the destination is closed or not yet open: nothing left to flush */
  }
}
