import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { z } from 'zod';
import { withSavepoint } from '../db/index.js';
import { eachDialect } from '../../test/support/databases.js';
import { createStoreFixture } from '../../test/support/store.js';
import { defineObjectType } from './index.js';

const note = defineObjectType({
  name: 'note',
  versions: [{ version: 1, schema: z.object({ title: z.string(), body: z.string() }), attributesToEncrypt: ['body'], attributesToIncludeInAAD: ['title'] }],
});
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
        const first = await tx.store.create(note, t, { title: 'a', body });
        const second = await tx.store.create(note, t, { title: 'b', body: secret() });
        await tx.store.update('note', t, first.id, { body: `${body}!` });
        await tx.db.insertInto('invalidations').values({ scope: 'tenant', tenant_id: t, subject_id: null, at: new Date().toISOString() }).execute();
        // A nested call joins the same transaction.
        await tx.store.transaction(async (inner) => assert.equal(inner.db, tx.db));
        return [first, second];
      });
      assert.equal((await f.store.getDecrypted('note', t, a.id)).attributes.body, `${body}!`);
      assert.equal((await f.store.get('note', t, b.id)).attributes.title, 'b');
      assert.equal(await invalidations(), 1);

      let made = '';
      await assert.rejects(
        f.store.transaction(async (tx) => {
          made = (await tx.store.create(note, t, { title: 'c', body: secret() })).id;
          await tx.store.delete('note', t, a.id);
          await tx.db.insertInto('invalidations').values({ scope: 'tenant', tenant_id: t, subject_id: null, at: new Date().toISOString() }).execute();
          throw new Error('changed my mind');
        }),
        /changed my mind/,
      );
      await assert.rejects(f.store.get('note', t, made), { code: 'not_found' });
      assert.equal((await f.store.getDecrypted('note', t, a.id)).attributes.body, `${body}!`, 'the delete was rolled back');
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
            await tx.store.update('note', t, created.id, { body: String(Number(current.attributes.body) + 1) }, { expectedRevision: current.revision });
          },
          { lockTimeoutMs: 30_000 },
        );
      // On SQLite a second connection in the same process would block the event loop while it waits
      // for the write lock (better-sqlite3 is synchronous): one process per SQLite file, so there
      // the two writers take turns; on PostgreSQL they race for the row lock.
      if (dialect === 'postgres') await Promise.all([increment(f.store), increment(peer.store)]);
      else for (const store of [f.store, peer.store]) await increment(store);
      assert.equal((await f.store.getDecrypted('note', t, created.id)).attributes.body, '2');
      assert.equal(await f.store.transaction((tx) => tx.lock('note', t, 'note_missing')), false);
    } finally {
      await f.dispose();
    }
  });

  it('a create that loses to an existing id is refused with conflict and leaves the transaction usable', async () => {
    const f = await createStoreFixture(dialect, [note]);
    try {
      const t = tenant();
      const id = `note_${randomBytes(6).toString('hex')}`;
      const later = await f.store.transaction(async (tx) => {
        await tx.store.create(note, t, { title: 'first', body: secret() }, { id });
        // On PostgreSQL a failed INSERT would abort the whole transaction ("current transaction is
        // aborted"): the conflict must be found without a failed statement.
        await assert.rejects(tx.store.create(note, t, { title: 'second', body: secret() }, { id }), { code: 'conflict' });
        return tx.store.create(note, t, { title: 'after', body: secret() });
      });
      assert.equal((await f.store.get(note, t, id)).attributes.title, 'first');
      assert.equal((await f.store.get(note, t, later.id)).attributes.title, 'after');
    } finally {
      await f.dispose();
    }
  });

  it('claims: each transaction takes objects no other holds, decrypted, least recently updated first', async () => {
    const f = await createStoreFixture(dialect, [note]);
    try {
      const t = tenant();
      const bodies = new Map<string, string>();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const body = secret();
        const created = await f.store.create(note, t, { title: `n${i}`, body });
        bodies.set(created.id, body);
        ids.push(created.id);
        // Distinct update times in creation order (several creates can share a millisecond).
        await f.handle.db.updateTable('objects').set({ updated_at: `2020-01-0${i + 1}T00:00:00.000Z` }).where('id', '=', created.id).execute();
      }
      // Another tenant's objects are never claimed when a tenant is named.
      await f.store.create(note, tenant(), { title: 'other', body: secret() });
      const peer = f.peer({});
      if (dialect === 'postgres') {
        // The first holds three while the second claims: it gets the other two at once (no wait:
        // a wait would hit the lock timeout and fail).
        let release: () => void = () => {};
        const holding = new Promise<void>((r) => (release = r));
        let claimedFirst: string[] = [];
        const first = f.store.transaction(async (tx) => {
          const claimed = await tx.claim(note, { tenantId: t, limit: 3 });
          claimedFirst = claimed.items.map((o) => o.id);
          for (const o of claimed.items) assert.equal(o.attributes.body, bodies.get(o.id));
          await holding;
        });
        while (claimedFirst.length === 0) await new Promise((r) => setTimeout(r, 5));
        const second = await peer.store.transaction((tx) => tx.claim(note, { tenantId: t, limit: 5 }), { lockTimeoutMs: 1000 });
        release();
        await first;
        assert.equal(claimedFirst.length, 3);
        assert.deepEqual(second.items.map((o) => o.id).sort(), ids.filter((id) => !claimedFirst.includes(id)).sort());
      } else {
        // SQLite: one writer at a time. A worker that claims and updates three moves them to the
        // back; the next claim takes the two it did not touch first.
        const touched = await f.store.transaction(async (tx) => {
          const claimed = await tx.claim(note, { tenantId: t, limit: 3 });
          for (const o of claimed.items) await tx.store.update(note, t, o.id, { title: `${o.attributes.title}!` });
          return claimed.items.map((o) => o.id);
        });
        assert.deepEqual(touched, ids.slice(0, 3));
        const next = await peer.store.transaction((tx) => tx.claim(note, { tenantId: t, limit: 2 }));
        assert.deepEqual(next.items.map((o) => o.id), ids.slice(3));
      }
      // Narrowed to ids; an empty list claims nothing.
      const some = await f.store.transaction((tx) => tx.claim(note, { ids: [ids[4] as string, 'note_missing'] }));
      assert.deepEqual(some.items.map((o) => o.id), [ids[4]]);
      assert.deepEqual((await f.store.transaction((tx) => tx.claim(note, { ids: [] }))).items, []);
    } finally {
      await f.dispose();
    }
  });

  it('a claimed object that cannot be decrypted is reported in failures, never silently dropped', async () => {
    const f = await createStoreFixture(dialect, [note]);
    try {
      const t = tenant();
      const good = await f.store.create(note, t, { title: 'good', body: secret() });
      const bad = await f.store.create(note, t, { title: 'bad', body: secret() });
      // Tamper: the AAD binds the title, so a changed title fails to decrypt.
      const row = await f.handle.db.selectFrom('objects').select('attributes').where('id', '=', bad.id).executeTakeFirstOrThrow();
      const attributes = JSON.stringify({ ...JSON.parse(row.attributes), title: 'tampered' });
      await f.handle.db.updateTable('objects').set({ attributes }).where('id', '=', bad.id).execute();
      const claimed = await f.store.transaction((tx) => tx.claim(note, { tenantId: t }));
      assert.deepEqual(claimed.items.map((o) => o.id), [good.id]);
      assert.deepEqual(claimed.failures.map((x) => [x.id, x.code]), [[bad.id, 'decryption_failed']]);
    } finally {
      await f.dispose();
    }
  });

  it('a definition must be the one registered under its name', async () => {
    const f = await createStoreFixture(dialect, [note]);
    try {
      const impostor = defineObjectType({
        name: 'note',
        versions: [{ version: 1, schema: z.object({ title: z.string(), body: z.string() }), attributesToEncrypt: [], attributesToIncludeInAAD: [] }],
      });
      await assert.rejects(f.store.create(impostor, tenant(), { title: 'x', body: secret() }), TypeError);
    } finally {
      await f.dispose();
    }
  });

  it('runs afterCommit callbacks once the outermost transaction commits, and never after a rollback', async () => {
    const f = await createStoreFixture(dialect, [note]);
    try {
      const t = tenant();
      const ran: string[] = [];
      const made = await f.store.transaction(async (tx) => {
        tx.afterCommit(() => ran.push('outer'));
        // A nested call's callbacks wait for the outermost commit too.
        await tx.store.transaction(async (inner) => inner.afterCommit(() => ran.push('inner')));
        // A callback that throws is ignored: the change is committed, and the others still run.
        tx.afterCommit(() => {
          throw new Error('follow-up failed');
        });
        tx.afterCommit(() => ran.push('last'));
        const created = await tx.store.create(note, t, { title: 'a', body: secret() });
        assert.deepEqual(ran, [], 'nothing runs before the commit');
        return created;
      });
      assert.deepEqual(ran, ['outer', 'inner', 'last']);
      assert.equal((await f.store.get(note, t, made.id)).attributes.title, 'a');

      await assert.rejects(
        f.store.transaction(async (tx) => {
          tx.afterCommit(() => ran.push('rolled back'));
          await tx.store.create(note, t, { title: 'b', body: secret() });
          throw new Error('changed my mind');
        }),
        /changed my mind/,
      );
      assert.deepEqual(ran, ['outer', 'inner', 'last']);
    } finally {
      await f.dispose();
    }
  });

  it('a savepoint takes back only its own writes, even after a failed statement, and the transaction commits the rest', async () => {
    const f = await createStoreFixture(dialect, [note]);
    try {
      const t = tenant();
      let inside = '';
      const [before, after] = await f.store.transaction(async (tx) => {
        const first = await tx.store.create(note, t, { title: 'before', body: secret() });
        await assert.rejects(
          withSavepoint(tx.db, async () => {
            inside = (await tx.store.create(note, t, { title: 'inside', body: secret() })).id;
            // A failed statement: on PostgreSQL it would abort the whole transaction without the savepoint.
            await sql`select * from no_such_table`.execute(tx.db);
          }),
        );
        const value = await withSavepoint(tx.db, async () => (await tx.store.create(note, t, { title: 'kept', body: secret() })).id);
        const last = await tx.store.create(note, t, { title: 'after', body: secret() });
        return [first.id, [value, last.id]] as const;
      });
      assert.equal((await f.store.get(note, t, before)).attributes.title, 'before');
      await assert.rejects(f.store.get(note, t, inside), { code: 'not_found' });
      assert.equal((await f.store.get(note, t, after[0])).attributes.title, 'kept');
      assert.equal((await f.store.get(note, t, after[1])).attributes.title, 'after');
    } finally {
      await f.dispose();
    }
  });
});
