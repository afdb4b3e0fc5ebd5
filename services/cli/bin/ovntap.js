#!/usr/bin/env node
// The `ovntap` command: runs the compiled CLI, or says how to build it.
import { existsSync } from "node:fs";

const main = new URL("../dist/main.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    "ovntap: the CLI is not built yet (no services/cli/dist/main.js).\n" +
      "Run `npm run build` (or `npm run build -w @ovntap/cli`) in the repository, then try again.\n",
  );
  process.exit(1);
}
await import(main.href);
