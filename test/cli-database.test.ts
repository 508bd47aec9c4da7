// `bin/latchkey` against a database: migrate, serve and doctor, the first admin password, `admin create-user` (split
// from cli.test.ts so that each file runs well within the runner's per-file time limit).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSettings } from '../src/core/index.js';
import { generateMasterKey } from '../src/crypto/index.js';
import { SYSTEM_ACTOR } from '../src/identity/index.js';
import { createLatchkey } from '../src/latchkey.js';
import { createTestDatabase, eachDialect, type TestDatabase } from './support/databases.js';
import { freePort, runCli, startServer } from './support/cli.js';

/** Settings for a CLI child on this test's database, with a fresh master key in a 0600 key file. */
function withKeyFile(tdb: TestDatabase): Record<string, string | undefined> {
  const keyFile = join(tdb.dataDir, 'key');
  writeFileSync(keyFile, `${generateMasterKey()}\n`, { mode: 0o600 });
  return { LATCHKEY_DATABASE_URL: tdb.url, LATCHKEY_DATA_DIR: tdb.dataDir, LATCHKEY_KEY_FILE: keyFile };
}

await eachDialect('latchkey CLI on the database', (dialect) => {
  it('migrate applies migrations once; serve needs a configured key on PostgreSQL', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const env = { LATCHKEY_DATABASE_URL: tdb.url, LATCHKEY_DATA_DIR: tdb.dataDir };
      const first = await runCli(['migrate'], { env });
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /Applied migration 0001-encrypted-objects\.\nApplied migration 0002-identity-and-api-keys\./);
      const second = await runCli(['migrate'], { env });
      assert.match(second.stdout, /The database schema is up to date\./);
      if (dialect === 'postgres') {
        const noKey = await runCli(['serve'], { env });
        assert.equal(noKey.code, 2);
        assert.match(noKey.stderr, /No encryption key is configured/);
      }
    } finally {
      await tdb.dispose();
    }
  });

  it('serves, reports ready, and doctor finds nothing wrong', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const env = withKeyFile(tdb);
      const server = await startServer([], { env });
      const ready = await fetch(`${server.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.equal(await server.stop(), 0);
      const doctor = await runCli(['doctor', '--scan'], { env });
      assert.equal(doctor.code, 0, doctor.stdout);
      assert.match(doctor.stdout, /✔ database: reachable/);
      assert.match(doctor.stdout, /✔ migrations: all applied/);
      assert.match(doctor.stdout, /✔ scan: all 0 objects decrypt/);
    } finally {
      await tdb.dispose();
    }
  });
});

await eachDialect('latchkey serve: the first admin password', (dialect) => {
  it('first admin password never reaches a log file: written to a 0600 file that is deleted once the password changes', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const env = withKeyFile(tdb);
      const server = await startServer([], { env });
      const passwordFile = join(tdb.dataDir, 'initial-admin-password');
      try {
        assert.equal(statSync(passwordFile).mode & 0o777, 0o600);
        const password = readFileSync(passwordFile, 'utf8').trim();
        assert.ok(password.length >= 20);
        assert.ok(!(await server.settled()).includes(password), 'the password is not in stdout or stderr');
        assert.ok(server.output().includes(passwordFile), 'the log names the file');

        const login = await fetch(`${server.url}/api/v1/sessions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ tenant: 'default', username: 'admin', password }),
        });
        assert.equal(login.status, 201);
        const { userId } = (await login.json()) as { userId: string };
        const cookies = login.headers.getSetCookie().map((line) => line.split(';')[0] ?? '');
        const cookie = cookies.join('; ');
        const csrf = cookies.find((pair) => pair.startsWith('latchkey_csrf='))?.slice('latchkey_csrf='.length) ?? '';

        // A restart with the password unchanged keeps the file.
        assert.equal(await server.stop(), 0);
        const again = await startServer([], { env });
        try {
          assert.equal(readFileSync(passwordFile, 'utf8').trim(), password);
          const changed = await fetch(`${again.url}/api/v1/users/${userId}`, {
            method: 'PATCH',
            headers: { 'content-type': 'application/json', cookie, 'x-latchkey-csrf': csrf },
            body: JSON.stringify({ password: randomBytes(18).toString('base64url') }),
          });
          assert.equal(changed.status, 200, await changed.text());
          // Generous ceiling: the deletion follows the change at once; only a real hang trips this.
          for (let i = 0; i < 200 && existsSync(passwordFile); i++) await new Promise((r) => setTimeout(r, 50));
          assert.equal(existsSync(passwordFile), false, 'the file is deleted once the password changed');
          const said = /The initial admin password was changed; deleted the file that held it\./;
          for (let i = 0; i < 200 && !said.test(again.output()); i++) await new Promise((r) => setTimeout(r, 50));
          assert.match(again.output(), said);
        } finally {
          await again.stop();
        }
      } finally {
        if (server.child.exitCode === null) await server.stop();
      }
    } finally {
      await tdb.dispose();
    }
  });

  it('first admin password file left by an earlier start is deleted at the next start once the password was changed elsewhere', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const env = withKeyFile(tdb);
      const first = await startServer([], { env });
      assert.equal(await first.stop(), 0);
      const passwordFile = join(tdb.dataDir, 'initial-admin-password');
      assert.ok(existsSync(passwordFile));
      // The password is changed while no server watches the file (through the library).
      const latchkey = await createLatchkey({ settings: loadSettings({ env }), http: false, bootstrap: false });
      try {
        const tenant = await latchkey.identity.tenants.getByName('default');
        const admin = await latchkey.identity.users.getByUsername(tenant.id, 'admin');
        await latchkey.identity.users.update(SYSTEM_ACTOR, tenant.id, admin.id, { password: randomBytes(18).toString('base64url') });
      } finally {
        await latchkey.close();
      }
      assert.ok(existsSync(passwordFile));
      const later = await startServer([], { env });
      try {
        for (let i = 0; i < 200 && existsSync(passwordFile); i++) await new Promise((r) => setTimeout(r, 50));
        assert.equal(existsSync(passwordFile), false);
      } finally {
        await later.stop();
      }
    } finally {
      await tdb.dispose();
    }
  });
});

