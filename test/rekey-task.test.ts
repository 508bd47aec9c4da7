// `rekey` as an admin task (`latchkey.rekey`) on both databases: scheduled like any task, run by
// the engine, its progress in the task's status while it runs and its summary once done; the
// objects decrypt afterwards under fresh data keys. (`latchkey rekey` on the command line runs
// the same ObjectMaintenance.rekey: test/rekey.test.ts.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { z } from 'zod';
import { LatchkeyError, loadSettings } from '../src/core/index.js';
import { createLatchkey } from '../src/latchkey.js';
import type { ObjectTypeDefinition } from '../src/objects/index.js';
import { createTestDatabase, eachDialect, latchkeyEnv } from './support/databases.js';

const note: ObjectTypeDefinition = {
  name: 'note',
  versions: [{ version: 1, schema: z.object({ owner: z.string(), body: z.string() }), attributesToEncrypt: ['body'], attributesToIncludeInAAD: ['owner'] }],
};

await eachDialect('the rekey task', (dialect) => {
  it('re-encrypts every object under fresh data keys, showing its progress in the task, and refuses bad params and an owner', async (t) => {
    const tdb = await createTestDatabase(dialect);
    t.after(() => tdb.dispose());
    const settings = loadSettings({ env: latchkeyEnv(tdb, { LATCHKEY_LOG_LEVEL: 'silent' }) });
    const latchkey = await createLatchkey({ settings, http: false, bootstrap: false, objectTypes: [note], tasks: { pollIntervalMs: 20 } });
    t.after(() => latchkey.close());
    const bodies = new Map<string, { tenant: string; body: string }>();
    for (let i = 0; i < 12; i++) {
      const tenant = `t_${i % 3}`;
      const body = `s_${randomBytes(18).toString('base64url')}`;
      const created = await latchkey.store.create('note', tenant, { owner: `u${i}`, body });
      bodies.set(created.id, { tenant, body });
    }
    const keysBefore = new Set((await latchkey.database.db.selectFrom('data_keys').select('id').execute()).map((r) => r.id));

    await assert.rejects(
      latchkey.tasks.schedule({ type: 'latchkey.rekey', params: { dataKeys: 'yes' } }),
      (err: unknown) => err instanceof LatchkeyError && err.code === 'validation_failed' && /params\.dataKeys/.test(JSON.stringify(err.details)),
    );
    // Latchkey's own work: never a tenant's task.
    await assert.rejects(
      latchkey.tasks.schedule({ type: 'latchkey.rekey', params: {}, owner: { tenantId: 't_0' } }),
      (err: unknown) => err instanceof LatchkeyError && err.code === 'validation_failed' && /"path":"type"/.test(JSON.stringify(err.details)),
    );
    assert.equal((await latchkey.tasks.list({ type: 'latchkey.rekey' })).tasks.length, 0);
    const task = await latchkey.tasks.schedule({ type: 'latchkey.rekey', params: { dataKeys: true, batchSize: 5 } });
    assert.equal(task.progress, null);
    await latchkey.background.start();
    // While it runs (it waits 5 s for servers to drop cached data keys) its status says where it is.
    const phases = new Set<string>();
    for (;;) {
      const view = await latchkey.tasks.get(task.id);
      const phase = (view.progress as { phase?: string } | null)?.phase;
      if (phase !== undefined) phases.add(phase);
      if (view.status === 'succeeded' || view.status === 'failed') break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const done = await latchkey.tasks.get(task.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.runs));
    assert.ok(phases.has('settling'), `phases seen: ${[...phases].join(', ')}`);
    assert.deepEqual(done.progress, { phase: 'done', dataKeysRewrapped: 0, rotatedTenants: 3, reencrypted: { note: 12 }, prunedDataKeys: 3, failed: 0 });

    assert.equal(await latchkey.maintenance.countUnderRetiredKeys(), 0);
    const keysAfter = (await latchkey.database.db.selectFrom('data_keys').select('id').execute()).map((r) => r.id);
    assert.equal(keysAfter.length, 3);
    assert.ok(keysAfter.every((id) => !keysBefore.has(id)), 'every tenant has a fresh data key');
    for (const [id, { tenant, body }] of bodies) {
      assert.equal((await latchkey.store.getDecrypted('note', tenant, id)).attributes.body, body);
    }
    assert.ok(!JSON.stringify(done).includes([...bodies.values()][0]?.body ?? '?'), 'no secret in the task');
  });
});
