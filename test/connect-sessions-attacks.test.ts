// Connect sessions under attack, on both databases: a token tampered with, moved to another tenant
// or used after it expired opens nothing; a session opens only its own connectors; bad input
// changes nothing; the database holds neither the token nor the end user's profile in clear.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { eachDialect } from './support/databases.js';
import { assertError, createHttpHarness, randomName, type HttpHarness } from './support/http.js';

const PUBLIC_URL = 'https://latchkey.example.com';

await eachDialect('connect sessions under attack', (dialect) => {
  let h: HttpHarness;
  before(async () => {
    h = await createHttpHarness(dialect, { LATCHKEY_PUBLIC_URL: PUBLIC_URL });
  });
  after(async () => {
    await h.close();
  });

  async function connector(key: string, tokenMode: 'shared' | 'per_user', name = randomName('c')): Promise<string> {
    const res = await h.call({
      method: 'POST',
      url: '/api/v1/connectors',
      key,
      body: {
        name,
        provider: 'oauth2',
        authType: 'oauth_authorization_code',
        tokenMode,
        config: { authorizationUrl: 'https://idp.example.com/authorize', tokenUrl: 'https://idp.example.com/token', clientId: 'client-1' },
        secrets: { clientSecret: `s-${randomBytes(16).toString('hex')}` },
      },
    });
    assert.equal(res.status, 201, res.text);
    return res.json.id as string;
  }

  const createSession = (key: string, body: unknown) => h.call({ method: 'POST', url: '/api/v1/connect-sessions', key, body });
  const page = (token: string) => h.call({ method: 'GET', url: `/connect?session=${encodeURIComponent(token)}` });
  /** Opens the page as a browser would (its form cookie and token), then posts the start form. */
  const startForm = async (token: string, connectorId: string, options: { formToken?: boolean } = {}) => {
    const opened = await page(token);
    const formCookie = /latchkey_connect_form=([^;]+)/.exec(String(opened.headers['set-cookie'] ?? ''))?.[1];
    const formToken = /name="form_token" value="([^"]+)"/.exec(opened.text)?.[1];
    const fields: Record<string, string> = { session: token, connector: connectorId };
    if (formToken !== undefined && options.formToken !== false) fields['form_token'] = formToken;
    return h.call({
      method: 'POST',
      url: '/connect/start',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(formCookie ? { cookie: `latchkey_connect_form=${formCookie}` } : {}) },
      raw: new URLSearchParams(fields).toString(),
    });
  };
  /** A post from another site: the session's token (the attacker's own), no form cookie, no form token. */
  const crossSite = (token: string, connectorId: string) =>
    h.call({
      method: 'POST',
      url: '/connect/start',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      raw: new URLSearchParams({ session: token, connector: connectorId }).toString(),
    });

  it('a tampered, foreign-tenant or expired token opens nothing; a session starts only its own connectors', async () => {
    const a = await h.tenant();
    const b = await h.tenant();
    const allowed = await connector(a.adminKey, 'per_user', 'Allowed <i>one</i>');
    const other = await connector(a.adminKey, 'per_user');
    const foreign = await connector(b.adminKey, 'per_user');
    const made = await createSession(a.adminKey, { endUser: { id: 'eu-1', displayName: '<script>x</script>' }, allowedConnectors: [allowed] });
    assert.equal(made.status, 201, made.text);
    const token = made.json.token as string;

    const listed = await page(token);
    assert.equal(listed.status, 200, listed.text);
    assert.ok(listed.text.includes(`value="${allowed}"`));
    assert.ok(!listed.text.includes(other), 'only the allowed connector is offered');
    assert.ok(listed.text.includes('Allowed &lt;i&gt;one&lt;/i&gt;') && listed.text.includes('&lt;script&gt;x&lt;/script&gt;'), 'names are escaped');
    assert.ok(!listed.text.includes('<script>x'), 'no markup from the application reaches the page');
    assert.equal(listed.headers['x-frame-options'], 'DENY');

    const started = await startForm(token, allowed);
    assert.equal(started.status, 303, started.text);
    assert.ok(String(started.headers.location).startsWith('https://idp.example.com/authorize?'));
    const cookie = String(started.headers['set-cookie']);
    assert.match(cookie, /^latchkey_connect=[A-Za-z0-9_-]{43}; Max-Age=\d+; Path=\/api\/v1\/oauth\/callback; HttpOnly; Secure; SameSite=Lax$/);

    // Login CSRF: someone else's browser made to post the attacker's session starts nothing.
    for (const forged of [await crossSite(token, allowed), await startForm(token, allowed, { formToken: false })]) {
      assert.equal(forged.status, 403, forged.text);
      assert.match(forged.text, /not opened in this browser/);
      assert.ok(!String(forged.headers['set-cookie'] ?? '').includes('latchkey_connect='), 'no flow was started');
    }

    for (const id of [other, foreign, 'connector_nope']) {
      const refused = await startForm(token, id);
      assert.equal(refused.status, 403, refused.text);
      assert.match(refused.text, /does not allow that connector/);
    }

    const secret = token.slice(-43);
    const variants = [
      `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`,
      `lkcs_${b.id}_${secret}`,
      secret,
      `${token}x`,
      '',
    ];
    for (const bad of variants) {
      const refused = await page(bad);
      assert.equal(refused.status, 401, bad);
      assert.match(refused.text, /invalid or has expired/);
      assert.equal((await startForm(bad, allowed)).status, 401);
    }

    h.clock.advance(31 * 60_000);
    assert.equal((await page(token)).status, 401, 'expired after 30 minutes');
    assert.equal((await startForm(token, allowed)).status, 401);
  });

  it('refuses bad sessions and writes nothing; the database holds neither the token nor the profile', async () => {
    const t = await h.tenant();
    const perUser = await connector(t.adminKey, 'per_user');
    const shared = await connector(t.adminKey, 'shared');
    const b = await h.tenant();
    const foreign = await connector(b.adminKey, 'per_user');
    const count = async () =>
      (await h.latchkey.database.db.selectFrom('objects').select('id').where('type', '=', 'connect_session').where('tenant_id', '=', t.id).execute()).length;

    let deep: unknown = 'x';
    for (let i = 0; i < 100; i++) deep = { d: deep };
    const bad: Array<[unknown, number, string]> = [
      [{ endUser: { id: 'a\u0000b' } }, 400, 'validation_failed'],
      [{ endUser: { id: '' } }, 400, 'validation_failed'],
      [{ endUser: { id: 'x'.repeat(256) } }, 400, 'validation_failed'],
      [{ endUser: { id: 'a', tags: deep } }, 400, 'validation_failed'],
      [{ endUser: { id: 'a', tags: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) } }, 400, 'validation_failed'],
      [{ endUser: { id: 'a', email: 'not an email' } }, 400, 'validation_failed'],
      [{ endUser: { id: 'a' }, allowedConnectors: [shared] }, 400, 'invalid_request'],
      [{ endUser: { id: 'a' }, allowedConnectors: [foreign] }, 404, 'not_found'],
      [{ endUser: { id: 'a' }, returnTo: 'https://evil.example.com/' }, 400, 'invalid_request'],
      [{ endUser: { id: 'a' }, returnTo: 'javascript:alert(1)', allowedOrigins: ['https://app.example.com'] }, 400, 'validation_failed'],
      [{ endUser: { id: 'a' }, allowedOrigins: ['https://app.example.com/path'] }, 400, 'validation_failed'],
      [{ endUser: { id: 'a' }, ttlMs: 25 * 60 * 60 * 1000 }, 400, 'validation_failed'],
      [{ endUser: { id: 'a' }, extra: true }, 400, 'validation_failed'],
    ];
    for (const [body, status, code] of bad) assertError(await createSession(t.adminKey, body), status, code);
    const none = await createSession(t.adminKey, { endUser: { id: 'a' }, allowedConnectors: [] });
    assertError(none, 400, 'validation_failed');
    assert.match(none.json.error.message, /"allowedConnectors" must name at least one connector \(leave it out to allow them all\)/);
    assert.equal(await count(), 0, 'nothing was written');

    const viewer = await t.user(['viewer']);
    const { key: viewerKey } = await t.key(viewer.id);
    assertError(await createSession(viewerKey, { endUser: { id: 'a' } }), 403, 'forbidden');

    const email = `${randomBytes(6).toString('hex')}@example.com`;
    const made = await createSession(t.adminKey, { endUser: { id: 'eu-2', email, displayName: 'Grace' }, allowedConnectors: [perUser] });
    assert.equal(made.status, 201, made.text);
    const rows = await h.latchkey.database.db.selectFrom('objects').selectAll().where('type', '=', 'connect_session').where('tenant_id', '=', t.id).execute();
    assert.equal(rows.length, 1);
    const stored = JSON.stringify(rows);
    assert.ok(!stored.includes(made.json.token.slice(-43)), 'the token is not stored');
    assert.ok(!stored.includes(email) && !stored.includes('Grace'), 'the profile is sealed');
    assert.ok(!h.logs().includes(made.json.token.slice(-43)), 'the token never reaches a log line');
    const audit = await h.call({ method: 'GET', url: '/api/v1/audit?action=connect_session.created', key: t.adminKey });
    assert.equal(audit.status, 200, audit.text);
    assert.ok(!audit.text.includes(made.json.token.slice(-43)));
  });
});
