/**
 * @ovntap/lab/internal — the lab's building blocks, for code inside this repo that
 * needs them (the CLI, tests that build an unusual topology). Not a stable API.
 */
export * from "./index.js";
export * from "./net.js";
export {
  teardown,
  writeState,
  newState,
  sameProcess,
  findLabProcesses,
  labDirStem,
  LAB_MARKER,
  type TeardownProgress,
} from "./state.js";
export {
  discoverServices,
  findRepoRoot,
  startService,
  waitServiceReady,
  ServiceNotBuiltError,
  type ServiceInfo,
  type StartServiceOptions,
} from "./services.js";
