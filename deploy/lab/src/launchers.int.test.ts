import { connect } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { isAlive, startNatsServer, startRedisServer } from "./index.js";

function roundTrip(port: number, send: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let buf = "";
    s.setTimeout(5_000, () => s.destroy(new Error("no answer")));
    s.on("error", reject);
    s.on("data", (d) => {
      buf += d.toString();
      if (until.test(buf)) {
        s.destroy();
        resolve(buf);
      }
    });
    s.write(send);
  });
}

describe("server launchers", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups) await c();
  });

  it("starts redis-server on a free port, keeps data across a restart (AOF), stops by pid", async () => {
    const redis = await startRedisServer();
    cleanups.push(() => redis.stop());
    expect(await roundTrip(redis.port, "SET k v\r\n", /\+OK/)).toContain("+OK");
    const firstPid = redis.daemon.pid;
    await redis.restart();
    expect(redis.daemon.pid).not.toBe(firstPid);
    expect(await roundTrip(redis.port, "GET k\r\n", /\$1\r\nv/)).toContain("v");
    await redis.stop();
    expect(isAlive(redis.daemon.pid)).toBe(false);
  });

  it("starts nats-server with JetStream on an ephemeral port and restarts it on the same port", async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.stop());
    const info = await roundTrip(nats.port, "", /^INFO .*\r\n/);
    expect(JSON.parse(info.slice(5))).toMatchObject({ jetstream: true, port: nats.port });
    await nats.restart();
    const again = await roundTrip(nats.port, "", /^INFO .*\r\n/);
    expect(JSON.parse(again.slice(5))).toMatchObject({ port: nats.port });
    await nats.stop();
    expect(isAlive(nats.daemon.pid)).toBe(false);
  });

  it("two servers of each kind run side by side", async () => {
    const [a, b] = await Promise.all([startRedisServer(), startRedisServer()]);
    cleanups.push(
      () => a.stop(),
      () => b.stop(),
    );
    expect(a.port).not.toBe(b.port);
    const [n1, n2] = await Promise.all([startNatsServer(), startNatsServer()]);
    cleanups.push(
      () => n1.stop(),
      () => n2.stop(),
    );
    expect(n1.port).not.toBe(n2.port);
  });
});

describe("ovsdb-server launcher", () => {
  it("serves the real OVN NB schema on unix and tcp, and keeps rows across a restart", async () => {
    const { run } = await import("./proc.js");
    const { startOvsdbServer, SCHEMAS } = await import("./ovsdb.js");
    const nb = await startOvsdbServer({ schema: SCHEMAS.nb, name: "nb", tcp: true });
    try {
      expect(nb.tcp).toMatch(/^tcp:127\.0\.0\.1:\d+$/);
      await run("ovn-nbctl", [`--db=${nb.unix}`, "ls-add", "sw0"]);
      const before = await run("ovn-nbctl", [`--db=${nb.tcp}`, "ls-list"]);
      expect(before.stdout).toContain("sw0");
      const port = nb.tcp;
      await nb.restart();
      expect(nb.tcp).toBe(port);
      const after = await run("ovn-nbctl", [`--db=${nb.tcp}`, "ls-list"]);
      expect(after.stdout).toContain("sw0");
    } finally {
      await nb.stop();
    }
  });
});
