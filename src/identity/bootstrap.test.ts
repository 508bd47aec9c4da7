import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDialect } from '../../test/support/databases.js';
import { createIdentityFixture, randomName } from '../../test/identity-support.js';
import { PERMISSIONS } from './index.js';

await eachDialect('identity: bootstrap', (dialect) => {
  it('creates tenant "default" and user "admin" once, even when two instances start together', async () => {
    const f = await createIdentityFixture(dialect, { empty: true });
    try {
      const contender = await f.contender();
      const results = await Promise.all([f.identity.bootstrap(), contender.bootstrap(), f.identity.bootstrap()]);
      const created = results.filter((r) => r.created);
      assert.equal(created.length, 1);
      const first = created[0];
      assert.ok(first?.created);
      assert.match(first.password, /^[0-9A-Za-z]{20,}$/);

      assert.deepEqual((await f.identity.tenants.list()).map((t) => [t.id, t.name]), [[first.tenantId, 'default']]);
      const admin = await f.identity.users.getByUsername(first.tenantId, 'admin');
      assert.equal(admin.id, first.userId);
      assert.equal((await f.identity.users.list(first.tenantId)).length, 1);
      assert.deepEqual([...(await f.identity.authorizer.userPermissions(first.tenantId, first.userId)).permissions].sort(), [...PERMISSIONS].sort());

      const login = await f.identity.sessions.login({ tenant: 'default', username: 'admin', password: first.password, address: '127.0.0.1' });
      assert.equal(login.userId, first.userId);
      assert.deepEqual(await f.identity.bootstrap(), { created: false });

      const stored = JSON.stringify(await f.handle.db.selectFrom('users').selectAll().execute());
      assert.ok(stored.includes('scrypt$15$8$1$') && !stored.includes(first.password));
      assert.ok(!f.logs().includes(first.password));
      assert.match(f.logs(), /Created tenant \\"default\\" and user \\"admin\\"/);
      const actions = (await f.identity.audit.list(first.tenantId)).items.map((e) => e.action);
      assert.deepEqual(actions.slice(-2).sort(), ['tenant.created', 'user.created']);
    } finally {
      await f.dispose();
    }
  });

  it('does nothing when any tenant exists', async () => {
    const f = await createIdentityFixture(dialect, { empty: true });
    try {
      await f.identity.tenants.create({ name: randomName('first') });
      assert.deepEqual(await f.identity.bootstrap(), { created: false });
      assert.equal((await f.identity.tenants.list()).length, 1);
    } finally {
      await f.dispose();
    }
  });
});
