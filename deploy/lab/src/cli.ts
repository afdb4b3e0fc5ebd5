#!/usr/bin/env node
/**
 * Entry of the lab CLI: `node deploy/lab/dist/cli.js up` (what `npm run lab:up` runs
 * after the build) or, unbuilt, `npx tsx deploy/lab/src/cli.ts up`. See cli-run.ts.
 */
import { runCli } from "./cli-run.js";

const controller = new AbortController();
let interrupted = 0;
const onSignal = (sig: NodeJS.Signals) => {
  interrupted++;
  // The first signal lets `up` stop at its next step and remove what it made; a
  // second one means "now", and may leave things for `lab down` to clean.
  if (interrupted > 1) process.exit(130);
  process.stderr.write(`\n${sig}: stopping and cleaning up (again to quit at once)\n`);
  controller.abort();
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

process.exitCode = await runCli(process.argv.slice(2), {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isRoot: () => typeof process.getuid === "function" && process.getuid() === 0,
  signal: controller.signal,
});
process.off("SIGINT", onSignal);
process.off("SIGTERM", onSignal);
