/**
 * @ovntap/cli — the `ovntap` command as a library, so tests (and other tools) run it in-process
 * against real servers:
 *
 *   const code = await runCli(["create", "web", "-n", "shop", "--pod", "web-0", "--direction", "both",
 *     "--gre-sink", "10.0.0.9"], { stdout, stderr, env: { NATS_URL: nats.url }, cwd });
 *
 * `src/main.ts` wires it to process.argv, the standard streams, SIGINT and the exit code.
 */
export {
  cliVersion,
  createCli,
  DEFAULT_NAMESPACE,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_WAIT_TIMEOUT_MS,
  runCli,
} from "./cli.js";
export type { Cli, CliIo, Output } from "./cli.js";
export { OPTIONS, parseCommandLine, VERB_FLAGS, VERBS } from "./args.js";
export type { CommandLine, OptionName, Values, Verb } from "./args.js";
export {
  DEFAULT_NATS_URL,
  defaultPrincipal,
  findRepoRoot,
  parseEnvFile,
  redactUrl,
  resolveNatsTarget,
} from "./config.js";
export type { Env, NatsTarget } from "./config.js";
export {
  EventsError,
  EXIT,
  InvalidReplyError,
  NatsUnreachableError,
  NoReplyError,
  ReplyError,
  UsageError,
  WaitFailedError,
} from "./errors.js";
export type { ExitCode, ReplyErrorBody } from "./errors.js";
export { eventFilter, readEvents } from "./events.js";
export type { ReadEventsOptions, StoredEvent } from "./events.js";
export {
  eventSummary,
  formatDocument,
  formatErrorBody,
  formatEventLine,
  formatMirrorTable,
  formatTable,
  formatUnknownEventLine,
  OUTPUT_FORMATS,
  shortDuration,
  TABLE_COLUMNS,
  tableRow,
} from "./format.js";
export type { MirrorView, OutputFormat } from "./format.js";
export { parseSpecText, readSpecFile, specFromFlags } from "./spec-input.js";
export {
  formatSelector,
  parseDurationMs,
  parseInteger,
  parseLabels,
  parseSeconds,
  parseSelector,
} from "./values.js";
export { MirrorWatch, waitForMirror } from "./wait.js";
export type { WaitOptions } from "./wait.js";
