import { performance } from 'node:perf_hooks';
import type { Kysely } from 'kysely';
import type { Database, Invalidation, InvalidationBus } from '../db/index.js';
import type { Permission } from '../identity/index.js';
import type { UsagePolicy } from './usage.js';
import { rowRoles, rowUsagePolicy, type ApiKeyRow } from './view.js';

/** The permissions last worked out for a key, kept while the authorizer hands out the same sets. */
export interface PermissionMemo {
  owner: ReadonlySet<Permission>;
  roles: ReadonlySet<Permission> | null;
  set: ReadonlySet<Permission>;
  list: readonly Permission[];
}

/** What verification needs of a key row, decoded once per cache fill. */
export interface CachedKey {
  readonly found: true;
  readonly id: string;
  readonly tenantId: string;
  readonly ownerId: string;
  readonly roles: readonly string[] | null;
  readonly hash: Buffer;
  readonly previousHash: Buffer | null;
  /** Epoch ms until which `previousHash` is accepted (-Infinity when there is none). */
  readonly previousExpiresAtMs: number;
  /** Epoch ms (Infinity when the key never expires). */
  readonly expiresAtMs: number;
  readonly expiresAt: string | null;
  readonly revoked: boolean;
  readonly policy: UsagePolicy;
  permissions: PermissionMemo | undefined;
}

/** No key has this id (cached briefly, so floods of made-up ids do not all reach the database). */
export interface MissingKey {
  readonly found: false;
}

export type KeyEntry = CachedKey | MissingKey;

const MISSING: MissingKey = Object.freeze({ found: false });

type KeyColumns = Pick<
  ApiKeyRow,
  'id' | 'tenant_id' | 'owner_id' | 'roles' | 'hash' | 'previous_hash' | 'previous_expires_at' | 'expires_at' | 'revoked_at' | 'rate_limit' | 'credits_remaining' | 'credits_refill'
>;

function decode(row: KeyColumns): CachedKey {
  return {
    found: true,
    id: row.id,
    tenantId: row.tenant_id,
    ownerId: row.owner_id,
    roles: rowRoles(row),
    hash: Buffer.from(row.hash, 'hex'),
    previousHash: row.previous_hash === null ? null : Buffer.from(row.previous_hash, 'hex'),
    previousExpiresAtMs: row.previous_expires_at === null ? -Infinity : Date.parse(row.previous_expires_at),
    expiresAtMs: row.expires_at === null ? Infinity : Date.parse(row.expires_at),
    expiresAt: row.expires_at,
    revoked: row.revoked_at !== null,
    policy: rowUsagePolicy(row),
    permissions: undefined,
  };
}

export interface KeyCacheOptions {
  db: Kysely<Database>;
  /** Its `api_key` invalidations drop entries; entries live at most `boundMs`. */
  bus: InvalidationBus;
  /** How long "no such key" is remembered (default the smaller of 1 s and the bus bound). */
  negativeTtlMs?: number;
  /** Entries kept at most; the oldest goes first (default 100,000). */
  maxEntries?: number;
  /** Called for every key id an invalidation names (the verifier tells the usage gate). */
  onInvalidate?: (keyId: string) => void;
  /** Test seam: runs after a row is read and before it may be cached. */
  afterRead?: (keyId: string) => Promise<void> | void;
}

interface Slot {
  entry: KeyEntry;
  /** performance.now() after which the entry is not used. */
  staleAt: number;
}

/**
 * API key rows by key id, for verification. An entry is dropped by an `api_key` invalidation on
 * the bus and expires after the bus bound in any case, so a change made by any process is seen
 * within the bound even when a notification is lost. A row read while the bus applied any
 * invalidation is handed to that caller but not cached: a refill racing a revocation can never
 * bring the revoked key back.
 */
export class KeyCache {
  readonly #db: Kysely<Database>;
  readonly #bus: InvalidationBus;
  readonly #ttlMs: number;
  readonly #negativeTtlMs: number;
  readonly #maxEntries: number;
  readonly #onInvalidate: ((keyId: string) => void) | undefined;
  readonly #afterRead: ((keyId: string) => Promise<void> | void) | undefined;
  readonly #slots = new Map<string, Slot>();
  readonly #reads = new Map<string, { generation: number; promise: Promise<KeyEntry> }>();
  readonly #unsubscribe: () => void;

  constructor(options: KeyCacheOptions) {
    this.#db = options.db;
    this.#bus = options.bus;
    this.#ttlMs = options.bus.boundMs;
    this.#negativeTtlMs = options.negativeTtlMs ?? Math.min(1000, options.bus.boundMs);
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#onInvalidate = options.onInvalidate;
    this.#afterRead = options.afterRead;
    this.#unsubscribe = options.bus.subscribe((inv) => this.#invalidate(inv));
  }

  /** The cached entry, if there is a fresh one. No await: the hot path. */
  peek(id: string): KeyEntry | undefined {
    const slot = this.#slots.get(id);
    if (slot === undefined) return undefined;
    if (performance.now() > slot.staleAt) {
      this.#slots.delete(id);
      return undefined;
    }
    return slot.entry;
  }

  /**
   * Reads the key from the database. Concurrent callers share one read, but only callers that
   * arrive before any invalidation: a caller after one starts a fresh read.
   */
  load(id: string): Promise<KeyEntry> {
    const generation = this.#bus.generation;
    const pending = this.#reads.get(id);
    if (pending !== undefined && pending.generation === generation) return pending.promise;
    const promise = this.#read(id, generation).finally(() => {
      if (this.#reads.get(id)?.promise === promise) this.#reads.delete(id);
    });
    this.#reads.set(id, { generation, promise });
    return promise;
  }

  /** What is cached for `id`: a key, a remembered miss, or nothing. For tests and diagnostics. */
  state(id: string): 'key' | 'missing' | undefined {
    const entry = this.peek(id);
    return entry === undefined ? undefined : entry.found ? 'key' : 'missing';
  }

  get size(): number {
    return this.#slots.size;
  }

  close(): void {
    this.#unsubscribe();
    this.#slots.clear();
    this.#reads.clear();
  }

  async #read(id: string, generation: number): Promise<KeyEntry> {
    const row = await this.#db
      .selectFrom('api_keys')
      .select(['id', 'tenant_id', 'owner_id', 'roles', 'hash', 'previous_hash', 'previous_expires_at', 'expires_at', 'revoked_at', 'rate_limit', 'credits_remaining', 'credits_refill'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (this.#afterRead) await this.#afterRead(id);
    const entry = row === undefined ? MISSING : decode(row);
    if (this.#bus.generation === generation) {
      if (this.#slots.size >= this.#maxEntries) {
        const oldest = this.#slots.keys().next();
        if (!oldest.done) this.#slots.delete(oldest.value);
      }
      this.#slots.delete(id); // re-insert at the end: eviction order is fill order
      this.#slots.set(id, { entry, staleAt: performance.now() + (entry.found ? this.#ttlMs : this.#negativeTtlMs) });
    }
    return entry;
  }

  #invalidate(inv: Invalidation): void {
    if (inv.scope !== 'api_key') return; // permissions come from the authorizer, which has its own cache
    if (inv.subjectId === null) {
      for (const [id, slot] of this.#slots) if (!slot.entry.found || slot.entry.tenantId === inv.tenantId) this.#drop(id);
      return;
    }
    this.#drop(inv.subjectId);
  }

  #drop(id: string): void {
    this.#slots.delete(id);
    this.#reads.delete(id);
    this.#onInvalidate?.(id);
  }
}
