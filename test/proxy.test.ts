// The proxy, on both databases: a real upstream (Fastify on 127.0.0.1) and a real authorization
// server (oidc-provider) whose tokens the upstream checks. Every auth type gets its credential
// injected and nothing of the caller's; per end user the upstream sees that end user's account; a
// refused token is refreshed exactly once however many calls hit the 401 together; the path cannot
// climb out of the API base URL; bodies stream both ways.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { eachDialect } from './support/databases.js';
import { assertError, createHttpHarness, type HttpHarness } from './support/http.js';
import { startOidcProvider, type TestProvider } from './support/oidc-provider.js';

const secret = (prefix: string) => `${prefix}-${randomBytes(18).toString('base64url')}`;

let op: TestProvider;
let upstream: FastifyInstance;
let upstreamUrl: string;
const seen: Array<{ method: string; url: string; headers: Record<string, unknown>; body: string }> = [];
/** Tokens the upstream refuses once (as if the provider revoked them early). */
const refuseOnce = new Set<string>();
let limitedLeft = 0;
/** Calls of /slow in flight at the upstream, and the most at once since the last reset. */
const slow = { inFlight: 0, most: 0 };
/** Requests to /hold, which the upstream never answers: each resolves `closed` when its socket closes. */
const held: Array<{ closed: Promise<void> }> = [];
const BIG = randomBytes(1024 * 1024);
const GZIPPED = gzipSync(BIG);

before(async () => {
  op = await startOidcProvider();
  upstream = Fastify();
  upstream.removeAllContentTypeParsers();
  upstream.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 10 * 1024 * 1024 }, (_req, body, done) => done(null, (body as Buffer).toString('latin1')));
  upstream.get('/me', async (request, reply) => {
    const token = /^Bearer (.+)$/.exec(String(request.headers.authorization ?? ''))?.[1];
    if (!token) return reply.code(401).send({ error: 'no token' });
    if (refuseOnce.delete(token)) return reply.code(401).send({ error: 'refused' });
    const found = await op.provider.AccessToken.find(token);
    if (!found) return reply.code(401).send({ error: 'invalid token' });
    return { sub: found.accountId };
  });
  upstream.get('/big', async (_request, reply) => reply.header('content-type', 'application/octet-stream').header('set-cookie', 'upstream=1').send(BIG));
  // A provider that compresses whatever it was asked: the bytes pass through as they are, labelled.
  upstream.get('/gz', async (_request, reply) => reply.header('content-type', 'application/octet-stream').header('content-encoding', 'gzip').send(GZIPPED));
  upstream.get('/limited', async (_request, reply) => {
    if (limitedLeft > 0) {
      limitedLeft--;
      return reply.code(429).header('retry-after', '0').send({ error: 'slow down' });
    }
    return { ok: true };
  });
  upstream.get('/slow', async () => {
    slow.inFlight++;
    slow.most = Math.max(slow.most, slow.inFlight);
    await new Promise((resolve) => setTimeout(resolve, 100));
    slow.inFlight--;
    return { ok: true };
  });
  upstream.get('/hold', (request) => {
    held.push({ closed: new Promise<void>((resolve) => request.raw.socket.once('close', () => resolve())) });
    return new Promise(() => {});
  });
  upstream.all('/api/*', async (request, reply) => {
    seen.push({ method: request.method, url: request.url, headers: request.headers, body: typeof request.body === 'string' ? request.body : '' });
    return reply.code(request.url.includes('teapot') ? 418 : 200).header('set-cookie', 'session=upstream').header('x-upstream', 'yes').send({ ok: true });
  });
  await upstream.listen({ host: '127.0.0.1', port: 0 });
  upstreamUrl = `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`;
});
after(async () => {
  await upstream.close();
  await op.stop();
});

