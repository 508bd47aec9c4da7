import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { DecryptionError, LatchkeyError } from '../core/index.js';
import { eachDialect } from '../../test/support/databases.js';
import { createStoreFixture } from '../../test/support/store.js';
import { CONNECTION_TYPE, connectionId, createConnectionStore, sanitizeExtra } from './connections.js';

const token = () => randomBytes(24).toString('base64url');
const tenant = () => `t_${randomBytes(6).toString('hex')}`;

it('connection ids say shared or per user, and refuse what cannot be part of one', () => {
  assert.equal(connectionId('conn_1'), 'shared:conn_1');
  assert.equal(connectionId('conn_1', null), 'shared:conn_1');
  assert.equal(connectionId('conn_1', 'user:7'), 'per-user:conn_1:user:7');
  for (const bad of ['', 'a:b', 'a b', 'x'.repeat(201)]) {
    assert.throws(() => connectionId(bad), (err: unknown) => err instanceof LatchkeyError && err.code === 'invalid_request');
  }
  for (const bad of ['', 'a\nb', 'x'.repeat(256)]) {
    assert.throws(() => connectionId('conn_1', bad), (err: unknown) => err instanceof LatchkeyError && err.code === 'invalid_request');
  }
});

it('an end user\'s connection id can never be a Latchkey user\'s, nor the reverse', () => {
  assert.equal(connectionId('conn_1', { endUserId: 'u-42' }), 'per-user:conn_1:end-user:u-42');
  assert.equal(connectionId('conn_1', { endUserId: 'a:b c' }), 'per-user:conn_1:end-user:a:b c');
  // A user id shaped like an end user's would share its connection: refused.
  assert.throws(() => connectionId('conn_1', 'end-user:u-42'), (err: unknown) => err instanceof LatchkeyError && err.code === 'invalid_request');
  for (const bad of ['', 'a\u0000b', 'x'.repeat(256)]) {
    assert.throws(() => connectionId('conn_1', { endUserId: bad }), (err: unknown) => err instanceof LatchkeyError && err.code === 'invalid_request');
  }
});

it('extra provider fields lose anything that may be a credential, at any depth', () => {
  assert.deepEqual(
    sanitizeExtra({
      instance_url: 'https://x',
      id_token: 'a',
      authed_user: { id: 'U1', access_token: 'b', nested: [{ refresh_token: 'c', team: 'T' }] },
      client_secret: 'd',
      api_key: 'e',
    }),
    { instance_url: 'https://x', authed_user: { id: 'U1', nested: [{ team: 'T' }] } },
  );
});

