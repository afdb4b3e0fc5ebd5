/**
 * @ovntap/packet/internal — for this repo's tests and tools: fast-check arbitraries of packets with
 * known fields, and the byte helpers behind the decoders.
 *
 *     import { arbitraries } from "@ovntap/packet/internal";
 */
export { arbitraries } from "./arbitraries.js";
export type { Encapsulated, InnerFrame, InnerKind } from "./arbitraries.js";
export { asBuffer, finishChecksum, put16, put32, sumWords, u16, u32 } from "./bytes.js";
export { pseudoHeaderSum } from "./ip.js";
export { BufferedFile } from "./file.js";
export { pcapngToBigEndian, pcapToBigEndian } from "./byteswap.js";
