import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { reqSubject, Reply } from "@ovntap/contracts";
import { startNatsServer, startRedisServer, waitFor } from "@ovntap/lab";
import { connectNats, connectRedis, createLogger } from "@ovntap/runtime";
import type { NatsClient } from "@ovntap/runtime";
import { captureLogs } from "@ovntap/runtime/internal";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePolicy } from "./policy.js";
import { staticPolicy, watchPolicyFile, type PolicySource } from "./policy-source.js";
import {
  buildIntake,
  create,
  randomNs,
  send,
  startServers,
  type Built,
  type Servers,
} from "./testing/harness.js";

const policyFor = (principals: string[], extra = "") => `
trustRequestPrincipal: true
${extra}
rules:
  - principals: [${principals.map((p) => JSON.stringify(p)).join(", ")}]
    namespaces: ["*"]
`;

describe("policy file reload", () => {
  let servers: Servers;
  let svc: Built;
  let policy: PolicySource;
  let dir: string;
  let file: string;
  const reloads: boolean[] = [];
  const logs = captureLogs();
  beforeAll(async () => {
    servers = await startServers();
    dir = mkdtempSync(join(tmpdir(), "ovntap-policy-"));
    file = join(dir, "policy.yaml");
    writeFileSync(file, policyFor(["alice"]));
    policy = await watchPolicyFile(file, {
      logger: createLogger({ name: "policy-test", level: "debug", destination: logs.stream }),
      debounceMs: 50,
      onReload: (r) => reloads.push(r.ok),
    });
    svc = await buildIntake(servers, { policy });
  });
  afterAll(async () => {
    await svc?.stop();
    await policy?.close();
    await servers?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const as = async (principal: string) => {
    const ns = randomNs();
    const r = await send(servers, ns, { ...create(ns, "web"), principal });
    return r.ok ? "ok" : r.error.code;
  };

  it("applies a changed file, keeps the last good policy when the new one is invalid, and says why", async () => {
    expect(policy.version).toBe(1);
    expect(await as("alice")).toBe("ok");
    expect(await as("bob")).toBe("FORBIDDEN");

    writeFileSync(file, policyFor(["alice", "bob"]));
    await waitFor(() => policy.version === 2, { what: "the policy to reload", timeoutMs: 10_000 });
    expect(await as("bob")).toBe("ok");

    writeFileSync(file, `${policyFor(["carol"])}\nmaxTtlSeconds: -5\nrules_typo: 1\n`);
    const failed = await logs.waitFor(
      (r) => r.msg === "policy reload failed, keeping the last good policy",
      10_000,
    );
    expect(JSON.stringify(failed.issues)).toContain("maxTtlSeconds");
    expect(JSON.stringify(failed.issues)).toContain("rules_typo");
    expect(policy.version).toBe(2);
    expect(await as("bob")).toBe("ok");
    expect(await as("carol")).toBe("FORBIDDEN");

    // Replaced by rename, as editors and ConfigMap updates do.
    const tmp = join(dir, ".policy.yaml.tmp");
    writeFileSync(tmp, policyFor(["carol"]));
    renameSync(tmp, file);
    await waitFor(() => policy.version === 3, { what: "the renamed policy to load", timeoutMs: 10_000 });
    expect(await as("carol")).toBe("ok");
    expect(await as("bob")).toBe("FORBIDDEN");
    expect(reloads).toEqual([true, false, true]);
  });

  it("refuses to start on an invalid file, naming the field", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "rules:\n  - principals: [x]\n");
    await expect(
      watchPolicyFile(bad, { logger: createLogger({ name: "t", level: "silent" }) }),
    ).rejects.toThrow(/rules\[0\]\.namespaces: is required/);
  });
});

describe("principals from nats-server (accounts, service import with share)", () => {
  const password = randomUUID();
  const config = `
accounts {
  OVNTAP: {
    jetstream: enabled
    users: [{ user: intake, password: "${password}" }]
    exports: [{ service: "ovntap.v1.req.>" }]
  }
  SHOP: {
    users: [{ user: alice, password: "${password}" }, { user: bob, password: "${password}" }]
    imports: [{ service: { account: OVNTAP, subject: "ovntap.v1.req.shop" }, share: true }]
  }
}
`;
  let servers: Servers;
  let svc: Built;
  let alice: NatsClient;
  let bob: NatsClient;
  const logger = createLogger({ name: "auth-test", level: "silent" });
  const withUser = (url: string, user: string) => url.replace("nats://", `nats://${user}:${password}@`);

  beforeAll(async () => {
    const nats = await startNatsServer({ config });
    const redis = await startRedisServer();
    const intakeNats = await connectNats({ url: withUser(nats.url, "intake"), name: "intake", logger });
    alice = await connectNats({ url: withUser(nats.url, "alice"), name: "alice-cli", logger });
    bob = await connectNats({ url: withUser(nats.url, "bob"), name: "bob-cli", logger });
    const intakeRedis = await connectRedis({ url: redis.url, logger, role: "client" });
    servers = {
      nats,
      redis,
      client: alice,
      intakeNats,
      intakeRedis,
      async stop() {
        await alice.close();
        await bob.close();
        await intakeNats.close();
        await intakeRedis.close();
        await nats.stop();
        await redis.stop();
      },
    };
    const policy = parsePolicy(`
trustNatsRequestInfo: true
trustRequestPrincipal: false
rules:
  - principals: [alice]
    namespaces: [shop]
`);
    svc = await buildIntake(servers, { policy: staticPolicy(policy) });
  });
  afterAll(async () => {
    await svc?.stop();
    await servers?.stop();
  });

  const request = async (client: NatsClient, body: object) =>
    Reply.parse(
      (await client.nc.request(reqSubject("shop"), JSON.stringify(body), { timeout: 10_000 })).json(),
    );

  it("takes the principal from Nats-Request-Info, not from the body", async () => {
    const ok = await request(alice, { ...create("shop", "web"), principal: "someone-else" });
    expect(ok.ok && "mirror" in ok && ok.mirror.owner).toBe("alice");
    // bob claims to be alice; nats-server says bob.
    const refused = await request(bob, { ...create("shop", "bobs"), principal: "alice" });
    expect(refused.ok ? "ok" : refused.error.code).toBe("FORBIDDEN");
    const trail = await svc.intake.events.history("shop", "bobs");
    expect(trail.map((e) => [e.type, e.principal])).toEqual([
      ["requested", "bob"],
      ["rejected", "bob"],
    ]);
  });

  it("the account's permissions bound the namespaces: nothing else is even delivered", async () => {
    await expect(
      alice.nc.request(reqSubject("bank"), JSON.stringify(create("bank", "web")), { timeout: 2_000 }),
    ).rejects.toThrow();
  });
});
