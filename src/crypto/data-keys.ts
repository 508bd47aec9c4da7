import { randomBytes } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { DecryptionError, newId, systemClock, type Clock, type Metrics } from '../core/index.js';
import { deleteDataKeyIfUnused, type Database } from '../db/index.js';
import { buildAad } from './aad.js';
import { CipherError, open, readKeyId, seal } from './cipher.js';
import type { Keyring } from './keyring.js';

/** An unwrapped tenant data key. Never logged, never serialised. */
export interface DataKey {
  id: string;
  tenantId: string;
  key: Buffer;
}

export interface DataKeysOptions {
  db: Kysely<Database>;
  keyring: Keyring;
  clock?: Clock;
  metrics?: Metrics;
  /**
   * How long a process keeps using the primary data key it last read before reading it again.
   * Bounds how long a process may go on sealing with a key that `rekey --data-keys` just retired.
   */
  primaryCacheMs?: number;
}

export interface RewrapReport {
  rewrapped: number;
  failures: { dataKeyId: string; reason: string }[];
}

const DATA_KEY_TYPE = 'data_key';

function wrapAad(id: string, tenantId: string): Buffer {
  return buildAad({ objectType: DATA_KEY_TYPE, objectId: id, tenantId, attribute: 'key', aadAttributes: {} });
}

/**
 * Envelope encryption: one random 256-bit data key per tenant, stored wrapped by the primary
 * master key. Objects are sealed with data keys; rotating the master key rewraps data keys only.
 */
export class DataKeys {
  readonly #db: Kysely<Database>;
  readonly #keyring: Keyring;
  readonly #clock: Clock;
  readonly #metrics: Metrics | undefined;
  readonly #primaryCacheMs: number;
  /** Unwrapped keys by id. A data key's bytes never change, so entries never go stale. */
  readonly #byId = new Map<string, DataKey>();
  readonly #primary = new Map<string, { key: DataKey; readAt: number }>();
  readonly #pending = new Map<string, Promise<DataKey>>();

  readonly #options: DataKeysOptions;

  constructor(options: DataKeysOptions) {
    this.#options = options;
    this.#db = options.db;
    this.#keyring = options.keyring;
    this.#clock = options.clock ?? systemClock;
    this.#metrics = options.metrics;
    this.#primaryCacheMs = options.primaryCacheMs ?? 5000;
  }
  /** The same data keys read and written through `db` (a transaction); unwrapped keys are shared. */
  on(db: Kysely<Database> | Transaction<Database>): DataKeys {
    const bound = new DataKeys({ ...this.#options, db: db as Kysely<Database> });
    for (const [id, key] of this.#byId) bound.#byId.set(id, key);
    return bound;
  }


  get primaryCacheMs(): number {
    return this.#primaryCacheMs;
  }

  /** The key to seal new values of a tenant with; created on first use. */
  async primaryFor(tenantId: string): Promise<DataKey> {
    const cached = this.#primary.get(tenantId);
    const now = this.#clock.now().getTime();
    if (cached && now - cached.readAt < this.#primaryCacheMs) return cached.key;
    let pending = this.#pending.get(tenantId);
    if (!pending) {
      pending = this.#loadPrimary(tenantId).finally(() => this.#pending.delete(tenantId));
      this.#pending.set(tenantId, pending);
    }
    return pending;
  }

  async #loadPrimary(tenantId: string): Promise<DataKey> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = await this.#db
        .selectFrom('data_keys')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('state', '=', 'primary')
        .executeTakeFirst();
      if (row) {
        const key = this.#unwrap(row.id, row.tenant_id, row.wrapped_key);
        this.#primary.set(tenantId, { key, readAt: this.#clock.now().getTime() });
        return key;
      }
      try {
        const created = await this.#insertPrimary(this.#db, tenantId);
        this.#primary.set(tenantId, { key: created, readAt: this.#clock.now().getTime() });
        return created;
      } catch {
        // Another process created the tenant's primary key first (unique index); read theirs.
      }
    }
    throw new DecryptionError(DATA_KEY_TYPE, tenantId, 'no primary data key could be created for the tenant');
  }

  async #insertPrimary(db: Kysely<Database>, tenantId: string): Promise<DataKey> {
    const id = newId('dk');
    const key = randomBytes(32);
    const master = this.#keyring.primary;
    const now = this.#clock.now().toISOString();
    const wrapped = seal(master.key, master.id, key, wrapAad(id, tenantId));
    this.#count('wrap', 'ok');
    await db
      .insertInto('data_keys')
      .values({
        id,
        tenant_id: tenantId,
        wrapped_key: wrapped,
        master_key_id: master.id,
        state: 'primary',
        created_at: now,
        updated_at: now,
      })
      .execute();
    const dataKey = { id, tenantId, key };
    this.#byId.set(id, dataKey);
    return dataKey;
  }

  /** The data key with this id, which must belong to the tenant. */
  async get(id: string, tenantId: string): Promise<DataKey> {
    const cached = this.#byId.get(id);
    if (cached) {
      if (cached.tenantId !== tenantId) throw new DecryptionError(DATA_KEY_TYPE, id, 'the data key belongs to another tenant');
      return cached;
    }
    const row = await this.#db.selectFrom('data_keys').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new DecryptionError(DATA_KEY_TYPE, id, 'the data key does not exist', { code: 'key_not_found' });
    if (row.tenant_id !== tenantId) throw new DecryptionError(DATA_KEY_TYPE, id, 'the data key belongs to another tenant');
    return this.#unwrap(row.id, row.tenant_id, row.wrapped_key);
  }

  /** A cached data key, without touching the database (for hot loops that warmed the cache). */
  peek(id: string): DataKey | undefined {
    return this.#byId.get(id);
  }

  #unwrap(id: string, tenantId: string, wrapped: string): DataKey {
    const cached = this.#byId.get(id);
    if (cached) return cached;
    let masterKeyId: string;
    try {
      masterKeyId = readKeyId(wrapped);
    } catch (err) {
      this.#count('unwrap', 'error');
      throw new DecryptionError(DATA_KEY_TYPE, id, 'the wrapped key is malformed', { cause: err });
    }
    const master = this.#keyring.get(masterKeyId);
    if (!master) {
      this.#count('unwrap', 'error');
      throw new DecryptionError(DATA_KEY_TYPE, id, `master key ${masterKeyId} is not in the keyring`, {
        code: 'key_not_found',
      });
    }
    let key: Buffer;
    try {
      key = open(master.key, wrapped, wrapAad(id, tenantId));
    } catch (err) {
      this.#count('unwrap', 'error');
      const reason = err instanceof CipherError ? err.reason.replace(/_/g, ' ') : 'unwrapping failed';
      throw new DecryptionError(DATA_KEY_TYPE, id, reason, { cause: err });
    }
    this.#count('unwrap', 'ok');
    const dataKey = { id, tenantId, key };
    this.#byId.set(id, dataKey);
    return dataKey;
  }

