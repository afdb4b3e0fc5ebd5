/**
 * The client against a real ovsdb-server holding the installed OVN_Northbound schema:
 * every RFC 7047 method and operation, every error class we can provoke, and rows
 * cross-checked with ovn-nbctl in both directions.
 */
import { run, SCHEMAS, startOvsdbServer, type OvsdbServer } from "@ovntap/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AbortedError,
  ConstraintViolationError,
  DomainError,
  DuplicateUuidNameError,
  NotationError,
  NotOwnerError,
  ReferentialIntegrityViolationError,
  TimedOutError,
  TransactionError,
  UnknownDatabaseError,
  UnknownMethodError,
} from "../errors.js";
import { SCHEMA_VERSION } from "../generated/ovn-nb.js";
import { capabilities } from "./capabilities.js";
import { OvsdbClient } from "./client.js";
import { nbOp as op } from "./op.js";

const NB = "OVN_Northbound";
let server: OvsdbServer;
let client: OvsdbClient;
let tcpClient: OvsdbClient;

/** ovn-nbctl against the test server; `--format=json list` rows come back as objects. */
async function nbctl(...args: string[]): Promise<string> {
  return (await run("ovn-nbctl", [`--db=${server.unix}`, ...args])).stdout.trim();
}
async function nbctlRows(...args: string[]): Promise<Record<string, unknown>[]> {
  const out = JSON.parse(await nbctl("--format=json", ...args)) as {
    headings: string[];
    data: unknown[][];
  };
  return out.data.map((row) => Object.fromEntries(out.headings.map((h, i) => [h, row[i]])));
}

async function failure(p: Promise<unknown>): Promise<TransactionError> {
  try {
    await p;
  } catch (err) {
    return err as TransactionError;
  }
  throw new Error("expected the transaction to fail");
}

