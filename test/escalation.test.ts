// Nobody grants what they do not hold (Kubernetes RBAC's escalation rule), through every write
// path, over HTTP (with a key scoped to identity:admin, and with a session) and through the
// library, on both databases. A caller that holds the permissions still succeeds.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { SYSTEM_ACTOR, type Actor } from '../src/identity/index.js';
import { eachDialect } from './support/databases.js';
import { assertError, createHttpHarness, randomName, randomPassword, type HttpHarness, type TenantFixture } from './support/http.js';

await eachDialect('permission escalation', (dialect) => {
  let h: HttpHarness;
  before(async () => {
    h = await createHttpHarness(dialect);
  });
  after(async () => {
    await h?.close();
  });

  /** A tenant with a custom role `idadmin` (identity:admin and apikeys:write), a user holding it, and a key limited to it. */
  async function identityAdmin(): Promise<{ t: TenantFixture; userId: string; key: string }> {
    const t = await h.tenant();
    const role = randomName('idadmin');
    assert.equal((await h.call({ method: 'POST', url: '/api/v1/roles', key: t.adminKey, body: { name: role, permissions: ['identity:admin', 'apikeys:write'] } })).status, 201);
    // The user also holds editor, so only the key's scope keeps it from connectors:write.
    const user = await t.user([role, 'editor']);
    const { key } = await t.key(user.id, { name: 'scoped', roles: [role] });
    return { t, userId: user.id, key };
  }

  const me = async (key: string) => ((await h.call({ method: 'GET', url: '/api/v1/me', key })).json.permissions as string[]);

  it('a key scoped to identity:admin cannot widen its own role (PATCH idadmin to add connectors:write)', async () => {
    const { key } = await identityAdmin();
    const role = ((await h.call({ method: 'GET', url: '/api/v1/roles', key })).json.items as { name: string; builtin: boolean }[]).find((r) => !r.builtin)?.name ?? '';
    const answer = await h.call({ method: 'PATCH', url: `/api/v1/roles/${role}`, key, body: { permissions: ['identity:admin', 'apikeys:write', 'connectors:write'] } });
    assert.match(assertError(answer, 403, 'insufficient_permissions'), /connectors:write/);
    assert.deepEqual(await me(key), ['apikeys:write', 'identity:admin']);
  });

  it('a key scoped to identity:admin cannot create a role, bind admin, create an admin user, add to an admin group or mint a wider key', async () => {
    const { t, userId, key } = await identityAdmin();
    const refused = async (method: 'POST' | 'PATCH', url: string, body: Record<string, unknown>) =>
      assertError(await h.call({ method, url, key, body }), 403, 'insufficient_permissions');

    await refused('POST', '/api/v1/roles', { name: randomName('wide'), permissions: ['connectors:write'] });
    await refused('POST', '/api/v1/roles/admin/bindings', { principal: { type: 'user', id: userId } });
    await refused('POST', '/api/v1/users', { username: randomName('u'), roles: ['admin'] });
    const group = (await h.call({ method: 'POST', url: '/api/v1/groups', key: t.adminKey, body: { name: randomName('admins') } })).json.id as string;
    assert.equal((await h.call({ method: 'POST', url: '/api/v1/roles/admin/bindings', key: t.adminKey, body: { principal: { type: 'group', id: group } } })).status, 204);
    await refused('POST', `/api/v1/groups/${group}/members`, { userId });
    // A key for another user (an admin) carries that user's permissions: more than the caller's.
    await refused('POST', '/api/v1/api-keys', { name: 'as-admin', ownerId: t.adminId });
    // Rolling the admin's key hands out a key with all of them.
    const adminKeyId = (await t.key(t.adminId, { name: 'victim' })).id;
    assertError(await h.call({ method: 'POST', url: `/api/v1/api-keys/${adminKeyId}/_roll`, key, body: {} }), 403, 'insufficient_permissions');

    // Setting the admin's password would let the caller log in as the admin.
    await refused('PATCH', `/api/v1/users/${t.adminId}`, { password: randomPassword() });

    assert.deepEqual(await me(key), ['apikeys:write', 'identity:admin'], 'nothing was granted');
    const bindings = await h.latchkey.identity.roles.bindingsFor(t.id, { principal: { type: 'user', id: userId } });
    assert.ok(!bindings.some((b) => b.roleName === 'admin'));
  });

  it('a session whose user holds only identity:admin cannot bind admin to itself; what it holds it may grant', async () => {
    const t = await h.tenant();
    const role = randomName('idadmin');
    await h.call({ method: 'POST', url: '/api/v1/roles', key: t.adminKey, body: { name: role, permissions: ['identity:admin', 'audit:read'] } });
    const password = randomPassword();
    const user = await t.user([role], { password });
    const cookie = await h.login(t.name, user.username, password);
    assertError(await h.call({ method: 'POST', url: '/api/v1/roles/admin/bindings', cookie, body: { principal: { type: 'user', id: user.id } } }), 403, 'insufficient_permissions');
    // Within what it holds, the same paths work.
    const narrow = randomName('auditor');
    assert.equal((await h.call({ method: 'POST', url: '/api/v1/roles', cookie, body: { name: narrow, permissions: ['audit:read'] } })).status, 201);
    const other = await h.call({ method: 'POST', url: '/api/v1/users', cookie, body: { username: randomName('aud'), roles: [narrow] } });
    assert.equal(other.status, 201, other.text);
    assert.equal((await h.call({ method: 'POST', url: `/api/v1/roles/${narrow}/bindings`, cookie, body: { principal: { type: 'user', id: user.id } } })).status, 204);
  });

  it('the library applies the same rule to a user actor, and lets the system actor grant anything', async () => {
    const t = await h.tenant();
    const { identity, apiKeys } = h.latchkey;
    const role = randomName('idadmin');
    await identity.roles.create(SYSTEM_ACTOR, t.id, { name: role, permissions: ['identity:admin'] });
    const user = await identity.users.create(SYSTEM_ACTOR, t.id, { username: randomName('lib'), roles: [role] });
    const actor: Actor = { type: 'user', tenantId: t.id, userId: user.id };
    await assert.rejects(identity.roles.grant(actor, t.id, 'admin', { type: 'user', id: user.id }), { code: 'insufficient_permissions' });
    await assert.rejects(identity.roles.update(actor, t.id, role, { permissions: ['identity:admin', 'connectors:write'] }), { code: 'insufficient_permissions' });
    await assert.rejects(identity.users.create(actor, t.id, { username: randomName('x'), roles: ['editor'] }), { code: 'insufficient_permissions' });
    await assert.rejects(apiKeys.service.create(actor, t.id, t.adminId, { name: 'wide' }), { code: 'insufficient_permissions' });
    // An actor carrying its permissions (a key's) is held to those, not its owner's.
    const keyActor: Actor = { ...actor, apiKeyId: 'kAAAAAAAAAAAAAAA', permissions: new Set() };
    await assert.rejects(identity.roles.create(keyActor, t.id, { name: randomName('r'), permissions: ['identity:admin'] }), { code: 'insufficient_permissions' });
    await identity.roles.grant(SYSTEM_ACTOR, t.id, 'admin', { type: 'user', id: user.id });
    await identity.roles.update(actor, t.id, role, { permissions: ['identity:admin', 'connectors:write'] });
  });
});
