import { describe, expect, it } from "vitest";
import { nbOp, op } from "../client/op.js";
import {
  ConstraintViolationError,
  NotationError,
  ReferentialIntegrityViolationError,
  TimedOutError,
  TransactionError,
} from "../errors.js";
import { decodeResults, encodeOperation, type Operation } from "./operations.js";
import type { DatabaseSchema } from "./schema.js";

/** A slice of the OVN_Northbound 7.0.0 schema. */
const schema: DatabaseSchema = {
  name: "OVN_Northbound",
  version: "7.0.0",
  tables: {
    Logical_Switch: {
      columns: {
        name: { type: "string" },
        ports: {
          type: {
            key: { type: "uuid", refTable: "Logical_Switch_Port", refType: "strong" },
            min: 0,
            max: "unlimited",
          },
        },
        other_config: { type: { key: "string", value: "string", min: 0, max: "unlimited" } },
      },
      isRoot: true,
    },
    Logical_Switch_Port: {
      columns: {
        name: { type: "string" },
        tag: { type: { key: { type: "integer", minInteger: 1, maxInteger: 4095 }, min: 0, max: 1 } },
        mirror_rules: {
          type: { key: { type: "uuid", refTable: "Mirror", refType: "weak" }, min: 0, max: "unlimited" },
        },
      },
    },
    Mirror: {
      columns: {
        name: { type: "string" },
        index: { type: "integer" },
        filter: { type: { key: { type: "string", enum: ["set", ["from-lport", "to-lport"]] } } },
        external_ids: { type: { key: "string", value: "string", min: 0, max: "unlimited" } },
      },
      isRoot: true,
      indexes: [["name"]],
    },
  },
};

const U1 = "5a7bd8c8-5ab0-4a1e-9d5a-0f5c4b0a1234";

describe("encodeOperation", () => {
  it("encodes an insert with a uuid-name and a reference to another insert's uuid-name", () => {
    expect(encodeOperation(schema, nbOp.insert("Logical_Switch_Port", { name: "p0" }, "p0"))).toEqual({
      op: "insert",
      table: "Logical_Switch_Port",
      row: { name: "p0" },
      "uuid-name": "p0",
    });
    expect(encodeOperation(schema, nbOp.insert("Logical_Switch", { name: "ls", ports: ["p0", U1] }))).toEqual(
      {
        op: "insert",
        table: "Logical_Switch",
        row: {
          name: "ls",
          ports: [
            "set",
            [
              ["named-uuid", "p0"],
              ["uuid", U1],
            ],
          ],
        },
      },
    );
  });

  it("encodes conditions by the column's type, including _uuid", () => {
    expect(
      encodeOperation(
        schema,
        nbOp.select("Mirror", [
          ["_uuid", "==", U1],
          ["external_ids", "includes", { "ovntap/mirror": "m1" }],
          ["index", ">=", 10],
        ]),
      ),
    ).toEqual({
      op: "select",
      table: "Mirror",
      where: [
        ["_uuid", "==", ["uuid", U1]],
        ["external_ids", "includes", ["map", [["ovntap/mirror", "m1"]]]],
        ["index", ">=", 10],
      ],
    });
  });

  it("encodes mutations: set insert/delete, map insert, map delete by keys, arithmetic", () => {
    expect(
      encodeOperation(
        schema,
        nbOp.mutate(
          "Logical_Switch",
          [["name", "==", "ls"]],
          [
            ["ports", "insert", U1],
            ["ports", "delete", [U1]],
            ["other_config", "insert", { a: "1" }],
            ["other_config", "delete", ["a", "b"]],
            ["other_config", "delete", { a: "1" }],
          ],
        ),
      ),
    ).toEqual({
      op: "mutate",
      table: "Logical_Switch",
      where: [["name", "==", "ls"]],
      mutations: [
        ["ports", "insert", ["set", [["uuid", U1]]]],
        ["ports", "delete", ["set", [["uuid", U1]]]],
        ["other_config", "insert", ["map", [["a", "1"]]]],
        ["other_config", "delete", ["set", ["a", "b"]]],
        ["other_config", "delete", ["map", [["a", "1"]]]],
      ],
    });
    expect(encodeOperation(schema, nbOp.mutate("Mirror", [], [["index", "+=", 1]]))).toMatchObject({
      mutations: [["index", "+=", 1]],
    });
  });

  it("encodes wait, commit, abort, comment and assert", () => {
    expect(encodeOperation(schema, nbOp.wait("Mirror", [], ["name"], "==", [{ name: "m" }], 0))).toEqual({
      op: "wait",
      table: "Mirror",
      where: [],
      columns: ["name"],
      until: "==",
      rows: [{ name: "m" }],
      timeout: 0,
    });
    expect(encodeOperation(schema, op.commit(true))).toEqual({ op: "commit", durable: true });
    expect(encodeOperation(schema, op.abort())).toEqual({ op: "abort" });
    expect(encodeOperation(schema, op.comment("hi"))).toEqual({ op: "comment", comment: "hi" });
    expect(encodeOperation(schema, op.assert("L"))).toEqual({ op: "assert", lock: "L" });
  });

  it("names the operation, table and column when a value does not fit", () => {
    expect(() => encodeOperation(schema, op.insert("Mirror", { index: "x" }), 3)).toThrow(
      /operation 3 \(insert into Mirror\): Mirror.index: expected integer/,
    );
    expect(() => encodeOperation(schema, op.insert("Nope", {}))).toThrow(NotationError);
    expect(() => encodeOperation(schema, op.update("Mirror", [], { nope: 1 }))).toThrow(
      /Mirror.nope is not in/,
    );
  });
});

