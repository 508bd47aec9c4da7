import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { DecryptionError, LatchkeyError } from '../core/index.js';
import { eachDialect } from '../../test/support/databases.js';
import { createStoreFixture, type StoreFixture } from '../../test/support/store.js';
import type { ModelVersion, ObjectTypeDefinition } from './index.js';

// Two processes of different versions share one database during a rolling upgrade: v1 keeps
// `clientId` plain; v2 encrypts it (a declared move), adds `tier` to AAD (new, so allowed) and a
// new encrypted `webhookSecret`.
const v1: ModelVersion = {
  version: 1,
  schema: z.object({ name: z.string(), region: z.string(), clientId: z.string(), token: z.string() }),
  attributesToEncrypt: ['token'],
  attributesToIncludeInAAD: ['region'],
};

const v2: ModelVersion = {
  version: 2,
  schema: z.object({
    name: z.string(),
    region: z.string(),
    clientId: z.string(),
    token: z.string(),
    tier: z.string(),
    webhookSecret: z.string().optional(),
  }),
  attributesToEncrypt: ['token', 'clientId', 'webhookSecret'],
  attributesToIncludeInAAD: ['region', 'tier'],
  moves: { encrypt: ['clientId'] },
  up: (previous) => ({ ...previous, tier: 'free' }),
};

const v1Only: ObjectTypeDefinition = { name: 'integration', versions: [v1] };
const both: ObjectTypeDefinition = { name: 'integration', versions: [v1, v2] };

const secret = () => `s_${randomBytes(24).toString('base64url')}`;
const tenant = () => `t_${randomBytes(6).toString('hex')}`;

async function rawRow(f: StoreFixture, id: string) {
  return f.handle.db.selectFrom('objects').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

async function expectDecryptionError(promise: Promise<unknown>, id: string, leaked: string[]) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof DecryptionError, `expected DecryptionError, got ${String(err)}`);
    assert.equal(err.code, 'decryption_failed');
    assert.equal(err.objectType, 'integration');
    assert.equal(err.objectId, id);
    assert.ok(err.message.includes(`integration ${id}`), err.message);
    const text = `${err.message} ${JSON.stringify(err)}`;
    for (const s of leaked) assert.ok(!text.includes(s), 'the error must not contain a secret');
    return true;
  });
}

