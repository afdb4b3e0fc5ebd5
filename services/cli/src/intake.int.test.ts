/**
 * The CLI against the real intake (`createIntake`, built in-process) on real nats-server and
 * redis-server: what a user sees for create, a retried create, a duplicate name, get, list,
 * events and delete. (`--wait` to Active needs the ovn-applier; cli.int.test.ts covers its logic.)
 *
 * Intake is imported by a name TypeScript does not follow, typed by the little this test uses:
 * the CLI's typecheck then covers the CLI, not another service's sources (which the CLI never
 * imports), and a changed `createIntake` shows up here as a failing test.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer, startRedisServer } from "@ovntap/lab";
import type { NatsServer, RedisServer } from "@ovntap/lab";
import { connectNats, connectRedis, createLogger } from "@ovntap/runtime";
import type { Logger, NatsClient, RedisClient } from "@ovntap/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./cli.js";
import { EXIT } from "./errors.js";
import { capture } from "./testing/fixtures.js";

const logger = createLogger({ name: "cli-intake-test", level: "silent" });

/** What this test needs of `@ovntap/intake`. */
interface Intake {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly events: {
    history(namespace: string, mirror: string): Promise<{ seq?: number; eventId: string }[]>;
  };
}
type CreateIntake = (deps: {
  nc: NatsClient["nc"];
  redis: RedisClient["redis"];
  logger: Logger;
  storePrefix?: string;
  queuePrefix?: string;
}) => Intake;

const INTAKE_MODULE: string = "@ovntap/intake";
const { createIntake } = (await import(INTAKE_MODULE)) as { createIntake: CreateIntake };

let nats: NatsServer;
let redis: RedisServer;
let intakeNats: NatsClient;
let intakeRedis: RedisClient;
let intake: Intake;
let dir: string;

