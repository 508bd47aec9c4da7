import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { manualClock } from '../core/index.js';
import { eachDialect } from '../../test/support/databases.js';
import { createIdentityFixture, randomName, randomSecret, rejectsWith, type IdentityFixture } from '../../test/identity-support.js';

const HOUR = 3600_000;

async function withUser(f: IdentityFixture, username = 'pat') {
  const password = randomSecret();
  const user = await f.identity.users.create(f.admin, f.tenantId, { username, password, roles: ['viewer'] });
  const tenant = (await f.identity.tenants.get(f.tenantId)).name;
  return { user, password, tenant };
}

/** `count` wrong passwords for `username`, each refused as unauthorized; `address` may vary by attempt. */
async function failLogins(f: IdentityFixture, tenant: string, username: string, count: number, address: (i: number) => string): Promise<void> {
  for (let i = 0; i < count; i++) {
    await rejectsWith(f.identity.sessions.login({ tenant, username, password: randomSecret(), address: address(i) }), 'unauthorized');
  }
}

await eachDialect('identity: sessions', (dialect) => {
  it('logs in, authenticates the token until it expires after 12 h, and logs out', async () => {
    const clock = manualClock(new Date('2030-01-01T00:00:00.000Z'));
    const f = await createIdentityFixture(dialect, { clock });
    try {
      const { user, password, tenant } = await withUser(f);
      const login = await f.identity.sessions.login({ tenant, username: 'pat', password, address: '192.0.2.1' });
      assert.match(login.token, /^[0-9A-Za-z]{40,44}$/);
      assert.equal(login.expiresAt, '2030-01-01T12:00:00.000Z');
      assert.equal(login.userId, user.id);
      assert.equal(login.tenantId, f.tenantId);

      // Stored only as its SHA-256.
      const rows = await f.handle.db.selectFrom('sessions').selectAll().execute();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.id, createHash('sha256').update(login.token).digest('hex'));
      assert.ok(!JSON.stringify(rows).includes(login.token));

      const session = await f.identity.sessions.authenticate(login.token);
      assert.deepEqual(session, { tenantId: f.tenantId, userId: user.id, sessionId: rows[0]?.id, expiresAt: login.expiresAt });
      clock.advance(12 * HOUR - 1);
      assert.ok(await f.identity.sessions.authenticate(login.token));
      clock.advance(1);
      assert.equal(await f.identity.sessions.authenticate(login.token), undefined);
      assert.equal(await f.identity.sessions.purgeExpired(), 1);

      const again = await f.identity.sessions.login({ tenant, username: 'pat', password, address: '192.0.2.1' });
      assert.ok(await f.identity.sessions.authenticate(again.token));
      await f.identity.sessions.logout(again.token);
      assert.equal(await f.identity.sessions.authenticate(again.token), undefined);
      for (const bad of ['', 'short', `${again.token}!`, 42 as unknown as string]) {
        assert.equal(await f.identity.sessions.authenticate(bad), undefined);
      }
    } finally {
      await f.dispose();
    }
  });

  it('fails every bad login with the same message', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { password, tenant } = await withUser(f);
      const disabled = await withUser(f, 'gone');
      await f.identity.users.update(f.admin, f.tenantId, disabled.user.id, { disabled: true });
      await f.identity.users.create(f.admin, f.tenantId, { username: 'keyonly' });
      const attempts = [
        { tenant, username: 'pat', password: randomSecret() },
        { tenant, username: 'pat', password: password.toUpperCase() + 'x' },
        { tenant, username: 'nobody', password },
        { tenant: randomName('none'), username: 'pat', password },
        { tenant, username: 'gone', password: disabled.password },
        { tenant, username: 'keyonly', password },
      ];
      const messages = new Set<string>();
      for (const [i, attempt] of attempts.entries()) {
        const err = await rejectsWith(f.identity.sessions.login({ ...attempt, address: `198.51.100.${i}` }), 'unauthorized');
        messages.add(err.message);
      }
      assert.deepEqual([...messages], ['The username or password is incorrect.']);
      await rejectsWith(f.identity.sessions.login({ tenant, username: 'pat', password: 7, address: 'a' } as never), 'validation_failed');
      await rejectsWith(f.identity.sessions.login({ tenant, username: 'pat', password: '', address: 'a' }), 'validation_failed');
    } finally {
      await f.dispose();
    }
  });

  it('rate-limits failed logins per account and address, answering rate_limited with retryAfterSeconds', async () => {
    const clock = manualClock();
    const f = await createIdentityFixture(dialect, { clock });
    try {
      const { password, tenant } = await withUser(f);
      const other = await withUser(f, 'sky');
      for (let i = 0; i < 5; i++) {
        await rejectsWith(f.identity.sessions.login({ tenant, username: 'pat', password: randomSecret(), address: '203.0.113.7' }), 'unauthorized');
        clock.advance(1000);
      }
      // Even the right password, from the address that failed, waits now.
      const limited = await rejectsWith(f.identity.sessions.login({ tenant, username: 'pat', password, address: '203.0.113.7' }), 'rate_limited');
      assert.equal(limited.message, 'Too many failed logins; try again later.');
      assert.equal(limited.details?.['retryAfterSeconds'], 15 * 60 - 5);
      // Case does not make a new account.
      await rejectsWith(f.identity.sessions.login({ tenant, username: 'PAT', password, address: '203.0.113.7' }), 'rate_limited');
      // Other accounts are not affected, even from that address.
      await f.identity.sessions.login({ tenant, username: 'sky', password: other.password, address: '203.0.113.7' });

      clock.advance(15 * 60_000 - 5000);
      const ok = await f.identity.sessions.login({ tenant, username: 'pat', password, address: '203.0.113.7' });
      assert.ok(await f.identity.sessions.authenticate(ok.token));
    } finally {
      await f.dispose();
    }
  });

  it('lets the right password in from another address after a stranger failed five times (no lockout of the admin)', async () => {
    const clock = manualClock();
    const f = await createIdentityFixture(dialect, { clock });
    try {
      const { password, tenant } = await withUser(f);
      await failLogins(f, tenant, 'pat', 5, () => '198.51.100.66');
      await rejectsWith(f.identity.sessions.login({ tenant, username: 'pat', password, address: '198.51.100.66' }), 'rate_limited');
      const ok = await f.identity.sessions.login({ tenant, username: 'pat', password, address: '203.0.113.99' });
      assert.ok(await f.identity.sessions.authenticate(ok.token));
      // The bootstrap admin of a well-known tenant likewise.
      const admin = await withUser(f, 'admin');
      await failLogins(f, tenant, 'admin', 5, () => '198.51.100.67');
      await f.identity.sessions.login({ tenant, username: 'admin', password: admin.password, address: '203.0.113.99' });
    } finally {
      await f.dispose();
    }
  });

  it('refuses every address once an account has failed 100 times in the window, and admits it again after', async () => {
    const clock = manualClock();
    const f = await createIdentityFixture(dialect, { clock });
    try {
      const { password, tenant } = await withUser(f);
      // A guess spread over 25 addresses, 4 each: under the per-address and per-pair limits.
      await failLogins(f, tenant, 'pat', 100, (i) => `198.51.100.${i % 25}`);
      const limited = await rejectsWith(f.identity.sessions.login({ tenant, username: 'pat', password, address: '203.0.113.99' }), 'rate_limited');
      assert.equal(limited.details?.['retryAfterSeconds'], 15 * 60);
      clock.advance(15 * 60_000);
      await f.identity.sessions.login({ tenant, username: 'pat', password, address: '203.0.113.99' });
    } finally {
      await f.dispose();
    }
  });

  it('a successful login clears the failures of its account and address', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { password, tenant } = await withUser(f);
      const fail = () => rejectsWith(f.identity.sessions.login({ tenant, username: 'pat', password: randomSecret(), address: '192.0.2.7' }), 'unauthorized');
      for (let i = 0; i < 4; i++) await fail();
      await f.identity.sessions.login({ tenant, username: 'pat', password, address: '192.0.2.7' });
      for (let i = 0; i < 4; i++) await fail();
      await f.identity.sessions.login({ tenant, username: 'pat', password, address: '192.0.2.7' });
    } finally {
      await f.dispose();
    }
  });

  it('rate-limits failed logins per client address', async () => {
    const clock = manualClock();
    const f = await createIdentityFixture(dialect, { clock });
    try {
      const { password, tenant } = await withUser(f);
      // 20 failures spread over many accounts (4 each, under the account limit).
      for (let i = 0; i < 20; i++) {
        const username = `guess${i % 5}`;
        await rejectsWith(f.identity.sessions.login({ tenant, username, password: randomSecret(), address: '2001:db8::1' }), 'unauthorized');
      }
      const limited = await rejectsWith(f.identity.sessions.login({ tenant, username: 'pat', password, address: '2001:db8::1' }), 'rate_limited');
      assert.equal(limited.details?.['retryAfterSeconds'], 900);
      await f.identity.sessions.login({ tenant, username: 'pat', password, address: '2001:db8::2' });
      clock.advance(900_000);
      await f.identity.sessions.login({ tenant, username: 'pat', password, address: '2001:db8::1' });
    } finally {
      await f.dispose();
    }
  });

  it('audits logins, successful and failed, and never records or logs the password', async () => {
    const f = await createIdentityFixture(dialect);
    try {
      const { user, password, tenant } = await withUser(f);
      const wrong = randomSecret();
      await rejectsWith(f.identity.sessions.login({ tenant, username: 'pat', password: wrong, address: '192.0.2.9' }), 'unauthorized');
      await rejectsWith(f.identity.sessions.login({ tenant, username: 'ghost', password: wrong, address: '192.0.2.9' }), 'unauthorized');
      const login = await f.identity.sessions.login({ tenant, username: 'pat', password, address: '192.0.2.9' });
      const { items } = await f.identity.audit.list(f.tenantId, { limit: 3 });
      assert.deepEqual(
        items.map((e) => [e.action, e.actor, e.target, e.details]),
        [
          ['login.succeeded', `user:${user.id}`, user.id, { username: 'pat', address: '192.0.2.9' }],
          ['login.failed', 'system', null, { username: 'ghost', address: '192.0.2.9', reason: 'unknown_user' }],
          ['login.failed', 'system', user.id, { username: 'pat', address: '192.0.2.9', reason: 'wrong_password' }],
        ],
      );
      const everything = JSON.stringify(await f.handle.db.selectFrom('audit_events').selectAll().execute()) + f.logs();
      for (const secret of [password, wrong, login.token]) assert.ok(!everything.includes(secret));
    } finally {
      await f.dispose();
    }
  });
});
