import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { DecryptionError, LatchkeyError } from '../core/index.js';
import { Keyring } from '../crypto/index.js';
import { eachDialect } from '../../test/support/databases.js';
import { createStoreFixture, randomKey, type StoreFixture } from '../../test/support/store.js';
import type { ObjectTypeDefinition } from './index.js';

const credential: ObjectTypeDefinition = {
  name: 'credential',
  versions: [
    {
      version: 1,
      schema: z.object({
        name: z.string(),
        service: z.string(),
        ownerId: z.string(),
        apiSecret: z.string(),
        refreshToken: z.string().optional(),
      }),
      attributesToEncrypt: ['apiSecret', 'refreshToken'],
      attributesToIncludeInAAD: ['service', 'ownerId'],
    },
  ],
};

const secret = () => `s_${randomBytes(24).toString('base64url')}`;
const tenant = () => `t_${randomBytes(6).toString('hex')}`;

async function rawRow(f: StoreFixture, id: string) {
  return f.handle.db.selectFrom('objects').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

async function expectDecryptionError(promise: Promise<unknown>, type: string, id: string, leaked: string[] = []) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof DecryptionError, `expected DecryptionError, got ${String(err)}`);
    assert.equal(err.objectType, type);
    assert.equal(err.objectId, id);
    assert.match(err.message, new RegExp(`${type} ${id}`));
    const text = `${err.message} ${JSON.stringify(err)}`;
    for (const s of leaked) assert.ok(!text.includes(s), 'the error must not contain the secret');
    return true;
  });
}

