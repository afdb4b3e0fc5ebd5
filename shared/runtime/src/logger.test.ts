import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import { createLogger, flushLogger } from "./logger.js";
import { captureLogs } from "./testing/log-capture.js";

describe("createLogger", () => {
  it("writes JSON lines with service, pid, hostname, a level label and an ISO time", () => {
    const logs = captureLogs();
    const log = createLogger({ name: "intake", destination: logs.stream });
    log.info({ mirror: "m1", key: 7 }, "mirror applied");
    const [r] = logs.records;
    expect(r).toMatchObject({
      level: "info",
      service: "intake",
      pid: process.pid,
      hostname: hostname(),
      mirror: "m1",
      key: 7,
      msg: "mirror applied",
    });
    expect(new Date(r?.time as string).toISOString()).toBe(r?.time);
  });

  it("honours the level", () => {
    const logs = captureLogs();
    const log = createLogger({ name: "t", level: "warn", destination: logs.stream });
    log.info("hidden");
    log.warn("shown");
    expect(logs.records.map((r) => r.msg)).toEqual(["shown"]);
  });

  it("masks secrets in fields, in child bindings and in URLs", () => {
    const logs = captureLogs();
    const log = createLogger({ name: "t", destination: logs.stream, redact: ["custom.path"] });
    log.child({ url: "redis://:hunter2@r:6379" }).info(
      {
        config: { NATS_PASSWORD: "pw1", NATS_URL: "nats://tok3n@n:4222" },
        token: "t0k",
        custom: { path: "x" },
      },
      "starting",
    );
    const line = JSON.stringify(logs.records[0]);
    for (const secret of ["hunter2", "pw1", "tok3n", "t0k", '"x"']) expect(line).not.toContain(secret);
    expect(logs.records[0]).toMatchObject({
      url: "redis://:***@r:6379",
      config: { NATS_PASSWORD: "***", NATS_URL: "nats://***@n:4222" },
      token: "***",
      custom: { path: "***" },
    });
  });

  it("serializes errors with their stack, and flushLogger never throws", () => {
    const logs = captureLogs();
    const log = createLogger({ name: "t", destination: logs.stream });
    log.error({ err: new TypeError("bad") }, "failed");
    expect(logs.records[0]?.err).toMatchObject({ type: "TypeError", message: "bad" });
    expect(() => flushLogger(log)).not.toThrow();
  });
});

describe("createLogger redaction of serialized lines", () => {
  it("masks URL credentials in error messages and keeps every line valid JSON", () => {
    const logs = captureLogs();
    const log = createLogger({ name: "t", destination: logs.stream });
    log.error(
      {
        err: new Error("connect redis://:hunter2@r:6379 refused"),
        a: "http://x",
        b: "user@example.com?token=z",
      },
      "failed",
    );
    const r = logs.records[0];
    expect(JSON.stringify(r)).not.toContain("hunter2");
    expect(r).toMatchObject({ a: "http://x", b: "user@example.com?token=***" });
  });
});
