// The task type that test/tasks-processes.test.ts runs in its child processes
// (test/support/tasks-child.ts), and the table where each of its runs is written.
import type { Kysely } from 'kysely';
import { z } from 'zod';

export const RECORD_TYPE = 'test.record';
export const recordParams = z.object({ sleepMs: z.number().int().min(0).default(0) });

/** One run of `test.record`: written when it starts, `finished` set to 1 when it ends. */
export interface TaskRunLogTable {
  task_id: string;
  slot: string;
  attempt: number;
  pid: number;
  finished: number;
}

/** Creates `task_run_log`, unique on (task_id, slot, attempt): no attempt of a slot runs twice. */
export async function createRunLog(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('task_run_log')
    .addColumn('task_id', 'text', (c) => c.notNull())
    .addColumn('slot', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('pid', 'integer', (c) => c.notNull())
    .addColumn('finished', 'integer', (c) => c.notNull())
    .addUniqueConstraint('task_run_log_attempt', ['task_id', 'slot', 'attempt'])
    .execute();
}
