import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { systemClock, type Clock, type Logger } from '../core/index.js';
import type { Database, InvalidationBus } from '../db/index.js';
import type { AuditLog, Authorizer, Permission, UserPermissions } from '../identity/index.js';
import { FailureMonitor } from './failure-monitor.js';
import { parseApiKey } from './format.js';
import { hashesEqual, keyedHash, type ApiKeyHasher } from './hashing.js';
import { KeyCache, type CachedKey, type PermissionMemo } from './key-cache.js';
import type { UsageDecision, UsageGate } from './usage.js';

export type VerifyCode =
  | 'valid'
  | 'not_found'
  | 'revoked'
  | 'expired'
  | 'disabled_owner'
  | 'insufficient_permissions'
  | 'rate_limited'
  | 'usage_exceeded';

/**
 * The answer of a verification. Only `not_found` is given for a key that does not exist, has the
 * wrong shape or checksum, or does not match its secret, with no other field: the answer never
 * tells whether a key id exists. The other codes are given only to a caller holding the secret.
 */
export interface VerifyResult {
  valid: boolean;
  code: VerifyCode;
  keyId?: string;
  tenantId?: string;
  ownerId?: string;
  /** The key's current permissions: its owner's, narrowed by its roles. Sorted. */
  permissions?: readonly Permission[];
  expiresAt?: string | null;
  /** Credits left after this request, when the key has credits. */
  remaining?: number;
  rateLimit?: UsageDecision['rateLimit'];
  /** With `rate_limited` (and `usage_exceeded` when credits refill): when to try again. */
  retryAfterMs?: number;
}

export interface VerifyOptions {
  /** Permissions the request needs; the key must carry all of them. */
  permissions?: readonly Permission[];
  /** Count this request against the key's rate limit and credits, and note the key as used (default true). */
  consume?: boolean;
  /**
   * Only a key of this tenant: another tenant's key answers exactly like an unknown one (`not_found`, after the
   * same keyed hash) and is neither counted against its limits nor recorded as a failure of that tenant.
   */
  tenantId?: string;
}

export interface ApiKeyVerifierOptions {
  db: Kysely<Database>;
  hasher: ApiKeyHasher;
  authorizer: Authorizer;
  /** Must be started: its invalidations are how revocations reach this process. */
  bus: InvalidationBus;
  audit: AuditLog;
  /** Rate limits and credits; when absent, no limits apply. */
  usage?: UsageGate;
  clock?: Clock;
  logger?: Logger;
  cache?: { negativeTtlMs?: number; maxEntries?: number };
  failures?: { threshold?: number; windowMs?: number };
  /** Test seam: runs after a key row is read from the database and before it may be cached. */
  afterRead?: (keyId: string) => Promise<void> | void;
}

// Hashed against on a miss, so an unknown id costs the same HMAC as a wrong secret.
const DECOY_PEPPER = randomBytes(32);

function notFound(): VerifyResult {
  return { valid: false, code: 'not_found' };
}

function narrow(entry: CachedKey, owner: ReadonlySet<Permission>, roles: ReadonlySet<Permission> | null): PermissionMemo {
  // The authorizer hands out the same set objects while nothing changed: reuse the last answer.
  const memo = entry.permissions;
  if (memo !== undefined && memo.owner === owner && memo.roles === roles) return memo;
  const set = roles === null ? owner : new Set([...owner].filter((p) => roles.has(p)));
  const fresh: PermissionMemo = { owner, roles, set, list: Object.freeze([...set].sort()) };
  entry.permissions = fresh;
  return fresh;
}

/**
 * Verifies API keys: shape and checksum (no lookup for a bad one), cached row by key id, keyed hash
 * compared in constant time, expiry, revocation, owner active, permissions (the owner's current
 * ones narrowed by the key's roles), then rate limit and credits together. Nothing on this path
 * writes to the database synchronously.
 *
 * @example
 * const verifier = new ApiKeyVerifier({ db, hasher, authorizer, bus, audit, usage });
 * const result = await verifier.verify(key, { permissions: ['connectors:read'] });
 * if (!result.valid) reply.code(result.code === 'rate_limited' ? 429 : 401);
 */
