import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { counted, type Settings } from '../../core/index.js';
import { DataKeys, loadKeyring, type Keyring } from '../../crypto/index.js';
import { openDatabase, sqlitePath, type DatabaseHandle } from '../../db/index.js';
import { builtinRegistry } from '../../latchkey.js';
import { configurationFinding, databaseFix, describeError, EncryptedObjectStore, migrationFinding, ObjectMaintenance, storageFindings, type CheckStatus, type Finding } from '../../objects/index.js';
import { createProgress } from '../progress.js';
import { SERVER_SETTINGS, settingsFrom, withSettingsOptions } from '../settings-options.js';

const MARK: Record<CheckStatus, string> = { ok: '✔', warn: '!', fail: '✖' };

/** Runs every check and reports each in plain words with how to fix it. */
async function diagnose(settings: Settings, scan: boolean): Promise<Finding[]> {
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);
  add(configurationFinding(settings));

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
    if (!keyring) {
      // Without the key only the database's own state can be checked.
      add(await migrationFinding(database));
      return findings;
    }
    const registry = builtinRegistry();
    const dataKeys = new DataKeys({ db: database.db, keyring });
    const store = new EncryptedObjectStore({ db: database.db, registry, dataKeys });
    const maintenance = new ObjectMaintenance({ db: database.db, registry, dataKeys, store });
    const progress = scan ? createProgress('Scanning objects') : undefined;
    try {
      findings.push(...(await storageFindings({ database, keyring, maintenance }, { scan, ...(progress ? { onScanProgress: (d: number, t: number) => progress.update(d, t) } : {}) })));
    } finally {
      progress?.stop();
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