  /**
   * Makes a fresh primary data key for the tenant and retires the current one (which keeps
   * decrypting until no object uses it). One transaction, so the tenant always has one primary.
   */
  async rotate(tenantId: string): Promise<DataKey> {
    const created = await this.#db.transaction().execute(async (trx) => {
      const now = this.#clock.now().toISOString();
      await trx
        .updateTable('data_keys')
        .set({ state: 'retired', updated_at: now })
        .where('tenant_id', '=', tenantId)
        .where('state', '=', 'primary')
        .execute();
      return this.#insertPrimary(trx, tenantId);
    });
    this.#primary.set(tenantId, { key: created, readAt: this.#clock.now().getTime() });
    return created;
  }

  /**
   * Rotates the tenant's data key unless its primary was made at or after `since` (a rekey run
   * resumed after a crash rotates each tenant once). Returns whether it rotated.
   */
  async rotateIfOlderThan(tenantId: string, since: string): Promise<boolean> {
    const row = await this.#db
      .selectFrom('data_keys')
      .select('created_at')
      .where('tenant_id', '=', tenantId)
      .where('state', '=', 'primary')
      .executeTakeFirst();
    if (row && row.created_at >= since) return false;
    await this.rotate(tenantId);
    return true;
  }

  /** Tenants that hold at least one data key. */
  async tenants(): Promise<string[]> {
    const rows = await this.#db.selectFrom('data_keys').select('tenant_id').distinct().orderBy('tenant_id').execute();
    return rows.map((r) => r.tenant_id);
  }

  /** Ids of retired data keys. */
  async retiredIds(): Promise<string[]> {
    const rows = await this.#db.selectFrom('data_keys').select('id').where('state', '=', 'retired').execute();
    return rows.map((r) => r.id);
  }

  /** Deletes retired data keys that no object references any more. Returns how many went. */
  async pruneRetired(): Promise<number> {
    let deleted = 0;
    for (const id of await this.retiredIds()) {
      // The NOT EXISTS guard (and the foreign key) keep a key that an object still uses.
      if (await deleteDataKeyIfUnused(this.#db, id)) {
        deleted++;
        this.#byId.delete(id);
      }
    }
    return deleted;
  }

  /** How many data keys are wrapped by a master key other than the primary. */
  async countNotUnderPrimary(): Promise<number> {
    const row = await this.#db
      .selectFrom('data_keys')
      .select(({ fn }) => fn.countAll<number>().as('n'))
      .where('master_key_id', '!=', this.#keyring.primary.id)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Rewraps every data key that is not wrapped by the primary master key. Touches data keys only,
   * so it takes the same time for ten objects or ten million. Resumable: run it again after a
   * crash and it picks up the keys still under an old master key. Safe while servers run: the
   * unwrapped bytes do not change and each row is replaced with a compare-and-set.
   */
  async rewrapAll(onProgress?: (done: number, total: number) => void): Promise<RewrapReport> {
    const primary = this.#keyring.primary;
    const rows = await this.#db
      .selectFrom('data_keys')
      .select(['id', 'tenant_id', 'wrapped_key'])
      .where('master_key_id', '!=', primary.id)
      .orderBy('id')
      .execute();
    const report: RewrapReport = { rewrapped: 0, failures: [] };
    let done = 0;
    for (const row of rows) {
      try {
        const dataKey = this.#unwrap(row.id, row.tenant_id, row.wrapped_key);
        const wrapped = seal(primary.key, primary.id, dataKey.key, wrapAad(row.id, row.tenant_id));
        this.#count('wrap', 'ok');
        await this.#db
          .updateTable('data_keys')
          .set({ wrapped_key: wrapped, master_key_id: primary.id, updated_at: this.#clock.now().toISOString() })
          .where('id', '=', row.id)
          .where('wrapped_key', '=', row.wrapped_key)
          .execute();
        report.rewrapped++;
      } catch (err) {
        report.failures.push({
          dataKeyId: row.id,
          reason: err instanceof DecryptionError ? err.message : 'rewrapping failed',
        });
      }
      onProgress?.(++done, rows.length);
    }
    return report;
  }

  #count(op: 'wrap' | 'unwrap', outcome: 'ok' | 'error'): void {
    this.#metrics?.cryptoOperations.inc({ op, outcome });
  }
}
