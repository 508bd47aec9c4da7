import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { ConfigError, createLogger } from '../core/index.js';
import {
  Keyring,
  createKeyFile,
  generateMasterKey,
  loadKeyring,
  masterKeyId,
  parseKeyFile,
  type LoadKeyringOptions,
} from './keyring.js';

const POSIX = process.platform !== 'win32';
const NO_KEY_MESSAGE =
  'No encryption key is configured: set LATCHKEY_ENCRYPTION_KEY or --key-file (make a key with `latchkey keygen`).';

const temps: string[] = [];
after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-keyring-'));
  temps.push(dir);
  return dir;
}

function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { logger, lines };
}

function forms(key: Buffer): string[] {
  return [key.toString('base64'), key.toString('hex'), key.toString('base64').slice(0, 16), key.toString('hex').slice(0, 16)];
}

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.code, 'invalid_config');
    assert.match(error.message, /^[^\n]+\.$/, 'one sentence');
    return error;
  }
  assert.fail('expected a ConfigError');
}

describe('masterKeyId', () => {
  it('is mk_ and 12 hex characters of a domain-separated SHA-256 of the key', () => {
    const key = randomBytes(32);
    const expected = createHash('sha256')
      .update(Buffer.concat([Buffer.from('latchkey master key id v1\0', 'latin1'), key]))
      .digest('hex')
      .slice(0, 12);
    assert.equal(masterKeyId(key), `mk_${expected}`);
    assert.match(masterKeyId(key), /^mk_[0-9a-f]{12}$/);
  });

  it('is stable for one key and distinct for different keys', () => {
    const key = randomBytes(32);
    assert.equal(masterKeyId(key), masterKeyId(Buffer.from(key)));
    const ids = new Set(Array.from({ length: 200 }, () => masterKeyId(randomBytes(32))));
    assert.equal(ids.size, 200);
  });

  it('is not a prefix of the key or of its plain hash', () => {
    const key = randomBytes(32);
    const id = masterKeyId(key).slice(3);
    assert.ok(!key.toString('hex').startsWith(id));
    assert.ok(!createHash('sha256').update(key).digest('hex').startsWith(id));
  });

  it('refuses keys that are not 32 bytes', () => {
    for (const length of [0, 16, 31, 33]) assert.throws(() => masterKeyId(randomBytes(length)), TypeError);
  });
});

describe('Keyring', () => {
  it('holds the primary and finds decryption-only keys by id', () => {
    const primary = randomBytes(32);
    const old1 = randomBytes(32);
    const old2 = randomBytes(32);
    const keyring = new Keyring(primary, [old1, old2]);
    assert.equal(keyring.primary.id, masterKeyId(primary));
    assert.equal(keyring.primary.primary, true);
    assert.deepEqual(keyring.primary.key, primary);
    const found = keyring.get(masterKeyId(old2));
    assert.ok(found);
    assert.equal(found.primary, false);
    assert.deepEqual(found.key, old2);
    assert.deepEqual(
      keyring.list().map((key) => key.id),
      [primary, old1, old2].map((key) => masterKeyId(key)),
    );
    assert.equal(keyring.get('mk_000000000000'), undefined);
  });

  it('drops a decryption-only key equal to the primary, and repeated keys', () => {
    const primary = randomBytes(32);
    const old = randomBytes(32);
    const keyring = new Keyring(primary, [Buffer.from(primary), old, Buffer.from(old)]);
    assert.equal(keyring.list().length, 2);
    assert.equal(keyring.get(masterKeyId(primary))?.primary, true);
  });

  it('no longer finds a key once it is removed from the keyring', () => {
    const primary = randomBytes(32);
    const old = randomBytes(32);
    assert.ok(new Keyring(primary, [old]).get(masterKeyId(old)));
    assert.equal(new Keyring(primary).get(masterKeyId(old)), undefined);
  });

  it('keeps its own copy of the key bytes', () => {
    const primary = randomBytes(32);
    const copy = Buffer.from(primary);
    const keyring = new Keyring(primary);
    primary.fill(0);
    assert.deepEqual(keyring.primary.key, copy);
  });

  it('refuses keys that are not 32-byte Buffers', () => {
    for (const length of [0, 16, 31, 33, 64]) {
      assert.throws(() => new Keyring(randomBytes(length)), TypeError);
      assert.throws(() => new Keyring(randomBytes(32), [randomBytes(length)]), TypeError);
    }
    assert.throws(() => new Keyring(randomBytes(32).toString('base64') as unknown as Buffer), TypeError);
  });

  it('never shows key bytes in JSON, inspect or toString', () => {
    const keys = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const keyring = new Keyring(keys[0]!, keys.slice(1));
    const renderings = [
      JSON.stringify(keyring),
      JSON.stringify({ keyring }),
      JSON.stringify(keyring.primary),
      JSON.stringify(keyring.list()),
      inspect(keyring),
      inspect(keyring, { depth: Infinity }),
      inspect({ nested: { keyring } }, { depth: Infinity }),
      inspect(keyring.primary),
      inspect(keyring.list()),
      String(keyring),
      `${keyring.toString()}`,
    ];
    for (const text of renderings) {
      for (const key of keys) {
        for (const form of forms(key)) assert.ok(!text.includes(form), text);
      }
    }
    assert.deepEqual(JSON.parse(JSON.stringify(keyring)), {
      primary: masterKeyId(keys[0]!),
      decryptionOnly: [masterKeyId(keys[1]!), masterKeyId(keys[2]!)],
    });
    assert.match(inspect(keyring), new RegExp(masterKeyId(keys[0]!)));
  });
});