export class ApiKeyVerifier {
  readonly #hasher: ApiKeyHasher;
  readonly #authorizer: Authorizer;
  readonly #usage: UsageGate | undefined;
  readonly #clock: Clock;
  readonly #cache: KeyCache;
  readonly #failures: FailureMonitor;

  constructor(options: ApiKeyVerifierOptions) {
    this.#hasher = options.hasher;
    this.#authorizer = options.authorizer;
    this.#usage = options.usage;
    this.#clock = options.clock ?? systemClock;
    const usage = options.usage;
    this.#cache = new KeyCache({
      db: options.db,
      bus: options.bus,
      negativeTtlMs: options.cache?.negativeTtlMs,
      maxEntries: options.cache?.maxEntries,
      onInvalidate: usage ? (keyId) => usage.forget(keyId) : undefined,
      afterRead: options.afterRead,
    });
    const logger = options.logger;
    this.#failures = new FailureMonitor({
      db: options.db,
      audit: options.audit,
      clock: this.#clock,
      threshold: options.failures?.threshold,
      windowMs: options.failures?.windowMs,
      onError: (err) => logger?.warn({ err }, 'Could not record a burst of failed API key verifications.'),
    });
  }

  async verify(key: string, options?: VerifyOptions): Promise<VerifyResult> {
    return this.verifyCached(key, options) ?? this.#verifyThrough(key, options);
  }

  /**
   * {@link verify} without waiting for anything, when this process has everything the answer
   * needs cached (the key, its tenant's pepper, its owner's and roles' permissions) and the key
   * has no rate limit or credits to count; undefined otherwise, before any work or side effect,
   * so that the caller then awaits {@link verify}. The same checks in the same order: only where
   * the inputs come from differs.
   *
   * @example
   * const result = verifier.verifyCached(key) ?? (await verifier.verify(key));
   */
  verifyCached(key: string, options?: VerifyOptions): VerifyResult | undefined {
    const parsed = parseApiKey(key);
    if (parsed === undefined) return notFound();
    const entry = this.#cache.peek(parsed.id);
    if (entry === undefined) return undefined;
    if (!entry.found || (options?.tenantId !== undefined && entry.tenantId !== options.tenantId)) return this.#decoy(parsed.secret);
    const pepper = this.#hasher.peek(entry.tenantId);
    const owner = this.#authorizer.peekUserPermissions(entry.tenantId, entry.ownerId);
    const roles = entry.roles === null ? null : this.#authorizer.peekRolePermissions(entry.tenantId, entry.roles);
    if (pepper === undefined || owner === undefined || roles === undefined || this.#counts(entry, options)) return undefined;
    return this.#check(entry, parsed.secret, pepper) ?? this.#grant(entry, owner, roles, options);
  }

  async #verifyThrough(key: string, options?: VerifyOptions): Promise<VerifyResult> {
    const parsed = parseApiKey(key);
    if (parsed === undefined) return notFound();
    const entry = this.#cache.peek(parsed.id) ?? (await this.#cache.load(parsed.id));
    if (!entry.found || (options?.tenantId !== undefined && entry.tenantId !== options.tenantId)) return this.#decoy(parsed.secret);

    const pepper = this.#hasher.peek(entry.tenantId) ?? (await this.#hasher.pepper(entry.tenantId));
    const refused = this.#check(entry, parsed.secret, pepper);
    if (refused !== undefined) return refused;
    // Only a key whose secret matched costs a read of its owner's permissions.
    const owner = await this.#authorizer.userPermissions(entry.tenantId, entry.ownerId);
    const roles = entry.roles === null ? null : await this.#authorizer.rolePermissions(entry.tenantId, entry.roles);
    if (!this.#counts(entry, options)) return this.#grant(entry, owner, roles, options);
    const granted = this.#grant(entry, owner, roles, { ...options, consume: false });
    if (!granted.valid) return granted;

    const usage = this.#usage!;
    const decision = await usage.admit({ id: entry.id, tenantId: entry.tenantId, policy: entry.policy });
    const result: VerifyResult = decision.ok ? granted : { ...granted, valid: false, code: decision.code ?? 'rate_limited' };
    if (decision.remaining !== undefined) result.remaining = decision.remaining;
    if (decision.rateLimit !== undefined) result.rateLimit = decision.rateLimit;
    if (decision.ok) usage.touch(entry.id);
    else if (decision.retryAfterMs !== undefined) result.retryAfterMs = decision.retryAfterMs;
    return result;
  }

  /** An unknown key (or another tenant's) costs the same keyed hash as a wrong secret. */
  #decoy(secret: string): VerifyResult {
    keyedHash(DECOY_PEPPER, secret);
    return notFound();
  }

  /** Whether this verification goes through the usage gate: it counts, and the key has limits. */
  #counts(entry: CachedKey, options: VerifyOptions | undefined): boolean {
    return this.#usage !== undefined && options?.consume !== false && (entry.policy.rateLimit !== null || entry.policy.credits !== null);
  }

  /** The secret, expiry and revocation: a refusal, or undefined when the key passes them. */
  #check(entry: CachedKey, secret: string, pepper: Buffer): VerifyResult | undefined {
    const digest = keyedHash(pepper, secret);
    const now = this.#clock.now().getTime();
    const matches =
      hashesEqual(digest, entry.hash) || (entry.previousHash !== null && now < entry.previousExpiresAtMs && hashesEqual(digest, entry.previousHash));
    if (!matches) {
      this.#failures.record(entry.tenantId, entry.id, 'wrong_secret');
      return notFound();
    }
    if (now >= entry.expiresAtMs) return this.#refuse(entry, 'expired');
    if (entry.revoked) return this.#refuse(entry, 'revoked');
    return undefined;
  }

  /**
   * The owner active, the key's permissions (the owner's narrowed by its roles) holding those the
   * request needs; for a key with nothing to count, the batched last-used note.
   */
  #grant(entry: CachedKey, owner: UserPermissions, roles: ReadonlySet<Permission> | null, options: VerifyOptions | undefined): VerifyResult {
    if (!owner.active) return this.#refuse(entry, 'disabled_owner');
    const granted = narrow(entry, owner.permissions, roles);
    const base = { keyId: entry.id, tenantId: entry.tenantId, ownerId: entry.ownerId, permissions: granted.list, expiresAt: entry.expiresAt };
    const required = options?.permissions;
    if (required !== undefined) {
      for (const permission of required) {
        if (!granted.set.has(permission)) return { valid: false, code: 'insufficient_permissions', ...base };
      }
    }
    if (this.#usage !== undefined && options?.consume !== false) this.#usage.touch(entry.id);
    return { valid: true, code: 'valid', ...base };
  }

  /** What this process has cached for a key id. For tests and diagnostics. */
  cacheState(keyId: string): 'key' | 'missing' | undefined {
    return this.#cache.state(keyId);
  }

  /** Waits for the audit writes started so far (they never hold up a verification). */
  flush(): Promise<void> {
    return this.#failures.flush();
  }

  /** Stops following invalidations and waits for pending audit writes. */
  async close(): Promise<void> {
    this.#cache.close();
    await this.#failures.flush();
  }

  #refuse(entry: CachedKey, code: 'expired' | 'revoked' | 'disabled_owner'): VerifyResult {
    this.#failures.record(entry.tenantId, entry.id, code);
    return { valid: false, code, keyId: entry.id, tenantId: entry.tenantId, ownerId: entry.ownerId, expiresAt: entry.expiresAt };
  }
}
