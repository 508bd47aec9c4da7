import type { Transaction } from 'kysely';
import type { Database, Invalidation } from '../db/index.js';
import type { Actor } from './actor.js';
import type { AuditRecord } from './audit-log.js';
import type { IdentityDeps } from './deps.js';
import { notFound } from './validation.js';

type Scope = Exclude<Invalidation['scope'], 'api_key'>;

/** The transaction of one identity change, and what it announces. */
export interface TenantChange {
  readonly trx: Transaction<Database>;
  readonly tenantId: string;
  /** The change's time, UTC ISO-8601. */
  readonly now: string;
  /** Records a cache invalidation in this transaction; applied in this process after commit. */
  invalidate(scope: Scope, subjectId?: string): Promise<void>;
  /** Appends an audit event in this transaction. */
  audit(event: Omit<AuditRecord, 'tenantId' | 'actor'>): Promise<void>;
}

/**
 * Runs one identity change in a transaction that first locks the tenant's row with a write: a
 * row lock on PostgreSQL, the database write lock on SQLite. Every change to a tenant's users,
 * groups and roles is thereby serialised, so what `fn` validates still holds when it writes.
 * Order inside `fn`: validate, write, invalidate, audit. After commit the invalidations are
 * applied in this process at once; other processes get them through the bus.
 *
 * Throws not_found when the tenant does not exist.
 */
export async function changeTenant<T>(
  deps: IdentityDeps,
  actor: Actor,
  tenantId: string,
  fn: (change: TenantChange) => Promise<T>,
): Promise<T> {
  const published: { scope: Scope; tenantId: string; subjectId: string | null }[] = [];
  const result = await deps.db.transaction().execute(async (trx) => {
    const locked = await trx
      .updateTable('tenants')
      .set((eb) => ({ updated_at: eb.ref('updated_at') }))
      .where('id', '=', tenantId)
      .executeTakeFirst();
    if (Number(locked.numUpdatedRows) === 0) throw notFound('tenant', tenantId);
    const change: TenantChange = {
      trx,
      tenantId,
      now: deps.clock.now().toISOString(),
      async invalidate(scope, subjectId) {
        const entry = { scope, tenantId, subjectId: subjectId ?? null };
        await deps.bus.publish(trx, entry);
        published.push(entry);
      },
      audit: (event) => deps.audit.record(trx, { ...event, tenantId, actor }),
    };
    return fn(change);
  });
  for (const entry of published) deps.bus.applyLocal(entry);
  return result;
}
