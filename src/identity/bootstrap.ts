import { newId } from '../core/index.js';
import { SYSTEM_ACTOR } from './actor.js';
import type { IdentityDeps } from './deps.js';
import { generatePassword, hashPassword } from './passwords.js';
import { ADMIN_ROLE } from './permissions.js';

export const BOOTSTRAP_TENANT = 'default';
export const BOOTSTRAP_USERNAME = 'admin';
const PASSWORD_LENGTH = 24;

export type BootstrapResult = { created: true; tenantId: string; userId: string; password: string } | { created: false };

/**
 * On an empty database, creates tenant "default" and user "admin" (role admin) with a random
 * password that only the return value holds. Concurrent callers (other processes included) race
 * on one conditional insert: exactly one creates, the others answer `{ created: false }`.
 */
export async function bootstrap(deps: IdentityDeps): Promise<BootstrapResult> {
  const { db } = deps;
  const anyTenant = async () => (await db.selectFrom('tenants').select('id').limit(1).executeTakeFirst()) !== undefined;
  if (await anyTenant()) return { created: false };

  const password = generatePassword(PASSWORD_LENGTH);
  const passwordHash = await hashPassword(password);
  const tenantId = newId('ten');
  const userId = newId('usr');
  const now = deps.clock.now().toISOString();
  try {
    const created = await db.transaction().execute(async (trx) => {
      // Insert only into an empty table, as one statement: it is the transaction's first, so it
      // takes SQLite's write lock at once; on PostgreSQL the unique name stops a concurrent twin.
      const inserted = await trx
        .insertInto('tenants')
        .columns(['id', 'name', 'system', 'created_at', 'updated_at'])
        .expression(
          trx
            .selectNoFrom((eb) => [
              eb.val(tenantId).as('id'),
              eb.val(BOOTSTRAP_TENANT).as('name'),
              eb.val(1).as('system'),
              eb.val(now).as('created_at'),
              eb.val(now).as('updated_at'),
            ])
            .where((eb) => eb.not(eb.exists(eb.selectFrom('tenants').select('id')))),
        )
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false;
      await trx
        .insertInto('users')
        .values({ id: userId, tenant_id: tenantId, username: BOOTSTRAP_USERNAME, display_name: null, password_hash: passwordHash, disabled: 0, created_at: now, updated_at: now })
        .execute();
      await trx
        .insertInto('role_bindings')
        .values({ tenant_id: tenantId, role_name: ADMIN_ROLE, principal_type: 'user', principal_id: userId, created_at: now })
        .execute();
      await deps.audit.record(trx, { tenantId, actor: SYSTEM_ACTOR, action: 'tenant.created', target: tenantId, details: { name: BOOTSTRAP_TENANT } });
      await deps.audit.record(trx, {
        tenantId,
        actor: SYSTEM_ACTOR,
        action: 'user.created',
        target: userId,
        details: { username: BOOTSTRAP_USERNAME, roles: [ADMIN_ROLE] },
      });
      return true;
    });
    if (!created) return { created: false };
  } catch (err) {
    if (await anyTenant()) return { created: false };
    throw err;
  }
  deps.logger?.info({ tenantId, userId }, `Created tenant "${BOOTSTRAP_TENANT}" and user "${BOOTSTRAP_USERNAME}".`);
  return { created: true, tenantId, userId, password };
}
