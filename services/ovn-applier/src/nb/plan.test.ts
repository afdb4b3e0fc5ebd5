import { MirrorSpec } from "@ovntap/contracts";
import { nbOp } from "@ovntap/ovsdb";
import { describe, expect, it } from "vitest";
import { ReconcileError, reasonOf } from "./errors.js";
import { canonicalSink, keySpace, lowestFree } from "./keys.js";
import { GENERATION_KEY, KEY_KEY, mirrorId, OWNER_KEY, ownerOf, parseMirrorId, rowName } from "./names.js";
import { planOperations } from "./ops.js";
import {
  arrayView,
  planMirror,
  resolveSpec,
  type DesiredMirror,
  type MirrorRow,
  type NbView,
  type PlanOptions,
  type PortRow,
} from "./plan.js";

const OVN_2303: PlanOptions = { filters: ["from-lport", "to-lport"], types: ["gre", "erspan"] };
const OVN_2306: PlanOptions = {
  filters: ["from-lport", "to-lport", "both"],
  types: ["gre", "erspan", "local"],
};
const SINK = "198.51.100.2";

function desired(spec: Partial<MirrorSpec> = {}, generation = 1): DesiredMirror {
  const full = MirrorSpec.parse({
    name: "web",
    namespace: "shop",
    sources: { type: "pods", names: ["pod-a"] },
    direction: "egress",
    target: { type: "gre", sink: SINK },
    ...spec,
  });
  return { namespace: full.namespace, name: full.name, generation, spec: full };
}

let uuidSeq = 0;
const uuid = () => `00000000-0000-4000-8000-${String(++uuidSeq).padStart(12, "0")}`;

function mirrorRow(over: Partial<MirrorRow> & { name: string }): MirrorRow {
  return {
    _uuid: uuid(),
    filter: "from-lport",
    sink: SINK,
    type: "gre",
    index: 0,
    external_ids: {},
    ...over,
  };
}
const port = (name: string, mirror_rules: string[] = []): PortRow => ({ _uuid: uuid(), name, mirror_rules });

/**
 * The view NbState gives: the same rows, read only through the name/owner/sink indexes (a
 * scan of every row throws, so a plan that would still scan fails the test).
 */
function indexedView(state: { mirrors: readonly MirrorRow[]; ports: readonly PortRow[] }): NbView {
  return {
    ...arrayView(state),
    mirrors: () => {
      throw new Error("a plan over the indexed view scanned every Mirror row");
    },
    mirrorByName: (name) => state.mirrors.find((r) => r.name === name),
    mirrorsOwnedBy: (id) => state.mirrors.filter((r) => ownerOf(r) === id),
    mirrorsTowards: (sink) => state.mirrors.filter((r) => (canonicalSink(r.sink) ?? r.sink) === sink),
  };
}

/** Plans over the plain rows; every test also checks that the indexed view plans the same. */
function plan(
  d: DesiredMirror | undefined,
  state: { mirrors?: MirrorRow[]; ports?: PortRow[] },
  opts = OVN_2303,
) {
  const id = d ? mirrorId(d) : "shop/web";
  const rows = { mirrors: state.mirrors ?? [], ports: state.ports ?? [] };
  const resolved = d ? resolveSpec(d, opts) : undefined;
  const scanned = planMirror(id, d?.generation ?? 0, resolved, arrayView(rows));
  expect(planMirror(id, d?.generation ?? 0, resolved, indexedView(rows))).toEqual(scanned);
  return scanned;
}

function failure(f: () => unknown): ReconcileError {
  try {
    f();
  } catch (err) {
    if (err instanceof ReconcileError) return err;
    throw err;
  }
  throw new Error("expected a ReconcileError");
}

