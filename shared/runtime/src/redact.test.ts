import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { redactSecrets, redactUrl } from "./redact.js";

describe("redactUrl", () => {
  it.each([
    ["nats://user:pa55@nats:4222", "nats://user:***@nats:4222"],
    ["redis://:hunter2@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"],
    ["nats://s3cr3tToken@nats:4222", "nats://***@nats:4222"],
    ["https://api/x?token=abc&x=1", "https://api/x?token=***&x=1"],
    ["nats://a:1,nats://u:p@b:2", "nats://a:1,nats://u:***@b:2"],
    ["connect to nats://nats:4222 failed", "connect to nats://nats:4222 failed"],
  ])("%s → %s", (input, output) => {
    expect(redactUrl(input)).toBe(output);
  });

  it("never lets a URL password through", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("nats", "tls", "redis", "rediss", "https"),
        fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/),
        fc.stringMatching(/^[A-Za-z0-9!$%^*()_+~-]{6,20}$/),
        fc.domain(),
        (scheme, user, pass, host) => {
          const out = redactUrl(`dial ${scheme}://${user}:${pass}@${host}:1234/x`);
          expect(out).not.toContain(pass);
          expect(out).toContain(`${scheme}://${user}:***@${host}:1234/x`);
        },
      ),
    );
  });
});

describe("redactSecrets", () => {
  it("masks secret-looking keys at any depth and URLs in strings, without touching the input", () => {
    const input = {
      config: { NATS_URL: "nats://u:p@h:4222", NATS_PASSWORD: "pw", NATS_TOKEN: "tk", HTTP_PORT: 1 },
      headers: { authorization: "Bearer x" },
      list: ["redis://:pw@r:6379"],
      password: "",
    };
    const snapshot = structuredClone(input);
    expect(redactSecrets(input)).toEqual({
      config: { NATS_URL: "nats://u:***@h:4222", NATS_PASSWORD: "***", NATS_TOKEN: "***", HTTP_PORT: 1 },
      headers: { authorization: "***" },
      list: ["redis://:***@r:6379"],
      password: "",
    });
    expect(input).toEqual(snapshot);
  });

  it("returns the same object when there is nothing to mask, and leaves Errors alone", () => {
    const plain = { a: 1, b: { c: "text" } };
    expect(redactSecrets(plain)).toBe(plain);
    const err = new Error("boom");
    const rec = { err };
    expect(redactSecrets(rec)).toBe(rec);
  });
});
