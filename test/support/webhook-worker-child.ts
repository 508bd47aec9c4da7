// A second Latchkey process for test/multi-process.test.ts: createLatchkey from the LATCHKEY_*
// environment with its background work started (the invalidation bus and the task runner, which
// makes webhook delivery attempts) and no HTTP app, the runner polling every
// WEBHOOK_CHILD_POLL_MS. Says "ready" on stdout,
// closes when stdin ends.
import { createInterface } from 'node:readline';
import { loadSettings } from '../../src/core/index.js';
import { createLatchkey } from '../../src/latchkey.js';

const pollIntervalMs = Number(process.env['WEBHOOK_CHILD_POLL_MS']);
const latchkey = await createLatchkey({
  settings: loadSettings({ env: process.env }),
  http: false,
  migrate: false,
  bootstrap: false,
  background: true,
  tasks: { pollIntervalMs },
});
const lines = createInterface({ input: process.stdin });
lines.on('close', () => {
  void latchkey.close().then(() => process.exit(0));
});
process.stdout.write('ready\n');
