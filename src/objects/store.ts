import type { Kysely, Transaction } from 'kysely';
import type { z } from 'zod';
import { LatchkeyError, newId, systemClock, type Clock, type Metrics } from '../core/index.js';
import type { DataKeys } from '../crypto/index.js';
import { claimRows, runTransaction, type Database, type DatabaseHandle, type TransactionOptions } from '../db/index.js';
import { typeNameOf, type Attributes, type AttributesOf, type ObjectType, type ObjectTypeRef, type ObjectTypeRegistry, type PlainAttributesOf } from './registry.js';
import { ObjectSealer, omit, type ObjectRow } from './sealer.js';

/** An object as the store hands it out. Ordinary reads carry no encrypted attribute. */
export interface StoredObject<A = Attributes> {
  id: string;
  type: string;
  tenantId: string;
  modelVersion: number;
  revision: number;
  createdAt: string;
  updatedAt: string;
  attributes: A;
}

/** What a list does when it meets an object it cannot decrypt. */
export type OnUndecryptable = 'fail' | 'skip';

export interface ListOptions {
  /** Decrypt encrypted attributes (default false: lists never decrypt unless asked). */
  decrypt?: boolean;
  onUndecryptable?: OnUndecryptable;
  limit?: number;
  /** Return objects with an id greater than this (keyset pagination). */
  after?: string;
}

export interface ObjectFailure {
  type: string;
  id: string;
  code: string;
  message: string;
}

export interface ListResult<A = Attributes> {
  items: StoredObject<A>[];
  /** Objects skipped because they could not be decrypted (only with onUndecryptable 'skip'). */
  failures: ObjectFailure[];
  /** Cursor for the next page, when there may be more. */
  next: string | undefined;
}

export interface UpdateOptions {
  /** Refuse with `conflict` unless the object is still at this revision. */
  expectedRevision?: number;
}

export interface MaintenanceProgress {
  (done: number, total: number): void;
}

export interface MaintenanceReport {
  /** Objects handled, by type. */
  byType: Record<string, number>;
  failures: ObjectFailure[];
}

export interface EncryptedObjectStoreOptions {
  db: Kysely<Database>;
  /** The database's capabilities, for {@link EncryptedObjectStore.transaction} (required by it). */
  handle?: DatabaseHandle;
  registry: ObjectTypeRegistry;
  dataKeys: DataKeys;
  clock?: Clock;
  metrics?: Metrics;
}

function validationError(type: string, error: z.ZodError): LatchkeyError {
  const fields = error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
  const first = fields[0];
  const where = first && first.path ? `"${first.path}" ${first.message.toLowerCase()}` : (first?.message ?? 'invalid');
  return new LatchkeyError('validation_failed', `The ${type} attributes are invalid: ${where}.`, { details: { fields } });
}

/** One transaction on the store: every object read and write, row locks, and the module's own rows. */
export interface ObjectTransaction {
  /** The store, reading and writing in this transaction (a nested `transaction` call reuses it). */
  readonly store: EncryptedObjectStore;
  /** The transaction itself, for the calling module's own rows (audit records, invalidations) in the same commit. */
  readonly db: Transaction<Database>;
  /**
   * Locks one object's row until the transaction ends, so that one holder at a time reads and
   * changes it (PostgreSQL `FOR UPDATE`, waiting at most the transaction's lock timeout; SQLite:
   * a write to the row, which takes the database's write lock at once). False when there is none.
   */
  lock(type: ObjectTypeRef, tenantId: string, id: string): Promise<boolean>;
  /**
   * Claims objects of the type that no other transaction holds (PostgreSQL `FOR UPDATE SKIP
   * LOCKED`; on SQLite the transaction is the only writer), decrypted, held until the transaction
   * ends: concurrent workers each take different objects and never wait for one another. Narrowed
   * to a tenant and to `ids` when given; least recently updated first; at most `limit` (default 100).
   * Objects that cannot be decrypted are in `failures`, still held.
   */
  claim<T extends ObjectTypeRef>(type: T, options?: ClaimOptions): Promise<ListResult<AttributesOf<T>>>;
  /**
   * Runs `fn` once the transaction has committed (never when it rolls back), in this process: what
   * may only follow a durable change, such as waking a worker for rows the transaction queued. `fn`
   * must not throw; a throw is ignored, since the change it follows is already committed.
   */
  afterCommit(fn: () => void): void;
}

