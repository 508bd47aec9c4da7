import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDialect } from '../../test/support/databases.js';
import { createIdentityFixture, randomName, rejectsWith } from '../../test/identity-support.js';
import type { Actor } from './index.js';

const system: Actor = { type: 'system' };

await eachDialect('identity: the last active admin', (dialect) => {
  it('cannot be revoked, disabled or deleted', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId, adminId } = f;
      const me = { type: 'user', id: adminId } as const;
      const err = await rejectsWith(identity.roles.revoke(admin, tenantId, 'admin', me), 'conflict');
      assert.equal(err.message, 'This change would leave the tenant without an active admin.');
      await rejectsWith(identity.users.update(admin, tenantId, adminId, { disabled: true }), 'conflict');
      await rejectsWith(identity.users.delete(admin, tenantId, adminId), 'conflict');
      assert.ok((await identity.authorizer.userPermissions(tenantId, adminId)).permissions.has('identity:admin'));
      assert.equal((await identity.users.get(tenantId, adminId)).disabled, false);

      // A disabled admin does not count.
      const second = await identity.users.create(admin, tenantId, { username: 'second', roles: ['admin'] });
      await identity.users.update(admin, tenantId, second.id, { disabled: true });
      await rejectsWith(identity.roles.revoke(admin, tenantId, 'admin', me), 'conflict');
      // An active one does.
      await identity.users.update(admin, tenantId, second.id, { disabled: false });
      await identity.roles.revoke(admin, tenantId, 'admin', me);
      await rejectsWith(identity.users.delete(admin, tenantId, second.id), 'conflict');
      const revoked = (await identity.audit.list(tenantId, { action: 'role.revoked' })).items;
      assert.equal(revoked.length, 1);
    } finally {
      await f.dispose();
    }
  });

  it('counts admins through groups: removing the member, deleting the group or revoking from it is refused', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId, adminId } = f;
      const admins = await identity.groups.create(admin, tenantId, { name: 'admins' });
      await identity.roles.grant(admin, tenantId, 'admin', { type: 'group', id: admins.id });
      await identity.groups.addMember(admin, tenantId, admins.id, adminId);
      await identity.roles.revoke(admin, tenantId, 'admin', { type: 'user', id: adminId });
      assert.ok((await identity.authorizer.userPermissions(tenantId, adminId)).permissions.has('identity:admin'));

      await rejectsWith(identity.groups.removeMember(admin, tenantId, admins.id, adminId), 'conflict');
      await rejectsWith(identity.groups.delete(admin, tenantId, admins.id), 'conflict');
      await rejectsWith(identity.roles.revoke(admin, tenantId, 'admin', { type: 'group', id: admins.id }), 'conflict');
      assert.deepEqual((await identity.groups.listMembers(tenantId, admins.id)).map((u) => u.id), [adminId]);
    } finally {
      await f.dispose();
    }
  });

  it('does not block changes in a tenant that never had an admin', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity } = f;
      const tenant = await identity.tenants.create({ name: randomName('bare') });
      const user = await identity.users.create(system, tenant.id, { username: 'u', roles: ['viewer'] });
      await identity.roles.revoke(system, tenant.id, 'viewer', { type: 'user', id: user.id });
      await identity.users.update(system, tenant.id, user.id, { disabled: true });
      await identity.users.delete(system, tenant.id, user.id);
    } finally {
      await f.dispose();
    }
  });

  for (let round = 1; round <= 3; round++) {
    it(`survives two concurrent revokes of the last two admins: exactly one succeeds (round ${round})`, async () => {
      const f = await createIdentityFixture(dialect);
      try {
        const { identity, admin, tenantId, adminId } = f;
        const other = await identity.users.create(admin, tenantId, { username: 'other', roles: ['admin'] });
        const contender = await f.contender();
        const results = await Promise.allSettled([
          identity.roles.revoke(admin, tenantId, 'admin', { type: 'user', id: adminId }),
          contender.roles.revoke(admin, tenantId, 'admin', { type: 'user', id: other.id }),
        ]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        assert.equal((failure?.reason as { code?: string }).code, 'conflict');
        const holders = (await identity.roles.bindingsFor(tenantId, { roleName: 'admin' })).map((b) => b.principal.id);
        assert.equal(holders.length, 1);
        assert.equal((await identity.audit.list(tenantId, { action: 'role.revoked' })).items.length, 1);
      } finally {
        await f.dispose();
      }
    });
  }

  it('survives a concurrent disable and delete of the last two admins', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId, adminId } = f;
      const other = await identity.users.create(admin, tenantId, { username: 'other', roles: ['admin'] });
      const contender = await f.contender();
      const results = await Promise.allSettled([
        identity.users.update(admin, tenantId, adminId, { disabled: true }),
        contender.users.delete(admin, tenantId, other.id),
      ]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const active = (await identity.users.list(tenantId)).filter((u) => !u.disabled);
      assert.equal(active.length, 1);
      assert.equal((await identity.authorizer.userPermissions(tenantId, active[0]?.id ?? '')).permissions.has('identity:admin'), true);
    } finally {
      await f.dispose();
    }
  });
});
