import { sql, type Kysely, type Migration } from 'kysely';
import type { DialectName } from '../adapter.js';

/** Tenants, users, groups, roles, sessions, API keys, audit events and cache invalidations. */
export function identityAndApiKeys(dialect: DialectName): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('tenants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text')
        .addColumn('password_hash', 'text')
        .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('users_tenant_username', ['tenant_id', 'username'])
        .execute();

      await db.schema
        .createTable('groups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('groups_tenant_name', ['tenant_id', 'name'])
        .execute();

      await db.schema
        .createTable('group_members')
        .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id').onDelete('cascade'))
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'user_id'])
        .execute();
      await db.schema.createIndex('group_members_user').on('group_members').column('user_id').execute();

      // Custom roles; the built-in roles (admin, editor, viewer) are defined in code.
      await db.schema
        .createTable('roles')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('permissions', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('roles_tenant_name', ['tenant_id', 'name'])
        .execute();

      // Role grants to users and groups, by role name (built-in or custom).
      await db.schema
        .createTable('role_bindings')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
        .addColumn('role_name', 'text', (c) => c.notNull())
        .addColumn('principal_type', 'text', (c) => c.notNull().check(sql`principal_type in ('user', 'group')`))
        .addColumn('principal_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('role_bindings_pk', ['tenant_id', 'principal_type', 'principal_id', 'role_name'])
        .execute();

      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
        .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('roles', 'text')
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('previous_hash', 'text')
        .addColumn('previous_expires_at', 'text')
        .addColumn('last4', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('last_used_at', 'text')
        .addColumn('rate_limit', 'text')
        .addColumn('credits_remaining', 'integer')
        .addColumn('credits_refill', 'text')
        .addColumn('credits_refilled_at', 'text')
        .addColumn('meta', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('api_keys_tenant').on('api_keys').columns(['tenant_id', 'id']).execute();
      await db.schema.createIndex('api_keys_owner').on('api_keys').column('owner_id').execute();

      // One fixed rate-limit window per API key, shared by every process (see apikeys/usage.ts).
      await db.schema
        .createTable('api_key_rate_windows')
        .addColumn('key_id', 'text', (c) => c.primaryKey().references('api_keys.id').onDelete('cascade'))
        .addColumn('window_start', 'text', (c) => c.notNull())
        .addColumn('used', 'integer', (c) => c.notNull())
        .addColumn('granted', 'integer', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('audit_events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target', 'text')
        .addColumn('details', 'text')
        .execute();
      await db.schema.createIndex('audit_events_tenant_at').on('audit_events').columns(['tenant_id', 'at', 'id']).execute();

      // A log of cache invalidations: every process drops cached entries for what it reads here
      // (woken by LISTEN/NOTIFY on PostgreSQL, and by polling in any case).
      await db.schema
        .createTable('invalidations')
        .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('subject_id', 'text')
        .addColumn('at', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      for (const table of ['invalidations', 'audit_events', 'api_key_rate_windows', 'api_keys', 'sessions', 'role_bindings', 'roles', 'group_members', 'groups', 'users', 'tenants']) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
