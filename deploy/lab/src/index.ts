/**
 * @ovntap/lab — the native lab (real OVN + Open vSwitch in network namespaces) and the
 * launchers tests use to start its servers alone on ephemeral ports.
 *
 *   const lab = await startLab({ services: false });
 *   await lab.ping(lab.env.LAB_POD_A_NS, lab.env.LAB_POD_B_IP);   // true
 *   await lab.stop();
 */
export * from "./proc.js";
export { startNatsServer, type NatsServer, type NatsServerOptions } from "./nats.js";
export { startRedisServer, type RedisServer, type RedisServerOptions } from "./redis.js";
export { startOvsdbServer, SCHEMAS, type OvsdbServer, type OvsdbServerOptions } from "./ovsdb.js";
export {
  startLab,
  stopLabFromState,
  labNames,
  LAB_TOPOLOGY,
  LabNeedsRootError,
  LabStartError,
  LAB_SERVER_NAMES,
  type Lab,
  type LabServerName,
  type LabService,
  type LabServiceStartOptions,
  type LabNames,
  type LabOptions,
  type LabProgress,
  type LogTail,
} from "./lab.js";
export {
  LAB_ENV_NAMES,
  formatEnvFile,
  parseEnvFile,
  readLabEnvFile,
  type LabEnv,
  type LabEnvName,
} from "./env.js";
export {
  listLeftovers,
  isClean,
  readState,
  NO_LEFTOVERS,
  type LabState,
  type Leftovers,
  type LabProcess,
  type ProcRecord,
  type LinkRecord,
} from "./state.js";
export {
  startCapture,
  captureGre,
  decodeGre,
  type Capture,
  type CaptureOptions,
  type CaptureGreOptions,
  type GrePacket,
} from "./capture.js";
export { httpGet } from "./services.js";
export { ping, tcpRoundTrip, type PingOptions, type TcpRoundTripOptions } from "./traffic.js";
export {
  podTraffic,
  runDemo,
  startOvntapCapture,
  type CaptureProcess,
  type DemoOptions,
  type DemoResult,
} from "./demo.js";
