import { it } from 'node:test';
import assert from 'node:assert/strict';
import { manualClock } from '../core/index.js';
import { eachDialect } from '../../test/support/databases.js';
import { createIdentityFixture, randomName, randomSecret, rejectsWith } from '../../test/identity-support.js';
import type { Actor } from './index.js';

await eachDialect('identity: audit log', (dialect) => {
  it('lists events newest first, page by page with a cursor', async () => {
    const clock = manualClock(new Date('2031-05-01T00:00:00.000Z'));
    const f = await createIdentityFixture(dialect, { clock, empty: true });
    try {
      const { audit } = f.identity;
      const tenantId = 'ten_audit';
      const actor: Actor = { type: 'user', tenantId, userId: 'usr_a', apiKeyId: 'key_a' };
      // Several events share a millisecond: they still list in the order recorded.
      for (let i = 0; i < 7; i++) {
        await audit.record(f.handle.db, { tenantId, actor, action: i % 2 ? 'thing.odd' : 'thing.even', target: `t${i}`, details: { i } });
        if (i % 3 === 2) clock.advance(1);
      }
      await audit.record(f.handle.db, { tenantId: 'ten_elsewhere', actor, action: 'thing.even' });

      const pages: string[][] = [];
      let before: string | undefined;
      do {
        const page = await audit.list(tenantId, { limit: 3, ...(before ? { before } : {}) });
        pages.push(page.items.map((e) => e.target ?? ''));
        before = page.next;
      } while (before);
      assert.deepEqual(pages, [['t6', 't5', 't4'], ['t3', 't2', 't1'], ['t0']]);

      const first = (await audit.list(tenantId, { limit: 1 })).items[0];
      assert.ok(first);
      assert.match(first.id, /^aud_[0-9a-f]+$/);
      assert.deepEqual({ ...first, id: '' }, {
        id: '',
        tenantId,
        at: '2031-05-01T00:00:00.002Z',
        actor: 'api_key:key_a',
        action: 'thing.even',
        target: 't6',
        details: { i: 6 },
      });

      const odd = await audit.list(tenantId, { action: 'thing.odd', limit: 2 });
      assert.deepEqual(odd.items.map((e) => e.target), ['t5', 't3']);
      assert.ok(odd.next);
      assert.deepEqual((await audit.list(tenantId, { action: 'thing.odd', before: odd.next })).items.map((e) => e.target), ['t1']);
      assert.equal((await audit.list(tenantId, { limit: 7 })).next, undefined);
      assert.deepEqual(await audit.list('ten_nothing'), { items: [] });
    } finally {
      await f.dispose();
    }
  });

  it('lists the events of a time range: since inclusive, until exclusive, with the other filters and the cursor', async () => {
    const clock = manualClock(new Date('2031-06-01T10:00:00.000Z'));
    const f = await createIdentityFixture(dialect, { clock, empty: true });
    try {
      const { audit } = f.identity;
      const tenantId = 'ten_range';
      const actor: Actor = { type: 'system' };
      for (let i = 0; i < 6; i++) {
        await audit.record(f.handle.db, { tenantId, actor, action: i % 2 ? 'thing.odd' : 'thing.even', target: `t${i}` });
        clock.advance(60_000);
      }
      const targets = async (options: Parameters<typeof audit.list>[1]) => (await audit.list(tenantId, options)).items.map((e) => e.target);
      assert.deepEqual(await targets({ since: '2031-06-01T10:02:00.000Z' }), ['t5', 't4', 't3', 't2']);
      assert.deepEqual(await targets({ until: '2031-06-01T10:02:00.000Z' }), ['t1', 't0']);
      // Another offset names the same instant.
      assert.deepEqual(await targets({ since: '2031-06-01T12:01:00+02:00', until: '2031-06-01T10:04:00Z' }), ['t3', 't2', 't1']);
      assert.deepEqual(await targets({ since: '2031-06-01T10:01:00Z', until: '2031-06-01T10:05:00Z', action: 'thing.odd' }), ['t3', 't1']);
      const page = await audit.list(tenantId, { since: '2031-06-01T10:01:00Z', limit: 2 });
      assert.ok(page.next);
      assert.deepEqual(await targets({ since: '2031-06-01T10:01:00Z', before: page.next }), ['t3', 't2', 't1']);

      for (const since of ['yesterday', '2031-13-01T00:00:00Z', '1717236000000']) {
        const err = await rejectsWith(audit.list(tenantId, { since }), 'validation_failed');
        assert.deepEqual(err.details?.fields, [{ path: 'since', message: 'must be a date and time such as "2026-01-31T12:00:00Z"' }]);
      }
      const backwards = await rejectsWith(audit.list(tenantId, { since: '2031-06-01T10:03:00Z', until: '2031-06-01T10:03:00Z' }), 'validation_failed');
      assert.deepEqual(backwards.details?.fields, [{ path: 'until', message: 'must be later than "since"' }]);
    } finally {
      await f.dispose();
    }
  });

  it('refuses a bad cursor or limit', async () => {
    const f = await createIdentityFixture(dialect, { empty: true });
    try {
      const { audit } = f.identity;
      for (const before of ['garbage', Buffer.from('[1,2]').toString('base64url'), Buffer.from('{}').toString('base64url')]) {
        await rejectsWith(audit.list('ten_x', { before }), 'invalid_request');
      }
      for (const limit of [0, 501, 1.5, Number.NaN]) await rejectsWith(audit.list('ten_x', { limit }), 'validation_failed');
      await assert.rejects(audit.record(f.handle.db, { tenantId: 'ten_x', actor: { type: 'system' }, action: 'Bad Action' }), TypeError);
    } finally {
      await f.dispose();
    }
  });

  it('records in the caller transaction: a rolled-back change leaves no event', async () => {
    const f = await createIdentityFixture(dialect, { empty: true });
    try {
      const { audit } = f.identity;
      await assert.rejects(
        f.handle.db.transaction().execute(async (trx) => {
          await audit.record(trx, { tenantId: 'ten_x', actor: { type: 'system' }, action: 'thing.done' });
          throw new Error('rollback');
        }),
        /rollback/,
      );
      assert.deepEqual(await audit.list('ten_x'), { items: [] });
    } finally {
      await f.dispose();
    }
  });

  it('records a batch in the caller transaction as record would one by one, in the order given', async () => {
    const clock = manualClock(new Date('2031-07-01T00:00:00.000Z'));
    const f = await createIdentityFixture(dialect, { clock, empty: true });
    try {
      const { audit } = f.identity;
      const tenantId = 'ten_many';
      const actor: Actor = { type: 'user', tenantId, userId: 'usr_a', apiKeyId: 'key_a' };
      const token = randomSecret();
      const count = async () => Number((await f.handle.db.selectFrom('audit_events').select(({ fn }) => fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      await audit.recordMany(f.handle.db, []);
      assert.equal(await count(), 0, 'no event, no row');

      // More than two inserts (500 rows each), all in one millisecond: the ids keep the order.
      const events = Array.from({ length: 1_200 }, (_, i) => ({ tenantId, actor, action: 'api_key.revoked', target: `k${i}`, details: { i, accessToken: token } }));
      await f.handle.db.transaction().execute((trx) => audit.recordMany(trx, events));
      const listed: Array<{ id: string; at: string; actor: string; action: string; target: string | null; details: unknown }> = [];
      let before: string | undefined;
      do {
        const page = await audit.list(tenantId, { limit: 500, ...(before ? { before } : {}) });
        listed.push(...page.items);
        before = page.next;
      } while (before);
      assert.deepEqual(listed.map((e) => e.target), events.map((e) => e.target).reverse(), 'newest first: the reverse of the order given');
      for (const [n, e] of listed.entries()) {
        const i = events.length - 1 - n;
        assert.deepEqual({ ...e, id: '' }, { id: '', tenantId, at: '2031-07-01T00:00:00.000Z', actor: 'api_key:key_a', action: 'api_key.revoked', target: `k${i}`, details: { i } });
      }
      const ids = listed.map((e) => e.id);
      assert.equal(new Set(ids).size, ids.length, 'every event has its own id');
      assert.deepEqual([...ids].sort().reverse(), ids, 'ids sort in the order recorded');
      const stored = JSON.stringify(await f.handle.db.selectFrom('audit_events').selectAll().execute());
      assert.equal(stored.includes(token), false, 'no secret in the log');

      // A bad event anywhere in the batch refuses all of it before anything is written.
      await assert.rejects(audit.recordMany(f.handle.db, [...events.slice(0, 600), { tenantId, actor, action: 'Bad Action' }]), TypeError);
      await assert.rejects(audit.recordMany(f.handle.db, [...events.slice(0, 600), { tenantId: '', actor, action: 'thing.done' }]));
      // A rolled-back batch leaves nothing.
      await assert.rejects(
        f.handle.db.transaction().execute(async (trx) => {
          await audit.recordMany(trx, events);
          throw new Error('rollback');
        }),
        /rollback/,
      );
      assert.equal(await count(), events.length);
    } finally {
      await f.dispose();
    }
  });

  it('appends outside a transaction in group commits: every concurrent event is committed when its promise resolves', async () => {
    const f = await createIdentityFixture(dialect, { empty: true });
    try {
      const { audit } = f.identity;
      const tenantId = 'ten_group';
      const actor: Actor = { type: 'user', tenantId, userId: 'usr_a', apiKeyId: 'key_a' };
      const token = randomSecret();
      // More than one batch (500 rows) at once, with a secret-named detail that must be dropped.
      const appended = Array.from({ length: 1_200 }, (_, i) => audit.append({ tenantId, actor, action: 'connection.proxied', target: `c${i}`, details: { i, accessToken: token } }));
      // A bad event is refused on its own; the others still commit.
      await assert.rejects(audit.append({ tenantId, actor, action: 'not an action' }), /resource\.verb/);
      await Promise.all(appended);
      const seen = new Set<string>();
      let before: string | undefined;
      do {
        const page = await audit.list(tenantId, { limit: 500, ...(before ? { before } : {}) });
        for (const e of page.items) {
          assert.equal(JSON.stringify(e).includes(token), false, 'no secret in the log');
          seen.add(e.target ?? '');
        }
        before = page.next;
      } while (before);
      assert.equal(seen.size, 1_200);
      // Later appends still go through (the writer restarts after going idle).
      await audit.append({ tenantId, actor, action: 'connection.proxied', target: 'late' });
      assert.equal((await audit.list(tenantId, { target: 'late' })).items.length, 1);
    } finally {
      await f.dispose();
    }
  });

  it('an append whose batch cannot be written rejects, and nothing of the batch is half-written', async () => {
    const f = await createIdentityFixture(dialect, { empty: true });
    try {
      const { audit } = f.identity;
      const actor: Actor = { type: 'system' };
      await f.handle.db.schema.dropTable('audit_events').execute();
      const failed = await Promise.allSettled([1, 2, 3].map((i) => audit.append({ tenantId: 'ten_x', actor, action: 'thing.done', target: `t${i}` })));
      assert.deepEqual(failed.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
    } finally {
      await f.dispose();
    }
  });

  it('never holds a secret: secret-named details are dropped, and passwords never reach it', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      const leaked = randomSecret();
      await identity.audit.record(f.handle.db, {
        tenantId,
        actor: admin,
        action: 'thing.done',
        details: { password: leaked, nested: { token: leaked, keep: 1 }, list: [{ secret: leaked }], ok: 'yes' },
      });
      const event = (await identity.audit.list(tenantId, { limit: 1 })).items[0];
      assert.deepEqual(event?.details, { nested: { keep: 1 }, list: [{}], ok: 'yes' });

      const first = randomSecret();
      const second = randomSecret();
      const user = await identity.users.create(admin, tenantId, { username: 'pia', password: first, roles: ['viewer'] });
      await identity.users.update(admin, tenantId, user.id, { password: second });
      const tenant = (await identity.tenants.get(tenantId)).name;
      await rejectsWith(identity.sessions.login({ tenant, username: 'pia', password: first, address: '192.0.2.1' }), 'unauthorized');
      await identity.sessions.login({ tenant, username: 'pia', password: second, address: '192.0.2.1' });
      const boot = await createIdentityFixture(dialect, { empty: true });
      try {
        const created = await boot.identity.bootstrap();
        assert.ok(created.created);
        const bootRows = JSON.stringify(await boot.handle.db.selectFrom('audit_events').selectAll().execute());
        assert.ok(!bootRows.includes(created.password));
      } finally {
        await boot.dispose();
      }

      const rows = JSON.stringify(await f.handle.db.selectFrom('audit_events').selectAll().execute());
      for (const secret of [leaked, first, second]) assert.ok(!rows.includes(secret));
      const updated = (await identity.audit.list(tenantId, { action: 'user.updated' })).items[0];
      assert.deepEqual(updated?.details, { username: 'pia', changed: ['password'] });
      assert.ok(!f.logs().includes(first) && !f.logs().includes(second));
    } finally {
      await f.dispose();
    }
  });

  it('records every identity change with its actor', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { identity, admin, tenantId } = f;
      const viaKey: Actor = { ...admin, apiKeyId: 'key_1' } as Actor;
      const user = await identity.users.create(viaKey, tenantId, { username: 'max' });
      const group = await identity.groups.create(admin, tenantId, { name: randomName('g') });
      await identity.groups.addMember(admin, tenantId, group.id, user.id);
      await identity.users.update(admin, tenantId, user.id, { disabled: true });
      await identity.users.delete(admin, tenantId, user.id);
      const events = (await identity.audit.list(tenantId, { limit: 5 })).items;
      assert.deepEqual(
        events.map((e) => [e.action, e.actor, e.target]),
        [
          ['user.deleted', `user:${f.adminId}`, user.id],
          ['user.disabled', `user:${f.adminId}`, user.id],
          ['group.member_added', `user:${f.adminId}`, group.id],
          ['group.created', `user:${f.adminId}`, group.id],
          ['user.created', 'api_key:key_1', user.id],
        ],
      );
    } finally {
      await f.dispose();
    }
  });
});