beforeAll(async () => {
  [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
  intakeNats = await connectNats({ url: nats.url, name: "intake", logger });
  intakeRedis = await connectRedis({ url: redis.url, logger, role: "client" });
  intake = createIntake({
    nc: intakeNats.nc,
    redis: intakeRedis.redis,
    logger,
    storePrefix: `{cli-${randomUUID()}}`,
    queuePrefix: `{cli-q-${randomUUID()}}`,
  });
  await intake.start();
  dir = mkdtempSync(join(tmpdir(), "ovntap-cli-intake-"));
});

afterAll(async () => {
  await intake?.stop();
  await intakeNats?.close();
  await intakeRedis?.close();
  await nats?.stop();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function run(argv: string[], principal = "alice") {
  const c = capture();
  const code = await runCli(argv, {
    ...c.io,
    env: { NATS_URL: nats.url, OVNTAP_PRINCIPAL: principal },
    cwd: dir,
  });
  return { code, out: c.out(), err: c.err() };
}

const ns = () => `cli-${randomBytes(4).toString("hex")}`;

describe("ovntap against the real intake", () => {
  it("create, retry, duplicate, get, list, events, delete", async () => {
    const n = ns();
    const create = [
      "create",
      "web",
      "-n",
      n,
      "--pod",
      "web-0",
      "--direction",
      "both",
      "--gre-sink",
      "198.51.100.2",
      "--ttl",
      "30m",
      "--label",
      "team=sre",
    ];

    // create → ok, exit 0
    const first = await run([...create, "--request-id", "cli-req-1", "-o", "json"]);
    expect(first.err).toBe("");
    expect(first.code).toBe(EXIT.OK);
    const view = JSON.parse(first.out) as {
      mirror: {
        spec: { name: string; namespace: string };
        owner: string;
        generation: number;
        requestId: string;
      };
      status: { phase: string };
    };
    expect(view.mirror).toMatchObject({
      spec: { name: "web", namespace: n },
      owner: "alice",
      generation: 1,
      requestId: "cli-req-1",
    });

    // The same create with the same --request-id → the same reply.
    const again = await run([...create, "--request-id", "cli-req-1", "-o", "json"]);
    expect(again.code).toBe(EXIT.OK);
    expect(JSON.parse(again.out)).toEqual(view);

    // The same --request-id with another body → CONFLICT.
    const conflict = await run([...create.slice(0, -2), "--request-id", "cli-req-1"]);
    expect(conflict.code).toBe(EXIT.FAILED);
    expect(conflict.err).toMatch(/^CONFLICT: /);
    expect(conflict.err).toContain("  requestId: was already used with another body\n");

    // A duplicate name under a new request id → exit 1, ALREADY_EXISTS with the field.
    const dup = await run(create);
    expect(dup.code).toBe(EXIT.FAILED);
    expect(dup.err).toBe(
      `ALREADY_EXISTS: mirror ${n}/web already exists\n  spec.name: is taken in this namespace\n`,
    );

    // get and list show it.
    const get = await run(["get", "web", "-n", n]);
    expect(get.code).toBe(EXIT.OK);
    const cells = get.out.trimEnd().split("\n")[1]?.split(/ {3,}/);
    expect(cells?.slice(0, 6)).toEqual(["web", n, view.status.phase, "198.51.100.2", "-", "both"]);
    expect(cells?.[7]).toMatch(/^in (29m|30m|\d+m\d+s)$/);

    expect(
      (await run(["create", "db", "-n", n, "--pod", "db-0", "--direction", "ingress", "--collector"])).code,
    ).toBe(EXIT.OK);
    const list = await run(["list", "-n", n]);
    expect(
      list.out
        .trimEnd()
        .split("\n")
        .slice(1)
        .map((l) => l.split(/\s+/)[0])
        .sort(),
    ).toEqual(["db", "web"]);
    const selected = JSON.parse((await run(["list", "-n", n, "-l", "team=sre", "-o", "json"])).out) as {
      mirror: { spec: { name: string } };
    }[];
    expect(selected.map((i) => i.mirror.spec.name)).toEqual(["web"]);

    // events prints requested and accepted first, in the order the store's history has them.
    const history = await intake.events.history(n, "web");
    const events = await run(["events", "-n", n, "--mirror", "web"]);
    expect(events.code).toBe(EXIT.OK);
    const types = events.out
      .trimEnd()
      .split("\n")
      .map((l) => l.split(/\s+/)[2]);
    expect(types.slice(0, 2)).toEqual(["requested", "accepted"]);
    expect(events.out).toMatch(new RegExp(`  ${n}/web  accepted +gen=1  alice  op=create expires=`));
    const json = (await run(["events", "-n", n, "--mirror", "web", "-o", "json"])).out
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { seq: number; eventId: string });
    // Everything in the history read before is printed, with the same stream sequences and ids.
    expect(json.slice(0, history.length).map((e) => [e.seq, e.eventId])).toEqual(
      history.map((e) => [e.seq, e.eventId]),
    );

    // delete → deletion requested; the record shows it.
    const del = await run(["delete", "web", "-n", n]);
    expect(del.code).toBe(EXIT.OK);
    expect(del.out).toBe(`mirror ${n}/web deletion requested\n`);
    const afterDelete = await run(["get", "web", "-n", n, "-o", "json"]);
    expect(
      (JSON.parse(afterDelete.out) as { mirror: { deletionRequestedAt?: string } }).mirror
        .deletionRequestedAt,
    ).toBeDefined();
    const delEvents = (await run(["events", "-n", n, "--mirror", "web"])).out.trimEnd().split("\n").at(-1);
    expect(delEvents).toMatch(/accepted +gen=\d+ {2}alice {2}op=delete/);
  });

  it("intake's refusals come back with their codes and fields", async () => {
    const n = ns();
    // A selector source is intake's to accept (the applier follows the pods).
    const selector = await run([
      "create",
      "sel",
      "-n",
      n,
      "-l",
      "app=web",
      "--direction",
      "both",
      "--collector",
    ]);
    expect(selector.code, selector.err).toBe(0);

    const missing = await run(["extend", "nope", "-n", n, "--ttl", "1h"]);
    expect(missing.code).toBe(EXIT.FAILED);
    expect(missing.err).toBe(
      `NOT_FOUND: mirror ${n}/nope does not exist\n  name: names no mirror in this namespace\n`,
    );

    const protectedNs = await run([
      "create",
      "web",
      "-n",
      "kube-system",
      "--pod",
      "coredns",
      "--direction",
      "both",
      "--collector",
    ]);
    expect(protectedNs.code).toBe(EXIT.FAILED);
    expect(protectedNs.err).toMatch(/^(NAMESPACE_PROTECTED|FORBIDDEN): /);
  });

  it("extend moves the expiry", async () => {
    const n = ns();
    expect(
      (
        await run([
          "create",
          "web",
          "-n",
          n,
          "--pod",
          "web-0",
          "--direction",
          "egress",
          "--collector",
          "--ttl",
          "10m",
        ])
      ).code,
    ).toBe(EXIT.OK);
    const r = await run(["extend", "web", "-n", n, "--ttl", "2h"]);
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toMatch(new RegExp(`^mirror ${n}/web now expires \\S+Z \\(in (119m|120m)\\)\\n$`));
    const types = (await run(["events", "-n", n])).out
      .trimEnd()
      .split("\n")
      .map((l) => l.split(/\s+/)[2]);
    expect(types).toContain("extended");
  });
});
