import type { Kysely, Transaction } from 'kysely';
import { LatchkeyError, systemClock, type Clock } from '../core/index.js';
import type { Database, Executor, InvalidationBus } from '../db/index.js';
import { isBuiltinRole, type Actor, type AuditLog, type Authorizer, type Permission } from '../identity/index.js';
import { generateApiKey, lastFour } from './format.js';
import type { ApiKeyHasher } from './hashing.js';
import {
  assertId,
  createApiKeyInput,
  listApiKeysInput,
  parseInput,
  rollApiKeyInput,
  type CreateApiKeyInput,
  type ListApiKeysInput,
  type RollApiKeyInput,
} from './validation.js';
import { rowRoles, toView, type ApiKeyRow, type ApiKeyView } from './view.js';

export interface ApiKeyServiceOptions {
  db: Kysely<Database>;
  /** Shared with the verifier, so the tenant's pepper is read once per process. */
  hasher: ApiKeyHasher;
  authorizer: Authorizer;
  audit: AuditLog;
  bus: InvalidationBus;
  clock?: Clock;
}

export interface CreateApiKeyOptions {
  /**
   * The permissions of the key the caller authenticated with, when it is a key: the new key gets
   * no more than these. When omitted and `actor.apiKeyId` is set, they are worked out here.
   */
  actorPermissions?: ReadonlySet<Permission>;
}

/** A key as issued: the whole key, to show its holder once, and its metadata. */
export interface IssuedApiKey {
  key: string;
  apiKey: ApiKeyView;
}

export interface ApiKeyPage {
  items: ApiKeyView[];
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string;
}

/** A task's key, made outside any transaction and written by `insert` in the task's own. */
export interface PreparedTaskKey {
  id: string;
  /** The whole key: the task's secret, stored encrypted with the task and never shown. */
  key: string;
  insert(trx: Executor): Promise<void>;
}

/** Creating, listing, rolling and revoking API keys. Verification is {@link ApiKeyVerifier}'s. */
export interface ApiKeyService {
  create(actor: Actor, tenantId: string, ownerId: string, input: CreateApiKeyInput, options?: CreateApiKeyOptions): Promise<IssuedApiKey>;
  list(tenantId: string, options?: ListApiKeysInput): Promise<ApiKeyPage>;
  get(tenantId: string, id: string): Promise<ApiKeyView>;
  roll(actor: Actor, tenantId: string, id: string, options?: RollApiKeyInput): Promise<IssuedApiKey>;
  revoke(actor: Actor, tenantId: string, id: string): Promise<ApiKeyView>;
  /**
   * Internal (task credentials): a key for task `taskId`, owned by the actor (a user), limited to
   * the roles of the key the actor calls with (so never more than the actor holds, and less once
   * the owner loses permissions). Checked and hashed here; `insert` writes it in the caller's
   * transaction, so the key exists exactly when the task does.
   */
  prepareTaskKey(actor: Actor, tenantId: string, input: { taskId: string; name: string }): Promise<PreparedTaskKey>;
  /** Internal (invalidation): revokes the tenant's keys among `ids` in one transaction; returns how many were still live. */
  revokeMany(actor: Actor, tenantId: string, ids: readonly string[], details?: Record<string, unknown>): Promise<number>;
}

type Db = Kysely<Database> | Transaction<Database>;

function notFound(id: string): LatchkeyError {
  // The same answer for an unknown id and another tenant's: ids are no oracle.
  return new LatchkeyError('not_found', `No API key with id ${JSON.stringify(id)} exists.`);
}

function sorted(permissions: Iterable<Permission>): Permission[] {
  return [...permissions].sort();
}

async function readKey(db: Db, tenantId: string, id: string): Promise<ApiKeyRow> {
  const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id).where('tenant_id', '=', tenantId).executeTakeFirst();
  if (!row) throw notFound(id);
  return row;
}

/**
 * @example
 * const keys = createApiKeyService({ db, hasher, authorizer: identity.authorizer, audit: identity.audit, bus });
 * const { key, apiKey } = await keys.create(actor, tenantId, userId, { name: 'ci', roles: ['viewer'] });
 * // show `key` once; apiKey.masked === 'lk_k…_…' + last 4
 * await keys.revoke(actor, tenantId, apiKey.id); // durable, every process refuses it within the bus bound
 */
