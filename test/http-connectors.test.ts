// Connectors and connections over HTTP, end to end through createLatchkey on both databases,
// against a real authorization server (oidc-provider on 127.0.0.1, refresh-token rotation on):
// create a connector → authorize → sign in at the provider → callback → token → refresh →
// disconnect (revoked at the provider), for a shared and a per-user connector; then secrets in
// answers and logs, returnTo, the callback's error pages, permissions, limits and failures.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, before, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createLogger, loadSettings, manualClock } from '../src/core/index.js';
import type { DialectName } from '../src/db/index.js';
import { SYSTEM_ACTOR } from '../src/identity/index.js';
import { createLatchkey, type Latchkey } from '../src/latchkey.js';
import { CONNECTION_TYPE, connectionId } from '../src/oauth/index.js';
import { createTestDatabase, eachDialect, LOOPBACK_EGRESS, type TestDatabase } from './support/databases.js';
import { assertError, randomAddress, randomName, type Answer, type CallOptions } from './support/http.js';
import { startOidcProvider, type TestClient, type TestProvider } from './support/oidc-provider.js';

const PUBLIC_URL = 'https://latchkey.test';
const CALLBACK = `${PUBLIC_URL}/api/v1/oauth/callback`;
const APP_ORIGIN = 'https://app.example.com';
const HOUR = 3600_000;

interface Tenant {
  id: string;
  adminId: string;
  adminKey: string;
  /** A user with these roles and a key of theirs. */
  member(roles: string[]): Promise<{ id: string; key: string }>;
}

interface Harness {
  latchkey: Latchkey;
  app: FastifyInstance;
  clock: ReturnType<typeof manualClock>;
  answers: Answer[];
  logs(): string;
  call(options: CallOptions): Promise<Answer>;
  tenant(): Promise<Tenant>;
  close(): Promise<void>;
}

/**
 * createLatchkey with a manual clock, a logger kept in memory, and the loud test-only opt-in for
 * plain http to the provider on 127.0.0.1 (test/support/http.ts builds without it).
 */
async function harness(dialect: DialectName): Promise<Harness> {
  const tdb: TestDatabase = await createTestDatabase(dialect);
  const settings = loadSettings({
    env: {
      LATCHKEY_DATA_DIR: tdb.dataDir,
      ...(tdb.url ? { LATCHKEY_DATABASE_URL: tdb.url } : {}),
      LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      LATCHKEY_PUBLIC_URL: PUBLIC_URL,
      LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS,
    },
  });
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  const clock = manualClock();
  let latchkey: Latchkey;
  try {
    latchkey = await createLatchkey({
      settings,
      background: true,
      clock,
      logger: createLogger({ level: 'debug', destination }),
      oauth: { unsafeAllowInsecureLoopbackRequests: true, timeoutMs: 2000 },
    });
  } catch (err) {
    await tdb.dispose();
    throw err;
  }
  // The tests count every refresh the provider sees while the clock jumps hours: on-demand ones only
  // (proactive refresh has its own tests, test/oauth-proactive-refresh.test.ts).
  for (const task of (await latchkey.tasks.list({ type: 'latchkey.token-refresh' })).tasks) await latchkey.tasks.setEnabled(task.id, false);
  const app = latchkey.app as FastifyInstance;
  await app.ready();
  const answers: Answer[] = [];

  const call = async (options: CallOptions): Promise<Answer> => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.key !== undefined) headers.authorization = `ApiKey ${options.key}`;
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const res = await app.inject({
      method: options.method,
      url: options.url,
      headers,
      remoteAddress: options.address ?? randomAddress(),
      ...(payload !== undefined ? { payload } : {}),
    });
    let json: unknown;
    try {
      json = res.body === '' ? undefined : JSON.parse(res.body);
    } catch {
      json = undefined;
    }
    const answer: Answer = { status: res.statusCode, headers: res.headers, text: res.body, json };
    answers.push(answer);
    return answer;
  };

  return {
    latchkey,
    app,
    clock,
    answers,
    logs: () => chunks.join(''),
    call,
    async tenant() {
      const { identity, apiKeys } = latchkey;
      const created = await identity.tenants.create({ name: randomName('t') });
      const admin = await identity.users.create(SYSTEM_ACTOR, created.id, { username: 'root', roles: ['admin'] });
      const { key: adminKey } = await apiKeys.service.create(SYSTEM_ACTOR, created.id, admin.id, { name: 'root' });
      return {
        id: created.id,
        adminId: admin.id,
        adminKey,
        async member(roles) {
          const user = await identity.users.create(SYSTEM_ACTOR, created.id, { username: randomName('u'), roles });
          const { key } = await apiKeys.service.create(SYSTEM_ACTOR, created.id, user.id, { name: randomName('k') });
          return { id: user.id, key };
        },
      };
    },
    async close() {
      await latchkey.close();
      await tdb.dispose();
    },
  };
}