await eachDialect('encrypted object store', (dialect) => {
  let f: StoreFixture;
  const setup = async () => {
    f = await createStoreFixture(dialect, [credential]);
  };
  const teardown = () => f.dispose();

  it('strips secrets from ordinary reads and lists, and decrypts only when asked', async () => {
    await setup();
    try {
      const t = tenant();
      const apiSecret = secret();
      const refreshToken = secret();
      const created = await f.store.create('credential', t, { name: 'n', service: 'github', ownerId: 'u1', apiSecret, refreshToken });
      assert.equal(created.attributes['apiSecret'], undefined);
      assert.equal(created.revision, 1);
      const plain = await f.store.get('credential', t, created.id);
      assert.deepEqual(plain.attributes, { name: 'n', service: 'github', ownerId: 'u1' });
      const list = await f.store.list('credential', t);
      assert.equal(list.items.length, 1);
      assert.ok(!JSON.stringify(list).includes(apiSecret));
      const decrypted = await f.store.getDecrypted('credential', t, created.id);
      assert.equal(decrypted.attributes['apiSecret'], apiSecret);
      assert.equal(decrypted.attributes['refreshToken'], refreshToken);
      const listed = await f.store.list('credential', t, { decrypt: true });
      assert.equal(listed.items[0]?.attributes['apiSecret'], apiSecret);
      const row = await rawRow(f, created.id);
      const rowText = JSON.stringify(row);
      assert.ok(!rowText.includes(apiSecret) && !rowText.includes(refreshToken), 'no plaintext at rest');
      assert.ok(!rowText.includes(Buffer.from(apiSecret).toString('base64')), 'no encoded plaintext at rest');
    } finally {
      await teardown();
    }
  });

  it('answers not_found for another tenant\'s id, the same as for an unknown id', async () => {
    await setup();
    try {
      const a = tenant();
      const created = await f.store.create('credential', a, { name: 'n', service: 's', ownerId: 'u', apiSecret: secret() });
      for (const call of [
        () => f.store.get('credential', tenant(), created.id),
        () => f.store.getDecrypted('credential', tenant(), created.id),
        () => f.store.update('credential', tenant(), created.id, { name: 'x' }),
        () => f.store.get('credential', a, 'credential_nope'),
      ]) {
        await assert.rejects(call(), (err: unknown) => err instanceof LatchkeyError && err.code === 'not_found');
      }
      assert.equal(await f.store.delete('credential', tenant(), created.id), false);
      assert.equal((await f.store.list('credential', tenant())).items.length, 0);
    } finally {
      await teardown();
    }
  });

  it('refuses invalid attributes with field errors and writes nothing', async () => {
    await setup();
    try {
      const t = tenant();
      await assert.rejects(f.store.create('credential', t, { name: 'n', service: 's', ownerId: 42, apiSecret: secret() }), (err: unknown) => {
        assert.ok(err instanceof LatchkeyError);
        assert.equal(err.code, 'validation_failed');
        assert.match(err.message, /"ownerId"/);
        return true;
      });
      assert.equal((await f.store.list('credential', t)).items.length, 0);
    } finally {
      await teardown();
    }
  });

  it('fails to decrypt a ciphertext moved to another object, tenant or attribute, or after an AAD attribute changed', async () => {
    await setup();
    try {
      const t = tenant();
      const s1 = secret();
      const s2 = secret();
      const a = await f.store.create('credential', t, { name: 'a', service: 'svc', ownerId: 'u', apiSecret: s1, refreshToken: s2 });
      const b = await f.store.create('credential', t, { name: 'b', service: 'svc', ownerId: 'u', apiSecret: secret() });
      const other = tenant();
      const c = await f.store.create('credential', other, { name: 'c', service: 'svc', ownerId: 'u', apiSecret: secret() });
      const rowA = await rawRow(f, a.id);
      const secretsA = JSON.parse(rowA.secrets) as Record<string, string>;
      const db = f.handle.db;

      // Another object of the same tenant, same AAD attribute values.
      await db.updateTable('objects').set({ secrets: JSON.stringify({ apiSecret: secretsA['apiSecret'] }), data_key_id: rowA.data_key_id }).where('id', '=', b.id).execute();
      await expectDecryptionError(f.store.getDecrypted('credential', t, b.id), 'credential', b.id, [s1]);

      // Another tenant's object.
      await db.updateTable('objects').set({ secrets: JSON.stringify({ apiSecret: secretsA['apiSecret'] }) }).where('id', '=', c.id).execute();
      await expectDecryptionError(f.store.getDecrypted('credential', other, c.id), 'credential', c.id, [s1]);

      // The row itself moved to another tenant.
      await db.updateTable('objects').set({ tenant_id: other }).where('id', '=', a.id).execute();
      await expectDecryptionError(f.store.getDecrypted('credential', other, a.id), 'credential', a.id, [s1, s2]);
      await db.updateTable('objects').set({ tenant_id: t }).where('id', '=', a.id).execute();
      assert.equal((await f.store.getDecrypted('credential', t, a.id)).attributes['apiSecret'], s1);

      // Another attribute of the same object (swap the two ciphertexts).
      await db.updateTable('objects').set({ secrets: JSON.stringify({ apiSecret: secretsA['refreshToken'], refreshToken: secretsA['apiSecret'] }) }).where('id', '=', a.id).execute();
      await expectDecryptionError(f.store.getDecrypted('credential', t, a.id), 'credential', a.id, [s1, s2]);
      await db.updateTable('objects').set({ secrets: rowA.secrets }).where('id', '=', a.id).execute();

      // An AAD attribute changed in the database.
      const attrs = JSON.parse(rowA.attributes) as Record<string, unknown>;
      await db.updateTable('objects').set({ attributes: JSON.stringify({ ...attrs, ownerId: 'attacker' }) }).where('id', '=', a.id).execute();
      await expectDecryptionError(f.store.getDecrypted('credential', t, a.id), 'credential', a.id, [s1, s2]);

      // The AAD attribute list edited to drop the changed attribute.
      await db.updateTable('objects').set({ aad_attributes: JSON.stringify(['service']) }).where('id', '=', a.id).execute();
      await expectDecryptionError(f.store.getDecrypted('credential', t, a.id), 'credential', a.id, [s1, s2]);

      // A plain attribute outside AAD may change freely.
      await db.updateTable('objects').set({ attributes: JSON.stringify({ ...attrs, name: 'renamed' }), aad_attributes: rowA.aad_attributes }).where('id', '=', a.id).execute();
      const back = await f.store.getDecrypted('credential', t, a.id);
      assert.equal(back.attributes['apiSecret'], s1);
      assert.equal(back.attributes['name'], 'renamed');
    } finally {
      await teardown();
    }
  });

  it('lets a list fail on, or skip and report, an undecryptable object', async () => {
    await setup();
    try {
      const t = tenant();
      const bad = await f.store.create('credential', t, { name: 'bad', service: 's', ownerId: 'u', apiSecret: secret() });
      const good = await f.store.create('credential', t, { name: 'good', service: 's', ownerId: 'u', apiSecret: secret() });
      await f.handle.db.updateTable('objects').set({ attributes: JSON.stringify({ name: 'bad', service: 'x', ownerId: 'u' }) }).where('id', '=', bad.id).execute();
      await assert.rejects(f.store.list('credential', t, { decrypt: true }), DecryptionError);
      const skipped = await f.store.list('credential', t, { decrypt: true, onUndecryptable: 'skip' });
      assert.deepEqual(skipped.items.map((i) => i.id), [good.id]);
      assert.equal(skipped.failures.length, 1);
      assert.equal(skipped.failures[0]?.id, bad.id);
      assert.equal(skipped.failures[0]?.type, 'credential');
      assert.equal(skipped.failures[0]?.code, 'decryption_failed');
      // Without decryption the list needs no key and both objects are listed.
      assert.equal((await f.store.list('credential', t)).items.length, 2);
      const scan = await f.maintenance.scan();
      assert.equal(scan.checked, 2);
      assert.deepEqual(scan.failures.map((x) => [x.type, x.id]), [['credential', bad.id]]);
    } finally {
      await teardown();
    }
  });

  it('updates with a compare-and-set on the revision and reseals when AAD attributes change', async () => {
    await setup();
    try {
      const t = tenant();
      const s1 = secret();
      const created = await f.store.create('credential', t, { name: 'n', service: 's', ownerId: 'u1', apiSecret: s1 });
      const updated = await f.store.update('credential', t, created.id, { ownerId: 'u2' }, { expectedRevision: 1 });
      assert.equal(updated.revision, 2);
      assert.equal(updated.attributes['apiSecret'], undefined);
      assert.equal((await f.store.getDecrypted('credential', t, created.id)).attributes['apiSecret'], s1);
      await assert.rejects(
        f.store.update('credential', t, created.id, { name: 'stale' }, { expectedRevision: 1 }),
        (err: unknown) => err instanceof LatchkeyError && err.code === 'conflict',
      );
      // Concurrent updates without an expected revision are all applied, none lost.
      await Promise.all(Array.from({ length: 5 }, (_, i) => f.store.update('credential', t, created.id, { [`name`]: `n${i}` })));
      assert.equal((await f.store.get('credential', t, created.id)).revision, 7);
    } finally {
      await teardown();
    }
  });

  it('rotates the master key by rewrapping data keys only; a decryption-only key still decrypts; a removed key is a typed error', async () => {
    await setup();
    try {
      const tenants = [tenant(), tenant(), tenant()];
      const secrets = new Map<string, string>();
      for (const t of tenants) {
        for (let i = 0; i < 3; i++) {
          const s = secret();
          const o = await f.store.create('credential', t, { name: `n${i}`, service: 's', ownerId: 'u', apiSecret: s });
          secrets.set(`${t}/${o.id}`, s);
        }
      }
      const oldKey = f.keyring.primary.key;
      const newKey = randomKey();
      // Before the rewrap, a process whose primary is the new key still decrypts through the old one.
      const rotated = f.peer({ keyring: new Keyring(newKey, [oldKey]) });
      for (const [path, s] of secrets) {
        const [t, id] = path.split('/') as [string, string];
        assert.equal((await rotated.store.getDecrypted('credential', t, id)).attributes['apiSecret'], s);
      }
      const objectsBefore = await f.handle.db.selectFrom('objects').select(['id', 'secrets']).orderBy('id').execute();
      const report = await rotated.dataKeys.rewrapAll();
      assert.equal(report.rewrapped, 3);
      assert.deepEqual(report.failures, []);
      assert.equal(await rotated.dataKeys.countNotUnderPrimary(), 0);
      assert.equal((await rotated.dataKeys.rewrapAll()).rewrapped, 0, 'a second run has nothing left to do');
      const objectsAfter = await f.handle.db.selectFrom('objects').select(['id', 'secrets']).orderBy('id').execute();
      assert.deepEqual(objectsAfter, objectsBefore, 'objects are not touched by a master key rotation');

      const onlyNew = f.peer({ keyring: new Keyring(newKey) });
      for (const [path, s] of secrets) {
        const [t, id] = path.split('/') as [string, string];
        assert.equal((await onlyNew.store.getDecrypted('credential', t, id)).attributes['apiSecret'], s);
      }
      const onlyOld = f.peer({ keyring: new Keyring(oldKey) });
      const [first] = secrets.keys();
      const [t, id] = (first as string).split('/') as [string, string];
      await assert.rejects(onlyOld.store.getDecrypted('credential', t, id), (err: unknown) => {
        assert.ok(err instanceof DecryptionError);
        assert.equal(err.code, 'key_not_found');
        assert.equal(err.objectType, 'credential');
        assert.equal(err.objectId, id);
        return true;
      });
      const wrongKey = f.peer({ keyring: new Keyring(randomKey()) });
      await assert.rejects(wrongKey.store.getDecrypted('credential', t, id), DecryptionError);
    } finally {
      await teardown();
    }
  });

  it('re-encrypts every object under fresh data keys, resumably, and prunes the retired keys', async () => {
    await setup();
    try {
      const tenants = [tenant(), tenant()];
      const expected = new Map<string, { t: string; s: string }>();
      for (const t of tenants) {
        for (let i = 0; i < 12; i++) {
          const s = secret();
          const o = await f.store.create('credential', t, { name: `n${i}`, service: 's', ownerId: 'u', apiSecret: s });
          expected.set(o.id, { t, s });
        }
      }
      // A plain-only object holds no data key and needs no re-encryption.
      const noSecret = await f.store.update('credential', tenants[0]!, [...expected.keys()][0]!, {});
      assert.ok(noSecret);
      const before = new Map((await f.handle.db.selectFrom('data_keys').selectAll().execute()).map((r) => [r.tenant_id, r.id]));
      for (const t of tenants) await f.dataKeys.rotate(t);
      assert.equal(await f.maintenance.countUnderRetiredKeys(), 24);

      // Crash after the first batch.
      await assert.rejects(
        f.maintenance.reencryptUnderRetiredKeys({ batchSize: 5, onProgress: () => { throw new Error('crash'); } }),
        /crash/,
      );
      assert.equal(await f.maintenance.countUnderRetiredKeys(), 19);
      const resumed = f.peer({});
      const report = await resumed.maintenance.reencryptUnderRetiredKeys({ batchSize: 5 });
      assert.equal(report.byType['credential'], 19);
      assert.deepEqual(report.failures, []);
      assert.equal(await resumed.maintenance.countUnderRetiredKeys(), 0);
      assert.equal(await resumed.dataKeys.pruneRetired(), 2);
      const after = await f.handle.db.selectFrom('data_keys').selectAll().execute();
      assert.equal(after.length, 2);
      for (const row of after) assert.notEqual(row.id, before.get(row.tenant_id));
      for (const [id, { t, s }] of expected) {
        assert.equal((await resumed.store.getDecrypted('credential', t, id)).attributes['apiSecret'], s);
      }
    } finally {
      await teardown();
    }
  });

  it('resumes an interrupted rekey run without rotating any tenant twice', async () => {
    await setup();
    try {
      const expected = new Map<string, { t: string; s: string }>();
      for (const t of [tenant(), tenant()]) {
        for (let i = 0; i < 10; i++) {
          const s = secret();
          expected.set((await f.store.create('credential', t, { name: 'n', service: 's', ownerId: 'u', apiSecret: s })).id, { t, s });
        }
      }
      await assert.rejects(
        f.maintenance.rekeyDataKeys({ settleMs: 0, batchSize: 4, onProgress: () => { throw new Error('crash'); } }),
        /crash/,
      );
      const keysAfterCrash = (await f.handle.db.selectFrom('data_keys').select('id').where('state', '=', 'primary').execute()).map((r) => r.id).sort();
      const resumed = await f.peer({}).maintenance.rekeyDataKeys({ settleMs: 0, batchSize: 4 });
      assert.equal(resumed.resumed, true);
      assert.equal(resumed.rotatedTenants, 0, 'tenants rotated before the crash are not rotated again');
      assert.equal(resumed.byType['credential'], 16);
      assert.equal(resumed.prunedDataKeys, 2);
      assert.equal(resumed.finished, true);
      const keysNow = (await f.handle.db.selectFrom('data_keys').select('id').execute()).map((r) => r.id).sort();
      assert.deepEqual(keysNow, keysAfterCrash);
      const next = await f.maintenance.rekeyDataKeys({ settleMs: 0 });
      assert.equal(next.resumed, false, 'a finished run is not resumed');
      assert.equal(next.rotatedTenants, 2);
      for (const [id, { t, s }] of expected) {
        assert.equal((await f.store.getDecrypted('credential', t, id)).attributes['apiSecret'], s);
      }
    } finally {
      await teardown();
    }
  });

  it('consumes an object exactly once under concurrency, decrypted, in one statement', async () => {
    await setup();
    try {
      const t = tenant();
      const s = secret();
      const created = await f.store.create('credential', t, { name: 'n', service: 's', ownerId: 'u', apiSecret: s });
      const peer = f.peer({});
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? f : peer).store.consume('credential', created.id)),
      );
      const winners = results.filter((r) => r !== undefined);
      assert.equal(winners.length, 1);
      assert.equal(winners[0]?.attributes['apiSecret'], s);
      assert.equal(winners[0]?.tenantId, t);
      assert.equal(await f.store.consume('credential', created.id), undefined);
      const other = await f.store.create('credential', t, { name: 'n', service: 's', ownerId: 'u', apiSecret: secret() });
      assert.equal(await f.store.consume('credential', other.id, { tenantId: tenant() }), undefined, 'another tenant cannot consume it');
      assert.ok(await f.store.consume('credential', other.id, { tenantId: t }));
    } finally {
      await teardown();
    }
  });

  it('reports, by type and id, objects it cannot re-encrypt, and never their secrets', async () => {
    await setup();
    try {
      const t = tenant();
      const s = secret();
      const bad = await f.store.create('credential', t, { name: 'n', service: 's', ownerId: 'u', apiSecret: s });
      await f.store.create('credential', t, { name: 'm', service: 's', ownerId: 'u', apiSecret: secret() });
      const row = await rawRow(f, bad.id);
      await f.handle.db.updateTable('objects').set({ attributes: row.attributes.replace('"u"', '"v"') }).where('id', '=', bad.id).execute();
      await f.dataKeys.rotate(t);
      const report = await f.maintenance.reencryptUnderRetiredKeys();
      assert.equal(report.byType['credential'], 1);
      assert.deepEqual(report.failures.map((x) => [x.type, x.id, x.code]), [['credential', bad.id, 'decryption_failed']]);
      assert.ok(!JSON.stringify(report).includes(s));
    } finally {
      await teardown();
    }
  });
});
