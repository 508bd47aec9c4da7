// The authorization code flow end to end against a real authorization server (oidc-provider on
// 127.0.0.1): authorize → the provider's dev login and consent pages, driven with fetch and a cookie
// jar → our callback → onTokens. For a shared OpenID Connect connector (endpoints discovered) and a
// per-user generic OAuth 2.0 connector (endpoints from config), on both databases.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { CONNECTOR_TYPE, createConnectorService, loadCatalog, type ConnectorService, type ConnectorView } from '../src/connectors/index.js';
import type { Actor } from '../src/identity/index.js';
import { createOutbound } from '../src/outbound/index.js';
import { createOAuthFlow, OAUTH_STATE_TYPE, type CallbackResult, type ConnectionOwner, type OAuthFlow, type TokenSet } from '../src/oauth/index.js';
import { eachDialect } from './support/databases.js';
import { startOidcProvider, type TestClient, type TestProvider } from './support/oidc-provider.js';
import { createStoreFixture, type StoreFixture } from './support/store.js';

const PUBLIC_URL = 'https://latchkey.test';
const CALLBACK = `${PUBLIC_URL}/api/v1/oauth/callback`;
const ACTOR: Actor = { type: 'system' };
const TIMEOUT_MS = 500;
const HANG_MS = 5 * 60_000;
const catalog = loadCatalog();

interface Saved {
  tenantId: string;
  connectorId: string;
  userId: ConnectionOwner;
  tokens: TokenSet;
}

interface Fixture {
  f: StoreFixture;
  op: TestProvider;
  connectors: ConnectorService;
  flow: OAuthFlow;
  saved: Saved[];
  /** Requests the flow made, by URL. */
  requests: string[];
  tenantId: string;
  oidc(client: TestClient, tokenMode: 'shared' | 'per_user'): Promise<ConnectorView>;
  oauth2(client: TestClient, tokenMode: 'shared' | 'per_user'): Promise<ConnectorView>;
  dispose(): Promise<void>;
}

async function fixture(dialect: 'sqlite' | 'postgres'): Promise<Fixture> {
  const f = await createStoreFixture(dialect, [CONNECTOR_TYPE, OAUTH_STATE_TYPE]);
  const op = await startOidcProvider({ redirectUris: [CALLBACK] });
  const connectors = createConnectorService({ store: f.store, catalog, allowInsecureLoopback: true });
  const saved: Saved[] = [];
  const requests: string[] = [];
  const flow = createOAuthFlow({
    store: f.store,
    db: f.handle.db,
    connectors,
    publicUrl: PUBLIC_URL,
    allowedReturnOrigins: ['https://app.example.com'],
    outbound: createOutbound({
      timeoutMs: TIMEOUT_MS,
      allowInsecureLoopback: true,
      egressAllow: ['127.0.0.1/32'],
      fetch: (input, init) => {
        requests.push(String(input instanceof Request ? input.url : input));
        return fetch(input, init);
      },
    }),
    onTokens: async (tenantId, connectorId, userId, tokens) => {
      saved.push({ tenantId, connectorId, userId, tokens });
    },
  });
  const tenantId = `ten_${randomBytes(6).toString('hex')}`;
  return {
    f,
    op,
    connectors,
    flow,
    saved,
    requests,
    tenantId,
    oidc: (client, tokenMode) =>
      connectors.create(ACTOR, tenantId, {
        name: 'Test OIDC',
        provider: 'oidc',
        authType: 'oauth_authorization_code',
        tokenMode,
        config: { issuer: op.issuer, clientId: client.clientId, scopes: 'openid offline_access api:read' },
        secrets: { clientSecret: client.clientSecret },
      }),
    oauth2: (client, tokenMode) =>
      connectors.create(ACTOR, tenantId, {
        name: 'Test OAuth 2.0',
        provider: 'oauth2',
        authType: 'oauth_authorization_code',
        tokenMode,
        config: { authorizationUrl: op.authorizationUrl, tokenUrl: op.tokenUrl, clientId: client.clientId, scopes: 'openid api:read api:write' },
        secrets: { clientSecret: client.clientSecret },
      }),
    async dispose() {
      await op.stop();
      await f.dispose();
    },
  };
}

/**
 * Plays the user's browser at the provider: follows redirects by hand with a cookie jar, signs in
 * with any login, consents, and returns the parameters the provider sends to our callback.
 * With `abort`, the user cancels on the login page instead.
 */
