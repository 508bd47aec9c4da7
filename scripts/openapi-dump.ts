// Prints the OpenAPI description the server serves at /openapi.json, from an app built in this
// process on a throw-away SQLite database: `tsx scripts/openapi-dump.ts [out.json]`. `npm run lint`
// lints it with redocly; the SDK's types are generated from it.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createLogger, loadSettings } from '../src/core/index.js';
import { createLatchkey } from '../src/latchkey.js';

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
    const text = `${JSON.stringify(JSON.parse(res.body), null, 2)}\n`;
    const out = process.argv[2];
    if (out) {
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, text);
    }
    else process.stdout.write(text);
  } finally {
    await latchkey.close();
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
