// Latchkey's own work as tasks of its engine, on both databases: the recurring tasks exist once
// per database however many processes start, the OAuth clean-up deletes what expired, and
// housekeeping and the proactive token refresh run (there are no timers of their own any more).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { LatchkeyError, loadSettings, manualClock } from '../src/core/index.js';
import { SYSTEM_ACTOR } from '../src/identity/index.js';
import { createLatchkey, type Latchkey } from '../src/latchkey.js';
import type { TaskView } from '../src/tasks/index.js';
import { createTestDatabase, eachDialect, latchkeyEnv } from './support/databases.js';
import { randomName } from './support/http.js';

/** Waits for `check` to hold, polling; fails after a generous ceiling (never a timing assertion). */
async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Gave up waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function ownTasks(latchkey: Latchkey): Promise<TaskView[]> {
  const { tasks } = await latchkey.tasks.list({ limit: 500 });
  return tasks.filter((t) => t.key?.startsWith('latchkey:')).sort((a, b) => String(a.key).localeCompare(String(b.key)));
}

await eachDialect("Latchkey's own tasks", (dialect) => {
  it('creates its recurring tasks once per database, runs the OAuth clean-up and housekeeping on the engine', async (t) => {
    const tdb = await createTestDatabase(dialect);
    t.after(() => tdb.dispose());
    const settings = loadSettings({ env: latchkeyEnv(tdb, { LATCHKEY_LOG_LEVEL: 'silent', LATCHKEY_PUBLIC_URL: 'https://latchkey.test' }) });
    const clock = manualClock();
    const tasks = { pollIntervalMs: 20, leaseMs: 3_600_000 };
    const first = await createLatchkey({ settings, clock, http: false, tasks });
    t.after(() => first.close());
    assert.deepEqual(await ownTasks(first), [], 'nothing is written before the background work starts');
    await first.background.start();
    const ensured = await ownTasks(first);
    await first.close();
    // The next process (SQLite: one process runs tasks) finds them and adds none.
    const latchkey = await createLatchkey({ settings, clock, http: false, tasks, background: true });
    t.after(() => latchkey.close());

    const own = await ownTasks(latchkey);
    assert.deepEqual(own.map((task) => task.id), ensured.map((task) => task.id));
    assert.deepEqual(
      own.map((task) => ({ key: task.key, type: task.type, owner: task.owner, schedule: task.schedule })),
      [
        { key: 'latchkey:housekeeping', type: 'latchkey.housekeeping', owner: null, schedule: { every: '30m' } },
        { key: 'latchkey:oauth-cleanup', type: 'latchkey.oauth-cleanup', owner: null, schedule: { every: '30m' } },
        { key: 'latchkey:token-refresh', type: 'latchkey.token-refresh', owner: null, schedule: { every: '1m' } },
      ],
    );
    // Both run at the first start.
    for (const task of own) {
      const ran = await until(`${task.type} to run`, async () => {
        const view = await latchkey.tasks.get(task.id);
        return view.runs.length > 0 ? view : undefined;
      });
      assert.equal(ran.runs[0]?.outcome, 'succeeded', JSON.stringify(ran.runs[0]));
      assert.equal(ran.status, 'scheduled');
      const everyMs = task.schedule !== null && 'every' in task.schedule && task.schedule.every === '1m' ? 60_000 : 30 * 60_000;
      assert.equal(ran.nextRunAt, new Date(Date.parse(ran.runs[0]?.slot ?? '') + everyMs).toISOString());
    }

    // A connect session is deleted by the clean-up's first run a day after it was created.
    const tenant = await latchkey.identity.tenants.create({ name: randomName('t') });
    const created = await latchkey.connect.sessions.create(SYSTEM_ACTOR, tenant.id, { endUser: { id: 'end-user-1' }, ttlMs: 5 * 60_000 });
    const session = await latchkey.connect.sessions.open(created.token);
    const cleanup = own.find((task) => task.type === 'latchkey.oauth-cleanup');
    clock.advance(24 * 3600_000 + 31 * 60_000);
    // The run is recorded after its work commits: wait for the record, then look.
    const after = await until('the clean-up to run again', async () => {
      const view = await latchkey.tasks.get(cleanup?.id ?? '');
      return view.runs.length >= 2 ? view : undefined;
    });
    assert.ok(after.runs.every((run) => run.outcome === 'succeeded'), JSON.stringify(after.runs));
    await assert.rejects(latchkey.store.get('connect_session', tenant.id, session.id), (err: unknown) => err instanceof LatchkeyError && err.code === 'not_found');
  });
});
