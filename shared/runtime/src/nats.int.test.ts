import { randomUUID } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, createInbox } from "@nats-io/transport-node";
import { freePort, startNatsServer, waitFor, type NatsServer } from "@ovntap/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpServer } from "./http.js";
import { createLogger } from "./logger.js";
import { createMetrics } from "./metrics.js";
import { connectNats, ensureStream, NatsConnectError, StreamConfigError, type NatsClient } from "./nats.js";
import { captureLogs } from "./testing/log-capture.js";

function testLogger() {
  const logs = captureLogs();
  return { logs, logger: createLogger({ name: "nats-test", level: "debug", destination: logs.stream }) };
}

describe("connectNats against nats-server", () => {
  let nats: NatsServer;
  const clients: NatsClient[] = [];
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await nats?.stop();
  });

  it("publishes, subscribes and answers requests (inbox ids come from @nats-io/nuid, on Node 20)", async () => {
    const { logger, logs } = testLogger();
    const client = await connectNats({ url: nats.url, name: "t-pubsub", logger });
    clients.push(client);
    expect(client.isConnected()).toBe(true);
    expect(logs.messages("nats connected")[0]).toMatchObject({
      component: "nats",
      server: `127.0.0.1:${nats.port}`,
    });

    const subject = `t.${randomUUID()}`;
    const got: string[] = [];
    client.nc.subscribe(subject, { callback: (_err, m) => void got.push(m.string()) });
    client.nc.subscribe(`${subject}.echo`, { callback: (_err, m) => void m.respond(`echo:${m.string()}`) });
    client.nc.publish(subject, "hello");
    await waitFor(() => got.includes("hello"), { what: "the message", timeoutMs: 5_000 });
    const reply = await client.nc.request(`${subject}.echo`, "ping", { timeout: 5_000 });
    expect(reply.string()).toBe("echo:ping");
    expect(createInbox()).toMatch(/^_INBOX\.[0-9A-Za-z]{22}$/);
  });

  it("survives a server restart: logs disconnect and reconnect, readiness follows, subscriptions resume", async () => {
    const { logger, logs } = testLogger();
    const client = await connectNats({
      url: nats.url,
      name: "t-restart",
      logger,
      reconnectBaseMs: 50,
      reconnectMaxMs: 300,
    });
    clients.push(client);
    const http = await startHttpServer({
      host: "127.0.0.1",
      port: 0,
      logger,
      registry: createMetrics({ defaultMetrics: false }).registry,
      checks: { nats: () => client.isConnected() },
    });
    const readyz = async () => (await fetch(`${http.url}/readyz`)).status;
    const subject = `t.${randomUUID()}`;
    const got: string[] = [];
    client.nc.subscribe(subject, { callback: (_err, m) => void got.push(m.string()) });
    await client.nc.flush();
    expect(await readyz()).toBe(200);

    await nats.daemon.stop();
    await waitFor(() => !client.isConnected(), { what: "readiness to turn false", timeoutMs: 10_000 });
    expect(await readyz()).toBe(503);
    const down = await logs.waitFor((r) => r.msg === "nats disconnected", 10_000);
    expect(down).toMatchObject({
      level: "warn",
      component: "nats",
      server: `127.0.0.1:${nats.port}`,
    });
    await logs.waitFor((r) => r.msg === "nats reconnecting" && typeof r.attempt === "number", 10_000);

    await nats.restart();
    await waitFor(() => client.isConnected(), { what: "readiness to turn true again", timeoutMs: 20_000 });
    expect(await readyz()).toBe(200);
    await http.close();
    const up = await logs.waitFor((r) => r.msg === "nats reconnected", 10_000);
    expect(up).toMatchObject({ level: "info", server: `127.0.0.1:${nats.port}` });
    expect(up.attempts).toBeGreaterThanOrEqual(1);
    expect(up.downMs).toBeGreaterThan(0);

    // Published by another connection, so delivery proves the server knows the subscription again.
    const publisher = await connect({ servers: nats.url });
    try {
      await waitFor(
        async () => {
          publisher.publish(subject, "after restart");
          await publisher.flush();
          return got.includes("after restart");
        },
        { what: "the resubscribed subscription to receive", timeoutMs: 10_000, intervalMs: 100 },
      );
    } finally {
      await publisher.close();
    }
  });

  it("fails the first connection with NatsConnectError naming the server", async () => {
    const { logger } = testLogger();
    const port = await freePort();
    const err = await connectNats({ url: `nats://127.0.0.1:${port}`, name: "t-nope", logger }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NatsConnectError);
    expect((err as Error).message).toContain(`nats://127.0.0.1:${port}`);
  });

  it("ensureStream creates the audit stream once, idempotently, file storage, no delete, no purge", async () => {
    const { logger, logs } = testLogger();
    const client = await connectNats({ url: nats.url, name: "t-stream", logger });
    clients.push(client);
    const spec = {
      name: "OVNTAP_EVENTS",
      subjects: ["ovntap.v1.events.>"],
      storage: "file" as const,
      denyDelete: true,
      denyPurge: true,
    };
    expect((await ensureStream(client.nc, spec, { logger })).action).toBe("created");
    expect((await ensureStream(client.nc, spec, { logger })).action).toBe("unchanged");
    expect(logs.messages("jetstream stream created")).toHaveLength(1);

    const jsm = await jetstreamManager(client.nc);
    const info = await jsm.streams.info("OVNTAP_EVENTS");
    expect(info.config).toMatchObject({
      subjects: ["ovntap.v1.events.>"],
      storage: "file",
      deny_delete: true,
      deny_purge: true,
    });
    // The server enforces them, not only records them.
    const ack = await jetstream(client.nc).publish("ovntap.v1.events.default.m1", '{"type":"accepted"}');
    await expect(jsm.streams.deleteMessage("OVNTAP_EVENTS", ack.seq)).rejects.toThrow();
    await expect(jsm.streams.purge("OVNTAP_EVENTS")).rejects.toThrow();
    expect((await jsm.streams.info("OVNTAP_EVENTS")).state.messages).toBe(1);
  });

  it("ensureStream from several replicas at once: one stream, no error", async () => {
    const { logger } = testLogger();
    const replicas = await Promise.all(
      [1, 2, 3].map((i) => connectNats({ url: nats.url, name: `t-replica-${i}`, logger })),
    );
    clients.push(...replicas);
    const name = `T_${randomUUID().replaceAll("-", "")}`;
    const spec = { name, subjects: [`t.${name}.>`], denyDelete: true, denyPurge: true };
    const results = await Promise.all(replicas.map((r) => ensureStream(r.nc, spec)));
    for (const r of results)
      expect(r.info.config).toMatchObject({ name, deny_delete: true, deny_purge: true });
    const jsm = await jetstreamManager(replicas[0]!.nc);
    expect((await jsm.streams.names().next()).filter((n) => n === name)).toEqual([name]);
  });

  it("ensureStream updates what changed, and refuses what cannot change", async () => {
    const { logger } = testLogger();
    const client = await connectNats({ url: nats.url, name: "t-stream-update", logger });
    clients.push(client);
    const name = `T_${randomUUID().replaceAll("-", "")}`;
    const base = { name, subjects: [`t.${name}.a`], denyDelete: true, denyPurge: true };
    await ensureStream(client.nc, base);
    const updated = await ensureStream(client.nc, {
      ...base,
      subjects: [`t.${name}.b`, `t.${name}.a`],
      maxAgeMs: 3_600_000,
    });
    expect(updated.action).toBe("updated");
    expect(updated.info.config.max_age).toBe(3_600_000 * 1_000_000);
    expect(updated.info.config.deny_delete).toBe(true);
    // Same subjects in another order are the same stream.
    expect(
      (
        await ensureStream(client.nc, {
          ...base,
          subjects: [`t.${name}.a`, `t.${name}.b`],
          maxAgeMs: 3_600_000,
        })
      ).action,
    ).toBe("unchanged");

    await expect(ensureStream(client.nc, { ...base, storage: "memory" })).rejects.toThrow(StreamConfigError);
    await expect(ensureStream(client.nc, { ...base, denyDelete: false })).rejects.toThrow(StreamConfigError);
  });
});

