/**
 * The CLI in-process against a real nats-server with JetStream: request/reply through a
 * contract-checked stand-in for intake (src/testing/fake-intake.ts), replies that never come,
 * NATS down, the event stream, and `--wait` driven by events published into the real stream.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { EVENTS_STREAM, EVENTS_STREAM_SUBJECTS, eventSubject, reqSubject } from "@ovntap/contracts";
import type { MirrorRequest } from "@ovntap/contracts";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { startNatsServer, waitFor } from "@ovntap/lab";
import type { NatsServer } from "@ovntap/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { runCli } from "./cli.js";
import type { CliIo } from "./cli.js";
import { EXIT } from "./errors.js";
import { startFakeIntake } from "./testing/fake-intake.js";
import type { FakeIntake } from "./testing/fake-intake.js";
import { capture, makeEvent } from "./testing/fixtures.js";

let nats: NatsServer;
let nc: NatsConnection;
let dir: string;
let intake: FakeIntake | undefined;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: EVENTS_STREAM,
    subjects: [EVENTS_STREAM_SUBJECTS],
    deny_delete: true,
    deny_purge: true,
  });
  dir = mkdtempSync(join(tmpdir(), "ovntap-cli-int-"));
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  intake?.stop();
  intake = undefined;
});

/** A namespace of the test's own, so tests sharing the server never see each other's mirrors. */
const ns = () => `t-${randomUUID().slice(0, 8)}`;

async function run(argv: string[], extra: Partial<CliIo> = {}) {
  const c = capture();
  const code = await runCli(argv, {
    ...c.io,
    env: { NATS_URL: nats.url, OVNTAP_PRINCIPAL: "alice" },
    cwd: dir,
    pollIntervalMs: 200,
    ...extra,
  });
  return { code, out: c.out(), err: c.err() };
}

function create(namespace: string, name = "web", more: string[] = []) {
  return [
    "create",
    name,
    "-n",
    namespace,
    "--pod",
    "web-0",
    "--direction",
    "both",
    "--gre-sink",
    "10.0.0.9",
    ...more,
  ];
}

async function publish(event: Record<string, unknown>) {
  const ack = await jetstream(nc).publish(
    eventSubject(String(event.namespace), String(event.mirror)),
    JSON.stringify(event),
    { msgID: String(event.eventId) },
  );
  return ack.seq;
}

