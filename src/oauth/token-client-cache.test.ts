import assert from 'node:assert/strict';
import { it } from 'node:test';
import { inspect } from 'node:util';
import { AccessTokenCache } from './token-client-cache.js';

const NOW = Date.parse('2030-01-01T00:00:00.000Z');
const token = { accessToken: 'at_secret_value', tokenType: 'Bearer', expiresAt: new Date(NOW + 3600_000).toISOString() };

it('serves a token for the bound, never within the skew of its expiry, and never after a forget', () => {
  const cache = new AccessTokenCache(1000);
  cache.set('t', 'c', null, token, NOW, cache.epoch);
  assert.deepEqual(cache.get('t', 'c', undefined, NOW + 999, 0), token);
  assert.equal(cache.get('t', 'c', null, NOW + 1000, 0), undefined, 'the bound');
  assert.equal(cache.get('t', 'c', 'alice', NOW, 0), undefined, 'another user key');
  assert.equal(cache.get('t2', 'c', null, NOW, 0), undefined, 'another tenant');
  assert.equal(cache.get('t', 'c', null, NOW + 500, 3600_000 - 400), undefined, 'within the skew');

  const stale = cache.epoch;
  cache.forget('t', 'c');
  assert.equal(cache.get('t', 'c', null, NOW, 0), undefined);
  cache.set('t', 'c', null, token, NOW, stale);
  assert.equal(cache.get('t', 'c', null, NOW, 0), undefined, 'a read begun before the forget does not refill');
  assert.ok(!inspect(cache, { depth: 10 }).includes('at_secret_value'));
});

it('keeps at most the given number of connectors, dropping the oldest', () => {
  const cache = new AccessTokenCache(60_000, 2);
  for (const c of ['a', 'b', 'c']) cache.set('t', c, null, token, NOW, cache.epoch);
  assert.equal(cache.get('t', 'a', null, NOW, 0), undefined);
  assert.ok(cache.get('t', 'b', null, NOW, 0));
  assert.ok(cache.get('t', 'c', null, NOW, 0));
});
