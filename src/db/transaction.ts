import { sql, type Kysely, type SelectQueryBuilder, type Transaction } from 'kysely';
import type { DatabaseHandle } from './adapter.js';
import type { Database } from './schema.js';

export interface TransactionOptions {
  /**
   * How long a row lock taken in the transaction may wait for another holder (PostgreSQL
   * `lock_timeout`); on SQLite the busy timeout bounds the wait for the write lock.
   */
  lockTimeoutMs?: number;
}

/**
 * Runs `fn` in one transaction on `handle`; rolls back when it throws. A lock that cannot be had
 * in time fails with an error {@link isLockTimeout} recognises.
 *
 * @example
 * await runTransaction(handle, async (trx) => { ... }, { lockTimeoutMs: 5000 });
 */
export async function runTransaction<T>(handle: DatabaseHandle, fn: (trx: Transaction<Database>) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  return handle.db.transaction().execute(async (trx) => {
    if (handle.supportsRowLocks && options.lockTimeoutMs !== undefined) {
      await sql.raw(`set local lock_timeout = ${Math.max(1, Math.trunc(options.lockTimeoutMs))}`).execute(trx);
    }
    return fn(trx);
  });
}

let savepoints = 0;

/**
 * Runs `fn` inside a savepoint of the transaction `trx`: when `fn` throws, what it wrote is rolled
 * back and the transaction stays usable (on PostgreSQL a failed statement otherwise aborts the whole
 * transaction), and the error is thrown on. For a write that must never cost the change around it.
 *
 * @example
 * await runTransaction(handle, async (trx) => {
 *   await writeTheChange(trx);
 *   await withSavepoint(trx, () => recordTheEvent(trx)).catch((err) => logger.warn({ err }, 'The event was not recorded.'));
 * });
 */
export async function withSavepoint<T>(trx: Transaction<Database>, fn: () => Promise<T>): Promise<T> {
  const name = `lk_savepoint_${++savepoints}`;
  await sql.raw(`savepoint ${name}`).execute(trx);
  let value: T;
  try {
    value = await fn();
  } catch (err) {
    await sql.raw(`rollback to savepoint ${name}`).execute(trx);
    await sql.raw(`release savepoint ${name}`).execute(trx);
    throw err;
  }
  await sql.raw(`release savepoint ${name}`).execute(trx);
  return value;
}

/** Whether `err` says a lock could not be had in time: PostgreSQL lock_timeout, or SQLite's busy timeout. */
export function isLockTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '55P03' || code === 'SQLITE_BUSY';
}

/** A Kysely instance or a transaction on it. */
export type Executor = Kysely<Database> | Transaction<Database>;

/**
 * Deletes a retired data key unless an object still uses it (the crypto module's question about
 * the objects table, asked here so that crypto never names it). Returns whether it was deleted.
 */
export async function deleteDataKeyIfUnused(db: Executor, id: string): Promise<boolean> {
  const result = await db
    .deleteFrom('data_keys')
    .where('id', '=', id)
    .where('state', '=', 'retired')
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('objects').select('objects.id').where('objects.data_key_id', '=', id))))
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/**
 * Makes `query` a claim: inside a transaction it selects only rows no other transaction holds and
 * holds them until this one ends, so concurrent workers each take different rows without waiting
 * for one another (PostgreSQL `FOR UPDATE SKIP LOCKED`). On SQLite the query is unchanged: the
 * transaction began IMMEDIATE and is the only writer, so no other holder exists.
 *
 * @example
 * await runTransaction(handle, async (trx) => {
 *   const due = await claimRows(handle, trx.selectFrom('deliveries').selectAll().where('due_at', '<=', now).limit(10)).execute();
 *   ...
 * });
 */
export function claimRows<DB, TB extends keyof DB, O>(handle: DatabaseHandle, query: SelectQueryBuilder<DB, TB, O>): SelectQueryBuilder<DB, TB, O> {
  return handle.supportsRowLocks ? query.forUpdate().skipLocked() : query;
}
