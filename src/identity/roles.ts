import { z } from 'zod';
import type { Kysely, Selectable, Transaction } from 'kysely';
import { LatchkeyError, newId } from '../core/index.js';
import type { Database, RolesTable } from '../db/index.js';
import type { Actor } from './actor.js';
import type { IdentityDeps } from './deps.js';
import { findGroup } from './groups.js';
import { ADMIN_ROLE, BUILTIN_ROLES, PERMISSIONS, isBuiltinRole, type Permission } from './permissions.js';
import { assertMayGrant } from './escalation.js';
import { keepingAnAdmin, parsePermissions, permissionsOfRoles } from './role-queries.js';
import { changeTenant, type TenantChange } from './tenant-change.js';
import { assertTenantExists, findUser } from './users.js';
import { assertId, description, name, parseInput, permissions } from './validation.js';

/** A role: built in (same in every tenant, unchangeable) or one of the tenant's custom roles. */
export interface Role {
  name: string;
  description: string | null;
  permissions: Permission[];
  builtin: boolean;
  /** Null for built-in roles. */
  createdAt: string | null;
  updatedAt: string | null;
}

/** Who a role is granted to. */
export interface PrincipalRef {
  type: 'user' | 'group';
  id: string;
}

export interface RoleBinding {
  roleName: string;
  principal: PrincipalRef;
  createdAt: string;
}

export interface CreateRoleInput {
  name: string;
  description?: string | null;
  permissions: Permission[];
}

export interface UpdateRoleInput {
  description?: string | null;
  permissions?: Permission[];
}

/** Roles and their grants. Roles are named; grants refer to them by name. */
export interface RoleService {
  /** Built-in roles first, then the tenant's custom roles by name. */
  list(tenantId: string): Promise<Role[]>;
  get(tenantId: string, name: string): Promise<Role>;
  create(actor: Actor, tenantId: string, input: CreateRoleInput): Promise<Role>;
  update(actor: Actor, tenantId: string, name: string, input: UpdateRoleInput): Promise<Role>;
  /** Deletes a custom role and every grant of it, in one transaction. */
  delete(actor: Actor, tenantId: string, name: string): Promise<void>;
  /** Grants a role to a user or group; granting it again changes nothing. */
  grant(actor: Actor, tenantId: string, roleName: string, principal: PrincipalRef): Promise<void>;
  /** Revokes a grant (not_found when there is none; conflict when it would leave no active admin). */
  revoke(actor: Actor, tenantId: string, roleName: string, principal: PrincipalRef): Promise<void>;
  /** Grants in the tenant, optionally only of one role and/or to one principal. */
  bindingsFor(tenantId: string, filter?: { roleName?: string; principal?: PrincipalRef }): Promise<RoleBinding[]>;
}

const createInput = z.strictObject({ name, description: description.optional(), permissions });
const updateInput = z.strictObject({ description: description.optional(), permissions: permissions.optional() });
const principalInput = z.strictObject({
  type: z.enum(['user', 'group'], { error: 'must be "user" or "group"' }),
  id: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).max(200),
});

type Db = Kysely<Database> | Transaction<Database>;

function builtinView(roleName: keyof typeof BUILTIN_ROLES): Role {
  return { name: roleName, description: null, permissions: [...BUILTIN_ROLES[roleName]], builtin: true, createdAt: null, updatedAt: null };
}

