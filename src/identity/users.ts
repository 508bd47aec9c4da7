import { z } from 'zod';
import type { Kysely, Selectable, Transaction } from 'kysely';
import { LatchkeyError, newId } from '../core/index.js';
import type { Database, UsersTable } from '../db/index.js';
import type { Actor } from './actor.js';
import type { IdentityDeps } from './deps.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { isBuiltinRole } from './permissions.js';
import { assertMayGrant } from './escalation.js';
import { keepingAnAdmin, permissionsOfRoles, userRoleNames } from './role-queries.js';
import { changeTenant } from './tenant-change.js';
import { assertId, displayName, notFound, parseInput, password, roleNames, username } from './validation.js';

/** A user as services hand it out: never the password hash. */
export interface User {
  id: string;
  tenantId: string;
  username: string;
  displayName: string | null;
  disabled: boolean;
  /** Whether the user can log in with a password. */
  hasPassword: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface CreateUserInput {
  username: string;
  displayName?: string | null;
  /** At least 12 characters; without one the user cannot log in (API keys only). */
  password?: string;
  /** Roles granted directly (built-in or the tenant's custom roles). */
  roles?: string[];
}

export interface UpdateUserInput {
  displayName?: string | null;
  /** Disabling ends the user's sessions and refuses their API keys at once. */
  disabled?: boolean;
  /** A new password; ends the user's sessions. */
  password?: string;
}

export interface UserService {
  create(actor: Actor, tenantId: string, input: CreateUserInput): Promise<User>;
  get(tenantId: string, id: string): Promise<User>;
  getByUsername(tenantId: string, username: string): Promise<User>;
  /** The tenant's users, by username. */
  list(tenantId: string): Promise<User[]>;
  update(actor: Actor, tenantId: string, id: string, input: UpdateUserInput): Promise<User>;
  /** Whether `password` is the user's current password (false for an unknown user or one without a password). */
  passwordMatches(tenantId: string, id: string, password: string): Promise<boolean>;
  /** Deletes the user, their role bindings, memberships, sessions and API keys. */
  delete(actor: Actor, tenantId: string, id: string): Promise<void>;
}

const createInput = z.strictObject({
  username,
  displayName: displayName.optional(),
  password: password.optional(),
  roles: roleNames.optional(),
});
const updateInput = z.strictObject({
  displayName: displayName.optional(),
  disabled: z.boolean({ error: 'must be true or false' }).optional(),
  password: password.optional(),
});

type Db = Kysely<Database> | Transaction<Database>;

export function userView(row: Selectable<UsersTable>): User {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    username: row.username,
    displayName: row.display_name,
    disabled: Number(row.disabled) !== 0,
    hasPassword: row.password_hash !== null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Inserts a user and its direct role bindings in the caller's transaction (roles already checked). */
export async function insertUser(
  trx: Transaction<Database>,
  tenantId: string,
  user: { username: string; displayName: string | null; passwordHash: string | null; roles: readonly string[] },
  now: string,
): Promise<Selectable<UsersTable>> {
  const row = {
    id: newId('usr'),
    tenant_id: tenantId,
    username: user.username,
    display_name: user.displayName,
    password_hash: user.passwordHash,
    disabled: 0,
    created_at: now,
    updated_at: now,
  };
  await trx.insertInto('users').values(row).execute();
  if (user.roles.length > 0) {
    await trx
      .insertInto('role_bindings')
      .values(user.roles.map((role) => ({ tenant_id: tenantId, role_name: role, principal_type: 'user' as const, principal_id: row.id, created_at: now })))
      .execute();
  }
  return row;
}

/** The user's row, or not_found: another tenant's user answers exactly like an unknown id. */
export async function findUser(db: Db, tenantId: string, id: string): Promise<Selectable<UsersTable>> {
  const row = await db.selectFrom('users').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('user', id);
  return row;
}

export async function assertTenantExists(db: Db, tenantId: string): Promise<void> {
  const row = await db.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst();
  if (!row) throw notFound('tenant', tenantId);
}

/** Refuses role names that are neither built in nor one of the tenant's custom roles. */
export async function assertRolesExist(db: Db, tenantId: string, names: readonly string[], field: string): Promise<void> {
  const custom = names.filter((n) => !isBuiltinRole(n));
  const found = new Set<string>();
  if (custom.length > 0) {
    const rows = await db.selectFrom('roles').select('name').where('tenant_id', '=', tenantId).where('name', 'in', custom).execute();
    for (const row of rows) found.add(row.name);
  }
  const fields = names.flatMap((n, i) =>
    isBuiltinRole(n) || found.has(n) ? [] : [{ path: `${field}.${i}`, message: `is not a role of this tenant (${JSON.stringify(n)})` }],
  );
  const first = fields[0];
  if (first) {
    throw new LatchkeyError('validation_failed', `The user is invalid: "${first.path}" ${first.message}.`, { details: { fields } });
  }
}

/**
 * @example
 * const user = await identity.users.create(actor, tenantId, { username: 'ada', password, roles: ['editor'] });
 * await identity.users.update(actor, tenantId, user.id, { disabled: true });
 */
export function createUserService(deps: IdentityDeps): UserService {
  const { db } = deps;

  return {
    async create(actor, tenantId, input) {
      assertId(tenantId, 'tenantId');
      const valid = parseInput(createInput, input, 'user');
      const roles = [...new Set(valid.roles ?? [])];
      // Hashing takes tens of milliseconds: never while holding the tenant lock.
      const passwordHash = valid.password === undefined ? null : await hashPassword(valid.password);
      return changeTenant(deps, actor, tenantId, async (change) => {
        const { trx, now } = change;
        const taken = await trx
          .selectFrom('users')
          .select('id')
          .where('tenant_id', '=', tenantId)
          .where('username', '=', valid.username)
          .executeTakeFirst();
        if (taken) throw new LatchkeyError('conflict', `A user named "${valid.username}" already exists in this tenant.`);
        await assertRolesExist(trx, tenantId, roles, 'roles');
        await assertMayGrant(trx, actor, await permissionsOfRoles(trx, tenantId, roles));
        const row = await insertUser(trx, tenantId, { username: valid.username, displayName: valid.displayName ?? null, passwordHash, roles }, now);
        await change.audit({ action: 'user.created', target: row.id, details: { username: row.username, roles } });
        return userView(row);
      });
    },

    async get(tenantId, id) {
      assertId(tenantId, 'tenantId');
      assertId(id, 'id');
      return userView(await findUser(db, tenantId, id));
    },

    async getByUsername(tenantId, name) {
      assertId(tenantId, 'tenantId');
      if (typeof name !== 'string') throw new TypeError('"username" must be a string.');
      const row = await db
        .selectFrom('users')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('username', '=', name)
        .executeTakeFirst();
      if (!row) throw new LatchkeyError('not_found', `No user named ${JSON.stringify(name)} exists.`);
      return userView(row);
    },

    async list(tenantId) {
      assertId(tenantId, 'tenantId');
      await assertTenantExists(db, tenantId);
      const rows = await db.selectFrom('users').selectAll().where('tenant_id', '=', tenantId).orderBy('username').execute();
      return rows.map(userView);
    },

    async update(actor, tenantId, id, input) {
      assertId(tenantId, 'tenantId');
      assertId(id, 'id');
      const valid = parseInput(updateInput, input, 'user');
      const passwordHash = valid.password === undefined ? undefined : await hashPassword(valid.password);
      return changeTenant(deps, actor, tenantId, async (change) => {
        const { trx, now } = change;
        const current = await findUser(trx, tenantId, id);
        // Whoever sets another user's password can log in as them: it grants all they hold.
        if (passwordHash !== undefined && !(actor.type === 'user' && actor.userId === id)) {
          await assertMayGrant(trx, actor, await permissionsOfRoles(trx, tenantId, await userRoleNames(trx, tenantId, id)));
        }
        const wasDisabled = Number(current.disabled) !== 0;
        const disabling = valid.disabled === true && !wasDisabled;
        const enabling = valid.disabled === false && wasDisabled;
        const changed: string[] = [];
        const patch: { display_name?: string | null; disabled?: number; password_hash?: string; updated_at: string } = { updated_at: now };
        if (valid.displayName !== undefined && valid.displayName !== current.display_name) {
          patch.display_name = valid.displayName;
          changed.push('displayName');
        }
        if (disabling || enabling) {
          patch.disabled = disabling ? 1 : 0;
          changed.push('disabled');
        }
        if (passwordHash !== undefined) {
          patch.password_hash = passwordHash;
          changed.push('password');
        }
        if (changed.length === 0) return userView(current);
        const write = () => trx.updateTable('users').set(patch).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
        if (disabling) await keepingAnAdmin(trx, tenantId, write);
        else await write();
        // A disabled user, or one whose password changed, keeps no open session.
        if (disabling || passwordHash !== undefined) await trx.deleteFrom('sessions').where('user_id', '=', id).execute();
        // A password change is announced too, so a process holding the old one (the first-start
        // password file) learns of it.
        if (disabling || enabling || passwordHash !== undefined) await change.invalidate('user', id);
        await change.audit({
          action: disabling ? 'user.disabled' : 'user.updated',
          target: id,
          details: { username: current.username, changed },
        });
        return userView({ ...current, ...patch });
      });
    },

    async passwordMatches(tenantId, id, candidate) {
      assertId(tenantId, 'tenantId');
      assertId(id, 'id');
      if (typeof candidate !== 'string') throw new TypeError('"password" must be a string.');
      const row = await db.selectFrom('users').select('password_hash').where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
      return row?.password_hash ? verifyPassword(candidate, row.password_hash) : false;
    },

    async delete(actor, tenantId, id) {
      assertId(tenantId, 'tenantId');
      assertId(id, 'id');
      await changeTenant(deps, actor, tenantId, async (change) => {
        const { trx } = change;
        const current = await findUser(trx, tenantId, id);
        await keepingAnAdmin(trx, tenantId, async () => {
          // Bindings name their principal without a foreign key: delete them with the user.
          await trx
            .deleteFrom('role_bindings')
            .where('tenant_id', '=', tenantId)
            .where('principal_type', '=', 'user')
            .where('principal_id', '=', id)
            .execute();
          await trx.deleteFrom('users').where('tenant_id', '=', tenantId).where('id', '=', id).execute();
        });
        await change.invalidate('user', id);
        await change.audit({ action: 'user.deleted', target: id, details: { username: current.username } });
      });
    },
  };
}
