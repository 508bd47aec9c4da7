// The HTTP edge, end to end through createLatchkey on both databases: input every route refuses
// before any schema or database sees it (NUL characters, runaway nesting), empty JSON bodies, the
// client address behind a trusted proxy, and the failed-authentication throttle.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { LatchkeyError } from '../src/core/index.js';
import { SYSTEM_ACTOR } from '../src/identity/index.js';
import { generateApiKey } from '../src/apikeys/index.js';
import { eachDialect } from './support/databases.js';
import { assertError, createHttpHarness, randomAddress, randomName, randomPassword, type HttpHarness } from './support/http.js';

/** The proxy this file's server trusts; every other address (randomAddress gives 10.x) is not trusted. */
const PROXY = '192.0.2.10';
const NUL = '\u0000';
const unknownKey = (): string => generateApiKey().key;

/** JSON nested `depth` levels deep, as text (about 6 bytes a level). */
const nested = (depth: number): unknown => JSON.parse(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);

await eachDialect('HTTP edge', (dialect) => {
  let h: HttpHarness;
  before(async () => {
    h = await createHttpHarness(dialect, { LATCHKEY_TRUST_PROXY: `${PROXY},2001:db8:1::/48` });
  });
  after(async () => {
    await h?.close();
  });

  const me = (key: string | undefined, address: string, headers: Record<string, string> = {}) =>
    h.call({ method: 'GET', url: '/api/v1/me', ...(key === undefined ? {} : { key }), address, headers });

  it('refuses a NUL character in a login username or tenant with 400, unauthenticated, instead of a 500', async () => {
    const t = await h.tenant();
    const password = randomPassword();
    const user = await t.user([], { password });
    for (const body of [
      { tenant: t.name, username: `${user.username}${NUL}`, password },
      { tenant: `${t.name}${NUL}`, username: user.username, password },
      { tenant: t.name, username: user.username, password: `${password}${NUL}` },
    ]) {
      const answer = await h.call({ method: 'POST', url: '/api/v1/sessions', body });
      const message = assertError(answer, 400, 'validation_failed');
      assert.match(message, /^The request body is invalid: "(tenant|username|password)" must not contain a NUL character\.$/);
      assert.equal(answer.headers['set-cookie'], undefined);
    }
  });

  it('refuses a NUL character in display names, role descriptions, query strings and path parameters, storing nothing', async () => {
    const t = await h.tenant();
    const username = randomName('u');
    const created = await h.call({ method: 'POST', url: '/api/v1/users', key: t.adminKey, body: { username, displayName: `Pat${NUL}` } });
    assert.equal(assertError(created, 400, 'validation_failed'), 'The request body is invalid: "displayName" must not contain a NUL character.');
    const users = await h.call({ method: 'GET', url: '/api/v1/users', key: t.adminKey });
    assert.ok(!users.json.items.some((u: { username: string }) => u.username === username), 'no user was stored');

    const user = await t.user();
    const renamed = await h.call({ method: 'PATCH', url: `/api/v1/users/${user.id}`, key: t.adminKey, body: { displayName: `${NUL}` } });
    assertError(renamed, 400, 'validation_failed');
    assert.equal((await h.call({ method: 'GET', url: `/api/v1/users/${user.id}`, key: t.adminKey })).json.displayName, null);

    const role = randomName('r');
    const described = await h.call({ method: 'POST', url: '/api/v1/roles', key: t.adminKey, body: { name: role, description: `a${NUL}b`, permissions: [] } });
    assertError(described, 400, 'validation_failed');
    assertError(await h.call({ method: 'GET', url: `/api/v1/roles/${role}`, key: t.adminKey }), 404, 'not_found');

    const nulKey = await h.call({ method: 'POST', url: '/api/v1/api-keys', key: t.adminKey, raw: `{"name":"k","meta":{"a\\u0000":1}}` });
    assert.equal(assertError(nulKey, 400, 'validation_failed'), 'The request body is invalid: "meta" must not have a key with a NUL character.');

    const query = await h.call({ method: 'GET', url: '/api/v1/audit?before=%00', key: t.adminKey });
    assert.equal(assertError(query, 400, 'validation_failed'), 'The query string is invalid: "before" must not contain a NUL character.');
    const param = await h.call({ method: 'GET', url: '/api/v1/roles/admin%00', key: t.adminKey });
    assert.equal(assertError(param, 400, 'validation_failed'), 'The request path is invalid: "name" must not contain a NUL character.');
  });

  it('refuses a NUL character from library callers too, on both databases', async () => {
    const t = await h.tenant();
    const { identity } = h.latchkey;
    const refused = async (promise: Promise<unknown>, pattern: RegExp) => {
      await assert.rejects(promise, (err: unknown) => {
        assert.ok(err instanceof LatchkeyError, String(err));
        assert.equal(err.code, 'validation_failed');
        assert.match(err.message, pattern);
        return true;
      });
    };
    await refused(identity.users.create(SYSTEM_ACTOR, t.id, { username: randomName('u'), displayName: `a${NUL}` }), /"displayName" must not contain a NUL character/);
    await refused(identity.roles.create(SYSTEM_ACTOR, t.id, { name: randomName('r'), description: NUL, permissions: [] }), /"description" must not contain a NUL/);
    await refused(identity.sessions.login({ tenant: t.name, username: `root${NUL}`, password: randomPassword(), address: randomAddress() }), /"username" must not contain/);
  });

  it('refuses JSON nested 1,500 levels deep with 400 instead of a stack overflow (500)', async () => {
    const t = await h.tenant();
    const meta = nested(1500);
    const created = await h.call({ method: 'POST', url: '/api/v1/api-keys', key: t.adminKey, body: { name: 'deep', meta } });
    assert.ok(created.text.length < 1000);
    assert.equal(assertError(created, 400, 'validation_failed'), 'The request body must not be nested more than 64 levels deep.');
    const login = await h.call({ method: 'POST', url: '/api/v1/sessions', body: { tenant: t.name, username: 'root', password: nested(1500) } });
    assertError(login, 400, 'validation_failed');
    // 60 levels is deep but allowed: the meta schema decides.
    const shallow = await h.call({ method: 'POST', url: '/api/v1/api-keys', key: t.adminKey, body: { name: 'shallow', meta: { a: nested(60) } } });
    assert.equal(shallow.status, 201, shallow.text);
  });

  it('treats an empty body with content-type application/json as no body on DELETE and on optional-body POSTs', async () => {
    const t = await h.tenant();
    const empty = { raw: '', headers: { 'content-type': 'application/json' } };
    const rolled = await t.key(t.adminId);
    const roll = await h.call({ method: 'POST', url: `/api/v1/api-keys/${rolled.id}/_roll`, key: t.adminKey, ...empty });
    assert.equal(roll.status, 200, roll.text);
    const revoked = await t.key(t.adminId);
    const revoke = await h.call({ method: 'DELETE', url: `/api/v1/api-keys/${revoked.id}`, key: t.adminKey, ...empty });
    assert.equal(revoke.status, 200, revoke.text);

    const connector = await h.call({
      method: 'POST',
      url: '/api/v1/connectors',
      key: t.adminKey,
      body: {
        name: randomName('oauth2'),
        provider: 'oauth2',
        authType: 'oauth_authorization_code',
        tokenMode: 'per_user',
        config: { authorizationUrl: 'https://idp.invalid/authorize', tokenUrl: 'https://idp.invalid/token', clientId: 'app', scopes: 'read' },
        secrets: { clientSecret: randomBytes(16).toString('hex') },
      },
    });
    assert.equal(connector.status, 201, connector.text);
    const id = connector.json.id as string;
    const authorize = await h.call({ method: 'POST', url: `/api/v1/connectors/${id}/oauth/authorize`, key: t.adminKey, ...empty });
    assert.equal(authorize.status, 200, authorize.text);
    assert.match(authorize.json.authorizationUrl, /^https:\/\/idp\.invalid\/authorize\?/);
    assertError(await h.call({ method: 'POST', url: `/api/v1/connectors/${id}/token`, key: t.adminKey, ...empty }), 404, 'not_connected');
    const disconnect = await h.call({ method: 'DELETE', url: `/api/v1/connectors/${id}/connection`, key: t.adminKey, ...empty });
    assert.ok([204, 404].includes(disconnect.status), disconnect.text);
    assert.notEqual(disconnect.json?.error?.code, 'invalid_request');

    const password = randomPassword();
    const user = await t.user([], { password });
    const cookie = await h.login(t.name, user.username, password);
    const logout = await h.call({ method: 'DELETE', url: '/api/v1/sessions/current', cookie, ...empty });
    assert.equal(logout.status, 204, logout.text);
    assertError(await h.call({ method: 'GET', url: '/api/v1/me', cookie }), 401, 'unauthorized');

    // A body that is there must still be JSON.
    assertError(await h.call({ method: 'POST', url: `/api/v1/api-keys/${rolled.id}/_roll`, key: t.adminKey, raw: ' ' }), 400, 'invalid_request');
  });

  it('says "is required" when a login has no tenant', async () => {
    const answer = await h.call({ method: 'POST', url: '/api/v1/sessions', body: { username: 'admin', password: randomPassword() } });
    assert.equal(assertError(answer, 400, 'validation_failed'), 'The request body is invalid: "tenant" is required.');
    await assert.rejects(h.latchkey.identity.sessions.login({ username: 'admin', password: 'x', address: randomAddress() } as never), {
      code: 'validation_failed',
      message: 'The login is invalid: "tenant" is required.',
    });
  });

  it('still admits a valid key and a valid session after 30 failed authentications from their address', async () => {
    const t = await h.tenant();
    const password = randomPassword();
    const user = await t.user([], { password });
    const cookie = await h.login(t.name, user.username, password);
    const address = randomAddress();
    for (let i = 0; i < 30; i++) assertError(await me(unknownKey(), address), 401, 'unauthorized');
    assertError(await me(unknownKey(), address), 429, 'rate_limited');

    assert.equal((await me(t.adminKey, address)).status, 200, 'a valid key passes');
    const session = await h.call({ method: 'GET', url: '/api/v1/me', cookie, address });
    assert.equal(session.status, 200, session.text);
    assert.equal(session.json.user.id, user.id);
    // Failures from there are still refused, and valid credentials did not clear them.
    assertError(await me(unknownKey(), address), 429, 'rate_limited');
    assertError(await h.call({ method: 'GET', url: '/api/v1/me', cookie: 'latchkey_session=nope', address }), 429, 'rate_limited');
  });

  it('ignores X-Forwarded-For from a hop it does not trust', async () => {
    const address = randomAddress();
    for (let i = 0; i < 30; i++) assertError(await me(unknownKey(), address, { 'x-forwarded-for': randomAddress() }), 401, 'unauthorized');
    assertError(await me(unknownKey(), address, { 'x-forwarded-for': randomAddress() }), 429, 'rate_limited');
    assertError(await me(unknownKey(), randomAddress(), { 'x-forwarded-for': address }), 401, 'unauthorized');
  });

  it('throttles each client behind a trusted proxy by its X-Forwarded-For address', async () => {
    const t = await h.tenant();
    const client = randomAddress();
    const neighbour = randomAddress();
    const via = (who: string) => ({ 'x-forwarded-for': `${randomAddress()}, ${who}` });
    for (let i = 0; i < 30; i++) assertError(await me(unknownKey(), PROXY, via(client)), 401, 'unauthorized');
    assertError(await me(unknownKey(), PROXY, via(client)), 429, 'rate_limited');
    assertError(await me(unknownKey(), PROXY, via(neighbour)), 401, 'unauthorized');
    assertError(await me(unknownKey(), '2001:db8:1::7', via(neighbour)), 401, 'unauthorized');
    assertError(await me(unknownKey(), client), 429, 'rate_limited');
    assert.equal((await me(t.adminKey, PROXY, via(client))).status, 200);

    // Logins see the client too: its failures do not count against the proxy's other clients.
    const password = randomPassword();
    const user = await t.user([], { password });
    const login = (who: string, pw: string) =>
      h.call({ method: 'POST', url: '/api/v1/sessions', address: PROXY, headers: via(who), body: { tenant: t.name, username: user.username, password: pw } });
    for (let i = 0; i < 5; i++) assertError(await login(client, randomPassword()), 401, 'unauthorized');
    assertError(await login(client, password), 429, 'rate_limited');
    assert.equal((await login(neighbour, password)).status, 201);
  });
});
