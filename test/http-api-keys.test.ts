// API keys over HTTP, end to end through createLatchkey on both databases: issuing, escalation,
// cross-tenant ids, expiry, revocation, rolling, /_verify, rate limits and credits under load,
// and per-address limits on failed authentication.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { generateApiKey } from '../src/apikeys/index.js';
import { AUTHENTICATION_FAILED } from '../src/http/index.js';
import { eachDialect } from './support/databases.js';
import { assertError, createHttpHarness, randomAddress, randomName, type Answer, type HttpHarness } from './support/http.js';

const HOUR = 3600_000;

/** A well-formed key (right shape and checksum) whose id no database holds. */
const unknownKey = (): string => generateApiKey().key;

const me = (h: HttpHarness, key: string, address?: string): Promise<Answer> =>
  h.call({ method: 'GET', url: '/api/v1/me', key, ...(address ? { address } : {}) });

function assertGeneric401(answer: Answer): void {
  assert.equal(assertError(answer, 401, 'unauthorized'), AUTHENTICATION_FAILED);
  assert.equal(answer.json.error.details, undefined);
}

/** The message with the id in it replaced, so two not-found answers can be compared. */
const shape = (message: string, id: string): string => message.replace(id, '<id>');

await eachDialect('HTTP API keys', (dialect) => {
  let h: HttpHarness;
  before(async () => {
    h = await createHttpHarness(dialect);
  });
  after(async () => {
    await h?.close();
  });

  it('issues a key once, then shows only metadata; revocation answers the tombstone', async () => {
    const t = await h.tenant();
    const user = await t.user(['editor']);
    const created = await h.call({
      method: 'POST',
      url: '/api/v1/api-keys',
      key: t.adminKey,
      body: {
        name: 'deploy',
        ownerId: user.id,
        roles: ['viewer'],
        expiresIn: '30d',
        rateLimit: { limit: 100, window: '1m' },
        credits: { remaining: 50, refill: { amount: 10, interval: 3_600_000 } },
        meta: { team: 'ops' },
      },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.headers['cache-control'], 'no-store');
    const { key, apiKey } = created.json;
    assert.match(key, /^lk_k[0-9A-Za-z]{15}_[0-9A-Za-z]{49}$/);
    assert.equal(apiKey.ownerId, user.id);
    assert.deepEqual(apiKey.roles, ['viewer']);
    assert.deepEqual(apiKey.rateLimit, { limit: 100, windowMs: 60_000 });
    assert.deepEqual(apiKey.credits, { remaining: 50, refill: { amount: 10, intervalMs: HOUR } });
    assert.equal(Date.parse(apiKey.expiresAt) - Date.parse(apiKey.createdAt), 30 * 24 * HOUR);
    assert.equal(apiKey.masked, `lk_${apiKey.id}_…${key.slice(-4)}`);

    const whoami = await me(h, key);
    assert.equal(whoami.status, 200, whoami.text);
    assert.deepEqual(whoami.json, {
      tenant: { id: t.id, name: t.name },
      user: { id: user.id, username: user.username },
      apiKey: { id: apiKey.id, name: 'deploy', masked: apiKey.masked },
      permissions: ['apikeys:read', 'connectors:read', 'tasks:read'],
    });

    const listed = await h.call({ method: 'GET', url: `/api/v1/api-keys?ownerId=${user.id}`, key: t.adminKey });
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.json.items.map((k: { id: string }) => k.id), [apiKey.id]);
    const fetched = await h.call({ method: 'GET', url: `/api/v1/api-keys/${apiKey.id}`, key: t.adminKey });
    assert.equal(fetched.status, 200);
    assert.equal(fetched.json.name, 'deploy');
    for (const answer of [listed, fetched]) assert.ok(!answer.text.includes(key.slice(20)), 'no secret in metadata');

    const revoked = await h.call({ method: 'DELETE', url: `/api/v1/api-keys/${apiKey.id}`, key: t.adminKey });
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.json.id, apiKey.id);
    assert.equal(typeof revoked.json.revokedAt, 'string');
    assertGeneric401(await me(h, key));
    const again = await h.call({ method: 'DELETE', url: `/api/v1/api-keys/${apiKey.id}`, key: t.adminKey });
    assert.equal(again.status, 200, 'revoking twice is not an error');
    assert.equal(again.json.revokedAt, revoked.json.revokedAt);
  });

  it('refuses a key with permissions beyond its owner (403 insufficient_permissions) and creates nothing', async () => {
    const t = await h.tenant();
    const editor = await t.user(['editor']);
    const { key } = await t.key(editor.id);
    const count = async () => (await h.call({ method: 'GET', url: `/api/v1/api-keys?ownerId=${editor.id}`, key: t.adminKey })).json.items.length;
    const before = await count();

    const own = await h.call({ method: 'POST', url: '/api/v1/api-keys', key, body: { name: 'more', roles: ['admin'] } });
    assertError(own, 403, 'insufficient_permissions');
    assert.match(own.json.error.message, /identity:admin/);
    const forOwner = await h.call({
      method: 'POST',
      url: '/api/v1/api-keys',
      key: t.adminKey,
      body: { name: 'more', roles: ['admin'], ownerId: editor.id },
    });
    assertError(forOwner, 403, 'insufficient_permissions');
    const forOther = await h.call({ method: 'POST', url: '/api/v1/api-keys', key, body: { name: 'theirs', ownerId: t.adminId } });
    assert.equal(assertError(forOther, 403, 'forbidden'), 'This action needs the permission identity:admin.');
    assert.equal(await count(), before, 'nothing was created');
  });

  it('never lets a key mint or roll a key that carries more than itself', async () => {
    const t = await h.tenant();
    const editor = await t.user(['editor']);
    const role = await h.call({
      method: 'POST',
      url: '/api/v1/roles',
      key: t.adminKey,
      body: { name: 'minter', permissions: ['apikeys:read', 'apikeys:write'] },
    });
    assert.equal(role.status, 201, role.text);
    const full = await t.key(editor.id);
    const viewer = await t.key(editor.id, { roles: ['viewer'] });
    const minter = await t.key(editor.id, { roles: ['minter'] });
    const keysOf = async () => (await h.call({ method: 'GET', url: `/api/v1/api-keys?ownerId=${editor.id}`, key: t.adminKey })).json.items.length;
    const before = await keysOf();

    const byViewer = await h.call({ method: 'POST', url: '/api/v1/api-keys', key: viewer.key, body: { name: 'x', roles: ['editor'] } });
    assert.equal(assertError(byViewer, 403, 'forbidden'), 'This action needs the permission apikeys:write.');
    for (const roles of [['editor'], ['viewer'], null]) {
      const res = await h.call({ method: 'POST', url: '/api/v1/api-keys', key: minter.key, body: { name: 'x', roles } });
      assertError(res, 403, 'insufficient_permissions');
      assert.match(res.json.error.message, /calling API key/);
    }
    assert.equal(await keysOf(), before, 'nothing was created');
    const within = await h.call({ method: 'POST', url: '/api/v1/api-keys', key: minter.key, body: { name: 'x', roles: ['minter'] } });
    assert.equal(within.status, 201, within.text);

    const roll = await h.call({ method: 'POST', url: `/api/v1/api-keys/${full.id}/_roll`, key: minter.key });
    assertError(roll, 403, 'insufficient_permissions');
    assert.equal((await me(h, full.key)).status, 200, 'the stronger key was not rolled');
    const self = await h.call({ method: 'POST', url: `/api/v1/api-keys/${minter.id}/_roll`, key: minter.key, body: {} });
    assert.equal(self.status, 200, self.text);
  });

  it('answers another tenant\'s key ids exactly like unknown ids, and leaves the key alone', async () => {
    const a = await h.tenant();
    const b = await h.tenant();
    const theirs = await b.key(b.adminId);
    const unknown = generateApiKey().id;
    for (const [method, suffix] of [['GET', ''], ['POST', '/_roll'], ['DELETE', '']] as const) {
      const cross = await h.call({ method, url: `/api/v1/api-keys/${theirs.id}${suffix}`, key: a.adminKey });
      const none = await h.call({ method, url: `/api/v1/api-keys/${unknown}${suffix}`, key: a.adminKey });
      const crossMessage = assertError(cross, 404, 'not_found');
      const noneMessage = assertError(none, 404, 'not_found');
      assert.equal(shape(crossMessage, theirs.id), shape(noneMessage, unknown), `${method} ${suffix}`);
      assert.deepEqual(Object.keys(cross.json.error), Object.keys(none.json.error));
    }
    const listed = await h.call({ method: 'GET', url: `/api/v1/api-keys?ownerId=${b.adminId}`, key: a.adminKey });
    assert.deepEqual(listed.json.items, []);
    assert.equal((await me(h, theirs.key)).status, 200, 'neither rolled nor revoked');
  });

  it('shows and changes only the caller\'s own keys without identity:admin', async () => {
    const t = await h.tenant();
    const ann = await t.user(['editor']);
    const bob = await t.user(['editor']);
    const annKey = await t.key(ann.id);
    const bobKey = await t.key(bob.id);
    const list = await h.call({ method: 'GET', url: '/api/v1/api-keys', key: annKey.key });
    assert.deepEqual(list.json.items.map((k: { ownerId: string }) => k.ownerId), [ann.id]);
    assertError(await h.call({ method: 'GET', url: `/api/v1/api-keys?ownerId=${bob.id}`, key: annKey.key }), 403, 'forbidden');
    const unknown = generateApiKey().id;
    for (const [method, suffix] of [['GET', ''], ['POST', '/_roll'], ['DELETE', '']] as const) {
      const other = await h.call({ method, url: `/api/v1/api-keys/${bobKey.id}${suffix}`, key: annKey.key });
      const none = await h.call({ method, url: `/api/v1/api-keys/${unknown}${suffix}`, key: annKey.key });
      assert.equal(shape(assertError(other, 404, 'not_found'), bobKey.id), shape(assertError(none, 404, 'not_found'), unknown));
    }
    assert.equal((await me(h, bobKey.key)).status, 200);
    const adminRevokes = await h.call({ method: 'DELETE', url: `/api/v1/api-keys/${bobKey.id}`, key: t.adminKey });
    assert.equal(adminRevokes.status, 200);
  });

  it('refuses unknown, malformed, expired, revoked and disabled-owner keys with the one generic 401', async () => {
    const t = await h.tenant();
    const user = await t.user(['viewer']);
    const expiring = await t.key(user.id, { expiresIn: '1h' });
    const revoked = await t.key(user.id);
    const owned = await t.key(user.id);
    assert.equal((await me(h, expiring.key)).status, 200);
    assert.equal((await h.call({ method: 'DELETE', url: `/api/v1/api-keys/${revoked.id}`, key: t.adminKey })).status, 200);

    const tampered = `${owned.key.slice(0, 30)}${owned.key[30] === 'a' ? 'b' : 'a'}${owned.key.slice(31)}`;
    const wrongSecret = `lk_${owned.id}_${generateApiKey().key.slice(20)}`;
    const answers = [
      await me(h, unknownKey()),
      await me(h, tampered),
      await me(h, wrongSecret),
      await me(h, 'not-a-key'),
      await h.call({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } }),
      await h.call({ method: 'GET', url: '/api/v1/me' }),
      await h.call({ method: 'GET', url: '/api/v1/me', cookie: 'latchkey_session=0123456789abcdefghijklmnopqrstuvwxyz' }),
      await me(h, revoked.key),
    ];
    h.clock.advance(HOUR + 1000);
    answers.push(await me(h, expiring.key));
    const disable = await h.call({ method: 'PATCH', url: `/api/v1/users/${user.id}`, key: t.adminKey, body: { disabled: true } });
    assert.equal(disable.status, 200, disable.text);
    answers.push(await me(h, owned.key));
    for (const answer of answers) assertGeneric401(answer);
    const bearer = await h.call({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${t.adminKey}` } });
    assert.equal(bearer.status, 200, 'Bearer is accepted too');
  });

  it('rolls without a grace period: the old secret stops at once, the id stays', async () => {
    const t = await h.tenant();
    const old = await t.key(t.adminId);
    const rolled = await h.call({ method: 'POST', url: `/api/v1/api-keys/${old.id}/_roll`, key: t.adminKey });
    assert.equal(rolled.status, 200, rolled.text);
    assert.equal(rolled.headers['cache-control'], 'no-store');
    assert.equal(rolled.json.apiKey.id, old.id);
    assert.notEqual(rolled.json.key, old.key);
    assert.ok(rolled.json.key.startsWith(`lk_${old.id}_`));
    assertGeneric401(await me(h, old.key));
    const fresh = await me(h, rolled.json.key);
    assert.equal(fresh.status, 200);
    assert.equal(fresh.json.apiKey.masked, `lk_${old.id}_…${rolled.json.key.slice(-4)}`, 'the masked form follows the roll');
  });

  it('rolls with a grace period: both secrets work until it ends', async () => {
    const t = await h.tenant();
    const old = await t.key(t.adminId);
    const rolled = await h.call({ method: 'POST', url: `/api/v1/api-keys/${old.id}/_roll`, key: t.adminKey, body: { gracePeriod: '10m' } });
    assert.equal(rolled.status, 200, rolled.text);
    assert.equal((await me(h, old.key)).status, 200, 'old secret within the grace period');
    assert.equal((await me(h, rolled.json.key)).status, 200);
    h.clock.advance(10 * 60_000 + 1000);
    assertGeneric401(await me(h, old.key));
    assert.equal((await me(h, rolled.json.key)).status, 200);
    const tooLong = await h.call({ method: 'POST', url: `/api/v1/api-keys/${old.id}/_roll`, key: t.adminKey, body: { gracePeriod: '31d' } });
    assertError(tooLong, 400, 'validation_failed');
    assert.equal(tooLong.json.error.details.fields[0].path, 'gracePeriod');
    await h.call({ method: 'DELETE', url: `/api/v1/api-keys/${old.id}`, key: t.adminKey });
    assertError(await h.call({ method: 'POST', url: `/api/v1/api-keys/${old.id}/_roll`, key: t.adminKey }), 409, 'conflict');
  });

  it('verifies keys of the caller\'s tenant through /_verify; another tenant\'s key is not_found and not charged', async () => {
    const a = await h.tenant();
    const b = await h.tenant();
    const editor = await a.user(['editor']);
    const key = await a.key(editor.id);
    const verify = (body: unknown, as = a.adminKey) => h.call({ method: 'POST', url: '/api/v1/api-keys/_verify', key: as, body });

    const ok = await verify({ key: key.key });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.valid, true);
    assert.equal(ok.json.code, 'valid');
    assert.equal(ok.json.keyId, key.id);
    assert.equal(ok.json.tenant, a.id);
    assert.equal(ok.json.owner, editor.id);
    assert.ok(ok.json.permissions.includes('apikeys:write'));
    const lacking = await verify({ key: key.key, permissions: ['identity:admin'] });
    assert.equal(lacking.json.code, 'insufficient_permissions');
    assert.equal(lacking.json.valid, false);

    const notFound = { valid: false, code: 'not_found', keyId: null, tenant: null, owner: null, permissions: [], expiresAt: null };
    const theirs = await b.key(b.adminId, { credits: { remaining: 1 } });
    assert.deepEqual((await verify({ key: theirs.key })).json, notFound);
    assert.deepEqual((await verify({ key: unknownKey() })).json, notFound);
    assert.deepEqual((await verify({ key: 'garbage' })).json, notFound);
    assert.equal((await me(h, theirs.key)).status, 200, 'the other tenant\'s credit was not spent');
    assertError(await me(h, theirs.key), 429, 'usage_exceeded');

    const metered = await a.key(editor.id, { credits: { remaining: 2 } });
    assert.equal((await verify({ key: metered.key })).json.remaining, 1);
    assert.equal((await verify({ key: metered.key })).json.remaining, 0);
    const spent = await verify({ key: metered.key });
    assert.equal(spent.json.code, 'usage_exceeded');
    assert.equal(spent.json.valid, false);

    await h.call({ method: 'DELETE', url: `/api/v1/api-keys/${key.id}`, key: a.adminKey });
    assert.equal((await verify({ key: key.key })).json.code, 'revoked');
    const editorKey = await a.key(editor.id);
    const refused = await verify({ key: editorKey.key }, editorKey.key);
    assert.equal(assertError(refused, 403, 'forbidden'), 'This action needs the permission apikeys:verify.');
  });

  it('admits no more than the rate limit under 50 concurrent GET /me; the rest are 429 with Retry-After', async () => {
    const t = await h.tenant();
    const { key } = await t.key(t.adminId, { rateLimit: { limit: 10, window: '1h' } });
    const answers = await Promise.all(Array.from({ length: 50 }, () => me(h, key)));
    const ok = answers.filter((a) => a.status === 200);
    assert.equal(ok.length, 10, 'exactly the limit within one window of one process');
    for (const answer of answers.filter((a) => a.status !== 200)) {
      assertError(answer, 429, 'rate_limited');
      const retry = Number(answer.headers['retry-after']);
      assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 3600, `Retry-After ${String(answer.headers['retry-after'])}`);
    }
    const once = await t.key(t.adminId, { rateLimit: { limit: 1, window: '1h' } });
    const head = await h.app.inject({ method: 'HEAD', url: '/api/v1/me', headers: { authorization: `ApiKey ${once.key}` } });
    assert.equal(head.statusCode, 200, 'HEAD is authenticated and counted once');
    assertError(await me(h, once.key), 429, 'rate_limited');
  });

  it('admits no more than the credits under 50 concurrent GET /me; the rest are 429 usage_exceeded', async () => {
    const t = await h.tenant();
    const { key } = await t.key(t.adminId, { credits: { remaining: 7, refill: { amount: 1, interval: '1h' } } });
    const answers = await Promise.all(Array.from({ length: 50 }, () => me(h, key)));
    assert.equal(answers.filter((a) => a.status === 200).length, 7);
    for (const answer of answers.filter((a) => a.status !== 200)) {
      assertError(answer, 429, 'usage_exceeded');
      assert.ok(Number(answer.headers['retry-after']) >= 1);
    }
    const both = await t.key(t.adminId, { rateLimit: { limit: 5, window: '1h' }, credits: { remaining: 20 } });
    const mixed = await Promise.all(Array.from({ length: 50 }, () => me(h, both.key)));
    assert.equal(mixed.filter((a) => a.status === 200).length, 5);
    const fetched = await h.call({ method: 'GET', url: `/api/v1/api-keys/${both.id}`, key: t.adminKey });
    // Five credits spent; this process may still hold one unused lease (at most a tenth of the balance).
    assert.ok(fetched.json.credits.remaining >= 13, `refused requests took no credit (${fetched.json.credits.remaining} left)`);
  });

  it('refuses every request that starts after a concurrent revocation answered', async () => {
    const t = await h.tenant();
    const target = await t.key(t.adminId);
    assert.equal((await me(h, target.key)).status, 200, 'cached before the race');
    let revokedAnswered = false;
    let startedAfter = 0;
    const results: Array<{ verify: boolean; afterRevoke: boolean; answer: Answer }> = [];
    // Ten clients in a loop, half on GET /me and half on /_verify, until each saw the revocation.
    const client = async (verify: boolean) => {
      for (let i = 0; i < 1000 && startedAfter < 20; i++) {
        const afterRevoke = revokedAnswered;
        const answer = verify
          ? await h.call({ method: 'POST', url: '/api/v1/api-keys/_verify', key: t.adminKey, body: { key: target.key } })
          : await me(h, target.key);
        results.push({ verify, afterRevoke, answer });
        if (afterRevoke) startedAfter++;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    };
    const revoke = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const answer = await h.call({ method: 'DELETE', url: `/api/v1/api-keys/${target.id}`, key: t.adminKey });
      revokedAnswered = true;
      return answer;
    })();
    const [revoked] = await Promise.all([revoke, ...Array.from({ length: 10 }, (_, i) => client(i % 2 === 1))]);
    assert.equal(revoked.status, 200, revoked.text);
    for (const { verify, afterRevoke, answer } of results) {
      if (verify) {
        assert.equal(answer.status, 200, answer.text);
        assert.ok(['valid', 'revoked'].includes(answer.json.code), answer.text);
        if (afterRevoke) assert.equal(answer.json.code, 'revoked', 'started after the revocation answered');
      } else {
        assert.ok([200, 401].includes(answer.status), answer.text);
        if (afterRevoke) assertGeneric401(answer);
      }
    }
    assert.ok(startedAfter >= 20, 'requests started after the revocation');
    assert.ok(results.some((r) => !r.afterRevoke && r.answer.status === 200 && !r.verify), 'requests were served before it');
    assertGeneric401(await me(h, target.key));
  });

  it('rate-limits failed authentications per client address, never a valid key from it', async () => {
    const t = await h.tenant();
    const address = randomAddress();
    for (let i = 0; i < 30; i++) assertGeneric401(await me(h, unknownKey(), address));
    const blocked = await me(h, unknownKey(), address);
    assertError(blocked, 429, 'rate_limited');
    assert.ok(Number(blocked.headers['retry-after']) >= 1);
    assert.equal((await me(h, t.adminKey, address)).status, 200, 'a valid key from that address passes');
    assertError(await me(h, unknownKey(), address), 429, 'rate_limited');
    assertGeneric401(await me(h, unknownKey(), randomAddress()));
    assert.equal((await me(h, t.adminKey, randomAddress())).status, 200, 'other addresses are not affected');
  });

  it('validates bodies, durations and ids with field details, echoing no value', async () => {
    const t = await h.tenant();
    const create = (body: unknown) => h.call({ method: 'POST', url: '/api/v1/api-keys', key: t.adminKey, body });
    const cases: Array<[unknown, string]> = [
      [{ name: 'k', expiresIn: 'soon' }, 'expiresIn'],
      [{ name: 'k', expiresIn: '10ms' }, 'expiresIn'],
      [{ name: 'k', rateLimit: { limit: 0, window: '1m' } }, 'rateLimit.limit'],
      [{ name: 'k', rateLimit: { limit: 5 } }, 'rateLimit.window'],
      [{ name: 'k', credits: { remaining: -1 } }, 'credits.remaining'],
      [{ name: 'k', credits: { remaining: 1, refill: { amount: 1, interval: '1ms' } } }, 'credits.refill.interval'],
      [{ name: 'k', roles: ['no such role!'] }, 'roles.0'],
      [{ name: 'k', ownerId: 'nobody' }, 'ownerId'],
      [{ name: 42 }, 'name'],
      [{}, 'name'],
    ];
    for (const [body, path] of cases) {
      const res = await create(body);
      assertError(res, 400, 'validation_failed');
      assert.equal(res.json.error.details.fields[0].path, path, res.text);
    }
    const missing = await create({ name: 'k', rateLimit: { limit: 5 } });
    assert.equal(missing.json.error.message, 'The request body is invalid: "rateLimit.window" is required.');
    const unknownRole = await create({ name: 'k', roles: ['ghost'] });
    assertError(unknownRole, 400, 'validation_failed');
    const badJson = await h.call({ method: 'POST', url: '/api/v1/api-keys', key: t.adminKey, raw: '{"name": ' });
    assertError(badJson, 400, 'invalid_request');
    assertError(await h.call({ method: 'GET', url: '/api/v1/api-keys/not-an-id', key: t.adminKey }), 400, 'validation_failed');
    assertError(await h.call({ method: 'GET', url: '/api/v1/api-keys?limit=0', key: t.adminKey }), 400, 'validation_failed');
    const ms = await create({ name: randomName('ms'), expiresIn: 90_000 });
    assert.equal(ms.status, 201, ms.text);
    assert.equal(Date.parse(ms.json.apiKey.expiresAt) - Date.parse(ms.json.apiKey.createdAt), 90_000);
  });
});