describe("names", () => {
  it("are deterministic and injective: '.' never occurs in DNS labels", () => {
    expect(rowName({ namespace: "a-b", name: "c" })).toBe("ovntap.a-b.c");
    expect(rowName({ namespace: "a", name: "b-c" })).toBe("ovntap.a.b-c");
    expect(rowName({ namespace: "shop", name: "web" }, "in")).toBe("ovntap.shop.web.in");
    // a mirror named "web-in" cannot collide with the "in" row of "web"
    expect(rowName({ namespace: "shop", name: "web-in" })).not.toBe(
      rowName({ namespace: "shop", name: "web" }, "in"),
    );
    expect(parseMirrorId("shop/web")).toEqual({ namespace: "shop", name: "web" });
    expect(parseMirrorId("shop/web/x")).toBeUndefined();
  });

  it("reasons are CamelCase codes", () => {
    expect(reasonOf("KEY_IN_USE")).toBe("KeyInUse");
    expect(reasonOf("UNSUPPORTED")).toBe("Unsupported");
  });
});

describe("keys", () => {
  it("lowest free key in the space", () => {
    expect(lowestFree(new Set(), keySpace("gre"))).toBe(0);
    expect(lowestFree(new Set([0, 1, 3]), keySpace("gre"))).toBe(2);
    expect(lowestFree(new Set([5, 1, 0, 2, 3, 4]), keySpace("erspan"))).toBe(6);
    expect(
      lowestFree(new Set(Array.from({ length: 1024 }, (_, i) => i)), keySpace("erspan")),
    ).toBeUndefined();
    expect(lowestFree(new Set(Array.from({ length: 1024 }, (_, i) => i)), keySpace("gre"))).toBe(1024);
  });
});

describe("resolveSpec", () => {
  it("pods become <pod>.<namespace> ports; ports stay as given", () => {
    const r = resolveSpec(desired({ sources: { type: "pods", names: ["pod-a", "pod-b"] } }), OVN_2303);
    expect(r).toMatchObject({ kind: "ovn", ports: ["pod-a.shop", "pod-b.shop"], type: "gre", sink: SINK });
    const p = resolveSpec(desired({ sources: { type: "ports", names: ["lsp1", "x.y"] } }), OVN_2303);
    expect(p).toMatchObject({ ports: ["lsp1", "x.y"] });
  });

  it("directions: ingress to-lport, egress from-lport, both as one row or two", () => {
    expect(resolveSpec(desired({ direction: "ingress" }), OVN_2303)).toMatchObject({
      rows: [{ name: "ovntap.shop.web", filter: "to-lport" }],
    });
    expect(resolveSpec(desired({ direction: "egress" }), OVN_2303)).toMatchObject({
      rows: [{ name: "ovntap.shop.web", filter: "from-lport" }],
    });
    expect(resolveSpec(desired({ direction: "both" }), OVN_2303)).toMatchObject({
      rows: [
        { name: "ovntap.shop.web.out", filter: "from-lport", part: "out" },
        { name: "ovntap.shop.web.in", filter: "to-lport", part: "in" },
      ],
    });
    expect(resolveSpec(desired({ direction: "both" }), OVN_2306)).toMatchObject({
      rows: [{ name: "ovntap.shop.web", filter: "both" }],
    });
  });

  it("targets: gre key, erspan session id, collector from config", () => {
    expect(resolveSpec(desired({ target: { type: "gre", sink: SINK, key: 9 } }), OVN_2303)).toMatchObject({
      type: "gre",
      requestedKey: 9,
    });
    expect(
      resolveSpec(desired({ target: { type: "erspan", sink: SINK, sessionId: 7 } }), OVN_2303),
    ).toMatchObject({ type: "erspan", requestedKey: 7 });
    expect(
      resolveSpec(desired({ target: { type: "collector" } }), { ...OVN_2303, collectorSink: "192.0.2.9" }),
    ).toMatchObject({ type: "gre", sink: "192.0.2.9", requestedKey: undefined });
  });

  it("what this applier cannot do is UNSUPPORTED (terminal); ovs sources are foreign", () => {
    const sel = failure(() =>
      resolveSpec(desired({ sources: { type: "selector", matchLabels: { app: "web" } } }), OVN_2303),
    );
    expect(sel).toMatchObject({ code: "UNSUPPORTED", retryable: false, reason: "Unsupported" });
    expect(failure(() => resolveSpec(desired({ target: { type: "collector" } }), OVN_2303)).code).toBe(
      "UNSUPPORTED",
    );
    expect(
      failure(() =>
        resolveSpec(
          desired({ target: { type: "gre", sink: { pod: { namespace: "a", name: "b" } } } }),
          OVN_2303,
        ),
      ).code,
    ).toBe("UNSUPPORTED");
    // one key cannot serve two tunnels to one sink
    expect(
      failure(() =>
        resolveSpec(desired({ direction: "both", target: { type: "gre", sink: SINK, key: 5 } }), OVN_2303),
      ).message,
    ).toMatch(/two Mirror rows/);
    expect(
      resolveSpec(desired({ direction: "both", target: { type: "gre", sink: SINK, key: 5 } }), OVN_2306),
    ).toMatchObject({ requestedKey: 5 });
    const ovs = resolveSpec(
      desired({
        sources: { type: "ovs", node: "n1", bridge: "br0", ports: ["p1"] },
        target: { type: "gre", sink: SINK },
      }),
      OVN_2303,
    );
    expect(ovs.kind).toBe("foreign");
  });
});

