/**
 * Transports and keepalive against a real ovsdb-server: ssl with a throwaway CA, and the
 * server's own inactivity probe (its `echo` requests must be answered or it hangs up).
 */
import { writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import {
  freePort,
  makeTempDir,
  readText,
  removeDir,
  run,
  SCHEMAS,
  startOvsdbServer,
  waitFor,
  type OvsdbServer,
} from "@ovntap/lab";
import { afterEach, describe, expect, it } from "vitest";
import { JsonStreamParser } from "../wire/framing.js";
import { OvsdbClient } from "./client.js";
import { nbOp as op } from "./op.js";

const NB = "OVN_Northbound";
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(extraArgs: string[] = []): Promise<OvsdbServer> {
  const s = await startOvsdbServer({ schema: SCHEMAS.nb, name: "nb", extraArgs });
  cleanups.push(() => s.stop());
  return s;
}

async function client(opts: Parameters<typeof OvsdbClient.connect>[0]): Promise<OvsdbClient> {
  const c = await OvsdbClient.connect(opts);
  cleanups.push(() => c.close());
  return c;
}

interface Pki {
  dir: string;
  ca: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
  otherCa: string;
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
async function makePki(): Promise<Pki> {
  const dir = makeTempDir("ovntap-ovsdb-pki-");
  cleanups.push(() => removeDir(dir));
  const p = (f: string) => join(dir, f);
  const ossl = (...args: string[]) => run("openssl", args);
  for (const ca of ["ca", "other-ca"]) {
    await ossl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      p(`${ca}.key`),
      "-out",
      p(`${ca}.pem`),
      "-days",
      "1",
      "-subj",
      `/CN=ovntap test ${ca}`,
    );
  }
  writeFileSync(p("server.ext"), "subjectAltName=IP:127.0.0.1\n");
  writeFileSync(p("client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const who of ["server", "client"]) {
    await ossl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      p(`${who}.key`),
      "-out",
      p(`${who}.csr`),
      "-subj",
      `/CN=ovntap-${who}`,
    );
    await ossl(
      "x509",
      "-req",
      "-in",
      p(`${who}.csr`),
      "-CA",
      p("ca.pem"),
      "-CAkey",
      p("ca.key"),
      "-CAcreateserial",
      "-out",
      p(`${who}.pem`),
      "-days",
      "1",
      "-extfile",
      p(`${who}.ext`),
    );
  }
  return {
    dir,
    ca: p("ca.pem"),
    serverKey: p("server.key"),
    serverCert: p("server.pem"),
    clientKey: p("client.key"),
    clientCert: p("client.pem"),
    otherCa: p("other-ca.pem"),
  };
}

describe("ssl", () => {
  it("connects with a client certificate, verifies the server against the CA, and transacts", async () => {
    const pki = await makePki();
    const s = await server([
      `--private-key=${pki.serverKey}`,
      `--certificate=${pki.serverCert}`,
      `--ca-cert=${pki.ca}`,
      "--remote=pssl:0:127.0.0.1",
    ]);
    // socket_util logs the ephemeral port it bound: "0:127.0.0.1: listening on port 46389".
    const port = await waitFor(() => /listening on port (\d+)/.exec(readText(join(s.dir, "nb.log")))?.[1], {
      what: "the pssl port in the ovsdb-server log",
    });
    const remote = `ssl:127.0.0.1:${port}`;
    const c = await client({
      remote,
      database: NB,
      ssl: { privateKeyFile: pki.clientKey, certificateFile: pki.clientCert, caCertFile: pki.ca },
    });
    expect(c.remote).toBe(remote);
    expect(await c.listDbs()).toContain(NB);
    const [ins] = await c.transact(NB, [op.insert("Logical_Switch", { name: "over-ssl" })]);
    const nbctl = await run("ovn-nbctl", [
      `--db=${s.unix}`,
      "--bare",
      "--columns=_uuid",
      "find",
      "Logical_Switch",
      "name=over-ssl",
    ]);
    expect(nbctl.stdout.trim()).toBe(ins.uuid);

    // A server certificate from another CA is refused.
    await expect(
      OvsdbClient.connect({
        remote,
        initialConnectTimeoutMs: 500,
        backoff: { initialMs: 50, maxMs: 100 },
        ssl: { privateKeyFile: pki.clientKey, certificateFile: pki.clientCert, caCertFile: pki.otherCa },
      }),
    ).rejects.toThrow(/certificate/i);
  });
});

describe("keepalive: the server's inactivity probe", () => {
  async function serverWithProbe(): Promise<{ s: OvsdbServer; port: number }> {
    // ovsdb-server takes remotes from NB_Global.connections; Connection.inactivity_probe
    // sets the probe of sessions accepted there (minimum 1000 ms).
    const s = await server(["--remote=db:OVN_Northbound,NB_Global,connections"]);
    const port = await freePort();
    const admin = await client({ remote: s.unix });
    await admin.transact(NB, [
      op.insert("Connection", { target: `ptcp:${port}:127.0.0.1`, inactivity_probe: 1000 }, "conn"),
      op.insert("NB_Global", { connections: ["conn"] }),
    ]);
    await waitFor(() => canConnect(port), { what: `ovsdb-server to listen on ${port}` });
    return { s, port };
  }

  it("hangs up on a peer that ignores its echo (so the next test means something)", async () => {
    const { port } = await serverWithProbe();
    const seen: { method?: string }[] = [];
    const sock = netConnect(port, "127.0.0.1");
    const parser = new JsonStreamParser((v) => seen.push(v as { method?: string }));
    sock.on("data", (d: Buffer) => parser.push(d));
    const closed = new Promise<number>((resolve) => sock.on("close", () => resolve(Date.now())));
    const started = Date.now();
    const at = await closed;
    expect(seen.some((m) => m.method === "echo")).toBe(true);
    expect(at - started).toBeLessThan(5000);
  });

  it("a client that answers echo stays connected while idle past the probe", async () => {
    const { port } = await serverWithProbe();
    // Our own probe off: the only traffic is the server's echo and our replies.
    const c = await client({ remote: `tcp:127.0.0.1:${port}`, probeIntervalMs: 0 });
    let disconnects = 0;
    c.on("disconnected", () => disconnects++);
    await waitFor(() => c.stats.echoRequestsAnswered >= 3, {
      what: "three server echoes answered (≥ 3 s idle at a 1 s probe)",
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    expect(disconnects).toBe(0);
    expect(c.connected).toBe(true);
    expect(c.stats.reconnects).toBe(0);
    expect(await c.listDbs()).toContain(NB);
  });
});

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
