import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { eachDialect } from '../../test/support/databases.js';
import { createStoreFixture } from '../../test/support/store.js';
import type { ObjectTypeDefinition } from './index.js';

const note: ObjectTypeDefinition = {
  name: 'note',
  versions: [{ version: 1, schema: z.object({ title: z.string(), body: z.string() }), attributesToEncrypt: ['body'], attributesToIncludeInAAD: ['title'] }],
};
const secret = () => `s_${randomBytes(24).toString('base64url')}`;
const tenant = () => `t_${randomBytes(6).toString('hex')}`;

await eachDialect('object store transactions', (dialect) => {
  it('commits several objects and a plain row together, or rolls all of them back', async () => {
    const f = await createStoreFixture(dialect, [note]);
    try {
      const t = tenant();
      const invalidations = async () => (await f.handle.db.selectFrom('invalidations').select('seq').where('tenant_id', '=', t).execute()).length;
      const body = secret();
      const [a, b] = await f.store.transaction(async (tx) => {
        const first = await tx.store.create('note', t, { title: 'a', body });
        const second = await tx.store.create('note', t, { title: 'b', body: secret() });
        await tx.store.update('note', t, first.id, { body: `${body}!` });
        await tx.db.insertInto('invalidations').values({ scope: 'tenant', tenant_id: t, subject_id: null, at: new Date().toISOString() }).execute();
        // A nested call joins the same transaction.
        await tx.store.transaction(async (inner) => assert.equal(inner.db, tx.db));
        return [first, second];
      });
      assert.equal((await f.store.getDecrypted('note', t, a.id)).attributes['body'], `${body}!`);
      assert.equal((await f.store.get('note', t, b.id)).attributes['title'], 'b');
      assert.equal(await invalidations(), 1);

      let made = '';
      await assert.rejects(
        f.store.transaction(async (tx) => {
          made = (await tx.store.create('note', t, { title: 'c', body: secret() })).id;
          await tx.store.delete('note', t, a.id);
          await tx.db.insertInto('invalidations').values({ scope: 'tenant', tenant_id: t, subject_id: null, at: new Date().toISOString() }).execute();
          throw new Error('changed my mind');
        }),
        /changed my mind/,
      );
      await assert.rejects(f.store.get('note', t, made), { code: 'not_found' });
      assert.equal((await f.store.getDecrypted('note', t, a.id)).attributes['body'], `${body}!`, 'the delete was rolled back');
      assert.equal(await invalidations(), 1);
    } finally {
      await f.dispose();
    }
  });

  it('a row lock serialises two writers: the second sees the commit of the first', async () => {
    const f = await createStoreFixture(dialect, [note]);
    try {
      const t = tenant();
      const created = await f.store.create('note', t, { title: 'n', body: '0' });
      const peer = f.peer({});
      // Each increments the body under the lock; without it both would read 0.
      const increment = (store: typeof f.store) =>
        store.transaction(
          async (tx) => {
            assert.equal(await tx.lock('note', t, created.id), true);
            const current = await tx.store.getDecrypted('note', t, created.id);
            await new Promise((r) => setTimeout(r, 50));
            await tx.store.update('note', t, created.id, { body: String(Number(current.attributes['body']) + 1) }, { expectedRevision: current.revision });
          },
          { lockTimeoutMs: 30_000 },
        );
      // On SQLite a second connection in the same process would block the event loop while it waits
      // for the write lock (better-sqlite3 is synchronous): one process per SQLite file, so there
      // the two writers take turns; on PostgreSQL they race for the row lock.
      if (dialect === 'postgres') await Promise.all([increment(f.store), increment(peer.store)]);
      else for (const store of [f.store, peer.store]) await increment(store);
      assert.equal((await f.store.getDecrypted('note', t, created.id)).attributes['body'], '2');
      assert.equal(await f.store.transaction((tx) => tx.lock('note', t, 'note_missing')), false);
    } finally {
      await f.dispose();
    }
  });
});
