import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The system tenant (whose admins administer every tenant) is marked in the database, never
 * recognised by its name. An existing database's system tenant is its first tenant: the one the first
 * start created (bootstrap runs only on an empty database), whatever it has been renamed to since.
 * A partial unique index allows at most one system tenant.
 */
export const systemTenant: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('tenants').addColumn('system', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await sql`update tenants set system = 1 where id = (select id from tenants order by created_at, id limit 1)`.execute(db);
    await db.schema.createIndex('tenants_one_system').on('tenants').column('system').unique().where(sql.ref('system'), '=', 1).execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropIndex('tenants_one_system').execute();
    await db.schema.alterTable('tenants').dropColumn('system').execute();
  },
};
