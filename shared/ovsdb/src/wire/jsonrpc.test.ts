import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ConnectionClosedError, InactivityTimeoutError, RequestTimeoutError } from "../errors.js";
import { JsonStreamParser } from "./framing.js";
import { RpcSession } from "./jsonrpc.js";

// A peer on a loopback socket that records what the session sends and answers as told.
async function peer(onMessage: (msg: Record<string, unknown>, sock: Socket) => void) {
  let server!: Server;
  const accepted = new Promise<Socket>((resolve) => {
    server = createServer((sock) => {
      const parser = new JsonStreamParser((v) => onMessage(v as Record<string, unknown>, sock));
      sock.on("data", (d: Buffer) => parser.push(d));
      resolve(sock);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const client = connect(port, "127.0.0.1");
  await new Promise((r) => client.once("connect", r));
  return { client, server, remote: await accepted };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe("RpcSession", () => {
  it("matches responses to requests by id and answers the peer's echo with its params", async () => {
    const seen: Record<string, unknown>[] = [];
    const { client, server, remote } = await peer((msg, sock) => {
      seen.push(msg);
      if (msg.method === "list_dbs") {
        // The notification and the reply arrive in one write.
        sock.write(JSON.stringify({ id: null, method: "update2", params: ["m", {}] }));
        sock.write(JSON.stringify({ id: msg.id, result: ["OVN_Northbound"], error: null }));
      }
    });
    cleanups.push(() => server.close());
    const notes: string[] = [];
    const s = new RpcSession(client, { probeIntervalMs: 0, onNotification: (m) => notes.push(m) });
    cleanups.push(() => s.close());
    await expect(s.request("list_dbs", [])).resolves.toEqual(["OVN_Northbound"]);
    expect(notes).toEqual(["update2"]);
    remote.write(JSON.stringify({ id: "echo", method: "echo", params: [] }));
    await waitUntil(() => seen.some((m) => m.id === "echo"));
    expect(seen.find((m) => m.id === "echo")).toEqual({ id: "echo", result: [], error: null });
    expect(s.stats.echoRequestsAnswered).toBe(1);
  });

  it("probes an idle peer with echo and declares it dead after two silent intervals", async () => {
    const seen: Record<string, unknown>[] = [];
    const { client, server } = await peer((msg) => seen.push(msg)); // never answers
    cleanups.push(() => server.close());
    const started = Date.now();
    const s = new RpcSession(client, { probeIntervalMs: 100 });
    const pending = s.request("transact", ["db"]);
    const reason = await s.closed;
    expect(reason).toBeInstanceOf(InactivityTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(seen.some((m) => m.method === "echo")).toBe(true);
    await expect(pending).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it("times out a request and sends cancel (RFC 7047 §4.1.4)", async () => {
    const seen: Record<string, unknown>[] = [];
    const { client, server } = await peer((msg) => seen.push(msg));
    cleanups.push(() => server.close());
    const s = new RpcSession(client, { probeIntervalMs: 0 });
    cleanups.push(() => s.close());
    await expect(s.request("transact", ["db"], { timeoutMs: 50 })).rejects.toBeInstanceOf(
      RequestTimeoutError,
    );
    await waitUntil(() => seen.some((m) => m.method === "cancel"));
    const tx = seen.find((m) => m.method === "transact");
    expect(seen.find((m) => m.method === "cancel")).toEqual({ method: "cancel", params: [tx?.id], id: null });
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
