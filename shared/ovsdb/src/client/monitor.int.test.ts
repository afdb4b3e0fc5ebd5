/**
 * Monitors and the cache against a real ovsdb-server: changes made by ovn-nbctl, our own
 * transactions, a server restart, rows deleted while we were disconnected (full resync),
 * and a hung server caught by our inactivity probe.
 */
import {
  makeTempDir,
  removeDir,
  run,
  SCHEMAS,
  startOvsdbServer,
  waitFor,
  type OvsdbServer,
} from "@ovntap/lab";
import { afterEach, describe, expect, expectTypeOf, it } from "vitest";
import type { ResyncEvent, RowEvent } from "../cache/cache.js";
import { InactivityTimeoutError, NotConnectedError } from "../errors.js";
import type { LogicalSwitch, Mirror as NbMirror } from "../generated/ovn-nb.js";
import { OvsdbClient } from "./client.js";
import { nbOp as op } from "./op.js";

const NB = "OVN_Northbound";
const fastReconnect = { initialMs: 50, maxMs: 300 };
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(dir?: string): Promise<OvsdbServer> {
  const s = await startOvsdbServer({ schema: SCHEMAS.nb, name: "nb", ...(dir ? { dir } : {}) });
  cleanups.push(() => s.stop());
  return s;
}

async function connect(remote: string, extra: Partial<Parameters<typeof OvsdbClient.connect>[0]> = {}) {
  const c = await OvsdbClient.connect({ remote, backoff: fastReconnect, ...extra });
  cleanups.push(() => c.close());
  return c;
}

function nbctl(s: OvsdbServer, ...args: string[]) {
  return run("ovn-nbctl", [`--db=${s.unix}`, ...args]);
}

function record(c: OvsdbClient) {
  const events: RowEvent[] = [];
  const resyncs: ResyncEvent[] = [];
  c.cache.on("change", (e) => events.push(e));
  c.cache.on("resync", (r) => resyncs.push(r));
  return { events, resyncs };
}

const switchNamed = (c: OvsdbClient, name: string) =>
  c.cache.table(NB, "Logical_Switch").find((r) => r.name === name);

