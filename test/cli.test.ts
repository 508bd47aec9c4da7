import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadSettings } from '../src/core/index.js';
import { generateMasterKey } from '../src/crypto/index.js';
import { SYSTEM_ACTOR } from '../src/identity/index.js';
import { createLatchkey } from '../src/latchkey.js';
import { createTestDatabase, eachDialect, type TestDatabase } from './support/databases.js';
import { ROOT, cliEnv, freePort, runCli, startServer } from './support/cli.js';

const exec = promisify(execFile);

/** Settings for a CLI child on this test's database, with a fresh master key in a 0600 key file. */
function withKeyFile(tdb: TestDatabase): Record<string, string | undefined> {
  const keyFile = join(tdb.dataDir, 'key');
  writeFileSync(keyFile, `${generateMasterKey()}\n`, { mode: 0o600 });
  return { LATCHKEY_DATABASE_URL: tdb.url, LATCHKEY_DATA_DIR: tdb.dataDir, LATCHKEY_KEY_FILE: keyFile };
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'latchkey-cli-'));
}

describe('latchkey CLI', () => {
  it('is installed as an executable bin that prints its commands', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    assert.equal(pkg.bin['latchkey'], 'bin/latchkey');
    assert.ok((statSync(join(ROOT, 'bin/latchkey')).mode & 0o111) !== 0, 'bin/latchkey is executable');
    const { stdout } = await exec(join(ROOT, 'bin/latchkey'), ['--help']);
    for (const command of ['serve', 'migrate', 'rekey', 'keygen', 'doctor']) assert.match(stdout, new RegExp(`\\b${command}\\b`));
  });

  it('gives every command a --help', async () => {
    for (const command of ['serve', 'migrate', 'rekey', 'keygen', 'doctor']) {
      const result = await runCli([command, '--help']);
      assert.equal(result.code, 0, command);
      assert.match(result.stdout, new RegExp(`Usage: latchkey ${command}`));
    }
  });

  it('each command --help lists only the settings it uses', async () => {
    const serverOnly = ['--host', '--port', '--public-url', '--shutdown-timeout', '--cache-bound'];
    for (const command of ['migrate', 'rekey', 'admin create-key']) {
      const help = await runCli([...command.split(' '), '--help']);
      assert.equal(help.code, 0);
      for (const flag of ['--data-dir', '--database-url', '--key-file', '--log-level']) assert.ok(help.stdout.includes(flag), `${command} lists ${flag}`);
      for (const flag of serverOnly) assert.ok(!help.stdout.includes(flag), `${command} does not list ${flag}`);
    }
    const serve = await runCli(['serve', '--help']);
    for (const flag of serverOnly) assert.ok(serve.stdout.includes(flag), `serve lists ${flag}`);
    const keygen = await runCli(['keygen', '--help']);
    assert.ok(!keygen.stdout.includes('--database-url'), 'keygen reads no setting');
  });

  it('stops with exit code 2 and one sentence naming the setting for a bad value', async () => {
    const result = await runCli(['serve'], { env: { LATCHKEY_PORT: 'notaport' } });
    assert.equal(result.code, 2);
    assert.equal(result.stderr, 'latchkey: LATCHKEY_PORT must be a port number (1-65535), got "notaport".\n');
    const flag = await runCli(['doctor', '--log-level', 'loud']);
    assert.equal(flag.code, 2);
    assert.match(flag.stdout, /--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"\./);
    const unknown = await runCli(['serve', '--no-such-flag']);
    assert.equal(unknown.code, 2);
    assert.doesNotMatch(unknown.stderr, /\n\s+at /, 'no stack trace');
  });

  it('never echoes a bad encryption key', async () => {
    const bad = generateMasterKey().slice(0, 30);
    const result = await runCli(['serve'], { env: { LATCHKEY_ENCRYPTION_KEY: bad } });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^latchkey: LATCHKEY_ENCRYPTION_KEY must be 32 bytes encoded as base64/);
    assert.ok(!result.stderr.includes(bad));
  });

  it('a port already in use names the setting that changes it, and exits 2', async () => {
    const dir = tempDir();
    const blocker = createServer();
    try {
      blocker.listen(0, '127.0.0.1');
      await once(blocker, 'listening');
      const { port } = blocker.address() as AddressInfo;
      const result = await runCli(['serve', '--port', String(port)], { cwd: dir });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, new RegExp(`^latchkey: Port ${port} on 127\\.0\\.0\\.1 is already in use; choose another with --port or LATCHKEY_PORT\\.\n$`));
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keygen prints a fresh 32-byte base64 key each time', async () => {
    const a = await runCli(['keygen']);
    const b = await runCli(['keygen']);
    assert.equal(a.code, 0);
    const key = a.stdout.trim();
    assert.equal(Buffer.from(key, 'base64').length, 32);
    assert.notEqual(key, b.stdout.trim());
  });

  it('serves on SQLite with a master key created once, mode 0600, and exits 0 on SIGTERM', async () => {
    const dir = tempDir();
    try {
      const server = await startServer([], { cwd: dir });
      const keyPath = join(dir, 'data', 'master.key');
      assert.equal(statSync(keyPath).mode & 0o777, 0o600);
      assert.match(server.output(), /Created a new master key at .*master\.key; back this file up/);
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200);
      const ready = (await (await fetch(`${server.url}/readyz`)).json()) as { status: string };
      assert.equal(ready.status, 'ready');
      assert.equal(await server.stop('SIGTERM'), 0);
      const key = readFileSync(keyPath, 'utf8');
      assert.ok(!server.output().includes(key.split('\n').find((l) => l && !l.startsWith('#')) ?? '-'), 'the key never reaches the log');

      const again = await startServer([], { cwd: dir });
      assert.doesNotMatch(again.output(), /Created a new master key/);
      assert.equal(readFileSync(keyPath, 'utf8'), key);
      assert.equal(await again.stop('SIGINT'), 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('first admin password is printed once on a terminal, and no file is written', async () => {
    const dir = tempDir();
    try {
      const port = String(await freePort());
      // `script` gives the server a pseudo-terminal as stdout, as a person running it sees.
      const child = spawn('script', ['-qefc', `${process.execPath} --import ${import.meta.resolve('tsx')} ${ROOT}src/cli/main.ts serve --port ${port}`, '/dev/null'], {
        cwd: dir,
        env: cliEnv(),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      for (let i = 0; i < 400 && !output.includes('Latchkey is serving on'); i++) await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGTERM');
      await once(child, 'close');
      assert.match(output, /Initial admin password \(shown only this once; store it now\): [0-9A-Za-z]{20,}/);
      assert.equal(existsSync(join(dir, 'data', 'initial-admin-password')), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('doctor on a fresh directory says what will happen, and fails plainly on an unreachable database', async () => {
    const dir = tempDir();
    try {
      const fresh = await runCli(['doctor', '--data-dir', dir]);
      assert.equal(fresh.code, 0, fresh.stdout + fresh.stderr);
      assert.match(fresh.stdout, /no database yet/);
      const down = await runCli(['doctor'], {
        env: { LATCHKEY_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nothing', LATCHKEY_ENCRYPTION_KEY: generateMasterKey() },
      });
      assert.equal(down.code, 1);
      assert.match(down.stdout, /✖ database: unreachable/);
      assert.match(down.stdout, /fix: check that PostgreSQL is running/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

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
        assert.ok(!server.output().includes(password), 'the password is not in stdout or stderr');
        assert.ok(server.output().includes(passwordFile), 'the log names the file');

        const login = await fetch(`${server.url}/api/v1/sessions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ tenant: 'default', username: 'admin', password }),
        });
        assert.equal(login.status, 201);
        const { userId } = (await login.json()) as { userId: string };
        const cookie = login.headers.get('set-cookie')?.split(';')[0] ?? '';

        // A restart with the password unchanged keeps the file.
        assert.equal(await server.stop(), 0);
        const again = await startServer([], { env });
        try {
          assert.equal(readFileSync(passwordFile, 'utf8').trim(), password);
          const changed = await fetch(`${again.url}/api/v1/users/${userId}`, {
            method: 'PATCH',
            headers: { 'content-type': 'application/json', cookie },
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

      const server = await startServer([], { env });
      try {
        const login = await fetch(`${server.url}/api/v1/sessions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ tenant, username: 'owner', password: printed.password }),
        });
        assert.equal(login.status, 201);
        assert.ok(!server.output().includes(printed.password));
      } finally {
        await server.stop();
      }
    } finally {
      await tdb.dispose();
    }
  });
});
