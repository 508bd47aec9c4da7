// Attacks on the authorization code flow and a misbehaving token endpoint. A real local HTTP server
// stands in as the token endpoint of a generic `oauth2` connector, so that it can be down, slow or
// answer garbage; the full flow against a real authorization server is in oauth-flow.test.ts.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { it } from 'node:test';
import { BUNDLED_PROVIDERS, CONNECTOR_TYPE, createConnectorService, loadCatalog, type ConnectorService, type ConnectorView } from '../src/connectors/index.js';
import { LatchkeyError, manualClock } from '../src/core/index.js';
import type { Actor } from '../src/identity/index.js';
import { EncryptedObjectStore } from '../src/objects/index.js';
import { createOutbound } from '../src/outbound/index.js';
import {
  createOAuthFlow,
  OAUTH_STATE_TYPE,
  stateObjectId,
  type CallbackResult,
  type OAuthFlow,
  type OAuthFlowOptions,
  type TokenSet,
  type ConnectionOwner,
} from '../src/oauth/index.js';
import { eachDialect } from './support/databases.js';
import { createStoreFixture, type StoreFixture } from './support/store.js';

const PUBLIC_URL = 'https://latchkey.test';
const ACTOR: Actor = { type: 'system' };
const TIMEOUT_MS = 400;

/** A provider like `oauth2`, but whose client authenticates in the request body. */
const POST_PROVIDER = {
  file: 'local-post.json',
  data: {
    ...(BUNDLED_PROVIDERS.find((p) => p.file === 'oauth2.json')?.data as Record<string, unknown>),
    id: 'local-post',
    name: 'Local Post',
    oauth: {
      ...((BUNDLED_PROVIDERS.find((p) => p.file === 'oauth2.json')?.data as { oauth: Record<string, unknown> }).oauth),
      clientAuthentication: 'client_secret_post',
    },
  },
};
const catalog = loadCatalog([...BUNDLED_PROVIDERS, POST_PROVIDER]);

type Mode = 'ok' | 'slow' | 'garbage' | 'error500' | 'invalid_grant' | 'no_access_token' | 'html';

interface TokenRequest {
  headers: IncomingMessage['headers'];
  body: URLSearchParams;
}

