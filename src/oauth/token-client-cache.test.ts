import assert from 'node:assert/strict';
import { it } from 'node:test';
import { inspect } from 'node:util';
import { AccessTokenCache } from './token-client-cache.js';

const NOW = Date.parse('2030-01-01T00:00:00.000Z');
const token = { accessToken: 'at_secret_value', tokenType: 'Bearer', expiresAt: new Date(NOW + 3600_000).toISOString() };
const REFRESH_AT = NOW + 3600_000;

it('serves a token for the bound, never once it is due for a refresh, and never after a forget', () => {
  const cache = new AccessTokenCache(1000);
  cache.set('t', 'c', null, token, REFRESH_AT, NOW, cache.epoch);
  assert.deepEqual(cache.get('t', 'c', undefined, NOW + 999), token);
  assert.equal(cache.get('t', 'c', null, NOW + 1000), undefined, 'the bound');
  assert.equal(cache.get('t', 'c', 'alice', NOW), undefined, 'another user key');
  assert.equal(cache.get('t2', 'c', null, NOW), undefined, 'another tenant');
  cache.set('t', 'c', null, token, NOW + 400, NOW, cache.epoch);
  assert.equal(cache.get('t', 'c', null, NOW + 500), undefined, 'due for a refresh');

  const stale = cache.epoch;
  cache.forget('t', 'c');
  assert.equal(cache.get('t', 'c', null, NOW), undefined);
  cache.set('t', 'c', null, token, REFRESH_AT, NOW, stale);
  assert.equal(cache.get('t', 'c', null, NOW), undefined, 'a read begun before the forget does not refill');
  assert.ok(!inspect(cache, { depth: 10 }).includes('at_secret_value'));
});

it('keeps at most the given number of connectors, dropping the oldest', () => {
  const cache = new AccessTokenCache(60_000, 2);
  for (const c of ['a', 'b', 'c']) cache.set('t', c, null, token, REFRESH_AT, NOW, cache.epoch);
  assert.equal(cache.get('t', 'a', null, NOW), undefined);
  assert.ok(cache.get('t', 'b', null, NOW));
  assert.ok(cache.get('t', 'c', null, NOW));
});
