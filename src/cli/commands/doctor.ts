import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { counted, isLatchkeyError, verb, type Settings } from '../../core/index.js';
import { DataKeys, loadKeyring, type Keyring } from '../../crypto/index.js';
import { openDatabase, pendingMigrations, sqlitePath, type DatabaseHandle } from '../../db/index.js';
import { builtinRegistry } from '../../latchkey.js';
import { EncryptedObjectStore, ObjectMaintenance } from '../../objects/index.js';
import { createProgress } from '../progress.js';
import { SERVER_SETTINGS, settingsFrom, withSettingsOptions } from '../settings-options.js';

type Status = 'ok' | 'warn' | 'fail';

interface Finding {
  status: Status;
  check: string;
  message: string;
  fix?: string;
}

const MARK: Record<Status, string> = { ok: '✔', warn: '!', fail: '✖' };

function describeError(err: unknown): string {
  if (isLatchkeyError(err)) return err.message;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return code ? `${message} (${code})` : message;
}

function databaseFix(settings: Settings): string {
  return settings.databaseUrl
    ? 'check that PostgreSQL is running and that LATCHKEY_DATABASE_URL (--database-url) points at it.'
    : `check that ${settings.dataDir} is writable.`;
}

/** Runs every check and reports each in plain words with how to fix it. */
async function diagnose(settings: Settings, scan: boolean): Promise<Finding[]> {
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);
  const where = settings.databaseUrl ? 'PostgreSQL' : `SQLite at ${sqlitePath(settings.dataDir)}`;
  add({ status: 'ok', check: 'configuration', message: `valid; database: ${where}; public URL ${settings.publicUrl}` });

  let keyring: Keyring | undefined;
  try {
    const loaded = loadKeyring({
      encryptionKey: settings.encryptionKey,
      decryptionKeys: settings.decryptionKeys,
      keyFile: settings.keyFile,
      dataDir: settings.dataDir,
      allowCreate: false,
    });
    keyring = loaded.keyring;
    const extra = keyring.list().length - 1;
    const from = loaded.source === 'env' ? 'LATCHKEY_ENCRYPTION_KEY' : loaded.path;
    add({
      status: 'ok',
      check: 'master key',
      message: `primary ${keyring.primary.id} from ${from}${extra > 0 ? ` plus ${extra} decryption-only` : ''}`,
    });
  } catch (err) {
    const embedded = !settings.databaseUrl && !settings.keyFile;
    add({
      status: embedded ? 'warn' : 'fail',
      check: 'master key',
      message: describeError(err),
      fix: embedded
        ? `the server creates ${settings.dataDir}/master.key on its first start; back it up once it exists.`
        : 'set LATCHKEY_ENCRYPTION_KEY or --key-file to the key the servers use (`latchkey keygen` makes a new one).',
    });
  }

  if (!settings.databaseUrl && !existsSync(sqlitePath(settings.dataDir))) {
    add({
      status: 'warn',
      check: 'database',
      message: `no database yet at ${sqlitePath(settings.dataDir)}`,
      fix: 'run `latchkey migrate` or start the server once; it creates the database.',
    });
    return findings;
  }

  let database: DatabaseHandle | undefined;
  try {
    database = openDatabase({ url: settings.databaseUrl, dataDir: settings.dataDir });
    await database.ping();
    add({ status: 'ok', check: 'database', message: `reachable (${database.dialect} at ${database.location})` });
  } catch (err) {
    add({ status: 'fail', check: 'database', message: `unreachable: ${describeError(err)}`, fix: databaseFix(settings) });
    await database?.close().catch(() => {});
    return findings;
  }

  try {
    const pending = await pendingMigrations(database);
    if (pending.length > 0) {
      add({
        status: 'fail',
        check: 'migrations',
        message: `${pending.length} pending (${pending.join(', ')})`,
        fix: 'run `latchkey migrate` (servers also migrate when they start).',
      });
      return findings;
    }
    add({ status: 'ok', check: 'migrations', message: 'all applied' });
    if (!keyring) return findings;

    const rows = await database.db
      .selectFrom('data_keys')
      .select(['master_key_id', ({ fn }) => fn.countAll<number>().as('n')])
      .groupBy('master_key_id')
      .execute();
    const missing = rows.filter((r) => !keyring.get(r.master_key_id));
    const old = rows.filter((r) => r.master_key_id !== keyring.primary.id && keyring.get(r.master_key_id));
    const sum = (of: typeof rows) => of.reduce((a, r) => a + Number(r.n), 0);
    const total = sum(rows);
    if (missing.length > 0) {
      add({
        status: 'fail',
        check: 'data keys',
        message: `${counted(sum(missing), 'data key')} ${verb(sum(missing), 'is', 'are')} wrapped by master keys that are not configured (${missing.map((r) => r.master_key_id).join(', ')}); their secrets cannot be decrypted`,
        fix: 'add those keys as decryption-only keys (LATCHKEY_DECRYPTION_KEYS or later lines of the key file).',
      });
    } else if (old.length > 0) {
      add({
        status: 'warn',
        check: 'data keys',
        message: `${sum(old)} of ${counted(total, 'data key')} ${verb(sum(old), 'is', 'are')} wrapped by an older master key`,
        fix: 'run `latchkey rekey` to rewrap them, then the old key can be removed.',
      });
    } else {
      add({ status: 'ok', check: 'data keys', message: `${counted(total, 'data key')}, ${verb(total, '', 'all ')}wrapped by the primary master key` });
    }

    const registry = builtinRegistry();
    const dataKeys = new DataKeys({ db: database.db, keyring });
    const store = new EncryptedObjectStore({ db: database.db, registry, dataKeys });
    const maintenance = new ObjectMaintenance({ db: database.db, registry, dataKeys, store });
    const underRetired = await maintenance.countUnderRetiredKeys();
    if (underRetired > 0) {
      add({
        status: 'warn',
        check: 'rekey',
        message: `${counted(underRetired, 'object')} ${verb(underRetired, 'is', 'are')} still sealed with retired data keys`,
        fix: 'run `latchkey rekey --data-keys` to finish the interrupted rekey.',
      });
    }
    const outdated = await maintenance.countOutdated();
    const outdatedTotal = Object.values(outdated).reduce((a, b) => a + b, 0);
    if (outdatedTotal > 0) {
      add({
        status: 'warn',
        check: 'model versions',
        message: `${counted(outdatedTotal, 'object')} ${verb(outdatedTotal, 'is', 'are')} at an older model version (they are upgraded on read)`,
        fix: 'run `latchkey migrate` to upgrade them all.',
      });
    }

    if (scan) {
      const progress = createProgress('Scanning objects');
      const result = await maintenance.scan({ onProgress: (d, t) => progress.update(d, t) });
      progress.stop();
      if (result.failures.length === 0) {
        add({ status: 'ok', check: 'scan', message: result.checked === 1 ? 'the 1 object decrypts' : `all ${result.checked} objects decrypt` });
      } else {
        add({
          status: 'fail',
          check: 'scan',
          message: `${result.failures.length} of ${counted(result.checked, 'object')} cannot be decrypted:\n${result.failures
            .map((f) => `    ${f.type} ${f.id}: ${f.code}`)
            .join('\n')}`,
          fix: 'restore the missing master key, or delete or re-create those objects.',
        });
      }
    }
  } finally {
    await database.close();
  }
  return findings;
}

export function doctorCommand(): Command {
  return withSettingsOptions(new Command('doctor'), SERVER_SETTINGS)
    .description('Check the configuration, the master key, the database and pending migrations, and say how to fix what is wrong.')
    .option('--scan', 'also try to decrypt every stored object and list those that fail, by type and id', false)
    .action(async (opts: { scan: boolean }, command: Command) => {
      let settings: Settings;
      try {
        settings = settingsFrom(command);
      } catch (err) {
        process.stdout.write(`${MARK.fail} configuration: ${describeError(err)}\n`);
        process.exitCode = 2;
        return;
      }
      const findings = await diagnose(settings, opts.scan);
      for (const f of findings) {
        process.stdout.write(`${MARK[f.status]} ${f.check}: ${f.message}\n`);
        if (f.fix) process.stdout.write(`    fix: ${f.fix}\n`);
      }
      const failed = findings.filter((f) => f.status === 'fail').length;
      const warned = findings.filter((f) => f.status === 'warn').length;
      process.stdout.write(failed > 0 ? `${counted(failed, 'problem')} found.\n` : warned > 0 ? `No problems; ${counted(warned, 'warning')}.\n` : 'Everything looks right.\n');
      if (failed > 0) process.exitCode = 1;
    });
}
