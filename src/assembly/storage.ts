import { counted, LatchkeyError, type Clock, type Logger, type Metrics, type Settings } from '../core/index.js';
import { DataKeys, loadKeyring, type Keyring } from '../crypto/index.js';
import { migrateToLatest, openDatabase, pendingMigrations, registerDatabaseMetrics, type DatabaseHandle } from '../db/index.js';
import { databaseFix, describeError, EncryptedObjectStore, ObjectMaintenance, type ObjectTypeRegistry } from '../objects/index.js';

/** The key, the database and the encrypted object store on it: what every command needs. */
export interface Storage {
  keyring: Keyring;
  database: DatabaseHandle;
  dataKeys: DataKeys;
  store: EncryptedObjectStore;
  maintenance: ObjectMaintenance;
}

export interface StorageOptions {
  settings: Settings;
  registry: ObjectTypeRegistry;
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
  /** Apply pending migrations (true) or refuse to start while any is pending (false). */
  migrate: boolean;
  /** May create `<dataDir>/master.key` when no key is configured. */
  allowKeyCreation: boolean;
}

/**
 * The configured database, opened and reached once: an unreachable one is a `database_error` that
 * says where it was looked for (never the URL's password) and which setting to check, rather than
 * the driver's own words ("connect ECONNREFUSED 127.0.0.1:5432").
 *
 * @example
 * const database = await connectDatabase(settings);
 */
export async function connectDatabase(settings: Pick<Settings, 'databaseUrl' | 'dataDir'>): Promise<DatabaseHandle> {
  const database = openDatabase({ url: settings.databaseUrl, dataDir: settings.dataDir });
  try {
    await database.ping();
  } catch (err) {
    await database.close().catch(() => {});
    throw new LatchkeyError('database_error', `Latchkey cannot reach the database (${database.dialect} at ${database.location}: ${describeError(err)}); ${databaseFix(settings)}`, { cause: err });
  }
  return database;
}

/**
 * Loads the master key, opens the database and migrates it (or checks that it is migrated), then
 * builds the encrypted object store. Nothing runs in the background; the caller closes
 * `database`. A failure closes what was opened.
 *
 * @example
 * const storage = await openStorage({ settings, registry, logger, clock, metrics, migrate: true, allowKeyCreation: false });
 * await storage.store.create('note', tenantId, { body });
 * await storage.database.close();
 */
export async function openStorage(options: StorageOptions): Promise<Storage> {
  const { settings, logger, clock, metrics, registry } = options;
  const { keyring } = loadKeyring({
    encryptionKey: settings.encryptionKey,
    decryptionKeys: settings.decryptionKeys,
    keyFile: settings.keyFile,
    dataDir: settings.dataDir,
    allowCreate: options.allowKeyCreation,
    logger,
  });
  const database = await connectDatabase(settings);
  try {
    if (options.migrate) {
      await migrateToLatest(database, (name) => logger.info({ migration: name }, `Applied migration ${name}.`));
    } else {
      const pending = await pendingMigrations(database);
      if (pending.length > 0) {
        throw new LatchkeyError('invalid_request', `The database has ${counted(pending.length, 'pending migration')}; run \`latchkey migrate\` first.`);
      }
    }
  } catch (err) {
    await database.close();
    throw err;
  }
  registerDatabaseMetrics(metrics.registry, database);
  const dataKeys = new DataKeys({ db: database.db, keyring, clock, metrics });
  const store = new EncryptedObjectStore({ db: database.db, handle: database, registry, dataKeys, clock, metrics });
  const maintenance = new ObjectMaintenance({ db: database.db, registry, dataKeys, store, metrics, clock });
  return { keyring, database, dataKeys, store, maintenance };
}
