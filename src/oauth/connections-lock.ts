import { isLockTimeout } from '../db/index.js';
import type { EncryptedObjectStore, ObjectTransaction } from '../objects/index.js';
import { CONNECTION_TYPE } from './connections.js';
import { connectionError } from './tokens-errors.js';

export type LockedResult<T> = { found: false } | { found: true; value: T };

export interface ConnectionLockOptions {
  /** How long to wait for another process's lock before giving up (`connection_degraded`). */
  waitMs: number;
}

/**
 * Runs `fn` in a store transaction holding the row lock of one connection, so that of all
 * processes exactly one at a time may call the provider with its refresh token. `fn` must do all
 * its reads and writes through the store it is given and re-read the connection first: a refresh
 * committed by the previous holder is then seen and reused. Returns `{ found: false }` without
 * calling `fn` when the connection does not exist.
 *
 * On PostgreSQL other processes queue on the row (at most `waitMs`) and nothing else is held. On
 * SQLite the lock is the database's write lock: SQLite has a single writer and this process a
 * single connection, so while `fn` waits on the token endpoint (bounded by the token client's
 * timeout) every other write to the database, and every query of this process, waits too. One
 * refresh at a time per database is the price of an embedded database.
 */
export async function withConnectionLock<T>(
  store: EncryptedObjectStore,
  tenantId: string,
  id: string,
  options: ConnectionLockOptions,
  fn: (store: EncryptedObjectStore, tx: ObjectTransaction) => Promise<T>,
): Promise<LockedResult<T>> {
  try {
    return await store.transaction(
      async (tx): Promise<LockedResult<T>> => {
        if (!(await tx.lock(CONNECTION_TYPE, tenantId, id))) return { found: false };
        return { found: true, value: await fn(tx.store, tx) };
      },
      { lockTimeoutMs: options.waitMs },
    );
  } catch (err) {
    if (isLockTimeout(err)) {
      throw connectionError('connection_degraded', `The connection ${id} is being refreshed by another process; retry shortly.`);
    }
    throw err;
  }
}
