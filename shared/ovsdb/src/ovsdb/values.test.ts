import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NotationError } from "../errors.js";
import { isWireValue, namedUuid, uuid, ZERO_UUID, type WireValue } from "./notation.js";
import { parseColumnType, type AtomicType, type ColumnType, type ColumnTypeJson } from "./schema.js";
import {
  defaultValue,
  valueFromWire,
  valueToWire,
  valuesEqual,
  type NativeAtom,
  type NativeValue,
} from "./values.js";

const U1 = "5a7bd8c8-5ab0-4a1e-9d5a-0f5c4b0a1234";
const U2 = "0e6033c1-b8cc-4908-b294-d84aa8fbd4af";

const t = (json: ColumnTypeJson) => parseColumnType(json);

describe("column types", () => {
  it("classifies scalar, optional, set and map as ovsdb-server does", () => {
    expect(t("string").kind).toBe("scalar");
    expect(t({ key: "string", min: 0, max: 1 }).kind).toBe("optional");
    expect(t({ key: "string", min: 0, max: "unlimited" }).kind).toBe("set");
    expect(t({ key: "integer", min: 1, max: 4 }).kind).toBe("set");
    expect(t({ key: "string", value: "string", min: 0, max: "unlimited" }).kind).toBe("map");
    expect(t({ key: { type: "string", enum: ["set", ["gre", "erspan"]] } }).key.enum).toEqual([
      "gre",
      "erspan",
    ]);
  });
});

describe("valueToWire / valueFromWire", () => {
  it("writes uuids as uuid or named-uuid by their form, and reads them back as strings", () => {
    const ref = t({ key: { type: "uuid", refTable: "Logical_Switch_Port" }, min: 0, max: "unlimited" });
    expect(valueToWire(ref, [U1, "new_port"], "ports")).toEqual(["set", [uuid(U1), namedUuid("new_port")]]);
    expect(valueFromWire(ref, ["set", [uuid(U1), uuid(U2)]], "ports")).toEqual([U1, U2]);
    expect(valueFromWire(ref, uuid(U1), "ports")).toEqual([U1]); // a bare atom is a one-element set
    expect(() => valueToWire(ref, ["not a name"], "ports")).toThrow(NotationError);
  });

  it("optional columns are the atom or null", () => {
    const opt = t({ key: "integer", min: 0, max: 1 });
    expect(valueToWire(opt, null, "tag")).toEqual(["set", []]);
    expect(valueToWire(opt, 7, "tag")).toBe(7);
    expect(valueFromWire(opt, ["set", []], "tag")).toBeNull();
    expect(valueFromWire(opt, 7, "tag")).toBe(7);
  });

  it("maps are records; integer keys round-trip through their text", () => {
    const queues = t({
      key: "integer",
      value: { type: "uuid", refTable: "Queue" },
      min: 0,
      max: "unlimited",
    });
    const wire = valueToWire(queues, { 0: U1, 7: U2 }, "queues");
    expect(wire).toEqual([
      "map",
      [
        [0, uuid(U1)],
        [7, uuid(U2)],
      ],
    ]);
    expect(valueFromWire(queues, wire, "queues")).toEqual({ 0: U1, 7: U2 });
    const ids = t({ key: "string", value: "string", min: 0, max: "unlimited" });
    expect(valueToWire(ids, new Map([["k", "v"]]), "external_ids")).toEqual(["map", [["k", "v"]]]);
  });

  it("rejects values of the wrong type, naming the column", () => {
    expect(() => valueToWire(t("integer"), 1.5, "Mirror.index")).toThrow(/Mirror.index: expected integer/);
    expect(() => valueToWire(t("string"), 3, "Mirror.name")).toThrow(/Mirror.name/);
    expect(() =>
      valueToWire(t({ key: "string", value: "string", min: 0, max: "unlimited" }), [], "m"),
    ).toThrow(NotationError);
  });

  it("knows each type's default (what update2 rows omit)", () => {
    expect(defaultValue(t("integer"))).toBe(0);
    expect(defaultValue(t("boolean"))).toBe(false);
    expect(defaultValue(t("string"))).toBe("");
    expect(defaultValue(t("uuid"))).toBe(ZERO_UUID);
    expect(defaultValue(t({ key: "string", min: 0, max: 1 }))).toBeNull();
    expect(defaultValue(t({ key: "string", min: 0, max: "unlimited" }))).toEqual([]);
    expect(defaultValue(t({ key: "string", value: "string", min: 0, max: "unlimited" }))).toEqual({});
  });
});

// ---- property tests -------------------------------------------------------------------

const atomicTypes: AtomicType[] = ["integer", "real", "boolean", "string", "uuid"];

function atomArb(type: AtomicType): fc.Arbitrary<NativeAtom> {
  switch (type) {
    case "integer":
      return fc.maxSafeInteger();
    case "real":
      return fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => (d === 0 ? 0 : d));
    case "boolean":
      return fc.boolean();
    case "string":
      return fc.string({ unit: "grapheme", maxLength: 12 });
    case "uuid":
      return fc.oneof(fc.uuid(), fc.stringMatching(/^[_a-zA-Z][_a-zA-Z0-9]{0,10}$/));
  }
}

const columnTypeArb: fc.Arbitrary<ColumnType> = fc
  .record({
    key: fc.constantFrom(...atomicTypes),
    value: fc.option(fc.constantFrom(...atomicTypes), { nil: undefined }),
    shape: fc.constantFrom("scalar", "optional", "set"),
  })
  .map(({ key, value, shape }) =>
    parseColumnType(
      value
        ? { key, value, min: 0, max: "unlimited" }
        : shape === "scalar"
          ? key
          : { key, min: 0, max: shape === "optional" ? 1 : "unlimited" },
    ),
  );

function valueArb(ct: ColumnType): fc.Arbitrary<NativeValue> {
  const key = atomArb(ct.key.type);
  switch (ct.kind) {
    case "scalar":
      return key;
    case "optional":
      return fc.option(key, { nil: null });
    case "set":
      return fc.uniqueArray(key, { maxLength: 6 });
    case "map":
      return fc
        .uniqueArray(fc.tuple(key, atomArb((ct.value ?? ct.key).type)), {
          maxLength: 6,
          selector: ([k]) => String(k),
        })
        .map((pairs) => Object.fromEntries(pairs.map(([k, v]) => [String(k), v])));
  }
}

describe("notation round-trips (property)", () => {
  it("JS value → wire → JSON → wire → JS value is the identity", () => {
    fc.assert(
      fc.property(
        columnTypeArb.chain((ct) => fc.tuple(fc.constant(ct), valueArb(ct))),
        ([ct, v]) => {
          const wire = valueToWire(ct, v, "c");
          const overTheWire = JSON.parse(JSON.stringify(wire)) as WireValue;
          expect(isWireValue(overTheWire)).toBe(true);
          const back = valueFromWire(ct, overTheWire, "c");
          expect(valuesEqual(back, v)).toBe(true);
          expect(back).toEqual(v);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("wire → JS → wire keeps the elements (servers may send a one-element set as its atom)", () => {
    fc.assert(
      fc.property(
        columnTypeArb
          .filter((ct) => ct.kind === "set" && ct.key.type !== "uuid")
          .chain((ct) =>
            fc.tuple(fc.constant(ct), fc.uniqueArray(atomArb(ct.key.type), { minLength: 1, maxLength: 1 })),
          ),
        ([ct, [atom]]) => {
          const asAtom = atom as NativeAtom;
          expect(valueToWire(ct, valueFromWire(ct, asAtom, "c"), "c")).toEqual(["set", [asAtom]]);
        },
      ),
    );
  });
});
