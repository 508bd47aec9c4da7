import type { Kysely, Migration } from 'kysely';

/**
 * Credentials of tasks that run as a user. What a task runs as (`tasks.run_as`) and which
 * credentials it holds (`task_credentials`) are plain, non-secret rows, so removing a task queues
 * every credential it holds even when its encrypted secrets can no longer be read. Task API keys
 * are `api_keys` rows of `kind = 'task'` naming their task. `credentials_to_invalidate` is the
 * queue: written in the transaction that removes a task, or (an intent) before an external issuer
 * is asked for a credential, so a grant whose task write then fails is invalidated too.
 */
export const taskCredentials: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('tasks').addColumn('run_as', 'text').execute();
    await db.schema.alterTable('tasks').addColumn('last_result', 'text').execute();
    await db.schema.alterTable('api_keys').addColumn('kind', 'text', (c) => c.notNull().defaultTo('user')).execute();
    await db.schema.alterTable('api_keys').addColumn('task_id', 'text').execute();

    await db.schema
      .createTable('task_credentials')
      .addColumn('task_id', 'text', (c) => c.notNull().references('tasks.id').onDelete('cascade'))
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('credential_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('task_credentials_pk', ['task_id', 'kind', 'credential_id'])
      .execute();
    await db.schema.createIndex('task_credentials_credential').on('task_credentials').columns(['kind', 'credential_id']).execute();

    await db.schema
      .createTable('credentials_to_invalidate')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('credential_id', 'text', (c) => c.notNull())
      .addColumn('task_id', 'text')
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('queued_at', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', 'text', (c) => c.notNull())
      .addColumn('last_error', 'text')
      .execute();
    await db.schema.createIndex('credentials_to_invalidate_unique').on('credentials_to_invalidate').columns(['kind', 'credential_id']).unique().execute();
    // The invalidator takes entries oldest first: (queued_at, id) serves its range and its order, so a batch reads only what it takes.
    await db.schema.createIndex('credentials_to_invalidate_due').on('credentials_to_invalidate').columns(['queued_at', 'id']).execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('credentials_to_invalidate').execute();
    await db.schema.dropTable('task_credentials').execute();
    await db.schema.alterTable('api_keys').dropColumn('task_id').execute();
    await db.schema.alterTable('api_keys').dropColumn('kind').execute();
    await db.schema.alterTable('tasks').dropColumn('last_result').execute();
    await db.schema.alterTable('tasks').dropColumn('run_as').execute();
  },
};
