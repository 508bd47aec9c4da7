// Every storage-facing test runs on SQLite and on the real PostgreSQL server, each test in its own
// database file or schema. `LATCHKEY_TEST_DIALECTS=sqlite` (or postgres) narrows the run;
// `LATCHKEY_TEST_DATABASE_URL` points at another server. Under CI=true an unreachable PostgreSQL
// fails the run; elsewhere its tests are reported as skipped with the reason.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe } from 'node:test';
import pg from 'pg';
import { openDatabase, migrateToLatest, sqlitePath, type DatabaseHandle, type DialectName } from '../../src/db/index.js';

export const POSTGRES_URL = process.env['LATCHKEY_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

const requested = (process.env['LATCHKEY_TEST_DIALECTS'] ?? 'sqlite,postgres').split(',').map((s) => s.trim());
export const DIALECTS: DialectName[] = (['sqlite', 'postgres'] as const).filter((d) => requested.includes(d));

async function probePostgres(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (err) {
    return `PostgreSQL at ${new URL(POSTGRES_URL).host} is unreachable (${(err as Error).message})`;
  } finally {
    await client.end().catch(() => {});
  }
}

let probe: Promise<string | undefined> | undefined;

/** Why PostgreSQL tests cannot run, or undefined. Throws under CI=true: CI must not skip them. */
export async function postgresSkipReason(): Promise<string | undefined> {
  probe ??= probePostgres();
  const reason = await probe;
  if (reason && process.env['CI'] === 'true') throw new Error(`${reason}; CI requires PostgreSQL.`);
  return reason;
}

/** A fresh, empty place to keep data for one test: a temp dir (SQLite) or a schema (PostgreSQL). */
export interface TestDatabase {
  dialect: DialectName;
  /** Data directory (SQLite file lives here; also usable for key files). */
  dataDir: string;
  /** Database URL for this test (undefined for SQLite), usable by child processes too. */
  url: string | undefined;
  /** Opens a new handle (a new pool or file connection) on this test's database. */
  open(): DatabaseHandle;
  /** Opens a handle and applies migrations. */
  openMigrated(): Promise<DatabaseHandle>;
  /** Closes every handle opened here and deletes the data. */
  dispose(): Promise<void>;
}

export async function createTestDatabase(dialect: DialectName): Promise<TestDatabase> {
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-test-'));
  const handles: DatabaseHandle[] = [];
  let url: string | undefined;
  let schema: string | undefined;
  if (dialect === 'postgres') {
    schema = `lk_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.end();
    const parsed = new URL(POSTGRES_URL);
    parsed.searchParams.set('options', `-c search_path=${schema}`);
    url = parsed.toString();
  }
  const open = () => {
    const handle = openDatabase({ url, dataDir });
    handles.push(handle);
    return handle;
  };
  return {
    dialect,
    dataDir,
    url,
    open,
    async openMigrated() {
      const handle = open();
      await migrateToLatest(handle);
      return handle;
    },
    async dispose() {
      await Promise.all(handles.map((h) => h.close()));
      if (schema) {
        const admin = new pg.Client({ connectionString: POSTGRES_URL });
        await admin.connect();
        await admin.query(`drop schema if exists ${schema} cascade`);
        await admin.end();
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export { sqlitePath };

/**
 * The environment of a Latchkey on this test database: its data directory, its URL (PostgreSQL) and
 * a fresh master key, plus `extra`. For loadSettings or a `latchkey` child process.
 */
/** LATCHKEY_EGRESS_ALLOW for tests: the local OpenID provider and test servers listen on 127.0.0.1. */
export const LOOPBACK_EGRESS = '127.0.0.1/32';

export function latchkeyEnv(tdb: TestDatabase, extra: Record<string, string> = {}): Record<string, string> {
  return {
    LATCHKEY_DATA_DIR: tdb.dataDir,
    ...(tdb.url ? { LATCHKEY_DATABASE_URL: tdb.url } : {}),
    LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ...extra,
  };
}

/**
 * Registers a describe block per dialect. PostgreSQL blocks are skipped with the reason when the
 * server is unreachable outside CI.
 *
 * @example
 * await eachDialect('object store', (dialect) => {
 *   it('writes', async (t) => { const tdb = await createTestDatabase(dialect); ... });
 * });
 */
export async function eachDialect(
  name: string,
  body: (dialect: DialectName) => void,
): Promise<void> {
  for (const dialect of DIALECTS) {
    const skip = dialect === 'postgres' ? await postgresSkipReason() : undefined;
    describe(`${name} [${dialect}]`, skip ? { skip } : {}, () => body(dialect));
  }
}
