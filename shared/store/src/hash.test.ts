import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { eventId } from "./events.js";
import { canonicalJson, requestHash } from "./hash.js";
import { mirrorId, parseMirrorId, storeKeys } from "./keys.js";

describe("canonicalJson / requestHash", () => {
  it("ignores key order and undefined members", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: undefined } })).toBe(
      '{"a":{"d":[1,{"x":1,"y":2}]},"b":1}',
    );
    expect(requestHash({ a: 1, b: 2 })).toBe(requestHash({ b: 2, a: 1 }));
    expect(requestHash({ a: 1 })).not.toBe(requestHash({ a: 2 }));
    expect(requestHash({ a: 1 })).toMatch(/^[0-9a-f]{64}$/);
    expect(canonicalJson(JSON.parse('{"__proto__": {"x": 1}, "a": 2}'))).toBe('{"__proto__":{"x":1},"a":2}');
  });

  it("is the same for any reordering of the same object", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(obj));
        expect(JSON.parse(canonicalJson(obj))).toEqual(JSON.parse(JSON.stringify(obj)));
      }),
      { numRuns: 1000 },
    );
  });
});

describe("eventId", () => {
  it("joins short parts and hashes long or odd ones, deterministically", () => {
    expect(eventId("req-1", "accepted")).toBe("req-1:accepted");
    expect(eventId("req-1", 3, "applied")).toBe("req-1:3:applied");
    const long = eventId("x".repeat(128), "accepted");
    expect(long).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(long).toBe(eventId("x".repeat(128), "accepted"));
    expect(eventId("a b", "c")).toMatch(/^sha256:/);
  });
});

describe("keys", () => {
  it("puts every key under one hash tag and round-trips mirror ids", () => {
    const k = storeKeys();
    for (const key of [
      k.mirror("ns", "m"),
      k.generation("ns", "m"),
      k.mirrors,
      k.namespace("ns"),
      k.active("ns"),
      k.expiries,
      k.request("r"),
    ]) {
      expect(key.startsWith("{ovntap}:")).toBe(true);
    }
    expect(parseMirrorId(mirrorId("shop", "web"))).toEqual({ namespace: "shop", name: "web" });
    expect(parseMirrorId("nope")).toBeUndefined();
    expect(parseMirrorId("/x")).toBeUndefined();
  });
});
