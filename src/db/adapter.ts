import type { CompiledQuery, Insertable, Kysely, QueryResult } from 'kysely';
import type { Database } from './schema.js';

export type DialectName = 'sqlite' | 'postgres';

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

/**
 * The one place where SQLite and PostgreSQL differ. Everything outside db/ talks to Kysely and asks
 * this adapter for capabilities, never for the dialect's name.
 */
export interface DatabaseHandle {
  readonly db: Kysely<Database>;
  readonly dialect: DialectName;
  /**
   * `FOR UPDATE` row locks and `SKIP LOCKED` claims (PostgreSQL). SQLite has neither: every
   * transaction begins IMMEDIATE and holds the database's one write lock, so a transaction there
   * is the only writer and has nothing to skip.
   */
  readonly supportsRowLocks: boolean;
  /** `LISTEN/NOTIFY` between processes. */
  readonly supportsNotify: boolean;
  /** Where the data is, without credentials: a file path or `host:port/database`. */
  readonly location: string;
  /**
   * Runs `fn` (the migrator) so that concurrent processes apply each migration once. PostgreSQL:
   * Kysely's migrator takes an advisory lock itself. SQLite: one `BEGIN IMMEDIATE` transaction
   * around the whole run, rolled back when `fn` reports failure.
   */
  withMigrationLock<T extends { error?: unknown }>(fn: () => Promise<T>): Promise<T>;
  /**
   * Calls `onNotify` for each NOTIFY on `channel` (PostgreSQL, on a dedicated connection that
   * reconnects). Undefined where the database has no notifications (SQLite): poll instead.
   */
  readonly listen: ((channel: string, onNotify: (payload: string) => void) => Promise<() => Promise<void>>) | undefined;
  /**
   * Runs a compiled query this process sends many times with different values (a task claim, a
   * task finish), on its own connection, never in a transaction. PostgreSQL runs it as a named
   * prepared statement, so each connection parses and plans its text once rather than on every
   * call; SQLite as any query.
   */
  executeRepeated<R>(query: CompiledQuery<R>): Promise<QueryResult<R>>;
  /**
   * Inserts `rows` (plain values, every row with the same columns) in one transaction of its own
   * and resolves once it is committed, as durably as any commit: for appends that belong to no
   * caller's transaction (the audit log's group commit). SQLite: on a writer thread's own
   * connection, so the commit's fsync does not stop the event loop. PostgreSQL: one insert.
   */
  appendRows<T extends keyof Database & string>(table: T, rows: ReadonlyArray<Insertable<Database[T]>>): Promise<void>;
  ping(): Promise<void>;
  poolStats(): PoolStats;
  close(): Promise<void>;
}
