import type { Kysely } from 'kysely';
import { counted, LatchkeyError, newId, systemClock, type Clock, type Metrics } from '../core/index.js';
import type { DataKeys } from '../crypto/index.js';
import type { Database } from '../db/index.js';
import type { ObjectTypeRegistry } from './registry.js';
import { ObjectSealer, type ObjectRow } from './sealer.js';
import { failureOf, type EncryptedObjectStore, type MaintenanceProgress, type MaintenanceReport, type ObjectFailure } from './store.js';

export interface RekeyDataKeysReport extends MaintenanceReport {
  /** This call finished a run that an earlier, interrupted call started. */
  resumed: boolean;
  rotatedTenants: number;
  prunedDataKeys: number;
  /** False while objects that failed still hold retired keys; the run is resumed next time. */
  finished: boolean;
}

/** What `rekey` did: the rewrap, and with `dataKeys` the rotation and re-encryption. */
export interface RekeyReport {
  dataKeysRewrapped: number;
  dataKeyFailures: { dataKeyId: string; reason: string }[];
  dataKeys?: {
    resumed: boolean;
    rotatedTenants: number;
    reencrypted: Record<string, number>;
    prunedDataKeys: number;
    finished: boolean;
  };
  failures: ObjectFailure[];
}

/** A rekey's phases, in order (`rotating` and later only with `dataKeys`). */
export type RekeyPhase = 'rewrapping' | 'rotating' | 'settling' | 'reencrypting' | 'pruning';

export interface RekeyOptions {
  /** Also give every tenant a fresh data key and re-encrypt every object (default false). */
  dataKeys?: boolean;
  batchSize?: number;
  /** How long servers may keep using a retired primary key (their cache bound). */
  settleMs?: number;
  onPhase?: (phase: RekeyPhase, detail: string) => void;
  /** Once the rewrap is done, with how many data keys it rewrapped. */
  onRewrapped?: (rewrapped: number) => void;
  /** Counts of the phase under way: data keys while `rewrapping`, objects while `reencrypting`. */
  onProgress?: (phase: 'rewrapping' | 'reencrypting', done: number, total: number) => void;
}

export interface ObjectMaintenanceOptions {
  db: Kysely<Database>;
  registry: ObjectTypeRegistry;
  dataKeys: DataKeys;
  store: EncryptedObjectStore;
  metrics?: Metrics;
  clock?: Clock;
}

/** Objects written at an older model version than the registry knows, by type. Needs no key. */
export async function countOutdatedObjects(db: Kysely<Database>, registry: ObjectTypeRegistry): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const type of registry.list()) {
    const row = await db
      .selectFrom('objects')
      .select(({ fn }) => fn.countAll<number>().as('n'))
      .where('type', '=', type.name)
      .where('model_version', '<', type.latest.version)
      .executeTakeFirstOrThrow();
    if (Number(row.n) > 0) out[type.name] = Number(row.n);
  }
  return out;
}

function emptyReport(): MaintenanceReport {
  return { byType: {}, failures: [] };
}

function tally(report: MaintenanceReport, type: string): void {
  report.byType[type] = (report.byType[type] ?? 0) + 1;
}

/**
 * Whole-store jobs: re-encrypting objects under retired data keys, upgrading model versions and
 * scanning for undecryptable objects. Each is resumable (it works from what the rows say, not from
 * a journal), safe while servers run (compare-and-set on each row), and ends with a report that
 * names failures by type and id only.
 */
export class ObjectMaintenance {
  readonly #db: Kysely<Database>;
  readonly #registry: ObjectTypeRegistry;
  readonly #dataKeys: DataKeys;
  readonly #store: EncryptedObjectStore;
  readonly #sealer: ObjectSealer;
  readonly #clock: Clock;

  constructor(options: ObjectMaintenanceOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#db = options.db;
    this.#registry = options.registry;
    this.#dataKeys = options.dataKeys;
    this.#store = options.store;
    this.#sealer = new ObjectSealer(options.dataKeys, options.metrics);
  }

