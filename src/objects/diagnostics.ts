import { counted, describeSettings, isLatchkeyError, verb, type Settings, type SettingView } from '../core/index.js';
import type { Keyring } from '../crypto/index.js';
import { pendingMigrations, sqlitePath, type DatabaseHandle } from '../db/index.js';
import type { ObjectMaintenance } from './maintenance.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

/** One of `doctor`'s checks: what it found, in words, and how to fix it when it is not ok. */
export interface Finding {
  status: CheckStatus;
  check: string;
  message: string;
  fix?: string;
}

/** An error in words safe to show: a LatchkeyError's sentence, or the message and errno code. */
export function describeError(err: unknown): string {
  if (isLatchkeyError(err)) return err.message;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return code ? `${message} (${code})` : message;
}

/** What to do when the database cannot be reached, for the settings in use. */
export function databaseFix(settings: Pick<Settings, 'databaseUrl' | 'dataDir'>): string {
  return settings.databaseUrl
    ? 'check that PostgreSQL is running and that LATCHKEY_DATABASE_URL (--database-url) points at it.'
    : `check that ${settings.dataDir} is writable.`;
}

/** Where the settings put the database, in words (never the URL: it may hold a password). */
function databaseWhere(settings: Settings): string {
  return settings.databaseUrl ? 'PostgreSQL' : `SQLite at ${sqlitePath(settings.dataDir)}`;
}

/** The configuration check: the settings were valid (they were loaded), and where things are. */
export function configurationFinding(settings: Settings): Finding {
  return { status: 'ok', check: 'configuration', message: `valid; database: ${databaseWhere(settings)}; public URL ${settings.publicUrl}` };
}

/** The migrations check: the one check that needs only the database. */
export async function migrationFinding(database: DatabaseHandle): Promise<Finding> {
  const pending = await pendingMigrations(database);
  if (pending.length > 0) {
    return { status: 'fail', check: 'migrations', message: `${pending.length} pending (${pending.join(', ')})`, fix: 'run `latchkey migrate` (servers also migrate when they start).' };
  }
  return { status: 'ok', check: 'migrations', message: 'all applied' };
}

export interface StorageParts {
  database: DatabaseHandle;
  keyring: Keyring;
  maintenance: ObjectMaintenance;
}

export interface StorageCheckOptions {
  /** Also decrypt every object (slow on a large store). */
  scan?: boolean;
  onScanProgress?: (done: number, total: number) => void;
}

/**
 * The checks of an opened database with a loaded keyring: pending migrations, data keys wrapped by
 * missing or older master keys, objects still under retired data keys or at older model versions,
 * and with `scan`, objects that do not decrypt. `doctor` and `GET /doctor` both run these.
 *
 * @example
 * const findings = await storageFindings({ database, keyring, maintenance });
 */
export async function storageFindings(parts: StorageParts, options: StorageCheckOptions = {}): Promise<Finding[]> {
  const { database, keyring, maintenance } = parts;
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);
  const migrations = await migrationFinding(database);
  add(migrations);
  if (migrations.status !== 'ok') return findings;

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

  if (options.scan) {
    const result = await maintenance.scan(options.onScanProgress ? { onProgress: options.onScanProgress } : {});
    if (result.failures.length === 0) {
      add({ status: 'ok', check: 'scan', message: result.checked === 1 ? 'the 1 object decrypts' : `all ${result.checked} objects decrypt` });
    } else {
      add({
        status: 'fail',
        check: 'scan',
        message: `${result.failures.length} of ${counted(result.checked, 'object')} cannot be decrypted:\n${result.failures.map((f) => `    ${f.type} ${f.id}: ${f.code}`).join('\n')}`,
        fix: 'restore the missing master key, or delete or re-create those objects.',
      });
    }
  }
  return findings;
}

/** The running server's configuration and health, for its administrators. */
export interface Diagnostics {
  /** The effective configuration, secrets only as set or not set. */
  settings(): SettingView[];
  /** `doctor`'s checks against this process's own key and database (never `scan`: too slow for a request). */
  checks(): Promise<Finding[]>;
}

/**
 * @example
 * const diagnostics = createDiagnostics({ settings, database, keyring, maintenance });
 * for (const f of await diagnostics.checks()) console.log(f.status, f.check, f.message);
 */
export function createDiagnostics(options: StorageParts & { settings: Settings }): Diagnostics {
  const { settings, database, keyring } = options;
  return {
    settings: () => describeSettings(settings),
    async checks() {
      const extra = keyring.list().length - 1;
      const findings: Finding[] = [
        configurationFinding(settings),
        { status: 'ok', check: 'master key', message: `primary ${keyring.primary.id}${extra > 0 ? ` plus ${extra} decryption-only` : ''}` },
      ];
      try {
        await database.ping();
      } catch (err) {
        findings.push({ status: 'fail', check: 'database', message: `unreachable: ${describeError(err)}`, fix: 'check that the database is running and reachable from this server.' });
        return findings;
      }
      findings.push({ status: 'ok', check: 'database', message: `reachable (${database.dialect} at ${database.location})` });
      return [...findings, ...(await storageFindings(options))];
    },
  };
}
