// The README's node:crypto verification snippet, run against Latchkey's own signing, so it cannot rot.
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { newSigningSecret, signedHeaders } from '../src/webhooks/index.js';

type Verify = (secret: string, headers: Record<string, string | undefined>, rawBody: string) => boolean;

function snippet(): Verify {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('function verifyLatchkeyWebhook');
  assert.ok(start > 0, 'the README has the verification snippet');
  const code = readme.slice(start, readme.indexOf('```', start));
  return new Function('createHmac', 'timingSafeEqual', `${code}\nreturn verifyLatchkeyWebhook;`)(createHmac, timingSafeEqual) as Verify;
}

it('the README snippet accepts Latchkey signatures and refuses tampering, other secrets and old messages', () => {
  const verify = snippet();
  const [current, previous] = [newSigningSecret(), newSigningSecret()];
  const body = JSON.stringify({ type: 'connection.deleted', timestamp: new Date().toISOString(), data: { connectorId: 'connector_1' } });
  const headers = signedHeaders([current, previous], 'msg_1', new Date(), body);
  assert.equal(verify(current, headers, body), true);
  assert.equal(verify(previous, headers, body), true);
  assert.equal(verify(newSigningSecret(), headers, body), false);
  assert.equal(verify(current, headers, body.replace('connector_1', 'connector_2')), false);
  assert.equal(verify(current, { ...headers, 'webhook-id': 'msg_2' }, body), false);
  assert.equal(verify(current, signedHeaders([current], 'msg_1', new Date(Date.now() - 3600_000), body), body), false);
  assert.equal(verify(current, { ...headers, 'webhook-signature': undefined }, body), false);
});
