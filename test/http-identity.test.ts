// Identity over HTTP, end to end through createLatchkey on both databases: console sessions,
// users, groups, roles and tenants, who may change them, cross-tenant ids, permission changes
// seen on the next request, the audit log and the OpenAPI description of it all.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createLogger, createMetrics } from '../src/core/index.js';
import { apiRoutes, createHttpApp } from '../src/http/index.js';
import { eachDialect } from './support/databases.js';
import {
  assertError,
  cookiePair,
  createHttpHarness,
  randomAddress,
  randomName,
  randomPassword,
  type Answer,
  type HttpHarness,
} from './support/http.js';

const INCORRECT = 'The username or password is incorrect.';
const shape = (message: string, id: string): string => message.replace(id, '<id>');

await eachDialect('HTTP identity', (dialect) => {
  let h: HttpHarness;
  before(async () => {
    h = await createHttpHarness(dialect);
  });
  after(async () => {
    await h?.close();
  });

  it('logs in with an HttpOnly SameSite=Lax cookie that authenticates, and logs out', async () => {
    const t = await h.tenant();
    const password = randomPassword();
    const user = await t.user(['viewer'], { password });
    const login = await h.call({ method: 'POST', url: '/api/v1/sessions', body: { tenant: t.name, username: user.username, password } });
    assert.equal(login.status, 201, login.text);
    assert.equal(login.json.tenantId, t.id);
    assert.equal(login.json.userId, user.id);
    assert.ok(Date.parse(login.json.expiresAt) > h.clock.now().getTime());
    const setCookie = String(login.headers['set-cookie']);
    assert.match(setCookie, /^latchkey_session=[0-9A-Za-z]{32,64}; /);
    assert.match(setCookie, /; HttpOnly/);
    assert.match(setCookie, /; SameSite=Lax/);
    assert.match(setCookie, /; Path=\//);
    assert.doesNotMatch(setCookie, /; Secure/, 'served over http');
    assert.ok(!login.text.includes(cookiePair(login.headers['set-cookie']).split('=')[1] ?? '?'), 'the token is only in the cookie');
    const cookie = cookiePair(login.headers['set-cookie']);

    const whoami = await h.call({ method: 'GET', url: '/api/v1/me', cookie });
    assert.equal(whoami.status, 200, whoami.text);
    assert.deepEqual(whoami.json, {
      tenant: { id: t.id, name: t.name },
      user: { id: user.id, username: user.username },
      apiKey: null,
      permissions: ['apikeys:read', 'connectors:read', 'tasks:read'],
    });

    const logout = await h.call({ method: 'DELETE', url: '/api/v1/sessions/current', cookie });
    assert.equal(logout.status, 204);
    assert.match(String(logout.headers['set-cookie']), /^latchkey_session=; Max-Age=0/);
    assertError(await h.call({ method: 'GET', url: '/api/v1/me', cookie }), 401, 'unauthorized');
    assert.equal((await h.call({ method: 'DELETE', url: '/api/v1/sessions/current' })).status, 204, 'logging out twice is fine');
  });

  it('answers every failed login with one 401, and 429 with Retry-After after repeated failures', async () => {
    const t = await h.tenant();
    const password = randomPassword();
    const user = await t.user([], { password });
    const login = (body: unknown, address = randomAddress()) => h.call({ method: 'POST', url: '/api/v1/sessions', body, address });
    const failures: Answer[] = [
      await login({ tenant: t.name, username: user.username, password: randomPassword() }),
      await login({ tenant: t.name, username: randomName('nobody'), password }),
      await login({ tenant: randomName('nowhere'), username: user.username, password }),
    ];
    for (const answer of failures) assert.equal(assertError(answer, 401, 'unauthorized'), INCORRECT);
    assertError(await login({ tenant: t.name, username: user.username }), 400, 'validation_failed');

    // Limits count per account and address: the fifth failure from one address locks that address out.
    const address = randomAddress();
    for (let i = 0; i < 5; i++) assertError(await login({ tenant: t.name, username: user.username, password: randomPassword() }, address), 401, 'unauthorized');
    const limited = await login({ tenant: t.name, username: user.username, password }, address);
    assertError(limited, 429, 'rate_limited');
    const retry = Number(limited.headers['retry-after']);
    assert.ok(retry >= 1 && retry <= 15 * 60, `Retry-After ${retry}`);
    assert.equal(limited.headers['set-cookie'], undefined);
  });

  it('sets the Secure flag when the public URL is https', async () => {
    const { identity, apiKeys, bus } = h.latchkey;
    const app = await createHttpApp({
      logger: createLogger({ level: 'silent' }),
      metrics: createMetrics({ processMetrics: false }),
      readiness: [],
      apiPlugins: [apiRoutes({ identity, apiKeys, bus, publicUrl: 'https://latchkey.example.com' })],
    });
    try {
      const t = await h.tenant();
      const password = randomPassword();
      const user = await t.user([], { password });
      const res = await app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { tenant: t.name, username: user.username, password } });
      assert.equal(res.statusCode, 201, res.body);
      assert.match(String(res.headers['set-cookie']), /; Secure/);
      assert.match(String(res.headers['set-cookie']), /; HttpOnly/);
    } finally {
      await app.close();
    }
  });

  it('keeps a viewer from creating users, granting roles or reading other users', async () => {
    const t = await h.tenant();
    const viewer = await t.user(['viewer']);
    const { key } = await t.key(viewer.id);
    const createUser = await h.call({ method: 'POST', url: '/api/v1/users', key, body: { username: randomName('x') } });
    assert.equal(assertError(createUser, 403, 'forbidden'), 'This action needs the permission identity:admin.');
    const grant = await h.call({ method: 'POST', url: '/api/v1/roles/admin/bindings', key, body: { principal: { type: 'user', id: viewer.id } } });
    assertError(grant, 403, 'forbidden');
    assertError(await h.call({ method: 'PATCH', url: `/api/v1/users/${viewer.id}`, key, body: { displayName: 'me' } }), 403, 'forbidden');
    assertError(await h.call({ method: 'POST', url: '/api/v1/roles', key, body: { name: 'mine', permissions: ['identity:admin'] } }), 403, 'forbidden');
    assertError(await h.call({ method: 'POST', url: '/api/v1/groups', key, body: { name: 'mine' } }), 403, 'forbidden');
    assertError(await h.call({ method: 'GET', url: `/api/v1/users/${t.adminId}`, key }), 403, 'forbidden');
    assertError(await h.call({ method: 'GET', url: '/api/v1/audit', key }), 403, 'forbidden');
    const self = await h.call({ method: 'GET', url: `/api/v1/users/${viewer.id}`, key });
    assert.equal(self.status, 200);
    const list = await h.call({ method: 'GET', url: '/api/v1/users', key });
    assert.deepEqual(list.json.items.map((u: { id: string }) => u.id), [viewer.id]);
    const roles = await h.call({ method: 'GET', url: '/api/v1/roles', key });
    assert.deepEqual(roles.json.items.slice(0, 3).map((r: { name: string }) => r.name), ['admin', 'editor', 'viewer']);
    const bindings = await h.call({ method: 'GET', url: '/api/v1/roles/admin/bindings', key: t.adminKey });
    assert.deepEqual(bindings.json.items.map((b: { principal: { id: string } }) => b.principal.id), [t.adminId], 'nothing was granted');
  });

  it('lets an admin manage users, groups, memberships, roles and grants', async () => {
    const t = await h.tenant();
    const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) =>
      h.call({ method, url: `/api/v1${url}`, key: t.adminKey, ...(body !== undefined ? { body } : {}) });

    const username = randomName('ada');
    const created = await call('POST', '/users', { username, displayName: 'Ada', password: randomPassword(), roles: ['viewer'] });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.hasPassword, true);
    assert.equal('password' in created.json, false);
    const userId = created.json.id as string;
    assertError(await call('POST', '/users', { username }), 409, 'conflict');
    assertError(await call('POST', '/users', { username: randomName('b'), password: 'short' }), 400, 'validation_failed');
    assert.equal((await call('PATCH', `/users/${userId}`, { displayName: 'Ada L.' })).json.displayName, 'Ada L.');
    const users = await call('GET', '/users');
    assert.deepEqual(users.json.items.map((u: { username: string }) => u.username).sort(), [username, 'root'].sort());

    const group = await call('POST', '/groups', { name: 'ops' });
    assert.equal(group.status, 201, group.text);
    const groupId = group.json.id as string;
    assertError(await call('POST', '/groups', { name: 'ops' }), 409, 'conflict');
    assert.equal((await call('PATCH', `/groups/${groupId}`, { name: 'operations' })).json.name, 'operations');
    assert.equal((await call('POST', `/groups/${groupId}/members`, { userId })).status, 204);
    assert.equal((await call('POST', `/groups/${groupId}/members`, { userId })).status, 204, 'adding again changes nothing');
    assert.deepEqual((await call('GET', `/groups/${groupId}/members`)).json.items.map((u: { id: string }) => u.id), [userId]);
    assert.equal((await call('GET', `/groups/${groupId}`)).json.name, 'operations');
    assert.equal((await call('GET', '/groups')).json.items.length, 1);

    const role = await call('POST', '/roles', { name: 'auditor', description: 'Reads the log', permissions: ['audit:read'] });
    assert.equal(role.status, 201, role.text);
    assert.deepEqual(role.json.permissions, ['audit:read']);
    assertError(await call('POST', '/roles', { name: 'editor', permissions: [] }), 409, 'conflict');
    assertError(await call('POST', '/roles', { name: 'bad', permissions: ['root:everything'] }), 400, 'validation_failed');
    assert.deepEqual((await call('PATCH', '/roles/auditor', { permissions: ['audit:read', 'apikeys:read'] })).json.permissions, ['apikeys:read', 'audit:read']);
    assertError(await call('PATCH', '/roles/viewer', { permissions: [] }), 409, 'conflict');
    assertError(await call('DELETE', '/roles/admin'), 409, 'conflict');
    assert.equal((await call('POST', '/roles/auditor/bindings', { principal: { type: 'group', id: groupId } })).status, 204);
    const bindings = await call('GET', '/roles/auditor/bindings');
    assert.deepEqual(bindings.json.items.map((b: { principal: unknown }) => b.principal), [{ type: 'group', id: groupId }]);
    assert.equal((await call('GET', '/roles/auditor')).json.builtin, false);
    assertError(await call('GET', '/roles/ghost'), 404, 'not_found');
    assert.equal((await call('DELETE', `/roles/auditor/bindings/group/${groupId}`)).status, 204);
    assertError(await call('DELETE', `/roles/auditor/bindings/group/${groupId}`), 404, 'not_found');
    assertError(await call('DELETE', `/roles/admin/bindings/user/${t.adminId}`), 409, 'conflict');
    assert.equal((await call('DELETE', '/roles/auditor')).status, 204);

    assert.equal((await call('DELETE', `/groups/${groupId}/members/${userId}`)).status, 204);
    assertError(await call('DELETE', `/groups/${groupId}/members/${userId}`), 404, 'not_found');
    assert.equal((await call('DELETE', `/groups/${groupId}`)).status, 204);
    assert.equal((await call('DELETE', `/users/${userId}`)).status, 204);
    assertError(await call('GET', `/users/${userId}`), 404, 'not_found');
    assertError(await call('GET', '/users/not-an-id'), 400, 'validation_failed');
  });

  it('answers another tenant\'s user and group ids exactly like unknown ids', async () => {
    const a = await h.tenant();
    const b = await h.tenant();
    const theirUser = await b.user(['viewer']);
    const theirGroup = await h.call({ method: 'POST', url: '/api/v1/groups', key: b.adminKey, body: { name: 'theirs' } });
    const ourGroup = await h.call({ method: 'POST', url: '/api/v1/groups', key: a.adminKey, body: { name: 'ours' } });
    const groupId = theirGroup.json.id as string;
    const unknownUser = 'usr_0000000000000000000000';
    const unknownGroup = 'grp_0000000000000000000000';
    const pairs: Array<[string, string, 'GET' | 'PATCH' | 'DELETE' | 'POST', string, string, unknown?]> = [
      [theirUser.id, unknownUser, 'GET', `/users/${theirUser.id}`, `/users/${unknownUser}`],
      [theirUser.id, unknownUser, 'PATCH', `/users/${theirUser.id}`, `/users/${unknownUser}`, { displayName: 'x' }],
      [theirUser.id, unknownUser, 'DELETE', `/users/${theirUser.id}`, `/users/${unknownUser}`],
      [groupId, unknownGroup, 'GET', `/groups/${groupId}`, `/groups/${unknownGroup}`],
      [groupId, unknownGroup, 'PATCH', `/groups/${groupId}`, `/groups/${unknownGroup}`, { name: 'mine' }],
      [groupId, unknownGroup, 'GET', `/groups/${groupId}/members`, `/groups/${unknownGroup}/members`],
      [groupId, unknownGroup, 'DELETE', `/groups/${groupId}`, `/groups/${unknownGroup}`],
      [theirUser.id, unknownUser, 'POST', `/groups/${ourGroup.json.id}/members`, `/groups/${ourGroup.json.id}/members`],
      [theirUser.id, unknownUser, 'POST', '/roles/viewer/bindings', '/roles/viewer/bindings'],
    ];
    for (const [theirs, unknown, method, crossUrl, unknownUrl, body] of pairs) {
      const payload = (id: string) =>
        body ?? (crossUrl.endsWith('/members') ? { userId: id } : crossUrl.endsWith('/bindings') ? { principal: { type: 'user', id } } : undefined);
      const cross = await h.call({ method, url: `/api/v1${crossUrl}`, key: a.adminKey, body: payload(theirs) });
      const none = await h.call({ method, url: `/api/v1${unknownUrl}`, key: a.adminKey, body: payload(unknown) });
      assert.equal(shape(assertError(cross, 404, 'not_found'), theirs), shape(assertError(none, 404, 'not_found'), unknown), `${method} ${crossUrl}`);
    }
    const still = await h.call({ method: 'GET', url: `/api/v1/users/${theirUser.id}`, key: b.adminKey });
    assert.equal(still.status, 200);
    assert.equal(still.json.displayName, null, 'untouched');
  });

  it('takes a group\'s permissions away mid-session on the next request', async () => {
    const t = await h.tenant();
    const password = randomPassword();
    const user = await t.user([], { password });
    const group = await h.call({ method: 'POST', url: '/api/v1/groups', key: t.adminKey, body: { name: 'builders' } });
    const groupId = group.json.id as string;
    await h.call({ method: 'POST', url: '/api/v1/roles/editor/bindings', key: t.adminKey, body: { principal: { type: 'group', id: groupId } } });
    await h.call({ method: 'POST', url: `/api/v1/groups/${groupId}/members`, key: t.adminKey, body: { userId: user.id } });
    const cookie = await h.login(t.name, user.username, password);
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/api-keys', cookie })).status, 200);
    const minted = await h.call({ method: 'POST', url: '/api/v1/api-keys', cookie, body: { name: 'from-session' } });
    assert.equal(minted.status, 201, minted.text);

    const removed = await h.call({ method: 'DELETE', url: `/api/v1/groups/${groupId}/members/${user.id}`, key: t.adminKey });
    assert.equal(removed.status, 204);
    const denied = await h.call({ method: 'GET', url: '/api/v1/api-keys', cookie });
    assert.equal(assertError(denied, 403, 'forbidden'), 'This action needs the permission apikeys:read.');
    const keyMe = await h.call({ method: 'GET', url: '/api/v1/me', key: minted.json.key });
    assert.deepEqual([keyMe.status, keyMe.json.permissions], [200, []], 'the user\'s keys lose them too');
  });

  it('shows a role change on the next request of a key', async () => {
    const t = await h.tenant();
    const user = await t.user(['viewer']);
    const { key } = await t.key(user.id);
    const meNow = async () => (await h.call({ method: 'GET', url: '/api/v1/me', key })).json.permissions as string[];
    assert.deepEqual(await meNow(), ['apikeys:read', 'connectors:read', 'tasks:read']);
    assertError(await h.call({ method: 'POST', url: '/api/v1/api-keys', key, body: { name: 'x' } }), 403, 'forbidden');

    await h.call({ method: 'POST', url: '/api/v1/roles/editor/bindings', key: t.adminKey, body: { principal: { type: 'user', id: user.id } } });
    assert.ok((await meNow()).includes('apikeys:write'));
    assert.equal((await h.call({ method: 'POST', url: '/api/v1/api-keys', key, body: { name: 'x' } })).status, 201);

    await h.call({ method: 'DELETE', url: `/api/v1/roles/editor/bindings/user/${user.id}`, key: t.adminKey });
    await h.call({ method: 'DELETE', url: `/api/v1/roles/viewer/bindings/user/${user.id}`, key: t.adminKey });
    assert.deepEqual(await meNow(), []);
    assertError(await h.call({ method: 'GET', url: '/api/v1/api-keys', key }), 403, 'forbidden');

    await h.call({ method: 'POST', url: '/api/v1/roles', key: t.adminKey, body: { name: 'reader', permissions: ['tasks:read'] } });
    await h.call({ method: 'POST', url: '/api/v1/roles/reader/bindings', key: t.adminKey, body: { principal: { type: 'user', id: user.id } } });
    assert.deepEqual(await meNow(), ['tasks:read']);
    await h.call({ method: 'PATCH', url: '/api/v1/roles/reader', key: t.adminKey, body: { permissions: ['audit:read'] } });
    assert.deepEqual(await meNow(), ['audit:read']);
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/audit', key })).status, 200);
  });

  it('opens tenant administration only to admins of the system tenant', async () => {
    const cookie = await h.login('default', 'admin', h.adminPassword);
    const current = await h.call({ method: 'GET', url: '/api/v1/tenants/current', cookie });
    assert.equal(current.json.name, 'default');
    const system = current.json.id as string;

    const name = randomName('acme');
    const created = await h.call({ method: 'POST', url: '/api/v1/tenants', cookie, body: { name } });
    assert.equal(created.status, 201, created.text);
    const id = created.json.id as string;
    assertError(await h.call({ method: 'POST', url: '/api/v1/tenants', cookie, body: { name } }), 409, 'conflict');
    assertError(await h.call({ method: 'POST', url: '/api/v1/tenants', cookie, body: { name: 'Not Valid' } }), 400, 'validation_failed');
    assert.ok((await h.call({ method: 'GET', url: '/api/v1/tenants', cookie })).json.items.some((x: { id: string }) => x.id === id));
    assert.equal((await h.call({ method: 'GET', url: `/api/v1/tenants/${id}`, cookie })).json.name, name);
    const renamed = await h.call({ method: 'PATCH', url: `/api/v1/tenants/${id}`, cookie, body: { name: `${name}-2` } });
    assert.equal(renamed.json.name, `${name}-2`);
    assertError(await h.call({ method: 'PATCH', url: `/api/v1/tenants/${system}`, cookie, body: { name: 'other' } }), 409, 'conflict');
    assertError(await h.call({ method: 'DELETE', url: `/api/v1/tenants/${system}`, cookie }), 409, 'conflict');

    const t = await h.tenant();
    const own = await h.call({ method: 'GET', url: '/api/v1/tenants/current', key: t.adminKey });
    assert.deepEqual([own.status, own.json.id], [200, t.id]);
    const refused = await h.call({ method: 'GET', url: '/api/v1/tenants', key: t.adminKey });
    assert.equal(assertError(refused, 403, 'forbidden'), 'This action needs the permission identity:admin in the system tenant.');
    assertError(await h.call({ method: 'DELETE', url: `/api/v1/tenants/${id}`, key: t.adminKey }), 403, 'forbidden');
    assertError(await h.call({ method: 'GET', url: `/api/v1/tenants/${t.id}`, key: t.adminKey }), 403, 'forbidden');

    assert.equal((await h.call({ method: 'DELETE', url: `/api/v1/tenants/${id}`, cookie })).status, 204);
    assertError(await h.call({ method: 'GET', url: `/api/v1/tenants/${id}`, cookie }), 404, 'not_found');
  });

  it('GET /me names the caller from warm caches and shows a tenant\'s new name at once after a rename', async () => {
    const t = await h.tenant();
    const first = await h.call({ method: 'GET', url: '/api/v1/me', key: t.adminKey });
    assert.equal(first.status, 200, first.text);
    // Warm: the same answer again, from the caches.
    const again = await h.call({ method: 'GET', url: '/api/v1/me', key: t.adminKey });
    assert.deepEqual(again.json, first.json);
    const name = (first.json.tenant as { name: string }).name;
    const cookie = await h.login('default', 'admin', h.adminPassword);
    const renamed = await h.call({ method: 'PATCH', url: `/api/v1/tenants/${t.id}`, cookie, body: { name: `${name}-renamed` } });
    assert.equal(renamed.status, 200, renamed.text);
    const after = await h.call({ method: 'GET', url: '/api/v1/me', key: t.adminKey });
    assert.equal((after.json.tenant as { name: string }).name, `${name}-renamed`);
    assert.deepEqual({ ...after.json, tenant: null }, { ...first.json, tenant: null });
  });

  it('the system tenant is marked in the database, never recognised by its name: a new "default" gets no system rights', async () => {
    const own = await createHttpHarness(dialect);
    try {
      const cookie = await own.login('default', 'admin', own.adminPassword);
      const system = (await own.call({ method: 'GET', url: '/api/v1/tenants/current', cookie })).json as { id: string; system: boolean };
      assert.equal(system.system, true);
      // Rename the system tenant as an earlier version let the library do, then create a new "default".
      await own.latchkey.database.db.updateTable('tenants').set({ name: 'ops' }).where('id', '=', system.id).execute();
      await own.latchkey.bus.publish(own.latchkey.database.db, { scope: 'tenant', tenantId: system.id });
      const impostor = await own.latchkey.identity.tenants.create({ name: 'default', initialAdmin: { username: 'admin' } });
      assert.equal(impostor.system, false);
      const impostorCookie = await own.login('default', 'admin', impostor.initialAdmin?.password ?? '');
      assertError(await own.call({ method: 'GET', url: '/api/v1/tenants', cookie: impostorCookie }), 403, 'forbidden');
      assertError(await own.call({ method: 'DELETE', url: `/api/v1/tenants/${system.id}`, cookie: impostorCookie }), 403, 'forbidden');
      // The real system tenant's admin keeps its rights under its new name.
      const real = await own.login('ops', 'admin', own.adminPassword);
      assert.equal((await own.call({ method: 'GET', url: '/api/v1/tenants', cookie: real })).status, 200);
      assert.equal((await own.latchkey.identity.tenants.system()).id, system.id);
      // And the service, not only the route, refuses to rename or delete it.
      await assert.rejects(own.latchkey.identity.tenants.update(system.id, { name: 'other' }), { code: 'conflict', message: 'The system tenant cannot be renamed.' });
      await assert.rejects(own.latchkey.identity.tenants.delete(system.id), { code: 'conflict', message: 'The system tenant cannot be deleted.' });
    } finally {
      await own.close();
    }
  });

  it('a new tenant gets its first user: initialAdmin with a generated password shown once, or a given one', async () => {
    const cookie = await h.login('default', 'admin', h.adminPassword);
    const name = randomName('fresh');
    const created = await h.call({ method: 'POST', url: '/api/v1/tenants', cookie, body: { name, initialAdmin: { username: 'owner' } } });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.headers['cache-control'], 'no-store');
    const admin = created.json.initialAdmin as { id: string; username: string; password: string };
    assert.equal(admin.username, 'owner');
    assert.match(admin.password, /^[0-9A-Za-z]{24}$/);
    // The generated password logs in as an admin of the new tenant, and is never shown again.
    const ownerCookie = await h.login(name, 'owner', admin.password);
    const me = await h.call({ method: 'GET', url: '/api/v1/me', cookie: ownerCookie });
    assert.equal(me.json.tenant.name, name);
    assert.ok((me.json.permissions as string[]).includes('identity:admin'));
    const user = await h.call({ method: 'GET', url: `/api/v1/users/${admin.id}`, cookie: ownerCookie });
    assert.ok(!user.text.includes(admin.password));
    const tenants = await h.call({ method: 'GET', url: '/api/v1/tenants', cookie });
    assert.ok(!tenants.text.includes(admin.password));

    const given = randomPassword();
    const second = await h.call({ method: 'POST', url: '/api/v1/tenants', cookie, body: { name: randomName('given'), initialAdmin: { username: 'ops', password: given } } });
    assert.equal(second.status, 201, second.text);
    assert.equal(second.json.initialAdmin.password, undefined, 'a given password is not echoed');
    assert.ok(!second.text.includes(given));

    // Bad input creates nothing: neither the tenant nor its user.
    const badName = randomName('bad');
    const bad = await h.call({ method: 'POST', url: '/api/v1/tenants', cookie, body: { name: badName, initialAdmin: { username: 'ops', password: 'short' } } });
    assertError(bad, 400, 'validation_failed');
    const names = ((await h.call({ method: 'GET', url: '/api/v1/tenants', cookie })).json.items as { name: string }[]).map((x) => x.name);
    assert.ok(!names.includes(badName));
    // A tenant admin of another tenant cannot create tenants at all.
    const t = await h.tenant();
    assertError(await h.call({ method: 'POST', url: '/api/v1/tenants', key: t.adminKey, body: { name: randomName('x'), initialAdmin: { username: 'me' } } }), 403, 'forbidden');
  });

  it('lists the audit log for audit:read, newest first, filtered by action and paged', async () => {
    const t = await h.tenant();
    const user = await t.user(['viewer']);
    const key = await t.key(user.id);
    await h.call({ method: 'DELETE', url: `/api/v1/api-keys/${key.id}`, key: t.adminKey });
    const all = await h.call({ method: 'GET', url: '/api/v1/audit', key: t.adminKey });
    assert.equal(all.status, 200, all.text);
    const actions = all.json.items.map((e: { action: string }) => e.action);
    for (const action of ['user.created', 'api_key.created', 'api_key.revoked']) assert.ok(actions.includes(action), action);
    assert.ok(all.json.items.every((e: { tenantId: string }) => e.tenantId === t.id));
    const revoked = await h.call({ method: 'GET', url: '/api/v1/audit?action=api_key.revoked', key: t.adminKey });
    assert.deepEqual(revoked.json.items.map((e: { target: string; actor: string }) => [e.target, e.actor]), [[key.id, `api_key:${t.adminKey.slice(3, 19)}`]]);
    const first = await h.call({ method: 'GET', url: '/api/v1/audit?limit=1', key: t.adminKey });
    assert.equal(first.json.items.length, 1);
    assert.equal(typeof first.json.next, 'string');
    const second = await h.call({ method: 'GET', url: `/api/v1/audit?limit=1&before=${first.json.next}`, key: t.adminKey });
    assert.notEqual(second.json.items[0].id, first.json.items[0].id);
    assertError(await h.call({ method: 'GET', url: '/api/v1/audit?limit=0', key: t.adminKey }), 400, 'validation_failed');
    assertError(await h.call({ method: 'GET', url: '/api/v1/audit?before=nonsense', key: t.adminKey }), 400, 'invalid_request');
  });

  it('describes both authentication schemes in OpenAPI and the security of every protected operation', async () => {
    const res = await h.call({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.status, 200);
    const doc = res.json as {
      components: { securitySchemes: Record<string, { type: string; in: string; name: string }> };
      paths: Record<string, Record<string, { security?: unknown; responses: Record<string, unknown>; description?: string }>>;
    };
    assert.deepEqual(doc.components.securitySchemes.apiKey && [doc.components.securitySchemes.apiKey.in, doc.components.securitySchemes.apiKey.name], ['header', 'Authorization']);
    assert.deepEqual(doc.components.securitySchemes.sessionCookie && [doc.components.securitySchemes.sessionCookie.in, doc.components.securitySchemes.sessionCookie.name], ['cookie', 'latchkey_session']);
    const operations = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith('/api/v1/'))
      .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op })));
    assert.ok(operations.length >= 35, `${operations.length} operations`);
    for (const { path, method, op } of operations) {
      if (path.startsWith('/api/v1/sessions') || path === '/api/v1/oauth/callback') {
        assert.deepEqual(op.security, [], `${method} ${path} is public`);
        continue;
      }
      assert.deepEqual(op.security, [{ apiKey: [] }, { sessionCookie: [] }], `${method} ${path}`);
      assert.ok(op.responses['401'] && op.responses['429'], `${method} ${path} documents 401 and 429`);
    }
    assert.match(String(doc.paths['/api/v1/tenants']?.get?.description), /system tenant \(the tenant Latchkey creates on first start, "default"; marked in the database/);
    assert.ok(doc.paths['/api/v1/api-keys']?.post?.responses['403']);
    assert.ok(doc.paths['/api/v1/api-keys/{id}/_roll']?.post);
  });
});
