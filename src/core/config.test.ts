import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, loadSettings, type SettingsInput } from './index.js';

const root = mkdtempSync(join(tmpdir(), 'latchkey-config-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A fresh working directory with an optional config file in it. */
function workdir(config?: unknown): { cwd: string; file: string } {
  const cwd = mkdtempSync(join(root, 'cwd-'));
  const file = join(cwd, 'latchkey.json');
  if (config !== undefined) writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  return { cwd, file };
}

const key = () => randomBytes(32).toString('base64');
const password = () => randomBytes(18).toString('hex');

/** Asserts loadSettings refuses the input with exactly `message`, and that no `hidden` text is in it. */
function assertRefused(input: SettingsInput, message: string, hidden: string[] = []) {
  assert.throws(
    () => loadSettings(input),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.code, 'invalid_config');
      assert.equal(err.message, message);
      assertOneSentence(err.message);
      const text = `${err.message} ${JSON.stringify(err)} ${String(err.stack)}`;
      for (const h of hidden) assert.ok(!text.includes(h), `the error must not echo the secret value: ${err.message}`);
      return true;
    },
  );
}

/** One sentence: one line, a single full stop at the end and no sentence break before it. */
function assertOneSentence(message: string) {
  assert.ok(!message.includes('\n'), `one line: ${message}`);
  assert.match(message, /[^.]\.$/, `ends with one full stop: ${message}`);
  assert.doesNotMatch(message, /[.!?]\s+[A-Z]/, `no second sentence: ${message}`);
}

