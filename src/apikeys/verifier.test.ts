import { it } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_ROLES, type Permission } from '../identity/index.js';
import { eachDialect } from '../../test/support/databases.js';
import { generateApiKey, parseApiKey } from './format.js';
import { createApiKeysFixture, SYSTEM, until, type ApiKeysFixture } from '../../test/support/apikeys.js';

const NOT_FOUND = { valid: false, code: 'not_found' };

/** A well-formed key (right id, right checksum) with another secret. */
function wrongSecret(key: string): string {
  const parsed = parseApiKey(key);
  assert.ok(parsed);
  return generateApiKey(parsed.id).key;
}

const sorted = (permissions: readonly Permission[]) => [...permissions].sort();

/** A read hook that, once armed, holds the next read until released. */
function readGate() {
  let armed = false;
  let release: () => void = () => {};
  let reached: () => void = () => {};
  let reachedPromise = Promise.resolve();
  return {
    reads: 0,
    arm() {
      armed = true;
      reachedPromise = new Promise<void>((r) => (reached = r));
    },
    reached: () => reachedPromise,
    release: () => release(),
    async afterRead() {
      this.reads++;
      if (!armed) return;
      armed = false;
      const held = new Promise<void>((r) => (release = r));
      reached();
      await held;
    },
  };
}

async function newKey(f: ApiKeysFixture, input: Parameters<ApiKeysFixture['apiKeys']['service']['create']>[3], ownerId = f.admin.id) {
  return f.apiKeys.service.create(f.adminActor, f.tenantId, ownerId, input);
}

