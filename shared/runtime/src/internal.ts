/**
 * @ovntap/runtime/internal — for other ovntap packages and their tests, not part of the
 * public API: the building blocks behind the public functions, and test helpers.
 */
export { jitteredBackoff, type BackoffOptions } from "./backoff.js";
export { parseServers } from "./nats.js";
export { captureLogs, type LogCapture, type LogRecord } from "./testing/log-capture.js";