describe('generateMasterKey', () => {
  it('is base64 of 32 random bytes', () => {
    const a = generateMasterKey();
    const b = generateMasterKey();
    assert.match(a, /^[A-Za-z0-9+/]{43}=$/);
    assert.equal(Buffer.from(a, 'base64').length, 32);
    assert.notEqual(a, b);
  });
});

describe('parseKeyFile', () => {
  it('reads the primary from the first key line and decryption-only keys from later ones', () => {
    const [k1, k2, k3] = [generateMasterKey(), generateMasterKey(), generateMasterKey()];
    const text = `\uFEFF# Latchkey keys\n\n  ${k1}  \r\n# old keys\r\n${k2}\n\n${k3}\n`;
    const parsed = parseKeyFile(text, '/etc/latchkey/keys');
    assert.deepEqual(parsed.primary, Buffer.from(k1, 'base64'));
    assert.deepEqual(parsed.decryptionOnly, [Buffer.from(k2, 'base64'), Buffer.from(k3, 'base64')]);
  });

  it('names the file and line of each bad line, never its content', () => {
    const good = generateMasterKey();
    const bad = [
      Buffer.from(randomBytes(31)).toString('base64'),
      Buffer.from(randomBytes(33)).toString('base64'),
      randomBytes(32).toString('hex'),
      randomBytes(32).toString('base64url'),
      randomBytes(32).toString('base64').slice(0, -1),
      `${good} ${good}`,
      'not a key',
    ];
    for (const line of bad) {
      const error = configErrorOf(() => parseKeyFile(`# keys\n${good}\n\n${line}\n`, '/srv/keys.txt'));
      assert.equal(error.message, 'The key file /srv/keys.txt line 4 is not a 32-byte key encoded as base64.');
      assert.ok(!error.message.includes(line));
    }
    const first = configErrorOf(() => parseKeyFile('oops\n', 'k'));
    assert.match(first.message, /line 1 /);
  });

  it('refuses a file with no key', () => {
    for (const text of ['', '\n\n', '# only a comment\n']) {
      const error = configErrorOf(() => parseKeyFile(text, '/srv/keys.txt'));
      assert.match(error.message, /The key file \/srv\/keys\.txt holds no key/);
    }
  });
});

