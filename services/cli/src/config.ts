/**
 * Where the CLI finds NATS and who it says it is.
 *
 * The NATS URL is the first of: `--nats`, `NATS_URL`, `NATS_URL` in `.lab/env` of the current
 * directory or of the repository root above it (written by `npm run lab:up`), and
 * `nats://127.0.0.1:4222`. Credentials come from the URL or `NATS_CREDS_FILE`, `NATS_USER` +
 * `NATS_PASSWORD`, `NATS_TOKEN`, the variables the services read.
 */
import { existsSync, readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, join, relative } from "node:path";

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

export type Env = Readonly<Record<string, string | undefined>>;

export interface NatsTarget {
  /** As given: one URL or several separated by commas. */
  readonly url: string;
  /** Where it came from, for error messages. */
  readonly source: string;
}

/** Reads `NAME=value` and `export NAME='value'` lines (the format `@ovntap/lab` writes). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m?.[1] === undefined) continue;
    out[m[1]] = unquote(m[2] ?? "");
  }
  return out;
}

/** POSIX shell words: '…' literal, "…" literal enough for URLs, \x escapes. */
function unquote(v: string): string {
  let out = "";
  let i = 0;
  while (i < v.length) {
    const c = v[i] ?? "";
    if (c === "'" || c === '"') {
      const end = v.indexOf(c, i + 1);
      if (end < 0) return out + v.slice(i + 1);
      out += v.slice(i + 1, end);
      i = end + 1;
    } else if (c === "\\" && i + 1 < v.length) {
      out += v[i + 1] ?? "";
      i += 2;
    } else if (c === "#" && (i === 0 || /\s/.test(v[i - 1] ?? ""))) {
      break;
    } else {
      out += c;
      i++;
    }
  }
  return out.trim();
}

/** The repository root above `cwd`: the nearest directory whose package.json declares workspaces. */
export function findRepoRoot(cwd: string): string | undefined {
  let dir = cwd;
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        const parsed = JSON.parse(readFileSync(pkg, "utf8")) as { workspaces?: unknown };
        if (parsed.workspaces !== undefined) return dir;
      } catch {
        // Not ours to judge; keep walking.
      }
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

function labEnvFiles(cwd: string): string[] {
  const files = [join(cwd, ".lab", "env")];
  const root = findRepoRoot(cwd);
  if (root !== undefined && root !== cwd) files.push(join(root, ".lab", "env"));
  return files;
}

export function resolveNatsTarget(flag: string | undefined, env: Env, cwd: string): NatsTarget {
  if (flag !== undefined) return { url: flag, source: "--nats" };
  const fromEnv = env.NATS_URL?.trim();
  if (fromEnv) return { url: fromEnv, source: "NATS_URL" };
  for (const file of labEnvFiles(cwd)) {
    if (!existsSync(file)) continue;
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    const url = parseEnvFile(text).NATS_URL?.trim();
    if (url) return { url, source: relative(cwd, file) || file };
  }
  return { url: DEFAULT_NATS_URL, source: "the default" };
}

/** `nats://user:secret@host` → `nats://user:***@host`; a bare token is masked whole. */
export function redactUrl(url: string): string {
  return url.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@]+)@/gi, (_m, scheme: string, info: string) => {
    const colon = info.indexOf(":");
    return colon >= 0 ? `${scheme}${info.slice(0, colon)}:***@` : `${scheme}***@`;
  });
}

/** The principal claimed when `--principal` is absent: `OVNTAP_PRINCIPAL`, else the OS user. */
export function defaultPrincipal(env: Env): string | undefined {
  const fromEnv = env.OVNTAP_PRINCIPAL?.trim();
  if (fromEnv) return fromEnv;
  try {
    const name = userInfo().username;
    if (name) return name;
  } catch {
    // No passwd entry (e.g. a container with an arbitrary uid).
  }
  return env.USER?.trim() || env.LOGNAME?.trim() || undefined;
}