export interface ClaimOptions {
  tenantId?: string;
  ids?: readonly string[];
  limit?: number;
}

export function failureOf(type: string, id: string, err: unknown): ObjectFailure {
  if (err instanceof LatchkeyError) return { type, id, code: err.code, message: err.message };
  return { type, id, code: 'internal_error', message: `Object ${type} ${id} could not be processed.` };
}

/**
 * The encrypted object store: every secret at rest is sealed with AES-256-GCM under the tenant's
 * data key, with AAD binding it to type, id, tenant, attribute name and the type's AAD attributes.
 *
 * @example
 * const created = await store.create('webhook', 'tenant_1', { url, signingSecret });
 * created.attributes.signingSecret;                 // undefined: ordinary reads strip secrets
 * (await store.getDecrypted('webhook', 'tenant_1', created.id)).attributes.signingSecret;
 */
export class EncryptedObjectStore {
  readonly #db: Kysely<Database>;
  readonly #registry: ObjectTypeRegistry;
  readonly #sealer: ObjectSealer;
  readonly #clock: Clock;
  readonly #options: EncryptedObjectStoreOptions;
  #tx: ObjectTransaction | undefined;

  constructor(options: EncryptedObjectStoreOptions) {
    this.#options = options;
    this.#db = options.db;
    this.#registry = options.registry;
    this.#sealer = new ObjectSealer(options.dataKeys, options.metrics);
    this.#clock = options.clock ?? systemClock;
  }

  get registry(): ObjectTypeRegistry {
    return this.#registry;
  }

