// CSRF defence of the session cookie, end to end through createLatchkey on both databases: login
// sets a script-readable token bound to the session; every state-changing request made with the
// session cookie must send it in X-Latchkey-CSRF, on every route (the auth plugin checks it before
// any handler), while API key requests and reads need nothing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { eachDialect } from './support/databases.js';
import { assertError, createHttpHarness, csrfOf, randomAddress, randomName, randomPassword, type Answer, type HttpHarness } from './support/http.js';

const CSRF_FAILED =
  'A request made with the session cookie must send the X-Latchkey-CSRF header with the value of the latchkey_csrf cookie; reload the console or log in again.';

function setCookies(answer: Answer): string[] {
  const header = answer.headers['set-cookie'];
  return Array.isArray(header) ? header : [String(header)];
}

/** The session pair alone: a cookie jar another site's request would carry (it cannot read the CSRF cookie). */
function sessionOnly(cookie: string): string {
  return cookie.split('; ').filter((pair) => pair.startsWith('latchkey_session=')).join('; ');
}

await eachDialect('HTTP CSRF defence', (dialect) => {
  let h: HttpHarness;
  before(async () => {
    h = await createHttpHarness(dialect);
  });
  after(async () => {
    await h?.close();
  });

  async function member(roles = ['editor']) {
    const t = await h.tenant();
    const password = randomPassword();
    const user = await t.user(roles, { password });
    return { t, user, cookie: await h.login(t.name, user.username, password) };
  }

  async function keyCount(adminKey: string): Promise<number> {
    const list = await h.call({ method: 'GET', url: '/api/v1/api-keys', key: adminKey });
    assert.equal(list.status, 200, list.text);
    return (list.json.items as unknown[]).length;
  }

  it('login sets a CSRF cookie script can read (SameSite=Strict, the session\'s expiry) and logout clears it', async () => {
    const t = await h.tenant();
    const password = randomPassword();
    const user = await t.user([], { password });
    const login = await h.call({ method: 'POST', url: '/api/v1/sessions', body: { tenant: t.name, username: user.username, password } });
    assert.equal(login.status, 201, login.text);
    const cookies = setCookies(login);
    const csrf = cookies.find((c) => c.startsWith('latchkey_csrf='));
    const session = cookies.find((c) => c.startsWith('latchkey_session='));
    assert.ok(csrf && session, cookies.join('\n'));
    assert.match(csrf, /^latchkey_csrf=[0-9A-Za-z_-]{43}; /);
    assert.doesNotMatch(csrf, /HttpOnly/, 'the console reads it');
    assert.match(csrf, /; SameSite=Strict/);
    assert.match(csrf, /; Path=\//);
    assert.equal(/Expires=([^;]+)/.exec(csrf)?.[1], /Expires=([^;]+)/.exec(session)?.[1]);
    assert.ok(!login.text.includes(csrf.split(';')[0]!.split('=')[1]!), 'the token is only in the cookie');

    const pairs = cookies.map((c) => c.split(';')[0]).join('; ');
    const logout = await h.call({ method: 'DELETE', url: '/api/v1/sessions/current', cookie: pairs });
    assert.equal(logout.status, 204);
    assert.ok(setCookies(logout).some((c) => /^latchkey_csrf=; Max-Age=0/.test(c)), setCookies(logout).join('\n'));
  });

  it('refuses a cookie-authenticated POST, PATCH or DELETE without the token, before any handler runs; reads need none', async () => {
    const { t, cookie } = await member(['admin']);
    const bare = sessionOnly(cookie);
    const before = await keyCount(t.adminKey);

    assert.equal(assertError(await h.call({ method: 'POST', url: '/api/v1/api-keys', cookie: bare, body: { name: 'forged' } }), 403, 'csrf_failed'), CSRF_FAILED);
    assertError(await h.call({ method: 'POST', url: '/api/v1/api-keys', cookie, csrf: false, body: { name: 'forged' } }), 403, 'csrf_failed');
    assertError(await h.call({ method: 'POST', url: '/api/v1/groups', cookie: bare, body: { name: 'forged' } }), 403, 'csrf_failed');
    const minted = await h.call({ method: 'POST', url: '/api/v1/api-keys', key: t.adminKey, body: { name: 'victim' } });
    assertError(await h.call({ method: 'DELETE', url: `/api/v1/api-keys/${minted.json.apiKey.id}`, cookie: bare }), 403, 'csrf_failed');
    assertError(await h.call({ method: 'PATCH', url: `/api/v1/tenants/${t.id}`, cookie: bare, body: { name: randomName('x') } }), 403, 'csrf_failed');
    // A write without a body is refused the same way.
    assertError(await h.call({ method: 'POST', url: `/api/v1/api-keys/${minted.json.apiKey.id}/_roll`, cookie: bare }), 403, 'csrf_failed');
    assert.equal(await keyCount(t.adminKey), before + 1, 'no forged key was made');
    assert.equal((await h.call({ method: 'GET', url: `/api/v1/api-keys/${minted.json.apiKey.id}`, key: t.adminKey })).json.revokedAt, null, 'nor revoked');

    // Reads need no token; with the token every write works.
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/me', cookie: bare })).status, 200);
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/api-keys', cookie: bare })).status, 200);
    const made = await h.call({ method: 'POST', url: '/api/v1/api-keys', cookie, body: { name: 'mine' } });
    assert.equal(made.status, 201, made.text);
    const revoked = await h.call({ method: 'DELETE', url: `/api/v1/api-keys/${made.json.apiKey.id}`, cookie });
    assert.equal(revoked.status, 200, revoked.text);
  });

  it('API key requests need no token, even when a session cookie comes with them', async () => {
    const { t, cookie } = await member(['admin']);
    const created = await h.call({ method: 'POST', url: '/api/v1/api-keys', key: t.adminKey, body: { name: 'plain' } });
    assert.equal(created.status, 201, created.text);
    const withCookie = await h.call({ method: 'POST', url: '/api/v1/api-keys', key: t.adminKey, cookie: sessionOnly(cookie), body: { name: 'both' } });
    assert.equal(withCookie.status, 201, withCookie.text);
    const revoked = await h.call({ method: 'DELETE', url: `/api/v1/api-keys/${created.json.apiKey.id}`, key: t.adminKey });
    assert.equal(revoked.status, 200, revoked.text);
  });

  it('refuses another session\'s token, a planted cookie, a tampered token and malformed headers', async () => {
    const alice = await member();
    const bob = await member();
    const aliceSession = sessionOnly(alice.cookie);
    const aliceToken = csrfOf(alice.cookie)!;
    const bobToken = csrfOf(bob.cookie)!;
    const post = (headers: Record<string, string>, cookie = aliceSession) =>
      h.call({ method: 'POST', url: '/api/v1/api-keys', cookie, csrf: false, headers, body: { name: 'forged' } });

    // Bob's own valid token does not open Alice's session (cross-session, cross-tenant).
    assertError(await post({ 'x-latchkey-csrf': bobToken }), 403, 'csrf_failed');
    // A cookie an attacker plants (a sibling subdomain can set cookies) and a matching header: the
    // double submit alone proves nothing, the token must be the session's.
    const planted = randomBytes(32).toString('base64url');
    assertError(await post({ 'x-latchkey-csrf': planted }, `${aliceSession}; latchkey_csrf=${planted}`), 403, 'csrf_failed');
    // One character changed; truncated; doubled; case changed.
    const last = aliceToken.at(-1) === 'A' ? 'B' : 'A';
    for (const bad of [`${aliceToken.slice(0, -1)}${last}`, aliceToken.slice(0, -1), aliceToken + aliceToken, aliceToken.toUpperCase() === aliceToken ? aliceToken.toLowerCase() : aliceToken.toUpperCase()]) {
      assertError(await post({ 'x-latchkey-csrf': bad }), 403, 'csrf_failed');
    }
    // Empty, huge, and NUL bytes (after the token, and in place of its last character).
    assertError(await post({ 'x-latchkey-csrf': '' }), 403, 'csrf_failed');
    assertError(await post({ 'x-latchkey-csrf': 'x'.repeat(64 * 1024) }), 403, 'csrf_failed');
    assertError(await post({ 'x-latchkey-csrf': `${aliceToken}\u0000` }), 403, 'csrf_failed');
    assertError(await post({ 'x-latchkey-csrf': `${aliceToken.slice(0, -1)}\u0000` }), 403, 'csrf_failed');
    // The session's real token works.
    const ok = await post({ 'x-latchkey-csrf': aliceToken });
    assert.equal(ok.status, 201, ok.text);
  });

  it('a refused request counts as no failed authentication: the address is never throttled for it', async () => {
    const { cookie } = await member();
    const address = randomAddress();
    for (let i = 0; i < 40; i++) {
      assertError(await h.call({ method: 'POST', url: '/api/v1/api-keys', cookie: sessionOnly(cookie), address, body: { name: 'forged' } }), 403, 'csrf_failed');
    }
    const me = await h.call({ method: 'GET', url: '/api/v1/me', cookie, address });
    assert.equal(me.status, 200, me.text);
  });

  it('after logout the old session cookie and its token open nothing', async () => {
    const { cookie } = await member();
    assert.equal((await h.call({ method: 'DELETE', url: '/api/v1/sessions/current', cookie })).status, 204);
    assertError(await h.call({ method: 'POST', url: '/api/v1/api-keys', cookie, body: { name: 'after' } }), 401, 'unauthorized');
  });
});
