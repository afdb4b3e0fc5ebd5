// `npm test`: set-up (Debian packages, npm ci), then build, typecheck, lint, and every
// unit and integration test against real servers. Prints one closing line
// "tests: N passed, N failed, N skipped" and exits non-zero on any failure.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrap, repoRoot, step } from "./bootstrap.mjs";

process.env.TURBO_TELEMETRY_DISABLED = "1";
const started = Date.now();
const args = process.argv.slice(2);

function run(label, cmd, cmdArgs) {
  step(label);
  const t = Date.now();
  const r = spawnSync(cmd, cmdArgs, { cwd: repoRoot, stdio: "inherit" });
  if (r.status !== 0) {
    process.stderr.write(`✗ ${label} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(r.status || 1);
  }
  process.stderr.write(`  ${label}: ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
}

try {
  bootstrap();
} catch (err) {
  process.stderr.write(`✗ set-up failed: ${err.message}\n`);
  process.exit(1);
}
if (typeof process.getuid === "function" && process.getuid() !== 0) {
  process.stderr.write(
    "✗ the integration tests need root: they create network namespaces and start Open vSwitch.\n" +
      "  Run `sudo npm test` (or as root).\n",
  );
  process.exit(1);
}

const bin = (name) => join(repoRoot, "node_modules", ".bin", name);
run("build", bin("turbo"), ["run", "build", "--output-logs=errors-only"]);
run("typecheck", bin("turbo"), ["run", "typecheck", "--output-logs=errors-only"]);
run("typecheck (repository files)", bin("tsc"), ["-p", "tsconfig.json", "--noEmit"]);
run("lint", "npm", ["run", "--silent", "lint"]);

const out = mkdtempSync(join(tmpdir(), "ovntap-test-"));
const report = join(out, "vitest.json");
step("unit and integration tests");
const t = Date.now();
const r = spawnSync(
  bin("vitest"),
  ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...args],
  { cwd: repoRoot, stdio: "inherit" },
);
let summary = "tests: 0 passed, 0 failed";
try {
  const j = JSON.parse(readFileSync(report, "utf8"));
  const skipped = (j.numPendingTests ?? 0) + (j.numTodoTests ?? 0);
  summary = `tests: ${j.numPassedTests} passed, ${j.numFailedTests} failed, ${skipped} skipped`;
  if (j.numTotalTests === 0) {
    process.stderr.write("✗ no test ran\n");
    process.exitCode = 1;
  }
} catch {
  process.stderr.write("✗ the test runner wrote no report\n");
  process.exitCode = 1;
}
rmSync(out, { recursive: true, force: true });
process.stderr.write(
  `  tests: ${((Date.now() - t) / 1000).toFixed(1)} s; total ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
);
process.stdout.write(`${summary}\n`);
if (r.status !== 0) process.exitCode = r.status || 1;
