/**
 * Configuration from the environment, validated once at start-up by a zod object whose
 * keys are the variable names. Every bad variable is reported at once, by name.
 *
 *   const Config = z.object({ ...runtimeEnv, ...natsEnv, BULLMQ_PREFIX: envVar.string() });
 *   const config = loadConfig(Config);              // throws ConfigError
 *   const config = loadConfigOrExit(Config, { name: "intake" });   // for main.ts: exit 78
 *
 * Empty variables count as unset (`FOO=` in a compose file or ConfigMap means "no
 * value"), so defaults apply to them.
 */
import { z } from "zod";
import { LOG_LEVELS } from "./logger.js";

/** EX_CONFIG from sysexits.h: "something was found in an unconfigured or misconfigured state". */
export const EX_CONFIG = 78;

export interface ConfigProblem {
  variable: string;
  message: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly problems: readonly ConfigProblem[],
    options?: ErrorOptions,
  ) {
    super(
      `invalid configuration, fix these environment variables:\n${problems
        .map((p) => `  ${p.variable}: ${p.message}`)
        .join("\n")}`,
      options,
    );
  }
}

type Env = Record<string, string | undefined>;

/** Validates `env` (process.env by default) against `schema`; throws ConfigError naming each bad variable. */
export function loadConfig<S extends z.ZodObject>(schema: S, env: Env = process.env): z.output<S> {
  const input: Env = {};
  for (const key of Object.keys(schema.shape)) {
    const v = env[key];
    input[key] = v === "" ? undefined : v;
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems: ConfigProblem[] = [];
  for (const issue of result.error.issues) {
    const variable = issue.path.length ? issue.path.map(String).join(".") : "(environment)";
    problems.push({ variable, message: describeIssue(issue, input[String(issue.path[0])]) });
  }
  throw new ConfigError(problems, { cause: result.error });
}

export interface LoadConfigOrExitOptions {
  /** Program name, prefixed to the message. */
  name: string;
  env?: Env;
}

/**
 * For a program's main: on invalid configuration, prints the ConfigError message to
 * stderr and exits with EX_CONFIG (78), before any logger exists. Any other error is
 * rethrown.
 */
export function loadConfigOrExit<S extends z.ZodObject>(
  schema: S,
  opts: LoadConfigOrExitOptions,
): z.output<S> {
  try {
    return loadConfig(schema, opts.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${opts.name}: ${err.message}\n`);
    process.exit(EX_CONFIG);
  }
}

function describeIssue(issue: z.core.$ZodIssue, raw: string | undefined): string {
  // Environment values are strings or absent, so a type error at the top level means absent.
  if (issue.code === "invalid_type" && raw === undefined && issue.path.length === 1) return "is required";
  if (issue.code === "invalid_value" && issue.values.length > 1) {
    return `must be one of ${issue.values.map(String).join(", ")}`;
  }
  return issue.message;
}

// ---------------------------------------------------------------------------------------
// Reusable pieces. Each parses the string form of one variable.

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function integer(opts: { min?: number; max?: number } = {}) {
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = opts;
  const range =
    opts.min !== undefined && opts.max !== undefined
      ? `an integer from ${min} to ${max}`
      : opts.min !== undefined
        ? `an integer ≥ ${min}`
        : opts.max !== undefined
          ? `an integer ≤ ${max}`
          : "an integer";
  return z
    .string()
    .trim()
    .regex(/^[+-]?\d+$/, `must be ${range}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `must be ${range}`).max(max, `must be ${range}`));
}

function urlList(protocols: readonly string[], what: string) {
  const message = `must be ${what} (comma-separated for several servers)`;
  return z
    .string()
    .trim()
    .refine(
      (s) =>
        s.split(",").every((part) => {
          try {
            const u = new URL(part.trim());
            return protocols.includes(u.protocol) && u.hostname !== "";
          } catch {
            return false;
          }
        }),
      message,
    );
}

function url(protocols: readonly string[], what: string) {
  return z
    .string()
    .trim()
    .refine((s) => {
      try {
        const u = new URL(s);
        return protocols.includes(u.protocol) && u.hostname !== "";
      } catch {
        return false;
      }
    }, `must be ${what}`);
}

/** Builders for environment variables; compose them into a z.object keyed by variable name. */
export const envVar = {
  /** A non-empty string. */
  string: () => z.string().min(1, "must not be empty"),
  /** An integer, optionally bounded: "must be an integer from 0 to 65535". */
  integer,
  /** A TCP port; 0 asks the kernel for a free one. */
  port: () => integer({ min: 0, max: 65535 }),
  /** A duration in milliseconds (a non-negative integer). */
  durationMs: () => integer({ min: 0 }),
  /** true/false, 1/0, yes/no, on/off (any case). */
  boolean: () =>
    z
      .string()
      .trim()
      .toLowerCase()
      .refine((s) => /^(true|false|1|0|yes|no|on|off)$/.test(s), "must be true or false")
      .transform((s) => /^(true|1|yes|on)$/.test(s)),
  /** A URL with one of the given protocols (with the colon, e.g. "https:"). */
  url,
  /** One or more nats:// (or tls://) server URLs, comma-separated. */
  natsUrl: () => urlList(["nats:", "tls:"], "a nats:// URL"),
  /** A redis:// or rediss:// URL. */
  redisUrl: () => url(["redis:", "rediss:"], "a redis:// or rediss:// URL"),
  logLevel: () => z.enum(LOG_LEVELS),
  /** An address to bind: an IPv4/IPv6 literal or a host name. */
  host: () =>
    z
      .string()
      .trim()
      .regex(/^[0-9A-Za-z.:_-]+$/, "must be an IP address or host name"),
  /** A Kubernetes node name (DNS-1123 subdomain). */
  nodeName: () =>
    z
      .string()
      .trim()
      .max(253, "must be at most 253 characters")
      .regex(DNS1123_SUBDOMAIN, "must be a Kubernetes node name (lower-case DNS-1123 subdomain)"),
} as const;

/** Variables every service reads (all have defaults). */
export const runtimeEnv = {
  LOG_LEVEL: envVar.logLevel().default("info"),
  HTTP_HOST: envVar.host().default("0.0.0.0"),
  HTTP_PORT: envVar.port().default(8080),
  // Below Kubernetes' default 30 s terminationGracePeriodSeconds, so shutdown ends before SIGKILL.
  SHUTDOWN_TIMEOUT_MS: envVar.durationMs().default(20_000),
};

/** NATS connection: NATS_URL is required; credentials optional (creds file, user+password, or token). */
export const natsEnv = {
  NATS_URL: envVar.natsUrl(),
  NATS_CREDS_FILE: envVar.string().optional(),
  NATS_USER: envVar.string().optional(),
  NATS_PASSWORD: envVar.string().optional(),
  NATS_TOKEN: envVar.string().optional(),
};

export const redisEnv = {
  REDIS_URL: envVar.redisUrl(),
};

/** The node a per-node service runs on (Kubernetes downward API `spec.nodeName`). */
export const nodeEnv = {
  NODE_NAME: envVar.nodeName(),
};

export type RuntimeEnv = z.output<z.ZodObject<typeof runtimeEnv>>;
export type NatsEnv = z.output<z.ZodObject<typeof natsEnv>>;