describe("monitor_cond feeds the cache", () => {
  it("sees inserts, updates and deletes made by ovn-nbctl", async () => {
    const s = await server();
    const c = await connect(s.unix);
    const { events } = record(c);
    const mon = await c.monitor(NB, {
      Logical_Switch: {},
      Mirror: { columns: ["name", "index", "external_ids"] },
    });
    expect(mon.tables).toEqual(["Logical_Switch", "Mirror"]);

    await nbctl(s, "ls-add", "sw0");
    const sw = await waitFor(() => switchNamed(c, "sw0"), { what: "sw0 in the cache" });
    expect(sw.ports).toEqual([]);
    expect(sw.other_config).toEqual({});

    await nbctl(s, "set", "Logical_Switch", "sw0", "other_config:a=1", "external_ids:owner=me");
    await waitFor(() => switchNamed(c, "sw0")?.other_config.a === "1", { what: "update in the cache" });
    const upd = events.find((e) => e.type === "update" && e.table === "Logical_Switch");
    expect(upd).toMatchObject({
      type: "update",
      old: { other_config: {} },
      new: { other_config: { a: "1" } },
    });

    await nbctl(s, "mirror-add", "m1", "gre", "99", "from-lport", "172.19.0.21");
    const mirror = await waitFor(() => c.cache.table(NB, "Mirror").find((m) => m.name === "m1"), {
      what: "mirror in the cache",
    });
    expect(mirror).toEqual({ _uuid: mirror._uuid, name: "m1", index: 99, external_ids: {} }); // only monitored columns
    // The monitor's view is typed by the columns it asked for.
    const typed = mon.table("Mirror").get(mirror._uuid);
    expect(typed).toBe(mirror);
    expectTypeOf(typed).toEqualTypeOf<
      Pick<NbMirror, "_uuid" | "name" | "index" | "external_ids"> | undefined
    >();
    expectTypeOf(mon.table("Logical_Switch").rows()).toEqualTypeOf<LogicalSwitch[]>();

    await nbctl(s, "ls-del", "sw0");
    await waitFor(() => switchNamed(c, "sw0") === undefined, { what: "delete in the cache" });
    expect(events.filter((e) => e.table === "Logical_Switch").map((e) => e.type)).toEqual([
      "insert",
      "update",
      "delete",
    ]);
  });

  it("our own transaction is in the cache when transact resolves (ovsdb-server(7) §4.1.5)", async () => {
    const s = await server();
    const c = await connect(s.unix);
    await c.monitor(NB, { Logical_Switch: {}, Logical_Switch_Port: {} });
    const [port, sw] = await c.transact(NB, [
      op.insert("Logical_Switch_Port", { name: "p0" }, "p0"),
      op.insert("Logical_Switch", { name: "sw1", ports: ["p0"] }),
    ]);
    expect(c.cache.table(NB, "Logical_Switch").get(sw.uuid)?.ports).toEqual([port.uuid]);
    expect(c.cache.table(NB, "Logical_Switch_Port").get(port.uuid)?.name).toBe("p0");
    // Removing the port from the switch garbage-collects the (non-root) port.
    await c.transact(NB, [
      op.mutate("Logical_Switch", [["name", "==", "sw1"]], [["ports", "delete", [port.uuid]]]),
    ]);
    expect(c.cache.table(NB, "Logical_Switch_Port").has(port.uuid)).toBe(false);
    expect(c.cache.table(NB, "Logical_Switch").get(sw.uuid)?.ports).toEqual([]);
  });

  it("replicates only rows matching `where`", async () => {
    const s = await server();
    const c = await connect(s.unix);
    await nbctl(s, "ls-add", "a");
    await nbctl(s, "ls-add", "b");
    await c.monitor(NB, { Logical_Switch: { where: [["name", "==", "a"]] } });
    expect(
      c.cache
        .table(NB, "Logical_Switch")
        .rows()
        .map((r) => r.name),
    ).toEqual(["a"]);
    await nbctl(s, "ls-add", "a2");
    await nbctl(s, "set", "Logical_Switch", "b", "name=a");
    await waitFor(() => c.cache.table(NB, "Logical_Switch").size === 2, {
      what: "renamed row enters the monitor",
    });
  });

  it("the RFC 7047 monitor method works too, and monitor_cancel drops the tables", async () => {
    const s = await server();
    const c = await connect(s.unix);
    await nbctl(s, "ls-add", "x");
    const mon = await c.monitor(
      NB,
      { Logical_Switch: { columns: ["name", "other_config"] } },
      { method: "monitor" },
    );
    expect(switchNamed(c, "x")).toMatchObject({ name: "x", other_config: {} });
    expect(Object.keys(switchNamed(c, "x") ?? {}).sort()).toEqual(["_uuid", "name", "other_config"]);
    await nbctl(s, "set", "Logical_Switch", "x", "other_config:k=v");
    await waitFor(() => switchNamed(c, "x")?.other_config.k === "v", {
      what: "update via 'update' notification",
    });
    await nbctl(s, "ls-del", "x");
    await waitFor(() => c.cache.table(NB, "Logical_Switch").size === 0, { what: "delete via 'update'" });
    await nbctl(s, "ls-add", "y");
    await waitFor(() => switchNamed(c, "y"), { what: "y" });
    await mon.cancel();
    expect(c.cache.table(NB, "Logical_Switch").size).toBe(0);
    expect(c.cache.table(NB, "Logical_Switch").monitored).toBe(false);
    await expect(c.monitor(NB, { Logical_Switch: {} })).resolves.toBeDefined(); // free to monitor again
  });

  it("refuses to monitor a table twice", async () => {
    const s = await server();
    const c = await connect(s.unix);
    await c.monitor(NB, { Mirror: {} });
    await expect(c.monitor(NB, { Mirror: {} })).rejects.toThrow(/already monitored/);
  });
});

