/**
 * The node-agent process: connections, then createAgent, then /healthz /readyz /metrics.
 * Shutdown runs in reverse: HTTP, the agent (running jobs finish, the heartbeat key is
 * removed), OVSDB, Redis, NATS.
 *
 *   NODE_NAME=worker-1 OVS_DB=unix:/run/openvswitch/db.sock NATS_URL=nats://127.0.0.1:4222 \
 *   REDIS_URL=redis://127.0.0.1:6379 node services/node-agent/dist/main.js
 */
import { OvsdbClient, ovsOp } from "@ovntap/ovsdb";
import { connectNats, connectRedis, createMetrics, runMain, startHttpServer } from "@ovntap/runtime";
import { createEventLog, createStore } from "@ovntap/store";
import { createAgent } from "./agent.js";
import { AgentEnv, agentConfig } from "./config.js";
import { OVS_DB } from "./ovs/state.js";

await runMain("node-agent", { config: AgentEnv }, async ({ config, logger, shutdown }) => {
  const metrics = createMetrics({ defaultLabels: { node: config.NODE_NAME } });
  const nats = await connectNats({
    url: config.NATS_URL,
    name: `node-agent-${config.NODE_NAME}`,
    logger,
    ...(config.NATS_CREDS_FILE ? { credsFile: config.NATS_CREDS_FILE } : {}),
    ...(config.NATS_USER ? { user: config.NATS_USER } : {}),
    ...(config.NATS_PASSWORD ? { pass: config.NATS_PASSWORD } : {}),
    ...(config.NATS_TOKEN ? { token: config.NATS_TOKEN } : {}),
  });
  shutdown.onShutdown("nats", () => nats.close());
  const redis = await connectRedis({ url: config.REDIS_URL, logger, role: "client", name: "node-agent" });
  shutdown.onShutdown("redis", () => redis.close());
  const workerRedis = await connectRedis({
    url: config.REDIS_URL,
    logger,
    role: "worker",
    name: "node-agent-worker",
  });
  shutdown.onShutdown("redis-worker", () => workerRedis.close());
  const ovs = await OvsdbClient.connect({
    remote: config.OVS_DB,
    database: OVS_DB,
    logger: logger.child({ component: "ovsdb", database: OVS_DB }),
  });
  shutdown.onShutdown("ovs", () => ovs.close());

  // OVN Southbound: configured, else the remote ovn-controller itself uses.
  let sbRemote = config.OVN_SB_DB;
  if (!sbRemote) {
    const [sel] = await ovs.transact(OVS_DB, [ovsOp.select("Open_vSwitch", [], ["external_ids"])]);
    sbRemote = sel.rows[0]?.external_ids["ovn-remote"] || undefined;
  }
  let sb: OvsdbClient | undefined;
  if (sbRemote) {
    try {
      sb = await OvsdbClient.connect({
        remote: sbRemote,
        database: "OVN_Southbound",
        logger: logger.child({ component: "ovsdb", database: "OVN_Southbound" }),
        initialConnectTimeoutMs: 15_000,
      });
      shutdown.onShutdown("ovn-sb", () => sb?.close());
    } catch (err) {
      // Explicitly configured: a mistake to fix. Derived from ovn-remote: run without OVN checks.
      if (config.OVN_SB_DB) throw err;
      logger.warn(
        { err, remote: sbRemote },
        "OVN Southbound unreachable: no data-plane checks of OVN mirrors",
      );
    }
  } else {
    logger.info({}, "no OVN_SB_DB and no ovn-remote: no data-plane checks of OVN mirrors");
  }

  const events = createEventLog({ nc: nats.nc, logger });
  await events.ensure();
  const store = createStore({
    redis: redis.redis,
    ...(config.STORE_PREFIX ? { prefix: config.STORE_PREFIX } : {}),
  });
  const agent = await createAgent({
    ovs,
    sb,
    nc: nats.nc,
    redis: redis.redis,
    workerRedis: workerRedis.redis,
    store,
    events,
    logger,
    metrics,
    config: agentConfig(config),
    natsConnected: () => nats.isConnected(),
    storePrefix: config.STORE_PREFIX,
  });
  shutdown.onShutdown("agent", () => agent.stop());

  const http = await startHttpServer({
    host: config.HTTP_HOST,
    port: config.HTTP_PORT,
    logger,
    registry: metrics.registry,
    // Ready = OVS (and SB) connected with their monitors, Redis ready, NATS connected, worker running.
    checks: {
      ...agent.checks,
      redis: () => redis.isReady() && workerRedis.isReady(),
      nats: () => nats.isConnected(),
    },
  });
  shutdown.onShutdown("http", () => http.close());
  await agent.start();
  logger.info({ port: http.port, node: config.NODE_NAME }, "node-agent listening");
});
