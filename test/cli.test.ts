import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generateMasterKey } from '../src/crypto/index.js';
import { ROOT, cliEnv, freePort, runCli, startServer } from './support/cli.js';

const exec = promisify(execFile);

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
