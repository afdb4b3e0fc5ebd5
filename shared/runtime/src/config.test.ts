import { describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { ConfigError, envVar, loadConfig, natsEnv, nodeEnv, redisEnv, runtimeEnv } from "./config.js";

const Config = z.object({
  ...runtimeEnv,
  ...natsEnv,
  ...redisEnv,
  ...nodeEnv,
  VERBOSE: envVar.boolean().default(false),
});

const valid = {
  NATS_URL: "nats://nats-0.nats:4222,nats://nats-1.nats:4222",
  REDIS_URL: "redis://:secret@redis:6379/2",
  NODE_NAME: "worker-1.example",
};

function problems(env: Record<string, string | undefined>): Record<string, string> {
  try {
    loadConfig(Config, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    // The message names every variable with its reason, one per line.
    for (const p of e.problems) expect(e.message).toContain(`${p.variable}: ${p.message}`);
    return Object.fromEntries(e.problems.map((p) => [p.variable, p.message]));
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("returns typed values and fills defaults", () => {
    const c = loadConfig(Config, valid);
    expect(c).toEqual({
      ...valid,
      LOG_LEVEL: "info",
      HTTP_HOST: "0.0.0.0",
      HTTP_PORT: 8080,
      SHUTDOWN_TIMEOUT_MS: 20_000,
      VERBOSE: false,
    });
    expectTypeOf(c.HTTP_PORT).toEqualTypeOf<number>();
    expectTypeOf(c.VERBOSE).toEqualTypeOf<boolean>();
    expectTypeOf(c.LOG_LEVEL).toEqualTypeOf<
      "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent"
    >();
    expectTypeOf(c.NATS_USER).toEqualTypeOf<string | undefined>();
  });

  it("parses the string forms of numbers and booleans", () => {
    const c = loadConfig(Config, {
      ...valid,
      HTTP_PORT: " 0 ",
      SHUTDOWN_TIMEOUT_MS: "1500",
      VERBOSE: "YES",
      LOG_LEVEL: "debug",
      NATS_URL: "tls://nats:4222",
    });
    expect(c).toMatchObject({ HTTP_PORT: 0, SHUTDOWN_TIMEOUT_MS: 1500, VERBOSE: true, LOG_LEVEL: "debug" });
  });

  it("names every bad variable and why, all at once", () => {
    expect(
      problems({
        NATS_URL: "http://nats:4222",
        REDIS_URL: "localhost:6379",
        HTTP_PORT: "80a",
        SHUTDOWN_TIMEOUT_MS: "-5",
        LOG_LEVEL: "loud",
        VERBOSE: "maybe",
        NODE_NAME: "Worker_1",
      }),
    ).toEqual({
      NATS_URL: "must be a nats:// URL (comma-separated for several servers)",
      REDIS_URL: "must be a redis:// or rediss:// URL",
      HTTP_PORT: "must be an integer from 0 to 65535",
      SHUTDOWN_TIMEOUT_MS: "must be an integer ≥ 0",
      LOG_LEVEL: "must be one of fatal, error, warn, info, debug, trace, silent",
      VERBOSE: "must be true or false",
      NODE_NAME: "must be a Kubernetes node name (lower-case DNS-1123 subdomain)",
    });
  });

  it("reports missing required variables as required", () => {
    expect(problems({})).toEqual({
      NATS_URL: "is required",
      REDIS_URL: "is required",
      NODE_NAME: "is required",
    });
  });

  it("rejects out-of-range numbers and one bad server in a list", () => {
    expect(problems({ ...valid, HTTP_PORT: "65536" })).toEqual({
      HTTP_PORT: "must be an integer from 0 to 65535",
    });
    expect(problems({ ...valid, NATS_URL: "nats://a:4222,redis://b" })).toHaveProperty("NATS_URL");
    expect(problems({ ...valid, NATS_URL: "nats://" })).toHaveProperty("NATS_URL");
  });

  it("treats empty variables as unset, so defaults apply and required ones are reported", () => {
    const c = loadConfig(Config, { ...valid, HTTP_PORT: "", LOG_LEVEL: "" });
    expect(c.HTTP_PORT).toBe(8080);
    expect(c.LOG_LEVEL).toBe("info");
    expect(problems({ ...valid, NATS_URL: "" })).toEqual({ NATS_URL: "is required" });
  });

  it("never puts a variable's value in the message (it may be a secret)", () => {
    try {
      loadConfig(Config, { ...valid, REDIS_URL: "mysql://user:hunter2@db" });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain("hunter2");
    }
  });

  it("integer bounds are part of the message", () => {
    const S = z.object({ WORKERS: envVar.integer({ min: 1, max: 64 }).default(4) });
    expect(loadConfig(S, {}).WORKERS).toBe(4);
    expect(() => loadConfig(S, { WORKERS: "0" })).toThrow("WORKERS: must be an integer from 1 to 64");
    expect(() => loadConfig(S, { WORKERS: "1.5" })).toThrow("WORKERS: must be an integer from 1 to 64");
  });
});