await eachDialect('latchkey admin create-user', (dialect) => {
  it('a new tenant gets its first user from the CLI: --json prints exactly {id, username, password}, and the user logs in', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const env = withKeyFile(tdb);
      const latchkey = await createLatchkey({ settings: loadSettings({ env }), http: false, bootstrap: false });
      const tenant = `acme-${randomBytes(4).toString('hex')}`;
      try {
        await latchkey.identity.tenants.create({ name: tenant });
      } finally {
        await latchkey.close();
      }
      const created = await runCli(['admin', 'create-user', '--tenant', tenant, '--username', 'owner', '--role', 'admin', '--json'], { env });
      assert.equal(created.code, 0, created.stderr);
      const printed = JSON.parse(created.stdout) as { id: string; username: string; password: string };
      assert.deepEqual(Object.keys(printed), ['id', 'username', 'password']);
      assert.equal(printed.username, 'owner');
      assert.match(printed.password, /^[0-9A-Za-z]{24}$/);

      // A setting that makes Latchkey warn (on stderr) leaves --json output on stdout parseable.
      const warned = await runCli(['admin', 'create-user', '--tenant', tenant, '--username', 'warned', '--json'], { env: { ...env, LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1' } });
      assert.equal(warned.code, 0, warned.stderr);
      assert.deepEqual(Object.keys(JSON.parse(warned.stdout) as object), ['id', 'username', 'password']);
      assert.match(warned.stderr, /UNSAFE: allowInsecureLoopback is on/);

      const keyOnly = await runCli(['admin', 'create-user', '--tenant', tenant, '--username', 'robot', '--no-password', '--json'], { env });
      assert.equal(keyOnly.code, 0, keyOnly.stderr);
      assert.deepEqual(Object.keys(JSON.parse(keyOnly.stdout) as object), ['id', 'username']);

      const again = await runCli(['admin', 'create-user', '--tenant', tenant, '--username', 'owner'], { env });
      assert.equal(again.code, 1);
      assert.equal(again.stderr, 'latchkey: A user named "owner" already exists in this tenant.\n');
      const noTenant = await runCli(['admin', 'create-user', '--tenant', 'nope', '--username', 'x'], { env });
      assert.match(noTenant.stderr, /^latchkey: No tenant named "nope" exists\.\n$/);
      const badRole = await runCli(['admin', 'create-user', '--tenant', tenant, '--username', 'y', '--role', 'nosuch'], { env });
      assert.equal(badRole.code, 2);
      assert.match(badRole.stderr, /is not a role of this tenant/);
      const tooShort = await runCli(['admin', 'create-key', '--tenant', tenant, '--user', 'owner', '--name', 'k', '--expires-in', '5'], { env });
      assert.equal(tooShort.code, 2, tooShort.stderr);
      assert.equal(tooShort.stderr, 'latchkey: --expires-in must be at least 1 second, got "5" (a number alone is milliseconds; write "5d" for days).\n');
      assert.equal(tooShort.stdout, '', 'no key is minted');

      const server = await startServer([], { env });
      try {
        const login = await fetch(`${server.url}/api/v1/sessions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ tenant, username: 'owner', password: printed.password }),
        });
        assert.equal(login.status, 201);
        assert.ok(!(await server.settled()).includes(printed.password));
      } finally {
        await server.stop();
      }
    } finally {
      await tdb.dispose();
    }
  });
});

it('serve, migrate and admin on an unreachable PostgreSQL say where they looked and which setting to check, never the password', async () => {
  const password = randomBytes(18).toString('base64url');
  const port = await freePort(); // nothing listens there
  const tdb = await createTestDatabase('sqlite'); // only for its data directory
  try {
    const env = { ...withKeyFile(tdb), LATCHKEY_DATABASE_URL: `postgres://postgres:${password}@127.0.0.1:${port}/latchkey` };
    for (const args of [['serve'], ['migrate'], ['admin', 'create-user', '--tenant', 'default', '--username', 'x']]) {
      const run = await runCli(args, { env });
      assert.equal(run.code, 1, `${args.join(' ')}: ${run.stderr}`);
      assert.match(
        run.stderr,
        new RegExp(`^latchkey: Latchkey cannot reach the database \\(postgres at 127\\.0\\.0\\.1:${port}/latchkey: .*ECONNREFUSED.*\\); check that PostgreSQL is running and that LATCHKEY_DATABASE_URL \\(--database-url\\) points at it\\.\\n$`),
        args.join(' '),
      );
      assert.ok(!`${run.stdout}${run.stderr}`.includes(password), 'the URL\'s password is never shown');
    }
  } finally {
    await tdb.dispose();
  }
});