describe("request/reply", () => {
  it("create sends a checked request with a fresh id and the principal, and prints the reply", async () => {
    intake = startFakeIntake(nc);
    const n = ns();
    const r = await run(create(n, "web", ["--key", "99", "--ttl", "10m", "--label", "team=sre"]));
    expect(r.err).toBe("");
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toMatch(
      new RegExp(
        `^mirror ${n}/web created: Pending, generation 1, sink 10\\.0\\.0\\.9 key 99, expires in 9m\\d*s?\\n$`,
      ),
    );
    const [req] = intake.requests;
    expect(req).toMatchObject({
      op: "create",
      principal: "alice",
      spec: {
        name: "web",
        namespace: n,
        sources: { type: "pods", names: ["web-0"] },
        direction: "both",
        target: { type: "gre", sink: "10.0.0.9", key: 99 },
        ttlSeconds: 600,
        labels: { team: "sre" },
      },
    });
    expect(req?.requestId).toMatch(/^[0-9a-f-]{36}$/);
    // A second run gets a new id.
    await run(create(n, "other"));
    expect(intake.requests[1]?.requestId).not.toBe(req?.requestId);
  });

  it("the same --request-id is answered with the same reply; a new id for the same name is ALREADY_EXISTS", async () => {
    intake = startFakeIntake(nc);
    const n = ns();
    const a = await run([...create(n), "-o", "json", "--request-id", "retry-1"]);
    const b = await run([...create(n), "-o", "json", "--request-id", "retry-1"]);
    expect(a.code).toBe(EXIT.OK);
    expect(b.code).toBe(EXIT.OK);
    expect(JSON.parse(b.out)).toEqual(JSON.parse(a.out));
    const c = await run(create(n));
    expect(c.code).toBe(EXIT.FAILED);
    expect(c.err).toBe(`ALREADY_EXISTS: mirror ${n}/web already exists\n`);
    expect(c.out).toBe("");
  });

  it("prints an error reply's code, message and every issue", async () => {
    intake = startFakeIntake(nc, {
      override: () => ({
        ok: false,
        error: {
          code: "SINK_NOT_ALLOWED",
          message: "policy does not allow this sink",
          issues: [
            { path: "spec.target.sink", message: "10.0.0.9 is outside 10.1.0.0/16" },
            { path: "spec.ttlSeconds", message: "must be ≤ 3600 in this namespace" },
          ],
        },
      }),
    });
    const r = await run(create(ns()));
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toBe(
      "SINK_NOT_ALLOWED: policy does not allow this sink\n" +
        "  spec.target.sink: 10.0.0.9 is outside 10.1.0.0/16\n" +
        "  spec.ttlSeconds: must be ≤ 3600 in this namespace\n",
    );
  });

  it("get, list (table, json, yaml, selector), extend and delete", async () => {
    intake = startFakeIntake(nc);
    const n = ns();
    expect((await run(create(n, "web", ["--label", "team=sre"]))).code).toBe(EXIT.OK);
    expect((await run([...create(n, "db"), "--label", "team=dba"])).code).toBe(EXIT.OK);
    intake.setStatus(n, "web", { phase: "Active", key: 7, sink: "10.0.0.9", ports: ["web-0." + n] });

    const get = await run(["get", "web", "-n", n]);
    expect(get.code).toBe(EXIT.OK);
    const [header, row, ...rest] = get.out.trimEnd().split("\n");
    expect(header?.split(/\s+/)).toEqual([
      "NAME",
      "NAMESPACE",
      "PHASE",
      "SINK",
      "KEY",
      "DIRECTION",
      "PORTS",
      "EXPIRES",
      "AGE",
    ]);
    expect(row?.split(/ {3,}/).slice(0, 7)).toEqual([
      "web",
      n,
      "Active",
      "10.0.0.9",
      "7",
      "both",
      `web-0.${n}`,
    ]);
    expect(rest).toEqual([]);

    const json = JSON.parse((await run(["get", "--name", "web", "-n", n, "-o", "json"])).out) as {
      mirror: { spec: { name: string } };
      status: { phase: string };
    };
    expect(json.mirror.spec.name).toBe("web");
    expect(json.status.phase).toBe("Active");

    const list = await run(["list", "-n", n]);
    expect(
      list.out
        .trimEnd()
        .split("\n")
        .map((l) => l.split(/\s+/)[0]),
    ).toEqual(["NAME", "web", "db"]);
    const yaml = parseYaml((await run(["list", "-n", n, "-o", "yaml"])).out) as unknown[];
    expect(yaml).toHaveLength(2);
    const selected = JSON.parse((await run(["list", "-n", n, "-l", "team=dba", "-o", "json"])).out) as {
      mirror: { spec: { name: string } };
    }[];
    expect(selected.map((i) => i.mirror.spec.name)).toEqual(["db"]);
    expect(intake.requests.at(-1)).toMatchObject({
      op: "list",
      namespace: n,
      selector: { matchLabels: { team: "dba" } },
    });

    const empty = await run(["list", "-n", ns()]);
    expect(empty.code).toBe(EXIT.OK);
    expect(empty.out).toBe("");
    expect(empty.err).toMatch(/^No mirrors in namespace t-/);

    const ext = await run(["extend", "web", "-n", n, "--ttl", "2h"]);
    expect(ext.code).toBe(EXIT.OK);
    expect(ext.out).toMatch(
      new RegExp(`^mirror ${n}/web now expires \\S+ \\(in (1h59m|2h|119m|120m)\\)\\n$`),
    );
    expect(intake.requests.at(-1)).toMatchObject({ op: "extend", ttlSeconds: 7200 });

    const del = await run(["delete", "web", "-n", n]);
    expect(del.code).toBe(EXIT.OK);
    expect(del.out).toBe(`mirror ${n}/web deletion requested\n`);
    const after = await run(["get", "web", "-n", n]);
    expect(after.out.split("\n")[1]).toContain("Deleting");

    const missing = await run(["get", "nope", "-n", n]);
    expect(missing.code).toBe(EXIT.FAILED);
    expect(missing.err).toBe(`NOT_FOUND: mirror ${n}/nope not found\n`);
  });

  it("create -f - reads the spec from standard input", async () => {
    intake = startFakeIntake(nc);
    const n = ns();
    const spec = `name: tap\nsources: {type: selector, matchLabels: {app: web}}\ndirection: egress\ntarget: {type: collector}\n`;
    const r = await run(["create", "-f", "-", "-n", n, "-o", "yaml"], {
      stdin: Readable.from([Buffer.from(spec)]),
    });
    expect(r.code).toBe(EXIT.OK);
    expect(parseYaml(r.out)).toMatchObject({
      mirror: { spec: { name: "tap", namespace: n, target: { type: "collector" } } },
    });
  });

  it("uses a connection it is given and leaves it open", async () => {
    intake = startFakeIntake(nc);
    const r = await run(create(ns()), { nc, env: { NATS_URL: "nats://127.0.0.1:1" } });
    expect(r.code).toBe(EXIT.OK);
    expect(nc.isClosed()).toBe(false);
  });
});

