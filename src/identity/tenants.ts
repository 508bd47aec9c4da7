import { z } from 'zod';
import { LatchkeyError, newId } from '../core/index.js';
import type { Selectable } from 'kysely';
import type { TenantsTable } from '../db/index.js';
import { SYSTEM_ACTOR, type Actor } from './actor.js';
import type { IdentityDeps } from './deps.js';
import { changeTenant } from './tenant-change.js';
import { generatePassword, hashPassword } from './passwords.js';
import { ADMIN_ROLE } from './permissions.js';
import { insertUser } from './users.js';
import { assertId, notFound, parseInput, password, tenantName, username } from './validation.js';

export interface Tenant {
  id: string;
  name: string;
  /** The system tenant (created on first start): its admins administer every tenant. Marked in the database, never known by its name. */
  system: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface CreateTenantInput {
  name: string;
  /**
   * The tenant's first user, with role admin, created in the same transaction. Without a
   * password one is generated and returned once, in `initialAdmin.password`.
   */
  initialAdmin?: { username: string; password?: string };
}

/** A created tenant; `initialAdmin` when one was asked for (`password` only when it was generated). */
export interface CreatedTenant extends Tenant {
  initialAdmin?: { id: string; username: string; password?: string };
}

/** Tenants: every user, group, role, key and object belongs to exactly one. */
export interface TenantService {
  /**
   * Creates a tenant (name: see TENANT_NAME_PATTERN), with its first admin when `initialAdmin` is
   * given; without one the tenant has no users. Conflict when the name is taken.
   */
  create(input: CreateTenantInput, actor?: Actor): Promise<CreatedTenant>;
  get(id: string): Promise<Tenant>;
  getByName(name: string): Promise<Tenant>;
  /** The system tenant (not_found before the first start created it). */
  system(): Promise<Tenant>;
  /** Every tenant, by name. */
  list(): Promise<Tenant[]>;
  /** Renames a tenant. The system tenant cannot be renamed (people know it by its name). */
  update(id: string, input: { name: string }, actor?: Actor): Promise<Tenant>;
  /** Deletes a tenant and everything in it (its audit events stay). The system tenant cannot be deleted. */
  delete(id: string, actor?: Actor): Promise<void>;
}

const tenantInput = z.strictObject({ name: tenantName });
const createInput = z.strictObject({
  name: tenantName,
  initialAdmin: z.strictObject({ username, password: password.optional() }).optional(),
});

/** Generated first-admin passwords: 24 base62 characters (about 143 bits). */
const GENERATED_PASSWORD_LENGTH = 24;

function view(row: Selectable<TenantsTable>): Tenant {
  return { id: row.id, name: row.name, system: Number(row.system) === 1, createdAt: row.created_at, updatedAt: row.updated_at };
}

function nameTaken(name: string, cause?: unknown): LatchkeyError {
  return new LatchkeyError('conflict', `A tenant named "${name}" already exists.`, { cause });
}

/**
 * @example
 * const tenant = await identity.tenants.create({ name: 'acme' });
 * await identity.tenants.getByName('acme');
 */
export function createTenantService(deps: IdentityDeps): TenantService {
  const { db } = deps;
  const byName = (name: string) => db.selectFrom('tenants').selectAll().where('name', '=', name).executeTakeFirst();

  return {
    async create(input, actor = SYSTEM_ACTOR) {
      const { name, initialAdmin } = parseInput(createInput, input, 'tenant');
      const generated = initialAdmin && initialAdmin.password === undefined ? generatePassword(GENERATED_PASSWORD_LENGTH) : undefined;
      // Hashing takes tens of milliseconds: before the transaction.
      const passwordHash = initialAdmin ? await hashPassword(initialAdmin.password ?? (generated as string)) : null;
      const now = deps.clock.now().toISOString();
      const row = { id: newId('ten'), name, system: 0, created_at: now, updated_at: now };
      let admin: CreatedTenant['initialAdmin'];
      try {
        await db.transaction().execute(async (trx) => {
          await trx.insertInto('tenants').values(row).execute();
          await deps.audit.record(trx, { tenantId: row.id, actor, action: 'tenant.created', target: row.id, details: { name } });
          if (initialAdmin) {
            const user = await insertUser(trx, row.id, { username: initialAdmin.username, displayName: null, passwordHash, roles: [ADMIN_ROLE] }, now);
            await deps.audit.record(trx, {
              tenantId: row.id,
              actor,
              action: 'user.created',
              target: user.id,
              details: { username: user.username, roles: [ADMIN_ROLE] },
            });
            admin = { id: user.id, username: user.username, ...(generated !== undefined ? { password: generated } : {}) };
          }
        });
      } catch (err) {
        // The unique index on the name decides between concurrent creators.
        if (await byName(name)) throw nameTaken(name, err);
        throw err;
      }
      return admin ? { ...view(row), initialAdmin: admin } : view(row);
    },

    async get(id) {
      assertId(id, 'id');
      const row = await db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw notFound('tenant', id);
      return view(row);
    },

    async getByName(name) {
      if (typeof name !== 'string') throw new TypeError('"name" must be a string.');
      const row = await byName(name);
      if (!row) throw new LatchkeyError('not_found', `No tenant named ${JSON.stringify(name)} exists.`);
      return view(row);
    },

    async system() {
      const row = await db.selectFrom('tenants').selectAll().where('system', '=', 1).executeTakeFirst();
      if (!row) throw new LatchkeyError('not_found', 'There is no system tenant yet; it is created on first start.');
      return view(row);
    },

    async list() {
      const rows = await db.selectFrom('tenants').selectAll().orderBy('name').execute();
      return rows.map(view);
    },

    async update(id, input, actor = SYSTEM_ACTOR) {
      assertId(id, 'id');
      const { name } = parseInput(tenantInput, input, 'tenant');
      try {
        return await changeTenant(deps, actor, id, async (change) => {
          const current = await change.trx.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
          if (current.name === name) return view(current);
          if (Number(current.system) === 1) throw new LatchkeyError('conflict', 'The system tenant cannot be renamed.');
          const other = await change.trx.selectFrom('tenants').select('id').where('name', '=', name).executeTakeFirst();
          if (other) throw nameTaken(name);
          await change.trx.updateTable('tenants').set({ name, updated_at: change.now }).where('id', '=', id).execute();
          await change.audit({ action: 'tenant.updated', target: id, details: { name, previousName: current.name } });
          return view({ ...current, name, updated_at: change.now });
        });
      } catch (err) {
        if (!(err instanceof LatchkeyError) && (await byName(name))) throw nameTaken(name, err);
        throw err;
      }
    },

    async delete(id, actor = SYSTEM_ACTOR) {
      assertId(id, 'id');
      await changeTenant(deps, actor, id, async (change) => {
        const current = await change.trx.selectFrom('tenants').select(['name', 'system']).where('id', '=', id).executeTakeFirstOrThrow();
        // Deleting it would leave no one able to administer tenants.
        if (Number(current.system) === 1) throw new LatchkeyError('conflict', 'The system tenant cannot be deleted.');
        await change.trx.deleteFrom('tenants').where('id', '=', id).execute();
        await change.invalidate('tenant');
        await change.audit({ action: 'tenant.deleted', target: id, details: { name: current.name } });
      });
    },
  };
}
