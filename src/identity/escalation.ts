import { LatchkeyError } from '../core/index.js';
import type { Actor } from './actor.js';
import type { Permission } from './permissions.js';
import { permissionsOfRoles, userRoleNames, type Db } from './role-queries.js';

/**
 * What the actor holds right now: the permissions it carries (a request's principal: a key's are
 * its owner's narrowed by its roles), else its user's current permissions read in `db`.
 * Undefined for the system actor, which holds everything; nothing for an end user.
 */
export async function heldPermissions(db: Db, actor: Actor): Promise<ReadonlySet<Permission> | undefined> {
  if (actor.type === 'system') return undefined;
  if (actor.type === 'end_user') return new Set();
  if (actor.permissions) return actor.permissions;
  const disabled = await db.selectFrom('users').select('disabled').where('tenant_id', '=', actor.tenantId).where('id', '=', actor.userId).executeTakeFirst();
  if (!disabled || Number(disabled.disabled) !== 0) return new Set();
  return permissionsOfRoles(db, actor.tenantId, await userRoleNames(db, actor.tenantId, actor.userId));
}

/**
 * Nobody grants what they do not hold (Kubernetes RBAC's escalation rule): creating or changing a
 * role, a binding, a user's roles, a group's membership or an API key needs every permission it
 * would grant among the actor's own. Run it inside the change's transaction.
 *
 * @example
 * await assertMayGrant(change.trx, actor, await permissionsOfRoles(change.trx, tenantId, ['admin']));
 */
export async function assertMayGrant(db: Db, actor: Actor, granted: Iterable<Permission>): Promise<void> {
  const held = await heldPermissions(db, actor);
  if (held === undefined) return;
  const missing = [...new Set(granted)].filter((p) => !held.has(p)).sort();
  if (missing.length > 0) {
    throw new LatchkeyError('insufficient_permissions', `You cannot grant permissions you do not hold: ${missing.join(', ')}.`, {
      details: { missing },
    });
  }
}
