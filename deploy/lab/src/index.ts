/**
 * @ovntap/lab — the native lab (real OVN + Open vSwitch in network namespaces) and the
 * launchers tests use to start its servers alone on ephemeral ports.
 */
export * from "./proc.js";
export { startNatsServer, type NatsServer, type NatsServerOptions } from "./nats.js";
export { startRedisServer, type RedisServer, type RedisServerOptions } from "./redis.js";
export { startOvsdbServer, SCHEMAS, type OvsdbServer, type OvsdbServerOptions } from "./ovsdb.js";
