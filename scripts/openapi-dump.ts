// Prints the OpenAPI description the server serves at /openapi.json (see openapi-document.ts):
// `tsx scripts/openapi-dump.ts [out.json]`. `npm run lint` lints it with redocly.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { servedOpenApiDocument } from './openapi-document.js';

const text = `${JSON.stringify(await servedOpenApiDocument(), null, 2)}\n`;
const out = process.argv[2];
if (out) {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, text);
} else process.stdout.write(text);
