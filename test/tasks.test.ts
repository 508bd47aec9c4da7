// The task engine as createLatchkey assembles it: `latchkey.tasks` runs only with the background
// work, stops with it, and the README's Tasks snippet runs as written, on both databases.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { z } from 'zod';
import { loadSettings } from '../src/core/index.js';
import { createLatchkey, type Latchkey } from '../src/latchkey.js';
import type { TaskView } from '../src/tasks/index.js';
import { createTestDatabase, eachDialect, latchkeyEnv } from './support/databases.js';

interface Mailer {
  send(message: { report: string; idempotencyKey: string }, options: { signal: AbortSignal }): Promise<void>;
}

/** The README's Tasks snippet as a function of the names it uses. */
function readmeSnippet(): (latchkey: Latchkey, zod: typeof z, mailer: Mailer) => Promise<TaskView> {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('latchkey.tasks.register({');
  assert.ok(start > 0, 'the README has the Tasks snippet');
  const code = readme.slice(start, readme.indexOf('```', start));
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (latchkey: Latchkey, zod: typeof z, mailer: Mailer) => Promise<TaskView>;
  return new AsyncFunction('latchkey', 'z', 'mailer', `${code}\nreturn task;`);
}

async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

await eachDialect('latchkey.tasks', (dialect) => {
  it('runs the README snippet: the task runs with the background work, with its idempotency key, and stops with close()', async (t) => {
    const tdb = await createTestDatabase(dialect);
    t.after(() => tdb.dispose());
    const settings = loadSettings({ env: latchkeyEnv(tdb, { LATCHKEY_LOG_LEVEL: 'silent' }) });
    const latchkey = await createLatchkey({ settings, http: false, bootstrap: false, tasks: { pollIntervalMs: 20, shutdownGraceMs: 1000 } });
    t.after(() => latchkey.close());
    const sent: Array<{ report: string; idempotencyKey: string }> = [];
    const mailer: Mailer = {
      send: async (message, { signal }) => {
        assert.equal(signal.aborted, false);
        sent.push(message);
      },
    };
    const task = await readmeSnippet()(latchkey, z, mailer);
    assert.equal(task.status, 'scheduled');
    assert.deepEqual(task.schedule, { cron: '0 9 * * 1', timezone: 'Europe/Paris' });
    assert.equal(new Date(task.nextRunAt ?? '').getUTCMinutes(), 0);

    await latchkey.tasks.runNow(task.id);
    assert.equal(latchkey.background.started, false);
    assert.equal(latchkey.tasks.runner.runningCount, 0);
    await latchkey.background.start();
    await waitFor(async () => (await latchkey.tasks.get(task.id)).runs.length === 1, 'the task to run');
    const view = await latchkey.tasks.get(task.id);
    assert.equal(view.runs[0]?.outcome, 'succeeded');
    assert.equal(view.status, 'scheduled', 'a cron task is scheduled again');
    assert.ok(Date.parse(view.nextRunAt ?? '') > Date.now());
    assert.deepEqual(sent, [{ report: 'r-1', idempotencyKey: `${task.id}@${view.runs[0]?.slot}` }]);

    await latchkey.close();
    assert.equal(latchkey.background.started, false);
  });
});
