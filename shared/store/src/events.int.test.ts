import { jetstreamManager } from "@nats-io/jetstream";
import { EVENTS_STREAM, UNNAMED_MIRROR } from "@ovntap/contracts";
import type { LifecycleEvent } from "@ovntap/contracts";
import { startNatsServer, type NatsServer } from "@ovntap/lab";
import { connectNats, createLogger, type NatsClient } from "@ovntap/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEventLog, EVENTS_DUPLICATE_WINDOW_MS, eventId, makeEvent, type EventLog } from "./events.js";

const logger = createLogger({ name: "events-test", level: "silent" });

function accepted(mirror: string, n: number, namespace = "shop"): LifecycleEvent {
  return makeEvent("accepted", {
    namespace,
    mirror,
    generation: n,
    principal: "alice",
    requestId: `req-${mirror}-${n}`,
    eventId: eventId(`req-${mirror}-${n}`, "accepted"),
    time: new Date(Date.UTC(2030, 0, 1, 0, 0, n)),
    detail: { op: "create" },
  });
}

describe("the event log against nats-server (JetStream)", () => {
  let server: NatsServer;
  let nats: NatsClient;
  let events: EventLog;
  beforeAll(async () => {
    server = await startNatsServer();
    nats = await connectNats({ url: server.url, name: "events-test", logger });
    events = createEventLog({ nc: nats.nc, logger });
  });
  afterAll(async () => {
    await nats?.close();
    await server?.stop();
  });

  it("ensure creates OVNTAP_EVENTS with file storage, no delete, no purge; again it is unchanged", async () => {
    expect(events.isEnsured()).toBe(false);
    const first = await events.ensure();
    expect(first.action).toBe("created");
    expect(events.isEnsured()).toBe(true);
    expect(first.info.config).toMatchObject({
      name: EVENTS_STREAM,
      subjects: ["ovntap.v1.events.>"],
      storage: "file",
      deny_delete: true,
      deny_purge: true,
      duplicate_window: EVENTS_DUPLICATE_WINDOW_MS * 1_000_000,
    });
    expect((await events.ensure()).action).toBe("unchanged");

    // The server itself refuses to purge the stream or delete a message.
    const seq = (await events.publish(accepted("audit", 1))).seq;
    const jsm = await jetstreamManager(nats.nc);
    await expect(jsm.streams.purge(EVENTS_STREAM)).rejects.toThrow();
    await expect(jsm.streams.deleteMessage(EVENTS_STREAM, seq)).rejects.toThrow();
    expect((await events.history("shop", "audit")).map((e) => e.seq)).toEqual([seq]);
  });

  it("publishing the same eventId twice stores one event (Nats-Msg-Id)", async () => {
    await events.ensure();
    const e = accepted("dedupe", 1);
    const a = await events.publish(e);
    const b = await events.publish({ ...e, time: "2031-01-01T00:00:00.000Z" });
    expect(a.duplicate).toBe(false);
    expect(b).toEqual({ seq: a.seq, duplicate: true });
    const trail = await events.history("shop", "dedupe");
    expect(trail).toHaveLength(1);
    expect(trail[0]).toEqual({ ...e, seq: a.seq });
  });

  it("history returns one mirror's events in publish order, and nothing of other mirrors", async () => {
    await events.ensure();
    for (let n = 1; n <= 30; n++) {
      await events.publish(accepted("ordered", n));
      await events.publish(accepted("noise", n));
      await events.publish(accepted("ordered", n, "other-ns"));
    }
    const trail = await events.history("shop", "ordered");
    expect(trail.map((e) => e.generation)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(new Set(trail.map((e) => `${e.namespace}/${e.mirror}`))).toEqual(new Set(["shop/ordered"]));
    const seqs = trail.map((e) => e.seq ?? 0);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    expect(await events.history("shop", "ordered", { limit: 5 })).toHaveLength(5);
    expect(await events.history("shop", "never")).toEqual([]);
  });

  it("events about unnamed requests go to <ns>._unnamed", async () => {
    await events.ensure();
    const e = makeEvent("rejected", {
      namespace: "shop",
      mirror: UNNAMED_MIRROR,
      generation: 0,
      principal: "anonymous",
      requestId: "bad-1",
      eventId: eventId("bad-1", "rejected"),
      detail: { error: { code: "INVALID_REQUEST", message: "invalid request: op: is required" } },
    });
    await events.publish(e);
    expect((await events.history("shop", UNNAMED_MIRROR)).map((x) => x.eventId)).toEqual(["bad-1:rejected"]);
  });

  it("refuses an event that does not match the contract", async () => {
    await events.ensure();
    const bad = { ...accepted("bad", 1), generation: -1 };
    await expect(events.publish(bad)).rejects.toThrow();
    expect(await events.history("shop", "bad")).toEqual([]);
  });
});