describe("when no answer comes", () => {
  it("nobody subscribed: exit 3, saying intake is not answering on the subject", async () => {
    const n = ns();
    const r = await run(["get", "web", "-n", n]);
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.err).toBe(
      `ovntap: no intake is answering on ${reqSubject(n)} (is intake running, and connected to this NATS?)\n`,
    );
  });

  it("a responder that never replies: exit 3 after --request-timeout, naming the request id to retry with", async () => {
    const n = ns();
    const sub = nc.subscribe(reqSubject(n), { callback: () => undefined });
    await nc.flush();
    try {
      const started = Date.now();
      const r = await run([...create(n), "--request-timeout", "300ms", "--request-id", "retry-me"]);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(r.code).toBe(EXIT.UNAVAILABLE);
      expect(r.err).toContain(`no reply on ${reqSubject(n)} within 0.3s`);
      expect(r.err).toContain("re-run with --request-id retry-me to retry it safely");
    } finally {
      sub.unsubscribe();
    }
  });

  it("a reply that is not an ovntap reply: exit 1", async () => {
    intake = startFakeIntake(nc, { override: () => ({ hello: "world" }) });
    const r = await run(["get", "web", "-n", ns()]);
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toMatch(/^ovntap: the reply on ovntap\.v1\.req\.t-\w+ is not an ovntap reply: /);
    intake.stop();
    intake = startFakeIntake(nc, { override: () => "not json{" });
    expect((await run(["get", "web", "-n", ns()])).err).toMatch(/is not an ovntap reply: not JSON/);
  });

  it("NATS down: exit 3 with the URL and where it came from", async () => {
    const down = await startNatsServer({ jetstream: false });
    const url = down.url;
    await down.stop();
    const viaEnv = await run(["list", "-n", "shop"], { env: { NATS_URL: url } });
    expect(viaEnv.code).toBe(EXIT.UNAVAILABLE);
    expect(viaEnv.err).toMatch(
      new RegExp(
        `^ovntap: cannot reach NATS at ${url.replace(/\./g, "\\.")} \\(from NATS_URL\\): .*ECONNREFUSED`,
      ),
    );

    const lab = join(dir, "lab-cwd");
    mkdirSync(join(lab, ".lab"), { recursive: true });
    writeFileSync(join(lab, ".lab", "env"), `export NATS_URL='${url}'\n`);
    const viaLab = await run(["list", "-n", "shop"], { env: {}, cwd: lab });
    expect(viaLab.code).toBe(EXIT.UNAVAILABLE);
    expect(viaLab.err).toContain(`cannot reach NATS at ${url} (from ${join(".lab", "env")})`);

    const viaFlag = await run(["events", "--nats", "nats://bob:hunter2@127.0.0.1:1"]);
    expect(viaFlag.code).toBe(EXIT.UNAVAILABLE);
    expect(viaFlag.err).toContain("cannot reach NATS at nats://bob:***@127.0.0.1:1 (from --nats)");
    expect(viaFlag.err).not.toContain("hunter2");
  });
});