describe("decodeResults", () => {
  const ops = [
    nbOp.insert("Mirror", { name: "m" }),
    nbOp.select("Mirror", [], ["name", "index"]),
    nbOp.update("Mirror", [], { index: 2 }),
    nbOp.comment("c"),
  ] as const;

  it("types and converts each result", () => {
    const [ins, sel, upd, com] = decodeResults(schema, ops, [
      { uuid: ["uuid", U1] },
      { rows: [{ name: "m", index: 1 }] },
      { count: 1 },
      {},
    ]);
    expect(ins.uuid).toBe(U1);
    expect(sel.rows[0]?.name).toBe("m");
    expect(upd.count).toBe(1);
    expect(com).toEqual({});
  });

  it("maps an operation's error to its class with the operation's index", () => {
    const err = catchErr(() =>
      decodeResults(schema, ops, [
        { uuid: ["uuid", U1] },
        { error: "timed out", details: "slow" },
        null,
        null,
      ]),
    );
    expect(err).toBeInstanceOf(TransactionError);
    expect(err.index).toBe(1);
    expect(err.commitFailed).toBe(false);
    expect(err.cause).toBeInstanceOf(TimedOutError);
    expect(err.cause.index).toBe(1);
    expect(err.cause.details).toBe("slow");
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/operation 1 \(select from Mirror\)/);
  });

  it("RFC 7047 §4.1.3: one more result than operations means the commit failed", () => {
    const two: Operation[] = [nbOp.insert("Mirror", { name: "m" }), nbOp.insert("Mirror", { name: "m" })];
    const err = catchErr(() =>
      decodeResults(schema, two, [
        { uuid: ["uuid", U1] },
        { uuid: ["uuid", U1] },
        { error: "referential integrity violation", details: "dangling" },
      ]),
    );
    expect(err.index).toBe(2);
    expect(err.commitFailed).toBe(true);
    expect(err.cause).toBeInstanceOf(ReferentialIntegrityViolationError);
    expect(err.retryable).toBe(false);
  });

  it("a constraint violation is not retryable", () => {
    const err = catchErr(() => decodeResults(schema, [ops[0]], [{ error: "constraint violation" }]));
    expect(err.cause).toBeInstanceOf(ConstraintViolationError);
    expect(err.retryable).toBe(false);
  });

  it("rejects a reply with fewer results than operations", () => {
    expect(() => decodeResults(schema, ops, [{}])).toThrow(/returned 1 results for 4 operations/);
  });
});

function catchErr(f: () => unknown): TransactionError {
  try {
    f();
  } catch (err) {
    return err as TransactionError;
  }
  throw new Error("expected an error");
}
