/**
 * @ovntap/k8s/testing — for tests only: a fake Kubernetes API server that speaks the real wire
 * protocol (see fake-api-server.ts for what it implements and what it does not), and helpers
 * to build the objects it serves.
 */
export {
  FAKE_RESOURCES,
  FakeApiServer,
  type FakeApiCall,
  type FakeApiServerOptions,
  type FakePolicyRule,
  type FakeResource,
  type KubeObject,
  type KubeStatus,
} from "./fake-api-server.js";
export { jsonPatch, JsonPatchError, mergePatch, type Json, type JsonPatchOp } from "./patch.js";
export {
  kubeOvnIpObject,
  podObject,
  selfSignedCertificate,
  type KubeOvnIpOptions,
  type PodObjectOptions,
} from "./objects.js";
export { waitUntil } from "./wait.js";
