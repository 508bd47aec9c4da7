// `latchkey rekey` and `latchkey doctor --scan` as an operator runs them: real CLI processes against
// a database that another process keeps writing to.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { Keyring } from '../src/crypto/index.js';
import type { ObjectTypeDefinition } from '../src/objects/index.js';
import { eachDialect } from './support/databases.js';
import { runCli } from './support/cli.js';
import { createStoreFixture, randomKey } from './support/store.js';

const note: ObjectTypeDefinition = {
  name: 'note',
  versions: [
    {
      version: 1,
      schema: z.object({ title: z.string(), owner: z.string(), body: z.string() }),
      attributesToEncrypt: ['body'],
      attributesToIncludeInAAD: ['owner'],
    },
  ],
};

const secret = () => `s_${randomBytes(18).toString('base64url')}`;

await eachDialect('latchkey rekey', (dialect) => {
  it('re-encrypts every object under fresh data keys while another process keeps writing', async () => {
    const f = await createStoreFixture(dialect, [note]);
    try {
      const keyFile = join(f.tdb.dataDir, 'keys');
      writeFileSync(keyFile, `${f.keyring.primary.key.toString('base64')}\n`, { mode: 0o600 });
      const env = { LATCHKEY_DATABASE_URL: f.tdb.url, LATCHKEY_DATA_DIR: f.tdb.dataDir, LATCHKEY_KEY_FILE: keyFile };
      const expected = new Map<string, { tenant: string; body: string }>();
      const tenants = ['t_a', 't_b', 't_c'];
      for (let i = 0; i < 90; i++) {
        const tenant = tenants[i % 3]!;
        const body = secret();
        const o = await f.store.create('note', tenant, { title: `n${i}`, owner: `u${i}`, body });
        expected.set(o.id, { tenant, body });
      }
      const before = new Set((await f.handle.db.selectFrom('data_keys').select('id').execute()).map((r) => r.id));

      // The "server": keeps creating and updating while the rekey runs (its primary-key cache
      // is 50 ms, well inside the 300 ms the rekey waits).
      let writing = true;
      const writer = (async () => {
        let n = 0;
        while (writing) {
          const tenant = tenants[n % 3]!;
          const body = secret();
          const o = await f.store.create('note', tenant, { title: `w${n}`, owner: 'w', body });
          expected.set(o.id, { tenant, body });
          const target = [...expected.keys()][n % 90]!;
          const fresh = secret();
          await f.store.update('note', expected.get(target)!.tenant, target, { body: fresh });
          expected.set(target, { tenant: expected.get(target)!.tenant, body: fresh });
          n++;
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const result = await runCli(['rekey', '--data-keys', '--settle', '300', '--batch-size', '7', '--json'], { env });
      writing = false;
      await writer;
      assert.equal(result.code, 0, result.stdout + result.stderr);
      const report = JSON.parse(result.stdout.trim().split('\n').pop()!) as {
        dataKeys: { rotatedTenants: number; reencrypted: Record<string, number>; prunedDataKeys: number; finished: boolean };
        failures: unknown[];
      };
      assert.equal(report.dataKeys.rotatedTenants, 3);
      assert.ok((report.dataKeys.reencrypted['note'] ?? 0) >= 90 - 30, 'most objects were re-encrypted by the rekey itself');
      assert.equal(report.dataKeys.finished, true);
      assert.deepEqual(report.failures, []);
      assert.ok(!result.stdout.includes(expected.values().next().value!.body));

      assert.equal(await f.maintenance.countUnderRetiredKeys(), 0);
      const after = await f.handle.db.selectFrom('data_keys').select('id').execute();
      assert.equal(after.length, 3);
      for (const row of after) assert.ok(!before.has(row.id), 'every tenant has a fresh data key');
      for (const [id, { tenant, body }] of expected) {
        assert.equal((await f.store.getDecrypted('note', tenant, id)).attributes['body'], body);
      }
    } finally {
      await f.dispose();
    }
  });

  it('counts of one are singular in rekey and doctor ("1 data key", "1 object")', async () => {
    const f = await createStoreFixture(dialect, [note]);
    try {
      const oldKey = f.keyring.primary.key;
      const newKey = randomKey();
      await f.store.create('note', 't_only', { title: 't', owner: 'o', body: secret() });
      const keyFile = join(f.tdb.dataDir, 'keys');
      const env = { LATCHKEY_DATABASE_URL: f.tdb.url, LATCHKEY_DATA_DIR: f.tdb.dataDir, LATCHKEY_KEY_FILE: keyFile };
      writeFileSync(keyFile, `${newKey.toString('base64')}\n${oldKey.toString('base64')}\n`, { mode: 0o600 });
      const warn = await runCli(['doctor'], { env });
      assert.match(warn.stdout, /! data keys: 1 of 1 data key is wrapped by an older master key/);
      const rekey = await runCli(['rekey'], { env });
      assert.match(rekey.stdout, /Rewrapped 1 data key under master key mk_/);
      const ok = await runCli(['doctor', '--scan'], { env });
      assert.match(ok.stdout, /✔ data keys: 1 data key, wrapped by the primary master key/);
      assert.match(ok.stdout, /✔ scan: the 1 object decrypts/);
    } finally {
      await f.dispose();
    }
  });

  it('rotates the master key, and doctor --scan names objects whose key is gone', async () => {
    const f = await createStoreFixture(dialect, [note]);
    try {
      const oldKey = f.keyring.primary.key;
      const newKey = randomKey();
      const bodies = new Map<string, string>();
      for (let i = 0; i < 6; i++) {
        const body = secret();
        bodies.set((await f.store.create('note', `t_${i % 2}`, { title: 't', owner: 'o', body })).id, body);
      }
      const keyFile = join(f.tdb.dataDir, 'keys');
      const env = { LATCHKEY_DATABASE_URL: f.tdb.url, LATCHKEY_DATA_DIR: f.tdb.dataDir, LATCHKEY_KEY_FILE: keyFile };

      // Step 2 of the rotation: the new key first, the old one below it.
      writeFileSync(keyFile, `${newKey.toString('base64')}\n${oldKey.toString('base64')}\n`, { mode: 0o600 });
      const warn = await runCli(['doctor'], { env });
      assert.match(warn.stdout, /! data keys: 2 of 2 data keys are wrapped by an older master key/);
      const rekey = await runCli(['rekey'], { env });
      assert.equal(rekey.code, 0, rekey.stderr);
      assert.match(rekey.stdout, /Rewrapped 2 data keys under master key mk_/);

      // The old key removed: everything still decrypts.
      writeFileSync(keyFile, `${newKey.toString('base64')}\n`, { mode: 0o600 });
      const ok = await runCli(['doctor', '--scan'], { env });
      assert.equal(ok.code, 0, ok.stdout);
      assert.match(ok.stdout, /✔ data keys: 2 data keys, all wrapped by the primary master key/);
      assert.match(ok.stdout, /✔ scan: all 6 objects decrypt/);
      const peer = f.peer({ keyring: new Keyring(newKey) });
      for (const [id, body] of bodies) {
        const tenant = (await f.handle.db.selectFrom('objects').select('tenant_id').where('id', '=', id).executeTakeFirstOrThrow()).tenant_id;
        assert.equal((await peer.store.getDecrypted('note', tenant, id)).attributes['body'], body);
      }

      // A key that never wrapped these data keys: doctor names every object it cannot decrypt.
      writeFileSync(keyFile, `${randomKey().toString('base64')}\n`, { mode: 0o600 });
      const bad = await runCli(['doctor', '--scan'], { env });
      assert.equal(bad.code, 1);
      assert.match(bad.stdout, /✖ data keys: 2 data keys are wrapped by master keys that are not configured/);
      assert.match(bad.stdout, /✖ scan: 6 of 6 objects cannot be decrypted/);
      for (const [id, body] of bodies) {
        assert.match(bad.stdout, new RegExp(`note ${id}: key_not_found`));
        assert.ok(!bad.stdout.includes(body));
      }
    } finally {
      await f.dispose();
    }
  });
});