  /**
   * Runs `fn` in one database transaction: objects created, updated and deleted through
   * `tx.store`, rows written through `tx.db` and locks taken with `tx.lock` commit together or
   * not at all (a throw rolls everything back). Data keys are read through the same transaction.
   *
   * @example
   * await store.transaction(async (tx) => {
   *   if (!(await tx.lock('oauth_connection', tenantId, id))) return;
   *   const current = await tx.store.getDecrypted('oauth_connection', tenantId, id);
   *   await tx.store.update('oauth_connection', tenantId, id, patch, { expectedRevision: current.revision });
   *   await tx.db.insertInto('audit_events').values(event).execute();
   * }, { lockTimeoutMs: 5000 });
   */
  async transaction<T>(fn: (tx: ObjectTransaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    if (this.#tx) return fn(this.#tx);
    const handle = this.#options.handle;
    if (!handle) throw new TypeError('This store was built without "handle"; it cannot open transactions.');
    const committed: Array<() => void> = [];
    const result = await runTransaction(
      handle,
      async (trx) => {
        const bound = new EncryptedObjectStore({ ...this.#options, db: trx, dataKeys: this.#options.dataKeys.on(trx) });
        const tx: ObjectTransaction = {
          store: bound,
          db: trx,
          lock: (type, tenantId, id) => lockRow(handle, trx, this.#type(type).name, tenantId, id),
          claim: (type, claimOptions) => bound.#claim(handle, trx, type, claimOptions ?? {}),
          afterCommit: (after) => void committed.push(after),
        };
        bound.#tx = tx;
        return fn(tx);
      },
      options,
    );
    for (const after of committed) {
      try {
        after();
      } catch {
        // Documented: the change is committed; a failing follow-up must not make it look failed.
      }
    }
    return result;
  }

  async create<T extends ObjectTypeRef>(typeRef: T, tenantId: string, attributes: AttributesOf<T>, options: { id?: string } = {}): Promise<StoredObject<PlainAttributesOf<T>>> {
    const type = this.#type(typeRef);
    const valid = this.#validate(type, attributes);
    const id = options.id ?? newId(type.name.replace(/_/g, '').slice(0, 12));
    const now = this.#clock.now().toISOString();
    const sealed = await this.#sealer.seal(type, tenantId, id, valid);
    // ON CONFLICT DO NOTHING, not a caught error: on PostgreSQL a failed statement aborts the
    // enclosing transaction, and a create that loses a race must leave the transaction usable.
    const inserted = await this.#db
      .insertInto('objects')
      .values({ id, type: type.name, tenant_id: tenantId, model_version: type.latest.version, ...sealed, created_at: now, updated_at: now })
      .onConflict((oc) => oc.column('id').doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!inserted) throw new LatchkeyError('conflict', `An object with id ${id} already exists.`);
    return typed(this.#view(type, { id, tenantId, version: type.latest.version, revision: 1, createdAt: now, updatedAt: now }, valid, false));
  }

  /** The object without its encrypted attributes. */
  async get<T extends ObjectTypeRef>(typeRef: T, tenantId: string, id: string): Promise<StoredObject<PlainAttributesOf<T>>> {
    const type = this.#type(typeRef);
    return typed(await this.#materialize(type, await this.#row(type, tenantId, id), false));
  }

  /** The object with its encrypted attributes decrypted. Throws DecryptionError if one fails. */
  async getDecrypted<T extends ObjectTypeRef>(typeRef: T, tenantId: string, id: string): Promise<StoredObject<AttributesOf<T>>> {
    const type = this.#type(typeRef);
    return typed(await this.#materialize(type, await this.#row(type, tenantId, id), true));
  }

  async list<T extends ObjectTypeRef, O extends ListOptions = ListOptions>(
    typeRef: T,
    tenantId: string,
    options?: O,
  ): Promise<ListResult<O extends { decrypt: true } ? AttributesOf<T> : PlainAttributesOf<T>>> {
    const type = this.#type(typeRef);
    options ??= {} as O;
    const limit = Math.min(Math.max(options.limit ?? 100, 1), 1000);
    let query = this.#db
      .selectFrom('objects')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('type', '=', type.name)
      .orderBy('id')
      .limit(limit);
    if (options.after !== undefined) query = query.where('id', '>', options.after);
    const rows = await query.execute();
    const result: ListResult = { items: [], failures: [], next: rows.length === limit ? rows[rows.length - 1]?.id : undefined };
    for (const row of rows) {
      try {
        result.items.push(await this.#materialize(type, row, options.decrypt ?? false));
      } catch (err) {
        if ((options.onUndecryptable ?? 'fail') === 'fail' || !(err instanceof LatchkeyError)) throw err;
        result.failures.push(failureOf(type.name, row.id, err));
      }
    }
    return typed(result);
  }

  /**
   * Merges `patch` into the object and writes it at the latest model version, resealing every
   * secret (AAD attributes may have changed). Compare-and-set on the revision: a concurrent write
   * is never lost.
   */
  async update<T extends ObjectTypeRef>(
    typeRef: T,
    tenantId: string,
    id: string,
    patch: Partial<AttributesOf<T>>,
    options: UpdateOptions = {},
  ): Promise<StoredObject<PlainAttributesOf<T>>> {
    const type = this.#type(typeRef);
    for (let attempt = 0; attempt < 5; attempt++) {
      const row = await this.#row(type, tenantId, id);
      if (row.model_version > type.latest.version) {
        // Rewriting it at an older version would drop what this version does not know.
        throw new LatchkeyError(
          'conflict',
          `The ${type.name} ${id} was written by a newer version of Latchkey; update it through an upgraded server.`,
        );
      }
      if (options.expectedRevision !== undefined && row.revision !== options.expectedRevision) {
        throw new LatchkeyError('conflict', `The ${type.name} ${id} was changed by someone else; read it again and retry.`);
      }
      // A patch that replaces every encrypted attribute needs none of the old ciphertext: so an
      // object whose secrets no longer decrypt (damaged, or its key lost) is repaired by new ones.
      const replacesSecrets = type.latest.attributesToEncrypt.every((name) => (patch as Attributes)[name] !== undefined);
      const current = await this.#materialize(type, row, !replacesSecrets);
      const valid = this.#validate(type, { ...current.attributes, ...patch });
      const sealed = await this.#sealer.seal(type, tenantId, id, valid);
      const now = this.#clock.now().toISOString();
      const result = await this.#db
        .updateTable('objects')
        .set({ ...sealed, model_version: type.latest.version, revision: row.revision + 1, updated_at: now })
        .where('id', '=', id)
        .where('tenant_id', '=', tenantId)
        .where('revision', '=', row.revision)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 1) {
        return typed(this.#view(type, { id, tenantId, version: type.latest.version, revision: row.revision + 1, createdAt: row.created_at, updatedAt: now }, valid, false));
      }
      if (options.expectedRevision !== undefined) {
        throw new LatchkeyError('conflict', `The ${type.name} ${id} was changed by someone else; read it again and retry.`);
      }
    }
    throw new LatchkeyError('conflict', `The ${type.name} ${id} is being changed too often to update; retry later.`);
  }

  /**
   * Deletes the object and returns it decrypted, in ONE statement (`DELETE ... RETURNING`): of two
   * concurrent calls exactly one gets it, and it is never read and deleted in two steps (for
   * single-use objects such as OAuth states). Without `tenantId` the id alone selects it (the id
   * must then be unguessable); the tenant is in the result. Undefined when there is none.
   */
  async consume<T extends ObjectTypeRef>(typeRef: T, id: string, options: { tenantId?: string } = {}): Promise<StoredObject<AttributesOf<T>> | undefined> {
    const type = this.#type(typeRef);
    let query = this.#db.deleteFrom('objects').where('id', '=', id).where('type', '=', type.name);
    if (options.tenantId !== undefined) query = query.where('tenant_id', '=', options.tenantId);
    const row = await query.returningAll().executeTakeFirst();
    return row ? typed(await this.#materialize(type, row, true)) : undefined;
  }

  /** Deletes every object of the type created at or before `cutoff`, in every tenant (expired single-use objects). Returns how many. */
  async deleteCreatedBefore(typeRef: ObjectTypeRef, cutoff: Date): Promise<number> {
    const type = this.#type(typeRef);
    // created_at is an ISO-8601 UTC string in both dialects, so text order is time order.
    const result = await this.#db.deleteFrom('objects').where('type', '=', type.name).where('created_at', '<=', cutoff.toISOString()).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Deletes the object. Returns false when there was none (in this tenant). */
  async delete(typeRef: ObjectTypeRef, tenantId: string, id: string): Promise<boolean> {
    const type = this.#type(typeRef);
    const result = await this.#db
      .deleteFrom('objects')
      .where('id', '=', id)
      .where('tenant_id', '=', tenantId)
      .where('type', '=', type.name)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async #claim<T extends ObjectTypeRef>(handle: DatabaseHandle, trx: Transaction<Database>, typeRef: T, options: ClaimOptions): Promise<ListResult<AttributesOf<T>>> {
    const type = this.#type(typeRef);
    if (options.ids?.length === 0) return { items: [], failures: [], next: undefined };
    let query = trx
      .selectFrom('objects')
      .selectAll()
      .where('type', '=', type.name)
      .orderBy('updated_at')
      .orderBy('id')
      .limit(Math.min(Math.max(options.limit ?? 100, 1), 1000));
    if (options.tenantId !== undefined) query = query.where('tenant_id', '=', options.tenantId);
    if (options.ids !== undefined) query = query.where('id', 'in', [...options.ids]);
    const rows = await claimRows(handle, query).execute();
    const result: ListResult = { items: [], failures: [], next: undefined };
    for (const row of rows) {
      try {
        result.items.push(await this.#materialize(type, row, true));
      } catch (err) {
        if (!(err instanceof LatchkeyError)) throw err;
        result.failures.push(failureOf(type.name, row.id, err));
      }
    }
    return typed(result);
  }

  /** The registered type; a definition must be the one registered under its name, so its types are the store's. */
  #type(ref: ObjectTypeRef): ObjectType {
    const type = this.#registry.get(typeNameOf(ref));
    if (typeof ref !== 'string' && ref.versions[ref.versions.length - 1]?.schema !== type.latest.schema) {
      throw new TypeError(`The definition of object type "${type.name}" passed to the store is not the one registered under that name.`);
    }
    return type;
  }

  async #row(type: ObjectType, tenantId: string, id: string): Promise<ObjectRow> {
    const row = await this.#db
      .selectFrom('objects')
      .selectAll()
      .where('id', '=', id)
      .where('tenant_id', '=', tenantId)
      .where('type', '=', type.name)
      .executeTakeFirst();
    // The same answer for "no such id" and "another tenant's id": ids are no oracle.
    if (!row) throw new LatchkeyError('not_found', `No ${type.name} with id ${id} exists.`);
    return row;
  }

  #validate(type: ObjectType, attributes: Attributes): Attributes {
    const parsed = type.latest.schema.safeParse(attributes);
    if (!parsed.success) throw validationError(type.name, parsed.error);
    return parsed.data as Attributes;
  }

  async #materialize(type: ObjectType, row: ObjectRow, decrypt: boolean): Promise<StoredObject> {
    const plain = JSON.parse(row.attributes) as Attributes;
    // A plain read still opens what another version sealed but this one keeps plain (a declared move).
    const latest = type.latest;
    const keptPlain = (name: string) => Object.hasOwn(latest.schema.shape, name) && !latest.attributesToEncrypt.includes(name);
    let attributes: Attributes = { ...plain, ...(await this.#sealer.open(type, row, plain, decrypt ? undefined : keptPlain)) };
    // Upgrade on read; objects from a newer version are read through the latest schema this
    // process knows (unknown attributes are dropped, the rolling-upgrade rules keep the rest).
    for (let v = row.model_version + 1; v <= type.latest.version; v++) {
      const step = type.version(v);
      if (step?.up) attributes = step.up(attributes);
    }
    const schema = decrypt ? type.latest.schema : type.latest.schema.omit(Object.fromEntries(type.latest.attributesToEncrypt.map((n) => [n, true])) as never);
    const parsed = schema.safeParse(attributes);
    if (!parsed.success) {
      throw new LatchkeyError('corrupt_object', `The ${type.name} ${row.id} does not match model version ${Math.min(row.model_version, type.latest.version)}.`);
    }
    return this.#view(type, { id: row.id, tenantId: row.tenant_id, version: row.model_version, revision: row.revision, createdAt: row.created_at, updatedAt: row.updated_at }, parsed.data as Attributes, decrypt);
  }

  #view(
    type: ObjectType,
    meta: { id: string; tenantId: string; version: number; revision: number; createdAt: string; updatedAt: string },
    attributes: Attributes,
    withSecrets: boolean,
  ): StoredObject {
    return {
      id: meta.id,
      type: type.name,
      tenantId: meta.tenantId,
      modelVersion: meta.version,
      revision: meta.revision,
      createdAt: meta.createdAt,
      updatedAt: meta.updatedAt,
      attributes: withSecrets ? attributes : omit(attributes, type.latest.attributesToEncrypt),
    };
  }

}

/**
 * Attributes leave the store only after its schema parsed them (`#validate` on writes,
 * `#materialize` on reads), so a typed definition's attributes are what its schema says: this is
 * the one place that states it to the compiler.
 */
function typed<T>(value: StoredObject | ListResult): T {
  return value as T;
}

async function lockRow(handle: DatabaseHandle, trx: Transaction<Database>, type: string, tenantId: string, id: string): Promise<boolean> {
  let query = trx.selectFrom('objects').select('id').where('id', '=', id).where('tenant_id', '=', tenantId).where('type', '=', type);
  // SQLite needs no lock: its transactions begin IMMEDIATE, holding the one write lock already.
  if (handle.supportsRowLocks) query = query.forUpdate();
  return (await query.executeTakeFirst()) !== undefined;
}
