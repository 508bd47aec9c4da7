import { LatchkeyError } from '../core/index.js';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/index.js';
import { ADMIN_ROLE, BUILTIN_ROLES, isBuiltinRole, isPermission, type Permission } from './permissions.js';

export type Db = Kysely<Database> | Transaction<Database>;

/** Names of the roles a user holds, directly or through any of their groups. */
export async function userRoleNames(db: Db, tenantId: string, userId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('role_bindings')
    .select('role_name')
    .distinct()
    .where('tenant_id', '=', tenantId)
    .where((eb) =>
      eb.or([
        eb.and([eb('principal_type', '=', 'user'), eb('principal_id', '=', userId)]),
        eb.and([
          eb('principal_type', '=', 'group'),
          eb(
            'principal_id',
            'in',
            eb.selectFrom('group_members').select('group_id').where('user_id', '=', userId).where('tenant_id', '=', tenantId),
          ),
        ]),
      ]),
    )
    .execute();
  return rows.map((r) => r.role_name);
}

/** Parses a custom role's stored permission list, ignoring entries this version does not know. */
export function parsePermissions(json: string): Permission[] {
  const parsed: unknown = JSON.parse(json);
  return Array.isArray(parsed) ? parsed.filter(isPermission) : [];
}

/** The union of the named roles' permissions; unknown names add nothing. */
export async function permissionsOfRoles(db: Db, tenantId: string, names: readonly string[]): Promise<Set<Permission>> {
  const out = new Set<Permission>();
  const custom: string[] = [];
  for (const name of names) {
    if (isBuiltinRole(name)) for (const p of BUILTIN_ROLES[name]) out.add(p);
    else custom.push(name);
  }
  if (custom.length > 0) {
    const rows = await db
      .selectFrom('roles')
      .select('permissions')
      .where('tenant_id', '=', tenantId)
      .where('name', 'in', custom)
      .execute();
    for (const row of rows) for (const p of parsePermissions(row.permissions)) out.add(p);
  }
  return out;
}

/** Active (not disabled) users holding the admin role, directly or through a group. */
export async function countActiveAdmins(db: Db, tenantId: string): Promise<number> {
  const row = await db
    .selectFrom('users as u')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('u.tenant_id', '=', tenantId)
    .where('u.disabled', '=', 0)
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('role_bindings as rb')
          .select('rb.role_name')
          .where('rb.tenant_id', '=', tenantId)
          .where('rb.role_name', '=', ADMIN_ROLE)
          .where((inner) =>
            inner.or([
              inner.and([inner('rb.principal_type', '=', 'user'), inner('rb.principal_id', '=', inner.ref('u.id'))]),
              inner.and([
                inner('rb.principal_type', '=', 'group'),
                inner(
                  'rb.principal_id',
                  'in',
                  inner.selectFrom('group_members as gm').select('gm.group_id').where('gm.user_id', '=', inner.ref('u.id')),
                ),
              ]),
            ]),
          ),
      ),
    )
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Runs `write` and refuses it (conflict, so the transaction rolls back) when it takes the
 * tenant's active admins from some to none. Call inside changeTenant: the tenant lock makes the
 * count before and after exact under concurrency.
 */
export async function keepingAnAdmin<T>(db: Db, tenantId: string, write: () => Promise<T>): Promise<T> {
  const before = await countActiveAdmins(db, tenantId);
  const result = await write();
  if (before > 0 && (await countActiveAdmins(db, tenantId)) === 0) {
    throw new LatchkeyError('conflict', 'This change would leave the tenant without an active admin.');
  }
  return result;
}
