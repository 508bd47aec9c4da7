import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { KyselyPlugin } from 'kysely';
import { createTestDatabase, eachDialect } from '../../test/support/databases.js';
import { InvalidationBus, type DatabaseHandle, type DialectName, type Invalidation } from './index.js';

async function until(check: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A fresh database with a writer handle (`a`) and a started bus watching from a second handle, and
 * a gate a writer's transaction can wait on (`held` until `release`).
 */
async function withWatcher(
  dialect: DialectName,
  test: (t: { a: DatabaseHandle; bus: InvalidationBus; held: Promise<void>; release: () => void }) => Promise<void>,
): Promise<void> {
  const tdb = await createTestDatabase(dialect);
  try {
    const a = await tdb.openMigrated();
    const bus = new InvalidationBus({ handle: tdb.open(), boundMs: 60_000 });
    await bus.start();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await test({ a, bus, held, release });
    await bus.stop();
  } finally {
    await tdb.dispose();
  }
}

await eachDialect('invalidation bus', (dialect) => {
  it('delivers a committed change to another process, and never a rolled-back one', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const a = await tdb.openMigrated();
      const b = tdb.open();
      // A long bound: on PostgreSQL delivery must come from NOTIFY; SQLite relies on polling.
      const busA = new InvalidationBus({ handle: a, boundMs: dialect === 'postgres' ? 60_000 : 100 });
      const busB = new InvalidationBus({ handle: b, boundMs: dialect === 'postgres' ? 60_000 : 100 });
      await busA.start();
      await busB.start();
      const seen: Invalidation[] = [];
      busB.subscribe((inv) => seen.push(inv));
      const before = busB.generation;

      await a.db.transaction().execute(async (trx) => {
        await busA.publish(trx, { scope: 'api_key', tenantId: 't1', subjectId: 'key_1' });
      });
      await until(() => seen.length === 1);
      assert.deepEqual({ ...seen[0], seq: 0 }, { seq: 0, scope: 'api_key', tenantId: 't1', subjectId: 'key_1' });
      assert.ok(busB.generation > before);

      await assert.rejects(
        a.db.transaction().execute(async (trx) => {
          await busA.publish(trx, { scope: 'user', tenantId: 't1', subjectId: 'usr_1' });
          throw new Error('rollback');
        }),
        /rollback/,
      );
      await busA.publish(a.db, { scope: 'tenant', tenantId: 't2' });
      await until(() => seen.length >= 2);
      await new Promise((r) => setTimeout(r, 250));
      assert.deepEqual(seen.map((s) => s.scope), ['api_key', 'tenant']);
      await busA.stop();
      await busB.stop();
    } finally {
      await tdb.dispose();
    }
  });

  it('publishes a batch in inserts of 500 rows and one notification, and another process applies every change', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const a = await tdb.openMigrated();
      const b = tdb.open();
      const busA = new InvalidationBus({ handle: a, boundMs: 60_000 });
      // On PostgreSQL a bound far beyond the ceiling of `until`: only the notification can deliver; SQLite polls.
      const busB = new InvalidationBus({ handle: b, boundMs: dialect === 'postgres' ? 600_000 : 100 });
      await busA.start();
      await busB.start();
      const seen = new Set<string>();
      busB.subscribe((inv) => seen.add(inv.subjectId ?? ''));
      const statements: string[] = [];
      const counting: KyselyPlugin = {
        transformQuery: ({ node }) => {
          statements.push(node.kind);
          return node;
        },
        transformResult: async ({ result }) => result,
      };
      // More than one insert, and more than one page of busB's poll (1,200 rows).
      const ids = Array.from({ length: 1_250 }, (_, i) => `key_${i}`);

      await a.db.transaction().execute(async (trx) => {
        await busA.publishMany(trx.withPlugin(counting), []);
        assert.deepEqual(statements, [], 'no change, no statement');
        await busA.publishMany(trx.withPlugin(counting), ids.map((id) => ({ scope: 'api_key' as const, tenantId: 't_many', subjectId: id })));
      });
      const notify = dialect === 'postgres' ? ['RawNode'] : [];
      assert.deepEqual(statements, ['InsertQueryNode', 'InsertQueryNode', 'InsertQueryNode', ...notify]);
      await until(() => seen.size === ids.length);
      assert.deepEqual([...seen].sort(), [...ids].sort());
      const rows = await a.db.selectFrom('invalidations').select(['scope', 'tenant_id']).distinct().execute();
      assert.deepEqual(rows, [{ scope: 'api_key', tenant_id: 't_many' }]);

      // One change is a batch of one.
      statements.length = 0;
      await busA.publish(a.db.withPlugin(counting), { scope: 'tenant', tenantId: 't_one' });
      assert.deepEqual(statements, ['InsertQueryNode', ...notify]);
      await until(() => seen.has(''));
      await busA.stop();
      await busB.stop();
    } finally {
      await tdb.dispose();
    }
  });

  it('catches up by polling when no notification arrives', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const a = await tdb.openMigrated();
      const b = tdb.open();
      const busB = new InvalidationBus({ handle: { ...b, listen: undefined }, boundMs: 200 });
      await busB.start();
      const seen: Invalidation[] = [];
      busB.subscribe((inv) => seen.push(inv));
      // Written without a bus at all: no NOTIFY is sent.
      await a.db.insertInto('invalidations').values({ scope: 'api_key', tenant_id: 't', subject_id: 'k', at: new Date().toISOString() }).execute();
      // Only polling can deliver this one. The ceiling only catches a bus that never polls; how
      // soon it polls is measured by bench:apikeys (revocation across servers), not asserted here.
      await until(() => seen.length === 1, 30_000);
      assert.deepEqual(seen.map((s) => s.subjectId), ['k']);
      await busB.stop();
    } finally {
      await tdb.dispose();
    }
  });

  if (dialect === 'postgres') {
    it('applies a change whose sequence number commits after a higher one', async () => {
      await withWatcher(dialect, async ({ a, bus, held, release }) => {
        const seen: string[] = [];
        bus.subscribe((inv) => seen.push(inv.subjectId ?? ''));
        const slow = a.db.transaction().execute(async (trx) => {
          await trx.insertInto('invalidations').values({ scope: 'api_key', tenant_id: 't', subject_id: 'slow', at: new Date().toISOString() }).execute();
          await held;
        });
        await new Promise((r) => setTimeout(r, 50));
        await a.db.insertInto('invalidations').values({ scope: 'api_key', tenant_id: 't', subject_id: 'fast', at: new Date().toISOString() }).execute();
        await bus.poll();
        assert.deepEqual(seen, ['fast']);
        release();
        await slow;
        await bus.poll();
        assert.deepEqual(seen, ['fast', 'slow']);
      });
    });

    it('applies every change of a large batch that commits after hundreds of later ones', async () => {
      await withWatcher(dialect, async ({ a, bus, held, release }) => {
        const seen = new Set<string>();
        bus.subscribe((inv) => seen.add(inv.subjectId ?? ''));
        let written!: () => void;
        const taken = new Promise<void>((r) => (written = r));
        const slow = a.db.transaction().execute(async (trx) => {
          await new InvalidationBus({ handle: a }).publishMany(trx, Array.from({ length: 600 }, (_, i) => ({ scope: 'api_key' as const, tenantId: 't', subjectId: `slow_${i}` })));
          written();
          await held;
        });
        await taken;
        // 300 more, numbered after the batch's 600 and committed before it.
        await new InvalidationBus({ handle: a }).publishMany(a.db, Array.from({ length: 300 }, (_, i) => ({ scope: 'api_key' as const, tenantId: 't', subjectId: `fast_${i}` })));
        try {
          await bus.poll();
          assert.equal(seen.size, 300);
        } finally {
          release();
          await slow;
        }
        await bus.poll();
        assert.equal(seen.size, 900, 'the batch committed late is applied whole, not only its last rows');
        for (let i = 0; i < 600; i++) assert.ok(seen.has(`slow_${i}`), `slow_${i}`);
      });
    });
  }

  it('wakes the listeners of a topic in every process at commit, never after a rollback, without applying an invalidation', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const a = await tdb.openMigrated();
      const b = tdb.open();
      const busA = new InvalidationBus({ handle: a, boundMs: 60_000 });
      const busB = new InvalidationBus({ handle: b, boundMs: 60_000 });
      await busA.start();
      await busB.start();
      let wakes = 0;
      const stopListening = busB.onWake('webhook_deliveries', () => wakes++);
      const before = busB.generation;

      await assert.rejects(
        a.db.transaction().execute(async (trx) => {
          await busA.wake(trx, 'webhook_deliveries');
          throw new Error('rollback');
        }),
        /rollback/,
      );
      await a.db.transaction().execute(async (trx) => {
        await busA.wake(trx, 'webhook_deliveries');
        // Nothing is sent before the commit.
        assert.equal(wakes, 0);
      });
      if (dialect === 'postgres') {
        await until(() => wakes === 1);
        // Marks the end of what the rolled-back wake-up could have sent: an invalidation after it.
        const seen: Invalidation[] = [];
        busB.subscribe((inv) => seen.push(inv));
        await busA.publish(a.db, { scope: 'tenant', tenantId: 't_wake' });
        await until(() => seen.length === 1);
        assert.equal(wakes, 1, 'the rolled-back wake-up was never sent');
        assert.equal(busB.generation, before + 1, 'a wake-up is no invalidation');
      } else {
        // No notifications: the topic's own polling finds the work.
        assert.equal(wakes, 0);
        assert.equal(busB.generation, before);
      }
      stopListening();
      await busA.stop();
      await busB.stop();
    } finally {
      await tdb.dispose();
    }
  });
});