await eachDialect('the proxy', (dialect) => {
  let h: HttpHarness;
  before(async () => {
    h = await createHttpHarness(dialect, { LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1', LATCHKEY_EGRESS_ALLOW: '127.0.0.1/32' });
  });
  after(async () => {
    await h.close();
  });

  const connector = async (key: string, body: Record<string, unknown>) => {
    const res = await h.call({ method: 'POST', url: '/api/v1/connectors', key, body: { name: secret('c'), ...body } });
    assert.equal(res.status, 201, res.text);
    return res.json.id as string;
  };
  const proxied = (key: string, connectorId: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}) =>
    h.call({
      method: (options.method ?? 'GET') as 'GET',
      url: `/api/v1/connectors/${connectorId}/proxy${path}`,
      key,
      headers: options.headers ?? {},
      ...(options.body !== undefined ? { raw: options.body } : {}),
    });

  it('injects the credential of every auth type and nothing of the caller\'s; passes the rest through', async () => {
    const t = await h.tenant();
    const apiKey = secret('key');
    const header = await connector(t.adminKey, { provider: 'http', authType: 'api_key', config: { apiBaseUrl: `${upstreamUrl}/api`, name: 'X-Api-Key' }, secrets: { apiKeyValue: apiKey } });
    const query = await connector(t.adminKey, { provider: 'http', authType: 'api_key', config: { apiBaseUrl: `${upstreamUrl}/api`, in: 'query', name: 'api_key' }, secrets: { apiKeyValue: apiKey } });
    const [username, password] = [secret('user'), secret('pw')];
    const basic = await connector(t.adminKey, { provider: 'http', authType: 'basic', config: { apiBaseUrl: `${upstreamUrl}/api` }, secrets: { username, password } });
    const token = secret('bearer');
    const bearer = await connector(t.adminKey, { provider: 'http', authType: 'bearer', config: { apiBaseUrl: `${upstreamUrl}/api` }, secrets: { token } });

    seen.length = 0;
    const res = await proxied(t.adminKey, header, '/items/1?user=U1&q=a%20b', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-custom': 'kept', cookie: 'latchkey_session=abc', connection: 'keep-alive, x-custom', 'latchkey-retries': '0' },
      body: '{"hello":"world"}',
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['x-upstream'], 'yes');
    assert.equal(res.headers['set-cookie'], undefined, 'the provider sets no cookie on Latchkey\'s origin');
    const got = seen.at(-1);
    assert.ok(got);
    assert.equal(got.method, 'POST');
    assert.equal(got.url, '/api/items/1?user=U1&q=a%20b', 'the query goes through untouched');
    assert.equal(got.body, '{"hello":"world"}');
    assert.equal(got.headers['x-api-key'], apiKey);
    assert.equal(got.headers['x-custom'], 'kept');
    assert.equal(got.headers['authorization'], undefined, 'the caller\'s Latchkey key never reaches the provider');
    assert.equal(got.headers['cookie'], undefined);
    assert.equal(got.headers['latchkey-retries'], undefined);

    await proxied(t.adminKey, query, '/list?page=2');
    assert.equal(new URL(seen.at(-1)?.url ?? '', upstreamUrl).searchParams.get('api_key'), apiKey);
    assert.equal(new URL(seen.at(-1)?.url ?? '', upstreamUrl).searchParams.get('page'), '2');
    await proxied(t.adminKey, basic, '/x');
    assert.equal(seen.at(-1)?.headers['authorization'], `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`);
    const teapot = await proxied(t.adminKey, bearer, '/teapot');
    assert.equal(teapot.status, 418, 'the provider\'s status passes through');
    assert.equal(seen.at(-1)?.headers['authorization'], `Bearer ${token}`);

    // A path never climbs out of the API base URL: refused by the proxy (encoded forms), or already
    // resolved by the URL parser to a route that is not the proxy's; the upstream sees none of them.
    const before = seen.length;
    for (const bad of ['/a/%2F..%2Fb', '/x/%2e%2e%2fadmin', '/a/..%5Cb']) {
      const answer = await proxied(t.adminKey, header, bad);
      assert.equal(answer.status, 400, `${bad}: ${answer.text}`);
      assertError(answer, 400, 'invalid_request');
    }
    for (const bad of ['/../admin', '/a/./../../b', '/%2e%2e/admin', '/%2E./x']) {
      const answer = await proxied(t.adminKey, header, bad);
      assert.ok(answer.status === 400 || answer.status === 404, `${bad}: ${answer.status}`);
    }
    assert.equal(seen.length, before, 'no climbing request reached the upstream');
    const viewer = await t.user(['viewer']);
    const { key: viewerKey } = await t.key(viewer.id);
    assertError(await proxied(viewerKey, header, '/x'), 403, 'forbidden');
    const other = await h.tenant();
    assertError(await proxied(other.adminKey, header, '/x'), 404, 'not_found');
    for (const value of [apiKey, password, token]) assert.ok(!h.logs().includes(value), 'no credential in the log');
  });

  it('calls as each end user with their own token; refreshes a refused token exactly once under 100 concurrent calls', async () => {
    const t = await h.tenant();
    const client = op.clients.basic;
    const id = await connector(t.adminKey, {
      provider: 'oauth2',
      authType: 'oauth_authorization_code',
      tokenMode: 'per_user',
      config: { authorizationUrl: op.authorizationUrl, tokenUrl: op.tokenUrl, clientId: client.clientId, apiBaseUrl: upstreamUrl },
      secrets: { clientSecret: client.clientSecret },
    });
    const grants = new Map<string, string>();
    for (const endUser of ['alice', 'bob']) {
      const grant = await op.mintGrant({ accountId: `${endUser}-at-idp`, scope: 'openid offline_access api:read' });
      grants.set(endUser, grant.accessToken);
      await h.latchkey.oauth.connections.save(t.id, id, { endUserId: endUser }, {
        accessToken: grant.accessToken,
        refreshToken: grant.refreshToken,
        tokenType: 'Bearer',
        expiresAt: new Date(Date.now() + 3600_000).toISOString(),
      });
    }
    for (const endUser of ['alice', 'bob']) {
      const me = await proxied(t.adminKey, id, '/me', { headers: { 'latchkey-end-user': endUser } });
      assert.equal(me.status, 200, me.text);
      assert.deepEqual(me.json, { sub: `${endUser}-at-idp` });
    }
    assertError(await proxied(t.adminKey, id, '/me'), 404, 'not_connected');

    op.resetCounters();
    refuseOnce.add(grants.get('alice') as string);
    const answers = await Promise.all(Array.from({ length: 100 }, () => proxied(t.adminKey, id, '/me', { headers: { 'latchkey-end-user': 'alice' } })));
    const statuses = answers.map((a) => a.status);
    assert.ok(statuses.every((s) => s === 200), `every call succeeds after the refresh: ${JSON.stringify(statuses.filter((s) => s !== 200))}`);
    assert.equal(op.counters.refresh, 1, 'one refresh for every call that met the 401');
    assert.deepEqual(answers[0]?.json, { sub: 'alice-at-idp' });

    // Every proxied call and every token handed out is in the audit log: who, for which end user,
    // which connector, the outcome; never a token.
    const token = await h.call({ method: 'POST', url: `/api/v1/connectors/${id}/token`, key: t.adminKey, headers: { 'latchkey-end-user': 'bob' } });
    assert.equal(token.status, 200, token.text);
    const audit = await h.call({ method: 'GET', url: `/api/v1/audit?action=connection.proxied&target=${id}&limit=500`, key: t.adminKey });
    assert.equal(audit.status, 200, audit.text);
    const calls = audit.json.items as Array<{ actor: string; details: Record<string, unknown> }>;
    assert.equal(calls.length, 103, 'one call per end user before the burst, the refused one, a hundred in the burst');
    // A call refused before the provider is recorded too, with its error code instead of a status.
    const refused = calls.filter((c) => c.details.error !== undefined);
    assert.equal(refused.length, 1, JSON.stringify(refused));
    assert.deepEqual(Object.keys(refused[0]?.details ?? {}).sort(), ['error', 'method', 'path', 'userId']);
    assert.equal(refused[0]?.details.error, 'not_connected');
    assert.equal(refused[0]?.details.path, '/me');
    assert.ok(calls.some((c) => c.details.refreshed === true));
    assert.deepEqual(calls.at(-1)?.details, { endUserId: 'alice', method: 'GET', path: '/me', status: 200 });
    assert.match(calls[0]?.actor ?? '', /^api_key:/);
    const issued = await h.call({ method: 'GET', url: `/api/v1/audit?action=connection.token_issued&target=${id}`, key: t.adminKey });
    assert.equal(issued.json.items.length, 1);
    assert.equal(issued.json.items[0].details.endUserId, 'bob');
    for (const secretToken of [...grants.values(), token.json.accessToken as string]) {
      assert.ok(!audit.text.includes(secretToken) && !issued.text.includes(secretToken), 'no token in the audit log');
    }
  });

  it('sends at most LATCHKEY_OUTBOUND_CONCURRENCY calls to one connector at once (default 10); the rest wait and are answered', async () => {
    const burst = async (harness: HttpHarness, calls: number) => {
      const t = await harness.tenant();
      const created = await harness.call({ method: 'POST', url: '/api/v1/connectors', key: t.adminKey, body: { name: secret('c'), provider: 'http', authType: 'bearer', config: { apiBaseUrl: upstreamUrl }, secrets: { token: secret('t') } } });
      assert.equal(created.status, 201, created.text);
      slow.most = 0;
      const answers = await Promise.all(Array.from({ length: calls }, () => harness.call({ method: 'GET', url: `/api/v1/connectors/${created.json.id as string}/proxy/slow`, key: t.adminKey })));
      assert.deepEqual(answers.map((a) => a.status), Array.from({ length: calls }, () => 200));
      return slow.most;
    };
    assert.equal(await burst(h, 15), 10, 'the default');
    const two = await createHttpHarness(dialect, { LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1', LATCHKEY_EGRESS_ALLOW: '127.0.0.1/32', LATCHKEY_OUTBOUND_CONCURRENCY: '2' });
    try {
      assert.equal(await burst(two, 6), 2);
    } finally {
      await two.close();
    }
  });

  it('streams a large body, passes 429 through unless asked to retry, and refuses what the egress policy does not allow', async () => {
    const t = await h.tenant();
    const id = await connector(t.adminKey, { provider: 'http', authType: 'bearer', config: { apiBaseUrl: upstreamUrl }, secrets: { token: secret('t') } });
    const res = await h.app.inject({ method: 'GET', url: `/api/v1/connectors/${id}/proxy/big`, headers: { authorization: `ApiKey ${t.adminKey}` } });
    assert.equal(res.statusCode, 200);
    assert.ok(res.rawPayload.equals(BIG), 'the 1 MiB body arrives byte for byte');
    assert.equal(res.headers['set-cookie'], undefined);

    limitedLeft = 1;
    assert.equal((await proxied(t.adminKey, id, '/limited')).status, 429, 'passed through by default');
    limitedLeft = 2;
    const retried = await proxied(t.adminKey, id, '/limited', { headers: { 'latchkey-retries': '2' } });
    assert.equal(retried.status, 200, retried.text);

    // Over a real socket: a streamed upload larger than the replay buffer, and the large answer.
    const address = await h.app.listen({ host: '127.0.0.1', port: 0 });
    const upload = randomBytes(300 * 1024);
    const echoed = await fetch(`${address}/api/v1/connectors/${id}/proxy/api/upload`, {
      method: 'PUT',
      headers: { authorization: `ApiKey ${t.adminKey}`, 'content-type': 'application/octet-stream' },
      body: upload,
    });
    assert.equal(echoed.status, 200, await echoed.clone().text());
    assert.equal(seen.at(-1)?.body, upload.toString('latin1'), 'the streamed upload arrives whole');
    const big = await fetch(`${address}/api/v1/connectors/${id}/proxy/big`, { headers: { authorization: `ApiKey ${t.adminKey}` } });
    assert.equal(big.headers.get('content-length'), String(BIG.length), 'the provider\'s length goes along');
    assert.ok(Buffer.from(await big.arrayBuffer()).equals(BIG));
    // Compressed by the provider: the same bytes, with the encoding that says how to read them.
    const gz = await h.app.inject({ method: 'GET', url: `/api/v1/connectors/${id}/proxy/gz`, headers: { authorization: `ApiKey ${t.adminKey}` } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers['content-length'], String(GZIPPED.length));
    assert.ok(gunzipSync(gz.rawPayload).equals(BIG));

    // The caller hangs up while the provider has not answered: the call to the provider stops too
    // (its socket closes now, not at the provider timeout), and the server keeps serving.
    const before = held.length;
    const hung = httpRequest(`${address}/api/v1/connectors/${id}/proxy/hold`, { headers: { authorization: `ApiKey ${t.adminKey}` } });
    const hungUp = new Promise<void>((resolve) => hung.once('error', () => resolve()));
    hung.end();
    while (held.length === before) await new Promise((resolve) => setTimeout(resolve, 10));
    hung.destroy();
    await hungUp;
    const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('still open'), 5000).unref());
    assert.equal(await Promise.race([held.at(-1)?.closed.then(() => 'closed'), timeout]), 'closed', 'the upstream request is aborted');
    assert.equal((await proxied(t.adminKey, id, '/api/after')).status, 200);

    const elsewhere = await connector(t.adminKey, { provider: 'http', authType: 'bearer', config: { apiBaseUrl: upstreamUrl.replace('127.0.0.1', '127.0.0.2') }, secrets: { token: secret('t') } });
    assertError(await proxied(t.adminKey, elsewhere, '/x'), 403, 'egress_refused');
  });
});
