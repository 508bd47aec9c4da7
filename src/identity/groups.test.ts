import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDialect } from '../../test/support/databases.js';
import { createIdentityFixture, randomName, rejectsWith } from '../../test/identity-support.js';

await eachDialect('identity: groups', (dialect) => {
  it('creates, reads, lists, renames and deletes groups, and manages members', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      const ops = await identity.groups.create(admin, tenantId, { name: 'ops' });
      assert.match(ops.id, /^grp_/);
      assert.deepEqual(await identity.groups.get(tenantId, ops.id), ops);
      const dev = await identity.groups.create(admin, tenantId, { name: 'dev' });
      assert.deepEqual((await identity.groups.list(tenantId)).map((g) => g.name), ['dev', 'ops']);
      await rejectsWith(identity.groups.create(admin, tenantId, { name: 'ops' }), 'conflict');
      await rejectsWith(identity.groups.update(admin, tenantId, dev.id, { name: 'ops' }), 'conflict');
      assert.equal((await identity.groups.update(admin, tenantId, dev.id, { name: 'developers' })).name, 'developers');

      const ann = await identity.users.create(admin, tenantId, { username: 'ann' });
      const bob = await identity.users.create(admin, tenantId, { username: 'bob' });
      await identity.groups.addMember(admin, tenantId, ops.id, bob.id);
      await identity.groups.addMember(admin, tenantId, ops.id, ann.id);
      await identity.groups.addMember(admin, tenantId, ops.id, ann.id);
      assert.deepEqual((await identity.groups.listMembers(tenantId, ops.id)).map((u) => u.username), ['ann', 'bob']);
      assert.deepEqual((await identity.groups.groupsOf(tenantId, ann.id)).map((g) => g.name), ['ops']);
      await identity.groups.removeMember(admin, tenantId, ops.id, bob.id);
      await rejectsWith(identity.groups.removeMember(admin, tenantId, ops.id, bob.id), 'not_found');
      assert.deepEqual((await identity.groups.listMembers(tenantId, ops.id)).map((u) => u.username), ['ann']);

      await identity.roles.grant(admin, tenantId, 'viewer', { type: 'group', id: ops.id });
      await identity.groups.delete(admin, tenantId, ops.id);
      await rejectsWith(identity.groups.get(tenantId, ops.id), 'not_found');
      assert.deepEqual(await identity.groups.groupsOf(tenantId, ann.id), []);
      assert.deepEqual(await identity.roles.bindingsFor(tenantId, { principal: { type: 'group', id: ops.id } }), []);
      assert.equal((await identity.authorizer.userPermissions(tenantId, ann.id)).permissions.size, 0);

      const actions = (await identity.audit.list(tenantId)).items.map((e) => e.action);
      for (const action of ['group.created', 'group.member_added', 'group.member_removed', 'group.deleted']) {
        assert.ok(actions.includes(action), action);
      }
    } finally {
      await f.dispose();
    }
  });

  it("answers not_found for another tenant's groups and users", async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      const other = await identity.tenants.create({ name: randomName('other') });
      const system = { type: 'system' } as const;
      const foreignGroup = await identity.groups.create(system, other.id, { name: 'ops' });
      const foreignUser = await identity.users.create(system, other.id, { username: 'zed' });
      const ours = await identity.groups.create(admin, tenantId, { name: 'ops' });

      await rejectsWith(identity.groups.get(tenantId, foreignGroup.id), 'not_found');
      await rejectsWith(identity.groups.update(admin, tenantId, foreignGroup.id, { name: 'x' }), 'not_found');
      await rejectsWith(identity.groups.delete(admin, tenantId, foreignGroup.id), 'not_found');
      await rejectsWith(identity.groups.listMembers(tenantId, foreignGroup.id), 'not_found');
      await rejectsWith(identity.groups.addMember(admin, tenantId, foreignGroup.id, f.adminId), 'not_found');
      await rejectsWith(identity.groups.addMember(admin, tenantId, ours.id, foreignUser.id), 'not_found');
      await rejectsWith(identity.groups.groupsOf(tenantId, foreignUser.id), 'not_found');
      assert.deepEqual(await identity.groups.listMembers(tenantId, ours.id), []);
      assert.deepEqual((await identity.groups.list(tenantId)).map((g) => g.id), [ours.id]);
    } finally {
      await f.dispose();
    }
  });

  it('validates group names', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      for (const name of ['', ' ops', 'o p s', 'x'.repeat(64), 5]) {
        await rejectsWith(f.identity.groups.create(f.admin, f.tenantId, { name } as { name: string }), 'validation_failed');
      }
    } finally {
      await f.dispose();
    }
  });
});
