/**
 * The lab's environment: the variables every service and test reads to find the lab's
 * servers and namespaces, and the shell-sourceable file they are written to.
 *
 *   writeFileSync(".lab/env", formatEnvFile(lab.env));
 *   // $ . .lab/env && ovn-nbctl --db="$OVN_NB_DB" show
 */
import { readFileSync } from "node:fs";

/** The names in the env file, in the order they are written. */
export const LAB_ENV_NAMES = [
  "NATS_URL",
  "REDIS_URL",
  "OVN_NB_DB",
  "OVN_SB_DB",
  "OVS_DB",
  "LAB_DIR",
  "LAB_NODE",
  "LAB_POD_A_NS",
  "LAB_POD_B_NS",
  "LAB_POD_A_IP",
  "LAB_POD_B_IP",
  "LAB_POD_A_PORT",
  "LAB_POD_B_PORT",
  "LAB_SINK_NS",
  "LAB_SINK_IP",
  "LAB_CAPTURE_IF",
] as const;

export type LabEnvName = (typeof LAB_ENV_NAMES)[number];
export type LabEnv = Readonly<Record<LabEnvName, string>>;

/** POSIX single quoting: everything is literal inside '…' except ' itself, written '\''. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** `export NAME='value'` lines, one per name, in LAB_ENV_NAMES order. */
export function formatEnvFile(env: LabEnv): string {
  return LAB_ENV_NAMES.map((n) => `export ${n}=${shellQuote(env[n])}\n`).join("");
}

/**
 * Reads back what formatEnvFile wrote (and plain `NAME=value` lines), so the CLI and
 * tests in other processes can find a running lab. Unknown names are kept.
 */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m?.[1]) continue;
    out[m[1]] = unquote(m[2] ?? "");
  }
  return out;
}

function unquote(v: string): string {
  // Concatenated '…' segments and \' escapes, as shellQuote produces.
  let out = "";
  let i = 0;
  while (i < v.length) {
    const c = v[i];
    if (c === "'") {
      const end = v.indexOf("'", i + 1);
      if (end < 0) return out + v.slice(i + 1);
      out += v.slice(i + 1, end);
      i = end + 1;
    } else if (c === "\\" && i + 1 < v.length) {
      out += v[i + 1];
      i += 2;
    } else if (c === '"') {
      const end = v.indexOf('"', i + 1);
      if (end < 0) return out + v.slice(i + 1);
      out += v.slice(i + 1, end);
      i = end + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Reads a lab env file (`.lab/env`, `<lab dir>/env`) and checks every name is there. */
export function readLabEnvFile(path: string): LabEnv {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`no lab env file at ${path}: bring a lab up first ('npm run lab:up')`, { cause: err });
  }
  const vars = parseEnvFile(text);
  const missing = LAB_ENV_NAMES.filter((n) => vars[n] === undefined);
  if (missing.length) throw new Error(`${path} lacks ${missing.join(", ")}: is it a lab env file?`);
  return Object.fromEntries(LAB_ENV_NAMES.map((n) => [n, vars[n] ?? ""])) as Record<LabEnvName, string>;
}
