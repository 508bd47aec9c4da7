// Regression: a claim read the whole `tasks` table. Its one query (due OR lease expired, ordered by
// next_run_at, FOR UPDATE SKIP LOCKED) was planned by PostgreSQL as a sequential scan and a sort of
// every row, so each claim cost as much as the backlog (2 ms with 5,000 due tasks, and finished
// one-off tasks stay in the table). A claim must use the indexes and stop at its limit: PostgreSQL's
// own counters for the table show no sequential scan while claims run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { z } from 'zod';
import { runTransaction } from '../src/db/index.js';
import { createTasks } from '../src/tasks/index.js';
import { createTestDatabase, DIALECTS, postgresSkipReason } from './support/databases.js';

const skip = DIALECTS.includes('postgres') ? await postgresSkipReason() : 'PostgreSQL is not among LATCHKEY_TEST_DIALECTS';

describe('task claims on a large table [postgres]', skip ? { skip } : {}, () => {
  it('a claim of 10 among 5,000 due tasks scans no table: index scans that stop at the limit', async (t) => {
    const tdb = await createTestDatabase('postgres');
    t.after(() => tdb.dispose());
    const handle = await tdb.openMigrated();
    const tasks = createTasks({ handle, concurrency: 10 });
    tasks.register({ type: 'test.noop', paramsSchema: z.object({}), run: () => {} });
    await runTransaction(handle, async (trx) => {
      for (let i = 0; i < 5000; i++) await tasks.schedule({ type: 'test.noop' }, { tx: trx });
    });
    await sql`analyze tasks`.execute(handle.db);
    // PostgreSQL publishes a backend's counters when it goes idle (within about a second).
    const counters = async () => {
      const { rows } = await sql<{ seq_scan: string; idx_scan: string }>`select seq_scan, idx_scan from pg_stat_user_tables where schemaname = current_schema() and relname = 'tasks'`.execute(handle.db);
      return { seq: Number(rows[0]?.seq_scan), idx: Number(rows[0]?.idx_scan) };
    };
    const settle = async () => {
      let last = await counters();
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 1500));
        const now = await counters();
        if (now.seq === last.seq && now.idx === last.idx) return now;
        last = now;
      }
      throw new Error('the counters of the tasks table never settled');
    };
    const before = await settle();
    const claims = 3;
    for (let i = 0; i < claims; i++) {
      assert.equal(await tasks.runner.claimAndRun(), 10);
      await tasks.runner.idle();
    }
    // Each claim: the due index scan and the update of the claimed ids by primary key (then one
    // finish of each by primary key); the first claim also scans for expired leases.
    for (const deadline = Date.now() + 60_000; (await counters()).idx < before.idx + claims * 3; ) {
      if (Date.now() > deadline) throw new Error('the index scans of the claims were never counted');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const after = await settle();
    assert.equal(after.seq, before.seq, 'no claim scanned the tasks table');
  });
});
