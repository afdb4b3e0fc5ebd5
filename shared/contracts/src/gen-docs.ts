/**
 * `npm run docs` (or `npm run contracts:docs` at the root): regenerate docs/schemas/*.schema.json and
 * docs/asyncapi.json from the zod schemas. Commit the result; a unit test fails while they differ.
 */
import { DOCS_DIR, generateDocs, writeDocs } from "./docs.js";

const files = await generateDocs(DOCS_DIR);
await writeDocs(files, DOCS_DIR);
process.stdout.write(`wrote ${files.size} files under ${DOCS_DIR}\n`);
