/**
 * @ovntap/runtime — what every ovntap service needs around its own logic: configuration
 * from the environment, logging, NATS and Redis connections that survive restarts,
 * health/readiness/metrics over HTTP, and graceful shutdown.
 */
export {
  ConfigError,
  EX_CONFIG,
  envVar,
  loadConfig,
  loadConfigOrExit,
  natsEnv,
  nodeEnv,
  redisEnv,
  runtimeEnv,
  type ConfigProblem,
  type LoadConfigOrExitOptions,
  type NatsEnv,
  type RuntimeEnv,
} from "./config.js";
export {
  createLogger,
  flushLogger,
  LOG_LEVELS,
  type Logger,
  type LoggerOptions,
  type LogLevel,
} from "./logger.js";
export { redactSecrets, redactUrl } from "./redact.js";
export {
  connectNats,
  ensureStream,
  NatsConnectError,
  natsOptionsFromEnv,
  StreamConfigError,
  type EnsureStreamResult,
  type NatsClient,
  type NatsOptions,
  type StreamSpec,
} from "./nats.js";
export {
  connectRedis,
  RedisConnectError,
  redisRoleOptions,
  type RedisClient,
  type RedisOptions,
  type RedisRole,
} from "./redis.js";
export {
  HttpListenError,
  startHttpServer,
  type CheckResult,
  type HttpServer,
  type HttpServerOptions,
  type ReadinessCheck,
  type ReadinessReport,
} from "./http.js";
export { createMetrics, METRICS_PREFIX, type Metrics, type MetricsOptions } from "./metrics.js";
export { createLoops, type Loops } from "./loops.js";
export { createShutdown, type Shutdown, type ShutdownOptions, type ShutdownStep } from "./shutdown.js";
export { runMain, type MainContext, type MainOptions } from "./main.js";
