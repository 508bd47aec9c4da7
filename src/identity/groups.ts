import { z } from 'zod';
import type { Kysely, Selectable, Transaction } from 'kysely';
import { LatchkeyError, newId } from '../core/index.js';
import type { Database, GroupsTable } from '../db/index.js';
import type { Actor } from './actor.js';
import type { IdentityDeps } from './deps.js';
import { assertMayGrant } from './escalation.js';
import { keepingAnAdmin, permissionsOfRoles } from './role-queries.js';
import { changeTenant } from './tenant-change.js';
import { assertTenantExists, findUser, userView, type User } from './users.js';
import { assertId, name, notFound, parseInput } from './validation.js';

export interface Group {
  id: string;
  tenantId: string;
  name: string;
  createdAt: string;
  updatedAt: string;
}

/** Groups hold users; roles granted to a group count for each member. */
export interface GroupService {
  create(actor: Actor, tenantId: string, input: { name: string }): Promise<Group>;
  get(tenantId: string, id: string): Promise<Group>;
  /** The tenant's groups, by name. */
  list(tenantId: string): Promise<Group[]>;
  /** Renames a group. */
  update(actor: Actor, tenantId: string, id: string, input: { name: string }): Promise<Group>;
  /** Deletes the group, its memberships and its role bindings. */
  delete(actor: Actor, tenantId: string, id: string): Promise<void>;
  /** Adds a user to a group; adding a member again changes nothing. */
  addMember(actor: Actor, tenantId: string, groupId: string, userId: string): Promise<void>;
  /** Removes a member (not_found when the user is not one). */
  removeMember(actor: Actor, tenantId: string, groupId: string, userId: string): Promise<void>;
  /** The group's members, by username. */
  listMembers(tenantId: string, groupId: string): Promise<User[]>;
  /** The groups a user belongs to, by name. */
  groupsOf(tenantId: string, userId: string): Promise<Group[]>;
}

const groupInput = z.strictObject({ name });

type Db = Kysely<Database> | Transaction<Database>;

function view(row: Selectable<GroupsTable>): Group {
  return { id: row.id, tenantId: row.tenant_id, name: row.name, createdAt: row.created_at, updatedAt: row.updated_at };
}

/** The group's row, or not_found: another tenant's group answers exactly like an unknown id. */
export async function findGroup(db: Db, tenantId: string, id: string): Promise<Selectable<GroupsTable>> {
  const row = await db.selectFrom('groups').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound('group', id);
  return row;
}

async function assertNameFree(db: Db, tenantId: string, groupName: string): Promise<void> {
  const taken = await db.selectFrom('groups').select('id').where('tenant_id', '=', tenantId).where('name', '=', groupName).executeTakeFirst();
  if (taken) throw new LatchkeyError('conflict', `A group named "${groupName}" already exists in this tenant.`);
}

/**
 * @example
 * const ops = await identity.groups.create(actor, tenantId, { name: 'ops' });
 * await identity.roles.grant(actor, tenantId, 'editor', { type: 'group', id: ops.id });
 * await identity.groups.addMember(actor, tenantId, ops.id, userId);
 */