describe('loadKeyring', () => {
  const options = (dataDir: string, extra: Partial<LoadKeyringOptions> = {}): LoadKeyringOptions => ({
    dataDir,
    allowCreate: false,
    ...extra,
  });

  it('creates <dataDir>/master.key with mode 0600 and reads it back on the next start', () => {
    const dataDir = join(tempDir(), 'nested', 'data');
    const { logger, lines } = captureLogger();
    const first = loadKeyring(options(dataDir, { allowCreate: true, logger }));
    const path = join(dataDir, 'master.key');
    assert.equal(first.source, 'created');
    assert.equal(first.path, path);
    if (POSIX) assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dataDir), ['master.key'], 'no temporary file left behind');

    const warnings = lines.filter((line) => line['level'] === 40);
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]!['msg']), /back this file up/);
    assert.ok(String(warnings[0]!['msg']).includes(path));
    const logged = JSON.stringify(lines);
    for (const form of forms(first.keyring.primary.key)) assert.ok(!logged.includes(form));

    const second = loadKeyring(options(dataDir, { allowCreate: true, logger }));
    assert.equal(second.source, 'key-file');
    assert.equal(second.path, path);
    assert.equal(second.keyring.primary.id, first.keyring.primary.id);
    assert.equal(lines.filter((line) => line['level'] === 40).length, 1, 'no second warning');

    const third = loadKeyring(options(dataDir));
    assert.equal(third.keyring.primary.id, first.keyring.primary.id);
  });

  it('createKeyFile leaves an existing file alone and reports that it did not create it', () => {
    const dir = tempDir();
    const path = join(dir, 'master.key');
    const existing = `${generateMasterKey()}\n`;
    writeFileSync(path, existing, { mode: 0o600 });
    assert.equal(createKeyFile(path, `${generateMasterKey()}\n`), false);
    assert.equal(readFileSync(path, 'utf8'), existing);
    assert.deepEqual(readdirSync(dir), ['master.key']);

    const fresh = join(dir, 'other.key');
    assert.equal(createKeyFile(fresh, 'x\n'), true);
    assert.equal(readFileSync(fresh, 'utf8'), 'x\n');
    if (POSIX) assert.equal(statSync(fresh).mode & 0o777, 0o600);
  });

  it('processes starting at once all end up with the one key that was created', async () => {
    const dataDir = join(tempDir(), 'data');
    const moduleUrl = new URL('./keyring.ts', import.meta.url).href;
    const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
    const startAt = Date.now() + 1500;
    const script = `
      const [moduleUrl, dataDir, startAt] = process.argv.slice(1);
      const { loadKeyring } = await import(moduleUrl);
      while (Date.now() < Number(startAt)) { /* line up with the other processes */ }
      const { keyring, source } = loadKeyring({ dataDir, allowCreate: true });
      process.stdout.write(JSON.stringify({ id: keyring.primary.id, source }));
    `;
    const run = (): Promise<{ id: string; source: string }> =>
      new Promise((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', '--input-type=module', '-e', script, moduleUrl, dataDir, String(startAt)],
          { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        let err = '';
        child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
        child.on('error', reject);
        child.on('close', (code) => {
          if (code === 0) resolve(JSON.parse(out) as { id: string; source: string });
          else reject(new Error(`child exited with ${code}: ${err}`));
        });
      });
    const results = await Promise.all(Array.from({ length: 6 }, run));
    const key = parseKeyFile(readFileSync(join(dataDir, 'master.key'), 'utf8'), 'master.key').primary;
    assert.deepEqual(new Set(results.map((result) => result.id)), new Set([masterKeyId(key)]));
    assert.equal(results.filter((result) => result.source === 'created').length, 1);
    assert.deepEqual(readdirSync(dataDir), ['master.key']);
  });

  it('refuses to start with no key when it may not create one', () => {
    const dataDir = join(tempDir(), 'data');
    const error = configErrorOf(() => loadKeyring(options(dataDir)));
    assert.equal(error.message, NO_KEY_MESSAGE);
    assert.equal(statSync(dataDir, { throwIfNoEntry: false }), undefined, 'nothing created');
  });

  it('takes the encryption key first, then the key file, then <dataDir>/master.key', () => {
    const dataDir = tempDir();
    const dataDirKey = generateMasterKey();
    writeFileSync(join(dataDir, 'master.key'), `${dataDirKey}\n`, { mode: 0o600 });
    const keyFile = join(tempDir(), 'keys');
    const fileKey = generateMasterKey();
    writeFileSync(keyFile, `${fileKey}\n`, { mode: 0o600 });
    const envKey = generateMasterKey();
    const id = (text: string): string => masterKeyId(Buffer.from(text, 'base64'));

    const fromEnv = loadKeyring(options(dataDir, { encryptionKey: envKey, keyFile, allowCreate: true }));
    assert.equal(fromEnv.source, 'env');
    assert.equal(fromEnv.path, undefined);
    assert.equal(fromEnv.keyring.primary.id, id(envKey));

    const fromFile = loadKeyring(options(dataDir, { keyFile }));
    assert.equal(fromFile.source, 'key-file');
    assert.equal(fromFile.path, keyFile);
    assert.equal(fromFile.keyring.primary.id, id(fileKey));

    const fromDataDir = loadKeyring(options(dataDir));
    assert.equal(fromDataDir.source, 'key-file');
    assert.equal(fromDataDir.keyring.primary.id, id(dataDirKey));
  });

  it('adds decryption keys to every source', () => {
    const old = [generateMasterKey(), generateMasterKey()];
    const oldIds = old.map((text) => masterKeyId(Buffer.from(text, 'base64')));
    const fileOld = generateMasterKey();
    const keyFile = join(tempDir(), 'keys');
    writeFileSync(keyFile, `${generateMasterKey()}\n${fileOld}\n`, { mode: 0o600 });

    const results = [
      loadKeyring(options(tempDir(), { encryptionKey: generateMasterKey(), decryptionKeys: old })),
      loadKeyring(options(tempDir(), { keyFile, decryptionKeys: old })),
      loadKeyring(options(tempDir(), { allowCreate: true, decryptionKeys: old })),
    ];
    assert.deepEqual(
      results.map((result) => result.source),
      ['env', 'key-file', 'created'],
    );
    for (const { keyring } of results) {
      for (const oldId of oldIds) assert.equal(keyring.get(oldId)?.primary, false);
    }
    assert.ok(results[1]!.keyring.get(masterKeyId(Buffer.from(fileOld, 'base64'))));
  });

  it('names a bad encryption or decryption key without echoing it', () => {
    const bad = randomBytes(31).toString('base64');
    const envError = configErrorOf(() => loadKeyring(options(tempDir(), { encryptionKey: bad })));
    assert.match(envError.message, /LATCHKEY_ENCRYPTION_KEY/);
    assert.ok(!envError.message.includes(bad));
    const decryptionError = configErrorOf(() =>
      loadKeyring(options(tempDir(), { encryptionKey: generateMasterKey(), decryptionKeys: [generateMasterKey(), bad] })),
    );
    assert.match(decryptionError.message, /Decryption key 2 /);
    assert.ok(!decryptionError.message.includes(bad));
  });

  it('explains how to fix a key file that is missing or unreadable', () => {
    const missing = join(tempDir(), 'absent.key');
    const error = configErrorOf(() => loadKeyring(options(tempDir(), { keyFile: missing, allowCreate: true })));
    assert.ok(error.message.includes(missing));
    assert.match(error.message, /does not exist.*--key-file.*latchkey keygen/);
    assert.equal(statSync(missing, { throwIfNoEntry: false }), undefined, 'a named key file is never created');

    const directory = tempDir();
    const unreadable = configErrorOf(() => loadKeyring(options(tempDir(), { keyFile: directory })));
    assert.ok(unreadable.message.includes(directory));
    assert.match(unreadable.message, /could not be read \(EISDIR\)/);
  });

  it('warns when a key file can be read by other users', { skip: !POSIX }, () => {
    const keyFile = join(tempDir(), 'keys');
    writeFileSync(keyFile, `${generateMasterKey()}\n`);
    chmodSync(keyFile, 0o644);
    const loose = captureLogger();
    loadKeyring(options(tempDir(), { keyFile, logger: loose.logger }));
    const warnings = loose.lines.filter((line) => line['level'] === 40);
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]!['msg']), /chmod 600/);

    chmodSync(keyFile, 0o600);
    const tight = captureLogger();
    loadKeyring(options(tempDir(), { keyFile, logger: tight.logger }));
    assert.equal(tight.lines.length, 0);
  });

  it('reports a bad line in <dataDir>/master.key by file and line', () => {
    const dataDir = tempDir();
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'master.key'), `# key\n${generateMasterKey()}\nbroken\n`, { mode: 0o600 });
    const error = configErrorOf(() => loadKeyring(options(dataDir, { allowCreate: true })));
    assert.equal(error.message, `The key file ${join(dataDir, 'master.key')} line 3 is not a 32-byte key encoded as base64.`);
  });
});
