// The OpenAPI description the server serves at /openapi.json, from an app built in this process on
// a throw-away SQLite database. Used by `scripts/openapi-dump.ts` (what `npm run lint` lints) and
// `scripts/gen-client.ts` (what the SDK's types are generated from), so both read the same document.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, loadSettings } from '../src/core/index.js';
import { createLatchkey } from '../src/latchkey.js';

/**
 * @example
 * const doc = await servedOpenApiDocument(); // { openapi: '3.0.3', paths: { … }, … }
 */
export async function servedOpenApiDocument(): Promise<Record<string, unknown>> {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-openapi-'));
  try {
    const settings = loadSettings({
      env: { LATCHKEY_DATA_DIR: dataDir, LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'), LATCHKEY_LOG_LEVEL: 'silent' },
    });
    const latchkey = await createLatchkey({ settings, logger: createLogger({ level: 'silent' }), bootstrap: false });
    try {
      const app = latchkey.app;
      if (!app) throw new Error('The HTTP app was not built.');
      await app.ready();
      const res = await app.inject({ method: 'GET', url: '/openapi.json' });
      if (res.statusCode !== 200) throw new Error(`GET /openapi.json answered ${res.statusCode}.`);
      return JSON.parse(res.body) as Record<string, unknown>;
    } finally {
      await latchkey.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
