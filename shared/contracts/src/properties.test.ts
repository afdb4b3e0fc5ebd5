import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ERROR_CODES, MirrorRequest, MirrorSpec, validateRequest } from "./index.js";
import { arbitraries } from "./internal.js";

const roundTrip = <T>(value: T): unknown => JSON.parse(JSON.stringify(value));

describe("valid values round-trip", () => {
  it("every generated spec parses to itself, also after JSON", () => {
    fc.assert(
      fc.property(arbitraries.mirrorSpec, (spec) => {
        const parsed = MirrorSpec.parse(spec);
        expect(parsed).toEqual(spec);
        expect(MirrorSpec.parse(roundTrip(parsed))).toEqual(parsed);
      }),
      { numRuns: 500 },
    );
  });

  it("every generated request validates to itself, also after JSON", () => {
    fc.assert(
      fc.property(arbitraries.request, (request) => {
        const r = validateRequest(roundTrip(request));
        if (!r.ok) throw new Error(r.error.message);
        expect(r.value).toEqual(request);
        expect(MirrorRequest.parse(roundTrip(r.value))).toEqual(r.value);
      }),
      { numRuns: 500 },
    );
  });

  it("a request passes its own subject check", () => {
    fc.assert(
      fc.property(arbitraries.request, (request) => {
        const ns = request.op === "create" ? request.spec.namespace : request.namespace;
        expect(validateRequest(request, { subject: `ovntap.v1.req.${ns}` }).ok).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

describe("out-of-range values are refused at their field", () => {
  it("one field just or far out of range → INVALID_REQUEST with an issue at that path", () => {
    fc.assert(
      fc.property(arbitraries.outOfRangeRequest, ({ request, path }) => {
        const r = validateRequest(request);
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(r.error.code).toBe(ERROR_CODES.INVALID_REQUEST);
        expect(r.error.issues.map((i) => i.path)).toContain(path);
      }),
      { numRuns: 1000 },
    );
  });
});

describe("robustness", () => {
  it("never throws on arbitrary JSON, and always answers ok or INVALID_REQUEST", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (raw) => {
        const r = validateRequest(raw);
        if (!r.ok) {
          expect(r.error.code).toBe(ERROR_CODES.INVALID_REQUEST);
          expect(r.error.issues.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("never throws on a valid request with one field replaced by arbitrary JSON", () => {
    fc.assert(
      fc.property(arbitraries.createRequest, fc.jsonValue(), fc.nat(), (request, junk, pick) => {
        const keys = Object.keys(request.spec);
        const key = keys[pick % keys.length] ?? "name";
        const r = validateRequest({ ...request, spec: { ...request.spec, [key]: junk } });
        if (!r.ok) expect(r.error.issues.length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });
});
