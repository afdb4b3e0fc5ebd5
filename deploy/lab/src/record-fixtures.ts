/**
 * Records the lab pcaps the packet decoders are cross-checked with (gre.pcap, erspan2.pcap,
 * erspan3.pcap) and their README: starts a lab of its own (no services), records, removes the lab.
 * Needs root, like the lab.
 *
 *   npx tsx --conditions=@ovntap/source deploy/lab/src/record-fixtures.ts [OUT_DIR]
 *
 * OUT_DIR defaults to shared/packet/test/fixtures/lab. See record.ts for what is recorded and how.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startLab } from "./lab.js";
import { fixturesReadme, recordFixtures } from "./record.js";
import { findRepoRoot } from "./services.js";

const outDir = resolve(
  process.argv[2] ?? join(findRepoRoot(), "shared", "packet", "test", "fixtures", "lab"),
);
const say = (line: string) => void process.stderr.write(`${line}\n`);

const controller = new AbortController();
const onSignal = () => {
  say("interrupted: removing the lab");
  controller.abort();
};
process.once("SIGINT", onSignal);
process.once("SIGTERM", onSignal);

say("starting a lab (no services)");
const lab = await startLab({ services: false, signal: controller.signal });
try {
  say(`lab ${lab.prefix} up in ${lab.startupMs} ms; recording into ${outDir}`);
  const recorded = await recordFixtures({ lab, outDir, onProgress: say });
  writeFileSync(join(outDir, "README.md"), fixturesReadme(recorded));
  for (const r of recorded.recordings) process.stdout.write(`${r.path}\t${r.contents.packets} packets\n`);
} finally {
  await lab.stop();
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
}