/** A token endpoint on 127.0.0.1 that answers the way `mode` says and records what it received. */
async function startTokenServer() {
  const requests: TokenRequest[] = [];
  let mode: Mode = 'ok';
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
    req.on('end', () => {
      requests.push({ headers: req.headers, body: new URLSearchParams(raw) });
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      switch (mode) {
        case 'ok':
          return json(200, {
            access_token: `at-${randomBytes(16).toString('hex')}`,
            refresh_token: `rt-${randomBytes(16).toString('hex')}`,
            token_type: 'Bearer',
            expires_in: 3600,
            scope: 'read write',
            instance_url: 'https://acme.example.com',
            id_token: 'not.a.jwt',
          });
        case 'slow':
          setTimeout(() => json(200, { access_token: 'late', token_type: 'bearer' }), TIMEOUT_MS * 5).unref();
          return;
        case 'garbage':
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end('{"access_token": "half');
        case 'html':
          res.writeHead(200, { 'content-type': 'text/html' });
          return res.end('<html>hello</html>');
        case 'error500':
          res.writeHead(500, { 'content-type': 'text/plain' });
          return res.end('boom');
        case 'invalid_grant':
          return json(400, { error: 'invalid_grant', error_description: 'The code was already used.' });
        case 'no_access_token':
          return json(200, { token_type: 'bearer', expires_in: 60 });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setMode(next: Mode) {
      mode = next;
    },
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Saved {
  tenantId: string;
  connectorId: string;
  userId: ConnectionOwner;
  tokens: TokenSet;
}

interface Fixture {
  f: StoreFixture;
  clock: ReturnType<typeof manualClock>;
  connectors: ConnectorService;
  flow: OAuthFlow;
  token: Awaited<ReturnType<typeof startTokenServer>>;
  saved: Saved[];
  tenantA: string;
  tenantB: string;
  clientSecret: string;
  /** A shared `oauth2` connector of tenant A whose token endpoint is the stand-in server. */
  connector: ConnectorView;
  newFlow(overrides?: Partial<OAuthFlowOptions>): OAuthFlow;
  oauth2(tenantId: string, overrides?: Record<string, unknown>): Promise<ConnectorView>;
  dispose(): Promise<void>;
}

async function fixture(dialect: 'sqlite' | 'postgres'): Promise<Fixture> {
  const f = await createStoreFixture(dialect, [CONNECTOR_TYPE, OAUTH_STATE_TYPE]);
  const clock = manualClock(new Date('2031-05-01T12:00:00.000Z'));
  // The flow and the store share one clock, as they do in a server.
  const store = new EncryptedObjectStore({ db: f.handle.db, handle: f.handle, registry: f.registry, dataKeys: f.dataKeys, clock });
  const connectors = createConnectorService({ store, catalog, allowInsecureLoopback: true });
  const token = await startTokenServer();
  const saved: Saved[] = [];
  const clientSecret = `cs-${randomBytes(24).toString('base64url')}`;
  const newFlow = (overrides: Partial<OAuthFlowOptions> = {}) =>
    createOAuthFlow({
      store,
      db: f.handle.db,
      connectors,
      publicUrl: PUBLIC_URL,
      allowedReturnOrigins: ['https://app.example.com'],
      clock,
      outbound: createOutbound({ timeoutMs: TIMEOUT_MS, allowInsecureLoopback: true, egressAllow: ['127.0.0.1/32'], clock }),
      onTokens: async (tenantId, connectorId, userId, tokens) => {
        saved.push({ tenantId, connectorId, userId, tokens });
      },
      ...overrides,
    });
  const oauth2 = (tenantId: string, overrides: Record<string, unknown> = {}) =>
    connectors.create(ACTOR, tenantId, {
      name: 'Local',
      provider: 'oauth2',
      authType: 'oauth_authorization_code',
      config: { clientId: 'client-1', authorizationUrl: `${token.url}/authorize`, tokenUrl: `${token.url}/token`, scopes: 'read write' },
      secrets: { clientSecret },
      ...overrides,
    });
  const tenantA = `ten_${randomBytes(6).toString('hex')}`;
  return {
    f,
    clock,
    connectors,
    flow: newFlow(),
    token,
    saved,
    tenantA,
    tenantB: `ten_${randomBytes(6).toString('hex')}`,
    clientSecret,
    connector: await oauth2(tenantA),
    newFlow,
    oauth2,
    async dispose() {
      await token.stop();
      await f.dispose();
    },
  };
}

/** What the provider would send the browser back with, for the state in `authorizationUrl`. */
function callbackParams(authorizationUrl: string, extra: Record<string, string> = { code: `code-${randomBytes(8).toString('hex')}` }): URLSearchParams {
  const state = new URL(authorizationUrl).searchParams.get('state');
  assert.ok(state);
  return new URLSearchParams({ state, ...extra });
}

function refused(result: CallbackResult, code: string): Extract<CallbackResult, { ok: false }> {
  assert.equal(result.ok, false, `expected ${code}, got success`);
  assert.ok(!result.ok);
  assert.equal(result.code, code, result.message);
  assert.ok(result.message.length > 0 && !/[\r\n]/.test(result.message), 'one sentence');
  return result;
}

async function stateRows(f: StoreFixture) {
  return f.handle.db.selectFrom('objects').selectAll().where('type', '=', 'oauth_state').execute();
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<LatchkeyError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof LatchkeyError, `expected a LatchkeyError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

await eachDialect('OAuth flow against a stand-in token endpoint', (dialect) => {
  it('binds state, PKCE verifier and redirect URI; the database holds neither the state nor the verifier', async () => {
    const x = await fixture(dialect);
    try {
      const started = await x.flow.authorize({ tenantId: x.tenantA, userId: 'usr_alice' }, x.connector.id, { returnTo: 'https://app.example.com/done' });
      assert.equal(started.expiresAt, '2031-05-01T12:10:00.000Z');
      const url = new URL(started.authorizationUrl);
      assert.equal(`${url.origin}${url.pathname}`, `${x.token.url}/authorize`);
      const q = url.searchParams;
      assert.equal(q.get('response_type'), 'code');
      assert.equal(q.get('client_id'), 'client-1');
      assert.equal(q.get('redirect_uri'), `${PUBLIC_URL}/api/v1/oauth/callback`);
      assert.equal(q.get('scope'), 'read write');
      assert.equal(q.get('code_challenge_method'), 'S256');
      const state = q.get('state') ?? '';
      assert.match(state, /^[A-Za-z0-9_-]{43}$/, '256 random bits');
      const rows = await stateRows(x.f);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.id, stateObjectId(state));
      assert.equal(rows[0]?.tenant_id, x.tenantA);
      assert.ok(!JSON.stringify(rows).includes(state), 'the state value is not stored');
      assert.deepEqual(JSON.parse(rows[0]?.aad_attributes ?? '[]'), ['connectorId', 'userId', 'redirectUri', 'endUserId', 'connectSessionId', 'browserBinding', 'config']);

      const result = await x.flow.callback(callbackParams(started.authorizationUrl, { code: 'the-code' }));
      assert.deepEqual(result, { ok: true, tenantId: x.tenantA, connectorId: x.connector.id, userId: 'usr_alice', endUserId: null, connectSessionId: null, returnTo: 'https://app.example.com/done' });
      assert.equal(x.token.requests.length, 1);
      const sent = x.token.requests[0] as TokenRequest;
      assert.equal(sent.body.get('grant_type'), 'authorization_code');
      assert.equal(sent.body.get('code'), 'the-code');
      assert.equal(sent.body.get('redirect_uri'), `${PUBLIC_URL}/api/v1/oauth/callback`);
      const verifier = sent.body.get('code_verifier') ?? '';
      assert.equal(createHash('sha256').update(verifier).digest('base64url'), q.get('code_challenge'), 'the verifier matches the challenge');
      assert.ok(!JSON.stringify(rows).includes(verifier), 'the verifier was stored encrypted');
      // client_secret_basic, each part form-urlencoded first (RFC 6749 2.3.1).
      const basic = /^Basic (.+)$/.exec(sent.headers.authorization ?? '')?.[1] ?? '';
      const [id, pass] = Buffer.from(basic, 'base64').toString('utf8').split(':').map((part) => decodeURIComponent(part));
      assert.deepEqual([id, pass], ['client-1', x.clientSecret]);
      assert.equal(sent.body.get('client_secret'), null);

      assert.equal(x.saved.length, 1);
      const saved = x.saved[0] as Saved;
      assert.equal(saved.tenantId, x.tenantA);
      assert.equal(saved.connectorId, x.connector.id);
      assert.equal(saved.userId, null, 'a shared connector stores one connection');
      assert.match(saved.tokens.accessToken, /^at-/);
      assert.match(saved.tokens.refreshToken ?? '', /^rt-/);
      assert.equal(saved.tokens.tokenType, 'bearer');
      assert.deepEqual(saved.tokens.scopes, ['read', 'write']);
      assert.equal(saved.tokens.expiresAt, '2031-05-01T13:00:00.000Z');
      assert.deepEqual(saved.tokens.extra, { instance_url: 'https://acme.example.com' });
      assert.equal((await stateRows(x.f)).length, 0, 'the state was consumed');
    } finally {
      await x.dispose();
    }
  });

  it('sends the client secret in the body for client_secret_post, and per-user tokens to the user', async () => {
    const x = await fixture(dialect);
    try {
      const post = await x.oauth2(x.tenantA, { provider: 'local-post', tokenMode: 'per_user' });
      const started = await x.flow.authorize({ tenantId: x.tenantA, userId: 'usr_bob' }, post.id);
      const result = await x.flow.callback(callbackParams(started.authorizationUrl));
      assert.deepEqual(result, { ok: true, tenantId: x.tenantA, connectorId: post.id, userId: 'usr_bob', endUserId: null, connectSessionId: null, returnTo: null });
      const sent = x.token.requests[0] as TokenRequest;
      assert.equal(sent.headers.authorization, undefined);
      assert.equal(sent.body.get('client_id'), 'client-1');
      assert.equal(sent.body.get('client_secret'), x.clientSecret);
      assert.equal(x.saved[0]?.userId, 'usr_bob');
    } finally {
      await x.dispose();
    }
  });

  it('refuses a replayed state, and of two concurrent callbacks with one state exactly one succeeds', async () => {
    const x = await fixture(dialect);
    try {
      const started = await x.flow.authorize({ tenantId: x.tenantA, userId: 'usr_alice' }, x.connector.id);
      const params = callbackParams(started.authorizationUrl);
      assert.equal((await x.flow.callback(params)).ok, true);
      refused(await x.flow.callback(params), 'invalid_state');
      assert.equal(x.token.requests.length, 1, 'the code was redeemed once');

      const again = await x.flow.authorize({ tenantId: x.tenantA, userId: 'usr_alice' }, x.connector.id);
      const both = await Promise.all(Array.from({ length: 8 }, () => x.flow.callback(callbackParams(again.authorizationUrl, { code: 'c2' }))));
      assert.equal(both.filter((r) => r.ok).length, 1);
      for (const r of both.filter((r) => !r.ok)) refused(r, 'invalid_state');
      assert.equal(x.saved.length, 2);
    } finally {
      await x.dispose();
    }
  });

  it('refuses a tampered, missing or malformed state without touching the real one', async () => {
    const x = await fixture(dialect);
    try {
      const started = await x.flow.authorize({ tenantId: x.tenantA, userId: 'usr_alice' }, x.connector.id);
      const state = new URL(started.authorizationUrl).searchParams.get('state') ?? '';
      const flipped = `${state.slice(0, 20)}${state[20] === 'A' ? 'B' : 'A'}${state.slice(21)}`;
      for (const params of [
        new URLSearchParams({ state: flipped, code: 'c' }),
        new URLSearchParams({ code: 'c' }),
        new URLSearchParams({ state: `${state}x`, code: 'c' }),
        new URLSearchParams({ state: state.slice(1), code: 'c' }),
        new URLSearchParams({ state: stateObjectId(state), code: 'c' }),
        new URLSearchParams({ state: "' or 1=1 --", code: 'c' }),
      ]) {
        const result = refused(await x.flow.callback(params), 'invalid_state');
        assert.equal(result.returnTo, undefined, 'an unknown state has no returnTo');
      }
      assert.equal(x.token.requests.length, 0);
      assert.equal((await x.flow.callback(callbackParams(started.authorizationUrl))).ok, true, 'the real state still works');
    } finally {
      await x.dispose();
    }
  });

  it('names only the tenant and user that started it; a state moved to another tenant fails to decrypt and is gone', async () => {
    const x = await fixture(dialect);
    try {
      // Tenant B's user cannot start a flow on tenant A's connector.
      await rejectsWith(x.flow.authorize({ tenantId: x.tenantB, userId: 'usr_mallory' }, x.connector.id), 'not_found');
      // Tenant B has a data key of its own (a connector of its own).
      await x.oauth2(x.tenantB);

      const started = await x.flow.authorize({ tenantId: x.tenantA, userId: 'usr_alice' }, x.connector.id);
      const id = stateObjectId(new URL(started.authorizationUrl).searchParams.get('state') ?? '');
      await x.f.handle.db.updateTable('objects').set({ tenant_id: x.tenantB }).where('id', '=', id).execute();
      refused(await x.flow.callback(callbackParams(started.authorizationUrl)), 'invalid_state');
      assert.equal((await stateRows(x.f)).length, 0, 'an undecryptable state is deleted, not retried');

      // Rewriting the bound user (to get the tokens stored as someone else's) breaks the AAD.
      const second = await x.flow.authorize({ tenantId: x.tenantA, userId: 'usr_alice' }, x.connector.id);
      const id2 = stateObjectId(new URL(second.authorizationUrl).searchParams.get('state') ?? '');
      const row = await x.f.handle.db.selectFrom('objects').select('attributes').where('id', '=', id2).executeTakeFirstOrThrow();
      const forged = { ...JSON.parse(row.attributes), userId: 'usr_mallory' };
      await x.f.handle.db.updateTable('objects').set({ attributes: JSON.stringify(forged) }).where('id', '=', id2).execute();
      refused(await x.flow.callback(callbackParams(second.authorizationUrl)), 'invalid_state');

      // A genuine state names its own tenant and user, whoever completes it.
      const third = await x.flow.authorize({ tenantId: x.tenantA, userId: 'usr_alice' }, x.connector.id);
      const result = await x.flow.callback(callbackParams(third.authorizationUrl));
      assert.ok(result.ok);
      assert.equal(result.tenantId, x.tenantA);
      assert.equal(result.userId, 'usr_alice');
      assert.equal(x.token.requests.length, 1, 'the refused states never reached the token endpoint');
    } finally {
      await x.dispose();
    }
  });

  it('refuses a state whose verifier ciphertext was tampered with', async () => {
    const x = await fixture(dialect);
    try {
      const started = await x.flow.authorize({ tenantId: x.tenantA, userId: 'usr_alice' }, x.connector.id);
      const id = stateObjectId(new URL(started.authorizationUrl).searchParams.get('state') ?? '');
      const row = await x.f.handle.db.selectFrom('objects').select('secrets').where('id', '=', id).executeTakeFirstOrThrow();
      const secrets = JSON.parse(row.secrets) as Record<string, string>;
      const bytes = Buffer.from(secrets.codeVerifier ?? '', 'base64');
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
      await x.f.handle.db.updateTable('objects').set({ secrets: JSON.stringify({ codeVerifier: bytes.toString('base64') }) }).where('id', '=', id).execute();
      refused(await x.flow.callback(callbackParams(started.authorizationUrl)), 'invalid_state');
      assert.equal(x.token.requests.length, 0);
      assert.equal((await stateRows(x.f)).length, 0);
    } finally {
      await x.dispose();
    }
  });

  it('refuses returnTo on a foreign origin at authorize; allows the global list, the connector\'s own and Latchkey paths', async () => {
    const x = await fixture(dialect);
    try {
      for (const returnTo of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'https://app.example.com@evil.example/', 'javascript:alert(1)']) {
        const err = await rejectsWith(x.flow.authorize({ tenantId: x.tenantA, userId: 'usr_alice' }, x.connector.id, { returnTo }), 'validation_failed');
        assert.equal(err.status, 400);
      }
      assert.equal((await stateRows(x.f)).length, 0, 'no state for a refused request');
      const own = await x.oauth2(x.tenantA, { allowedReturnOrigins: ['https://own.example.com'] });
      await x.flow.authorize({ tenantId: x.tenantA, userId: 'u' }, own.id, { returnTo: 'https://own.example.com/x' });
      await x.flow.authorize({ tenantId: x.tenantA, userId: 'u' }, own.id, { returnTo: 'https://app.example.com/x' });
      await rejectsWith(x.flow.authorize({ tenantId: x.tenantA, userId: 'u' }, x.connector.id, { returnTo: 'https://own.example.com/x' }), 'validation_failed');
      const local = await x.flow.authorize({ tenantId: x.tenantA, userId: 'u' }, x.connector.id, { returnTo: '/console/connectors' });
      const result = await x.flow.callback(callbackParams(local.authorizationUrl));
      assert.ok(result.ok);
      assert.equal(result.returnTo, `${PUBLIC_URL}/console/connectors`);
    } finally {
      await x.dispose();
    }
  });

  it('turns a provider error into a clean failure and consumes the state', async () => {
    const x = await fixture(dialect);
    try {
      const started = await x.flow.authorize({ tenantId: x.tenantA, userId: 'usr_alice' }, x.connector.id, { returnTo: 'https://app.example.com/back' });
      const params = callbackParams(started.authorizationUrl, { error: 'access_denied', error_description: 'The user said <b>no</b>\r\nthanks.' });
      const result = refused(await x.flow.callback(params), 'provider_error');
      assert.equal(result.providerError, 'access_denied');
      assert.equal(result.message, 'Generic OAuth 2.0 did not authorize the connection: The user said <b>no</b> thanks.');
      assert.equal(result.returnTo, 'https://app.example.com/back');
      refused(await x.flow.callback(params), 'invalid_state');
      assert.equal(x.token.requests.length, 0);
      assert.equal(x.saved.length, 0);
    } finally {
      await x.dispose();
    }
  });

  it('fails cleanly when the token endpoint is down, slow, broken or refuses the code', async () => {
    const x = await fixture(dialect);
    try {
      const down = await x.oauth2(x.tenantA, {
        config: { clientId: 'c', authorizationUrl: `${x.token.url}/authorize`, tokenUrl: `http://127.0.0.1:${await closedPort()}/token` },
      });
      const attempt = async (connectorId: string) => {
        const started = await x.flow.authorize({ tenantId: x.tenantA, userId: 'usr_alice' }, connectorId, { returnTo: 'https://app.example.com/r' });
        const t0 = Date.now();
        const result = await x.flow.callback(callbackParams(started.authorizationUrl));
        return { result, ms: Date.now() - t0 };
      };
      const cases: [Mode | 'down', string, RegExp][] = [
        ['down', 'provider_unavailable', /could not be reached/],
        ['slow', 'provider_unavailable', /did not answer in time/],
        ['garbage', 'invalid_provider_response', /does not follow the OAuth protocol/],
        ['html', 'invalid_provider_response', /does not follow the OAuth protocol/],
        ['no_access_token', 'invalid_provider_response', /does not follow the OAuth protocol/],
        ['error500', 'provider_unavailable', /HTTP 500/],
        ['invalid_grant', 'token_exchange_failed', /refused the authorization \(invalid_grant\)/],
      ];
      for (const [mode, code, message] of cases) {
        if (mode !== 'down') x.token.setMode(mode);
        const { result, ms } = await attempt(mode === 'down' ? down.id : x.connector.id);
        const failure = refused(result, code);
        assert.match(failure.message, message, mode);
        assert.equal(failure.returnTo, 'https://app.example.com/r', mode);
        assert.ok(ms < TIMEOUT_MS * 3, `${mode} took ${ms} ms`);
        if (mode === 'invalid_grant') assert.equal(failure.providerError, 'invalid_grant');
      }
      assert.equal(x.saved.length, 0, 'nothing was stored');
      assert.equal((await stateRows(x.f)).length, 0, 'every state was consumed');
    } finally {
      await x.dispose();
    }
  });

  it('reports a failure to store the tokens as internal_error', async () => {
    const x = await fixture(dialect);
    try {
      const flow = x.newFlow({ onTokens: async () => { throw new Error('disk full'); } });
      const started = await flow.authorize({ tenantId: x.tenantA, userId: 'usr_alice' }, x.connector.id);
      const failure = refused(await flow.callback(callbackParams(started.authorizationUrl)), 'internal_error');
      assert.ok(!failure.message.includes('disk'), 'no internal detail');
    } finally {
      await x.dispose();
    }
  });

  it('refuses an expired state and deletes it; cleanupExpired deletes only expired states', async () => {
    const x = await fixture(dialect);
    try {
      const old = await x.flow.authorize({ tenantId: x.tenantA, userId: 'usr_alice' }, x.connector.id);
      x.clock.advance(10 * 60 * 1000);
      refused(await x.flow.callback(callbackParams(old.authorizationUrl)), 'invalid_state');
      assert.equal((await stateRows(x.f)).length, 0, 'the expired state is gone');
      assert.equal(x.token.requests.length, 0);

      const a = await x.flow.authorize({ tenantId: x.tenantA, userId: 'u1' }, x.connector.id);
      await x.flow.authorize({ tenantId: x.tenantA, userId: 'u2' }, x.connector.id);
      x.clock.advance(6 * 60 * 1000);
      const fresh = await x.flow.authorize({ tenantId: x.tenantA, userId: 'u3' }, x.connector.id);
      x.clock.advance(4 * 60 * 1000 - 1);
      assert.equal(await x.flow.cleanupExpired(), 0, 'nothing has expired yet');
      x.clock.advance(1);
      assert.equal(await x.flow.cleanupExpired(), 2);
      const left = await stateRows(x.f);
      assert.deepEqual(left.map((r) => r.id), [stateObjectId(new URL(fresh.authorizationUrl).searchParams.get('state') ?? '')]);
      assert.equal((await x.connectors.list(x.tenantA)).items.length, 1, 'other objects are untouched');
      refused(await x.flow.callback(callbackParams(a.authorizationUrl)), 'invalid_state');
      assert.equal((await x.flow.callback(callbackParams(fresh.authorizationUrl))).ok, true);
    } finally {
      await x.dispose();
    }
  });

  it('uses a connector\'s own redirect URI for both the authorization request and the code exchange', async () => {
    const x = await fixture(dialect);
    try {
      const custom = await x.oauth2(x.tenantA, { redirectUri: 'https://connect.example.com/oauth/back' });
      const started = await x.flow.authorize({ tenantId: x.tenantA, userId: 'u' }, custom.id);
      assert.equal(new URL(started.authorizationUrl).searchParams.get('redirect_uri'), 'https://connect.example.com/oauth/back');
      assert.equal((await x.flow.callback(callbackParams(started.authorizationUrl))).ok, true);
      assert.equal(x.token.requests[0]?.body.get('redirect_uri'), 'https://connect.example.com/oauth/back');
    } finally {
      await x.dispose();
    }
  });

  it('refuses to start when the issuer metadata cannot be read, and stores no state', async () => {
    const x = await fixture(dialect);
    try {
      const oidc = await x.connectors.create(ACTOR, x.tenantA, {
        name: 'Gone',
        provider: 'oidc',
        authType: 'oauth_authorization_code',
        config: { issuer: `http://127.0.0.1:${await closedPort()}`, clientId: 'c' },
        secrets: { clientSecret: 's' },
      });
      const err = await rejectsWith(x.flow.authorize({ tenantId: x.tenantA, userId: 'u' }, oidc.id), 'provider_unavailable');
      assert.match(err.message, /metadata of Generic OpenID Connect could not be read/);
      assert.equal((await stateRows(x.f)).length, 0);
    } finally {
      await x.dispose();
    }
  });

  it('refuses to start a flow on a connector that does not use the authorization code', async () => {
    const x = await fixture(dialect);
    try {
      const cc = await x.oauth2(x.tenantA, { authType: 'oauth_client_credentials' });
      await rejectsWith(x.flow.authorize({ tenantId: x.tenantA, userId: 'u' }, cc.id), 'invalid_request');
      await rejectsWith(x.flow.authorize({ tenantId: x.tenantA, userId: 'u' }, 'connector_nope'), 'not_found');
      // A connector deleted while the user is at the provider.
      const started = await x.flow.authorize({ tenantId: x.tenantA, userId: 'u' }, x.connector.id);
      await x.connectors.delete(ACTOR, x.tenantA, x.connector.id);
      refused(await x.flow.callback(callbackParams(started.authorizationUrl)), 'connector_unavailable');
    } finally {
      await x.dispose();
    }
  });
  it('a plain-http OAuth server without the insecure-loopback opt-in: authorize refuses (insecure_endpoint) and a pending callback fails plainly', async () => {
    const x = await fixture(dialect);
    try {
      // Started while the opt-in was on; the server then restarted without it.
      const started = await x.flow.authorize({ tenantId: x.tenantA, userId: 'u' }, x.connector.id);
      const strict = x.newFlow({ outbound: createOutbound({ clock: x.clock }) });
      const err = await rejectsWith(strict.authorize({ tenantId: x.tenantA, userId: 'u' }, x.connector.id), 'insecure_endpoint');
      assert.match(err.message, /authorization endpoint http:\/\/127\.0\.0\.1:\d+\/authorize uses plain http.*--allow-insecure-loopback/);
      const result = refused(await strict.callback(callbackParams(started.authorizationUrl)), 'connector_unavailable');
      assert.match(result.message, /token endpoint .* uses plain http/);
      assert.equal(x.saved.length, 0);
    } finally {
      await x.dispose();
    }
  });
});