await eachDialect('model versions across a rolling upgrade', (dialect) => {
  let f: StoreFixture;
  let old: StoreFixture;
  const setup = async () => {
    f = await createStoreFixture(dialect, [both]);
    old = f.peer({ types: [v1Only] });
  };
  const teardown = () => f.dispose();

  it('lets a v1 process read a v2-written object, moved clientId and secrets included', async () => {
    await setup();
    try {
      const t = tenant();
      const s = { clientId: secret(), token: secret(), webhookSecret: secret() };
      const created = await f.store.create('integration', t, { name: 'crm', region: 'eu', tier: 'pro', ...s });
      assert.equal(created.modelVersion, 2);

      const row = await rawRow(f, created.id);
      assert.equal(row.model_version, 2);
      assert.deepEqual(JSON.parse(row.attributes), { name: 'crm', region: 'eu', tier: 'pro' });
      assert.deepEqual(Object.keys(JSON.parse(row.secrets) as object).sort(), ['clientId', 'token', 'webhookSecret']);
      assert.deepEqual(JSON.parse(row.aad_attributes), ['region', 'tier']);
      const rowText = JSON.stringify(row);
      for (const value of Object.values(s)) assert.ok(!rowText.includes(value), 'no plaintext at rest');

      // Plain read: clientId is plain to v1, so v1 must hand it out; token stays stripped.
      const plain = await old.store.get('integration', t, created.id);
      assert.deepEqual(plain.attributes, { name: 'crm', region: 'eu', clientId: s.clientId });
      assert.equal(plain.modelVersion, 2);

      const decrypted = await old.store.getDecrypted('integration', t, created.id);
      assert.deepEqual(decrypted.attributes, { name: 'crm', region: 'eu', clientId: s.clientId, token: s.token });

      const listed = await old.store.list('integration', t);
      assert.deepEqual(listed.items.map((i) => i.attributes), [{ name: 'crm', region: 'eu', clientId: s.clientId }]);
      assert.ok(!JSON.stringify(listed).includes(s.token) && !JSON.stringify(listed).includes(s.webhookSecret));
      const listedDecrypted = await old.store.list('integration', t, { decrypt: true });
      assert.deepEqual(listedDecrypted.items.map((i) => i.attributes), [decrypted.attributes]);

      // The v2 process itself strips every encrypted attribute, clientId included.
      assert.deepEqual((await f.store.get('integration', t, created.id)).attributes, { name: 'crm', region: 'eu', tier: 'pro' });
      assert.deepEqual((await f.store.getDecrypted('integration', t, created.id)).attributes, { name: 'crm', region: 'eu', tier: 'pro', ...s });
    } finally {
      await teardown();
    }
  });

  it('upgrades a v1-written object on read in a v2 process', async () => {
    await setup();
    try {
      const t = tenant();
      const s = { clientId: secret(), token: secret() };
      const created = await old.store.create('integration', t, { name: 'crm', region: 'us', ...s });
      assert.equal(created.modelVersion, 1);
      const row = await rawRow(f, created.id);
      assert.equal(row.model_version, 1);
      assert.deepEqual(JSON.parse(row.attributes), { name: 'crm', region: 'us', clientId: s.clientId });
      assert.deepEqual(JSON.parse(row.aad_attributes), ['region']);

      const plain = await f.store.get('integration', t, created.id);
      assert.deepEqual(plain.attributes, { name: 'crm', region: 'us', tier: 'free' });
      assert.equal(plain.modelVersion, 1);
      const decrypted = await f.store.getDecrypted('integration', t, created.id);
      assert.deepEqual(decrypted.attributes, { name: 'crm', region: 'us', tier: 'free', ...s });
      const listed = await f.store.list('integration', t, { decrypt: true });
      assert.deepEqual(listed.items.map((i) => i.attributes), [decrypted.attributes]);
      // Reading never rewrites the row.
      assert.deepEqual(await rawRow(f, created.id), row);
    } finally {
      await teardown();
    }
  });

  it('refuses to let a v1 process rewrite a v2-written object, which would drop what v1 does not know', async () => {
    await setup();
    try {
      const t = tenant();
      const s = { clientId: secret(), token: secret(), webhookSecret: secret() };
      const created = await f.store.create('integration', t, { name: 'crm', region: 'eu', tier: 'pro', ...s });
      const before = await rawRow(f, created.id);
      await assert.rejects(
        old.store.update('integration', t, created.id, { name: 'renamed', token: secret() }),
        (err: unknown) => {
          assert.ok(err instanceof LatchkeyError);
          assert.equal(err.code, 'conflict');
          assert.match(err.message, /newer version/);
          return true;
        },
      );
      assert.deepEqual(await rawRow(f, created.id), before, 'nothing changed');
      const back = await f.store.getDecrypted('integration', t, created.id);
      assert.equal(back.attributes['tier'], 'pro');
      assert.equal(back.attributes['webhookSecret'], s.webhookSecret);

      // A v1-written object is updated by both versions; the v2 write upgrades it.
      const v1 = await old.store.create('integration', t, { name: 'old', region: 'us', clientId: s.clientId, token: s.token });
      await old.store.update('integration', t, v1.id, { name: 'older' });
      await f.store.update('integration', t, v1.id, { tier: 'pro' });
      assert.equal((await rawRow(f, v1.id)).model_version, 2);
      const read = await old.store.getDecrypted('integration', t, v1.id);
      assert.deepEqual(read.attributes, { name: 'older', region: 'us', clientId: s.clientId, token: s.token });
    } finally {
      await teardown();
    }
  });

  it('counts and rewrites v1 objects at v2, sealing the moved clientId and keeping every secret', async () => {
    await setup();
    try {
      const tenants = [tenant(), tenant()];
      const expected = new Map<string, { t: string; clientId: string; token: string }>();
      for (const t of tenants) {
        for (let i = 0; i < 3; i++) {
          const s = { clientId: secret(), token: secret() };
          const o = await old.store.create('integration', t, { name: `n${i}`, region: 'eu', ...s });
          expected.set(o.id, { t, ...s });
        }
      }
      const webhookSecret = secret();
      const current = await f.store.create('integration', tenants[0]!, { name: 'v2', region: 'eu', tier: 'pro', clientId: secret(), token: secret(), webhookSecret });
      const currentRow = await rawRow(f, current.id);

      assert.deepEqual(await f.maintenance.countOutdated(), { integration: 6 });
      assert.deepEqual(await old.maintenance.countOutdated(), {}, 'a v1 process knows nothing newer than v1');
      const progress: [number, number][] = [];
      const report = await f.maintenance.upgradeModelVersions({ onProgress: (done, total) => progress.push([done, total]) });
      assert.deepEqual(report, { byType: { integration: 6 }, failures: [] });
      assert.deepEqual(progress.at(-1), [6, 6]);
      assert.deepEqual(await f.maintenance.countOutdated(), {});
      assert.deepEqual((await f.maintenance.upgradeModelVersions()).byType, {}, 'a second run has nothing left to do');
      assert.deepEqual(await rawRow(f, current.id), currentRow, 'a current object is not rewritten');

      for (const [id, s] of expected) {
        const row = await rawRow(f, id);
        assert.equal(row.model_version, 2);
        assert.equal(row.revision, 2);
        const attributes = JSON.parse(row.attributes) as Record<string, unknown>;
        assert.deepEqual(Object.keys(attributes).sort(), ['name', 'region', 'tier']);
        assert.equal(attributes['tier'], 'free');
        assert.deepEqual(Object.keys(JSON.parse(row.secrets) as object).sort(), ['clientId', 'token']);
        assert.deepEqual(JSON.parse(row.aad_attributes), ['region', 'tier']);
        assert.ok(!JSON.stringify(row).includes(s.clientId), 'clientId is sealed, not plain');

        const upgraded = await f.store.getDecrypted('integration', s.t, id);
        assert.equal(upgraded.modelVersion, 2);
        assert.equal(upgraded.attributes['clientId'], s.clientId);
        assert.equal(upgraded.attributes['token'], s.token);
        // The v1 process still reads the upgraded object, clientId included.
        const seenByOld = await old.store.getDecrypted('integration', s.t, id);
        assert.equal(seenByOld.attributes['clientId'], s.clientId);
        assert.equal(seenByOld.attributes['token'], s.token);
      }
      assert.equal((await f.store.getDecrypted('integration', tenants[0]!, current.id)).attributes['webhookSecret'], webhookSecret);
    } finally {
      await teardown();
    }
  });

  it('fails to decrypt, naming type and id, when the aad_attributes or model_version column is tampered with', async () => {
    await setup();
    try {
      const t = tenant();
      const s = { clientId: secret(), token: secret(), webhookSecret: secret() };
      const created = await f.store.create('integration', t, { name: 'crm', region: 'eu', tier: 'pro', ...s });
      const legacy = { clientId: secret(), token: secret() };
      const older = await old.store.create('integration', t, { name: 'old', region: 'eu', ...legacy });
      const row = await rawRow(f, created.id);
      const olderRow = await rawRow(f, older.id);
      const db = f.handle.db;
      const restore = async () => {
        await db.updateTable('objects').set({ aad_attributes: row.aad_attributes, model_version: row.model_version }).where('id', '=', created.id).execute();
        await db.updateTable('objects').set({ aad_attributes: olderRow.aad_attributes, model_version: olderRow.model_version }).where('id', '=', older.id).execute();
        assert.equal((await f.store.getDecrypted('integration', t, created.id)).attributes['token'], s.token);
        assert.equal((await f.store.getDecrypted('integration', t, older.id)).attributes['token'], legacy.token);
      };
      const leaked = [...Object.values(s), ...Object.values(legacy)];
      await restore();

      // A v2 object's AAD list drops "tier": both processes refuse it.
      await db.updateTable('objects').set({ aad_attributes: JSON.stringify(['region']) }).where('id', '=', created.id).execute();
      await expectDecryptionError(f.store.getDecrypted('integration', t, created.id), created.id, leaked);
      await expectDecryptionError(old.store.getDecrypted('integration', t, created.id), created.id, leaked);
      await expectDecryptionError(old.store.get('integration', t, created.id), created.id, leaked);
      await restore();

      // A v2 object's AAD list gains a plain attribute.
      await db.updateTable('objects').set({ aad_attributes: JSON.stringify(['region', 'tier', 'name']) }).where('id', '=', created.id).execute();
      await expectDecryptionError(f.store.getDecrypted('integration', t, created.id), created.id, leaked);
      await expectDecryptionError(old.store.getDecrypted('integration', t, created.id), created.id, leaked);
      await restore();

      // A v1 object's AAD list dropped entirely.
      await db.updateTable('objects').set({ aad_attributes: JSON.stringify([]) }).where('id', '=', older.id).execute();
      await expectDecryptionError(f.store.getDecrypted('integration', t, older.id), older.id, leaked);
      await expectDecryptionError(old.store.getDecrypted('integration', t, older.id), older.id, leaked);
      await restore();

      // A v2 object claims v1.
      await db.updateTable('objects').set({ model_version: 1 }).where('id', '=', created.id).execute();
      await expectDecryptionError(f.store.getDecrypted('integration', t, created.id), created.id, leaked);
      await expectDecryptionError(old.store.getDecrypted('integration', t, created.id), created.id, leaked);
      await restore();

      // A v1 object claims v2, with or without a matching AAD list.
      await db.updateTable('objects').set({ model_version: 2 }).where('id', '=', older.id).execute();
      await expectDecryptionError(f.store.getDecrypted('integration', t, older.id), older.id, leaked);
      await db.updateTable('objects').set({ model_version: 2, aad_attributes: JSON.stringify(['region', 'tier']) }).where('id', '=', older.id).execute();
      await expectDecryptionError(f.store.getDecrypted('integration', t, older.id), older.id, leaked);
      await restore();

      // A list reports the tampered object by type and id and goes on with the others.
      await db.updateTable('objects').set({ model_version: 1 }).where('id', '=', created.id).execute();
      const listed = await f.store.list('integration', t, { decrypt: true, onUndecryptable: 'skip' });
      assert.deepEqual(listed.items.map((i) => i.id), [older.id]);
      assert.deepEqual(listed.failures.map((x) => [x.type, x.id, x.code]), [['integration', created.id, 'decryption_failed']]);
      assert.equal(listed.items[0]?.attributes['token'], legacy.token);
      assert.ok(!leaked.some((value) => JSON.stringify(listed.failures).includes(value)), 'failures carry no secret');
    } finally {
      await teardown();
    }
  });
});
