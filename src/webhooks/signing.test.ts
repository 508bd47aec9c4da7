import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { newSigningSecret, signedHeaders } from './signing.js';
import { retryDelayMs } from './sender.js';

describe('Standard Webhooks signing', () => {
  const body = JSON.stringify({ type: 'connection.created', timestamp: new Date().toISOString(), data: { connectorId: 'connector_1' } });

  it('makes whsec_ secrets of 32 random bytes', () => {
    const a = newSigningSecret();
    assert.match(a, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(Buffer.from(a.slice(6), 'base64').length, 32);
    assert.notEqual(a, newSigningSecret());
  });

  it('signs exactly as the standardwebhooks package computes and verifies', () => {
    const secret = newSigningSecret();
    const at = new Date();
    const headers = signedHeaders([secret], 'msg_1', at, body);
    assert.equal(headers['webhook-timestamp'], String(Math.floor(at.getTime() / 1000)));
    assert.equal(headers['webhook-signature'], new Webhook(secret).sign('msg_1', at, body));
    assert.deepEqual(new Webhook(secret).verify(body, headers), JSON.parse(body));
  });

  it('refuses a tampered body, id, timestamp or another secret', () => {
    const secret = newSigningSecret();
    const headers = signedHeaders([secret], 'msg_1', new Date(), body);
    const verifier = new Webhook(secret);
    assert.throws(() => verifier.verify(body.replace('connector_1', 'connector_2'), headers));
    assert.throws(() => verifier.verify(body, { ...headers, 'webhook-id': 'msg_2' }));
    assert.throws(() => verifier.verify(body, { ...headers, 'webhook-timestamp': String(Number(headers['webhook-timestamp']) + 1) }));
    assert.throws(() => new Webhook(newSigningSecret()).verify(body, headers));
    // A replay long after the fact is refused by the receiver's timestamp tolerance.
    const old = signedHeaders([secret], 'msg_1', new Date(Date.now() - 3600_000), body);
    assert.throws(() => verifier.verify(body, old));
  });

  it('carries one signature per secret during a roll; either verifies', () => {
    const [current, previous] = [newSigningSecret(), newSigningSecret()];
    const headers = signedHeaders([current, previous], 'msg_1', new Date(), body);
    assert.equal(headers['webhook-signature']?.split(' ').length, 2);
    new Webhook(current).verify(body, headers);
    new Webhook(previous).verify(body, headers);
  });
});

describe('retry backoff', () => {
  it('grows by four per failure with equal jitter, capped', () => {
    const backoff = { baseMs: 60_000, maxMs: 3600_000 };
    for (let i = 0; i < 50; i++) {
      const first = retryDelayMs(1, backoff);
      assert.ok(first >= 30_000 && first <= 60_000, String(first));
      const third = retryDelayMs(3, backoff);
      assert.ok(third >= 480_000 && third <= 960_000, String(third));
      const capped = retryDelayMs(10, backoff);
      assert.ok(capped >= 1800_000 && capped <= 3600_000, String(capped));
    }
    assert.equal(retryDelayMs(1, { baseMs: 0, maxMs: 0 }), 0);
  });
});
