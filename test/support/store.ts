import { randomBytes } from 'node:crypto';
import { createMetrics, type Metrics } from '../../src/core/index.js';
import { DataKeys, Keyring } from '../../src/crypto/index.js';
import type { DatabaseHandle, DialectName } from '../../src/db/index.js';
import { EncryptedObjectStore, ObjectMaintenance, ObjectTypeRegistry, type ObjectTypeDefinition } from '../../src/objects/index.js';
import { createTestDatabase, type TestDatabase } from './databases.js';

export interface StoreFixture {
  tdb: TestDatabase;
  handle: DatabaseHandle;
  keyring: Keyring;
  metrics: Metrics;
  dataKeys: DataKeys;
  registry: ObjectTypeRegistry;
  store: EncryptedObjectStore;
  maintenance: ObjectMaintenance;
  /** Another process's view of the same database: its own handle, caches and registry. */
  peer(options: { keyring?: Keyring; types?: ObjectTypeDefinition[] }): StoreFixture;
  dispose(): Promise<void>;
}

export function randomKey(): Buffer {
  return randomBytes(32);
}

function build(tdb: TestDatabase, handle: DatabaseHandle, keyring: Keyring, types: ObjectTypeDefinition[]): StoreFixture {
  const metrics = createMetrics({ processMetrics: false });
  const registry = new ObjectTypeRegistry();
  for (const type of types) registry.register(type);
  const dataKeys = new DataKeys({ db: handle.db, keyring, metrics, primaryCacheMs: 50 });
  const store = new EncryptedObjectStore({ db: handle.db, handle, registry, dataKeys, metrics });
  const maintenance = new ObjectMaintenance({ db: handle.db, registry, dataKeys, store, metrics });
  const fixture: StoreFixture = {
    tdb,
    handle,
    keyring,
    metrics,
    dataKeys,
    registry,
    store,
    maintenance,
    peer: (options) => build(tdb, tdb.open(), options.keyring ?? keyring, options.types ?? types),
    dispose: () => tdb.dispose(),
  };
  return fixture;
}

export async function createStoreFixture(dialect: DialectName, types: ObjectTypeDefinition[]): Promise<StoreFixture> {
  const tdb = await createTestDatabase(dialect);
  const handle = await tdb.openMigrated();
  return build(tdb, handle, new Keyring(randomKey()), types);
}
