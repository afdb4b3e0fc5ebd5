/**
 * The frame of every service's main.ts: configuration (exit 78 when invalid), logger,
 * graceful shutdown on SIGTERM/SIGINT, and a fatal log plus exit 1 for anything
 * uncaught.
 *
 *   // services/intake/src/main.ts
 *   await runMain("intake", { config: z.object({ ...natsEnv, ...redisEnv }) },
 *     async ({ config, logger, shutdown }) => {
 *       const nats = await connectNats({ url: config.NATS_URL, name: "intake", logger });
 *       shutdown.onShutdown("nats", () => nats.close());
 *       ...
 *     });
 *
 * The runtime variables (LOG_LEVEL, HTTP_HOST, HTTP_PORT, SHUTDOWN_TIMEOUT_MS) are always
 * part of the configuration; the service's own schema adds to them or overrides them.
 */
import { z } from "zod";
import { loadConfigOrExit, runtimeEnv, type RuntimeEnv } from "./config.js";
import { createLogger, flushLogger, type Logger } from "./logger.js";
import { createShutdown, type Shutdown } from "./shutdown.js";

export interface MainContext<C> {
  name: string;
  config: C;
  logger: Logger;
  shutdown: Shutdown;
}

export interface MainOptions<S extends z.ZodObject> {
  /** The service's variables; merged over the runtime ones. */
  config?: S;
}

type MainFn<C> = (ctx: MainContext<C>) => unknown;

export function runMain(name: string, main: MainFn<RuntimeEnv>): Promise<void>;
export function runMain<S extends z.ZodObject>(
  name: string,
  options: MainOptions<S>,
  main: MainFn<Omit<RuntimeEnv, keyof z.output<S>> & z.output<S>>,
): Promise<void>;
export async function runMain(
  name: string,
  optionsOrMain: MainOptions<z.ZodObject> | MainFn<RuntimeEnv>,
  maybeMain?: MainFn<never>,
): Promise<void> {
  const options = typeof optionsOrMain === "function" ? {} : optionsOrMain;
  const main = (typeof optionsOrMain === "function" ? optionsOrMain : maybeMain) as MainFn<RuntimeEnv>;
  const schema = z.object({ ...runtimeEnv, ...options.config?.shape });
  const config: RuntimeEnv = loadConfigOrExit(schema, { name });

  const logger = createLogger({ name, level: config.LOG_LEVEL });
  const shutdown = createShutdown({ logger, timeoutMs: config.SHUTDOWN_TIMEOUT_MS });

  const fatal = (err: unknown, msg: string) => {
    logger.fatal({ err }, msg);
    if (shutdown.shuttingDown) {
      // Already on the way out and something else broke: waiting longer would not help.
      flushLogger(logger);
      process.exit(1);
    }
    void shutdown.shutdown(msg, 1);
  };
  process.on("uncaughtException", (err) => fatal(err, "uncaught exception"));
  process.on("unhandledRejection", (reason) => fatal(reason, "unhandled promise rejection"));

  logger.info({ config, node: process.version }, "starting");
  try {
    await main({ name, config, logger, shutdown });
    logger.info("started");
  } catch (err) {
    fatal(err, "main failed");
  }
}
