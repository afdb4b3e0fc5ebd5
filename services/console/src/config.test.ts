import { ConfigError, loadConfig } from "@ovntap/runtime";
import { describe, expect, it } from "vitest";
import { allowedHosts, ConsoleEnv, consoleConfig } from "./config.js";
import { hostAllowed } from "./http.js";

const env = { NATS_URL: "nats://127.0.0.1:4222", REDIS_URL: "redis://127.0.0.1:6379" };

describe("console configuration", () => {
  it("binds to loopback and bounds the ring by default", () => {
    const e = loadConfig(ConsoleEnv, env);
    expect(e.HTTP_HOST).toBe("127.0.0.1");
    expect(consoleConfig(e)).toEqual({
      ring: { maxAgeMs: 120_000, maxBytesPerMirror: 32 << 20, maxTotalBytes: 128 << 20 },
      events: 200,
      refreshMs: 30_000,
      maxClients: 32,
      clientBufferBytes: 1 << 20,
    });
    expect(allowedHosts(e)).toEqual([]);
  });

  it("names the variable and its limit", () => {
    expect(() => loadConfig(ConsoleEnv, { ...env, CONSOLE_RING_SECONDS: "5" })).toThrow(
      /CONSOLE_RING_SECONDS: must be an integer from 10 to 3600/,
    );
    const e = loadConfig(ConsoleEnv, {
      ...env,
      CONSOLE_RING_MIRROR_BYTES: String(64 << 20),
      CONSOLE_RING_TOTAL_BYTES: String(16 << 20),
    });
    expect(() => consoleConfig(e)).toThrow(ConfigError);
    expect(() => consoleConfig(e)).toThrow(
      /CONSOLE_RING_MIRROR_BYTES: must not exceed CONSOLE_RING_TOTAL_BYTES/,
    );
    expect(() => loadConfig(ConsoleEnv, { ...env, CONSOLE_ALLOWED_HOSTS: "a b" })).toThrow(
      /CONSOLE_ALLOWED_HOSTS/,
    );
  });

  it("reads the allowed hosts", () => {
    expect(allowedHosts({ CONSOLE_ALLOWED_HOSTS: "console.example.org, ovntap.internal" })).toEqual([
      "console.example.org",
      "ovntap.internal",
    ]);
    expect(allowedHosts({ CONSOLE_ALLOWED_HOSTS: "*" })).toBe("*");
  });
});

describe("hostAllowed", () => {
  it("takes IP literals and localhost, with or without a port, and the names listed", () => {
    for (const h of [
      "127.0.0.1:8080",
      "127.0.0.1",
      "[::1]:8080",
      "[2001:db8::1]",
      "localhost:3000",
      "LOCALHOST",
      "10.1.2.3:80",
    ]) {
      expect(hostAllowed(h, []), h).toBe(true);
    }
    expect(hostAllowed("console.example.org:443", ["console.example.org"])).toBe(true);
    expect(hostAllowed("Console.Example.org", ["console.example.org"])).toBe(true);
  });

  it("refuses other names (a rebound DNS name), a missing Host and junk", () => {
    for (const h of [
      undefined,
      "",
      "attacker.example",
      "127.0.0.1.attacker.example",
      "localhost.attacker.example",
      "a b",
      "[::1",
    ]) {
      expect(hostAllowed(h, ["console.example.org"]), String(h)).toBe(false);
    }
    expect(hostAllowed("anything.example", "*")).toBe(true);
  });
});