describe('loadSettings: defaults and precedence', () => {
  it('uses the defaults when nothing is set, resolving the data directory against cwd', () => {
    const { cwd } = workdir();
    const settings = loadSettings({ env: {}, flags: {}, cwd });
    assert.deepEqual(settings, {
      host: '127.0.0.1',
      port: 4400,
      dataDir: resolve(cwd, 'data'),
      databaseUrl: undefined,
      encryptionKey: undefined,
      decryptionKeys: [],
      keyFile: undefined,
      publicUrl: 'http://127.0.0.1:4400',
      logLevel: 'info',
      shutdownTimeoutMs: 10_000,
      cacheBoundMs: 5000,
      allowInsecureLoopback: false,
      trustProxy: [],
      egressAllow: [],
      taskCredentialType: 'native',
      taskCredentialIssuerUrl: undefined,
      taskCredentialIssuerSecret: undefined,
      invalidationIntervalMs: 300_000,
      invalidationDelayMs: 3_600_000,
      taskLeaseMs: 30_000,
      taskHeartbeatMs: 10_000,
      taskConcurrency: 10,
      outboundConcurrency: 10,
      configFile: undefined,
    });
  });

  it('derives the public URL from host and port, bracketing an IPv6 host', () => {
    const { cwd } = workdir();
    assert.equal(loadSettings({ env: { LATCHKEY_HOST: '0.0.0.0', LATCHKEY_PORT: '8080' }, cwd }).publicUrl, 'http://0.0.0.0:8080');
    assert.equal(loadSettings({ env: { LATCHKEY_HOST: '::1' }, cwd }).publicUrl, 'http://[::1]:4400');
    assert.equal(loadSettings({ env: { LATCHKEY_PUBLIC_URL: 'https://keys.example.com/' }, cwd }).publicUrl, 'https://keys.example.com');
  });

  it('takes flags over environment over config file over defaults, setting by setting', () => {
    const fileKey = key();
    const envKey = key();
    const flagKey = key();
    const { cwd, file } = workdir({
      host: '10.0.0.1',
      port: 1001,
      dataDir: 'from-file',
      logLevel: 'warn',
      encryptionKey: fileKey,
      shutdownTimeout: '1m',
      publicUrl: 'https://file.example.com',
    });
    const env = {
      LATCHKEY_CONFIG: file,
      LATCHKEY_PORT: '2002',
      LATCHKEY_DATA_DIR: 'from-env',
      LATCHKEY_LOG_LEVEL: 'debug',
      LATCHKEY_ENCRYPTION_KEY: envKey,
    };
    const flags = { port: '3003', encryptionKey: flagKey };

    const all = loadSettings({ flags, env, cwd });
    assert.equal(all.port, 3003, 'flag over env and file');
    assert.equal(all.encryptionKey, flagKey, 'flag over env and file');
    assert.equal(all.dataDir, resolve(cwd, 'from-env'), 'env over file');
    assert.equal(all.logLevel, 'debug', 'env over file');
    assert.equal(all.host, '10.0.0.1', 'file over default');
    assert.equal(all.shutdownTimeoutMs, 60_000, 'file over default');
    assert.equal(all.publicUrl, 'https://file.example.com');
    assert.equal(all.keyFile, undefined, 'default');
    assert.equal(all.configFile, file);

    const noFlags = loadSettings({ env, cwd });
    assert.equal(noFlags.port, 2002);
    assert.equal(noFlags.encryptionKey, envKey);

    const fileOnly = loadSettings({ env: { LATCHKEY_CONFIG: file }, cwd });
    assert.equal(fileOnly.port, 1001);
    assert.equal(fileOnly.dataDir, resolve(cwd, 'from-file'));
    assert.equal(fileOnly.logLevel, 'warn');
    assert.equal(fileOnly.encryptionKey, fileKey);

    // An empty environment variable counts as unset.
    assert.equal(loadSettings({ env: { LATCHKEY_CONFIG: file, LATCHKEY_PORT: '' }, cwd }).port, 1001);
  });

  it('finds the config file through --config before LATCHKEY_CONFIG, relative to cwd', () => {
    const { cwd, file } = workdir({ port: 1111 });
    mkdirSync(join(cwd, 'other'));
    writeFileSync(join(cwd, 'other', 'env.json'), JSON.stringify({ port: 2222 }));
    const settings = loadSettings({ flags: { config: 'latchkey.json' }, env: { LATCHKEY_CONFIG: 'other/env.json' }, cwd });
    assert.equal(settings.port, 1111);
    assert.equal(settings.configFile, file);
    assert.equal(loadSettings({ env: { LATCHKEY_CONFIG: 'other/env.json' }, cwd }).port, 2222);
  });

  it('parses every setting from its text form', () => {
    const { cwd } = workdir();
    const keys = [key(), key()];
    const pw = password();
    const settings = loadSettings({
      env: {
        LATCHKEY_DATABASE_URL: `postgres://latchkey:${pw}@db.internal:5432/latchkey`,
        LATCHKEY_DECRYPTION_KEYS: ` ${keys[0]} ,, ${keys[1]} `,
        LATCHKEY_KEY_FILE: 'keys/master.key',
        LATCHKEY_SHUTDOWN_TIMEOUT: '2500',
        LATCHKEY_PORT: ' 8443 ',
      },
      cwd,
    });
    assert.equal(settings.databaseUrl, `postgres://latchkey:${pw}@db.internal:5432/latchkey`);
    assert.deepEqual(settings.decryptionKeys, keys);
    assert.equal(settings.keyFile, resolve(cwd, 'keys/master.key'));
    assert.equal(settings.shutdownTimeoutMs, 2500);
    assert.equal(settings.port, 8443);
    const { cwd: cwd2, file } = workdir({ decryptionKeys: keys, shutdownTimeout: 750, port: 65535 });
    const fromFile = loadSettings({ flags: { config: file }, cwd: cwd2 });
    assert.deepEqual(fromFile.decryptionKeys, keys);
    assert.equal(fromFile.shutdownTimeoutMs, 750);
    assert.equal(fromFile.port, 65535);
  });

  it('takes the insecure-loopback opt-in from --allow-insecure-loopback, LATCHKEY_ALLOW_INSECURE_LOOPBACK or allowInsecureLoopback', () => {
    const { cwd, file } = workdir({ allowInsecureLoopback: true });
    assert.equal(loadSettings({ cwd }).allowInsecureLoopback, false);
    assert.equal(loadSettings({ flags: { allowInsecureLoopback: true }, cwd }).allowInsecureLoopback, true);
    for (const [text, value] of [['1', true], ['true', true], ['0', false], ['false', false]] as const) {
      assert.equal(loadSettings({ env: { LATCHKEY_ALLOW_INSECURE_LOOPBACK: text }, cwd }).allowInsecureLoopback, value, text);
    }
    assert.equal(loadSettings({ flags: { config: file }, cwd }).allowInsecureLoopback, true);
    assert.equal(loadSettings({ flags: { config: file }, env: { LATCHKEY_ALLOW_INSECURE_LOOPBACK: '0' }, cwd }).allowInsecureLoopback, false);
    assertRefused({ env: { LATCHKEY_ALLOW_INSECURE_LOOPBACK: 'yes' }, cwd }, 'LATCHKEY_ALLOW_INSECURE_LOOPBACK must be true or false (1 or 0), got "yes".');
  });
});

