// The token client against a real authorization server (oidc-provider with refresh-token rotation:
// a double refresh revokes the grant), on SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { LatchkeyError, manualClock } from '../src/core/index.js';
import type { DialectName } from '../src/db/index.js';
import { createOutbound } from '../src/outbound/index.js';
import {
  CONNECTION_TYPE,
  connectionId,
  createConnectionStore,
  createTokenClient,
  type ConnectionStore,
  type ResolvedClient,
  type TokenClient,
} from '../src/oauth/index.js';
import { eachDialect } from './support/databases.js';
import { startOidcProvider, type TestClient, type TestProvider } from './support/oidc-provider.js';
import { createStoreFixture, type StoreFixture } from './support/store.js';

const MINUTE = 60_000;
/** How long a "hung" provider holds a request (it lets go as soon as the client disconnects). */
const HANG_MS = 5 * MINUTE;
let op: TestProvider;
/** Providers whose access tokens live 300 s and 2 s. */
let fiveMinutes: TestProvider;
let twoSeconds: TestProvider;

before(async () => {
  op = await startOidcProvider();
  fiveMinutes = await startOidcProvider({ accessTokenTtl: 300 });
  twoSeconds = await startOidcProvider({ accessTokenTtl: 2 });
});
after(async () => {
  await Promise.all([op.stop(), fiveMinutes.stop(), twoSeconds.stop()]);
});

interface Setup {
  f: StoreFixture;
  op: TestProvider;
  clock: ReturnType<typeof manualClock>;
  tenantId: string;
  connectorId: string;
  resolved: ResolvedClient;
  connections: ConnectionStore;
  tokens: TokenClient;
  dispose(): Promise<void>;
}

const random = (prefix: string) => `${prefix}_${randomBytes(6).toString('hex')}`;

function codeOf(err: unknown): string | undefined {
  return err instanceof LatchkeyError ? (err.code as string) : undefined;
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<LatchkeyError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    assert.equal(codeOf(err), code, `expected ${code}, got ${String(err)}`);
    return true;
  });
  return caught as LatchkeyError;
}

async function setup(
  dialect: DialectName,
  options: {
    client?: TestClient;
    authType?: ResolvedClient['authType'];
    tokenMode?: ResolvedClient['tokenMode'];
    timeoutMs?: number;
    revocation?: boolean;
    clientSecret?: string;
    cacheMs?: number;
    provider?: TestProvider;
    allowInsecureLoopback?: boolean;
  } = {},
): Promise<Setup> {
  const f = await createStoreFixture(dialect, [CONNECTION_TYPE]);
  const clock = manualClock(new Date());
  const provider = options.provider ?? op;
  const client = options.client ?? provider.clients.basic;
  const connectorId = random('conn');
  const resolved: ResolvedClient = {
    connectorId,
    tokenMode: options.tokenMode ?? 'shared',
    authType: options.authType ?? 'oauth_authorization_code',
    tokenUrl: provider.tokenUrl,
    ...(options.revocation === false ? {} : { revocationUrl: provider.revocationUrl }),
    issuer: provider.issuer,
    clientId: client.clientId,
    clientSecret: options.clientSecret ?? client.clientSecret,
    clientAuthentication: client.authMethod,
    scopes: ['api:read'],
    scopeSeparator: ' ',
    tokenParams: {},
  };
  const tokens = createTokenClient({
    store: f.store,
    clock,
    outbound: createOutbound({ timeoutMs: options.timeoutMs ?? 5000, allowInsecureLoopback: options.allowInsecureLoopback ?? true, egressAllow: ['127.0.0.1/32'] }),
    ...(options.cacheMs !== undefined ? { cacheMs: options.cacheMs } : {}),
    resolveClient: async (_tenantId, id) => {
      assert.equal(id, connectorId);
      return resolved;
    },
  });
  provider.resetCounters();
  provider.setDown(false);
  provider.setSlow(0);
  provider.setGarbage(false);
  return { f, op: provider, clock, tenantId: random('t'), connectorId, resolved, connections: createConnectionStore({ store: f.store }), tokens, dispose: () => f.dispose() };
}

