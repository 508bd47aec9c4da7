import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The claim's two indexes become partial: due tasks (`next_run_at` of enabled scheduled tasks)
 * and leases (`lease_expires_at` of running tasks). A claim or a finish changes `status`, so each
 * writes a new entry into every index of `tasks`; a partial index takes one only while the row
 * is in its state (half the entries of these two), and it holds only rows a claim can take, so a
 * planner without statistics (a table just filled) still reads it in order and stops at the limit
 * instead of reading and sorting the whole backlog.
 */
export const taskClaimIndexes: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.dropIndex('tasks_due').execute();
    await db.schema.dropIndex('tasks_lease').execute();
    await db.schema
      .createIndex('tasks_due')
      .on('tasks')
      .column('next_run_at')
      .where(sql.ref('status'), '=', sql.lit('scheduled'))
      .where(sql.ref('enabled'), '=', sql.lit(1))
      .execute();
    await db.schema.createIndex('tasks_lease').on('tasks').column('lease_expires_at').where(sql.ref('status'), '=', sql.lit('running')).execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropIndex('tasks_due').execute();
    await db.schema.dropIndex('tasks_lease').execute();
    await db.schema.createIndex('tasks_due').on('tasks').columns(['status', 'next_run_at']).execute();
    await db.schema.createIndex('tasks_lease').on('tasks').columns(['status', 'lease_expires_at']).execute();
  },
};