export function createApiKeyService(options: ApiKeyServiceOptions): ApiKeyService {
  const { db, hasher, authorizer, audit, bus } = options;
  const clock = options.clock ?? systemClock;

  async function assertRolesExist(tenantId: string, roles: readonly string[]): Promise<void> {
    const custom = roles.filter((name) => !isBuiltinRole(name));
    if (custom.length === 0) return;
    const rows = await db.selectFrom('roles').select('name').where('tenant_id', '=', tenantId).where('name', 'in', custom).execute();
    const known = new Set(rows.map((r) => r.name));
    const unknown = custom.find((name) => !known.has(name));
    if (unknown !== undefined) {
      throw new LatchkeyError('validation_failed', `The API key is invalid: "roles" names an unknown role ${JSON.stringify(unknown)}.`, {
        details: { fields: [{ path: 'roles', message: `names an unknown role ${JSON.stringify(unknown)}` }] },
      });
    }
  }

  /** The current permissions of one of the tenant's keys (its owner's, narrowed by its roles). */
  async function keyPermissions(tenantId: string, keyId: string): Promise<ReadonlySet<Permission>> {
    const row = await db
      .selectFrom('api_keys')
      .select(['owner_id', 'roles', 'revoked_at'])
      .where('id', '=', keyId)
      .where('tenant_id', '=', tenantId)
      .executeTakeFirst();
    if (!row || row.revoked_at !== null) return new Set();
    const owner = await authorizer.userPermissions(tenantId, row.owner_id);
    if (!owner.active) return new Set();
    const roles = rowRoles(row);
    if (roles === null) return owner.permissions;
    const granted = await authorizer.rolePermissions(tenantId, roles);
    return new Set([...owner.permissions].filter((p) => granted.has(p)));
  }

  /** Refuses a key that would carry more than its owner, or than the key the actor calls with. */
  async function assertWithinLimits(actor: Actor, tenantId: string, ownerId: string, roles: readonly string[] | null, actorPermissions: ReadonlySet<Permission> | undefined) {
    const owner = await authorizer.userPermissions(tenantId, ownerId);
    if (!owner.active) {
      throw new LatchkeyError('forbidden', `User ${JSON.stringify(ownerId)} is disabled and cannot own new API keys.`);
    }
    const wanted = roles === null ? owner.permissions : await authorizer.rolePermissions(tenantId, roles);
    const beyondOwner = sorted([...wanted].filter((p) => !owner.permissions.has(p)));
    if (beyondOwner.length > 0) {
      throw new LatchkeyError('insufficient_permissions', `The API key would carry permissions its owner does not have: ${beyondOwner.join(', ')}.`, {
        details: { missing: beyondOwner },
      });
    }
    await assertActorHolds(actor, [...wanted].filter((p) => owner.permissions.has(p)), actorPermissions);
  }

  /**
   * Nobody mints or rolls a key that carries more than they hold: the calling key's own
   * permissions, a session's user's, or the actor's `permissions` (Kubernetes RBAC's escalation rule).
   */
  async function assertActorHolds(actor: Actor, carried: Iterable<Permission>, actorPermissions?: ReadonlySet<Permission>): Promise<void> {
    if (actor.type === 'system') return;
    if (actor.type === 'end_user') throw new LatchkeyError('insufficient_permissions', 'An end user cannot create or roll API keys.');
    const limit =
      actorPermissions ??
      actor.permissions ??
      (actor.apiKeyId !== undefined
        ? await keyPermissions(actor.tenantId, actor.apiKeyId)
        : (await authorizer.userPermissions(actor.tenantId, actor.userId)).permissions);
    const beyondActor = sorted([...carried].filter((p) => !limit.has(p)));
    if (beyondActor.length > 0) {
      const who = actor.apiKeyId !== undefined ? 'the calling API key does' : 'you do';
      throw new LatchkeyError('insufficient_permissions', `The API key would carry permissions ${who} not have: ${beyondActor.join(', ')}.`, {
        details: { missing: beyondActor },
      });
    }
  }

  async function newRow(
    tenantId: string,
    ownerId: string,
    valid: Omit<ReturnType<typeof createApiKeyInput.parse>, 'roles'> & { roles: string[] | null },
    task?: { taskId: string },
  ): Promise<{ id: string; key: string; row: ApiKeyRow }> {
    const { id, secret, key } = generateApiKey();
    const hash = await hasher.hash(tenantId, secret);
    const now = clock.now();
    const row: ApiKeyRow = {
      id,
      tenant_id: tenantId,
      owner_id: ownerId,
      name: valid.name,
      roles: valid.roles === null ? null : JSON.stringify(valid.roles),
      hash,
      previous_hash: null,
      previous_expires_at: null,
      last4: lastFour(key),
      expires_at: valid.expiresInMs === undefined ? null : new Date(now.getTime() + valid.expiresInMs).toISOString(),
      revoked_at: null,
      last_used_at: null,
      rate_limit: valid.rateLimit ? JSON.stringify({ limit: valid.rateLimit.limit, windowMs: valid.rateLimit.windowMs }) : null,
      credits_remaining: valid.credits ? valid.credits.remaining : null,
      credits_refill: valid.credits?.refill ? JSON.stringify({ amount: valid.credits.refill.amount, intervalMs: valid.credits.refill.intervalMs }) : null,
      credits_refilled_at: valid.credits?.refill ? now.toISOString() : null,
      meta: valid.meta === undefined ? null : JSON.stringify(valid.meta),
      kind: task ? 'task' : 'user',
      task_id: task?.taskId ?? null,
      created_at: now.toISOString(),
      updated_at: now.toISOString(),
    };
    return { id, key, row };
  }

  return {
    async create(actor, tenantId, ownerId, input, createOptions = {}) {
      assertId(tenantId, 'tenantId');
      assertId(ownerId, 'ownerId');
      const valid = parseInput(createApiKeyInput, input, 'API key');
      const owner = await db.selectFrom('users').select('id').where('id', '=', ownerId).where('tenant_id', '=', tenantId).executeTakeFirst();
      if (!owner) throw new LatchkeyError('not_found', `No user with id ${JSON.stringify(ownerId)} exists.`);
      const roles = valid.roles ? [...new Set(valid.roles)] : null;
      if (roles) await assertRolesExist(tenantId, roles);
      await assertWithinLimits(actor, tenantId, ownerId, roles, createOptions.actorPermissions);

      const { id, key, row } = await newRow(tenantId, ownerId, { ...valid, roles });
      // No invalidation is published: the id is new and random, so no process can hold an entry for it.
      await db.transaction().execute(async (trx) => {
        await trx.insertInto('api_keys').values(row).execute();
        await audit.record(trx, {
          tenantId,
          actor,
          action: 'api_key.created',
          target: id,
          details: { name: row.name, ownerId, roles, expiresAt: row.expires_at },
        });
      });
      return { key, apiKey: toView(row) };
    },

    async list(tenantId, listOptions = {}) {
      assertId(tenantId, 'tenantId');
      const valid = parseInput(listApiKeysInput, listOptions, 'API key list request');
      const limit = valid.limit ?? 50;
      let query = db.selectFrom('api_keys').selectAll().where('tenant_id', '=', tenantId).orderBy('id').limit(limit + 1);
      if (valid.ownerId !== undefined) query = query.where('owner_id', '=', valid.ownerId);
      if (valid.after !== undefined) query = query.where('id', '>', valid.after);
      const rows = await query.execute();
      const items = rows.slice(0, limit).map(toView);
      const last = items[items.length - 1];
      return rows.length > limit && last ? { items, next: last.id } : { items };
    },

    async get(tenantId, id) {
      assertId(tenantId, 'tenantId');
      assertId(id, 'id');
      return toView(await readKey(db, tenantId, id));
    },

    async roll(actor, tenantId, id, rollOptions = {}) {
      assertId(tenantId, 'tenantId');
      assertId(id, 'id');
      const gracePeriodMs = parseInput(rollApiKeyInput, rollOptions, 'API key roll request').gracePeriodMs ?? 0;
      const current = await readKey(db, tenantId, id);
      if (current.revoked_at !== null) throw new LatchkeyError('conflict', `The API key ${id} is revoked and cannot be rolled.`);
      // A key may roll itself; any other key it rolls carries no more than it does.
      if (!(actor.type === 'user' && actor.apiKeyId === id)) await assertActorHolds(actor, await keyPermissions(tenantId, id));

      const { secret, key } = generateApiKey(id);
      const hash = await hasher.hash(tenantId, secret);
      const now = clock.now();
      const previousExpiresAt = gracePeriodMs > 0 ? new Date(now.getTime() + gracePeriodMs).toISOString() : null;
      const row = await db.transaction().execute(async (trx) => {
        const result = await trx
          .updateTable('api_keys')
          // SET reads the row as it was: the old hash moves to previous_hash in the same statement.
          .set((eb) => ({
            hash,
            last4: lastFour(key),
            previous_hash: previousExpiresAt === null ? null : eb.ref('hash'),
            previous_expires_at: previousExpiresAt,
            updated_at: now.toISOString(),
          }))
          .where('id', '=', id)
          .where('tenant_id', '=', tenantId)
          .where('revoked_at', 'is', null)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) {
          await readKey(trx, tenantId, id); // not_found when it went away
          throw new LatchkeyError('conflict', `The API key ${id} is revoked and cannot be rolled.`);
        }
        await bus.publish(trx, { scope: 'api_key', tenantId, subjectId: id });
        await audit.record(trx, { tenantId, actor, action: 'api_key.rolled', target: id, details: { gracePeriodMs, previousExpiresAt } });
        return readKey(trx, tenantId, id);
      });
      bus.applyLocal({ scope: 'api_key', tenantId, subjectId: id });
      return { key, apiKey: toView(row) };
    },

    async prepareTaskKey(actor, tenantId, input) {
      if (actor.type !== 'user') throw new LatchkeyError('insufficient_permissions', 'Only a user (or one of their API keys) can grant a task its credentials.');
      assertId(tenantId, 'tenantId');
      const calling = actor.apiKeyId === undefined ? undefined : await db.selectFrom('api_keys').select('roles').where('id', '=', actor.apiKeyId).where('tenant_id', '=', tenantId).executeTakeFirst();
      const roles = calling ? rowRoles(calling) : null;
      const valid = parseInput(createApiKeyInput, { name: input.name }, 'task API key');
      await assertWithinLimits(actor, tenantId, actor.userId, roles, actor.permissions);
      const { id, key, row } = await newRow(tenantId, actor.userId, { ...valid, roles }, { taskId: input.taskId });
      return {
        id,
        key,
        async insert(trx) {
          await trx.insertInto('api_keys').values(row).execute();
          await audit.record(trx, { tenantId, actor, action: 'api_key.created', target: id, details: { name: row.name, ownerId: row.owner_id, roles, kind: 'task', taskId: input.taskId } });
        },
      };
    },

    async revokeMany(actor, tenantId, ids, details) {
      if (ids.length === 0) return 0;
      const now = clock.now().toISOString();
      const revoked = await db.transaction().execute(async (trx) => {
        const rows = await trx
          .updateTable('api_keys')
          .set({ revoked_at: now, updated_at: now })
          .where('tenant_id', '=', tenantId)
          .where('id', 'in', [...ids])
          .where('revoked_at', 'is', null)
          .returning('id')
          .execute();
        await bus.publishMany(trx, rows.map(({ id }) => ({ scope: 'api_key', tenantId, subjectId: id })));
        await audit.recordMany(trx, rows.map(({ id }) => ({ tenantId, actor, action: 'api_key.revoked', target: id, ...(details ? { details } : {}) })));
        return rows.length;
      });
      for (const id of ids) bus.applyLocal({ scope: 'api_key', tenantId, subjectId: id });
      return revoked;
    },

    async revoke(actor, tenantId, id) {
      assertId(tenantId, 'tenantId');
      assertId(id, 'id');
      const now = clock.now().toISOString();
      const row = await db.transaction().execute(async (trx) => {
        const result = await trx
          .updateTable('api_keys')
          .set({ revoked_at: now, updated_at: now })
          .where('id', '=', id)
          .where('tenant_id', '=', tenantId)
          .where('revoked_at', 'is', null)
          .executeTakeFirst();
        const changed = Number(result.numUpdatedRows) === 1;
        if (changed) {
          await bus.publish(trx, { scope: 'api_key', tenantId, subjectId: id });
          await audit.record(trx, { tenantId, actor, action: 'api_key.revoked', target: id });
        }
        // Revoking a revoked key is not an error: the caller wants it refused, and it is.
        return readKey(trx, tenantId, id);
      });
      // Committed: this process drops its cached entry now (even when another process revoked it
      // first and its invalidation is still on the way); others within the bus bound.
      bus.applyLocal({ scope: 'api_key', tenantId, subjectId: id });
      return toView(row);
    },
  };
}
