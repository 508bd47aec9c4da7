// The leak test: issue keys, read them back, roll and revoke them, log in, and walk every error
// path, then search every answer, every log line and /metrics for every secret that went in.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { generateApiKey } from '../src/apikeys/index.js';
import { eachDialect } from './support/databases.js';
import { cookiePair, cookiePairs, createHttpHarness, csrfOf, randomAddress, randomName, randomPassword, type Answer, type HttpHarness } from './support/http.js';

/** Every form a key's secret takes: the whole key, the secret alone, and secret + checksum. */
function formsOf(key: string): string[] {
  const match = /^lk_k[0-9A-Za-z]{15}_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/.exec(key);
  assert.ok(match, 'a key');
  return [key, match[1] as string, `${match[1]}${match[2]}`];
}

await eachDialect('HTTP leak test', (dialect) => {
  let h: HttpHarness;
  before(async () => {
    h = await createHttpHarness(dialect);
  });
  after(async () => {
    await h?.close();
  });

  it('never shows a key, password or session token again: not in answers, logs or /metrics', async () => {
    const secrets = new Map<string, string>(); // secret -> what it is
    /** Answers that hand a secret out on purpose, with the one secret they may hold. */
    const issuing = new Map<Answer, string>();
    const keep = (label: string, ...values: string[]) => values.forEach((value) => secrets.set(value, label));
    const issue = (answer: Answer): { key: string; id: string } => {
      assert.ok([200, 201].includes(answer.status), answer.text);
      const key = answer.json.key as string;
      keep(`key ${answer.json.apiKey.id}`, ...formsOf(key));
      issuing.set(answer, key);
      return { key, id: answer.json.apiKey.id as string };
    };
    const login = async (tenant: string, username: string, password: string): Promise<string> => {
      const answer = await h.call({ method: 'POST', url: '/api/v1/sessions', body: { tenant, username, password } });
      assert.equal(answer.status, 201, answer.text);
      const cookie = cookiePairs(answer.headers['set-cookie']);
      keep('session token', cookiePair(answer.headers['set-cookie']).slice('latchkey_session='.length));
      keep('CSRF token', csrfOf(cookie) ?? 'no CSRF cookie');
      return cookie;
    };

    // The system admin logs in and makes a tenant; its admin key comes from the fixture.
    keep('bootstrap admin password', h.adminPassword);
    const systemCookie = await login('default', 'admin', h.adminPassword);
    const t = await h.tenant();
    keep('fixture admin key', ...formsOf(t.adminKey));
    const other = await h.tenant();
    keep('other tenant admin key', ...formsOf(other.adminKey));

    // Users with passwords, set at creation and changed later.
    const editorPassword = randomPassword();
    const newPassword = randomPassword();
    keep('editor password', editorPassword);
    keep('changed password', newPassword);
    const editor = await t.user(['editor'], { password: editorPassword });
    const viewer = await t.user(['viewer']);
    const editorCookie = await login(t.name, editor.username, editorPassword);

    // Keys: created by key and by session, listed, fetched, used, verified, rolled, revoked.
    const call = (options: Parameters<HttpHarness['call']>[0]) => h.call(options);
    const create = (as: { key?: string; cookie?: string }, body: Record<string, unknown>) =>
      call({ method: 'POST', url: '/api/v1/api-keys', ...as, body: { name: randomName('k'), ...body } });
    const a = issue(await create({ key: t.adminKey }, { ownerId: editor.id }));
    const b = issue(await create({ cookie: editorCookie }, { roles: ['viewer'] }));
    const limited = issue(await create({ cookie: editorCookie }, { rateLimit: { limit: 1, window: '1h' } }));
    const metered = issue(await create({ cookie: editorCookie }, { credits: { remaining: 1 } }));
    const c = issue(await create({ key: a.key }, { roles: ['viewer'], expiresIn: '1d', meta: { purpose: 'leak test' } }));
    const v = issue(await create({ key: t.adminKey }, { ownerId: viewer.id }));
    const theirs = issue(await create({ key: other.adminKey }, {}));
    await call({ method: 'GET', url: '/api/v1/api-keys', key: t.adminKey });
    await call({ method: 'GET', url: '/api/v1/api-keys', cookie: editorCookie });
    for (const { id } of [a, b, c, v]) await call({ method: 'GET', url: `/api/v1/api-keys/${id}`, key: t.adminKey });
    for (const { key } of [a, b, c, v]) await call({ method: 'GET', url: '/api/v1/me', key });
    await call({ method: 'GET', url: '/api/v1/me', cookie: editorCookie });
    for (const { key } of [a, b, c, v, theirs]) await call({ method: 'POST', url: '/api/v1/api-keys/_verify', key: t.adminKey, body: { key } });
    const rolledC = issue(await call({ method: 'POST', url: `/api/v1/api-keys/${c.id}/_roll`, key: t.adminKey, body: { gracePeriod: '1h' } }));
    const rolledV = issue(await call({ method: 'POST', url: `/api/v1/api-keys/${v.id}/_roll`, key: t.adminKey }));
    await call({ method: 'GET', url: '/api/v1/me', key: rolledV.key });
    await call({ method: 'GET', url: '/api/v1/me', key: c.key });
    await call({ method: 'GET', url: '/api/v1/me', key: rolledC.key });
    await call({ method: 'DELETE', url: `/api/v1/api-keys/${c.id}`, key: t.adminKey });
    await call({ method: 'PATCH', url: `/api/v1/users/${editor.id}`, key: t.adminKey, body: { password: newPassword } });

    // Every error path, with secrets where a careless handler would echo them.
    const statuses = new Set<number>();
    const expect = async (status: number, options: Parameters<HttpHarness['call']>[0]) => {
      const answer = await call(options);
      assert.equal(answer.status, status, `${options.method} ${options.url}: ${answer.text}`);
      statuses.add(status);
    };
    const unknown = generateApiKey().key;
    keep('unknown well-formed key', ...formsOf(unknown));
    const tampered = `${a.key.slice(0, -7)}${a.key.at(-7) === 'x' ? 'y' : 'x'}${a.key.slice(-6)}`;
    keep('tampered key', tampered);
    await expect(401, { method: 'GET', url: '/api/v1/me', key: unknown });
    await expect(401, { method: 'GET', url: '/api/v1/me', key: tampered });
    await expect(401, { method: 'GET', url: '/api/v1/me', key: c.key }); // revoked
    await expect(401, { method: 'GET', url: '/api/v1/me', key: v.key }); // rolled away
    await expect(401, { method: 'GET', url: '/api/v1/me', cookie: `latchkey_session=${'A'.repeat(43)}` });
    await expect(401, { method: 'GET', url: '/api/v1/me', headers: { authorization: `Token ${a.key}` } });
    await expect(401, { method: 'POST', url: '/api/v1/sessions', body: { tenant: t.name, username: editor.username, password: editorPassword } });
    await expect(401, { method: 'POST', url: '/api/v1/sessions', body: { tenant: t.name, username: viewer.username, password: newPassword } });
    await expect(400, { method: 'POST', url: '/api/v1/api-keys', key: t.adminKey, raw: `{"name": "${a.key}", "meta": ${a.key}}` });
    await expect(400, { method: 'POST', url: '/api/v1/api-keys', key: t.adminKey, body: { name: a.key.repeat(4) } });
    await expect(400, { method: 'POST', url: '/api/v1/api-keys', key: t.adminKey, body: { name: 'x', roles: [a.key] } });
    await expect(400, { method: 'POST', url: '/api/v1/api-keys', key: t.adminKey, body: { name: 'x', expiresIn: a.key } });
    await expect(400, { method: 'POST', url: '/api/v1/api-keys', key: t.adminKey, body: { name: 'x', [a.key]: true } });
    await expect(400, { method: 'POST', url: '/api/v1/api-keys/_verify', key: t.adminKey, body: { key: a.key, permissions: [a.key] } });
    await expect(400, { method: 'GET', url: `/api/v1/api-keys/${a.key}`, key: t.adminKey });
    await expect(400, { method: 'GET', url: `/api/v1/users/${a.key}`, key: t.adminKey });
    await expect(400, { method: 'GET', url: `/api/v1/audit?before=${a.key}`, key: t.adminKey });
    await expect(400, { method: 'POST', url: '/api/v1/users', key: t.adminKey, body: { username: randomName('u'), password: editorPassword.slice(0, 5) } });
    await expect(400, { method: 'POST', url: '/api/v1/sessions', body: { tenant: t.name, password: editorPassword } });
    await expect(403, { method: 'POST', url: '/api/v1/users', key: b.key, body: { username: randomName('u'), password: newPassword } });
    await expect(403, { method: 'POST', url: '/api/v1/api-keys', key: a.key, body: { name: 'x', roles: ['admin'] } });
    await expect(403, { method: 'GET', url: '/api/v1/tenants', key: t.adminKey });
    await expect(404, { method: 'GET', url: `/api/v1/api-keys/${theirs.id}`, key: t.adminKey });
    await expect(404, { method: 'GET', url: `/api/v1/nothing/here/${a.key}?token=${a.key}` });
    await expect(409, { method: 'POST', url: `/api/v1/api-keys/${c.id}/_roll`, key: t.adminKey });
    await expect(200, { method: 'GET', url: '/api/v1/me', key: limited.key });
    await expect(429, { method: 'GET', url: '/api/v1/me', key: limited.key }); // rate limit: 1 an hour
    await expect(200, { method: 'GET', url: '/api/v1/me', key: metered.key });
    await expect(429, { method: 'GET', url: '/api/v1/me', key: metered.key }); // credits: 1
    const address = randomAddress();
    for (let i = 0; i < 30; i++) await expect(401, { method: 'GET', url: '/api/v1/me', key: unknown, address });
    await expect(429, { method: 'GET', url: '/api/v1/me', key: unknown, address });
    await expect(200, { method: 'GET', url: '/api/v1/me', key: t.adminKey, address }); // valid credentials pass the throttle
    for (const status of [400, 401, 403, 404, 409, 429]) assert.ok(statuses.has(status), `walked ${status}`);

    // What an operator sees.
    await call({ method: 'GET', url: '/api/v1/audit?limit=500', key: t.adminKey });
    await call({ method: 'GET', url: '/api/v1/audit?limit=500', cookie: systemCookie });
    await call({ method: 'DELETE', url: '/api/v1/sessions/current', cookie: editorCookie });
    const metrics = await call({ method: 'GET', url: '/metrics' });
    assert.match(metrics.text, /latchkey_http_requests_total\{method="GET",route="\/api\/v1\/me",status_code="429"\}/);
    await call({ method: 'GET', url: '/openapi.json' });
    await h.latchkey.apiKeys.verifier.flush();

    const logs = h.logs();
    assert.match(logs, /"msg":"request completed"/, 'the log was captured');
    assert.ok(!logs.includes(a.key.slice(0, 20) + '_'), 'no key in a logged path');
    assert.ok(secrets.size >= 30, `${secrets.size} secrets`);
    for (const [secret, label] of secrets) {
      assert.ok(secret.length >= 20, label);
      assert.ok(!logs.includes(secret), `the log holds the ${label}`);
      for (const answer of h.answers) {
        // An issuing answer holds its own key (and only it) in `key`; a login sets its token as a cookie.
        const body = issuing.get(answer) === undefined ? answer.text : answer.text.replace(issuing.get(answer) as string, '');
        assert.ok(!body.includes(secret), `an answer body holds the ${label}: ${body.slice(0, 300)}`);
        const headers = { ...answer.headers, 'set-cookie': undefined };
        assert.ok(!JSON.stringify(headers).includes(secret), `an answer's headers hold the ${label}`);
      }
    }
    assert.ok(h.answers.length > 90, `${h.answers.length} answers searched`);
  });
});