describe("reconnect and full resync", () => {
  it("after server.restart() the client reconnects, reloads without spurious events, and keeps monitoring", async () => {
    const s = await server();
    const c = await connect(s.unix);
    await nbctl(s, "ls-add", "stay");
    await c.monitor(NB, { Logical_Switch: {} });
    const { events, resyncs } = record(c);
    const reconnected = new Promise<{ reconnect: boolean }>((resolve) => c.once("connected", resolve));
    await s.restart();
    expect((await reconnected).reconnect).toBe(true);
    expect(resyncs).toEqual([
      { database: NB, tables: ["Logical_Switch"], inserted: 0, updated: 0, deleted: 0 },
    ]);
    expect(events).toEqual([]);
    expect(switchNamed(c, "stay")).toBeDefined();
    await nbctl(s, "ls-add", "after-restart");
    await waitFor(() => switchNamed(c, "after-restart"), { what: "monitoring resumed" });
    expect(c.stats.reconnects).toBe(1);
  });

  it("rows deleted while the client was disconnected vanish from the cache, with delete events", async () => {
    const dir = makeTempDir("ovntap-ovsdb-resync-");
    cleanups.push(() => removeDir(dir));
    const first = await server(dir);
    const c = await connect(first.unix);
    await nbctl(first, "ls-add", "keep");
    await nbctl(first, "ls-add", "gone");
    await nbctl(first, "mirror-add", "m-gone", "gre", "7", "to-lport", "192.0.2.7");
    await c.monitor(NB, { Logical_Switch: {}, Mirror: {} });
    const keep = switchNamed(c, "keep");
    const gone = switchNamed(c, "gone");
    expect(keep && gone).toBeTruthy();
    const { events, resyncs } = record(c);

    const disconnected = new Promise((resolve) => c.once("disconnected", resolve));
    await first.stop(); // dir is ours, so the database file stays
    await disconnected;
    await expect(c.transact(NB, [op.comment("while down")])).rejects.toBeInstanceOf(NotConnectedError);
    // Change the database behind the client's back, straight in the file.
    await run("ovsdb-tool", [
      "transact",
      first.dbFile,
      JSON.stringify([
        NB,
        { op: "delete", table: "Logical_Switch", where: [["name", "==", "gone"]] },
        { op: "delete", table: "Mirror", where: [] },
        { op: "insert", table: "Logical_Switch", row: { name: "born" } },
        {
          op: "update",
          table: "Logical_Switch",
          where: [["name", "==", "keep"]],
          row: { external_ids: ["map", [["k", "v"]]] },
        },
      ]),
    ]);

    const reconnected = new Promise((resolve) => c.once("connected", resolve));
    const second = await server(dir); // same database file, same socket path
    expect(second.socketPath).toBe(first.socketPath);
    await reconnected;

    expect(switchNamed(c, "gone")).toBeUndefined();
    expect(c.cache.table(NB, "Mirror").size).toBe(0);
    expect(switchNamed(c, "born")).toBeDefined();
    expect(switchNamed(c, "keep")?.external_ids).toEqual({ k: "v" });
    const summary = events
      .map((e) => `${e.type}:${e.table}:${(e.type === "delete" ? e.old : e.new).name as string}`)
      .sort();
    expect(summary).toEqual([
      "delete:Logical_Switch:gone",
      "delete:Mirror:m-gone",
      "insert:Logical_Switch:born",
      "update:Logical_Switch:keep",
    ]);
    expect(resyncs).toEqual([
      { database: NB, tables: ["Logical_Switch", "Mirror"], inserted: 1, updated: 1, deleted: 2 },
    ]);

    await nbctl(second, "ls-add", "later");
    await waitFor(() => switchNamed(c, "later"), { what: "monitoring resumed after resync" });
  });

  it("our inactivity probe declares a hung (SIGSTOPped) server dead and reconnects after SIGCONT", async () => {
    const s = await server();
    const probeIntervalMs = 300;
    const c = await connect(s.unix, { probeIntervalMs });
    await c.monitor(NB, { Logical_Switch: {} });
    const pid = s.daemon.pid;
    const disconnected = new Promise<{ error: Error | undefined }>((resolve) =>
      c.once("disconnected", resolve),
    );
    const started = Date.now();
    process.kill(pid, "SIGSTOP");
    let resumed = false;
    cleanups.push(() => {
      if (!resumed) process.kill(pid, "SIGCONT");
    });
    const { error } = await disconnected;
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(InactivityTimeoutError);
    // Idle for one interval → echo; silent for another → dead (counted from the last message received).
    expect(elapsed).toBeGreaterThanOrEqual(probeIntervalMs);
    expect(elapsed).toBeLessThan(2 * probeIntervalMs + 1000);
    expect(c.stats.probesSent).toBeGreaterThanOrEqual(1);

    process.kill(pid, "SIGCONT");
    resumed = true;
    await c.waitConnected(10_000);
    await nbctl(s, "ls-add", "after-stop");
    await waitFor(() => switchNamed(c, "after-stop"), { what: "monitoring resumed after SIGCONT" });
  });
});