  /** Objects whose secrets are sealed under a retired data key. */
  async countUnderRetiredKeys(): Promise<number> {
    const retired = await this.#dataKeys.retiredIds();
    if (retired.length === 0) return 0;
    const row = await this.#db
      .selectFrom('objects')
      .select(({ fn }) => fn.countAll<number>().as('n'))
      .where('data_key_id', 'in', retired)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Reseals every object still under a retired data key with its tenant's primary data key, in
   * batches (one transaction each). Crypto runs before each transaction opens, so a batch holds
   * the write lock only for its updates.
   */
  async reencryptUnderRetiredKeys(options: { batchSize?: number; onProgress?: MaintenanceProgress } = {}): Promise<MaintenanceReport> {
    const batchSize = options.batchSize ?? 500;
    const report = emptyReport();
    const failed = new Set<string>();
    const total = await this.countUnderRetiredKeys();
    let done = 0;
    // A write racing a pass may still land under a retired key (a server's primary-key cache);
    // later passes pick those up.
    for (let pass = 0; pass < 3; pass++) {
      const retired = await this.#dataKeys.retiredIds();
      if (retired.length === 0) break;
      let cursor = '';
      let touched = 0;
      for (;;) {
        const rows = await this.#db
          .selectFrom('objects')
          .selectAll()
          .where('data_key_id', 'in', retired)
          .where('id', '>', cursor)
          .orderBy('id')
          .limit(batchSize)
          .execute();
        if (rows.length === 0) break;
        cursor = rows[rows.length - 1]!.id;
        const updates: { row: ObjectRow; secrets: string; dataKeyId: string | null }[] = [];
        for (const row of rows) {
          if (failed.has(row.id)) continue;
          try {
            // Types this version does not know (a newer version's) are re-encrypted too.
            const type = this.#registry.has(row.type) ? this.#registry.get(row.type) : undefined;
            const resealed = await this.#sealer.reseal(type, row);
            updates.push({ row, secrets: resealed.secrets, dataKeyId: resealed.data_key_id });
          } catch (err) {
            failed.add(row.id);
            report.failures.push(failureOf(row.type, row.id, err));
          }
        }
        await this.#db.transaction().execute(async (trx) => {
          for (const u of updates) {
            // Same content, same revision: a concurrent writer's compare-and-set still applies.
            const result = await trx
              .updateTable('objects')
              .set({ secrets: u.secrets, data_key_id: u.dataKeyId })
              .where('id', '=', u.row.id)
              .where('revision', '=', u.row.revision)
              .executeTakeFirst();
            if (Number(result.numUpdatedRows) === 1) tally(report, u.row.type);
          }
        });
        touched += rows.length;
        done += rows.length;
        options.onProgress?.(Math.min(done, Math.max(total, done)), Math.max(total, done));
      }
      if (touched === 0 || (await this.countUnderRetiredKeys()) <= failed.size) break;
    }
    return report;
  }

  /**
   * `rekey --data-keys`: gives every tenant a fresh data key, waits until running servers have
   * stopped sealing with the old ones (their primary-key cache bound), re-encrypts every object,
   * and deletes the retired keys. A run interrupted by a crash is resumed by the next call: each
   * tenant is rotated once per run.
   */
  async rekeyDataKeys(options: {
    batchSize?: number;
    /** How long servers may keep using a retired primary key (their cache bound). */
    settleMs?: number;
    onPhase?: (phase: 'rotating' | 'settling' | 'reencrypting' | 'pruning', detail: string) => void;
    onProgress?: MaintenanceProgress;
  } = {}): Promise<RekeyDataKeysReport> {
    const db = this.#db;
    let run = await db
      .selectFrom('maintenance_runs')
      .selectAll()
      .where('kind', '=', 'rekey-data-keys')
      .where('finished_at', 'is', null)
      .orderBy('started_at')
      .executeTakeFirst();
    const resumed = run !== undefined;
    if (!run) {
      run = { id: newId('run'), kind: 'rekey-data-keys', started_at: this.#clock.now().toISOString(), finished_at: null };
      await db.insertInto('maintenance_runs').values(run).execute();
    }
    const tenants = await this.#dataKeys.tenants();
    options.onPhase?.('rotating', counted(tenants.length, 'tenant'));
    let rotatedTenants = 0;
    for (const tenant of tenants) {
      if (await this.#dataKeys.rotateIfOlderThan(tenant, run.started_at)) rotatedTenants++;
    }
    const settleMs = options.settleMs ?? this.#dataKeys.primaryCacheMs;
    if (settleMs > 0) {
      options.onPhase?.('settling', `${settleMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, settleMs));
    }
    options.onPhase?.('reencrypting', counted(await this.countUnderRetiredKeys(), 'object'));
    const report = await this.reencryptUnderRetiredKeys({ batchSize: options.batchSize, onProgress: options.onProgress });
    options.onPhase?.('pruning', 'retired data keys');
    const prunedDataKeys = await this.#dataKeys.pruneRetired();
    const finished = report.failures.length === 0;
    if (finished) {
      await db.updateTable('maintenance_runs').set({ finished_at: this.#clock.now().toISOString() }).where('id', '=', run.id).execute();
    }
    return { ...report, resumed, rotatedTenants, prunedDataKeys, finished };
  }

  /**
   * What `latchkey rekey` and the `latchkey.rekey` task run: rewraps every data key under the
   * primary master key, then with `dataKeys` rotates every tenant's data key and re-encrypts every
   * object ({@link rekeyDataKeys}). Resumable and safe while servers run; failures are in the
   * report by id, never a secret.
   *
   * @example
   * const report = await maintenance.rekey({ dataKeys: true, onProgress: (phase, done, total) => show(phase, done, total) });
   */
  async rekey(options: RekeyOptions = {}): Promise<RekeyReport> {
    options.onPhase?.('rewrapping', 'data keys');
    const rewrap = await this.#dataKeys.rewrapAll((done, total) => options.onProgress?.('rewrapping', done, total));
    const report: RekeyReport = { dataKeysRewrapped: rewrap.rewrapped, dataKeyFailures: rewrap.failures, failures: [] };
    options.onRewrapped?.(rewrap.rewrapped);
    if (!options.dataKeys) return report;
    const result = await this.rekeyDataKeys({
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
      ...(options.settleMs !== undefined ? { settleMs: options.settleMs } : {}),
      ...(options.onPhase ? { onPhase: options.onPhase } : {}),
      onProgress: (done, total) => options.onProgress?.('reencrypting', done, total),
    });
    report.dataKeys = { resumed: result.resumed, rotatedTenants: result.rotatedTenants, reencrypted: result.byType, prunedDataKeys: result.prunedDataKeys, finished: result.finished };
    report.failures = result.failures;
    return report;
  }

  /** Objects written at an older model version than this process knows, by type. */
  async countOutdated(): Promise<Record<string, number>> {
    return countOutdatedObjects(this.#db, this.#registry);
  }

  /** Rewrites every object of an older model version at the latest one. */
  async upgradeModelVersions(options: { onProgress?: MaintenanceProgress } = {}): Promise<MaintenanceReport> {
    const report = emptyReport();
    const total = Object.values(await this.countOutdated()).reduce((a, b) => a + b, 0);
    let done = 0;
    for (const type of this.#registry.list()) {
      let cursor = '';
      for (;;) {
        const rows = await this.#db
          .selectFrom('objects')
          .select(['id', 'tenant_id', 'revision'])
          .where('type', '=', type.name)
          .where('model_version', '<', type.latest.version)
          .where('id', '>', cursor)
          .orderBy('id')
          .limit(200)
          .execute();
        if (rows.length === 0) break;
        cursor = rows[rows.length - 1]!.id;
        for (const row of rows) {
          try {
            await this.#store.update(type.name, row.tenant_id, row.id, {}, { expectedRevision: row.revision });
            tally(report, type.name);
          } catch (err) {
            // A concurrent writer already rewrote it at the latest version.
            if (!(err instanceof LatchkeyError && err.code === 'conflict')) report.failures.push(failureOf(type.name, row.id, err));
          }
          done++;
          options.onProgress?.(done, total);
        }
      }
    }
    return report;
  }

  /** Tries to decrypt every object; lists those that fail, by type and id. */
  async scan(options: { onProgress?: MaintenanceProgress; batchSize?: number } = {}): Promise<{ checked: number; failures: ObjectFailure[] }> {
    const batchSize = options.batchSize ?? 500;
    const totalRow = await this.#db.selectFrom('objects').select(({ fn }) => fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const total = Number(totalRow.n);
    const failures: ObjectFailure[] = [];
    let checked = 0;
    let cursor = '';
    for (;;) {
      const rows = await this.#db.selectFrom('objects').selectAll().where('id', '>', cursor).orderBy('id').limit(batchSize).execute();
      if (rows.length === 0) break;
      cursor = rows[rows.length - 1]!.id;
      for (const row of rows) {
        try {
          const type = this.#registry.has(row.type) ? this.#registry.get(row.type) : undefined;
          await this.#sealer.open(type, row, JSON.parse(row.attributes) as Record<string, unknown>);
        } catch (err) {
          failures.push(failureOf(row.type, row.id, err));
        }
        checked++;
        options.onProgress?.(checked, total);
      }
    }
    return { checked, failures };
  }
}
