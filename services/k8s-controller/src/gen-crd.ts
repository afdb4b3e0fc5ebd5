/**
 * Writes deploy/k8s/base/crd-trafficmirrors.yaml from the contract's MirrorSpec:
 * `npm run gen-crd --workspace @ovntap/k8s-controller`. A test fails when the committed file
 * differs from what this would write.
 */
import { writeFile } from "node:fs/promises";
import { CRD_FILE, renderCrdYaml } from "./crd-file.js";

await writeFile(CRD_FILE, await renderCrdYaml());
process.stdout.write(`wrote ${CRD_FILE}\n`);
