import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteDialect, SqliteDriver, sql, type DatabaseConnection, type SqliteDialectConfig } from 'kysely';
import type { DatabaseHandle } from './adapter.js';
import type { Database } from './schema.js';

export interface SqliteOptions {
  /** Database file. */
  path: string;
  /** Milliseconds a writer waits for the lock before failing. */
  busyTimeoutMs?: number;
}

/**
 * SQLite transactions that take the write lock when they begin (`BEGIN IMMEDIATE`), not at their
 * first write: a transaction that reads and then writes (a claim, a compare-and-set) can never fail
 * on a stale snapshot, and one writer at a time is what row locks and `SKIP LOCKED` give on
 * PostgreSQL. Kysely's own driver opens them DEFERRED.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }
  override createDriver(): SqliteDriver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

/** The embedded database: one SQLite file in WAL mode, foreign keys on, a busy timeout. */
export function openSqlite(options: SqliteOptions): DatabaseHandle {
  mkdirSync(dirname(options.path), { recursive: true });
  const sqlite = new SQLite(options.path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
  sqlite.pragma('foreign_keys = ON');
  // FULL: a commit (a revocation, say) survives power loss, not only a process crash.
  sqlite.pragma('synchronous = FULL');
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
  let closed = false;
  return {
    db,
    dialect: 'sqlite',
    supportsRowLocks: false,
    supportsNotify: false,
    location: options.path,
    listen: undefined,
    executeRepeated: (query) => db.executeQuery(query),
    async withMigrationLock(fn) {
      // Kysely runs SQLite migrations on its single connection outside a transaction and takes no
      // lock; without this, two processes starting at once both create the same tables.
      await sql`begin immediate`.execute(db);
      let result;
      try {
        result = await fn();
      } catch (err) {
        await sql`rollback`.execute(db);
        throw err;
      }
      await sql.raw(result.error === undefined ? 'commit' : 'rollback').execute(db);
      return result;
    },
    async ping() {
      await sql`select 1`.execute(db);
    },
    poolStats: () => ({ total: closed ? 0 : 1, idle: closed ? 0 : 1, waiting: 0 }),
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}
