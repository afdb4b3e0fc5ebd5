import { describe, expect, it } from "vitest";
import type { DatabaseSchema } from "../ovsdb/schema.js";
import { OvsdbCache, type RowEvent } from "./cache.js";

const schema: DatabaseSchema = {
  name: "OVN_Northbound",
  version: "7.0.0",
  tables: {
    Mirror: {
      columns: {
        name: { type: "string" },
        index: { type: "integer" },
        external_ids: { type: { key: "string", value: "string", min: 0, max: "unlimited" } },
      },
    },
  },
};
const A = "aaaaaaaa-0000-0000-0000-000000000001";
const B = "bbbbbbbb-0000-0000-0000-000000000002";
const C = "cccccccc-0000-0000-0000-000000000003";

function setup() {
  const cache = new OvsdbCache();
  const db = cache.db("OVN_Northbound");
  db.setSchema(schema);
  db.track("Mirror", undefined);
  const events: RowEvent[] = [];
  cache.on("change", (e) => events.push(e));
  const apply = (u: Parameters<typeof db.applyUpdates2>[0]) => cache.dispatch(db.name, db.applyUpdates2(u));
  return { cache, db, events, apply };
}

describe("cache", () => {
  it("fills omitted default columns on insert and applies modify diffs", () => {
    const { cache, events, apply } = setup();
    apply({ Mirror: { [A]: { insert: { name: "m1" } } } });
    const mirrors = cache.table("OVN_Northbound", "Mirror");
    expect(mirrors.get(A)).toEqual({ _uuid: A, name: "m1", index: 0, external_ids: {} });
    apply({ Mirror: { [A]: { modify: { index: 5, external_ids: ["map", [["k", "v"]]] } } } });
    expect(mirrors.get(A)).toMatchObject({ index: 5, external_ids: { k: "v" } });
    expect(events.map((e) => e.type)).toEqual(["insert", "update"]);
    const upd = events[1] as Extract<RowEvent, { type: "update" }>;
    expect(upd.old.index).toBe(0);
    expect(upd.new.index).toBe(5);
    apply({ Mirror: { [A]: { delete: null } } });
    expect(mirrors.size).toBe(0);
    expect(events[2]).toMatchObject({ type: "delete", uuid: A, old: { name: "m1", index: 5 } });
  });

  it("rows are frozen", () => {
    const { cache, apply } = setup();
    apply({ Mirror: { [A]: { insert: { name: "m1", external_ids: ["map", [["k", "v"]]] } } } });
    const row = cache.table("OVN_Northbound", "Mirror").get(A) as unknown as Record<string, unknown>;
    expect(Object.isFrozen(row)).toBe(true);
    expect(Object.isFrozen(row.external_ids)).toBe(true);
  });

  it("a full reload emits deletes for vanished rows, inserts for new, updates for changed, nothing for the rest", () => {
    const { cache, db, events, apply } = setup();
    apply({
      Mirror: { [A]: { insert: { name: "a" } }, [B]: { insert: { name: "b" } } },
    });
    events.length = 0;
    const resyncs: unknown[] = [];
    cache.on("resync", (r) => resyncs.push(r));
    const { events: diff, resync } = db.replace(
      ["Mirror"],
      { Mirror: { [B]: { initial: { name: "b", index: 2 } }, [C]: { initial: { name: "c" } } } },
      "update2",
    );
    cache.dispatch(db.name, diff, resync);
    expect(events.map((e) => `${e.type}:${e.uuid}`).sort()).toEqual([
      `delete:${A}`,
      `insert:${C}`,
      `update:${B}`,
    ]);
    expect(resyncs).toEqual([
      { database: "OVN_Northbound", tables: ["Mirror"], inserted: 1, updated: 1, deleted: 1 },
    ]);
    expect(cache.table("OVN_Northbound", "Mirror").uuids().sort()).toEqual([B, C]);
    events.length = 0;
    const again = db.replace(
      ["Mirror"],
      { Mirror: { [B]: { initial: { name: "b", index: 2 } }, [C]: { initial: { name: "c" } } } },
      "update2",
    );
    expect(again.events).toEqual([]);
  });

  it("a throwing listener does not stop other listeners or the cache", () => {
    const { cache, events, apply } = setup();
    cache.table("OVN_Northbound", "Mirror").on("change", () => {
      throw new Error("listener bug");
    });
    apply({ Mirror: { [A]: { insert: { name: "a" } } } });
    expect(events).toHaveLength(1);
    expect(cache.table("OVN_Northbound", "Mirror").size).toBe(1);
  });

  it("applies RFC 7047 §4.1.6 updates (monitor method)", () => {
    const cache = new OvsdbCache();
    const db = cache.db("OVN_Northbound");
    db.setSchema(schema);
    db.track("Mirror", ["name", "index"]);
    const ev1 = db.applyUpdates({ Mirror: { [A]: { new: { name: "a", index: 1 } } } });
    const ev2 = db.applyUpdates({ Mirror: { [A]: { old: { index: 1 }, new: { name: "a", index: 2 } } } });
    const ev3 = db.applyUpdates({ Mirror: { [A]: { old: { name: "a", index: 2 } } } });
    expect([...ev1, ...ev2, ...ev3].map((e) => e.type)).toEqual(["insert", "update", "delete"]);
  });
});
