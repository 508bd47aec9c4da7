import type { Kysely, Migration } from 'kysely';

/**
 * Stored tasks and their bounded run history. A task row is also its lease: a claim sets
 * `status = 'running'`, a lease end and a new fencing token (`lease_token`, one more per claim),
 * and only the holder of the current token may record the run's outcome.
 */
export const tasks: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('tasks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.unique())
      .addColumn('tenant_id', 'text')
      .addColumn('owner_id', 'text')
      .addColumn('params', 'text', (c) => c.notNull())
      .addColumn('schedule', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('run_slot', 'text', (c) => c.notNull())
      .addColumn('next_run_at', 'text', (c) => c.notNull())
      .addColumn('lease_token', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('lease_owner', 'text')
      .addColumn('lease_expires_at', 'text')
      .addColumn('last_run_at', 'text')
      .addColumn('last_outcome', 'text')
      .addColumn('last_error_code', 'text')
      .addColumn('last_error', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('tasks_due').on('tasks').columns(['status', 'next_run_at']).execute();
    await db.schema.createIndex('tasks_lease').on('tasks').columns(['status', 'lease_expires_at']).execute();
    await db.schema.createIndex('tasks_tenant').on('tasks').columns(['tenant_id', 'type', 'id']).execute();

    await db.schema
      .createTable('task_runs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('task_id', 'text', (c) => c.notNull().references('tasks.id').onDelete('cascade'))
      .addColumn('run_slot', 'text', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('lease_token', 'integer', (c) => c.notNull())
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text', (c) => c.notNull())
      .addColumn('duration_ms', 'integer', (c) => c.notNull())
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('error_code', 'text')
      .addColumn('error', 'text')
      .execute();
    await db.schema.createIndex('task_runs_task').on('task_runs').columns(['task_id', 'finished_at']).execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('task_runs').execute();
    await db.schema.dropTable('tasks').execute();
  },
};