async function browse(authorizationUrl: string, login: string, options: { abort?: boolean } = {}): Promise<URLSearchParams> {
  const jar = new Map<string, string>();
  let url = authorizationUrl;
  let form: URLSearchParams | undefined;
  for (let step = 0; step < 20; step++) {
    if (url.startsWith(CALLBACK)) return new URL(url).searchParams;
    const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const res = await fetch(url, {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: { ...(cookie ? { cookie } : {}), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: form,
    });
    for (const line of res.headers.getSetCookie()) {
      const pair = line.split(';')[0] ?? '';
      const eq = pair.indexOf('=');
      const [name, value] = [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
      if (value) jar.set(name, value);
      else jar.delete(name);
    }
    form = undefined;
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      url = new URL(location, url).href;
      continue;
    }
    const html = await res.text();
    assert.equal(res.status, 200, `the provider answered ${res.status} at ${url}: ${html.slice(0, 300)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
    assert.ok(action && prompt, `a login or consent form at ${url}`);
    if (options.abort) {
      url = new URL(`${action}/abort`, url).href;
      continue;
    }
    url = new URL(action, url).href;
    form = prompt === 'login' ? new URLSearchParams({ prompt, login, password: 'anything' }) : new URLSearchParams({ prompt });
  }
  assert.fail('the provider never redirected to the callback');
}

function failed(result: CallbackResult, code: string): Extract<CallbackResult, { ok: false }> {
  assert.ok(!result.ok, `expected ${code}, got success`);
  assert.equal(result.code, code, result.message);
  return result;
}

await eachDialect('OAuth authorization code flow with a real authorization server', (dialect) => {
  it('connects a shared OpenID Connect connector (discovered endpoints, client_secret_basic)', async () => {
    const x = await fixture(dialect);
    try {
      const connector = await x.oidc(x.op.clients.basic, 'shared');
      const started = await x.flow.authorize({ tenantId: x.tenantId, userId: 'usr_admin' }, connector.id, { returnTo: 'https://app.example.com/connected' });
      assert.ok(started.authorizationUrl.startsWith(`${x.op.issuer}/auth?`), 'the discovered authorization endpoint');
      const params = await browse(started.authorizationUrl, 'alice');
      assert.ok(params.get('code'), 'the provider issued a code');
      assert.equal(params.get('iss'), x.op.issuer, 'RFC 9207 iss, checked against the discovered issuer');

      const result = await x.flow.callback(params);
      assert.deepEqual(result, { ok: true, tenantId: x.tenantId, connectorId: connector.id, userId: 'usr_admin', endUserId: null, connectSessionId: null, returnTo: 'https://app.example.com/connected' });
      assert.equal(x.saved.length, 1);
      const { userId, tokens } = x.saved[0] as Saved;
      assert.equal(userId, null, 'shared: one connection for the connector');
      assert.ok(tokens.accessToken && tokens.refreshToken, 'access and refresh tokens');
      assert.equal(tokens.tokenType, 'bearer');
      assert.ok(tokens.expiresAt && Date.parse(tokens.expiresAt) > Date.now());
      assert.ok(tokens.scopes?.includes('api:read'));
      assert.ok(!JSON.stringify(tokens.extra ?? {}).includes(tokens.accessToken) && !('id_token' in (tokens.extra ?? {})), 'no token in extra');
      assert.equal(await x.op.introspect(tokens.accessToken, x.op.clients.basic), true, 'the access token is live at the provider');
      assert.equal(await x.op.introspect(tokens.refreshToken as string, x.op.clients.basic), true, 'and so is the refresh token');
      assert.equal(x.op.counters.authorizationCode, 1);

      // Replaying the callback is refused before the provider sees the code again.
      failed(await x.flow.callback(params), 'invalid_state');
      assert.equal(x.op.counters.authorizationCode, 1);

      // Discovery is cached per issuer.
      await x.flow.authorize({ tenantId: x.tenantId, userId: 'usr_admin' }, connector.id);
      assert.equal(x.requests.filter((u) => u.includes('/.well-known/openid-configuration')).length, 1);
    } finally {
      await x.dispose();
    }
  });

  it('connects a per-user generic OAuth 2.0 connector for each user (client_secret_post)', async () => {
    const x = await fixture(dialect);
    try {
      const connector = await x.oauth2(x.op.clients.post, 'per_user');
      for (const [userId, login] of [['usr_alice', 'alice'], ['usr_bob', 'bob']] as const) {
        const started = await x.flow.authorize({ tenantId: x.tenantId, userId }, connector.id);
        const result = await x.flow.callback(await browse(started.authorizationUrl, login));
        assert.deepEqual(result, { ok: true, tenantId: x.tenantId, connectorId: connector.id, userId, endUserId: null, connectSessionId: null, returnTo: null });
      }
      assert.deepEqual(x.saved.map((s) => s.userId), ['usr_alice', 'usr_bob'], 'per user: one connection each');
      for (const { tokens } of x.saved) {
        assert.ok(tokens.accessToken && tokens.refreshToken);
        assert.equal(await x.op.introspect(tokens.accessToken, x.op.clients.post), true);
      }
      assert.notEqual(x.saved[0]?.tokens.accessToken, x.saved[1]?.tokens.accessToken);
      assert.equal(x.op.counters.authorizationCode, 2);
    } finally {
      await x.dispose();
    }
  });

  it('refuses a code redeemed with another state\'s PKCE verifier (the provider rejects it)', async () => {
    const x = await fixture(dialect);
    try {
      const connector = await x.oidc(x.op.clients.basic, 'shared');
      const victim = await x.flow.authorize({ tenantId: x.tenantId, userId: 'usr_alice' }, connector.id);
      const attacker = await x.flow.authorize({ tenantId: x.tenantId, userId: 'usr_mallory' }, connector.id);
      const stolen = await browse(victim.authorizationUrl, 'alice');
      // The victim's code injected with the attacker's own (valid) state: PKCE binds the code to the victim's verifier.
      const injected = new URLSearchParams(stolen);
      injected.set('state', new URL(attacker.authorizationUrl).searchParams.get('state') ?? '');
      const result = failed(await x.flow.callback(injected), 'token_exchange_failed');
      assert.equal(result.providerError, 'invalid_grant');
      assert.equal(x.saved.length, 0, 'nothing stored for the attacker');
      assert.equal(x.op.counters.authorizationCode, 1);
    } finally {
      await x.dispose();
    }
  });

  it('reports the user cancelling at the provider as a clean provider error', async () => {
    const x = await fixture(dialect);
    try {
      const connector = await x.oidc(x.op.clients.basic, 'per_user');
      const started = await x.flow.authorize({ tenantId: x.tenantId, userId: 'usr_alice' }, connector.id, { returnTo: 'https://app.example.com/back' });
      const params = await browse(started.authorizationUrl, 'alice', { abort: true });
      assert.equal(params.get('error'), 'access_denied');
      const result = failed(await x.flow.callback(params), 'provider_error');
      assert.equal(result.providerError, 'access_denied');
      assert.equal(result.message, 'Generic OpenID Connect did not authorize the connection: End-User aborted interaction.');
      assert.equal(result.returnTo, 'https://app.example.com/back');
      assert.equal(x.op.counters.token, 0);
    } finally {
      await x.dispose();
    }
  });

  it('fails cleanly when the token endpoint is down, slow or answers garbage', async () => {
    const x = await fixture(dialect);
    try {
      const connector = await x.oidc(x.op.clients.basic, 'shared');
      const cases: [string, () => void, string][] = [
        ['down', () => x.op.setDown(true), 'provider_unavailable'],
        // Held for minutes: a hang, which only the flow's timeout ends.
        ['slow', () => (x.op.setDown(false), x.op.setSlow(HANG_MS)), 'provider_unavailable'],
        ['not JSON', () => (x.op.setSlow(0), x.op.setGarbage('not_json')), 'invalid_provider_response'],
        ['no access token', () => x.op.setGarbage('missing_access_token'), 'invalid_provider_response'],
      ];
      for (const [name, breakIt, code] of cases) {
        const started = await x.flow.authorize({ tenantId: x.tenantId, userId: 'usr_alice' }, connector.id, { returnTo: 'https://app.example.com/r' });
        const params = await browse(started.authorizationUrl, 'alice');
        breakIt();
        const t0 = Date.now();
        const result = failed(await x.flow.callback(params), code);
        // A ceiling only a hang trips (the timeout is 500 ms, the hang 5 minutes).
        assert.ok(Date.now() - t0 < HANG_MS / 5, `${name}: bounded by the timeout`);
        assert.equal(result.returnTo, 'https://app.example.com/r', name);
        assert.ok(!/[\r\n<>]/.test(result.message), `${name}: one plain sentence`);
      }
      assert.equal(x.saved.length, 0);
      x.op.setGarbage(false);
      const started = await x.flow.authorize({ tenantId: x.tenantId, userId: 'usr_alice' }, connector.id);
      assert.equal((await x.flow.callback(await browse(started.authorizationUrl, 'alice'))).ok, true, 'works again once the provider recovers');
    } finally {
      await x.dispose();
    }
  });
});
