import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDialect } from '../../test/support/databases.js';
import { createIdentityFixture, randomName, rejectsWith } from '../../test/identity-support.js';

await eachDialect('identity: tenants', (dialect) => {
  it('creates, reads, lists, renames and deletes tenants', async () => {
    const f = await createIdentityFixture(dialect, { empty: true });
    try {
      const { tenants } = f.identity;
      const name = randomName('acme');
      const created = await tenants.create({ name });
      assert.match(created.id, /^ten_/);
      assert.equal(created.name, name);
      assert.ok(!Number.isNaN(Date.parse(created.createdAt)));
      assert.deepEqual(await tenants.get(created.id), created);
      assert.deepEqual(await tenants.getByName(name), created);
      const other = await tenants.create({ name: randomName('beta') });
      assert.deepEqual((await tenants.list()).map((t) => t.id).sort(), [created.id, other.id].sort());

      const renamed = await tenants.update(created.id, { name: `${name}-2` });
      assert.equal(renamed.name, `${name}-2`);
      assert.equal((await tenants.get(created.id)).name, `${name}-2`);
      await rejectsWith(tenants.getByName(name), 'not_found');

      await tenants.delete(created.id);
      await rejectsWith(tenants.get(created.id), 'not_found');
      await rejectsWith(tenants.delete(created.id), 'not_found');
      await rejectsWith(tenants.update(created.id, { name: randomName('x') }), 'not_found');
      assert.deepEqual((await tenants.list()).map((t) => t.id), [other.id]);
    } finally {
      await f.dispose();
    }
  });

  it('a new tenant can get its first user: initialAdmin is created with the tenant, or neither is', async () => {
    const f = await createIdentityFixture(dialect, { empty: true });
    try {
      const { tenants, users, authorizer } = f.identity;
      const name = randomName('first');
      const created = await tenants.create({ name, initialAdmin: { username: 'owner' } });
      const admin = created.initialAdmin;
      assert.ok(admin?.password && admin.password.length >= 20, 'a generated password is returned once');
      assert.equal(await users.passwordMatches(created.id, admin.id, admin.password), true);
      assert.ok((await authorizer.userPermissions(created.id, admin.id)).permissions.has('identity:admin'));
      assert.deepEqual(await tenants.get(created.id), { id: created.id, name, system: false, createdAt: created.createdAt, updatedAt: created.updatedAt });

      // A bad first user refuses the whole creation: no tenant without its admin.
      const refused = randomName('refused');
      await rejectsWith(tenants.create({ name: refused, initialAdmin: { username: 'bad name!' } }), 'validation_failed');
      await rejectsWith(tenants.create({ name: refused, initialAdmin: { username: 'ok', password: 'short' } }), 'validation_failed');
      await rejectsWith(tenants.getByName(refused), 'not_found');
    } finally {
      await f.dispose();
    }
  });

  it('refuses a taken name, also when two creators race', async () => {
    const f = await createIdentityFixture(dialect, { empty: true });
    try {
      const { tenants } = f.identity;
      const name = randomName('dup');
      await tenants.create({ name });
      await rejectsWith(tenants.create({ name }), 'conflict');
      const other = await tenants.create({ name: randomName('other') });
      await rejectsWith(tenants.update(other.id, { name }), 'conflict');

      const contender = await f.contender();
      const raced = randomName('race');
      const results = await Promise.allSettled([tenants.create({ name: raced }), contender.tenants.create({ name: raced })]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const failure = results.find((r) => r.status === 'rejected');
      assert.equal((failure?.reason as { code?: string }).code, 'conflict');
    } finally {
      await f.dispose();
    }
  });

  it('validates names, one malformed input at a time', async () => {
    const f = await createIdentityFixture(dialect, { empty: true });
    try {
      const bad: unknown[] = ['', 'Acme', '-acme', 'acme_corp', 'a'.repeat(64), 'acme corp', 42, null];
      for (const name of bad) {
        const err = await rejectsWith(f.identity.tenants.create({ name } as { name: string }), 'validation_failed');
        assert.deepEqual((err.details?.['fields'] as { path: string }[]).map((x) => x.path), ['name']);
      }
      await rejectsWith(f.identity.tenants.create({ name: 'ok', extra: 1 } as { name: string }), 'validation_failed');
      assert.equal((await f.identity.tenants.create({ name: 'a' })).name, 'a');
      assert.equal((await f.identity.tenants.create({ name: `9${'a'.repeat(62)}` })).name.length, 63);
    } finally {
      await f.dispose();
    }
  });

  it('deleting a tenant deletes its users, groups, roles and grants', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      const group = await identity.groups.create(admin, tenantId, { name: 'ops' });
      await identity.roles.create(admin, tenantId, { name: 'auditor', permissions: ['audit:read'] });
      await identity.roles.grant(admin, tenantId, 'auditor', { type: 'group', id: group.id });
      await identity.groups.addMember(admin, tenantId, group.id, f.adminId);
      assert.equal((await identity.authorizer.userPermissions(tenantId, f.adminId)).active, true);

      await identity.tenants.delete(tenantId);
      assert.deepEqual(await identity.authorizer.userPermissions(tenantId, f.adminId), { active: false, permissions: new Set() });
      for (const table of ['users', 'groups', 'group_members', 'roles', 'role_bindings'] as const) {
        const rows = await f.handle.db.selectFrom(table).selectAll().execute();
        assert.equal(rows.length, 0, table);
      }
      const events = await identity.audit.list(tenantId);
      assert.equal(events.items[0]?.action, 'tenant.deleted');
    } finally {
      await f.dispose();
    }
  });
});
