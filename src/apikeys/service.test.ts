import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { eachDialect } from '../../test/support/databases.js';
import { generateApiKey, parseApiKey } from './format.js';
import { createApiKeysFixture, randomName, rejectsWith, SYSTEM, until, type ApiKeysFixture } from '../../test/support/apikeys.js';

async function rowCount(f: ApiKeysFixture, table: 'api_keys' | 'audit_events' | 'objects', action?: string): Promise<number> {
  let query = f.handle.db.selectFrom(table).select(({ fn }) => fn.countAll().as('n'));
  if (action !== undefined) query = query.where('action' as never, '=', action as never);
  return Number((await query.executeTakeFirstOrThrow()).n);
}

async function auditOf(f: ApiKeysFixture, action: string) {
  return f.handle.db.selectFrom('audit_events').selectAll().where('action', '=', action).execute();
}

await eachDialect('API key service', (dialect) => {
  it('shows a new key once; get and list hold neither the secret nor its hash', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { service } = f.apiKeys;
      const issued = await service.create(f.adminActor, f.tenantId, f.admin.id, {
        name: 'deploy',
        roles: ['viewer'],
        expiresInMs: 3_600_000,
        rateLimit: { limit: 10, windowMs: 1000 },
        credits: { remaining: 100, refill: { amount: 10, intervalMs: 60_000 } },
        meta: { team: 'ops' },
      });
      const parsed = parseApiKey(issued.key);
      assert.ok(parsed, 'the issued key parses');
      assert.equal(parsed.id, issued.apiKey.id);
      const now = f.clock.now();
      assert.deepEqual(issued.apiKey, {
        id: parsed.id,
        tenantId: f.tenantId,
        name: 'deploy',
        masked: `lk_${parsed.id}_…${issued.key.slice(-4)}`,
        ownerId: f.admin.id,
        roles: ['viewer'],
        createdAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + 3_600_000).toISOString(),
        lastUsedAt: null,
        revokedAt: null,
        rateLimit: { limit: 10, windowMs: 1000 },
        credits: { remaining: 100, refill: { amount: 10, intervalMs: 60_000 } },
        meta: { team: 'ops' },
        kind: 'user',
        taskId: null,
      });

      const row = await f.handle.db.selectFrom('api_keys').selectAll().where('id', '=', parsed.id).executeTakeFirstOrThrow();
      assert.match(row.hash, /^[0-9a-f]{64}$/);
      assert.ok(!JSON.stringify(row).includes(parsed.secret), 'the database holds no secret');

      const shown = [
        await service.get(f.tenantId, parsed.id),
        await service.list(f.tenantId),
        await service.list(f.tenantId, { ownerId: f.admin.id }),
        await f.identity.audit.list(f.tenantId),
      ];
      for (const view of shown) {
        const text = JSON.stringify(view);
        assert.ok(!text.includes(parsed.secret), 'no secret');
        assert.ok(!text.includes(issued.key), 'no key');
        assert.ok(!text.includes(row.hash), 'no hash');
      }
      assert.deepEqual(await service.get(f.tenantId, parsed.id), issued.apiKey);
      const [created] = await auditOf(f, 'api_key.created');
      assert.equal(created?.target, parsed.id);
      assert.equal(created?.actor, `user:${f.admin.id}`);
    } finally {
      await f.dispose();
    }
  });

  it('refuses each malformed request with validation_failed and writes nothing', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { service } = f.apiKeys;
      const bad: unknown[] = [
        {},
        { name: '' },
        { name: '   ' },
        { name: 42 },
        { name: 'x'.repeat(201) },
        { name: 'a\u0000b' },
        { name: 'k', roles: 'admin' },
        { name: 'k', roles: ['no spaces allowed'] },
        { name: 'k', roles: ['nosuchrole'] },
        { name: 'k', expiresInMs: -1 },
        { name: 'k', expiresInMs: 1.5 },
        { name: 'k', expiresIn: '30d' },
        { name: 'k', rateLimit: { limit: 0, windowMs: 1000 } },
        { name: 'k', rateLimit: { limit: 10 } },
        { name: 'k', credits: { remaining: -1 } },
        { name: 'k', credits: { remaining: 2 ** 31 } },
        { name: 'k', credits: { remaining: 5, refill: { amount: 0, intervalMs: 60_000 } } },
        { name: 'k', meta: 'text' },
        { name: 'k', meta: { big: 'x'.repeat(5000) } },
      ];
      for (const input of bad) {
        await rejectsWith(service.create(f.adminActor, f.tenantId, f.admin.id, input as never), 'validation_failed');
      }
      await rejectsWith(service.list(f.tenantId, { limit: 0 }), 'validation_failed');
      await rejectsWith(service.roll(f.adminActor, f.tenantId, 'kAAAAAAAAAAAAAAA', { gracePeriodMs: -5 }), 'validation_failed');
      await assert.rejects(service.get(42 as never, 'k'), TypeError);
      assert.equal(await rowCount(f, 'api_keys'), 0);
      assert.equal(await rowCount(f, 'audit_events', 'api_key.created'), 0);
    } finally {
      await f.dispose();
    }
  });

  it("refuses a key with permissions beyond its owner's, naming them, and writes nothing", async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { service } = f.apiKeys;
      const viewer = await f.identity.users.create(SYSTEM, f.tenantId, { username: 'viewer', roles: ['viewer'] });
      await f.identity.roles.create(SYSTEM, f.tenantId, { name: 'auditor', permissions: ['audit:read', 'apikeys:read'] });
      const before = { keys: await rowCount(f, 'api_keys'), objects: await rowCount(f, 'objects') };

      const err = await rejectsWith(service.create(f.adminActor, f.tenantId, viewer.id, { name: 'too much', roles: ['editor'] }), 'insufficient_permissions');
      assert.match(err.message, /apikeys:write/);
      assert.match(err.message, /connectors:token/);
      assert.doesNotMatch(err.message, /apikeys:read/);
      const custom = await rejectsWith(service.create(f.adminActor, f.tenantId, viewer.id, { name: 'custom', roles: ['viewer', 'auditor'] }), 'insufficient_permissions');
      assert.match(custom.message, /audit:read\.$/);

      assert.deepEqual({ keys: await rowCount(f, 'api_keys'), objects: await rowCount(f, 'objects') }, before);
      assert.equal(await rowCount(f, 'audit_events', 'api_key.created'), 0);

      // Within the owner's permissions is fine, including all of them.
      await service.create(f.adminActor, f.tenantId, viewer.id, { name: 'ok', roles: ['viewer'] });
      await service.create(f.adminActor, f.tenantId, viewer.id, { name: 'all' });
      assert.equal(await rowCount(f, 'api_keys'), 2);
    } finally {
      await f.dispose();
    }
  });

  it('refuses escalation through a limited key: a new key gets no more than the calling key', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { service, verifier } = f.apiKeys;
      const limited = await service.create(f.adminActor, f.tenantId, f.admin.id, { name: 'limited', roles: ['editor'] });
      const checked = await verifier.verify(limited.key);
      assert.equal(checked.code, 'valid');
      const viaKey = { type: 'user' as const, tenantId: f.tenantId, userId: f.admin.id, apiKeyId: limited.apiKey.id };
      const actorPermissions = new Set(checked.permissions);

      // Unrestricted would carry everything the admin has, which the editor key lacks.
      const all = await rejectsWith(service.create(viaKey, f.tenantId, f.admin.id, { name: 'all' }, { actorPermissions }), 'insufficient_permissions');
      assert.match(all.message, /calling API key/);
      assert.match(all.message, /identity:admin/);
      await rejectsWith(service.create(viaKey, f.tenantId, f.admin.id, { name: 'admin', roles: ['admin'] }, { actorPermissions }), 'insufficient_permissions');
      // Without actorPermissions the service works them out from the calling key itself.
      await rejectsWith(service.create(viaKey, f.tenantId, f.admin.id, { name: 'admin', roles: ['admin'] }), 'insufficient_permissions');
      assert.equal(await rowCount(f, 'api_keys'), 1);

      const narrower = await service.create(viaKey, f.tenantId, f.admin.id, { name: 'narrower', roles: ['viewer'] });
      assert.deepEqual(narrower.apiKey.roles, ['viewer']);
    } finally {
      await f.dispose();
    }
  });

  it("answers not_found for another tenant's key exactly as for an unknown id, on get, roll and revoke", async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { service, verifier } = f.apiKeys;
      const other = await f.identity.tenants.create({ name: randomName('other') });
      const stranger = await f.identity.users.create(SYSTEM, other.id, { username: 'stranger', roles: ['admin'] });
      const foreign = await service.create(SYSTEM, other.id, stranger.id, { name: 'theirs' });
      const id = foreign.apiKey.id;
      const unknownId = 'kAAAAAAAAAAAAAAA';
      for (const attempt of [
        (k: string) => service.get(f.tenantId, k),
        (k: string) => service.roll(f.adminActor, f.tenantId, k),
        (k: string) => service.revoke(f.adminActor, f.tenantId, k),
      ]) {
        const a = await rejectsWith(attempt(id), 'not_found');
        const b = await rejectsWith(attempt(unknownId), 'not_found');
        assert.equal(a.message.replace(id, 'ID'), b.message.replace(unknownId, 'ID'));
      }
      assert.deepEqual((await service.list(f.tenantId)).items, []);
      // Creating a key for another tenant's user is refused too.
      await rejectsWith(service.create(f.adminActor, f.tenantId, stranger.id, { name: 'x' }), 'not_found');
      // And the foreign key is untouched.
      assert.equal((await verifier.verify(foreign.key)).code, 'valid');
      assert.equal((await service.get(other.id, id)).revokedAt, null);
    } finally {
      await f.dispose();
    }
  });

  it('lists page by page, filters by owner, and keeps revoked keys as tombstones', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { service } = f.apiKeys;
      const bob = await f.identity.users.create(SYSTEM, f.tenantId, { username: 'bob', roles: ['viewer'] });
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await service.create(f.adminActor, f.tenantId, i < 3 ? f.admin.id : bob.id, { name: `k${i}` })).apiKey.id);
      const seen: string[] = [];
      let after: string | undefined;
      do {
        const page = await service.list(f.tenantId, { limit: 2, after });
        assert.ok(page.items.length <= 2);
        seen.push(...page.items.map((k) => k.id));
        after = page.next;
      } while (after !== undefined);
      assert.deepEqual(seen, [...ids].sort());
      assert.deepEqual((await service.list(f.tenantId, { ownerId: bob.id })).items.map((k) => k.id).sort(), ids.slice(3).sort());

      const revoked = await service.revoke(f.adminActor, f.tenantId, ids[0] as string);
      assert.equal(revoked.revokedAt, f.clock.now().toISOString());
      const listed = (await service.list(f.tenantId)).items.find((k) => k.id === ids[0]);
      assert.equal(listed?.revokedAt, revoked.revokedAt);
      assert.equal((await service.get(f.tenantId, ids[0] as string)).revokedAt, revoked.revokedAt);
    } finally {
      await f.dispose();
    }
  });

  it('revokes durably and idempotently: one audit event, one invalidation in the same transaction', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { service } = f.apiKeys;
      const { apiKey } = await service.create(f.adminActor, f.tenantId, f.admin.id, { name: 'k' });
      await service.revoke(f.adminActor, f.tenantId, apiKey.id);
      const again = await service.revoke(f.adminActor, f.tenantId, apiKey.id);
      assert.notEqual(again.revokedAt, null);
      const events = await auditOf(f, 'api_key.revoked');
      assert.deepEqual(events.map((e) => [e.target, e.actor]), [[apiKey.id, `user:${f.admin.id}`]]);
      const invalidations = await f.handle.db.selectFrom('invalidations').selectAll().where('subject_id', '=', apiKey.id).execute();
      assert.deepEqual(invalidations.map((i) => [i.scope, i.tenant_id]), [['api_key', f.tenantId]]);
      // A revoked key cannot be rolled back to life.
      await rejectsWith(service.roll(f.adminActor, f.tenantId, apiKey.id), 'conflict');
    } finally {
      await f.dispose();
    }
  });

  it('revokes a batch in one transaction: one audit event and one invalidation per live key, and another process drops them', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { service } = f.apiKeys;
      // On PostgreSQL a bound far beyond the ceiling of `until`: only the bus's notification can reach the peer in time; SQLite polls.
      const peer = await f.peer({ boundMs: dialect === 'postgres' ? 600_000 : 100 });
      const issued = [
        await service.create(f.adminActor, f.tenantId, f.admin.id, { name: 'a' }),
        await service.create(f.adminActor, f.tenantId, f.admin.id, { name: 'b' }),
      ];
      for (const { key } of issued) assert.equal((await peer.apiKeys.verifier.verify(key)).code, 'valid');
      // With the issued two, more than two inserts of 500 rows each.
      const template = await f.handle.db.selectFrom('api_keys').selectAll().where('id', '=', issued[0]?.apiKey.id ?? '').executeTakeFirstOrThrow();
      const bulk = Array.from({ length: 1_198 }, (_, i) => ({ ...template, id: generateApiKey().id, name: `bulk ${i}`, hash: randomBytes(32).toString('hex') }));
      for (let start = 0; start < bulk.length; start += 500) await f.handle.db.insertInto('api_keys').values(bulk.slice(start, start + 500)).execute();
      const live = [...issued.map((k) => k.apiKey.id), ...bulk.map((r) => r.id)];
      const gone = (await service.create(f.adminActor, f.tenantId, f.admin.id, { name: 'gone' })).apiKey.id;
      await service.revoke(f.adminActor, f.tenantId, gone);
      const other = await f.identity.tenants.create({ name: randomName('other') });
      const otherUser = await f.identity.users.create(SYSTEM, other.id, { username: 'o', roles: ['admin'] });
      const foreign = (await service.create(SYSTEM, other.id, otherUser.id, { name: 'foreign' })).apiKey.id;

      const heard = new Set<string>();
      peer.bus.subscribe((inv) => heard.add(inv.subjectId ?? ''));
      const local = new Set<string>();
      f.bus.subscribe((inv) => local.add(inv.subjectId ?? ''));
      const auditBefore = await rowCount(f, 'audit_events', 'api_key.revoked');
      const lastSeq = Number((await f.handle.db.selectFrom('invalidations').select(({ fn }) => fn.max('seq').as('seq')).executeTakeFirstOrThrow()).seq);

      const asked = [...live, gone, foreign, generateApiKey().id];
      assert.equal(await service.revokeMany(SYSTEM, f.tenantId, asked, { reason: 'task_credential_invalidated' }), live.length);
      const stillLive = await f.handle.db.selectFrom('api_keys').select('id').where('revoked_at', 'is', null).execute();
      assert.deepEqual(stillLive.map((r) => r.id), [foreign]);
      const events = await f.handle.db.selectFrom('audit_events').selectAll().where('action', '=', 'api_key.revoked').where('actor', '=', 'system').execute();
      assert.deepEqual(events.map((e) => e.target).sort(), [...live].sort());
      for (const e of events) assert.deepEqual([e.tenant_id, JSON.parse(e.details ?? 'null')], [f.tenantId, { reason: 'task_credential_invalidated' }]);
      const published = await f.handle.db.selectFrom('invalidations').selectAll().where('seq', '>', lastSeq).execute();
      assert.deepEqual(published.map((i) => i.subject_id).sort(), [...live].sort());
      assert.ok(published.every((i) => i.scope === 'api_key' && i.tenant_id === f.tenantId));
      assert.deepEqual([...local].sort(), [...asked].sort(), 'this process drops every key asked for at once');
      await until(() => live.every((id) => heard.has(id)));
      for (const { key } of issued) assert.equal((await peer.apiKeys.verifier.verify(key)).code, 'revoked');

      // Nothing left to revoke, or nothing asked: nothing written.
      assert.equal(await service.revokeMany(SYSTEM, f.tenantId, live), 0);
      assert.equal(await service.revokeMany(SYSTEM, f.tenantId, []), 0);
      assert.equal(await rowCount(f, 'audit_events', 'api_key.revoked'), auditBefore + live.length);
      assert.equal((await f.handle.db.selectFrom('invalidations').select('seq').where('seq', '>', lastSeq).execute()).length, live.length);
    } finally {
      await f.dispose();
    }
  });

  it('rolls to a new secret for the same id and audits it without the secret', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { service } = f.apiKeys;
      const first = await service.create(f.adminActor, f.tenantId, f.admin.id, { name: 'k', roles: ['viewer'] });
      const rolled = await service.roll(f.adminActor, f.tenantId, first.apiKey.id, { gracePeriodMs: 60_000 });
      assert.equal(rolled.apiKey.id, first.apiKey.id);
      assert.notEqual(rolled.key, first.key);
      assert.equal(parseApiKey(rolled.key)?.id, first.apiKey.id);
      assert.equal(rolled.apiKey.masked, `lk_${first.apiKey.id}_…${rolled.key.slice(-4)}`);
      assert.deepEqual(rolled.apiKey.roles, ['viewer']);
      const [event] = await auditOf(f, 'api_key.rolled');
      assert.equal(event?.target, first.apiKey.id);
      const text = JSON.stringify(event);
      for (const secret of [first.key, rolled.key, parseApiKey(rolled.key)?.secret ?? '']) assert.ok(!text.includes(secret));
      const row = await f.handle.db.selectFrom('api_keys').selectAll().where('id', '=', first.apiKey.id).executeTakeFirstOrThrow();
      assert.equal(row.previous_expires_at, new Date(f.clock.now().getTime() + 60_000).toISOString());
      assert.notEqual(row.previous_hash, row.hash);
    } finally {
      await f.dispose();
    }
  });
});
