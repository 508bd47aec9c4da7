import { Migrator, sql, type MigrationResultSet } from 'kysely';
import { LatchkeyError } from '../core/index.js';
import type { DatabaseHandle } from './adapter.js';
import { migrationsFor } from './migrations/index.js';

export interface MigrationStatus {
  name: string;
  executedAt: Date | undefined;
}

async function migrator(handle: DatabaseHandle): Promise<Migrator> {
  // Kysely looks for its tables in every schema unless told which one; on a PostgreSQL database
  // holding several schemas (or several Latchkey deployments) it would find another's.
  const schema =
    handle.dialect === 'postgres'
      ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(handle.db)).rows[0]?.schema
      : undefined;
  return new Migrator({
    db: handle.db,
    provider: { getMigrations: async () => migrationsFor(handle.dialect) },
    migrationTableName: 'latchkey_migration',
    migrationLockTableName: 'latchkey_migration_lock',
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
}

/**
 * Kysely checks for its tables with a catalog query over every table of every schema; when another
 * schema or table is dropped while that query runs, PostgreSQL fails it (invalid_schema_name 3F000,
 * undefined_table 42P01, undefined_column 42703 from pg_get_serial_sequence), though nothing is
 * wrong with ours. Such a failure is retried; migrations are idempotent under their lock.
 */
const CATALOG_RACE_CODES = new Set(['3F000', '42P01', '42703']);

function isForeignSchemaRace(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && CATALOG_RACE_CODES.has(code);
}

async function withSchemaRaceRetry<T>(fn: () => Promise<T>, failed: (result: T) => unknown = () => undefined): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await fn();
      if (attempt < 5 && isForeignSchemaRace(failed(result))) continue;
      return result;
    } catch (err) {
      if (attempt >= 5 || !isForeignSchemaRace(err)) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
  }
}

/** Every known migration and when it ran (undefined: pending). */
export async function migrationStatus(handle: DatabaseHandle): Promise<MigrationStatus[]> {
  const all = await withSchemaRaceRetry(async () => (await migrator(handle)).getMigrations());
  return all.map((m) => ({ name: m.name, executedAt: m.executedAt }));
}

export async function pendingMigrations(handle: DatabaseHandle): Promise<string[]> {
  return (await migrationStatus(handle)).filter((m) => m.executedAt === undefined).map((m) => m.name);
}

/**
 * Applies every pending migration. On PostgreSQL, Kysely's migrator holds an advisory lock for the
 * whole run, so processes starting at once apply each migration exactly once; SQLite's single
 * writer does the same there.
 */
export async function migrateToLatest(
  handle: DatabaseHandle,
  onApplied?: (name: string) => void,
): Promise<string[]> {
  return migrate(handle, (m) => m.migrateToLatest(), onApplied);
}

/**
 * Applies pending migrations up to and including `name` (tests use it to build a database as an
 * earlier version left it).
 */
export async function migrateTo(handle: DatabaseHandle, name: string): Promise<string[]> {
  return migrate(handle, (m) => m.migrateTo(name));
}

async function migrate(
  handle: DatabaseHandle,
  run: (m: Migrator) => Promise<MigrationResultSet>,
  onApplied?: (name: string) => void,
): Promise<string[]> {
  const result: MigrationResultSet = await withSchemaRaceRetry(
    () => handle.withMigrationLock(async () => run(await migrator(handle))),
    (r) => r.error,
  );
  const applied = (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  for (const name of applied) onApplied?.(name);
  if (result.error !== undefined) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName;
    throw new LatchkeyError(
      'database_error',
      failed ? `Migration ${failed} failed; the database was left at the previous migration.` : 'Migrations could not run.',
      { cause: result.error },
    );
  }
  return applied;
}
