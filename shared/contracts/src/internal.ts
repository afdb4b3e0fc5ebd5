/**
 * @ovntap/contracts/internal — for this repo's tests and tools, not for services: fast-check
 * arbitraries, the IP helpers behind the sink and CIDR schemas, and the docs generator.
 *
 *     import { arbitraries } from "@ovntap/contracts/internal";
 */
export { arbitraries } from "./arbitraries.js";
export type { OutOfRange } from "./arbitraries.js";
export {
  buildAsyncApi,
  CONTRACT_VERSION,
  DOCS_DIR,
  generateDocs,
  jsonSchemas,
  PUBLIC_SCHEMAS,
  schemaFileName,
  sortKeys,
  writeDocs,
} from "./docs.js";
export {
  canonicalIp,
  cidrHasHostBits,
  cidrNetwork,
  embeddedIpv4,
  formatCidr,
  formatIp,
  parseCidr,
  parseIp,
  parseIpv4,
  parseIpv6,
  sinkAddressProblem,
  transportFamily,
} from "./ip.js";
export type { IpFamily, ParsedCidr, ParsedIp } from "./ip.js";
