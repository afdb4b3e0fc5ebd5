import { describe, expect, it } from "vitest";
import { z } from "zod";
import { loadConfig, natsEnv } from "./config.js";
import { natsOptionsFromEnv, parseServers } from "./nats.js";

describe("parseServers", () => {
  it("lifts user and password out of the URLs, as the Go client honours them", () => {
    expect(parseServers("nats://ovntap:p%40ss@nats-0:4222, nats://nats-1:4222")).toEqual({
      servers: ["nats://nats-0:4222", "nats://nats-1:4222"],
      auth: { user: "ovntap", pass: "p@ss" },
      tls: false,
    });
  });

  it("reads a bare userinfo as a token, and tls:// as requiring TLS", () => {
    expect(parseServers(["tls://s3cr3t@nats:4222"])).toEqual({
      servers: ["tls://nats:4222"],
      auth: { token: "s3cr3t" },
      tls: true,
    });
  });

  it("passes host:port without a scheme through", () => {
    expect(parseServers("127.0.0.1:4222").servers).toEqual(["127.0.0.1:4222"]);
  });
});

describe("natsOptionsFromEnv", () => {
  it("maps the NATS_* variables to connectNats options, leaving unset ones out", () => {
    const env = loadConfig(z.object(natsEnv), {
      NATS_URL: "nats://n:4222",
      NATS_USER: "u",
      NATS_PASSWORD: "p",
    });
    expect(natsOptionsFromEnv(env)).toEqual({ url: "nats://n:4222", user: "u", pass: "p" });
  });
});