describe('loadSettings: bad values', () => {
  const portAccepts = 'must be a port number (1-65535)';

  it('names the port setting by its source: environment, flag or config file', () => {
    const { cwd, file } = workdir({ port: 'notaport' });
    assertRefused({ env: { LATCHKEY_PORT: 'notaport' }, cwd }, `LATCHKEY_PORT ${portAccepts}, got "notaport".`);
    assertRefused({ flags: { port: 'notaport' }, cwd }, `--port ${portAccepts}, got "notaport".`);
    assertRefused({ env: { LATCHKEY_CONFIG: file }, cwd }, `"port" in ${file} ${portAccepts}, got "notaport".`);
  });

  for (const [raw, shown] of [
    ['0', '"0"'],
    ['65536', '"65536"'],
    ['12abc', '"12abc"'],
    ['-1', '"-1"'],
    ['80.5', '"80.5"'],
  ] as const) {
    it(`refuses the port ${raw}`, () => {
      const { cwd } = workdir();
      assertRefused({ env: { LATCHKEY_PORT: raw }, cwd }, `LATCHKEY_PORT ${portAccepts}, got ${shown}.`);
    });
  }

  for (const [value, shown] of [
    [0, '"0"'],
    [65536, '"65536"'],
    [1.5, '"1.5"'],
    [true, '"true"'],
  ] as const) {
    it(`refuses the port ${JSON.stringify(value)} in the config file`, () => {
      const { cwd, file } = workdir({ port: value });
      assertRefused({ flags: { config: file }, cwd }, `"port" in ${file} ${portAccepts}, got ${shown}.`);
    });
  }

  it('refuses a host with spaces', () => {
    const { cwd } = workdir();
    assertRefused({ flags: { host: 'my host' }, cwd }, '--host must be a host name or IP address, got "my host".');
    assertRefused({ env: { LATCHKEY_HOST: 'exa mple.com' }, cwd }, 'LATCHKEY_HOST must be a host name or IP address, got "exa mple.com".');
  });

  it('refuses a public URL that is not http or https', () => {
    const { cwd, file } = workdir({ publicUrl: 'ftp://files.example.com' });
    const accepts = 'must be an absolute http:// or https:// URL';
    assertRefused({ env: { LATCHKEY_PUBLIC_URL: 'ftp://files.example.com' }, cwd }, `LATCHKEY_PUBLIC_URL ${accepts}, got "ftp://files.example.com".`);
    assertRefused({ flags: { publicUrl: '/relative' }, cwd }, `--public-url ${accepts}, got "/relative".`);
    assertRefused({ flags: { config: file }, cwd }, `"publicUrl" in ${file} ${accepts}, got "ftp://files.example.com".`);
  });

  it('refuses an unknown log level', () => {
    const { cwd } = workdir();
    assertRefused(
      { env: { LATCHKEY_LOG_LEVEL: 'loud' }, cwd },
      'LATCHKEY_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud".',
    );
  });

  it('reads the trusted proxies as addresses or CIDRs from a flag, the environment or a JSON list', () => {
    const { cwd, file } = workdir({ trustProxy: ['10.0.0.0/8', '::1'] });
    assert.deepEqual(loadSettings({ env: { LATCHKEY_TRUST_PROXY: ' 192.0.2.1, 2001:db8::/32 ' }, cwd }).trustProxy, ['192.0.2.1', '2001:db8::/32']);
    assert.deepEqual(loadSettings({ flags: { trustProxy: '127.0.0.1' }, env: { LATCHKEY_TRUST_PROXY: '10.0.0.1' }, cwd }).trustProxy, ['127.0.0.1']);
    assert.deepEqual(loadSettings({ flags: { config: file }, cwd }).trustProxy, ['10.0.0.0/8', '::1']);
  });

  it('refuses a trusted proxy that is not an address or CIDR', () => {
    const { cwd } = workdir();
    const accepts = 'must be a comma-separated list of proxy IP addresses or CIDRs (such as "10.0.0.0/8,::1")';
    for (const raw of ['proxy.example.com', '10.0.0.0/33', '10.0.0.1/8/8', '::1/129', '10.0.0/8', '10.0.0.0/']) {
      assertRefused({ env: { LATCHKEY_TRUST_PROXY: `10.0.0.1,${raw}` }, cwd }, `LATCHKEY_TRUST_PROXY ${accepts}, got "10.0.0.1,${raw}".`);
    }
    assertRefused({ flags: { trustProxy: 'everyone' }, cwd }, `--trust-proxy ${accepts}, got "everyone".`);
  });

  it('reads the egress allowlist as CIDRs, addresses and host names from a flag, the environment or a JSON list; default none', () => {
    const { cwd, file } = workdir({ egressAllow: ['10.1.0.0/16', 'idp.internal'] });
    assert.deepEqual(loadSettings({ cwd }).egressAllow, []);
    assert.deepEqual(loadSettings({ env: { LATCHKEY_EGRESS_ALLOW: ' 127.0.0.1/32, ::1/128 ,localhost' }, cwd }).egressAllow, ['127.0.0.1/32', '::1/128', 'localhost']);
    assert.deepEqual(loadSettings({ flags: { egressAllow: '192.0.2.7' }, env: { LATCHKEY_EGRESS_ALLOW: '10.0.0.1' }, cwd }).egressAllow, ['192.0.2.7']);
    assert.deepEqual(loadSettings({ flags: { config: file }, cwd }).egressAllow, ['10.1.0.0/16', 'idp.internal']);
  });

  it('refuses an egress allowlist entry that is neither a CIDR, an address nor a host name', () => {
    const { cwd } = workdir();
    const accepts = 'must be a comma-separated list of CIDRs, IP addresses and host names outbound requests may reach besides public addresses (such as "10.1.0.0/16,idp.internal")';
    for (const raw of ['10.0.0.0/33', '::1/129', '10.0.0/8', 'idp.internal/8', 'http://idp.internal', '*.internal', '10.0.0.256', 'a..b']) {
      assertRefused({ env: { LATCHKEY_EGRESS_ALLOW: `localhost,${raw}` }, cwd }, `LATCHKEY_EGRESS_ALLOW ${accepts}, got "localhost,${raw}".`);
    }
  });

  it('reads the task lease, heartbeat and concurrency from flags, the environment or the config file', () => {
    const { cwd, file } = workdir({ taskLease: '2m', taskHeartbeat: 15_000, taskConcurrency: 4 });
    const fromFile = loadSettings({ env: { LATCHKEY_CONFIG: file }, cwd });
    assert.deepEqual([fromFile.taskLeaseMs, fromFile.taskHeartbeatMs, fromFile.taskConcurrency], [120_000, 15_000, 4]);
    const fromEnv = loadSettings({ env: { LATCHKEY_CONFIG: file, LATCHKEY_TASK_LEASE: '45s', LATCHKEY_TASK_HEARTBEAT: '5s', LATCHKEY_TASK_CONCURRENCY: '32' }, cwd });
    assert.deepEqual([fromEnv.taskLeaseMs, fromEnv.taskHeartbeatMs, fromEnv.taskConcurrency], [45_000, 5000, 32]);
    const fromFlags = loadSettings({ flags: { taskLeaseMs: '1m', taskHeartbeatMs: '20s', taskConcurrency: '2' }, env: { LATCHKEY_TASK_CONCURRENCY: '32' }, cwd });
    assert.deepEqual([fromFlags.taskLeaseMs, fromFlags.taskHeartbeatMs, fromFlags.taskConcurrency], [60_000, 20_000, 2]);
    // A short lease alone brings the default heartbeat down to a third of it.
    assert.equal(loadSettings({ env: { LATCHKEY_TASK_LEASE: '6s' }, cwd }).taskHeartbeatMs, 2000);
  });

  it('reads the outbound concurrency from flags, the environment or the config file, and refuses it out of range', () => {
    const { cwd, file } = workdir({ outboundConcurrency: 25 });
    assert.equal(loadSettings({ env: { LATCHKEY_CONFIG: file }, cwd }).outboundConcurrency, 25);
    assert.equal(loadSettings({ env: { LATCHKEY_CONFIG: file, LATCHKEY_OUTBOUND_CONCURRENCY: '100' }, cwd }).outboundConcurrency, 100);
    assert.equal(loadSettings({ flags: { outboundConcurrency: '3' }, env: { LATCHKEY_OUTBOUND_CONCURRENCY: '100' }, cwd }).outboundConcurrency, 3);
    assertRefused({ env: { LATCHKEY_OUTBOUND_CONCURRENCY: '0' }, cwd }, 'LATCHKEY_OUTBOUND_CONCURRENCY must be a whole number from 1 to 1000, got "0".');
    assertRefused({ env: { LATCHKEY_OUTBOUND_CONCURRENCY: '1001' }, cwd }, 'LATCHKEY_OUTBOUND_CONCURRENCY must be a whole number from 1 to 1000, got "1001".');
    assertRefused({ flags: { outboundConcurrency: 'many' }, cwd }, '--outbound-concurrency must be a whole number from 1 to 1000, got "many".');
  });

  it('refuses a task lease, heartbeat or concurrency out of range, and a heartbeat not shorter than the lease', () => {
    const { cwd } = workdir();
    assertRefused({ env: { LATCHKEY_TASK_LEASE: '500ms' }, cwd }, 'LATCHKEY_TASK_LEASE must be a duration from 1s to 1h, such as "30s", got "500ms".');
    assertRefused({ flags: { taskLeaseMs: 'soon' }, cwd }, '--task-lease must be a duration from 1s to 1h, such as "30s", got "soon".');
    assertRefused({ env: { LATCHKEY_TASK_HEARTBEAT: '0' }, cwd }, 'LATCHKEY_TASK_HEARTBEAT must be a duration from 100ms to 30m, such as "10s", got "0".');
    assertRefused({ env: { LATCHKEY_TASK_CONCURRENCY: '0' }, cwd }, 'LATCHKEY_TASK_CONCURRENCY must be a whole number from 1 to 1000, got "0".');
    assertRefused({ env: { LATCHKEY_TASK_CONCURRENCY: '2.5' }, cwd }, 'LATCHKEY_TASK_CONCURRENCY must be a whole number from 1 to 1000, got "2.5".');
    assertRefused(
      { env: { LATCHKEY_TASK_LEASE: '10s', LATCHKEY_TASK_HEARTBEAT: '10s' }, cwd },
      'The task heartbeat (10000 ms, --task-heartbeat or LATCHKEY_TASK_HEARTBEAT) must be shorter than the task lease (10000 ms, --task-lease or LATCHKEY_TASK_LEASE).',
    );
  });

  it('refuses a shutdown timeout that is not a duration', () => {
    const { cwd, file } = workdir({ shutdownTimeout: 'soon' });
    const accepts = 'must be a duration such as "10s" or a number of milliseconds';
    assertRefused({ env: { LATCHKEY_SHUTDOWN_TIMEOUT: 'soon' }, cwd }, `LATCHKEY_SHUTDOWN_TIMEOUT ${accepts}, got "soon".`);
    assertRefused({ flags: { shutdownTimeoutMs: '-5s' }, cwd }, `--shutdown-timeout ${accepts}, got "-5s".`);
    assertRefused({ flags: { config: file }, cwd }, `"shutdownTimeout" in ${file} ${accepts}, got "soon".`);
  });

  it('refuses a non-PostgreSQL database URL without echoing it', () => {
    const pw = password();
    const url = `mysql://latchkey:${pw}@db.internal/latchkey`;
    const { cwd, file } = workdir({ databaseUrl: url });
    const accepts = 'must be a postgres:// or postgresql:// URL (leave it unset for SQLite in the data directory)';
    assertRefused({ env: { LATCHKEY_DATABASE_URL: url }, cwd }, `LATCHKEY_DATABASE_URL ${accepts}, got a value starting with "mysql://".`, [pw, 'db.internal']);
    assertRefused({ flags: { databaseUrl: url }, cwd }, `--database-url ${accepts}, got a value starting with "mysql://".`, [pw, 'db.internal']);
    assertRefused({ flags: { config: file }, cwd }, `"databaseUrl" in ${file} ${accepts}, got a value starting with "mysql://".`, [pw, 'db.internal']);
  });

  it('refuses a malformed PostgreSQL URL with a password without echoing the password', () => {
    const pw = password();
    const url = `postgres://latchkey:${pw}@db internal:5432/latchkey`;
    const { cwd } = workdir();
    assertRefused(
      { env: { LATCHKEY_DATABASE_URL: url }, cwd },
      'LATCHKEY_DATABASE_URL must be a postgres:// or postgresql:// URL (leave it unset for SQLite in the data directory), got a value starting with "postgres://".',
      [pw],
    );
    const noScheme = `latchkey:${pw}@db.internal/latchkey`;
    assertRefused(
      { env: { LATCHKEY_DATABASE_URL: noScheme }, cwd },
      `LATCHKEY_DATABASE_URL must be a postgres:// or postgresql:// URL (leave it unset for SQLite in the data directory), got a value of ${noScheme.length} characters.`,
      [pw],
    );
  });

  it('refuses an encryption key that is too short, without echoing it', () => {
    const short = randomBytes(16).toString('base64');
    const long = randomBytes(48).toString('base64');
    const notBase64 = `${randomBytes(31).toString('hex')}!!`;
    const { cwd, file } = workdir({ encryptionKey: short });
    const accepts = 'must be 32 bytes encoded as base64 (make one with `latchkey keygen`)';
    for (const bad of [short, long, notBase64]) {
      assertRefused({ env: { LATCHKEY_ENCRYPTION_KEY: bad }, cwd }, `LATCHKEY_ENCRYPTION_KEY ${accepts}, got a value of ${bad.length} characters.`, [bad]);
    }
    assertRefused({ flags: { encryptionKey: short }, cwd }, `--encryption-key ${accepts}, got a value of ${short.length} characters.`, [short]);
    assertRefused({ flags: { config: file }, cwd }, `"encryptionKey" in ${file} ${accepts}, got a value of ${short.length} characters.`, [short]);
  });

  it('refuses decryption keys with one bad entry, without echoing any of them', () => {
    const good = [key(), key()];
    const bad = randomBytes(20).toString('base64');
    const list = `${good[0]},${bad},${good[1]}`;
    const { cwd, file } = workdir({ decryptionKeys: [good[0], bad, good[1]] });
    const accepts = 'must be a comma-separated list of 32-byte base64 keys';
    const hidden = [...good, bad] as string[];
    assertRefused({ env: { LATCHKEY_DECRYPTION_KEYS: list }, cwd }, `LATCHKEY_DECRYPTION_KEYS ${accepts}, got a value of ${list.length} characters.`, hidden);
    assertRefused({ flags: { decryptionKeys: list }, cwd }, `--decryption-keys ${accepts}, got a value of ${list.length} characters.`, hidden);
    const asJson = JSON.stringify([good[0], bad, good[1]]);
    assertRefused({ flags: { config: file }, cwd }, `"decryptionKeys" in ${file} ${accepts}, got a value of ${asJson.length} characters.`, hidden);
  });

  it('refuses an empty data directory or key file given as a flag', () => {
    const { cwd } = workdir();
    assertRefused({ flags: { dataDir: ' ' }, cwd }, '--data-dir must be a directory path, got " ".');
    assertRefused({ flags: { keyFile: '' }, cwd }, '--key-file must be a file path, got "".');
  });
});