/** A grant at the provider, stored as a connection whose access token expired a minute ago. */
async function connectExpired(s: Setup, options: { userId?: string | null; client?: TestClient; withRefreshToken?: boolean } = {}) {
  const minted = await s.op.mintGrant({ accountId: random('acct'), scope: 'offline_access api:read', client: options.client ?? s.op.clients.basic });
  await s.connections.save(s.tenantId, s.connectorId, options.userId ?? null, {
    accessToken: minted.accessToken,
    ...(options.withRefreshToken === false ? {} : { refreshToken: minted.refreshToken }),
    tokenType: 'bearer',
    scopes: ['offline_access', 'api:read'],
    expiresAt: new Date(s.clock.now().getTime() - MINUTE).toISOString(),
  });
  return minted;
}

async function stored(s: Setup, id = connectionId(s.connectorId)) {
  return (await s.f.store.getDecrypted(CONNECTION_TYPE.name, s.tenantId, id)).attributes as { accessToken: string; refreshToken?: string };
}

await eachDialect('token client', (dialect) => {
  it('refreshes an expired token once, stores the rotated refresh token, and hands out the fresh one without the provider', async () => {
    const s = await setup(dialect);
    try {
      const minted = await connectExpired(s);
      const first = await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      assert.notEqual(first.accessToken, minted.accessToken);
      assert.equal(first.tokenType, 'Bearer');
      assert.ok(first.expiresAt !== null && Date.parse(first.expiresAt) > s.clock.now().getTime() + 50 * MINUTE);
      assert.equal(op.counters.refresh, 1);
      const saved = await stored(s);
      assert.equal(saved.accessToken, first.accessToken);
      assert.ok(saved.refreshToken && saved.refreshToken !== minted.refreshToken, 'the rotated refresh token is stored');
      assert.equal(await op.introspect(first.accessToken), true);

      // Fresh: no provider call, the same token.
      assert.deepEqual(await s.tokens.getAccessToken(s.tenantId, s.connectorId), first);
      assert.equal(op.counters.token, 1);
      const view = await s.connections.get(s.tenantId, connectionId(s.connectorId));
      assert.equal(view.status, 'active');
      assert.equal(view.lastRefreshAt, s.clock.now().toISOString());
      assert.equal(view.lastRefreshError, null);
      assert.equal(op.counters.grantsRevoked, 0);
    } finally {
      await s.dispose();
    }
  });

  it('1,000 concurrent callers on an expired token: one refresh reaches the provider, all get its token', async () => {
    const s = await setup(dialect);
    try {
      await connectExpired(s);
      const results = await Promise.all(Array.from({ length: 1000 }, () => s.tokens.getAccessToken(s.tenantId, s.connectorId)));
      assert.equal(op.counters.refresh, 1);
      assert.equal(op.counters.token, 1);
      assert.equal(new Set(results.map((r) => r.accessToken)).size, 1);
      assert.equal(results[0]?.accessToken, (await stored(s)).accessToken);
      // The grant survived: the stored refresh token still works.
      s.clock.advance(2 * 60 * MINUTE);
      const next = await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      assert.notEqual(next.accessToken, results[0]?.accessToken);
      assert.equal(op.counters.refresh, 2);
      assert.equal(op.counters.grantsRevoked, 0);
      assert.equal(await op.introspect(next.accessToken), true);
    } finally {
      await s.dispose();
    }
  });

  it('three rotations in a row keep working', async () => {
    const s = await setup(dialect, { client: op.clients.post });
    try {
      const minted = await connectExpired(s, { client: op.clients.post });
      const seen = new Set([minted.accessToken]);
      const refreshTokens = new Set([minted.refreshToken]);
      for (let i = 1; i <= 3; i++) {
        const token = await s.tokens.getAccessToken(s.tenantId, s.connectorId);
        seen.add(token.accessToken);
        refreshTokens.add((await stored(s)).refreshToken as string);
        assert.equal(op.counters.refresh, i);
        s.clock.advance(2 * 60 * MINUTE);
      }
      assert.equal(seen.size, 4);
      assert.equal(refreshTokens.size, 4, 'every refresh rotated the refresh token');
      assert.equal(op.counters.grantsRevoked, 0);
      assert.equal(await op.introspect((await stored(s)).accessToken, op.clients.post), true);
    } finally {
      await s.dispose();
    }
  });

  it('keeps the old refresh token when the response carries none', async () => {
    const s = await setup(dialect, { client: op.clients.noRotation });
    try {
      const minted = await connectExpired(s, { client: op.clients.noRotation });
      const first = await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      assert.equal((await stored(s)).refreshToken, minted.refreshToken);
      s.clock.advance(2 * 60 * MINUTE);
      const second = await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      assert.notEqual(second.accessToken, first.accessToken);
      assert.equal((await stored(s)).refreshToken, minted.refreshToken);
      assert.equal(op.counters.refresh, 2);
    } finally {
      await s.dispose();
    }
  });

  it('invalid_grant (grant revoked at the provider): needs_reauthorization, and the provider is not asked again until a reconnect', async () => {
    const s = await setup(dialect);
    try {
      const minted = await connectExpired(s);
      await op.revokeGrant(minted.grantId);
      const err = await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'needs_reauthorization');
      assert.match(err.message, /invalid_grant/);
      const id = connectionId(s.connectorId);
      const view = await s.connections.get(s.tenantId, id);
      assert.equal(view.status, 'needs_reauthorization');
      assert.equal(view.lastRefreshError, 'invalid_grant');
      assert.equal(view.lastFailureAt, s.clock.now().toISOString());
      assert.equal(op.counters.token, 1);

      s.clock.advance(24 * 60 * MINUTE);
      await Promise.all(Array.from({ length: 20 }, () => rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'needs_reauthorization')));
      assert.equal(op.counters.token, 1, 'no further provider calls');

      // The user reconnects: active again, and refreshing works.
      await connectExpired(s);
      assert.equal((await s.connections.get(s.tenantId, id)).status, 'active');
      await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      assert.equal((await s.connections.get(s.tenantId, id)).status, 'active');
      assert.equal(op.counters.refresh, 2);
    } finally {
      await s.dispose();
    }
  });

  it('invalid_client (a wrong client secret, by HTTP Basic and in the body): needs_reauthorization', async () => {
    for (const client of [op.clients.basic, op.clients.post]) {
      const s = await setup(dialect, { client, clientSecret: 'not-the-secret' });
      try {
        await connectExpired(s, { client });
        await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'needs_reauthorization');
        const view = await s.connections.get(s.tenantId, connectionId(s.connectorId));
        assert.equal(view.status, 'needs_reauthorization');
        assert.equal(view.lastRefreshError, 'invalid_client');
      } finally {
        await s.dispose();
      }
    }
  });

  it('provider down (503): degraded with exponential backoff, then active again on the next success', async () => {
    const s = await setup(dialect);
    try {
      await connectExpired(s);
      const id = connectionId(s.connectorId);
      op.setDown(true);
      const err = await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'connection_degraded');
      let view = await s.connections.get(s.tenantId, id);
      assert.equal(view.status, 'degraded');
      assert.equal(view.lastRefreshError, 'server_error');
      assert.ok(view.backoffUntil !== null);
      assert.equal(err.details?.['retryAfter'], view.backoffUntil);
      const firstDelay = Date.parse(view.backoffUntil) - s.clock.now().getTime();
      assert.ok(firstDelay >= 800 && firstDelay <= 1000, `first backoff ${firstDelay} ms`);

      // Within the backoff nobody calls the provider.
      await Promise.all(Array.from({ length: 10 }, () => rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'connection_degraded')));
      assert.equal(op.counters.token, 1);

      // After it, one more try (still down): the backoff doubles.
      s.clock.set(new Date(Date.parse(view.backoffUntil) + 1));
      await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'connection_degraded');
      assert.equal(op.counters.token, 2);
      view = await s.connections.get(s.tenantId, id);
      const secondDelay = Date.parse(view.backoffUntil as string) - s.clock.now().getTime();
      assert.ok(secondDelay >= 1600 && secondDelay <= 2000, `second backoff ${secondDelay} ms`);

      op.setDown(false);
      s.clock.set(new Date(Date.parse(view.backoffUntil as string) + 1));
      const token = await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      assert.equal(await op.introspect(token.accessToken), true);
      view = await s.connections.get(s.tenantId, id);
      assert.equal(view.status, 'active');
      assert.equal(view.lastRefreshError, null);
      assert.equal(view.backoffUntil, null);
      assert.equal(op.counters.refresh, 3);
    } finally {
      await s.dispose();
    }
  });

  it('a degraded connection still hands out its token until it expires', async () => {
    const s = await setup(dialect);
    try {
      const minted = await connectExpired(s);
      // Expiring within the 5-minute skew, not yet expired: refreshed ahead of time.
      await s.connections.save(s.tenantId, s.connectorId, null, {
        accessToken: minted.accessToken,
        refreshToken: minted.refreshToken,
        tokenType: 'bearer',
        expiresAt: new Date(s.clock.now().getTime() + 2 * MINUTE).toISOString(),
      });
      op.setDown(true);
      assert.equal((await s.tokens.getAccessToken(s.tenantId, s.connectorId)).accessToken, minted.accessToken);
      assert.equal((await s.connections.get(s.tenantId, connectionId(s.connectorId))).status, 'degraded');
      assert.equal((await s.tokens.getAccessToken(s.tenantId, s.connectorId)).accessToken, minted.accessToken);
      assert.equal(op.counters.token, 1, 'in backoff: no second call');
      s.clock.advance(3 * MINUTE);
      await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'connection_degraded');
    } finally {
      await s.dispose();
    }
  });

  it('a provider slower than the timeout: degraded (timeout), and recovery once it answers in time', async () => {
    const s = await setup(dialect, { timeoutMs: 200 });
    try {
      await connectExpired(s);
      // The provider holds the request for minutes (until the client gives up): a hang.
      op.setSlow(HANG_MS);
      const started = performance.now();
      await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'connection_degraded');
      // A ceiling only a hang trips: the call ended at its timeout, not when the provider answered.
      assert.ok(performance.now() - started < HANG_MS / 5, 'the call gave up at the timeout');
      const view = await s.connections.get(s.tenantId, connectionId(s.connectorId));
      assert.equal(view.status, 'degraded');
      assert.equal(view.lastRefreshError, 'timeout');
      // The abandoned request never reached the provider's grant logic, so the refresh token is intact.
      op.setSlow(0);
      s.clock.advance(MINUTE);
      await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      assert.equal((await s.connections.get(s.tenantId, connectionId(s.connectorId))).status, 'active');
    } finally {
      await s.dispose();
    }
  });

  it('garbage from the token endpoint (not JSON, no access_token): degraded (invalid_response)', async () => {
    for (const kind of ['not_json', 'missing_access_token'] as const) {
      const s = await setup(dialect);
      try {
        const minted = await connectExpired(s);
        op.setGarbage(kind);
        await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'connection_degraded');
        const view = await s.connections.get(s.tenantId, connectionId(s.connectorId));
        assert.equal(view.status, 'degraded', kind);
        assert.equal(view.lastRefreshError, 'invalid_response', kind);
        assert.equal((await stored(s)).refreshToken, minted.refreshToken, 'the tokens are untouched');
      } finally {
        await s.dispose();
      }
    }
  });

  it('client credentials: fetched once under concurrency, cached, and fetched again once when it expires', async () => {
    const s = await setup(dialect, { client: op.clients.post, authType: 'oauth_client_credentials' });
    try {
      const first = await Promise.all(Array.from({ length: 500 }, () => s.tokens.getAccessToken(s.tenantId, s.connectorId)));
      assert.equal(op.counters.clientCredentials, 1);
      assert.equal(new Set(first.map((t) => t.accessToken)).size, 1);
      assert.equal(await op.introspect(first[0]?.accessToken as string, op.clients.post), true);
      const view = await s.connections.get(s.tenantId, connectionId(s.connectorId));
      assert.deepEqual(view.scopes, ['api:read']);
      assert.equal(view.status, 'active');

      await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      assert.equal(op.counters.token, 1, 'cached');

      s.clock.advance(2 * 60 * MINUTE);
      const second = await Promise.all(Array.from({ length: 500 }, () => s.tokens.getAccessToken(s.tenantId, s.connectorId)));
      assert.equal(op.counters.clientCredentials, 2);
      assert.equal(new Set(second.map((t) => t.accessToken)).size, 1);
      assert.notEqual(second[0]?.accessToken, first[0]?.accessToken);
    } finally {
      await s.dispose();
    }
  });

  it('disconnect revokes at the provider and deletes the connection', async () => {
    const s = await setup(dialect);
    try {
      await connectExpired(s);
      const token = await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      const refreshToken = (await stored(s)).refreshToken as string;
      assert.deepEqual(await s.tokens.disconnect(s.tenantId, s.connectorId), { revoked: true });
      assert.equal(op.counters.revocation, 1);
      assert.equal(await op.introspect(token.accessToken), false, 'the access token went with the grant');
      assert.equal(await op.introspect(refreshToken), false);
      await rejectsWith(s.connections.get(s.tenantId, connectionId(s.connectorId)), 'not_connected');
      await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'not_connected');
      await rejectsWith(s.tokens.disconnect(s.tenantId, s.connectorId), 'not_connected');
    } finally {
      await s.dispose();
    }
  });

  it('disconnect without a revocation endpoint only deletes; a provider refusing revocation does not keep the connection', async () => {
    const s = await setup(dialect, { revocation: false });
    try {
      const minted = await connectExpired(s);
      assert.deepEqual(await s.tokens.disconnect(s.tenantId, s.connectorId), { revoked: false });
      assert.equal(op.counters.revocation, 0);
      assert.equal(await op.introspect(minted.accessToken), true);
      await rejectsWith(s.connections.get(s.tenantId, connectionId(s.connectorId)), 'not_connected');
    } finally {
      await s.dispose();
    }
    const t = await setup(dialect, { clientSecret: 'wrong' });
    try {
      await connectExpired(t);
      assert.deepEqual(await t.tokens.disconnect(t.tenantId, t.connectorId), { revoked: false });
      assert.equal(op.counters.revocation, 1);
      await rejectsWith(t.connections.get(t.tenantId, connectionId(t.connectorId)), 'not_connected');
    } finally {
      await t.dispose();
    }
  });

  it('per-user connections are separate, and a per-user connector needs a user', async () => {
    const s = await setup(dialect, { tokenMode: 'per_user' });
    try {
      const alice = await connectExpired(s, { userId: 'alice' });
      const bob = await connectExpired(s, { userId: 'bob' });
      const [a, b] = await Promise.all([s.tokens.getAccessToken(s.tenantId, s.connectorId, 'alice'), s.tokens.getAccessToken(s.tenantId, s.connectorId, 'bob')]);
      assert.notEqual(a.accessToken, b.accessToken);
      assert.equal(op.counters.refresh, 2);
      assert.notEqual((await stored(s, connectionId(s.connectorId, 'alice'))).refreshToken, alice.refreshToken);
      assert.notEqual((await stored(s, connectionId(s.connectorId, 'bob'))).refreshToken, bob.refreshToken);
      await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'invalid_request');
      await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId, 'carol'), 'not_connected');
      assert.deepEqual(await s.tokens.disconnect(s.tenantId, s.connectorId, 'alice'), { revoked: true });
      assert.equal((await s.tokens.getAccessToken(s.tenantId, s.connectorId, 'bob')).accessToken, b.accessToken);
      const page = await s.connections.list(s.tenantId, { connectorId: s.connectorId });
      assert.deepEqual(page.items.map((v) => v.userId), ['bob']);
    } finally {
      await s.dispose();
    }
  });

  it('a token without expiry is handed out until reported rejected; then refreshed once for all reporters', async () => {
    const s = await setup(dialect);
    try {
      const minted = await op.mintGrant({ accountId: random('acct'), scope: 'offline_access api:read' });
      await s.connections.save(s.tenantId, s.connectorId, null, { accessToken: minted.accessToken, refreshToken: minted.refreshToken, tokenType: 'bearer' });
      s.clock.advance(365 * 24 * 60 * MINUTE);
      assert.deepEqual(await s.tokens.getAccessToken(s.tenantId, s.connectorId), { accessToken: minted.accessToken, tokenType: 'Bearer', expiresAt: null });
      assert.equal(op.counters.token, 0);
      const renewed = await Promise.all(Array.from({ length: 100 }, () => s.tokens.refreshRejected(s.tenantId, s.connectorId, null, minted.accessToken)));
      assert.equal(op.counters.refresh, 1);
      assert.equal(new Set(renewed.map((r) => r.accessToken)).size, 1);
      assert.notEqual(renewed[0]?.accessToken, minted.accessToken);
      // A late report of the old token gets the replacement without another refresh.
      assert.equal((await s.tokens.refreshRejected(s.tenantId, s.connectorId, null, minted.accessToken)).accessToken, renewed[0]?.accessToken);
      assert.equal(op.counters.refresh, 1);
    } finally {
      await s.dispose();
    }
  });

  it('an expired token without a refresh token: needs_reauthorization, without asking the provider', async () => {
    const s = await setup(dialect);
    try {
      await connectExpired(s, { withRefreshToken: false });
      await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'needs_reauthorization');
      const view = await s.connections.get(s.tenantId, connectionId(s.connectorId));
      assert.equal(view.status, 'needs_reauthorization');
      assert.equal(view.lastRefreshError, 'no_refresh_token');
      assert.equal(op.counters.token, 0);
    } finally {
      await s.dispose();
    }
  });

  it('with a cache: hits skip the database, own disconnects and the skew apply at once, others\' within the bound', async () => {
    const s = await setup(dialect, { cacheMs: 1000 });
    try {
      await connectExpired(s);
      const token = await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      // Deleted behind the cache's back (as another process would): served until the bound.
      assert.equal(await s.connections.delete(s.tenantId, connectionId(s.connectorId)), true);
      assert.deepEqual(await s.tokens.getAccessToken(s.tenantId, s.connectorId), token);
      s.clock.advance(1000);
      await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'not_connected');

      await connectExpired(s);
      const second = await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      assert.equal(op.counters.refresh, 2);
      // Within the skew of its expiry a cached token is refreshed, once.
      s.clock.set(new Date(Date.parse(second.expiresAt as string) - 60_000));
      const third = await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      assert.notEqual(third.accessToken, second.accessToken);
      assert.equal(op.counters.refresh, 3);
      assert.deepEqual(await s.tokens.getAccessToken(s.tenantId, s.connectorId), third);
      assert.equal(op.counters.refresh, 3);
      // This process's own disconnect empties the cache at once.
      assert.deepEqual(await s.tokens.disconnect(s.tenantId, s.connectorId), { revoked: true });
      await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'not_connected');
    } finally {
      await s.dispose();
    }
  });

  it('connection views, lists, errors and the stored row never contain a token', async () => {
    const s = await setup(dialect, { tokenMode: 'per_user' });
    try {
      const minted = await op.mintGrant({ accountId: random('acct'), scope: 'offline_access api:read' });
      await s.connections.save(s.tenantId, s.connectorId, 'alice', {
        accessToken: minted.accessToken,
        refreshToken: minted.refreshToken,
        tokenType: 'bearer',
        expiresAt: new Date(s.clock.now().getTime() - MINUTE).toISOString(),
        extra: { instance_url: 'https://eu1.example.com', authed_user: { id: 'U1', access_token: minted.accessToken }, id_token: 'x' },
      });
      const refreshed = await s.tokens.getAccessToken(s.tenantId, s.connectorId, 'alice');
      const id = connectionId(s.connectorId, 'alice');
      const view = await s.connections.get(s.tenantId, id);
      assert.deepEqual(view.extra, { instance_url: 'https://eu1.example.com', authed_user: { id: 'U1' } });
      const secrets = [minted.accessToken, minted.refreshToken, refreshed.accessToken, (await stored(s, id)).refreshToken as string];
      op.setDown(true);
      s.clock.advance(2 * 60 * MINUTE);
      const failure = await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId, 'alice'), 'connection_degraded');
      const row = await s.f.handle.db.selectFrom('objects').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      const texts = [
        JSON.stringify(view),
        JSON.stringify(await s.connections.get(s.tenantId, id)),
        JSON.stringify(await s.connections.list(s.tenantId)),
        JSON.stringify(await s.connections.find(s.tenantId, s.connectorId, 'alice')),
        JSON.stringify({ message: failure.message, details: failure.details, error: failure }),
        JSON.stringify(row),
      ];
      for (const text of texts) {
        for (const secret of secrets) assert.ok(!text.includes(secret), `a token leaked into ${text.slice(0, 80)}`);
        assert.ok(!/"(accessToken|refreshToken)"/.test(text) || text === JSON.stringify(row), `a token attribute in ${text}`);
      }
      assert.ok(!('accessToken' in view) && !('refreshToken' in view));
    } finally {
      await s.dispose();
    }
  });
  it('short-lived access tokens are not refreshed on every request: 20 requests on a token issued for 300 s cause 0 refreshes', async () => {
    const s = await setup(dialect, { provider: fiveMinutes });
    try {
      await connectExpired(s);
      const first = await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      assert.equal(s.op.counters.refresh, 1);
      assert.equal(Date.parse(first.expiresAt as string) - s.clock.now().getTime(), 300_000, 'the provider issued it for 300 s');
      s.op.resetCounters();
      // Shorter than the 5-minute skew: the margin is half the lifetime, so 100 s later it is still handed out.
      for (let i = 0; i < 20; i++) {
        s.clock.advance(5_000);
        assert.equal((await s.tokens.getAccessToken(s.tenantId, s.connectorId)).accessToken, first.accessToken);
      }
      assert.equal(s.op.counters.refresh, 0);
      // Past half its lifetime it is refreshed, once.
      s.clock.advance(60_000);
      const next = await s.tokens.getAccessToken(s.tenantId, s.connectorId);
      assert.notEqual(next.accessToken, first.accessToken);
      assert.deepEqual(await s.tokens.getAccessToken(s.tenantId, s.connectorId), next);
      assert.equal(s.op.counters.refresh, 1);
      assert.equal(s.op.counters.grantsRevoked, 0);
    } finally {
      await s.dispose();
    }
  });

  it('a connection stored without the issue time keeps the plain skew', async () => {
    const s = await setup(dialect, { provider: fiveMinutes });
    try {
      const minted = await fiveMinutes.mintGrant({ accountId: random('acct'), scope: 'offline_access api:read', expiresIn: 300 });
      // As stored before the issue time was recorded: an expiry 4 minutes away, within the 5-minute skew.
      await s.connections.save(s.tenantId, s.connectorId, null, {
        accessToken: minted.accessToken,
        refreshToken: minted.refreshToken,
        tokenType: 'bearer',
        expiresAt: new Date(s.clock.now().getTime() + 4 * MINUTE).toISOString(),
      });
      assert.notEqual((await s.tokens.getAccessToken(s.tenantId, s.connectorId)).accessToken, minted.accessToken);
      assert.equal(s.op.counters.refresh, 1);
    } finally {
      await s.dispose();
    }
  });

  it('1,000 concurrent callers on an expired token whose replacement lives 2 s: exactly 1 refresh', async () => {
    const s = await setup(dialect, { provider: twoSeconds });
    try {
      await connectExpired(s);
      const get = () => s.tokens.getAccessToken(s.tenantId, s.connectorId);
      // Half the callers find the token expired; the other half arrive while those are still being
      // answered, just after the refresh, and find a 2-second token: within the 5-minute skew, but
      // not within half its lifetime.
      const early = Array.from({ length: 500 }, get);
      await Promise.race(early);
      const late = Array.from({ length: 500 }, get);
      const results = await Promise.all([...early, ...late]);
      assert.equal(s.op.counters.refresh, 1);
      assert.equal(new Set(results.map((r) => r.accessToken)).size, 1);
      const [token] = results;
      assert.equal(Date.parse(token?.expiresAt as string) - s.clock.now().getTime(), 2000, 'the replacement lives 2 s');
      assert.equal(token?.accessToken, (await stored(s)).accessToken);
      assert.equal(s.op.counters.grantsRevoked, 0);
    } finally {
      await s.dispose();
    }
  });

  it('a plain-http token endpoint without the insecure-loopback opt-in: insecure_endpoint, never "retry later"', async () => {
    const s = await setup(dialect, { allowInsecureLoopback: false });
    try {
      await connectExpired(s);
      const err = await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'insecure_endpoint');
      assert.equal(err.status, 409);
      assert.match(err.message, /token endpoint http:\/\/127\.0\.0\.1:\d+\/token uses plain http.*--allow-insecure-loopback/);
      assert.doesNotMatch(err.message, /retry later/);
      assert.equal(s.op.counters.token, 0, 'no request was sent');
      const view = await s.connections.get(s.tenantId, connectionId(s.connectorId));
      assert.equal(view.status, 'active', 'no backoff, no degraded status');
      assert.equal(view.backoffUntil, null);
      await rejectsWith(s.tokens.getAccessToken(s.tenantId, s.connectorId), 'insecure_endpoint');
      // Disconnecting still deletes (revocation is not attempted over plain http).
      assert.deepEqual(await s.tokens.disconnect(s.tenantId, s.connectorId), { revoked: false });
      assert.equal(s.op.counters.revocation, 0);
    } finally {
      await s.dispose();
    }
  });
});