let seq = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${++seq}`;
/** Lock names are RFC 7047 <id>s: no '-'. */
const lockName = () => `lock_${process.pid}_${++seq}`;

beforeAll(async () => {
  server = await startOvsdbServer({ schema: SCHEMAS.nb, name: "nb", tcp: true });
  client = await OvsdbClient.connect({ remote: server.unix, database: NB });
  tcpClient = await OvsdbClient.connect({ remote: server.tcp as string });
});

afterAll(async () => {
  await client?.close();
  await tcpClient?.close();
  await server?.stop();
});

describe("RFC 7047 methods", () => {
  it("list_dbs over unix and tcp", async () => {
    expect(await client.listDbs()).toEqual(expect.arrayContaining([NB, "_Server"]));
    expect(await tcpClient.listDbs()).toEqual(expect.arrayContaining([NB]));
    expect(tcpClient.remote).toBe(server.tcp);
  });

  it("get_schema returns the installed schema the generated types came from", async () => {
    const schema = await client.getSchema(NB);
    expect(schema.name).toBe(NB);
    expect(schema.version).toBe(SCHEMA_VERSION);
    expect(Object.keys(schema.tables)).toEqual(
      expect.arrayContaining(["Mirror", "Logical_Switch_Port", "NB_Global"]),
    );
  });

  it("capabilities come from the live schema (OVN 23.03: no 'both', no 'local', no Mirror_Rule)", async () => {
    const caps = capabilities(await client.schema(NB));
    expect([...caps.mirrorFilters].sort()).toEqual(["from-lport", "to-lport"]);
    expect([...caps.mirrorTypes].sort()).toEqual(["erspan", "gre"]);
    expect(caps).toMatchObject({
      hasMirror: true,
      hasMirrorRule: false,
      mirrorFilterBoth: false,
      mirrorTypeLocal: false,
      lspMirrorRules: true,
    });
  });

  it("an unknown database is UnknownDatabaseError, for get_schema and for connect", async () => {
    await expect(client.getSchema("Nope")).rejects.toBeInstanceOf(UnknownDatabaseError);
    await expect(OvsdbClient.connect({ remote: server.unix, database: "Nope" })).rejects.toBeInstanceOf(
      UnknownDatabaseError,
    );
  });

  it("echo round-trips its params", async () => {
    expect(await client.echo("a", 1)).toEqual(["a", 1]);
  });

  it("lock, wait for a lock, unlock, steal (RFC 7047 §4.1.8-4.1.10)", async () => {
    const lock = lockName();
    expect(await client.lock(lock)).toBe(true);
    expect(await tcpClient.lock(lock)).toBe(false); // queued behind the owner
    const granted = new Promise<string>((resolve) => tcpClient.once("locked", resolve));
    await client.unlock(lock);
    expect(await granted).toBe(lock);
    const stolen = new Promise<string>((resolve) => tcpClient.once("stolen", resolve));
    await client.steal(lock);
    expect(await stolen).toBe(lock);
    await client.unlock(lock);
    await tcpClient.unlock(lock);
  });
});

describe("transact: every operation", () => {
  it("insert with uuid-name referenced by another insert in the same transaction; ovn-nbctl sees both", async () => {
    const ls = unique("ls");
    const lsp = unique("pod");
    const [port, sw] = await client.transact(NB, [
      op.insert("Logical_Switch_Port", { name: lsp, addresses: ["00:00:00:00:00:01 10.0.0.1"] }, "new_port"),
      op.insert("Logical_Switch", { name: ls, ports: ["new_port"], other_config: { subnet: "10.0.0.0/24" } }),
    ]);
    expect(port.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(await nbctl("lsp-list", ls)).toContain(lsp);
    const [row] = await nbctlRows("list", "Logical_Switch", sw.uuid);
    expect(row?.ports).toEqual(["uuid", port.uuid]);
    expect(await nbctl("get", "Logical_Switch", ls, "other_config:subnet")).toBe('"10.0.0.0/24"');
  });

  it("select with conditions, with and without a column list", async () => {
    const name = unique("m");
    await client.transact(NB, [
      op.insert("Mirror", {
        name,
        type: "erspan",
        filter: "to-lport",
        sink: "192.0.2.1",
        index: 7,
        external_ids: { "ovntap/mirror": name },
      }),
    ]);
    const [byIds, projected] = await client.transact(NB, [
      op.select("Mirror", [["external_ids", "includes", { "ovntap/mirror": name }]]),
      op.select(
        "Mirror",
        [
          ["name", "==", name],
          ["index", ">", 5],
        ],
        ["name", "type", "index"],
      ),
    ]);
    expect(byIds.rows).toHaveLength(1);
    expect(byIds.rows[0]).toMatchObject({ name, type: "erspan", filter: "to-lport", index: 7 });
    expect(byIds.rows[0]?._uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(byIds.rows[0]?._version).toMatch(/^[0-9a-f-]{36}$/);
    expect(projected.rows).toEqual([{ name, type: "erspan", index: 7 }]);
  });

  it("update, then mutate a map and a set, and ovn-nbctl reads the result", async () => {
    const ls = unique("ls");
    const [, sw] = await client.transact(NB, [
      op.insert("Logical_Switch_Port", { name: `${ls}-p1` }, "p1"),
      op.insert("Logical_Switch", { name: ls, ports: ["p1"], other_config: { a: "1", b: "2" } }),
    ]);
    const [updated] = await client.transact(NB, [
      op.update("Logical_Switch", [["_uuid", "==", sw.uuid]], { external_ids: { owner: "ovntap" } }),
    ]);
    expect(updated.count).toBe(1);
    const [, mutated] = await client.transact(NB, [
      op.insert("Logical_Switch_Port", { name: `${ls}-p2` }, "p2"),
      op.mutate(
        "Logical_Switch",
        [["name", "==", ls]],
        [
          ["other_config", "delete", ["a"]],
          ["other_config", "insert", { c: "3" }],
          ["ports", "insert", ["p2"]],
        ],
      ),
    ]);
    expect(mutated.count).toBe(1);
    expect(await nbctl("get", "Logical_Switch", ls, "external_ids:owner")).toBe("ovntap");
    expect(await nbctl("get", "Logical_Switch", ls, "other_config")).toBe('{b="2", c="3"}');
    expect((await nbctl("lsp-list", ls)).split("\n")).toHaveLength(2);
  });

  it("delete returns the count and the row is gone for ovn-nbctl", async () => {
    const name = unique("m");
    await nbctl("mirror-add", name, "gre", "42", "from-lport", "192.0.2.9");
    const [del] = await client.transact(NB, [op.delete("Mirror", [["name", "==", name]])]);
    expect(del.count).toBe(1);
    expect(await nbctl("mirror-list")).not.toContain(name);
  });

  it("wait that does not hold times out: TimedOutError with the op index", async () => {
    const err = await failure(
      client.transact(NB, [
        op.comment("ovntap wait test"),
        op.wait("Mirror", [["name", "==", unique("absent")]], ["name"], "==", [{ name: "x" }], 0),
      ]),
    );
    expect(err).toBeInstanceOf(TransactionError);
    expect(err.cause).toBeInstanceOf(TimedOutError);
    expect(err.index).toBe(1);
    expect(err.cause.index).toBe(1);
    expect(err.retryable).toBe(true);
  });

  it("wait that holds passes; commit (durable and not) succeeds", async () => {
    const name = unique("m");
    const [ins, waited, commit] = await client.transact(NB, [
      op.insert("Mirror", { name, type: "gre", filter: "from-lport", sink: "192.0.2.2", index: 1 }),
      op.wait("Mirror", [["name", "==", name]], ["name", "index"], "==", [{ name, index: 1 }], 0),
      op.commit(true),
    ]);
    expect(ins.uuid).toBeTruthy();
    expect(waited).toEqual({});
    expect(commit).toEqual({});
    await client.transact(NB, [op.commit(false)]);
  });

  it("abort fails the transaction with AbortedError and nothing is applied", async () => {
    const name = unique("ls");
    const err = await failure(client.transact(NB, [op.insert("Logical_Switch", { name }), op.abort()]));
    expect(err.cause).toBeInstanceOf(AbortedError);
    expect(err.index).toBe(1);
    expect(await nbctl("ls-list")).not.toContain(name);
  });

  it("assert on a lock not held is NotOwnerError; once held it passes", async () => {
    const lock = lockName();
    const err = await failure(client.transact(NB, [op.comment("x"), op.assert(lock)]));
    expect(err.cause).toBeInstanceOf(NotOwnerError);
    expect(err.index).toBe(1);
    expect(await client.lock(lock)).toBe(true);
    await expect(client.transact(NB, [op.assert(lock)])).resolves.toEqual([{}]);
    await client.unlock(lock);
  });
});

describe("transact: errors map to their classes with the right index", () => {
  it("a value outside an enum is a constraint violation at that operation", async () => {
    const err = await failure(
      client.transact(NB, [
        op.comment("first"),
        // The builder types forbid this; the server is the authority on the enum.
        op.insert("Mirror", {
          name: unique("m"),
          type: "local" as "gre",
          filter: "from-lport",
          sink: "x",
          index: 1,
        }),
      ]),
    );
    expect(err.cause).toBeInstanceOf(ConstraintViolationError);
    expect(err.index).toBe(1);
    expect(err.commitFailed).toBe(false);
    expect(err.cause.details).toMatch(/not one of the allowed values/);
  });

  it("a duplicate in a unique index is a constraint violation found at commit (index = number of ops)", async () => {
    const name = unique("m");
    const mirror = { name, type: "gre", filter: "from-lport", sink: "192.0.2.3", index: 3 } as const;
    const err = await failure(
      client.transact(NB, [op.insert("Mirror", mirror), op.insert("Mirror", mirror)]),
    );
    expect(err.cause).toBeInstanceOf(ConstraintViolationError);
    expect(err.commitFailed).toBe(true);
    expect(err.index).toBe(2);
  });

  it("a reference to a missing row is a referential integrity violation at commit", async () => {
    const err = await failure(
      client.transact(NB, [
        op.insert("Logical_Switch", { name: unique("ls"), ports: ["5a7bd8c8-5ab0-4a1e-9d5a-0f5c4b0a1234"] }),
      ]),
    );
    expect(err.cause).toBeInstanceOf(ReferentialIntegrityViolationError);
    expect(err.commitFailed).toBe(true);
    expect(err.index).toBe(1);
    expect(err.cause.details).toMatch(/references nonexistent row/);
  });

  it("two inserts with one uuid-name: DuplicateUuidNameError at the second", async () => {
    const err = await failure(
      client.transact(NB, [
        op.insert("Logical_Switch", { name: unique("ls") }, "dup"),
        op.insert("Logical_Switch", { name: unique("ls") }, "dup"),
      ]),
    );
    expect(err.cause).toBeInstanceOf(DuplicateUuidNameError);
    expect(err.index).toBe(1);
  });

  it("division by zero in a mutation is a domain error", async () => {
    const name = unique("m");
    await nbctl("mirror-add", name, "gre", "5", "from-lport", "192.0.2.4");
    const err = await failure(
      client.transact(NB, [op.mutate("Mirror", [["name", "==", name]], [["index", "/=", 0]])]),
    );
    expect(err.cause).toBeInstanceOf(DomainError);
    expect(err.index).toBe(0);
  });

  it("a value that does not fit the schema fails before anything is sent", async () => {
    const sent = client.stats.messagesSent;
    await expect(
      client.transact(NB, [op.insert("Mirror", { index: "seven" as unknown as number })]),
    ).rejects.toBeInstanceOf(NotationError);
    await expect(client.transact(NB, [op.update("Mirror", [], { nope: 1 } as object)])).rejects.toThrow(
      /Mirror.nope is not in the OVN_Northbound/,
    );
    expect(client.stats.messagesSent).toBe(sent);
  });

  it("the plain monitor fallback is not needed here: monitor_cond exists, unknown methods are UnknownMethodError", async () => {
    await expect(client.monitorCancel("never-created")).resolves.toBeUndefined();
    const err = new UnknownMethodError({ error: "unknown method" });
    expect(err.retryable).toBe(false);
  });
});

describe("cross-checks with ovn-nbctl", () => {
  it("what ovn-nbctl writes (mirror-add, lsp-attach-mirror) our client reads, typed", async () => {
    const mirror = unique("mirror");
    const ls = unique("ls");
    const lsp = `${unique("pod")}.ns`;
    await nbctl("mirror-add", mirror, "gre", "99", "from-lport", "172.19.0.21");
    await nbctl("ls-add", ls);
    await nbctl("lsp-add", ls, lsp);
    await nbctl("lsp-attach-mirror", lsp, mirror);
    const [mirrors, ports] = await client.transact(NB, [
      op.select("Mirror", [["name", "==", mirror]]),
      op.select("Logical_Switch_Port", [["name", "==", lsp]], ["name", "mirror_rules"]),
    ]);
    const m = mirrors.rows[0];
    expect(m).toMatchObject({
      name: mirror,
      type: "gre",
      index: 99,
      filter: "from-lport",
      sink: "172.19.0.21",
    });
    expect(ports.rows[0]?.mirror_rules).toEqual([m?._uuid]);
  });

  it("what our client writes ovn-nbctl reads", async () => {
    const mirror = unique("mirror");
    const lsp = unique("pod");
    await client.transact(NB, [
      op.insert(
        "Mirror",
        { name: mirror, type: "erspan", filter: "to-lport", sink: "10.9.9.9", index: 12 },
        "m",
      ),
      op.insert("Logical_Switch_Port", { name: lsp, mirror_rules: ["m"] }, "p"),
      op.insert("Logical_Switch", { name: unique("ls"), ports: ["p"] }),
    ]);
    const list = await nbctl("mirror-list");
    expect(list).toContain(`${mirror}:`);
    const [row] = await nbctlRows("find", "Mirror", `name=${mirror}`);
    expect(row).toMatchObject({ type: "erspan", filter: "to-lport", sink: "10.9.9.9", index: 12 });
    expect(await nbctl("get", "Logical_Switch_Port", lsp, "mirror_rules")).toContain(
      ((row?._uuid as [string, string]) ?? [])[1],
    );
  });
});