describe("NATS permissions", () => {
  it("a namespace the user may not publish to is FORBIDDEN (exit 1); bad credentials exit 3", async () => {
    const locked = await startNatsServer({
      config: `authorization {
  users = [
    { user: shop, password: pw, permissions: {
        publish: { allow: ["ovntap.v1.req.shop"] }, subscribe: { allow: ["_INBOX.>"] } } }
    { user: intake, password: pw, permissions: {
        publish: { allow: ["_INBOX.>", "ovntap.v1.events.>"] }, subscribe: { allow: ["ovntap.v1.req.>"] } } }
  ]
}
`,
    });
    const url = (user: string, pass = "pw") => locked.url.replace("nats://", `nats://${user}:${pass}@`);
    const intakeNc = await connect({ servers: locked.url, user: "intake", pass: "pw" });
    const fake = startFakeIntake(intakeNc);
    try {
      const ok = await run(
        ["create", "web", "-n", "shop", "--pod", "web-0", "--direction", "both", "--collector"],
        {
          env: { NATS_URL: url("shop") },
        },
      );
      expect(ok.err).toBe("");
      expect(ok.code).toBe(EXIT.OK);

      const other = await run(["get", "web", "-n", "other"], { env: { NATS_URL: url("shop") } });
      expect(other.code).toBe(EXIT.FAILED);
      expect(other.err).toBe(
        "FORBIDDEN: NATS does not allow this user to publish to ovntap.v1.req.other: ask for access to namespace other\n",
      );

      const bad = await run(["get", "web", "-n", "shop"], { env: { NATS_URL: url("shop", "wrong") } });
      expect(bad.code).toBe(EXIT.UNAVAILABLE);
      expect(bad.err).toMatch(
        /^ovntap: NATS at nats:\/\/shop:\*\*\*@127\.0\.0\.1:\d+ \(from NATS_URL\) refused the credentials: /,
      );
      expect(bad.err).not.toContain("wrong");
    } finally {
      fake.stop();
      await intakeNc.close();
      await locked.stop();
    }
  });
});

describe("events", () => {
  it("prints a mirror's events in order, one line each, and stops at the end", async () => {
    const n = ns();
    const types = ["requested", "accepted", "applying", "applied", "active"] as const;
    for (const [i, type] of types.entries()) {
      await publish(
        makeEvent(type, {
          namespace: n,
          generation: type === "requested" ? 0 : 1,
          time: `2025-01-31T12:00:0${i}.000Z`,
        }),
      );
    }
    await publish(makeEvent("requested", { namespace: n, mirror: "other" }));
    await publish(makeEvent("requested", { namespace: ns() }));

    const r = await run(["events", "-n", n, "--mirror", "web"]);
    expect(r.code).toBe(EXIT.OK);
    const lines = r.out.trimEnd().split("\n");
    expect(lines.map((l) => l.split(/\s+/)[2])).toEqual([...types]);
    expect(lines[0]).toMatch(
      new RegExp(`^2025-01-31T12:00:00\\.000Z  ${n}/web  requested +gen=0  alice  op=create ttl=600s$`),
    );
    expect(lines[4]).toContain("active           gen=1  alice  ports=web-0.shop hv_cfg=12");

    const ns_ = await run(["events", "-n", n]);
    expect(ns_.out.trimEnd().split("\n")).toHaveLength(6);
    const positional = await run(["events", "other", "-n", n]);
    expect(positional.out.trimEnd().split("\n")).toHaveLength(1);
    const all = await run(["events"]);
    expect(all.out.split("\n").filter((l) => l.includes(`  ${n}/`))).toHaveLength(6);
  });

  it("-o json prints one object per line with its stream sequence; unknown events are kept", async () => {
    const n = ns();
    const seq = await publish(makeEvent("failed", { namespace: n }));
    nc.publish(
      eventSubject(n, "web"),
      JSON.stringify({ type: "teleported", namespace: n, mirror: "web", detail: { to: "mars" } }),
    );
    await nc.flush();
    const r = await run(["events", "-n", n, "-o", "json"]);
    const objs = r.out
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; seq: number });
    expect(objs.map((o) => o.type)).toEqual(["failed", "teleported"]);
    expect(objs[0]?.seq).toBe(seq);
    const text = await run(["events", "-n", n]);
    expect(text.out.trimEnd().split("\n")[1]).toContain('teleported       gen=?  ?  {"to":"mars"}');
    const yaml = await run(["events", "-n", n, "-o", "yaml"]);
    expect(yaml.out.startsWith("---\n")).toBe(true);
  });

  it("--since skips older events; nothing to show is not an error", async () => {
    const n = ns();
    await publish(makeEvent("requested", { namespace: n }));
    const none = await run(["events", "-n", n, "--since", new Date(Date.now() + 60_000).toISOString()]);
    expect(none).toEqual({ code: EXIT.OK, out: "", err: "" });
    const recent = await run(["events", "-n", n, "--since", "10m"]);
    expect(recent.out.trimEnd().split("\n")).toHaveLength(1);
    expect(await run(["events", "-n", ns()])).toEqual({ code: EXIT.OK, out: "", err: "" });
  });

  it("--follow prints what comes until interrupted, then exits 0", async () => {
    const n = ns();
    await publish(makeEvent("requested", { namespace: n }));
    const c = capture();
    const stop = new AbortController();
    const done = runCli(["events", "-n", n, "--follow"], {
      ...c.io,
      env: { NATS_URL: nats.url },
      cwd: dir,
      signal: stop.signal,
    });
    await c.waitForOut(" requested ");
    await publish(makeEvent("accepted", { namespace: n }));
    await c.waitForOut(" accepted ");
    stop.abort();
    expect(await done).toBe(EXIT.OK);
    expect(c.out().trimEnd().split("\n")).toHaveLength(2);
  });

  it("without the stream: exit 1 saying intake creates it", async () => {
    const bare = await startNatsServer();
    try {
      const r = await run(["events"], { env: { NATS_URL: bare.url } });
      expect(r.code).toBe(EXIT.FAILED);
      expect(r.err).toBe(
        `ovntap: the event stream ${EVENTS_STREAM} does not exist on this NATS server: intake creates it when it starts\n`,
      );
    } finally {
      await bare.stop();
    }
  });
});