await eachDialect('API key verifier', (dialect) => {
  it("answers valid with the key's current permissions, and checks required ones", async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { verifier } = f.apiKeys;
      const issued = await newKey(f, { name: 'k', roles: ['editor'], expiresInMs: 3_600_000 });
      const expected = {
        valid: true,
        code: 'valid',
        keyId: issued.apiKey.id,
        tenantId: f.tenantId,
        ownerId: f.admin.id,
        permissions: sorted(BUILTIN_ROLES.editor),
        expiresAt: issued.apiKey.expiresAt,
      };
      assert.deepEqual(await verifier.verify(issued.key), expected);
      assert.deepEqual(await verifier.verify(issued.key), expected, 'the same from the cache');
      assert.equal(verifier.cacheState(issued.apiKey.id), 'key');
      assert.equal((await verifier.verify(issued.key, { permissions: ['connectors:use', 'tasks:write'] })).code, 'valid');
      assert.deepEqual(await verifier.verify(issued.key, { permissions: ['connectors:use', 'identity:admin'] }), {
        ...expected,
        valid: false,
        code: 'insufficient_permissions',
      });
      const all = await newKey(f, { name: 'all' });
      assert.deepEqual((await verifier.verify(all.key)).permissions, sorted(BUILTIN_ROLES.admin));
    } finally {
      await f.dispose();
    }
  });

  it('gives one answer, not_found, for a bad shape, a bad checksum, an unknown id and a wrong secret', async () => {
    const gate = readGate();
    const f = await createApiKeysFixture(dialect, { verifier: { afterRead: () => gate.afterRead() } });
    try {
      const { verifier } = f.apiKeys;
      const issued = await newKey(f, { name: 'k' });
      const flipped = issued.key.slice(0, -1) + (issued.key.endsWith('0') ? '1' : '0');
      for (const text of ['', 'lk_', 'Bearer x', flipped, `${issued.key} `, issued.key.toUpperCase()]) {
        assert.deepEqual(await verifier.verify(text), NOT_FOUND);
      }
      assert.equal(gate.reads, 0, 'refused before any lookup');

      const unknown = generateApiKey();
      assert.deepEqual(await verifier.verify(unknown.key), NOT_FOUND);
      assert.deepEqual(await verifier.verify(unknown.key), NOT_FOUND);
      assert.equal(gate.reads, 1, 'a miss is remembered briefly');
      assert.equal(verifier.cacheState(unknown.id), 'missing');

      assert.deepEqual(await verifier.verify(wrongSecret(issued.key)), NOT_FOUND);
      assert.equal((await verifier.verify(issued.key)).code, 'valid');
    } finally {
      await f.dispose();
    }
  });

  it('answers expired once the clock passes the expiry', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const issued = await newKey(f, { name: 'k', expiresInMs: 60_000 });
      assert.equal((await f.apiKeys.verifier.verify(issued.key)).code, 'valid');
      f.clock.advance(59_999);
      assert.equal((await f.apiKeys.verifier.verify(issued.key)).code, 'valid');
      f.clock.advance(1);
      assert.deepEqual(await f.apiKeys.verifier.verify(issued.key), {
        valid: false,
        code: 'expired',
        keyId: issued.apiKey.id,
        tenantId: f.tenantId,
        ownerId: f.admin.id,
        expiresAt: issued.apiKey.expiresAt,
      });
    } finally {
      await f.dispose();
    }
  });

  it('answers revoked at once after revoke resolves, and the key stays a tombstone', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { service, verifier } = f.apiKeys;
      const issued = await newKey(f, { name: 'k' });
      assert.equal((await verifier.verify(issued.key)).code, 'valid');
      await service.revoke(f.adminActor, f.tenantId, issued.apiKey.id);
      assert.equal((await verifier.verify(issued.key)).code, 'revoked');
      assert.equal((await verifier.verify(wrongSecret(issued.key))).code, 'not_found', 'no hint without the secret');
      const listed = (await service.list(f.tenantId)).items.find((k) => k.id === issued.apiKey.id);
      assert.ok(listed?.revokedAt);
    } finally {
      await f.dispose();
    }
  });

  it('answers disabled_owner while the owner is disabled, and refuses keys of a deleted owner', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { verifier } = f.apiKeys;
      const dana = await f.identity.users.create(SYSTEM, f.tenantId, { username: 'dana', roles: ['editor'] });
      const issued = await newKey(f, { name: 'k' }, dana.id);
      assert.equal((await verifier.verify(issued.key)).code, 'valid');
      await f.identity.users.update(SYSTEM, f.tenantId, dana.id, { disabled: true });
      assert.equal((await verifier.verify(issued.key)).code, 'disabled_owner');
      await f.identity.users.update(SYSTEM, f.tenantId, dana.id, { disabled: false });
      assert.equal((await verifier.verify(issued.key)).code, 'valid');
      await f.identity.users.delete(SYSTEM, f.tenantId, dana.id);
      assert.notEqual((await verifier.verify(issued.key)).valid, true);
    } finally {
      await f.dispose();
    }
  });

  it('reflects a role the owner loses on the very next verification', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { verifier } = f.apiKeys;
      const erin = await f.identity.users.create(SYSTEM, f.tenantId, { username: 'erin', roles: ['viewer', 'editor'] });
      const unrestricted = await newKey(f, { name: 'all' }, erin.id);
      const editorKey = await newKey(f, { name: 'editor', roles: ['editor'] }, erin.id);
      assert.equal((await verifier.verify(unrestricted.key, { permissions: ['connectors:write'] })).code, 'valid');
      assert.equal((await verifier.verify(editorKey.key, { permissions: ['connectors:write'] })).code, 'valid');

      await f.identity.roles.revoke(SYSTEM, f.tenantId, 'editor', { type: 'user', id: erin.id });
      const after = await verifier.verify(unrestricted.key, { permissions: ['connectors:write'] });
      assert.equal(after.code, 'insufficient_permissions');
      assert.deepEqual(after.permissions, sorted(BUILTIN_ROLES.viewer));
      // A key limited to a role the owner lost keeps only what both still allow.
      assert.deepEqual((await verifier.verify(editorKey.key)).permissions, sorted(BUILTIN_ROLES.viewer));

      await f.identity.roles.grant(SYSTEM, f.tenantId, 'admin', { type: 'user', id: erin.id });
      assert.equal((await verifier.verify(unrestricted.key, { permissions: ['identity:admin'] })).code, 'valid');
      assert.equal((await verifier.verify(editorKey.key, { permissions: ['identity:admin'] })).code, 'insufficient_permissions');
    } finally {
      await f.dispose();
    }
  });

  it('reflects a user removed from a group mid-session on the next verification', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { verifier } = f.apiKeys;
      const frank = await f.identity.users.create(SYSTEM, f.tenantId, { username: 'frank', roles: ['viewer'] });
      const ops = await f.identity.groups.create(SYSTEM, f.tenantId, { name: 'ops' });
      await f.identity.roles.grant(SYSTEM, f.tenantId, 'editor', { type: 'group', id: ops.id });
      await f.identity.groups.addMember(SYSTEM, f.tenantId, ops.id, frank.id);
      const issued = await newKey(f, { name: 'k' }, frank.id);
      for (let i = 0; i < 3; i++) assert.equal((await verifier.verify(issued.key, { permissions: ['tasks:write'] })).code, 'valid');

      await f.identity.groups.removeMember(SYSTEM, f.tenantId, ops.id, frank.id);
      const after = await verifier.verify(issued.key, { permissions: ['tasks:write'] });
      assert.equal(after.code, 'insufficient_permissions');
      assert.deepEqual(after.permissions, sorted(BUILTIN_ROLES.viewer));
    } finally {
      await f.dispose();
    }
  });

  it('refuses the old secret at once after a roll without grace', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { service, verifier } = f.apiKeys;
      const first = await newKey(f, { name: 'k' });
      assert.equal((await verifier.verify(first.key)).code, 'valid');
      const rolled = await service.roll(f.adminActor, f.tenantId, first.apiKey.id);
      assert.deepEqual(await verifier.verify(first.key), NOT_FOUND);
      assert.equal((await verifier.verify(rolled.key)).code, 'valid');
      const row = await f.handle.db.selectFrom('api_keys').select(['previous_hash', 'previous_expires_at']).where('id', '=', first.apiKey.id).executeTakeFirstOrThrow();
      assert.deepEqual(row, { previous_hash: null, previous_expires_at: null });
    } finally {
      await f.dispose();
    }
  });

  it('accepts the old secret until the grace period ends, then refuses it', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { service, verifier } = f.apiKeys;
      const first = await newKey(f, { name: 'k' });
      assert.equal((await verifier.verify(first.key)).code, 'valid');
      const rolled = await service.roll(f.adminActor, f.tenantId, first.apiKey.id, { gracePeriodMs: 30_000 });
      assert.equal((await verifier.verify(first.key)).code, 'valid');
      assert.equal((await verifier.verify(rolled.key)).code, 'valid');
      f.clock.advance(29_999);
      assert.equal((await verifier.verify(first.key)).code, 'valid');
      f.clock.advance(1);
      assert.deepEqual(await verifier.verify(first.key), NOT_FOUND);
      assert.equal((await verifier.verify(rolled.key)).code, 'valid');

      // A second roll replaces the previous secret: only the one it replaced is in grace.
      const third = await service.roll(f.adminActor, f.tenantId, first.apiKey.id, { gracePeriodMs: 30_000 });
      assert.equal((await verifier.verify(rolled.key)).code, 'valid');
      assert.equal((await verifier.verify(third.key)).code, 'valid');
      assert.deepEqual(await verifier.verify(first.key), NOT_FOUND);
    } finally {
      await f.dispose();
    }
  });

  it('never answers valid for a verification started after revoke resolved, under concurrency', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { service, verifier } = f.apiKeys;
      const issued = await newKey(f, { name: 'k' });
      assert.equal((await verifier.verify(issued.key)).code, 'valid');
      let revoked = false;
      let stop = false;
      const late: string[] = [];
      const worker = async () => {
        while (!stop) {
          const startedAfter = revoked;
          const result = await verifier.verify(issued.key);
          if (startedAfter) late.push(result.code);
          await new Promise((r) => setImmediate(r));
        }
      };
      const workers = Array.from({ length: 8 }, worker);
      await new Promise((r) => setTimeout(r, 20));
      await service.revoke(f.adminActor, f.tenantId, issued.apiKey.id);
      revoked = true;
      await new Promise((r) => setTimeout(r, 50));
      stop = true;
      await Promise.all(workers);
      assert.ok(late.length > 0);
      assert.deepEqual([...new Set(late)], ['revoked']);
    } finally {
      await f.dispose();
    }
  });

  it('does not cache a row read across a revocation, nor hand that read to later callers', async () => {
    const gate = readGate();
    const f = await createApiKeysFixture(dialect, { verifier: { afterRead: () => gate.afterRead() } });
    try {
      const { service, verifier } = f.apiKeys;
      const issued = await newKey(f, { name: 'k' });
      gate.arm();
      const early = verifier.verify(issued.key); // reads the live row, then is held
      await gate.reached();
      await service.revoke(f.adminActor, f.tenantId, issued.apiKey.id);
      // Started after the revocation: must not join the held read.
      assert.equal((await verifier.verify(issued.key)).code, 'revoked');
      gate.release();
      await early; // it read before the revocation; whatever it answers, it must not be cached
      assert.equal((await verifier.verify(issued.key)).code, 'revoked');
    } finally {
      await f.dispose();
    }
  });

  it('a second process refuses a revoked key within the bus bound', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const issued = await newKey(f, { name: 'k' });
      const other = await f.peer({ boundMs: 1000 });
      assert.equal((await other.apiKeys.verifier.verify(issued.key)).code, 'valid');
      assert.equal(other.apiKeys.verifier.cacheState(issued.apiKey.id), 'key');
      await f.apiKeys.service.revoke(f.adminActor, f.tenantId, issued.apiKey.id);
      // The ceiling only catches a revocation that never arrives; how soon it does is bench:apikeys' figure.
      await until(async () => (await other.apiKeys.verifier.verify(issued.key)).code === 'revoked', 30_000);
      assert.equal((await other.apiKeys.verifier.verify(issued.key)).code, 'revoked');
    } finally {
      await f.dispose();
    }
  });

  it('a second process that hears no invalidation at all still refuses within the bound', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const issued = await newKey(f, { name: 'k' });
      const deaf = await f.peer({ boundMs: 300, startBus: false });
      assert.equal((await deaf.apiKeys.verifier.verify(issued.key)).code, 'valid');
      await f.apiKeys.service.revoke(f.adminActor, f.tenantId, issued.apiKey.id);
      // Only the cache bound can end this trust (the bus is not running); the ceiling only catches a key trusted forever.
      await until(async () => (await deaf.apiKeys.verifier.verify(issued.key)).code === 'revoked', 30_000);
      assert.equal((await deaf.apiKeys.verifier.verify(issued.key)).code, 'revoked');
    } finally {
      await f.dispose();
    }
  });

  it("a refill in a second process racing the revocation never resurrects the key", async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const gate = readGate();
      const issued = await newKey(f, { name: 'k' });
      // A long bound: only the invalidation (NOTIFY or an explicit poll) can drop the entry.
      const other = await f.peer({ boundMs: 60_000, verifier: { afterRead: () => gate.afterRead() } });
      const before = other.bus.generation;
      gate.arm();
      const early = other.apiKeys.verifier.verify(issued.key); // reads the live row, then is held
      await gate.reached();
      await f.apiKeys.service.revoke(f.adminActor, f.tenantId, issued.apiKey.id);
      await until(async () => {
        await other.bus.poll();
        return other.bus.generation > before;
      });
      gate.release();
      await early;
      assert.equal(other.apiKeys.verifier.cacheState(issued.apiKey.id), undefined, 'a read across an invalidation is not cached');
      assert.equal((await other.apiKeys.verifier.verify(issued.key)).code, 'revoked');
    } finally {
      await f.dispose();
    }
  });

  it('drops a remembered miss when the bus names the key id', async () => {
    const gate = readGate();
    const f = await createApiKeysFixture(dialect, { verifier: { afterRead: () => gate.afterRead() } });
    try {
      const { id, key } = generateApiKey();
      assert.deepEqual(await f.apiKeys.verifier.verify(key), NOT_FOUND);
      assert.equal(f.apiKeys.verifier.cacheState(id), 'missing');
      f.bus.applyLocal({ scope: 'api_key', tenantId: f.tenantId, subjectId: id });
      assert.equal(f.apiKeys.verifier.cacheState(id), undefined);
    } finally {
      await f.dispose();
    }
  });

  it('audits a burst of failed verifications of one key once per window, never for unknown ids', async () => {
    const f = await createApiKeysFixture(dialect);
    try {
      const { verifier } = f.apiKeys;
      const issued = await newKey(f, { name: 'k' });
      const bad = wrongSecret(issued.key);
      const events = async () => {
        await verifier.flush();
        return f.handle.db.selectFrom('audit_events').selectAll().where('action', '=', 'api_key.verification_failures').execute();
      };
      for (let i = 0; i < 9; i++) await verifier.verify(bad);
      for (let i = 0; i < 20; i++) await verifier.verify(generateApiKey().key);
      assert.equal((await events()).length, 0);
      await verifier.verify(bad);
      for (let i = 0; i < 15; i++) await verifier.verify(bad);
      const first = await events();
      assert.equal(first.length, 1);
      assert.equal(first[0]?.target, issued.apiKey.id);
      assert.equal(first[0]?.tenant_id, f.tenantId);
      assert.equal(first[0]?.actor, 'system');
      assert.deepEqual(JSON.parse(first[0]?.details ?? '{}').failures, 10);
      assert.ok(!JSON.stringify(first).includes(bad.slice(20)), 'no secret in the audit log');

      f.clock.advance(60_000);
      for (let i = 0; i < 10; i++) await verifier.verify(bad);
      assert.equal((await events()).length, 2);
    } finally {
      await f.dispose();
    }
  });

  it('decides rate limits and credits through the usage gate, counting only when asked', async () => {
    const f = await createApiKeysFixture(dialect, { usage: true });
    try {
      const { verifier } = f.apiKeys;
      const limited = await newKey(f, { name: 'limited', rateLimit: { limit: 3, windowMs: 3_600_000 } });
      for (let i = 0; i < 3; i++) {
        const ok = await verifier.verify(limited.key);
        assert.equal(ok.code, 'valid');
        assert.equal(ok.rateLimit?.limit, 3);
      }
      const refused = await verifier.verify(limited.key);
      assert.equal(refused.code, 'rate_limited');
      assert.equal(refused.valid, false);
      assert.ok((refused.retryAfterMs ?? 0) > 0);
      assert.equal((await verifier.verify(limited.key, { consume: false })).code, 'valid', 'not counted');

      const metered = await newKey(f, { name: 'metered', credits: { remaining: 2 } });
      // Scoped to another tenant, the key is unknown: same answer as none, and nothing is charged.
      assert.deepEqual(await verifier.verify(metered.key, { tenantId: 'other-tenant' }), NOT_FOUND);
      assert.deepEqual(await verifier.verify(metered.key, { tenantId: `${f.tenantId}x` }), NOT_FOUND);
      assert.equal((await verifier.verify(metered.key, { tenantId: f.tenantId, consume: false })).code, 'valid');
      assert.deepEqual([(await verifier.verify(metered.key)).remaining, (await verifier.verify(metered.key)).remaining], [1, 0]);
      assert.equal((await verifier.verify(metered.key)).code, 'usage_exceeded');

      await f.usage?.flush();
      const row = await f.handle.db.selectFrom('api_keys').select('last_used_at').where('id', '=', limited.apiKey.id).executeTakeFirstOrThrow();
      assert.equal(row.last_used_at, f.clock.now().toISOString());
    } finally {
      await f.dispose();
    }
  });

  it('answers from its caches without waiting exactly as verify does, and leaves to verify whatever needs a read or a count', async () => {
    const f = await createApiKeysFixture(dialect, { usage: true });
    try {
      const { service, verifier } = f.apiKeys;
      const issued = await newKey(f, { name: 'k', roles: ['viewer'] });
      assert.equal(verifier.verifyCached(issued.key), undefined, 'nothing cached yet');
      assert.equal(verifier.cacheState(issued.apiKey.id), undefined, 'and nothing read for it');
      assert.deepEqual(verifier.verifyCached('lk_not-a-key'), NOT_FOUND, 'a bad shape needs no read');

      const answer = await verifier.verify(issued.key);
      assert.equal(answer.code, 'valid');
      assert.deepEqual(verifier.verifyCached(issued.key), answer);
      assert.equal(verifier.verifyCached(issued.key, { permissions: ['identity:admin'] })?.code, 'insufficient_permissions');
      assert.deepEqual(verifier.verifyCached(issued.key, { tenantId: `${f.tenantId}x` }), NOT_FOUND);
      assert.deepEqual(verifier.verifyCached(wrongSecret(issued.key)), NOT_FOUND);

      // A key with limits is always counted through the usage gate, never from the cache alone.
      const limited = await newKey(f, { name: 'limited', rateLimit: { limit: 2, windowMs: 3_600_000 } });
      assert.equal((await verifier.verify(limited.key)).code, 'valid');
      assert.equal(verifier.verifyCached(limited.key), undefined);
      assert.equal(verifier.verifyCached(limited.key, { consume: false })?.code, 'valid', 'unless it is not to be counted');
      assert.equal((await verifier.verify(limited.key)).code, 'valid');
      assert.equal((await verifier.verify(limited.key)).code, 'rate_limited', 'the two cached answers counted nothing');

      // The owner losing a role, and a revocation, reach the cached path at once.
      const erin = await f.identity.users.create(SYSTEM, f.tenantId, { username: 'erin', roles: ['viewer', 'editor'] });
      const erinKey = await newKey(f, { name: 'erin' }, erin.id);
      assert.equal((await verifier.verify(erinKey.key, { permissions: ['connectors:write'] })).code, 'valid');
      assert.equal(verifier.verifyCached(erinKey.key, { permissions: ['connectors:write'] })?.code, 'valid');
      await f.identity.roles.revoke(SYSTEM, f.tenantId, 'editor', { type: 'user', id: erin.id });
      assert.equal(verifier.verifyCached(erinKey.key), undefined, "the owner's permissions must be read again");
      assert.equal((await verifier.verify(erinKey.key, { permissions: ['connectors:write'] })).code, 'insufficient_permissions');
      assert.deepEqual(verifier.verifyCached(erinKey.key)?.permissions, sorted(BUILTIN_ROLES.viewer));
      await service.revoke(f.adminActor, f.tenantId, issued.apiKey.id);
      assert.equal(verifier.verifyCached(issued.key), undefined, 'the revoked row must be read again');
      assert.equal((await verifier.verify(issued.key)).code, 'revoked');
      assert.notEqual(verifier.verifyCached(issued.key)?.code, 'valid', 'cached or not, never valid again');
    } finally {
      await f.dispose();
    }
  });

  it('never admits more than the rate limit under 50 concurrent verifications', async () => {
    const f = await createApiKeysFixture(dialect, { usage: true });
    try {
      const issued = await newKey(f, { name: 'k', rateLimit: { limit: 10, windowMs: 3_600_000 } });
      const results = await Promise.all(Array.from({ length: 50 }, () => f.apiKeys.verifier.verify(issued.key)));
      const codes = results.map((r) => r.code);
      assert.equal(codes.filter((c) => c === 'valid').length, 10);
      assert.equal(codes.filter((c) => c === 'rate_limited').length, 40);
    } finally {
      await f.dispose();
    }
  });
});
