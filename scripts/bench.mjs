// `npm run bench -- <name> [args]`: set-up (Debian packages, npm ci, build), then
// bench/<name>.ts. Each benchmark measures ovntap against a baseline doing the same work
// in the same run (e.g. ovn-nbctl), and prints one JSON object as its last line.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { bootstrap, repoRoot, step } from "./bootstrap.mjs";

process.env.TURBO_TELEMETRY_DISABLED = "1";
const [name, ...rest] = process.argv.slice(2);
const available = readdirSync(join(repoRoot, "bench"))
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.startsWith("_"))
  .map((f) => f.slice(0, -3));
if (!name || !available.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <${available.join("|")}> [options]\n`);
  process.exit(2);
}
if (typeof process.getuid === "function" && process.getuid() !== 0) {
  process.stderr.write(
    "✗ the benchmarks run on the native lab, which needs root: run as root or with sudo.\n",
  );
  process.exit(1);
}
try {
  bootstrap();
} catch (err) {
  process.stderr.write(`✗ set-up failed: ${err.message}\n`);
  process.exit(1);
}
step("building");
const turbo = join(repoRoot, "node_modules", ".bin", "turbo");
const b = spawnSync(turbo, ["run", "build", "--output-logs=errors-only"], {
  cwd: repoRoot,
  stdio: "inherit",
});
if (b.status !== 0) process.exit(b.status || 1);
const tsx = join(repoRoot, "node_modules", ".bin", "tsx");
if (!existsSync(tsx)) throw new Error("tsx is missing: npm ci did not complete");
const r = spawnSync(tsx, ["--conditions=@ovntap/source", join(repoRoot, "bench", `${name}.ts`), ...rest], {
  cwd: repoRoot,
  stdio: "inherit",
});
process.exit(r.status ?? 1);
