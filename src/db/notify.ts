import { sql } from 'kysely';
import type { DatabaseHandle } from './adapter.js';
import type { Executor } from './transaction.js';

/**
 * Wakes every process listening on `channel` (through `DatabaseHandle.listen`). Inside a
 * transaction the notification is sent at commit, so nobody is woken for what was rolled back
 * (PostgreSQL's transactional NOTIFY). Does nothing where the database has no notifications
 * (SQLite): listeners poll there.
 *
 * @example
 * await trx.insertInto('tasks').values(row).execute();
 * await notify(handle, trx, 'latchkey_tasks');
 */
export async function notify(handle: DatabaseHandle, db: Executor, channel: string): Promise<void> {
  if (!handle.supportsNotify) return;
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new TypeError(`Invalid channel name "${channel}".`);
  await sql`select pg_notify(${channel}, '')`.execute(db);
}
