import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteDialect, SqliteDriver, sql, type DatabaseConnection, type SqliteDialectConfig } from 'kysely';
import type { DatabaseHandle } from './adapter.js';
import { createSqliteAppender } from './sqlite-append.js';
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
  const busyTimeoutMs = Math.trunc(options.busyTimeoutMs ?? 5000);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`busy_timeout = ${busyTimeoutMs}`);
  sqlite.pragma('foreign_keys = ON');
  // FULL: a commit (a revocation, say) survives power loss, not only a process crash.
  sqlite.pragma('synchronous = FULL');
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
  let closed = false;
  const appender = createSqliteAppender(options.path, busyTimeoutMs);
  // One row's insert per table and columns, compiled by Kysely once; the thread runs it per row.
  const inserts = new Map<string, string>();
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
    async appendRows(table, rows) {
      const first = rows[0] as Record<string, unknown> | undefined;
      if (first === undefined) return;
      const columns = Object.keys(first).filter((column) => first[column] !== undefined);
      const shape = `${table}(${columns.join(',')})`;
      let insert = inserts.get(shape);
      if (insert === undefined) {
        const compiled = db.insertInto(table).values(first as never).compile();
        // The thread binds each row's values in column order: only plain values compile so.
        if (compiled.parameters.length !== columns.length || columns.some((column, i) => compiled.parameters[i] !== first[column])) {
          throw new TypeError(`appendRows takes plain values only (${table}).`);
        }
        insert = compiled.sql;
        inserts.set(shape, insert);
      }
      const values = rows.map((row) => {
        const r = row as Record<string, unknown>;
        if (Object.keys(r).filter((column) => r[column] !== undefined).join(',') !== columns.join(',')) {
          throw new TypeError(`appendRows takes rows with the same columns (${table}).`);
        }
        return columns.map((column) => r[column]);
      });
      await appender.append(insert, values);
    },
    async ping() {
      await sql`select 1`.execute(db);
    },
    poolStats: () => ({ total: closed ? 0 : 1, idle: closed ? 0 : 1, waiting: 0 }),
    async close() {
      if (closed) return;
      closed = true;
      await appender.close();
      await db.destroy();
    },
  };
}