describe("planMirror", () => {
  it("creates the row with the lowest free key, attaches the port, and guards the key", () => {
    const pa = port("pod-a.shop");
    const p = plan(desired(), { ports: [pa, port("pod-b.shop")] });
    expect(p.changed).toBe(true);
    expect(p.rows).toEqual([
      expect.objectContaining({
        name: "ovntap.shop.web",
        action: "create",
        index: 1,
        key: "allocated",
        filter: "from-lport",
        externalIds: { [OWNER_KEY]: "shop/web", [GENERATION_KEY]: "1", [KEY_KEY]: "1" },
      }),
    ]);
    expect(p.attach).toEqual([{ port: pa, refs: ["row0"] }]);
    expect(p.guards).toEqual([{ sink: SINK, rows: [] }]);
    expect(p.keysAllocated).toBe(1);
    expect(p.changes).toEqual([
      { table: "Mirror", name: "ovntap.shop.web", action: "created" },
      { table: "Logical_Switch_Port", name: "pod-a.shop", action: "updated" },
    ]);
  });

  it("avoids every key used towards the sink, by any row in any spelling of the sink", () => {
    const v6 = "2001:db8::2";
    const mirrors = [
      mirrorRow({ name: "manual", index: 0 }), // unowned, same sink
      mirrorRow({ name: "other", index: 1, external_ids: { [OWNER_KEY]: "shop/other" } }),
      mirrorRow({ name: "elsewhere", index: 2, sink: "192.0.2.1" }), // other sink: irrelevant
      mirrorRow({ name: "v6", index: 4, sink: "2001:DB8:0::2" }),
    ];
    expect(plan(desired(), { mirrors }).rows[0]?.index).toBe(2);
    const p6 = plan(desired({ target: { type: "gre", sink: v6 } }), { mirrors });
    expect(p6.rows[0]?.index).toBe(1); // allocation starts at 1
    expect(p6.rows[0]?.sink).toBe(v6);
    // one guard per spelling seen, plus ours
    expect(p6.guards).toEqual([
      { sink: v6, rows: [] },
      { sink: "2001:DB8:0::2", rows: [{ name: "v6", index: 4 }] },
    ]);
    const p6b = plan(desired({ target: { type: "gre", sink: v6 } }), {
      mirrors: [...mirrors, mirrorRow({ name: "v6b", index: 1, sink: v6 })],
    });
    expect(p6b.rows[0]?.index).toBe(2);
  });

  it("both on OVN 23.03: two rows, two distinct keys", () => {
    const p = plan(desired({ direction: "both" }), {
      mirrors: [mirrorRow({ name: "manual", index: 0 })],
      ports: [port("pod-a.shop")],
    });
    expect(p.rows.map((r) => [r.name, r.filter, r.index])).toEqual([
      ["ovntap.shop.web.out", "from-lport", 1],
      ["ovntap.shop.web.in", "to-lport", 2],
    ]);
    expect(p.attach[0]?.refs).toEqual(["row0", "row1"]);
  });

  it("allocates from 1, and still honours a requested key 0", () => {
    expect(plan(desired(), { mirrors: [] }).rows[0]).toMatchObject({ index: 1, key: "allocated" });
    const zero = plan(desired({ target: { type: "gre", sink: SINK, key: 0 } }), { mirrors: [] });
    expect(zero.rows[0]).toMatchObject({ index: 0, key: "requested" });
  });

  it("a requested key in use is KEY_IN_USE; a free one is used", () => {
    const mirrors = [mirrorRow({ name: "manual", index: 7 })];
    const err = failure(() => plan(desired({ target: { type: "gre", sink: SINK, key: 7 } }), { mirrors }));
    expect(err).toMatchObject({ code: "KEY_IN_USE", retryable: false });
    expect(err.message).toContain("manual");
    const ok = plan(desired({ target: { type: "gre", sink: SINK, key: 8 } }), { mirrors });
    expect(ok.rows[0]).toMatchObject({ index: 8, key: "requested" });
    expect(ok.guards).toHaveLength(1);
  });

  it("ERSPAN session ids are 0..1023: KEY_SPACE_EXHAUSTED when all are taken", () => {
    const mirrors = Array.from({ length: 1024 }, (_, i) => mirrorRow({ name: `m${i}`, index: i }));
    const err = failure(() => plan(desired({ target: { type: "erspan", sink: SINK } }), { mirrors }));
    expect(err).toMatchObject({ code: "KEY_SPACE_EXHAUSTED", retryable: true });
    // GRE still has room above 1023
    expect(plan(desired(), { mirrors }).rows[0]?.index).toBe(1024);
  });

  it("an unowned row holding our name is never touched: ALREADY_EXISTS", () => {
    const err = failure(() => plan(desired(), { mirrors: [mirrorRow({ name: "ovntap.shop.web" })] }));
    expect(err.code).toBe("ALREADY_EXISTS");
  });

  const applied = (over: Partial<MirrorRow> = {}, gen = 1): MirrorRow =>
    mirrorRow({
      name: "ovntap.shop.web",
      index: 3,
      external_ids: { [OWNER_KEY]: "shop/web", [GENERATION_KEY]: String(gen), [KEY_KEY]: "3" },
      ...over,
    });

  it("is empty when NB already matches (no transaction)", () => {
    const row = applied();
    const p = plan(desired(), { mirrors: [row], ports: [port("pod-a.shop", [row._uuid])] });
    expect(p.changed).toBe(false);
    expect(p.rows[0]).toMatchObject({ action: "keep", index: 3, uuid: row._uuid });
    expect(p.guards).toEqual([]);
  });

  it("puts back an edited index, sink, type or filter, keeping the recorded key", () => {
    for (const edit of [{ index: 9 }, { sink: "192.0.2.77" }, { type: "erspan" }, { filter: "to-lport" }]) {
      const row = applied(edit);
      const p = plan(desired(), { mirrors: [row], ports: [port("pod-a.shop", [row._uuid])] });
      expect(p.changed).toBe(true);
      expect(p.rows[0]).toMatchObject({
        action: "update",
        index: 3,
        sink: SINK,
        type: "gre",
        filter: "from-lport",
      });
      expect(p.changes).toEqual([expect.objectContaining({ table: "Mirror", action: "updated" })]);
    }
  });

  it("keeps the key a row holds when a row ovntap does not own takes it by hand", () => {
    const row = applied();
    const p = plan(desired(), {
      mirrors: [row, mirrorRow({ name: "manual", index: 3 })],
      ports: [port("pod-a.shop", [row._uuid])],
    });
    expect(p.rows[0]).toMatchObject({ action: "keep", index: 3, key: "kept" });
    expect(p.changed).toBe(false);
    // A row put on that key by hand (its recorded key edited too) stays there as well.
    const forced = applied({
      index: 3,
      external_ids: { [OWNER_KEY]: "shop/web", [GENERATION_KEY]: "1", [KEY_KEY]: "3" },
    });
    const q = plan(desired(), {
      mirrors: [forced, mirrorRow({ name: "manual", index: 3 })],
      ports: [port("pod-a.shop", [forced._uuid])],
    });
    expect(q.rows[0]).toMatchObject({ action: "keep", index: 3 });
    // A requested key the row holds is kept too, rather than refused as KEY_IN_USE.
    const asked = plan(desired({ target: { type: "gre", sink: SINK, key: 3 } }), {
      mirrors: [row, mirrorRow({ name: "manual", index: 3 })],
      ports: [port("pod-a.shop", [row._uuid])],
    });
    expect(asked.rows[0]).toMatchObject({ action: "keep", index: 3, key: "requested" });
  });

  it("a row still to get its key avoids foreign keys; a row moved off its key by hand goes back unless that key is taken", () => {
    const fresh = plan(desired(), { mirrors: [mirrorRow({ name: "manual", index: 1 })], ports: [] });
    expect(fresh.rows[0]).toMatchObject({ action: "create", index: 2, key: "allocated" });
    // Recorded key 3, index edited to 9 by hand, and meanwhile a foreign row took 3.
    const row = applied({ index: 9 });
    const p = plan(desired(), {
      mirrors: [row, mirrorRow({ name: "manual", index: 3 })],
      ports: [port("pod-a.shop", [row._uuid])],
    });
    expect(p.rows[0]).toMatchObject({ action: "update", index: 1, key: "allocated" });
  });

  it("re-keys a row whose key another ovntap mirror holds towards the sink", () => {
    const row = applied();
    const other = mirrorRow({
      name: "ovntap.shop.other",
      index: 3,
      external_ids: { [OWNER_KEY]: "shop/other", [GENERATION_KEY]: "1", [KEY_KEY]: "3" },
    });
    const p = plan(desired(), { mirrors: [row, other], ports: [port("pod-a.shop", [row._uuid])] });
    expect(p.rows[0]).toMatchObject({ action: "update", index: 1, key: "allocated" });
    expect(p.guards).toHaveLength(1);
    // Moving off it is getting a new key there: a key a foreign row holds is out as well.
    const manual = mirrorRow({ name: "manual", index: 1 });
    const q = plan(desired(), { mirrors: [row, other, manual], ports: [port("pod-a.shop", [row._uuid])] });
    expect(q.rows[0]).toMatchObject({ action: "update", index: 2, key: "allocated" });
  });

  it("avoids the keys node agents hold towards the sink; a requested one is KEY_IN_USE naming the holder", () => {
    const d = desired();
    const resolved = resolveSpec(d, OVN_2303);
    const agents = new Map([
      [1, "the tunnel of ovs mirror shop/tap on node n1"],
      [2, "the tunnel of ovs mirror shop/tap2 on node n2"],
    ]);
    const fresh = planMirror("shop/web", 1, resolved, arrayView({ mirrors: [], ports: [] }), agents);
    expect(fresh.rows[0]).toMatchObject({ index: 3, key: "allocated" });
    // A row whose key an agent now holds moves, like one whose key another NB row took.
    const row = applied({
      index: 1,
      external_ids: { [OWNER_KEY]: "shop/web", [GENERATION_KEY]: "1", [KEY_KEY]: "1" },
    });
    const moved = planMirror(
      "shop/web",
      1,
      resolved,
      arrayView({ mirrors: [row], ports: [port("pod-a.shop", [row._uuid])] }),
      agents,
    );
    expect(moved.rows[0]).toMatchObject({ action: "update", index: 3, key: "allocated" });
    const asked = desired({ target: { type: "gre", sink: SINK, key: 2 } });
    const err = failure(() =>
      planMirror("shop/web", 1, resolveSpec(asked, OVN_2303), arrayView({ mirrors: [], ports: [] }), agents),
    );
    expect(err).toMatchObject({ code: "KEY_IN_USE", retryable: false });
    expect(err.message).toContain(
      "GRE key 2 is already used towards 198.51.100.2 by the tunnel of ovs mirror shop/tap2 on node n2",
    );
  });

  it("re-attaches a detached port; detaches ports no longer wanted; reports missing ports", () => {
    const row = applied();
    const pa = port("pod-a.shop");
    const pc = port("pod-c.shop", [row._uuid, "ffffffff-0000-4000-8000-000000000000"]);
    const p = plan(desired({ sources: { type: "pods", names: ["pod-a", "pod-b"] } }), {
      mirrors: [row],
      ports: [pa, pc],
    });
    expect(p.attach).toEqual([{ port: pa, refs: [row._uuid] }]);
    expect(p.detach).toEqual([{ port: pc, uuids: [row._uuid] }]);
    expect(p.missingPorts).toEqual(["pod-b.shop"]);
    expect(p.ports).toEqual(["pod-a.shop"]);
  });

  it("a new generation updates external_ids only; switching to both replaces the row", () => {
    const row = applied();
    const pa = port("pod-a.shop", [row._uuid]);
    const g2 = plan(desired({}, 2), { mirrors: [row], ports: [pa] });
    expect(g2.rows[0]).toMatchObject({ action: "update", changed: ["external_ids"], index: 3 });
    const both = plan(desired({ direction: "both" }, 2), { mirrors: [row], ports: [pa] });
    expect(both.rows.map((r) => [r.name, r.action, r.index])).toEqual([
      ["ovntap.shop.web.out", "create", 1],
      ["ovntap.shop.web.in", "create", 2],
    ]);
    expect(both.deletes).toEqual([row]);
    expect(both.detach).toEqual([{ port: pa, uuids: [row._uuid] }]);
  });

  it("removal deletes exactly the owned rows and detaches them everywhere", () => {
    const mine = applied();
    const mineIn = applied({ name: "ovntap.shop.web.in", index: 4 });
    const manual = mirrorRow({ name: "manual", index: 5 });
    const other = mirrorRow({ name: "ovntap.shop.other", external_ids: { [OWNER_KEY]: "shop/other" } });
    const pa = port("pod-a.shop", [mine._uuid, manual._uuid, other._uuid]);
    const pb = port("pod-b.shop", [mineIn._uuid]);
    const p = plan(undefined, { mirrors: [mine, mineIn, manual, other], ports: [pa, pb] });
    expect(p.deletes).toEqual([mine, mineIn]);
    expect(p.detach).toEqual([
      { port: pa, uuids: [mine._uuid] },
      { port: pb, uuids: [mineIn._uuid] },
    ]);
    expect(p.rows).toEqual([]);
  });
});

