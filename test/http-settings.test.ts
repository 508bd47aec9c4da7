// The server's effective configuration and doctor's checks over HTTP (`GET /settings`,
// `GET /doctor`) on both databases: system administrators only, never a secret; and the audit
// log's time range filter.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { eachDialect } from './support/databases.js';
import { assertError, createHttpHarness, type HttpHarness } from './support/http.js';

await eachDialect('HTTP settings and doctor', (dialect) => {
  let h: HttpHarness;
  let cookie: string;
  before(async () => {
    h = await createHttpHarness(dialect);
    cookie = await h.login('default', 'admin', h.adminPassword);
  });
  after(async () => {
    await h?.close();
  });

  it('shows the effective configuration to a system admin, secrets only as set or not set', async () => {
    const answer = await h.call({ method: 'GET', url: '/api/v1/settings', cookie });
    assert.equal(answer.status, 200, answer.text);
    const byName = new Map((answer.json.items as Array<{ name: string }>).map((s) => [s.name, s]));
    const { settings } = h.latchkey;
    assert.deepEqual(byName.get('publicUrl'), { name: 'publicUrl', env: 'LATCHKEY_PUBLIC_URL', flag: '--public-url', secret: false, set: true, value: settings.publicUrl });
    assert.deepEqual(byName.get('encryptionKey'), { name: 'encryptionKey', env: 'LATCHKEY_ENCRYPTION_KEY', flag: null, secret: true, set: true, value: null });
    assert.deepEqual(byName.get('decryptionKeys'), { name: 'decryptionKeys', env: 'LATCHKEY_DECRYPTION_KEYS', flag: null, secret: true, set: false, value: null });
    assert.deepEqual(byName.get('databaseUrl'), { name: 'databaseUrl', env: 'LATCHKEY_DATABASE_URL', flag: '--database-url', secret: true, set: dialect === 'postgres', value: null });
    assert.deepEqual(byName.get('egressAllow')?.['value' as never], ['127.0.0.1/32']);
    assert.equal(byName.get('configFile')?.['set' as never], false);
    assert.deepEqual(byName.get('shutdownTimeout'), { name: 'shutdownTimeout', env: 'LATCHKEY_SHUTDOWN_TIMEOUT', flag: '--shutdown-timeout', secret: false, set: true, value: 10_000 });
    assert.ok(settings.encryptionKey && !answer.text.includes(settings.encryptionKey), 'never the master key');
    if (settings.databaseUrl) assert.ok(!answer.text.includes(settings.databaseUrl) && !answer.text.includes('search_path'), 'never the database URL');
  });

  it('runs doctor\'s checks against the running server', async () => {
    const answer = await h.call({ method: 'GET', url: '/api/v1/doctor', cookie });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers['cache-control'], 'no-store');
    const findings = answer.json.items as Array<{ status: string; check: string; message: string }>;
    assert.deepEqual(findings.map((f) => [f.check, f.status]), [
      ['configuration', 'ok'],
      ['master key', 'ok'],
      ['database', 'ok'],
      ['migrations', 'ok'],
      ['data keys', 'ok'],
    ]);
    assert.match(findings[2]?.message ?? '', dialect === 'postgres' ? /^reachable \(postgres at / : /^reachable \(sqlite at /);
    assert.ok(!answer.text.includes(String(h.latchkey.settings.encryptionKey)));
  });

  it('refuses both to an admin of another tenant and to a non-admin', async () => {
    const t = await h.tenant();
    for (const url of ['/api/v1/settings', '/api/v1/doctor']) {
      assert.match(assertError(await h.call({ method: 'GET', url, key: t.adminKey }), 403, 'forbidden'), /system tenant/);
      const viewer = await h.call({ method: 'POST', url: '/api/v1/users', cookie, body: { username: `viewer-${url.length}-${Math.random().toString(36).slice(2, 8)}`, roles: ['viewer'] } });
      assert.equal(viewer.status, 201, viewer.text);
      const key = await h.call({ method: 'POST', url: '/api/v1/api-keys', cookie, body: { name: 'viewer', ownerId: viewer.json.id } });
      assert.equal(key.status, 201, key.text);
      assertError(await h.call({ method: 'GET', url, key: key.json.key }), 403, 'forbidden');
    }
  });

  it('filters the audit log by a time range, and names the field of a bad bound', async () => {
    const t = await h.tenant();
    // The tenant's first admin was created now: the range starts after it.
    h.clock.advance(60_000);
    const start = h.clock.now().toISOString();
    await t.user();
    h.clock.advance(60_000);
    const middle = h.clock.now().toISOString();
    await t.user();
    h.clock.advance(60_000);
    const list = async (query: string) => {
      const answer = await h.call({ method: 'GET', url: `/api/v1/audit?action=user.created&${query}`, key: t.adminKey });
      assert.equal(answer.status, 200, answer.text);
      return (answer.json.items as Array<{ at: string }>).map((e) => e.at);
    };
    assert.equal((await list(`since=${start}`)).length, 2);
    assert.deepEqual(await list(`since=${middle}`), [middle]);
    assert.deepEqual(await list(`since=${start}&until=${middle}`), [start]);
    const bad = await h.call({ method: 'GET', url: '/api/v1/audit?since=yesterday', key: t.adminKey });
    assertError(bad, 400, 'validation_failed');
    assert.deepEqual(bad.json.error.details?.fields ?? bad.json.error.fields, [{ path: 'since', message: 'must be a date and time such as "2026-01-31T12:00:00Z"' }]);
  });
});
