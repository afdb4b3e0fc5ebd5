/**
 * `ovntap` as a process: argv, the standard streams, SIGINT (first: stop following or waiting;
 * second: exit 130) and the exit code. Everything else is in cli.ts.
 */
import { runCli } from "./cli.js";

const controller = new AbortController();
let interrupts = 0;
process.on("SIGINT", () => {
  interrupts++;
  if (interrupts > 1) process.exit(130);
  controller.abort();
});

// `ovntap list | head -1`: a closed pipe is not an error worth a stack trace.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  // Touch process.stdin only for `-f -`: opening it early can hold a terminal.
  stdin: { [Symbol.asyncIterator]: () => process.stdin[Symbol.asyncIterator]() },
  signal: controller.signal,
});
process.exitCode = code;
