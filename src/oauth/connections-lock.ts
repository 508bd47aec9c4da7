import { sql, type Kysely } from 'kysely';
import type { Database, DatabaseHandle } from '../db/index.js';
import { CONNECTION_TYPE } from './connections.js';
import { connectionError } from './tokens-errors.js';

export type LockedResult<T> = { found: false } | { found: true; value: T };

export interface ConnectionLockOptions {
  /** How long to wait for another process's lock before giving up (`connection_degraded`). */
  waitMs: number;
}

function isLockTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  // PostgreSQL lock_timeout; SQLite busy_timeout ran out while another process held the write lock.
  return code === '55P03' || code === 'SQLITE_BUSY';
}

/**
 * Runs `fn` in a transaction holding the write lock of one connection, so that of all processes
 * exactly one at a time may call the provider with its refresh token. `fn` must do all its reads
 * and writes through `trx` and re-read the connection first: a refresh committed by the previous
 * holder is then seen and reused. Returns `{ found: false }` without calling `fn` when the
 * connection does not exist.
 *
 * - PostgreSQL: `SELECT ... FOR UPDATE` on the connection's row; other processes queue on the row
 *   (at most `waitMs`), nothing else in the database is held.
 * - SQLite: the transaction's first statement is a write to the row (Kysely opens SQLite
 *   transactions DEFERRED; a write first takes the write lock at once, as BEGIN IMMEDIATE would,
 *   and a later write can never fail on a stale snapshot). Trade-off: SQLite has a single writer,
 *   and this process a single connection, so while `fn` waits on the token endpoint (bounded by
 *   the token client's timeout) every other write to the database, and every query of this
 *   process, waits too. One refresh at a time per database is the price of an embedded database.
 */
export async function withConnectionLock<T>(
  handle: DatabaseHandle,
  tenantId: string,
  id: string,
  options: ConnectionLockOptions,
  fn: (trx: Kysely<Database>) => Promise<T>,
): Promise<LockedResult<T>> {
  try {
    return await handle.db.transaction().execute(async (trx): Promise<LockedResult<T>> => {
      const row = trx
        .selectFrom('objects')
        .select('revision')
        .where('id', '=', id)
        .where('tenant_id', '=', tenantId)
        .where('type', '=', CONNECTION_TYPE.name);
      if (handle.supportsRowLocks) {
        await sql.raw(`set local lock_timeout = ${Math.max(1, Math.trunc(options.waitMs))}`).execute(trx);
        if (!(await row.forUpdate().executeTakeFirst())) return { found: false };
      } else {
        const taken = await trx
          .updateTable('objects')
          .set({ revision: sql<number>`revision` })
          .where('id', '=', id)
          .where('tenant_id', '=', tenantId)
          .where('type', '=', CONNECTION_TYPE.name)
          .executeTakeFirst();
        if (Number(taken.numUpdatedRows) === 0) return { found: false };
      }
      return { found: true, value: await fn(trx) };
    });
  } catch (err) {
    if (isLockTimeout(err)) {
      throw connectionError('connection_degraded', `The connection ${id} is being refreshed by another process; retry shortly.`);
    }
    throw err;
  }
}