describe("connectNats with authentication", () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await startNatsServer({
      jetstream: false,
      config: 'authorization { users: [ { user: "ovntap", password: "s3cr3t-pw" } ] }\n',
    });
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it("takes user and password from the URL or from options, and never logs the password", async () => {
    const { logger, logs } = testLogger();
    const inUrl = await connectNats({
      url: `nats://ovntap:s3cr3t-pw@127.0.0.1:${nats.port}`,
      name: "t-auth-url",
      logger,
    });
    await inUrl.nc.flush();
    await inUrl.close();
    const inOptions = await connectNats({
      url: nats.url,
      name: "t-auth-opts",
      logger,
      user: "ovntap",
      pass: "s3cr3t-pw",
    });
    await inOptions.close();
    const err = await connectNats({
      url: `nats://ovntap:wrong-pw@127.0.0.1:${nats.port}`,
      name: "t-auth-bad",
      logger,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NatsConnectError);
    expect((err as Error).message).not.toContain("wrong-pw");
    expect(JSON.stringify(logs.records)).not.toContain("s3cr3t-pw");
  });
});

describe("connectNats with a token", () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: false, config: 'authorization { token: "t0ken-xyz" }\n' });
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it("takes the token from the URL", async () => {
    const { logger, logs } = testLogger();
    const client = await connectNats({
      url: `nats://t0ken-xyz@127.0.0.1:${nats.port}`,
      name: "t-token",
      logger,
    });
    await client.nc.flush();
    await client.close();
    await expect(connectNats({ url: nats.url, name: "t-token-missing", logger })).rejects.toThrow(
      NatsConnectError,
    );
    expect(JSON.stringify(logs.records)).not.toContain("t0ken-xyz");
  });
});
