import { sql, type Kysely, type Migration } from 'kysely';

const sqlState = sql`state in ('primary', 'retired')`;

export const encryptedObjects: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('data_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('wrapped_key', 'text', (c) => c.notNull())
      .addColumn('master_key_id', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull().check(sqlState))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    // At most one primary data key per tenant, enforced by the database under any concurrency.
    await db.schema
      .createIndex('data_keys_one_primary')
      .on('data_keys')
      .column('tenant_id')
      .unique()
      .where(sql.ref('state'), '=', 'primary')
      .execute();
    await db.schema.createIndex('data_keys_master_key').on('data_keys').column('master_key_id').execute();

    await db.schema
      .createTable('objects')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('model_version', 'integer', (c) => c.notNull())
      .addColumn('attributes', 'text', (c) => c.notNull())
      .addColumn('secrets', 'text', (c) => c.notNull())
      .addColumn('aad_attributes', 'text', (c) => c.notNull())
      .addColumn('data_key_id', 'text', (c) => c.references('data_keys.id'))
      .addColumn('revision', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('objects_tenant_type').on('objects').columns(['tenant_id', 'type', 'id']).execute();
    await db.schema.createIndex('objects_type_version').on('objects').columns(['type', 'model_version']).execute();
    await db.schema.createIndex('objects_data_key').on('objects').columns(['data_key_id', 'id']).execute();

    // Long store-wide jobs (rekey --data-keys) record their start, so a rerun after a crash
    // resumes the same run instead of starting another.
    await db.schema
      .createTable('maintenance_runs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('finished_at', 'text')
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('maintenance_runs').execute();
    await db.schema.dropTable('objects').execute();
    await db.schema.dropTable('data_keys').execute();
  },
};
