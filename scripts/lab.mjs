// `npm run lab` / `lab:up` / `lab:down`: set-up (Debian packages, npm dependencies, build),
// then the lab CLI. `npm run lab` is the product end to end (the lab CLI's `demo`: a mirror,
// its packets live, a summary, then everything torn down; `-- --keep` leaves it running);
// `lab:up` only brings the lab up.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { bootstrap, repoRoot, step } from "./bootstrap.mjs";

process.env.TURBO_TELEMETRY_DISABLED = "1";
const argv = process.argv.slice(2);
// `npm run lab -- --keep` passes options only: they are the demo's.
const [verb, ...rest] = argv.length === 0 || argv[0].startsWith("-") ? ["demo", ...argv] : argv;
const needsRoot = verb !== "status";
if (needsRoot && typeof process.getuid === "function" && process.getuid() !== 0) {
  process.stderr.write(
    "✗ the lab needs root: it creates network namespaces and starts Open vSwitch.\n" +
      "  Run it as root, or with sudo: sudo npm run lab\n",
  );
  process.exit(1);
}
try {
  bootstrap({ debian: verb !== "down" });
} catch (err) {
  process.stderr.write(`✗ set-up failed: ${err.message}\n`);
  process.exit(1);
}
step("building");
const b = spawnSync(
  join(repoRoot, "node_modules", ".bin", "turbo"),
  ["run", "build", "--output-logs=errors-only"],
  {
    cwd: repoRoot,
    stdio: "inherit",
  },
);
if (b.status !== 0) process.exit(b.status || 1);
const r = spawnSync(process.execPath, [join(repoRoot, "deploy", "lab", "dist", "cli.js"), verb, ...rest], {
  cwd: repoRoot,
  stdio: "inherit",
});
if (r.status === 0 && verb === "up") {
  process.stderr.write(`
Try it (every ovntap service is running):
  . .lab/env
  npx ovntap create m1 --namespace default --pod pod-a --direction egress --gre-sink $LAB_SINK_IP --ttl 600 --wait
  npx ovntap list
  npx ovntap events --mirror m1
  ovn-nbctl --db=$OVN_NB_DB mirror-list
  ip netns exec $LAB_POD_A_NS ping -c 3 $LAB_POD_B_IP &
  ip netns exec $LAB_SINK_NS tcpdump -c 3 -nvei eth0 'ip proto 47'
  npx ovntap delete m1 --namespace default --wait
  npm run lab:down
`);
}
process.exit(r.status ?? 1);
