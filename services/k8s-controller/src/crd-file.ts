/**
 * The committed CRD file: its path and its text, formatted as the repository formats YAML, so
 * the generator's output and the file compare byte for byte.
 */
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { trafficMirrorCrd } from "./crd.js";

/** deploy/k8s/base/crd-trafficmirrors.yaml, from this file in services/k8s-controller/src (or dist). */
export const CRD_FILE = fileURLToPath(
  new URL("../../../deploy/k8s/base/crd-trafficmirrors.yaml", import.meta.url),
);

const HEADER = `# Generated from the MirrorSpec of @ovntap/contracts by
# \`npm run gen-crd --workspace @ovntap/k8s-controller\` (services/k8s-controller/src/crd.ts).
# Do not edit: a test fails when this file and the generator disagree.
`;

export async function renderCrdYaml(): Promise<string> {
  const text = HEADER + stringify(trafficMirrorCrd(), { lineWidth: 0 });
  // Loaded on demand, as the contracts' docs generator does: only the generator needs prettier.
  const prettier = await import("prettier");
  const options = (await prettier.resolveConfig(CRD_FILE)) ?? {};
  return prettier.format(text, { ...options, filepath: CRD_FILE });
}
