import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { uuid } from "./notation.js";
import { parseColumnType } from "./schema.js";
import { applyColumnDiff, classifyUpdate, classifyUpdate2 } from "./updates.js";
import { valueToWire, type NativeAtom } from "./values.js";

const strings = parseColumnType({ key: "string", min: 0, max: "unlimited" });
const ints = parseColumnType({ key: "integer", min: 0, max: "unlimited" });
const smap = parseColumnType({ key: "string", value: "string", min: 0, max: "unlimited" });
const optional = parseColumnType({ key: "string", min: 0, max: 1 });
const refs = parseColumnType({
  key: { type: "uuid", refTable: "Mirror", refType: "weak" },
  min: 0,
  max: "unlimited",
});
const U1 = "5a7bd8c8-5ab0-4a1e-9d5a-0f5c4b0a1234";
const U2 = "0e6033c1-b8cc-4908-b294-d84aa8fbd4af";

describe("update2 modify diffs (ovsdb-server(7) §4.1.14)", () => {
  it("a set diff toggles each element", () => {
    expect(applyColumnDiff(strings, ["a", "b"], ["set", ["b", "c"]], "c")).toEqual(["a", "c"]);
    expect(applyColumnDiff(refs, [U1], uuid(U2), "mirror_rules")).toEqual([U1, U2]); // bare atom = one element
    expect(applyColumnDiff(refs, [U1, U2], uuid(U1), "mirror_rules")).toEqual([U2]);
  });

  it("a map diff adds new keys, removes equal pairs and replaces changed values", () => {
    // The exact diff ovsdb-server 3.1 sent for other_config {b:2, c:3} → {b:22, c:3}.
    expect(applyColumnDiff(smap, { b: "2", c: "3" }, ["map", [["b", "22"]]], "other_config")).toEqual({
      b: "22",
      c: "3",
    });
    expect(
      applyColumnDiff(
        smap,
        { a: "1", b: "2" },
        [
          "map",
          [
            ["a", "1"],
            ["c", "3"],
          ],
        ],
        "x",
      ),
    ).toEqual({
      b: "2",
      c: "3",
    });
  });

  it("a column holding at most one value carries the new value", () => {
    expect(applyColumnDiff(optional, "x", "y", "parent_name")).toBe("y");
    expect(applyColumnDiff(optional, "x", ["set", []], "parent_name")).toBeNull();
    expect(applyColumnDiff(parseColumnType("integer"), 5, 6, "index")).toBe(6);
  });

  it("property: applying the server's diff of old→new to old yields new (sets and maps)", () => {
    const atom = fc.oneof(fc.integer({ min: 0, max: 20 }).map(String), fc.constantFrom("a", "b", "c"));
    fc.assert(
      fc.property(fc.uniqueArray(atom), fc.uniqueArray(atom), (oldSet, newSet) => {
        // The diff: elements in exactly one of old and new.
        const diff = [
          ...oldSet.filter((x) => !newSet.includes(x)),
          ...newSet.filter((x) => !oldSet.includes(x)),
        ];
        const got = applyColumnDiff(strings, oldSet, valueToWire(strings, diff, "c"), "c") as NativeAtom[];
        expect([...got].sort()).toEqual([...newSet].sort());
      }),
    );
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom("k1", "k2", "k3", "k4"), fc.constantFrom("1", "2")),
        fc.dictionary(fc.constantFrom("k1", "k2", "k3", "k4"), fc.constantFrom("1", "2")),
        (oldMap, newMap) => {
          const diff: Record<string, string> = {};
          for (const [k, v] of Object.entries(oldMap)) if (!(k in newMap)) diff[k] = v;
          for (const [k, v] of Object.entries(newMap)) if (!(k in oldMap) || oldMap[k] !== v) diff[k] = v;
          expect(applyColumnDiff(smap, oldMap, valueToWire(smap, diff, "m"), "m")).toEqual(newMap);
        },
      ),
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 9 })),
        fc.uniqueArray(fc.integer({ min: 0, max: 9 })),
        (o, n) => {
          const diff = [...o.filter((x) => !n.includes(x)), ...n.filter((x) => !o.includes(x))];
          const got = applyColumnDiff(ints, o, valueToWire(ints, diff, "c"), "c") as number[];
          expect([...got].sort()).toEqual([...n].sort());
        },
      ),
    );
  });
});

describe("row update classification", () => {
  it("update2 rows", () => {
    expect(classifyUpdate2({ initial: { a: 1 } }, "t").kind).toBe("initial");
    expect(classifyUpdate2({ insert: {} }, "t").kind).toBe("insert");
    expect(classifyUpdate2({ modify: { a: 2 } }, "t").kind).toBe("modify");
    expect(classifyUpdate2({ delete: null }, "t").kind).toBe("delete");
    expect(() => classifyUpdate2({ frob: 1 }, "t")).toThrow(/malformed/);
  });
  it("RFC 7047 §4.1.6 rows", () => {
    expect(classifyUpdate({ new: { a: 1 } }, "t").kind).toBe("insert");
    expect(classifyUpdate({ old: { a: 1 }, new: { a: 2 } }, "t").kind).toBe("replace");
    expect(classifyUpdate({ old: { a: 1 } }, "t").kind).toBe("delete");
  });
});