describe('loadSettings: the config file', () => {
  it('refuses an unknown key, naming it and the file', () => {
    const { cwd, file } = workdir({ port: 4401, prot: 4402 });
    assert.throws(
      () => loadSettings({ flags: { config: file }, cwd }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.code, 'invalid_config');
        assert.ok(err.message.startsWith(`The config file ${file} has an unknown setting "prot"; known settings are host, port, dataDir,`), err.message);
        assertOneSentence(err.message);
        return true;
      },
    );
  });

  it('does not echo the value held under an unknown key', () => {
    const misspelled = key();
    const { cwd, file } = workdir({ encryptionKy: misspelled });
    assert.throws(
      () => loadSettings({ flags: { config: file }, cwd }),
      (err: unknown) => err instanceof ConfigError && err.message.includes('"encryptionKy"') && !err.message.includes(misspelled),
    );
  });

  it('refuses invalid JSON without quoting its content', () => {
    const secret = key();
    const { cwd, file } = workdir(`{ "encryptionKey": "${secret}", }`);
    assertRefused({ flags: { config: file }, cwd }, `The config file ${file} must be a JSON object, but it is not valid JSON.`, [secret]);
  });

  it('refuses JSON that is not an object', () => {
    for (const content of ['[1, 2]', 'null', '"port"', '4400']) {
      const { cwd, file } = workdir(content);
      assertRefused({ flags: { config: file }, cwd }, `The config file ${file} must be a JSON object.`);
    }
  });

  it('refuses a config file it cannot read: missing, a directory, or under a file', () => {
    const { cwd } = workdir();
    const missing = join(cwd, 'missing.json');
    assertRefused({ flags: { config: missing }, cwd }, `The config file ${missing} could not be read; check that it exists and is readable.`);
    assertRefused({ env: { LATCHKEY_CONFIG: 'missing.json' }, cwd }, `The config file ${missing} could not be read; check that it exists and is readable.`);
    assertRefused({ flags: { config: cwd }, cwd }, `The config file ${cwd} could not be read; check that it exists and is readable.`);
    const { file } = workdir({ port: 4401 });
    const under = join(file, 'nested.json');
    assertRefused({ flags: { config: under }, cwd }, `The config file ${under} could not be read; check that it exists and is readable.`);
  });
});
