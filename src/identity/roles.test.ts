import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDialect } from '../../test/support/databases.js';
import { createIdentityFixture, randomName, rejectsWith } from '../../test/identity-support.js';
import { BUILTIN_ROLES, type Permission } from './index.js';

await eachDialect('identity: roles', (dialect) => {
  it('lists built-in and custom roles; creates, updates and deletes custom roles', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      const builtins = await identity.roles.list(tenantId);
      assert.deepEqual(builtins.map((r) => [r.name, r.builtin]), [['admin', true], ['editor', true], ['viewer', true]]);
      assert.deepEqual((await identity.roles.get(tenantId, 'viewer')).permissions, [...BUILTIN_ROLES.viewer]);

      const auditor = await identity.roles.create(admin, tenantId, {
        name: 'auditor',
        description: 'Reads the audit log',
        permissions: ['audit:read', 'tasks:read', 'audit:read'],
      });
      assert.deepEqual(auditor.permissions, ['tasks:read', 'audit:read']);
      assert.equal(auditor.builtin, false);
      assert.deepEqual(await identity.roles.get(tenantId, 'auditor'), auditor);
      assert.deepEqual((await identity.roles.list(tenantId)).map((r) => r.name), ['admin', 'editor', 'viewer', 'auditor']);
      await rejectsWith(identity.roles.create(admin, tenantId, { name: 'auditor', permissions: [] }), 'conflict');

      const changed = await identity.roles.update(admin, tenantId, 'auditor', { permissions: ['audit:read'] });
      assert.deepEqual(changed.permissions, ['audit:read']);
      assert.equal(changed.description, 'Reads the audit log');
      assert.equal((await identity.roles.update(admin, tenantId, 'auditor', { description: null })).description, null);

      const user = await identity.users.create(admin, tenantId, { username: 'ivy', roles: ['auditor'] });
      const granted = await identity.roles.bindingsFor(tenantId, { roleName: 'auditor' });
      assert.deepEqual(granted.map((b) => ({ ...b, createdAt: '' })), [{ roleName: 'auditor', principal: { type: 'user', id: user.id }, createdAt: '' }]);
      await identity.roles.delete(admin, tenantId, 'auditor');
      await rejectsWith(identity.roles.get(tenantId, 'auditor'), 'not_found');
      assert.deepEqual(await identity.roles.bindingsFor(tenantId, { roleName: 'auditor' }), []);
      assert.deepEqual([...(await identity.authorizer.userRoles(tenantId, user.id))], []);
      await rejectsWith(identity.roles.delete(admin, tenantId, 'auditor'), 'not_found');
      await rejectsWith(identity.roles.update(admin, tenantId, 'auditor', { permissions: [] }), 'not_found');

      const actions = (await identity.audit.list(tenantId)).items.map((e) => e.action);
      for (const action of ['role.created', 'role.updated', 'role.deleted']) assert.ok(actions.includes(action), action);
    } finally {
      await f.dispose();
    }
  });

  it('refuses to create, change or delete a built-in role', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      for (const name of ['admin', 'editor', 'viewer']) {
        await rejectsWith(identity.roles.create(admin, tenantId, { name, permissions: ['tasks:read'] }), 'conflict');
        await rejectsWith(identity.roles.update(admin, tenantId, name, { permissions: ['identity:admin'] }), 'conflict');
        await rejectsWith(identity.roles.delete(admin, tenantId, name), 'conflict');
      }
      assert.deepEqual((await identity.roles.get(tenantId, 'viewer')).permissions, [...BUILTIN_ROLES.viewer]);
    } finally {
      await f.dispose();
    }
  });

  it('validates permissions field by field', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      const cases: [unknown, string][] = [
        [{ name: 'r', permissions: ['tasks:read', 'tasks:delete'] }, 'permissions.1'],
        [{ name: 'r', permissions: ['*'] }, 'permissions.0'],
        [{ name: 'r', permissions: 'tasks:read' }, 'permissions'],
        [{ name: 'r' }, 'permissions'],
        [{ name: 'r', permissions: [42] }, 'permissions.0'],
        [{ name: 'bad name', permissions: [] }, 'name'],
        [{ name: 'r', permissions: [], description: 'd'.repeat(1001) }, 'description'],
      ];
      for (const [input, path] of cases) {
        const err = await rejectsWith(identity.roles.create(admin, tenantId, input as { name: string; permissions: Permission[] }), 'validation_failed');
        assert.equal((err.details?.['fields'] as { path: string }[])[0]?.path, path, JSON.stringify(input));
      }
      const err = await rejectsWith(
        identity.roles.create(admin, tenantId, { name: 'r', permissions: ['tasks:delete' as Permission] }),
        'validation_failed',
      );
      assert.match(err.message, /"permissions\.0".*tasks:delete/);
      await identity.roles.create(admin, tenantId, { name: 'r', permissions: [] });
      await rejectsWith(identity.roles.update(admin, tenantId, 'r', { permissions: ['x:y' as Permission] }), 'validation_failed');
      assert.deepEqual((await identity.roles.get(tenantId, 'r')).permissions, []);
    } finally {
      await f.dispose();
    }
  });

  it('grants and revokes roles to users and groups, checking role and principal', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      const user = await identity.users.create(admin, tenantId, { username: 'kim' });
      const group = await identity.groups.create(admin, tenantId, { name: 'ops' });
      await identity.roles.grant(admin, tenantId, 'editor', { type: 'user', id: user.id });
      await identity.roles.grant(admin, tenantId, 'editor', { type: 'user', id: user.id });
      await identity.roles.grant(admin, tenantId, 'viewer', { type: 'group', id: group.id });
      assert.deepEqual(
        (await identity.roles.bindingsFor(tenantId, { principal: { type: 'user', id: user.id } })).map((b) => b.roleName),
        ['editor'],
      );
      assert.deepEqual((await identity.roles.bindingsFor(tenantId)).map((b) => `${b.roleName}:${b.principal.type}`), [
        'admin:user',
        'editor:user',
        'viewer:group',
      ]);
      await rejectsWith(identity.roles.grant(admin, tenantId, 'ghost', { type: 'user', id: user.id }), 'not_found');
      await rejectsWith(identity.roles.grant(admin, tenantId, 'viewer', { type: 'user', id: 'usr_nobody' }), 'not_found');
      await rejectsWith(identity.roles.grant(admin, tenantId, 'viewer', { type: 'group', id: user.id }), 'not_found');
      await rejectsWith(identity.roles.grant(admin, tenantId, 'viewer', { type: 'robot', id: user.id } as never), 'validation_failed');

      await identity.roles.revoke(admin, tenantId, 'editor', { type: 'user', id: user.id });
      await rejectsWith(identity.roles.revoke(admin, tenantId, 'editor', { type: 'user', id: user.id }), 'not_found');
      await identity.roles.revoke(admin, tenantId, 'viewer', { type: 'group', id: group.id });
      assert.deepEqual((await identity.roles.bindingsFor(tenantId)).map((b) => b.roleName), ['admin']);

      const events = (await identity.audit.list(tenantId, { action: 'role.granted' })).items;
      assert.equal(events.length, 2);
      assert.deepEqual(events[0]?.details, { role: 'viewer', principalType: 'group' });
      assert.equal((await identity.audit.list(tenantId, { action: 'role.revoked' })).items.length, 2);
    } finally {
      await f.dispose();
    }
  });

  it("answers not_found for another tenant's roles, users and groups", async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      const other = await identity.tenants.create({ name: randomName('other') });
      const system = { type: 'system' } as const;
      await identity.roles.create(system, other.id, { name: 'secret-role', permissions: ['identity:admin'] });
      const foreignUser = await identity.users.create(system, other.id, { username: 'zed' });
      const foreignGroup = await identity.groups.create(system, other.id, { name: 'g' });

      await rejectsWith(identity.roles.get(tenantId, 'secret-role'), 'not_found');
      await rejectsWith(identity.roles.update(admin, tenantId, 'secret-role', { permissions: [] }), 'not_found');
      await rejectsWith(identity.roles.delete(admin, tenantId, 'secret-role'), 'not_found');
      await rejectsWith(identity.roles.grant(admin, tenantId, 'secret-role', { type: 'user', id: f.adminId }), 'not_found');
      await rejectsWith(identity.roles.grant(admin, tenantId, 'viewer', { type: 'user', id: foreignUser.id }), 'not_found');
      await rejectsWith(identity.roles.grant(admin, tenantId, 'viewer', { type: 'group', id: foreignGroup.id }), 'not_found');
      await rejectsWith(identity.roles.revoke(admin, tenantId, 'viewer', { type: 'user', id: foreignUser.id }), 'not_found');
      assert.deepEqual(await identity.authorizer.rolePermissions(tenantId, ['secret-role']), new Set());
      assert.ok(!(await identity.roles.list(tenantId)).some((r) => r.name === 'secret-role'));
      await rejectsWith(identity.roles.list('ten_unknown'), 'not_found');
    } finally {
      await f.dispose();
    }
  });
});
