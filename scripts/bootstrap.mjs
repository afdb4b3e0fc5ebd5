// Set-up shared by `npm test` and `npm run lab`: the Debian packages ovntap runs on,
// then the npm dependencies. Plain Node with no dependencies, because it runs before
// `npm ci` has. Idempotent: a second run installs nothing.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Debian packages, and the binary each provides (checked on PATH and in sbin). */
export const DEBIAN_PACKAGES = {
  "openvswitch-switch": "ovs-vswitchd",
  "ovn-central": "ovn-northd",
  "ovn-host": "ovn-controller",
  "nats-server": "nats-server",
  "redis-server": "redis-server",
  iproute2: "ip",
  "iputils-ping": "ping",
  ethtool: "ethtool",
  tcpdump: "tcpdump",
  "libpcap-dev": null, // headers for the libpcap binding (cap); checked through dpkg
  // node-gyp builds the libpcap binding (cap) at npm install time.
  python3: "python3",
  make: "make",
  "g++": "g++",
  tshark: "tshark",
  // The console's browser test drives Debian's Chromium through playwright-core.
  chromium: "chromium",
};

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0;

function installed(pkg) {
  const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg], { encoding: "utf8" });
  return r.status === 0 && r.stdout.includes("install ok installed");
}

export function step(msg) {
  process.stderr.write(`▸ ${msg}\n`);
}

function sh(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", env: { ...process.env, ...env } });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed with exit code ${r.status ?? r.signal}`);
  }
}

export function ensureDebianPackages(packages = Object.keys(DEBIAN_PACKAGES)) {
  if (!existsSync("/usr/bin/dpkg-query")) {
    throw new Error(
      `this is not a Debian-based system: install these packages by hand: ${packages.join(" ")}`,
    );
  }
  const missing = packages.filter((p) => !installed(p));
  if (missing.length === 0) return;
  if (!isRoot()) {
    throw new Error(
      `missing Debian packages: ${missing.join(" ")}\n` +
        `  run as root (they are installed automatically), or first: sudo apt-get install -y ${missing.join(" ")}`,
    );
  }
  step(`installing Debian packages: ${missing.join(" ")}`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  sh("apt-get", ["update", "-q"], env);
  // tshark asks whether non-root users may capture; answer the default (no) ahead of time.
  spawnSync("sh", [
    "-c",
    "echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections",
  ]);
  sh("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...missing], env);
}

function lockHash() {
  const h = createHash("sha256");
  h.update(readFileSync(join(repoRoot, "package-lock.json")));
  h.update(process.version);
  return h.digest("hex");
}

export function ensureNodeModules() {
  const stamp = join(repoRoot, "node_modules", ".ovntap-lock-hash");
  const want = lockHash();
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === want) return;
  // The versions are those of package-lock.json. Not `npm ci`: npm 11 leaves other
  // platforms' optional binaries (turbo, unrs-resolver) out of the lock file it writes
  // and then `npm ci` refuses that same lock file as out of sync (npm/cli#8320).
  // `npm install --no-save` installs exactly the locked tree and never rewrites it.
  step("installing npm dependencies (locked versions)");
  execFileSync("npm", ["install", "--no-save", "--no-audit", "--no-fund"], {
    cwd: repoRoot,
    stdio: "inherit",
  });
  writeFileSync(stamp, want);
}

export function bootstrap({ debian = true } = {}) {
  if (debian) ensureDebianPackages();
  ensureNodeModules();
}
