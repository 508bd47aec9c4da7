// A Latchkey process for test/tasks-processes.test.ts: createLatchkey from the LATCHKEY_* environment
// (no HTTP app, no migration), the task type `test.record` registered, then its background work
// started (the task runner among it) with the lease, heartbeat and concurrency of TASKS_CHILD. Each
// run of `test.record` writes a row into `task_run_log` (task id, slot, attempt, this pid) when it
// starts, sleeps `params.sleepMs` (until its signal fires) and marks the row finished. Says "ready"
// on stdout; closes when stdin ends (or dies to `kill -9`).
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { loadSettings } from '../../src/core/index.js';
import { createLatchkey } from '../../src/latchkey.js';
import { RECORD_TYPE, recordParams, type TaskRunLogTable } from './tasks-record.js';

const config = z
  .object({ leaseMs: z.number(), heartbeatMs: z.number(), concurrency: z.number(), pollIntervalMs: z.number() })
  .parse(JSON.parse(process.env['TASKS_CHILD'] ?? '{}'));
const latchkey = await createLatchkey({
  settings: loadSettings({ env: process.env }),
  http: false,
  migrate: false,
  bootstrap: false,
  tasks: { ...config, shutdownGraceMs: 1000 },
});
const db = latchkey.database.db.withTables<{ task_run_log: TaskRunLogTable }>();
latchkey.tasks.register({
  type: RECORD_TYPE,
  paramsSchema: recordParams,
  maxAttempts: 5,
  run: async ({ taskId, slot, attempt, params, signal }) => {
    const key = { task_id: taskId, slot: slot.toISOString(), attempt };
    await db.insertInto('task_run_log').values({ ...key, pid: process.pid, finished: 0 }).execute();
    if (params.sleepMs > 0) await sleep(params.sleepMs, undefined, { signal });
    await db.updateTable('task_run_log').set({ finished: 1 }).where('task_id', '=', key.task_id).where('slot', '=', key.slot).where('attempt', '=', key.attempt).execute();
  },
});
await latchkey.background.start();
const lines = createInterface({ input: process.stdin });
lines.on('close', () => {
  void latchkey.close().then(() => process.exit(0));
});
process.stdout.write('ready\n');