await eachDialect('connection store', (dialect) => {
  it('saves, replaces on reconnect (clearing a failed status and an old refresh token), finds, lists and deletes', async () => {
    const f = await createStoreFixture(dialect, [CONNECTION_TYPE]);
    try {
      const connections = createConnectionStore({ store: f.store });
      const t = tenant();
      const first = await connections.save(t, 'conn_a', null, { accessToken: token(), refreshToken: token(), tokenType: 'bearer', scopes: ['x'], expiresAt: null });
      assert.equal(first.id, 'shared:conn_a');
      assert.equal(first.tokenType, 'Bearer');
      assert.equal(first.status, 'active');
      await f.store.update(CONNECTION_TYPE.name, t, first.id, { status: 'needs_reauthorization', lastRefreshError: 'invalid_grant' });

      const accessToken = token();
      const again = await connections.save(t, 'conn_a', null, { accessToken, tokenType: 'Bearer' });
      assert.equal(again.status, 'active');
      assert.equal(again.lastRefreshError, null);
      const stored = (await f.store.getDecrypted(CONNECTION_TYPE.name, t, first.id)).attributes;
      assert.equal(stored['accessToken'], accessToken);
      assert.equal(stored['refreshToken'], undefined, 'a reconnect replaces every token');

      await connections.save(t, 'conn_b', 'alice', { accessToken: token(), tokenType: 'bearer' });
      await connections.save(t, 'conn_b', 'bob', { accessToken: token(), tokenType: 'bearer' });
      await connections.save(tenant(), 'conn_c', 'alice', { accessToken: token(), tokenType: 'bearer' });
      assert.deepEqual((await connections.list(t)).items.map((v) => v.id).sort(), ['per-user:conn_b:alice', 'per-user:conn_b:bob', 'shared:conn_a']);
      const page = await connections.list(t, { connectorId: 'conn_b', limit: 1 });
      assert.equal(page.items.length, 1);
      const rest = await connections.list(t, { connectorId: 'conn_b', after: page.next });
      assert.deepEqual([...page.items, ...rest.items].map((v) => v.userId).sort(), ['alice', 'bob']);

      assert.equal((await connections.find(t, 'conn_b', 'alice'))?.userId, 'alice');
      assert.equal(await connections.find(t, 'conn_b', 'carol'), undefined);
      assert.equal(await connections.delete(t, 'per-user:conn_b:alice'), true);
      assert.equal(await connections.delete(t, 'per-user:conn_b:alice'), false);
      await assert.rejects(connections.get(t, 'per-user:conn_b:alice'), (err: unknown) => err instanceof LatchkeyError && (err.code as string) === 'not_connected');
    } finally {
      await f.dispose();
    }
  });

  it('tokens are bound to their connector and user: a token copied to another connection does not decrypt', async () => {
    const f = await createStoreFixture(dialect, [CONNECTION_TYPE]);
    try {
      const connections = createConnectionStore({ store: f.store });
      const t = tenant();
      await connections.save(t, 'conn_a', 'alice', { accessToken: token(), tokenType: 'bearer' });
      await connections.save(t, 'conn_a', 'mallory', { accessToken: token(), tokenType: 'bearer' });
      const alice = await f.handle.db.selectFrom('objects').select('secrets').where('id', '=', 'per-user:conn_a:alice').executeTakeFirstOrThrow();
      await f.handle.db.updateTable('objects').set({ secrets: alice.secrets }).where('id', '=', 'per-user:conn_a:mallory').execute();
      await assert.rejects(f.store.getDecrypted(CONNECTION_TYPE.name, t, 'per-user:conn_a:mallory'), DecryptionError);
    } finally {
      await f.dispose();
    }
  });

  it('keeps end users\' connections apart from users\' and from each other, lists them by end user, and binds tokens to the end user', async () => {
    const f = await createStoreFixture(dialect, [CONNECTION_TYPE]);
    try {
      const connections = createConnectionStore({ store: f.store });
      const t = tenant();
      const [aliceToken, bobToken, userToken] = [token(), token(), token()];
      const alice = await connections.save(t, 'conn_a', { endUserId: 'alice' }, { accessToken: aliceToken, tokenType: 'bearer' });
      assert.deepEqual([alice.id, alice.userId, alice.endUserId], ['per-user:conn_a:end-user:alice', null, 'alice']);
      await connections.save(t, 'conn_a', { endUserId: 'bob' }, { accessToken: bobToken, tokenType: 'bearer' });
      await connections.save(t, 'conn_b', { endUserId: 'alice' }, { accessToken: token(), tokenType: 'bearer' });
      // A Latchkey user named like the end user has a connection of its own.
      const user = await connections.save(t, 'conn_a', 'alice', { accessToken: userToken, tokenType: 'bearer' });
      assert.deepEqual([user.id, user.userId, user.endUserId], ['per-user:conn_a:alice', 'alice', null]);
      const read = async (id: string) => (await f.store.getDecrypted(CONNECTION_TYPE, t, id)).attributes.accessToken;
      assert.equal(await read(alice.id), aliceToken);
      assert.equal(await read(user.id), userToken);

      assert.deepEqual((await connections.list(t, { endUserId: 'alice' })).items.map((v) => v.id), ['per-user:conn_a:end-user:alice', 'per-user:conn_b:end-user:alice']);
      assert.deepEqual((await connections.list(t, { endUserId: 'alice', connectorId: 'conn_a' })).items.map((v) => v.id), [alice.id]);
      assert.deepEqual((await connections.list(tenant(), { endUserId: 'alice' })).items, [], 'another tenant has no such end user');
      assert.equal((await connections.find(t, 'conn_a', { endUserId: 'carol' })), undefined);

      // Alice's sealed tokens copied onto Bob's connection do not decrypt: the end user is in the AAD.
      const sealed = await f.handle.db.selectFrom('objects').select('secrets').where('id', '=', alice.id).executeTakeFirstOrThrow();
      await f.handle.db.updateTable('objects').set({ secrets: sealed.secrets }).where('id', '=', 'per-user:conn_a:end-user:bob').execute();
      await assert.rejects(f.store.getDecrypted(CONNECTION_TYPE, t, 'per-user:conn_a:end-user:bob'), DecryptionError);
    } finally {
      await f.dispose();
    }
  });
});