await eachDialect('HTTP connectors and connections', (dialect) => {
  let h: Harness;
  let op: TestProvider;
  before(async () => {
    op = await startOidcProvider({ redirectUris: [CALLBACK] });
    h = await harness(dialect);
  });
  after(async () => {
    await h?.close();
    await op?.stop();
  });

  const secret = () => `cs-${randomBytes(18).toString('base64url')}`;

  /** A generic OpenID Connect connector on the test provider (endpoints discovered). */
  async function oidcConnector(key: string, tokenMode: 'shared' | 'per_user', client: TestClient = op.clients.basic, extra: Record<string, unknown> = {}) {
    const res = await h.call({
      method: 'POST',
      url: '/api/v1/connectors',
      key,
      body: {
        name: randomName('oidc'),
        provider: 'oidc',
        authType: 'oauth_authorization_code',
        tokenMode,
        config: { issuer: op.issuer, clientId: client.clientId, scopes: 'openid offline_access api:read' },
        secrets: { clientSecret: client.clientSecret },
        ...extra,
      },
    });
    assert.equal(res.status, 201, res.text);
    return res.json as { id: string; secrets: Record<string, { set: boolean }> };
  }

  /** A generic OAuth 2.0 connector on the test provider (endpoints from config, client_secret_post). */
  async function oauth2Connector(key: string, tokenMode: 'shared' | 'per_user') {
    const res = await h.call({
      method: 'POST',
      url: '/api/v1/connectors',
      key,
      body: {
        name: randomName('oauth2'),
        provider: 'oauth2',
        authType: 'oauth_authorization_code',
        tokenMode,
        config: {
          authorizationUrl: op.authorizationUrl,
          tokenUrl: op.tokenUrl,
          revocationUrl: op.revocationUrl,
          clientId: op.clients.post.clientId,
          scopes: 'openid api:read',
        },
        secrets: { clientSecret: op.clients.post.clientSecret },
      },
    });
    assert.equal(res.status, 201, res.text);
    return res.json as { id: string };
  }

  async function authorize(key: string, connectorId: string, body: Record<string, unknown> = {}): Promise<string> {
    const res = await h.call({ method: 'POST', url: `/api/v1/connectors/${connectorId}/oauth/authorize`, key, body });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.ok(Date.parse(res.json.expiresAt) > h.clock.now().getTime());
    return res.json.authorizationUrl as string;
  }

  /** The user signs in at the provider; returns the callback path and query the browser comes back with. */
  async function signIn(authorizationUrl: string, accountId: string, deny = false): Promise<string> {
    const back = await op.signIn(authorizationUrl, { accountId, deny });
    assert.equal(`${back.origin}${back.pathname}`, CALLBACK, 'the provider redirects to the public callback URL');
    return `${back.pathname}${back.search}`;
  }

  const callback = (path: string, address?: string) => h.call({ method: 'GET', url: path, ...(address ? { address } : {}) });

  async function connect(key: string, connectorId: string, accountId: string, body: Record<string, unknown> = {}): Promise<Answer> {
    return callback(await signIn(await authorize(key, connectorId, body), accountId));
  }

  const token = (key: string, connectorId: string, user?: string) =>
    h.call({ method: 'POST', url: `/api/v1/connectors/${connectorId}/token${user ? `?user=${user}` : ''}`, key });
  const connection = (key: string, connectorId: string, user?: string) =>
    h.call({ method: 'GET', url: `/api/v1/connectors/${connectorId}/connection${user ? `?user=${user}` : ''}`, key });
  const disconnect = (key: string, connectorId: string, user?: string) =>
    h.call({ method: 'DELETE', url: `/api/v1/connectors/${connectorId}/connection${user ? `?user=${user}` : ''}`, key });

  function assertHtml(answer: Answer, status: number): void {
    assert.equal(answer.status, status, answer.text);
    assert.match(String(answer.headers['content-type']), /^text\/html; charset=utf-8/);
    assert.equal(answer.headers['cache-control'], 'no-store');
    assert.equal(answer.headers['referrer-policy'], 'no-referrer');
    assert.match(String(answer.headers['content-security-policy']), /default-src 'none'/);
  }

  it('connects a shared OpenID Connect connector: authorize, callback, token, refresh, disconnect with revocation', async () => {
    op.resetCounters();
    const t = await h.tenant();
    const clientSecret = op.clients.basic.clientSecret;
    const connector = await oidcConnector(t.adminKey, 'shared', op.clients.basic, { allowedReturnOrigins: [APP_ORIGIN] });
    assert.deepEqual(connector.secrets, { clientSecret: { set: true } });

    const url = await authorize(t.adminKey, connector.id, { returnTo: `${APP_ORIGIN}/connected` });
    assert.ok(url.startsWith(`${op.issuer}/auth?`), 'the discovered authorization endpoint');
    assert.equal(new URL(url).searchParams.get('redirect_uri'), CALLBACK);
    assert.equal(new URL(url).searchParams.get('code_challenge_method'), 'S256');
    const path = await signIn(url, 'alice');
    const back = await callback(path);
    assert.equal(back.status, 302, back.text);
    assert.equal(back.headers.location, `${APP_ORIGIN}/connected`);
    assert.equal(back.headers['referrer-policy'], 'no-referrer');
    assert.equal(op.counters.authorizationCode, 1);

    // Replaying the callback: the state is gone (and no returnTo is known for it).
    assertHtml(await callback(path), 400);
    assert.equal(op.counters.authorizationCode, 1, 'the provider never saw the code again');

    const status = await connection(t.adminKey, connector.id);
    assert.equal(status.status, 200, status.text);
    assert.equal(status.json.id, connectionId(connector.id));
    assert.equal(status.json.userId, null);
    assert.equal(status.json.status, 'active');
    assert.ok(status.json.scopes.includes('api:read'));

    const first = await token(t.adminKey, connector.id);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers['cache-control'], 'no-store');
    assert.deepEqual(Object.keys(first.json).sort(), ['accessToken', 'expiresAt', 'tokenType']);
    assert.equal(first.json.tokenType, 'Bearer');
    assert.equal(await op.introspect(first.json.accessToken, op.clients.basic), true, 'a live token at the provider');
    assert.ok(!status.text.includes(first.json.accessToken), 'the status shows no token');
    const again = await token(t.adminKey, connector.id);
    assert.equal(again.json.accessToken, first.json.accessToken, 'a fresh token is handed out as is');
    assert.equal(op.counters.refresh, 0);

    // Two hours later the token has expired (for Latchkey's clock): the next one is refreshed, once.
    h.clock.advance(2 * HOUR);
    const refreshed = await token(t.adminKey, connector.id);
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.notEqual(refreshed.json.accessToken, first.json.accessToken);
    assert.ok(Date.parse(refreshed.json.expiresAt) > h.clock.now().getTime() + 30 * 60_000);
    assert.equal(op.counters.refresh, 1);
    assert.equal(await op.introspect(refreshed.json.accessToken, op.clients.basic), true);
    assert.equal((await token(t.adminKey, connector.id)).json.accessToken, refreshed.json.accessToken);
    assert.equal(op.counters.refresh, 1);
    assert.equal(op.counters.grantsRevoked, 0, 'no refresh token was used twice');
    assert.equal((await connection(t.adminKey, connector.id)).json.lastRefreshAt, h.clock.now().toISOString());

    // A shared connector has no per-user connections.
    assertError(await token(t.adminKey, connector.id, t.adminId), 400, 'invalid_request');

    const gone = await disconnect(t.adminKey, connector.id);
    assert.equal(gone.status, 200, gone.text);
    assert.deepEqual(gone.json, { revoked: true });
    assert.equal(op.counters.revocation, 1);
    assert.equal(await op.introspect(refreshed.json.accessToken, op.clients.basic), false, 'revoked at the provider');
    assertError(await token(t.adminKey, connector.id), 404, 'not_connected');
    assertError(await connection(t.adminKey, connector.id), 404, 'not_connected');
    assertError(await disconnect(t.adminKey, connector.id), 404, 'not_connected');

    for (const answer of h.answers) assert.ok(!answer.text.includes(clientSecret), 'the client secret never comes back');
  });

  it('deleting a connected connector disconnects it first: its tokens are revoked and no connection is left', async () => {
    op.resetCounters();
    const t = await h.tenant();
    const connector = await oidcConnector(t.adminKey, 'shared');
    const back = await connect(t.adminKey, connector.id, 'carol');
    assert.equal(back.status, 200, back.text);
    const issued = await token(t.adminKey, connector.id);
    assert.equal(issued.status, 200, issued.text);
    const deleted = await h.call({ method: 'DELETE', url: `/api/v1/connectors/${connector.id}`, key: t.adminKey });
    assert.equal(deleted.status, 204, deleted.text);
    assert.equal(op.counters.revocation, 1, 'revoked at the provider');
    assert.equal(await op.introspect(issued.json.accessToken, op.clients.basic), false);
    assertError(await token(t.adminKey, connector.id), 404, 'not_found');
  });

  it('connects a per-user OAuth 2.0 connector once per user; ?user= needs identity:admin', async () => {
    op.resetCounters();
    const t = await h.tenant();
    const alice = await t.member(['editor']);
    const bob = await t.member(['editor']);
    const connector = await oauth2Connector(t.adminKey, 'per_user');

    for (const [user, account] of [[alice, 'alice'], [bob, 'bob']] as const) {
      const page = await connect(user.key, connector.id, account);
      assertHtml(page, 200);
      assert.match(page.text, /<h1>Account connected<\/h1>/);
    }
    const aliceToken = await token(alice.key, connector.id);
    const bobToken = await token(bob.key, connector.id);
    assert.equal(aliceToken.status, 200, aliceToken.text);
    assert.equal(bobToken.status, 200, bobToken.text);
    assert.notEqual(aliceToken.json.accessToken, bobToken.json.accessToken, 'one connection per user');
    assert.equal(await op.introspect(aliceToken.json.accessToken, op.clients.post), true);
    assert.equal(await op.introspect(bobToken.json.accessToken, op.clients.post), true);

    // Another user's connection: identity:admin only.
    const foreign = assertError(await token(alice.key, connector.id, bob.id), 403, 'forbidden');
    assert.match(foreign, /identity:admin/);
    assertError(await connection(alice.key, connector.id, bob.id), 403, 'forbidden');
    assertError(await disconnect(alice.key, connector.id, bob.id), 403, 'forbidden');
    const forAlice = await token(t.adminKey, connector.id, alice.id);
    assert.equal(forAlice.json.accessToken, aliceToken.json.accessToken, 'the admin acts for alice');
    assertError(await token(t.adminKey, connector.id), 404, 'not_connected');
    const status = await connection(alice.key, connector.id);
    assert.equal(status.json.id, connectionId(connector.id, alice.id));
    assert.equal(status.json.userId, alice.id);

    h.clock.advance(2 * HOUR);
    const refreshed = await token(alice.key, connector.id);
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.notEqual(refreshed.json.accessToken, aliceToken.json.accessToken);
    assert.equal(op.counters.refresh, 1, 'only alice\'s connection was refreshed');
    assert.equal(await op.introspect(refreshed.json.accessToken, op.clients.post), true);
    assert.equal(op.counters.grantsRevoked, 0, 'no refresh token was used twice');

    const gone = await disconnect(alice.key, connector.id);
    assert.deepEqual(gone.json, { revoked: true });
    assert.equal(await op.introspect(refreshed.json.accessToken, op.clients.post), false, 'alice\'s grant is revoked');
    assert.equal(await op.introspect(bobToken.json.accessToken, op.clients.post), true, 'bob\'s is not');
    assertError(await token(alice.key, connector.id), 404, 'not_connected');
    const bobGone = await disconnect(t.adminKey, connector.id, bob.id);
    assert.deepEqual(bobGone.json, { revoked: true });
    assert.equal(await op.introspect(bobToken.json.accessToken, op.clients.post), false);
    assert.equal(op.counters.revocation, 2);
  });

  it('hands out client credentials tokens without a sign-in; a bearer connector has no OAuth flow and its token route answers the stored token', async () => {
    op.resetCounters();
    const t = await h.tenant();
    const created = await h.call({
      method: 'POST',
      url: '/api/v1/connectors',
      key: t.adminKey,
      body: {
        name: 'Service account',
        provider: 'oidc',
        authType: 'oauth_client_credentials',
        config: { issuer: op.issuer, clientId: op.clients.basic.clientId, scopes: 'api:read' },
        secrets: { clientSecret: op.clients.basic.clientSecret },
      },
    });
    assert.equal(created.status, 201, created.text);
    const first = await token(t.adminKey, created.json.id);
    assert.equal(first.status, 200, first.text);
    assert.equal(await op.introspect(first.json.accessToken, op.clients.basic), true);
    assert.equal((await token(t.adminKey, created.json.id)).json.accessToken, first.json.accessToken);
    assert.equal(op.counters.clientCredentials, 1, 'cached until it expires');
    assert.deepEqual((await connection(t.adminKey, created.json.id)).json.scopes, ['api:read']);

    const pat = secret();
    const bearer = await h.call({
      method: 'POST',
      url: '/api/v1/connectors',
      key: t.adminKey,
      body: { name: 'PAT', provider: 'github', authType: 'bearer', secrets: { token: pat } },
    });
    assert.equal(bearer.status, 201, bearer.text);
    assert.deepEqual((await token(t.adminKey, bearer.json.id)).json, { authType: 'bearer', token: pat });
    assertError(await h.call({ method: 'POST', url: `/api/v1/connectors/${bearer.json.id}/oauth/authorize`, key: t.adminKey, body: {} }), 400, 'invalid_request');
  });

  it('CRUD: shows secret flags, never values, validates field by field, scopes ids to the tenant', async () => {
    const t = await h.tenant();
    const other = await h.tenant();
    const values = { clientSecret: secret(), apiKeyValue: secret(), password: secret(), token: secret(), rotated: secret() };
    const created = [
      await oidcConnector(t.adminKey, 'shared', { ...op.clients.basic, clientSecret: values.clientSecret }),
    ];
    const bodies = [
      { name: 'Google key', provider: 'google', authType: 'api_key', secrets: { apiKeyValue: values.apiKeyValue } },
      { name: 'Bitbucket', provider: 'bitbucket', authType: 'basic', secrets: { username: 'svc', password: values.password } },
      { name: 'GitHub PAT', provider: 'github', authType: 'bearer', secrets: { token: values.token } },
    ];
    for (const body of bodies) {
      const res = await h.call({ method: 'POST', url: '/api/v1/connectors', key: t.adminKey, body });
      assert.equal(res.status, 201, res.text);
      created.push(res.json);
    }
    assert.deepEqual(created.map((c) => c.secrets), [
      { clientSecret: { set: true } },
      { apiKeyValue: { set: true } },
      { username: { set: true }, password: { set: true } },
      { token: { set: true } },
    ]);
    const oidc = created[0] as { id: string };

    const listed = await h.call({ method: 'GET', url: '/api/v1/connectors', key: t.adminKey });
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(listed.json.items.map((c: { id: string }) => c.id).sort(), created.map((c) => c.id).sort());
    const paged = await h.call({ method: 'GET', url: '/api/v1/connectors?limit=2', key: t.adminKey });
    assert.equal(paged.json.items.length, 2);
    assert.equal(typeof paged.json.next, 'string');
    const fetched = await h.call({ method: 'GET', url: `/api/v1/connectors/${oidc.id}`, key: t.adminKey });
    assert.equal(fetched.status, 200);
    assert.deepEqual(fetched.json.secrets, { clientSecret: { set: true } });
    assert.equal(fetched.json.config.issuer, op.issuer);

    const patched = await h.call({
      method: 'PATCH',
      url: `/api/v1/connectors/${oidc.id}`,
      key: t.adminKey,
      body: { name: 'Renamed', secrets: { clientSecret: values.rotated }, config: { scopes: 'openid' } },
    });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.name, 'Renamed');
    assert.equal(patched.json.config.scopes, 'openid');
    assert.equal(patched.json.revision, fetched.json.revision + 1);
    const resolved = await h.latchkey.connectors.getResolved(t.id, oidc.id);
    assert.equal(resolved.clientSecret, values.rotated, 'the new secret is stored');
    assertError(
      await h.call({ method: 'PATCH', url: `/api/v1/connectors/${oidc.id}`, key: t.adminKey, body: { provider: 'github' } }),
      400,
      'validation_failed',
    );

    // Field-level errors: every bad field of the service's checks at once.
    const bad = await h.call({
      method: 'POST',
      url: '/api/v1/connectors',
      key: t.adminKey,
      body: { name: ' ', provider: 'oidc', authType: 'oauth_authorization_code', tokenMode: 'per_user', config: { issuer: 'ftp://x' }, secrets: {} },
    });
    assertError(bad, 400, 'validation_failed');
    const paths = (bad.json.error.details.fields as { path: string }[]).map((f) => f.path).sort();
    for (const path of ['name', 'config.issuer', 'config.clientId', 'secrets.clientSecret']) assert.ok(paths.includes(path), `${path} in ${paths.join(', ')}`);
    // Shape errors (the request schema), naming the field and never its value.
    const shape = await h.call({
      method: 'POST',
      url: '/api/v1/connectors',
      key: t.adminKey,
      body: { name: 'x', provider: 'oidc', authType: 'magic', secrets: { clientSecret: 42, hunter2: values.rotated } },
    });
    assertError(shape, 400, 'validation_failed');
    const shapePaths = (shape.json.error.details.fields as { path: string }[]).map((f) => f.path);
    assert.ok(shapePaths.includes('authType') && shapePaths.includes('secrets.clientSecret'), shapePaths.join(', '));
    assert.ok(!shape.text.includes(values.rotated));

    // Another tenant's ids are unknown ids.
    for (const [method, url] of [
      ['GET', `/api/v1/connectors/${oidc.id}`],
      ['PATCH', `/api/v1/connectors/${oidc.id}`],
      ['DELETE', `/api/v1/connectors/${oidc.id}`],
      ['POST', `/api/v1/connectors/${oidc.id}/token`],
      ['POST', `/api/v1/connectors/${oidc.id}/oauth/authorize`],
      ['GET', `/api/v1/connectors/${oidc.id}/connection`],
    ] as const) {
      assertError(await h.call({ method, url, key: other.adminKey, ...(method === 'PATCH' || method === 'POST' ? { body: {} } : {}) }), 404, 'not_found');
    }
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/connectors', key: other.adminKey })).json.items.length, 0);

    const deleted = await h.call({ method: 'DELETE', url: `/api/v1/connectors/${oidc.id}`, key: t.adminKey });
    assert.equal(deleted.status, 204, deleted.text);
    assertError(await h.call({ method: 'GET', url: `/api/v1/connectors/${oidc.id}`, key: t.adminKey }), 404, 'not_found');

    for (const value of Object.values(values)) {
      for (const answer of h.answers) assert.ok(!answer.text.includes(value), 'no secret in any answer');
      assert.ok(!h.logs().includes(value), 'no secret in the log');
    }
  });

  it('keeps every secret and token out of the log, and tokens out of every answer but the token route', async () => {
    op.resetCounters();
    const t = await h.tenant();
    const connector = await oidcConnector(t.adminKey, 'shared');
    const path = await signIn(await authorize(t.adminKey, connector.id), 'carol');
    const code = new URLSearchParams(path.split('?')[1]).get('code') as string;
    assert.ok(code, 'a code');
    assert.equal((await callback(path)).status, 200);
    const stored = async () =>
      (await h.latchkey.store.getDecrypted(CONNECTION_TYPE.name, t.id, connectionId(connector.id))).attributes as { accessToken: string; refreshToken: string };
    const before = await stored();
    const given = [await token(t.adminKey, connector.id)];
    h.clock.advance(2 * HOUR);
    given.push(await token(t.adminKey, connector.id));
    const afterRefresh = await stored();
    assert.notEqual(afterRefresh.refreshToken, before.refreshToken, 'the refresh token rotated');
    await connection(t.adminKey, connector.id);
    await h.call({ method: 'GET', url: `/api/v1/connectors/${connector.id}`, key: t.adminKey });
    await h.call({ method: 'GET', url: '/api/v1/connectors', key: t.adminKey });
    assert.deepEqual((await disconnect(t.adminKey, connector.id)).json, { revoked: true });

    const logs = h.logs();
    const secrets = {
      'client secret': op.clients.basic.clientSecret,
      'authorization code': code,
      'first access token': before.accessToken,
      'first refresh token': before.refreshToken,
      'refreshed access token': afterRefresh.accessToken,
      'rotated refresh token': afterRefresh.refreshToken,
    };
    for (const [what, value] of Object.entries(secrets)) {
      assert.ok(!logs.includes(value), `no ${what} in the log`);
      for (const answer of h.answers) {
        if (given.includes(answer) && value === JSON.parse(answer.text).accessToken) continue;
        assert.ok(!answer.text.includes(value), `no ${what} in an answer (${answer.status})`);
      }
    }
    assert.ok(logs.includes('An account was connected.'), 'the log is being searched');
  });

  it('refuses a returnTo on a foreign origin at authorize (no open redirect)', async () => {
    const t = await h.tenant();
    const connector = await oauth2Connector(t.adminKey, 'per_user');
    for (const returnTo of ['https://evil.example/', '//evil.example/x', `${APP_ORIGIN}/x`, 'javascript:alert(1)', 'https://latchkey.test@evil.example/']) {
      const res = await h.call({ method: 'POST', url: `/api/v1/connectors/${connector.id}/oauth/authorize`, key: t.adminKey, body: { returnTo } });
      assertError(res, 400, 'validation_failed');
      assert.equal(res.json.error.details.fields[0].path, 'returnTo', returnTo);
    }
    // A path on Latchkey itself is fine.
    const url = await authorize(t.adminKey, connector.id, { returnTo: '/console/connected' });
    const back = await callback(await signIn(url, 'dave'));
    assert.equal(back.status, 302);
    assert.equal(back.headers.location, `${PUBLIC_URL}/console/connected`);
  });

  it('answers a bad callback with an escaped error page, or a redirect to returnTo with ?error=', async () => {
    const t = await h.tenant();
    const connector = await oidcConnector(t.adminKey, 'per_user', op.clients.basic, { allowedReturnOrigins: [APP_ORIGIN] });

    const unknown = await callback(`/api/v1/oauth/callback?state=${randomBytes(32).toString('base64url')}&code=abc`);
    assertHtml(unknown, 400);
    assert.match(unknown.text, /invalid, expired or already used/);
    assertHtml(await callback('/api/v1/oauth/callback'), 400);

    // The provider's error_description is attacker-influenced: shown escaped, never as markup.
    const url = await authorize(t.adminKey, connector.id);
    const state = new URL(url).searchParams.get('state') as string;
    const evil = '<script>alert(document.cookie)</script><img src=x onerror="alert(1)">';
    const page = await callback(`/api/v1/oauth/callback?${new URLSearchParams({ state, error: 'access_denied', error_description: evil })}`);
    assertHtml(page, 400);
    assert.ok(!page.text.includes('<script>') && !page.text.includes('<img'), page.text);
    assert.ok(page.text.includes('&lt;script&gt;alert(document.cookie)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'), page.text);
    assert.ok(!/<script/i.test(page.text));

    // The user cancels at the provider; the state named a returnTo: back there with the code.
    const withReturn = await authorize(t.adminKey, connector.id, { returnTo: `${APP_ORIGIN}/back?tab=1` });
    const denied = await callback(await signIn(withReturn, 'erin', true));
    assert.equal(denied.status, 302, denied.text);
    const location = new URL(String(denied.headers.location));
    assert.equal(`${location.origin}${location.pathname}`, `${APP_ORIGIN}/back`);
    assert.equal(location.searchParams.get('tab'), '1');
    assert.equal(location.searchParams.get('error'), 'provider_error');
    assertError(await token(t.adminKey, connector.id), 404, 'not_connected');
  });

  it('checks permissions: a viewer reads but cannot create, connect or take tokens', async () => {
    const t = await h.tenant();
    const viewer = await t.member(['viewer']);
    const user = await t.member([]);
    const shared = await oidcConnector(t.adminKey, 'shared');
    const perUser = await oauth2Connector(t.adminKey, 'per_user');

    assert.equal((await h.call({ method: 'GET', url: `/api/v1/connectors/${shared.id}`, key: viewer.key })).status, 200);
    assert.match(assertError(await token(viewer.key, shared.id), 403, 'forbidden'), /connectors:token/);
    assert.match(
      assertError(await h.call({ method: 'POST', url: '/api/v1/connectors', key: viewer.key, body: { name: 'x', provider: 'github', authType: 'none' } }), 403, 'forbidden'),
      /connectors:write/,
    );
    assertError(await h.call({ method: 'POST', url: `/api/v1/connectors/${perUser.id}/oauth/authorize`, key: viewer.key, body: {} }), 403, 'forbidden');
    assertError(await disconnect(viewer.key, perUser.id), 403, 'forbidden');
    assertError(await h.call({ method: 'GET', url: '/api/v1/connectors', key: user.key }), 403, 'forbidden');

    // connectors:use without connectors:write: one's own per-user connection, not the shared one.
    const role = await h.call({ method: 'POST', url: '/api/v1/roles', key: t.adminKey, body: { name: 'connector-user', permissions: ['connectors:read', 'connectors:use', 'connectors:token'] } });
    assert.equal(role.status, 201, role.text);
    const member = await t.member(['connector-user']);
    assert.match(
      assertError(await h.call({ method: 'POST', url: `/api/v1/connectors/${shared.id}/oauth/authorize`, key: member.key, body: {} }), 403, 'forbidden'),
      /connectors:write/,
    );
    assert.equal((await connect(member.key, perUser.id, 'frank')).status, 200);
    assert.equal((await token(member.key, perUser.id)).status, 200);
    assert.equal((await connect(t.adminKey, shared.id, 'root')).status, 200);
    assertError(await disconnect(member.key, shared.id), 403, 'forbidden');
    assert.deepEqual((await disconnect(member.key, perUser.id)).json, { revoked: true });
    assert.deepEqual((await disconnect(t.adminKey, shared.id)).json, { revoked: true });
  });

  it('maps refresh failures: 503 connection_degraded with Retry-After, then 409 needs_reauthorization', async () => {
    op.resetCounters();
    const t = await h.tenant();
    const connector = await oidcConnector(t.adminKey, 'shared');
    assert.equal((await connect(t.adminKey, connector.id, 'grace')).status, 200);

    h.clock.advance(2 * HOUR);
    op.setDown(true);
    try {
      const down = await token(t.adminKey, connector.id);
      assertError(down, 503, 'connection_degraded');
      const retryAfter = Number(down.headers['retry-after']);
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After: ${String(down.headers['retry-after'])}`);
      assert.equal((await connection(t.adminKey, connector.id)).json.status, 'degraded');
      assertError(await token(t.adminKey, connector.id), 503, 'connection_degraded');
      assert.equal(op.counters.refresh, 1, 'no second call to the provider within the backoff');
    } finally {
      op.setDown(false);
    }
    h.clock.advance(10 * 60_000);
    const recovered = await token(t.adminKey, connector.id);
    assert.equal(recovered.status, 200, recovered.text);
    assert.equal((await connection(t.adminKey, connector.id)).json.status, 'active');

    // The provider refuses the client: only a reconnect helps.
    const patched = await h.call({ method: 'PATCH', url: `/api/v1/connectors/${connector.id}`, key: t.adminKey, body: { secrets: { clientSecret: secret() } } });
    assert.equal(patched.status, 200, patched.text);
    h.clock.advance(2 * HOUR);
    assertError(await token(t.adminKey, connector.id), 409, 'needs_reauthorization');
    assert.equal((await connection(t.adminKey, connector.id)).json.status, 'needs_reauthorization');
  });

  it('limits authorization starts per user (429 with Retry-After) and callbacks per address', async () => {
    const t = await h.tenant();
    const alice = await t.member(['editor']);
    const connector = await oauth2Connector(t.adminKey, 'per_user');
    const start = (key: string) => h.call({ method: 'POST', url: `/api/v1/connectors/${connector.id}/oauth/authorize`, key, body: {} });
    for (let i = 0; i < 20; i++) assert.equal((await start(alice.key)).status, 200);
    const limited = await start(alice.key);
    assertError(limited, 429, 'rate_limited');
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    assert.equal((await start(t.adminKey)).status, 200, 'another user is not limited');
    h.clock.advance(61_000);
    assert.equal((await start(alice.key)).status, 200, 'the window slides');

    const address = randomAddress();
    const bogus = `/api/v1/oauth/callback?state=${randomBytes(32).toString('base64url')}`;
    for (let i = 0; i < 60; i++) assert.equal((await callback(bogus, address)).status, 400);
    const flood = await callback(bogus, address);
    assertError(flood, 429, 'rate_limited');
    assert.ok(Number(flood.headers['retry-after']) >= 1);
    assert.equal((await callback(bogus)).status, 400, 'another address is not limited');
  });

  it('accepts the connectors the README creates, as written', async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Connecting an account'), readme.indexOf('## Running on PostgreSQL'));
    const bodies = [...section.matchAll(/-d '(\{[\s\S]*?\})'\n/g)].map((m) => JSON.parse(m[1] as string) as Record<string, unknown>);
    const connectors = bodies.filter((body) => 'provider' in body);
    assert.deepEqual(connectors.map((body) => body.provider), ['google', 'http', 'http', 'microsoft']);
    const t = await h.tenant();
    for (const body of connectors) {
      const res = await h.call({ method: 'POST', url: '/api/v1/connectors', key: t.adminKey, body });
      assert.equal(res.status, 201, res.text);
      // A per-user http connector holds no secret: each end user gives their own on the connect page.
      const expected = body.provider !== 'http' ? { clientSecret: { set: true } } : body.tokenMode === 'per_user' ? {} : { apiKeyValue: { set: true } };
      assert.deepEqual(res.json.secrets, expected);
    }
    assert.deepEqual(bodies.filter((body) => !('provider' in body) && !('endUser' in body)), [
      { returnTo: 'https://app.example.com/settings/connected' },
      { credential: { key: 'the-end-users-key' } },
    ]);
    // The connect session body, with the shell's $CONNECTOR filled in by a per-user connector.
    const sessions = bodies.filter((body) => 'endUser' in body);
    assert.equal(sessions.length, 1);
    const perUser = await h.call({ method: 'POST', url: '/api/v1/connectors', key: t.adminKey, body: { ...connectors[0], tokenMode: 'per_user' } });
    assert.equal(perUser.status, 201, perUser.text);
    assert.deepEqual(sessions[0]?.allowedConnectors, ["'$CONNECTOR'"]);
    const session = await h.call({ method: 'POST', url: '/api/v1/connect-sessions', key: t.adminKey, body: { ...sessions[0], allowedConnectors: [perUser.json.id] } });
    assert.equal(session.status, 201, session.text);
  });

  it('documents every connector route in OpenAPI, with its statuses', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/openapi.json' });
    const paths = JSON.parse(res.body).paths as Record<string, Record<string, { responses: Record<string, unknown>; security?: unknown[] }>>;
    const expect: [string, string, string[]][] = [
      ['/api/v1/connectors', 'post', ['201', '400', '401', '403', '429']],
      ['/api/v1/connectors', 'get', ['200']],
      ['/api/v1/connectors/{id}', 'get', ['200', '404']],
      ['/api/v1/connectors/{id}', 'patch', ['200', '409']],
      ['/api/v1/connectors/{id}', 'delete', ['204']],
      ['/api/v1/connectors/{id}/oauth/authorize', 'post', ['200', '400', '403', '429', '502']],
      ['/api/v1/connectors/{id}/token', 'post', ['200', '403', '404', '409', '503']],
      ['/api/v1/connectors/{id}/connection', 'get', ['200', '404']],
      ['/api/v1/connectors/{id}/connection', 'delete', ['200', '403', '404']],
      ['/api/v1/oauth/callback', 'get', ['200', '302', '400', '429', '502']],
    ];
    for (const [path, method, statuses] of expect) {
      const operation = paths[path]?.[method];
      assert.ok(operation, `${method.toUpperCase()} ${path}`);
      for (const status of statuses) assert.ok(status in operation.responses, `${method.toUpperCase()} ${path} documents ${status}`);
    }
    assert.deepEqual(paths['/api/v1/oauth/callback']?.get?.security, [], 'the callback is public');
  });
});