describe("--wait", () => {
  /** Publishes lifecycle events for the mirror a create names, as an applier would. */
  function applierPublishing(
    types: readonly ("applying" | "applied" | "active" | "failed" | "degraded")[],
    delayMs = 50,
  ) {
    return async (req: MirrorRequest, reply: unknown) => {
      if (req.op !== "create" || !(reply as { ok: boolean }).ok) return;
      const { namespace, name: mirror } = req.spec;
      for (const type of types) {
        await new Promise((r) => setTimeout(r, delayMs));
        await publish(makeEvent(type, { namespace, mirror, requestId: req.requestId }));
      }
    };
  }

  it("returns 0 once the mirror is Active, with progress on stderr", async () => {
    intake = startFakeIntake(nc, { afterReply: applierPublishing(["applying", "applied", "active"]) });
    const n = ns();
    const r = await run([...create(n), "--wait", "--timeout", "20s"], { pollIntervalMs: 60_000 });
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toMatch(new RegExp(`^mirror ${n}/web is Active: `));
    const progress = r.err.trimEnd().split("\n");
    expect(progress[0]).toBe(`mirror ${n}/web created (generation 1); waiting up to 20s for it to be Active`);
    expect(progress).toContain(`${n}/web: applying reason=create attempt=1`);
    expect(progress.at(-1)).toBe(`${n}/web: active ports=web-0.shop hv_cfg=12`);
  });

  it("exits 1 with the reason when the mirror fails or degrades", async () => {
    intake = startFakeIntake(nc, { afterReply: applierPublishing(["applying", "failed"]) });
    const failed = await run([...create(ns()), "--wait"], { pollIntervalMs: 60_000 });
    expect(failed.code).toBe(EXIT.FAILED);
    expect(failed.err).toMatch(/ovntap: t-\w+\/web failed: KEY_IN_USE: key 7 is used towards 10\.0\.0\.9\n$/);
    expect(failed.out).toBe("");
    intake.stop();

    intake = startFakeIntake(nc, { afterReply: applierPublishing(["degraded"]) });
    const degraded = await run([...create(ns()), "--wait"], { pollIntervalMs: 60_000 });
    expect(degraded.code).toBe(EXIT.FAILED);
    expect(degraded.err).toMatch(/is Degraded: PortMissing: web-1 has no logical switch port\n$/);
  });

  it("ignores events of an older generation of the same name", async () => {
    const n = ns();
    intake = startFakeIntake(nc, {
      afterReply: async (req) => {
        if (req.op !== "create") return;
        await publish(makeEvent("failed", { namespace: n, generation: 0 }));
        await publish(makeEvent("active", { namespace: n, generation: 1 }));
      },
    });
    const r = await run([...create(n), "--wait"], { pollIntervalMs: 60_000 });
    expect(r.code).toBe(EXIT.OK);
  });

  it("falls back to polling get when no event comes", async () => {
    const n = ns();
    intake = startFakeIntake(nc, {
      afterReply: (req) => {
        if (req.op !== "create") return;
        setTimeout(() => intake?.setStatus(n, "web", { phase: "Applying" }), 100);
        setTimeout(
          () => intake?.setStatus(n, "web", { phase: "Active", key: 3, ports: ["web-0." + n] }),
          500,
        );
      },
    });
    const r = await run([...create(n), "--wait", "-o", "json"], { pollIntervalMs: 100 });
    expect(r.code).toBe(EXIT.OK);
    expect(JSON.parse(r.out)).toMatchObject({ status: { phase: "Active", key: 3 } });
    expect(r.err).toContain(`${n}/web: Pending\n`);
    expect(r.err).toContain(`${n}/web: Applying\n`);
    expect(r.err).toContain(`${n}/web: Active\n`);

    intake.stop();
    const m = ns();
    intake = startFakeIntake(nc, {
      afterReply: (req) => {
        if (req.op === "create")
          setTimeout(
            () =>
              intake?.setStatus(m, "web", {
                phase: "Failed",
                reason: "SinkUnreachable",
                message: "no route to 10.0.0.9",
              }),
            100,
          );
      },
    });
    const failed = await run([...create(m), "--wait"], { pollIntervalMs: 100 });
    expect(failed.code).toBe(EXIT.FAILED);
    expect(failed.err).toContain(`ovntap: ${m}/web is Failed: SinkUnreachable: no route to 10.0.0.9\n`);
  });

  it("times out with exit 1 and the last phase seen", async () => {
    intake = startFakeIntake(nc);
    const n = ns();
    const started = Date.now();
    const r = await run([...create(n), "--wait", "--timeout", "700ms"], { pollIntervalMs: 100 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toContain(
      `ovntap: timed out after 0.7s waiting for ${n}/web to be Active; it is Pending\n`,
    );
  });

  it("an interrupt stops waiting with exit 1; the mirror stays", async () => {
    intake = startFakeIntake(nc);
    const n = ns();
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 300);
    const r = await run([...create(n), "--wait"], { signal: stop.signal });
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toContain(`stopped waiting for ${n}/web`);
    expect(intake.mirrors.has(`${n}/web`)).toBe(true);
  });

  it("a refused create does not wait", async () => {
    intake = startFakeIntake(nc);
    const n = ns();
    await run(create(n));
    const r = await run([...create(n), "--wait"]);
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toBe(`ALREADY_EXISTS: mirror ${n}/web already exists\n`);
  });

  it("delete --wait returns once the mirror is deleted (event) or gone (poll)", async () => {
    const n = ns();
    intake = startFakeIntake(nc, {
      afterReply: async (req) => {
        if (req.op === "delete" && req.name === "web") {
          await publish(makeEvent("deleted", { namespace: n, mirror: "web" }));
        }
        if (req.op === "delete" && req.name === "db") {
          setTimeout(() => intake?.mirrors.delete(`${n}/db`), 200);
        }
      },
    });
    expect((await run(create(n))).code).toBe(EXIT.OK);
    expect((await run(create(n, "db"))).code).toBe(EXIT.OK);
    const byEvent = await run(["delete", "web", "-n", n, "--wait"], { pollIntervalMs: 60_000 });
    expect(byEvent.code).toBe(EXIT.OK);
    expect(byEvent.out).toBe(`mirror ${n}/web deleted\n`);
    const byPoll = await run(["delete", "db", "-n", n, "--wait"], { pollIntervalMs: 100 });
    expect(byPoll.code).toBe(EXIT.OK);
    expect(byPoll.out).toBe(`mirror ${n}/db deleted\n`);
  });
});

// Keep the helper honest: events the CLI waits on travel through the real stream too.
describe("the stream as audit trail", () => {
  it("holds what --wait saw", async () => {
    intake = startFakeIntake(nc);
    const n = ns();
    await run(create(n));
    await waitFor(
      async () => {
        const r = await run(["events", "-n", n, "-o", "json"]);
        return r.out.trimEnd().split("\n").length === 2 ? r : undefined;
      },
      { what: "requested and accepted in the stream", timeoutMs: 5_000 },
    );
    const r = await run(["events", "-n", n]);
    expect(
      r.out
        .split("\n")
        .map((l) => l.split(/\s+/)[2])
        .filter(Boolean),
    ).toEqual(["requested", "accepted"]);
  });
});
