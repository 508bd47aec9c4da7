import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { LatchkeyError } from '../core/index.js';
import { Keyring } from '../crypto/index.js';
import { eachDialect } from '../../test/support/databases.js';
import { createStoreFixture, randomKey, type StoreFixture } from '../../test/support/store.js';
import { generateApiKey } from './format.js';
import { API_KEY_PEPPER_TYPE, ApiKeyHasher, hashesEqual, keyedHash } from './hashing.js';

const tenant = () => `ten_${randomBytes(6).toString('hex')}`;

await eachDialect('API key hashing', (dialect) => {
  let f: StoreFixture;
  const setup = async () => {
    f = await createStoreFixture(dialect, [API_KEY_PEPPER_TYPE]);
  };

  it('is an HMAC under the pepper, never a plain SHA-256 of the secret', async () => {
    await setup();
    try {
      const t = tenant();
      const { id, secret, key } = generateApiKey();
      const hasher = new ApiKeyHasher({ store: f.store });
      const hash = await hasher.hash(t, secret);
      assert.match(hash, /^[0-9a-f]{64}$/);
      for (const plain of [secret, key, `${id}${secret}`]) {
        assert.notEqual(hash, createHash('sha256').update(plain).digest('hex'));
      }
      assert.equal(hash, keyedHash(await hasher.pepper(t), secret).toString('hex'));
      assert.equal(await hasher.hash(t, secret), hash, 'stable for one tenant');
      assert.notEqual(await hasher.hash(tenant(), secret), hash, 'each tenant has its own pepper');
    } finally {
      await f.dispose();
    }
  });

  it('keeps the pepper encrypted at rest', async () => {
    await setup();
    try {
      const t = tenant();
      const pepper = await new ApiKeyHasher({ store: f.store }).pepper(t);
      const row = await f.handle.db.selectFrom('objects').selectAll().where('id', '=', `pepper_${t}`).executeTakeFirstOrThrow();
      assert.equal(row.type, 'api_key_pepper');
      const text = JSON.stringify(row);
      assert.ok(!text.includes(pepper.toString('base64')));
      assert.ok(!text.includes(pepper.toString('hex')));
      assert.equal((await f.store.get('api_key_pepper', t, `pepper_${t}`)).attributes['pepper'], undefined);
    } finally {
      await f.dispose();
    }
  });

  it('creates one pepper per tenant when processes race for the first use', async () => {
    await setup();
    try {
      const t = tenant();
      const hashers = [f, f.peer({}), f.peer({}), f.peer({})].map((x) => new ApiKeyHasher({ store: x.store }));
      const peppers = await Promise.all(hashers.flatMap((h) => [h.pepper(t), h.pepper(t)]));
      for (const p of peppers) assert.ok(p.equals(peppers[0] as Buffer));
      const count = await f.handle.db.selectFrom('objects').select(({ fn }) => fn.countAll().as('n')).where('type', '=', 'api_key_pepper').executeTakeFirstOrThrow();
      assert.equal(Number(count.n), 1);
      assert.ok(hashers[0]?.peek(t)?.equals(peppers[0] as Buffer));
    } finally {
      await f.dispose();
    }
  });

  it('cannot be computed from a copy of the database under another master key', async () => {
    await setup();
    try {
      const t = tenant();
      const { secret } = generateApiKey();
      const stored = await new ApiKeyHasher({ store: f.store }).hash(t, secret);
      const thief = new ApiKeyHasher({ store: f.peer({ keyring: new Keyring(randomKey()) }).store });
      await assert.rejects(thief.hash(t, secret), (err: unknown) => {
        assert.ok(err instanceof LatchkeyError);
        assert.ok(['decryption_failed', 'key_not_found'].includes(err.code), err.code);
        assert.ok(!err.message.includes(secret) && !err.message.includes(stored));
        return true;
      });
      assert.equal(thief.peek(t), undefined);
    } finally {
      await f.dispose();
    }
  });
});

it('compares hashes in constant time and refuses different lengths', () => {
  const a = randomBytes(32);
  assert.equal(hashesEqual(a, Buffer.from(a)), true);
  assert.equal(hashesEqual(a, randomBytes(32)), false);
  assert.equal(hashesEqual(a, a.subarray(0, 31)), false);
});
