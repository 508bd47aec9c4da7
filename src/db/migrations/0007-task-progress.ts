import type { Kysely, Migration } from 'kysely';

/**
 * A task's progress: what its latest run last reported through `context.progress` (JSON, never a
 * secret), written only by the holder of the current claim (fenced by `lease_token`).
 */
export const taskProgress: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('tasks').addColumn('progress', 'text').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('tasks').dropColumn('progress').execute();
  },
};