describe("planOperations", () => {
  it("one transaction: guards first, owned-only updates/deletes, nb_cfg bump and select", () => {
    const row = mirrorRow({
      name: "ovntap.shop.web",
      index: 3,
      filter: "to-lport",
      external_ids: { [OWNER_KEY]: "shop/web", [GENERATION_KEY]: "1", [KEY_KEY]: "3" },
    });
    const stale = mirrorRow({ name: "ovntap.shop.web.in", external_ids: { [OWNER_KEY]: "shop/web" } });
    const pa = port("pod-a.shop", [stale._uuid]);
    const p = plan(desired(), {
      mirrors: [
        row,
        stale,
        mirrorRow({ name: "manual", index: 3, external_ids: { [OWNER_KEY]: "shop/other" } }),
      ],
      ports: [pa],
    });
    const tx = planOperations(p);
    expect(tx.guards).toBe(1);
    expect(tx.ops.map((o) => o.op)).toEqual([
      "wait",
      "update",
      "mutate",
      "mutate",
      "delete",
      "mutate",
      "select",
      "comment",
    ]);
    expect(tx.ops[0]).toEqual(
      nbOp.wait(
        "Mirror",
        [["sink", "==", SINK]],
        ["name", "index"],
        "==",
        [
          { name: "ovntap.shop.web", index: 3 },
          { name: "ovntap.shop.web.in", index: 0 },
          { name: "manual", index: 3 },
        ],
        0,
      ),
    );
    expect(tx.ops[1]).toMatchObject({
      where: [
        ["_uuid", "==", row._uuid],
        ["external_ids", "includes", { [OWNER_KEY]: "shop/web" }],
      ],
    });
    expect(tx.ops[4]).toMatchObject({
      op: "delete",
      where: [
        ["_uuid", "==", stale._uuid],
        ["external_ids", "includes", { [OWNER_KEY]: "shop/web" }],
      ],
    });
    expect(tx.select).toBe(6);
  });
});
