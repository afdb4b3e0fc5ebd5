import { DATAPLANE_STALE_MS, type DataplaneRecord, type MirrorDataplane } from "@ovntap/contracts";
import { createLogger } from "@ovntap/runtime";
import { describe, expect, it } from "vitest";
import { DataplaneView, describeProblems } from "./dataplane.js";

const logger = createLogger({ name: "dataplane-test", level: "silent" });
const T0 = Date.parse("2025-01-31T12:00:00.000Z");
const FILE_EXISTS = "could not add network device ovn-ovntap.shop.web to ofproto (File exists)";

function row(over: Partial<MirrorDataplane> = {}): MirrorDataplane {
  return {
    namespace: "shop",
    mirror: "web",
    row: "ovntap.shop.web",
    bridge: "br-int",
    port: "ovn-ovntap.shop.web",
    state: "programmed",
    since: new Date(T0).toISOString(),
    ...over,
  };
}
const record = (node: string, mirrors: MirrorDataplane[], at = T0): DataplaneRecord => ({
  node,
  chassis: node,
  time: new Date(at).toISOString(),
  mirrors,
});

function view() {
  let now = T0;
  const v = new DataplaneView({ logger, now: () => now });
  const changes: string[] = [];
  v.on("change", (id) => changes.push(id));
  return { v, changes, at: (t: number) => void (now = t) };
}

describe("the node agents' data-plane records", () => {
  it("report a mirror's errors across nodes, and changes only when they change", () => {
    const { v, changes } = view();
    v.apply("n1", record("n1", [row()]));
    expect(v.mirror("shop/web")).toEqual({ problems: [], programmedOn: ["n1"] });
    expect(changes).toEqual(["shop/web"]);
    // The same again (a periodic rewrite): nothing to tell.
    v.apply("n1", record("n1", [row()], T0 + 1_000));
    expect(changes).toEqual(["shop/web"]);

    v.apply("n2", record("n2", [row({ state: "error", component: "ovs", message: FILE_EXISTS })]));
    expect(v.problems("shop/web")).toEqual([
      { node: "n2", row: "ovntap.shop.web", message: FILE_EXISTS, component: "ovs", since: row().since },
    ]);
    expect(describeProblems(v.problems("shop/web"))).toBe(`ovs on node n2 (ovntap.shop.web): ${FILE_EXISTS}`);
    expect(changes).toEqual(["shop/web", "shop/web"]);

    // Programmed again on n2; other mirrors and pending rows are no problem.
    v.apply("n2", record("n2", [row(), row({ mirror: "db", row: "ovntap.shop.db", state: "pending" })]));
    expect(v.mirror("shop/web")).toEqual({ problems: [], programmedOn: ["n1", "n2"] });
    expect(v.problems("shop/db")).toEqual([]);
    expect(changes).toEqual(["shop/web", "shop/web", "shop/web"]);

    // A deleted record takes its node's states with it.
    v.apply("n2", undefined);
    expect(v.mirror("shop/web").programmedOn).toEqual(["n1"]);
  });

  it("ignores records an agent that is gone left behind", () => {
    const { v, changes, at } = view();
    v.apply("n1", record("n1", [row({ state: "error", message: FILE_EXISTS })]));
    expect(v.problems("shop/web")).toHaveLength(1);
    at(T0 + DATAPLANE_STALE_MS + 1);
    v.check();
    expect(v.problems("shop/web")).toEqual([]);
    expect(changes).toEqual(["shop/web", "shop/web"]);
  });
});