export function createGroupService(deps: IdentityDeps): GroupService {
  const { db } = deps;

  return {
    async create(actor, tenantId, input) {
      assertId(tenantId, 'tenantId');
      const valid = parseInput(groupInput, input, 'group');
      return changeTenant(deps, actor, tenantId, async (change) => {
        await assertNameFree(change.trx, tenantId, valid.name);
        const row = { id: newId('grp'), tenant_id: tenantId, name: valid.name, created_at: change.now, updated_at: change.now };
        await change.trx.insertInto('groups').values(row).execute();
        await change.audit({ action: 'group.created', target: row.id, details: { name: row.name } });
        return view(row);
      });
    },

    async get(tenantId, id) {
      assertId(tenantId, 'tenantId');
      assertId(id, 'id');
      return view(await findGroup(db, tenantId, id));
    },

    async list(tenantId) {
      assertId(tenantId, 'tenantId');
      await assertTenantExists(db, tenantId);
      const rows = await db.selectFrom('groups').selectAll().where('tenant_id', '=', tenantId).orderBy('name').execute();
      return rows.map(view);
    },

    async update(actor, tenantId, id, input) {
      assertId(tenantId, 'tenantId');
      assertId(id, 'id');
      const valid = parseInput(groupInput, input, 'group');
      return changeTenant(deps, actor, tenantId, async (change) => {
        const current = await findGroup(change.trx, tenantId, id);
        if (current.name === valid.name) return view(current);
        await assertNameFree(change.trx, tenantId, valid.name);
        await change.trx.updateTable('groups').set({ name: valid.name, updated_at: change.now }).where('id', '=', id).execute();
        await change.audit({ action: 'group.updated', target: id, details: { name: valid.name, previousName: current.name } });
        return view({ ...current, name: valid.name, updated_at: change.now });
      });
    },

    async delete(actor, tenantId, id) {
      assertId(tenantId, 'tenantId');
      assertId(id, 'id');
      await changeTenant(deps, actor, tenantId, async (change) => {
        const { trx } = change;
        const current = await findGroup(trx, tenantId, id);
        await keepingAnAdmin(trx, tenantId, async () => {
          await trx
            .deleteFrom('role_bindings')
            .where('tenant_id', '=', tenantId)
            .where('principal_type', '=', 'group')
            .where('principal_id', '=', id)
            .execute();
          await trx.deleteFrom('groups').where('tenant_id', '=', tenantId).where('id', '=', id).execute();
        });
        // Every former member may have lost permissions.
        await change.invalidate('tenant');
        await change.audit({ action: 'group.deleted', target: id, details: { name: current.name } });
      });
    },

    async addMember(actor, tenantId, groupId, userId) {
      assertId(tenantId, 'tenantId');
      assertId(groupId, 'groupId');
      assertId(userId, 'userId');
      await changeTenant(deps, actor, tenantId, async (change) => {
        const { trx } = change;
        await findGroup(trx, tenantId, groupId);
        await findUser(trx, tenantId, userId);
        // A member gets the group's roles: adding one grants them.
        const groupRoles = await trx
          .selectFrom('role_bindings')
          .select('role_name')
          .where('tenant_id', '=', tenantId)
          .where('principal_type', '=', 'group')
          .where('principal_id', '=', groupId)
          .execute();
        await assertMayGrant(trx, actor, await permissionsOfRoles(trx, tenantId, groupRoles.map((r) => r.role_name)));
        const existing = await trx
          .selectFrom('group_members')
          .select('user_id')
          .where('group_id', '=', groupId)
          .where('user_id', '=', userId)
          .executeTakeFirst();
        if (existing) return;
        await trx.insertInto('group_members').values({ group_id: groupId, user_id: userId, tenant_id: tenantId, created_at: change.now }).execute();
        await change.invalidate('user', userId);
        await change.audit({ action: 'group.member_added', target: groupId, details: { userId } });
      });
    },

    async removeMember(actor, tenantId, groupId, userId) {
      assertId(tenantId, 'tenantId');
      assertId(groupId, 'groupId');
      assertId(userId, 'userId');
      await changeTenant(deps, actor, tenantId, async (change) => {
        const { trx } = change;
        await findGroup(trx, tenantId, groupId);
        await findUser(trx, tenantId, userId);
        await keepingAnAdmin(trx, tenantId, async () => {
          const removed = await trx
            .deleteFrom('group_members')
            .where('group_id', '=', groupId)
            .where('user_id', '=', userId)
            .executeTakeFirst();
          if (Number(removed.numDeletedRows) === 0) {
            throw new LatchkeyError('not_found', `User ${JSON.stringify(userId)} is not a member of group ${JSON.stringify(groupId)}.`);
          }
        });
        await change.invalidate('user', userId);
        await change.audit({ action: 'group.member_removed', target: groupId, details: { userId } });
      });
    },

    async listMembers(tenantId, groupId) {
      assertId(tenantId, 'tenantId');
      assertId(groupId, 'groupId');
      await findGroup(db, tenantId, groupId);
      const rows = await db
        .selectFrom('users')
        .selectAll('users')
        .innerJoin('group_members', 'group_members.user_id', 'users.id')
        .where('group_members.group_id', '=', groupId)
        .where('users.tenant_id', '=', tenantId)
        .orderBy('users.username')
        .execute();
      return rows.map(userView);
    },

    async groupsOf(tenantId, userId) {
      assertId(tenantId, 'tenantId');
      assertId(userId, 'userId');
      await findUser(db, tenantId, userId);
      const rows = await db
        .selectFrom('groups')
        .selectAll('groups')
        .innerJoin('group_members', 'group_members.group_id', 'groups.id')
        .where('group_members.user_id', '=', userId)
        .where('groups.tenant_id', '=', tenantId)
        .orderBy('groups.name')
        .execute();
      return rows.map(view);
    },
  };
}
