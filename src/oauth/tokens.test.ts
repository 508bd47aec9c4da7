import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectionAttributes } from './connections.js';
import { decide, failedAttributes, refreshedAttributes } from './tokens.js';

const NOW = Date.parse('2030-01-01T12:00:00.000Z');
const SKEW = 5 * 60_000;
const iso = (offsetMs: number) => new Date(NOW + offsetMs).toISOString();

function connection(patch: Partial<ConnectionAttributes> = {}): ConnectionAttributes {
  return {
    connectorId: 'conn_1',
    userId: null,
    endUserId: null,
    tokenType: 'Bearer',
    scopes: ['a'],
    expiresAt: iso(60 * 60_000),
    issuedAt: null,
    refreshTokenExpiresAt: null,
    extra: { instance_url: 'https://x.example.com' },
    status: 'active',
    lastRefreshAt: null,
    lastRefreshError: null,
    lastFailureAt: null,
    backoffUntil: null,
    failureCount: 0,
    config: {},
    accessToken: 'at',
    refreshToken: 'rt',
    ...patch,
  };
}

const kind = (a: ConnectionAttributes, extra: { canRefresh?: boolean; rejected?: string } = {}) =>
  decide('shared:conn_1', a, { now: NOW, skewMs: SKEW, canRefresh: extra.canRefresh ?? true, rejected: extra.rejected }).kind;

describe('token decisions', () => {
  it('hands out a token valid beyond the skew, and one without expiry', () => {
    assert.equal(kind(connection()), 'use');
    assert.equal(kind(connection({ expiresAt: null })), 'use');
  });
  it('refreshes within the skew, when expired, for a client credentials placeholder, and for a rejected token', () => {
    assert.equal(kind(connection({ expiresAt: iso(SKEW - 1) })), 'refresh');
    assert.equal(kind(connection({ expiresAt: iso(-1) })), 'refresh');
    assert.equal(kind(connection({ accessToken: '', expiresAt: null })), 'refresh');
    assert.equal(kind(connection({ expiresAt: null }), { rejected: 'at' }), 'refresh');
    assert.equal(kind(connection({ expiresAt: null }), { rejected: 'older' }), 'use');
  });
  it('fails a connection that needs reauthorization, even with a valid token', () => {
    assert.equal(kind(connection({ status: 'needs_reauthorization', lastRefreshError: 'invalid_grant' })), 'fail');
  });
  it('in backoff: the token while it is valid, else a failure; after it, a refresh', () => {
    const degraded = { status: 'degraded' as const, backoffUntil: iso(1000), lastRefreshError: 'timeout' };
    assert.equal(kind(connection({ ...degraded, expiresAt: iso(1000) })), 'use');
    assert.equal(kind(connection({ ...degraded, expiresAt: iso(-1) })), 'fail');
    assert.equal(kind(connection({ ...degraded, backoffUntil: iso(-1), expiresAt: iso(-1) })), 'refresh');
  });
  it('without a refresh token: the token while valid, then unrefreshable', () => {
    assert.equal(kind(connection({ refreshToken: undefined, expiresAt: iso(1000) }), { canRefresh: false }), 'use');
    assert.equal(kind(connection({ refreshToken: undefined, expiresAt: iso(-1) }), { canRefresh: false }), 'unrefreshable');
  });
});

describe('token attributes', () => {
  it('a refresh with a rotated refresh token replaces it and resets the failure state', () => {
    const at = new Date(NOW);
    const before = connection({ status: 'degraded', failureCount: 3, backoffUntil: iso(-1), lastRefreshError: 'timeout', refreshTokenExpiresAt: iso(1) });
    const after = refreshedAttributes(before, { accessToken: 'at2', refreshToken: 'rt2', tokenType: 'bearer', expiresAt: iso(3600_000), refreshTokenExpiresAt: iso(7200_000) }, at);
    assert.equal(after.refreshToken, 'rt2');
    assert.equal(after.refreshTokenExpiresAt, iso(7200_000));
    assert.equal(after.tokenType, 'Bearer');
    assert.deepEqual(
      [after.status, after.failureCount, after.backoffUntil, after.lastRefreshError, after.lastRefreshAt],
      ['active', 0, null, null, at.toISOString()],
    );
  });
  it('a refresh without a refresh token keeps the old one, its expiry, the scopes and the extra fields', () => {
    const before = connection({ refreshTokenExpiresAt: iso(99) });
    const after = refreshedAttributes(before, { accessToken: 'at2', tokenType: 'bearer', extra: { signature: 'x', region: 'eu' } }, new Date(NOW));
    assert.equal(after.refreshToken, 'rt');
    assert.equal(after.refreshTokenExpiresAt, iso(99));
    assert.deepEqual(after.scopes, ['a']);
    assert.equal(after.expiresAt, null, 'no expires_in: valid until a 401');
    assert.deepEqual(after.extra, { instance_url: 'https://x.example.com', region: 'eu' });
  });
  it('a degraded failure counts and backs off; a reauthorization failure stops', () => {
    const at = new Date(NOW);
    const degraded = failedAttributes(connection({ failureCount: 1 }), { outcome: 'degraded', code: 'timeout' }, at, { initialMs: 1000 });
    assert.equal(degraded.patch.status, 'degraded');
    assert.equal(degraded.patch.failureCount, 2);
    const delay = Date.parse(degraded.patch.backoffUntil as string) - NOW;
    assert.ok(delay >= 1600 && delay <= 2000);
    assert.equal((degraded.error('id').code as string), 'connection_degraded');
    assert.equal(degraded.error('id').details?.['retryAfter'], degraded.patch.backoffUntil);
    const stopped = failedAttributes(connection(), { outcome: 'needs_reauthorization', code: 'invalid_grant' }, at);
    assert.deepEqual([stopped.patch.status, stopped.patch.backoffUntil, stopped.patch.lastRefreshError], ['needs_reauthorization', null, 'invalid_grant']);
    assert.equal((stopped.error('id').code as string), 'needs_reauthorization');
  });
});