function customView(row: Selectable<RolesTable>): Role {
  return {
    name: row.name,
    description: row.description,
    permissions: parsePermissions(row.permissions),
    builtin: false,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Permissions in PERMISSIONS order, without duplicates. */
function normalize(list: readonly Permission[]): Permission[] {
  const wanted = new Set(list);
  return PERMISSIONS.filter((p) => wanted.has(p));
}

function roleNotFound(roleName: string): LatchkeyError {
  return new LatchkeyError('not_found', `No role named ${JSON.stringify(roleName)} exists.`);
}

function builtinRefused(roleName: string): LatchkeyError {
  return new LatchkeyError('conflict', `The role "${roleName}" is built in and cannot be created, changed or deleted.`);
}

async function findCustomRole(db: Db, tenantId: string, roleName: string): Promise<Selectable<RolesTable> | undefined> {
  return db.selectFrom('roles').selectAll().where('tenant_id', '=', tenantId).where('name', '=', roleName).executeTakeFirst();
}

async function assertRoleExists(db: Db, tenantId: string, roleName: string): Promise<void> {
  if (!isBuiltinRole(roleName) && !(await findCustomRole(db, tenantId, roleName))) throw roleNotFound(roleName);
}

async function assertPrincipalExists(db: Db, tenantId: string, principal: PrincipalRef): Promise<void> {
  if (principal.type === 'user') await findUser(db, tenantId, principal.id);
  else await findGroup(db, tenantId, principal.id);
}

/** A grant to a user changes that user's permissions; a grant to a group, any member's. */
function invalidateFor(change: TenantChange, principal: PrincipalRef): Promise<void> {
  return principal.type === 'user' ? change.invalidate('user', principal.id) : change.invalidate('tenant');
}

/**
 * @example
 * await identity.roles.create(actor, tenantId, { name: 'auditor', permissions: ['audit:read'] });
 * await identity.roles.grant(actor, tenantId, 'auditor', { type: 'user', id: userId });
 */
export function createRoleService(deps: IdentityDeps): RoleService {
  const { db } = deps;

  return {
    async list(tenantId) {
      assertId(tenantId, 'tenantId');
      await assertTenantExists(db, tenantId);
      const rows = await db.selectFrom('roles').selectAll().where('tenant_id', '=', tenantId).orderBy('name').execute();
      return [...(Object.keys(BUILTIN_ROLES) as (keyof typeof BUILTIN_ROLES)[]).map(builtinView), ...rows.map(customView)];
    },

    async get(tenantId, roleName) {
      assertId(tenantId, 'tenantId');
      assertId(roleName, 'name');
      await assertTenantExists(db, tenantId);
      if (isBuiltinRole(roleName)) return builtinView(roleName);
      const row = await findCustomRole(db, tenantId, roleName);
      if (!row) throw roleNotFound(roleName);
      return customView(row);
    },

    async create(actor, tenantId, input) {
      assertId(tenantId, 'tenantId');
      const valid = parseInput(createInput, input, 'role');
      if (isBuiltinRole(valid.name)) throw builtinRefused(valid.name);
      const granted = normalize(valid.permissions);
      return changeTenant(deps, actor, tenantId, async (change) => {
        await assertMayGrant(change.trx, actor, granted);
        if (await findCustomRole(change.trx, tenantId, valid.name)) {
          throw new LatchkeyError('conflict', `A role named "${valid.name}" already exists in this tenant.`);
        }
        const row = {
          id: newId('rol'),
          tenant_id: tenantId,
          name: valid.name,
          description: valid.description ?? null,
          permissions: JSON.stringify(granted),
          created_at: change.now,
          updated_at: change.now,
        };
        await change.trx.insertInto('roles').values(row).execute();
        await change.audit({ action: 'role.created', target: row.name, details: { permissions: granted } });
        return customView(row);
      });
    },

    async update(actor, tenantId, roleName, input) {
      assertId(tenantId, 'tenantId');
      assertId(roleName, 'name');
      const valid = parseInput(updateInput, input, 'role');
      if (isBuiltinRole(roleName)) throw builtinRefused(roleName);
      return changeTenant(deps, actor, tenantId, async (change) => {
        const current = await findCustomRole(change.trx, tenantId, roleName);
        if (!current) throw roleNotFound(roleName);
        if (valid.permissions !== undefined) await assertMayGrant(change.trx, actor, valid.permissions);
        const next = {
          ...current,
          description: valid.description === undefined ? current.description : valid.description,
          permissions: valid.permissions === undefined ? current.permissions : JSON.stringify(normalize(valid.permissions)),
          updated_at: change.now,
        };
        await change.trx
          .updateTable('roles')
          .set({ description: next.description, permissions: next.permissions, updated_at: next.updated_at })
          .where('id', '=', current.id)
          .execute();
        if (next.permissions !== current.permissions) await change.invalidate('tenant');
        await change.audit({
          action: 'role.updated',
          target: roleName,
          details: { permissions: parsePermissions(next.permissions), previousPermissions: parsePermissions(current.permissions) },
        });
        return customView(next);
      });
    },

    async delete(actor, tenantId, roleName) {
      assertId(tenantId, 'tenantId');
      assertId(roleName, 'name');
      if (isBuiltinRole(roleName)) throw builtinRefused(roleName);
      await changeTenant(deps, actor, tenantId, async (change) => {
        const current = await findCustomRole(change.trx, tenantId, roleName);
        if (!current) throw roleNotFound(roleName);
        const removed = await change.trx
          .deleteFrom('role_bindings')
          .where('tenant_id', '=', tenantId)
          .where('role_name', '=', roleName)
          .executeTakeFirst();
        await change.trx.deleteFrom('roles').where('id', '=', current.id).execute();
        await change.invalidate('tenant');
        await change.audit({ action: 'role.deleted', target: roleName, details: { bindingsRemoved: Number(removed.numDeletedRows) } });
      });
    },

    async grant(actor, tenantId, roleName, principal) {
      assertId(tenantId, 'tenantId');
      assertId(roleName, 'roleName');
      const who = parseInput(principalInput, principal, 'principal');
      await changeTenant(deps, actor, tenantId, async (change) => {
        const { trx } = change;
        await assertRoleExists(trx, tenantId, roleName);
        await assertPrincipalExists(trx, tenantId, who);
        await assertMayGrant(trx, actor, await permissionsOfRoles(trx, tenantId, [roleName]));
        const existing = await trx
          .selectFrom('role_bindings')
          .select('role_name')
          .where('tenant_id', '=', tenantId)
          .where('role_name', '=', roleName)
          .where('principal_type', '=', who.type)
          .where('principal_id', '=', who.id)
          .executeTakeFirst();
        if (existing) return;
        await trx
          .insertInto('role_bindings')
          .values({ tenant_id: tenantId, role_name: roleName, principal_type: who.type, principal_id: who.id, created_at: change.now })
          .execute();
        await invalidateFor(change, who);
        await change.audit({ action: 'role.granted', target: who.id, details: { role: roleName, principalType: who.type } });
      });
    },

    async revoke(actor, tenantId, roleName, principal) {
      assertId(tenantId, 'tenantId');
      assertId(roleName, 'roleName');
      const who = parseInput(principalInput, principal, 'principal');
      await changeTenant(deps, actor, tenantId, async (change) => {
        const { trx } = change;
        await assertPrincipalExists(trx, tenantId, who);
        const remove = async () => {
          const removed = await trx
            .deleteFrom('role_bindings')
            .where('tenant_id', '=', tenantId)
            .where('role_name', '=', roleName)
            .where('principal_type', '=', who.type)
            .where('principal_id', '=', who.id)
            .executeTakeFirst();
          if (Number(removed.numDeletedRows) === 0) {
            throw new LatchkeyError('not_found', `The ${who.type} ${JSON.stringify(who.id)} does not hold the role "${roleName}".`);
          }
        };
        if (roleName === ADMIN_ROLE) await keepingAnAdmin(trx, tenantId, remove);
        else await remove();
        await invalidateFor(change, who);
        await change.audit({ action: 'role.revoked', target: who.id, details: { role: roleName, principalType: who.type } });
      });
    },

    async bindingsFor(tenantId, filter = {}) {
      assertId(tenantId, 'tenantId');
      await assertTenantExists(db, tenantId);
      let query = db.selectFrom('role_bindings').selectAll().where('tenant_id', '=', tenantId);
      if (filter.roleName !== undefined) query = query.where('role_name', '=', filter.roleName);
      if (filter.principal !== undefined) {
        const who = parseInput(principalInput, filter.principal, 'principal');
        query = query.where('principal_type', '=', who.type).where('principal_id', '=', who.id);
      }
      const rows = await query.orderBy('role_name').orderBy('principal_type').orderBy('principal_id').execute();
      return rows.map((row) => ({
        roleName: row.role_name,
        principal: { type: row.principal_type, id: row.principal_id },
        createdAt: row.created_at,
      }));
    },
  };
}
