import { it } from 'node:test';
import assert from 'node:assert/strict';
import { eachDialect } from '../../test/support/databases.js';
import { createIdentityFixture, randomName, randomSecret, rejectsWith } from '../../test/identity-support.js';

await eachDialect('identity: users', (dialect) => {
  it('creates, reads, lists, updates and deletes users, never returning a password hash', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      const password = randomSecret();
      const ada = await identity.users.create(admin, tenantId, { username: 'ada', displayName: 'Ada L.', password, roles: ['editor'] });
      assert.match(ada.id, /^usr_/);
      assert.deepEqual(
        { ...ada, createdAt: '', updatedAt: '' },
        { id: ada.id, tenantId, username: 'ada', displayName: 'Ada L.', disabled: false, hasPassword: true, createdAt: '', updatedAt: '' },
      );
      assert.deepEqual(await identity.users.get(tenantId, ada.id), ada);
      assert.deepEqual(await identity.users.getByUsername(tenantId, 'ada'), ada);
      assert.deepEqual((await identity.users.list(tenantId)).map((u) => u.username), ['ada', 'root']);
      assert.deepEqual([...(await identity.authorizer.userRoles(tenantId, ada.id))], ['editor']);
      for (const shown of [ada, await identity.users.get(tenantId, ada.id), ...(await identity.users.list(tenantId))]) {
        const text = JSON.stringify(shown);
        assert.ok(!text.includes('scrypt') && !text.includes(password) && !('passwordHash' in shown), text);
      }

      const updated = await identity.users.update(admin, tenantId, ada.id, { displayName: null });
      assert.equal(updated.displayName, null);
      assert.equal((await identity.users.get(tenantId, ada.id)).displayName, null);

      const noPassword = await identity.users.create(admin, tenantId, { username: 'robot' });
      assert.equal(noPassword.hasPassword, false);
      assert.equal((await identity.users.update(admin, tenantId, noPassword.id, { password: randomSecret() })).hasPassword, true);

      await identity.users.delete(admin, tenantId, ada.id);
      await rejectsWith(identity.users.get(tenantId, ada.id), 'not_found');
      await rejectsWith(identity.users.delete(admin, tenantId, ada.id), 'not_found');
      const bindings = await f.handle.db.selectFrom('role_bindings').selectAll().where('principal_id', '=', ada.id).execute();
      assert.equal(bindings.length, 0);
    } finally {
      await f.dispose();
    }
  });

  it("answers not_found for another tenant's user exactly like an unknown id", async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      const other = await identity.tenants.create({ name: randomName('other') });
      const stranger = await identity.users.create({ type: 'system' }, other.id, { username: 'stranger', roles: ['admin'] });
      const unknown = await rejectsWith(identity.users.get(tenantId, 'usr_doesnotexist'), 'not_found');
      const foreign = await rejectsWith(identity.users.get(tenantId, stranger.id), 'not_found');
      assert.equal(foreign.message.replace(stranger.id, 'ID'), unknown.message.replace('usr_doesnotexist', 'ID'));
      await rejectsWith(identity.users.getByUsername(tenantId, 'stranger'), 'not_found');
      await rejectsWith(identity.users.update(admin, tenantId, stranger.id, { displayName: 'x' }), 'not_found');
      await rejectsWith(identity.users.update(admin, tenantId, stranger.id, { disabled: true }), 'not_found');
      await rejectsWith(identity.users.delete(admin, tenantId, stranger.id), 'not_found');
      assert.ok(!(await identity.users.list(tenantId)).some((u) => u.id === stranger.id));
      assert.equal((await identity.users.get(other.id, stranger.id)).disabled, false);
      await rejectsWith(identity.users.list('ten_unknown'), 'not_found');
      await rejectsWith(identity.users.create(admin, 'ten_unknown', { username: 'x' }), 'not_found');
    } finally {
      await f.dispose();
    }
  });

  it('refuses duplicate usernames in a tenant, but not across tenants', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      await identity.users.create(admin, tenantId, { username: 'sam' });
      await rejectsWith(identity.users.create(admin, tenantId, { username: 'sam' }), 'conflict');
      const other = await identity.tenants.create({ name: randomName('other') });
      assert.equal((await identity.users.create(admin, other.id, { username: 'sam' })).username, 'sam');
    } finally {
      await f.dispose();
    }
  });

  it('validates every field, one malformed input at a time', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      const cases: [unknown, string][] = [
        [{ username: '' }, 'username'],
        [{ username: '.hidden' }, 'username'],
        [{ username: 'a b' }, 'username'],
        [{ username: 'x'.repeat(129) }, 'username'],
        [{ username: 7 }, 'username'],
        [{ username: 'ok', password: 'short-11chr' }, 'password'],
        [{ username: 'ok', password: 12345678901234 }, 'password'],
        [{ username: 'ok', displayName: 'd'.repeat(201) }, 'displayName'],
        [{ username: 'ok', roles: 'admin' }, 'roles'],
        [{ username: 'ok', roles: ['no such role'] }, 'roles.0'],
        [{ username: 'ok', roles: ['viewer', 'ghost'] }, 'roles.1'],
        [{ username: 'ok', unexpected: true }, ''],
      ];
      for (const [input, path] of cases) {
        const err = await rejectsWith(identity.users.create(admin, tenantId, input as { username: string }), 'validation_failed');
        const fields = err.details?.['fields'] as { path: string; message: string }[];
        assert.equal(fields[0]?.path, path, JSON.stringify(input));
      }
      assert.equal((await identity.users.list(tenantId)).length, 1);
      const ok = await identity.users.create(admin, tenantId, { username: 'ok', password: 'x'.repeat(12) });
      await rejectsWith(identity.users.update(admin, tenantId, ok.id, { password: 'x'.repeat(11) }), 'validation_failed');
      await rejectsWith(identity.users.update(admin, tenantId, ok.id, { disabled: 'yes' as unknown as boolean }), 'validation_failed');
      await assert.rejects(identity.users.get(tenantId, 42 as unknown as string), TypeError);
    } finally {
      await f.dispose();
    }
  });

  it('disabling a user ends their sessions and deactivates them at once; enabling restores them', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      const tenant = await identity.tenants.get(tenantId);
      const password = randomSecret();
      const user = await identity.users.create(admin, tenantId, { username: 'eve', password, roles: ['viewer'] });
      const { token } = await identity.sessions.login({ tenant: tenant.name, username: 'eve', password, address: '10.0.0.1' });
      assert.equal((await identity.authorizer.userPermissions(tenantId, user.id)).active, true);

      const disabled = await identity.users.update(admin, tenantId, user.id, { disabled: true });
      assert.equal(disabled.disabled, true);
      assert.deepEqual(await identity.authorizer.userPermissions(tenantId, user.id), { active: false, permissions: new Set() });
      assert.equal(await identity.sessions.authenticate(token), undefined);

      await identity.users.update(admin, tenantId, user.id, { disabled: false });
      const back = await identity.authorizer.userPermissions(tenantId, user.id);
      assert.equal(back.active, true);
      assert.ok(back.permissions.has('tasks:read'));
      const actions = (await identity.audit.list(tenantId, { limit: 3 })).items.map((e) => e.action);
      assert.deepEqual(actions.slice(0, 2), ['user.updated', 'user.disabled']);
    } finally {
      await f.dispose();
    }
  });
});
