import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { sql, type Kysely } from 'kysely';
import { createTestDatabase, eachDialect } from '../../test/support/databases.js';
import { migrateToLatest, migrateTo, pendingMigrations, migrationStatus } from './index.js';
import { MIGRATION_NAMES } from './migrations/index.js';

const run = promisify(execFile);

await eachDialect('database', (dialect) => {
  it('applies every migration once and reports none pending afterwards', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const handle = tdb.open();
      assert.deepEqual(await pendingMigrations(handle), [...MIGRATION_NAMES]);
      assert.deepEqual(await migrateToLatest(handle), [...MIGRATION_NAMES]);
      assert.deepEqual(await migrateToLatest(handle), []);
      assert.deepEqual(await pendingMigrations(handle), []);
      assert.ok((await migrationStatus(handle)).every((m) => m.executedAt instanceof Date));
    } finally {
      await tdb.dispose();
    }
  });

  it('marks the first tenant of an existing database as the system tenant, whatever it was renamed to', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const handle = tdb.open();
      // A database as the previous version left it: migrations up to 0002, the bootstrap tenant
      // renamed through the library (which allowed it), and a later tenant named "default".
      const upTo0002 = MIGRATION_NAMES.filter((name) => name < '0003');
      assert.deepEqual(await migrateTo(handle, upTo0002.at(-1)!), upTo0002);
      const legacy = handle.db as unknown as Kysely<{ tenants: { id: string; name: string; created_at: string; updated_at: string } }>;
      await legacy.insertInto('tenants').values({ id: 'ten_first', name: 'ops', created_at: '2026-01-01T00:00:00.000Z', updated_at: '2026-01-01T00:00:00.000Z' }).execute();
      await legacy.insertInto('tenants').values({ id: 'ten_later', name: 'default', created_at: '2026-02-01T00:00:00.000Z', updated_at: '2026-02-01T00:00:00.000Z' }).execute();
      await migrateToLatest(handle);
      const rows = await handle.db.selectFrom('tenants').select(['id', 'system']).orderBy('id').execute();
      assert.deepEqual(rows.map((r) => [r.id, Number(r.system)]), [['ten_first', 1], ['ten_later', 0]]);
      // At most one system tenant.
      await assert.rejects(handle.db.updateTable('tenants').set({ system: 1 }).where('id', '=', 'ten_later').execute());
    } finally {
      await tdb.dispose();
    }
  });

  it('runs a repeated query with its values each time, and again after a migration changed its table', async (t) => {
    const tdb = await createTestDatabase(dialect);
    t.after(() => tdb.dispose());
    const handle = await tdb.openMigrated();
    const notes = handle.db as unknown as Kysely<{ repeat_notes: { id: string; body: string; extra?: string } }>;
    await sql`create table repeat_notes (id text primary key, body text not null)`.execute(handle.db);
    const insert = (id: string, body: string) => notes.insertInto('repeat_notes').values({ id, body }).returningAll().compile();
    const selectAll = (id: string) => notes.selectFrom('repeat_notes').selectAll().where('id', '=', id).compile();
    // More runs than the pool has connections: each connection prepares the text once, then reuses it.
    for (let i = 0; i < 25; i++) {
      const body = randomBytes(12).toString('base64url');
      const inserted = await handle.executeRepeated(insert(`n${i}`, body));
      assert.deepEqual(inserted.rows, [{ id: `n${i}`, body }]);
      const touched = await handle.executeRepeated(notes.updateTable('repeat_notes').set({ body }).where('id', '=', `n${i}`).compile());
      assert.equal(Number(touched.numAffectedRows), 1);
      assert.deepEqual((await handle.executeRepeated(selectAll(`n${i}`))).rows, [{ id: `n${i}`, body }]);
    }
    // Another process migrates: the prepared `select *` now has another result type.
    const other = tdb.open();
    await sql`alter table repeat_notes add column extra text`.execute(other.db);
    await other.close();
    for (let i = 0; i < 12; i++) {
      assert.deepEqual((await handle.executeRepeated(selectAll('n3'))).rows[0], { id: 'n3', body: (await notes.selectFrom('repeat_notes').select('body').where('id', '=', 'n3').executeTakeFirstOrThrow()).body, extra: null });
    }
    // A bad statement fails with the database's error and leaves the handle working.
    await assert.rejects(handle.executeRepeated(insert('n0', 'again')), (err: Error & { code?: string }) => err.code === '23505' || /UNIQUE/.test(err.message));
    assert.equal((await handle.executeRepeated(selectAll('n0'))).rows.length, 1);
    // Many distinct texts (more than get names) all run.
    for (let i = 0; i < 80; i++) {
      const text = notes.selectFrom('repeat_notes').select(sql<number>`${sql.lit(i)}`.as('k')).where('id', '=', 'n1').compile();
      assert.deepEqual((await handle.executeRepeated(text)).rows, [{ k: i }]);
    }
  });

  it('enforces one primary data key per tenant', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const { db } = await tdb.openMigrated();
      const row = (id: string) => ({
        id,
        tenant_id: 't1',
        wrapped_key: 'x',
        master_key_id: 'mk',
        state: 'primary' as const,
        created_at: new Date().toISOString(),
        updated_at: new Date().toISOString(),
      });
      await db.insertInto('data_keys').values(row('dk1')).execute();
      await assert.rejects(db.insertInto('data_keys').values(row('dk2')).execute());
      await db.insertInto('data_keys').values({ ...row('dk3'), state: 'retired' }).execute();
      await db.insertInto('data_keys').values({ ...row('dk4'), tenant_id: 't2' }).execute();
    } finally {
      await tdb.dispose();
    }
  });

  it('enforces foreign keys', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const { db } = await tdb.openMigrated();
      const now = new Date().toISOString();
      await assert.rejects(
        db
          .insertInto('objects')
          .values({
            id: 'o1',
            type: 't',
            tenant_id: 't1',
            model_version: 1,
            attributes: '{}',
            secrets: '{}',
            aad_attributes: '[]',
            data_key_id: 'no-such-key',
            created_at: now,
            updated_at: now,
          })
          .execute(),
      );
    } finally {
      await tdb.dispose();
    }
  });

  if (dialect === 'sqlite') {
    it('runs SQLite in WAL mode with a busy timeout', async () => {
      const tdb = await createTestDatabase(dialect);
      try {
        const { db } = tdb.open();
        const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(db);
        assert.equal(mode.rows[0]?.journal_mode, 'wal');
        const timeout = await sql<{ timeout: number }>`pragma busy_timeout`.execute(db);
        assert.ok((timeout.rows[0]?.timeout ?? 0) >= 1000);
      } finally {
        await tdb.dispose();
      }
    });
  }

  it('lets four processes migrate one database at once, each migration applied exactly once', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const args = [tdb.url ?? '', tdb.dataDir];
      const children = await Promise.all(
        Array.from({ length: 4 }, () =>
          run(process.execPath, ['--import', 'tsx', 'test/support/migrate-child.ts', ...args]),
        ),
      );
      const applied = children.flatMap((c) => JSON.parse(c.stdout.trim()) as string[]);
      assert.deepEqual(applied.sort(), [...MIGRATION_NAMES].sort());
      const handle = tdb.open();
      assert.deepEqual(await pendingMigrations(handle), []);
    } finally {
      await tdb.dispose();
    }
  });
});
