import type { Kysely } from 'kysely';
import type { Clock, Logger } from '../core/index.js';
import type { Database, InvalidationBus } from '../db/index.js';
import type { AuditLog, Authorizer } from '../identity/index.js';
import type { EncryptedObjectStore } from '../objects/index.js';
import { ApiKeyHasher } from './hashing.js';
import { createApiKeyService, type ApiKeyService } from './service.js';
import type { UsageGate } from './usage.js';
import { ApiKeyVerifier, type ApiKeyVerifierOptions } from './verifier.js';

export interface ApiKeysOptions {
  db: Kysely<Database>;
  /** Holds each tenant's pepper (register {@link API_KEY_PEPPER_TYPE} with its registry). */
  store: EncryptedObjectStore;
  authorizer: Authorizer;
  audit: AuditLog;
  /** Must be started by the caller. */
  bus: InvalidationBus;
  usage?: UsageGate;
  clock?: Clock;
  logger?: Logger;
  verifier?: Pick<ApiKeyVerifierOptions, 'cache' | 'failures' | 'afterRead'>;
}

/** The API key module of one process: service and verifier sharing one hasher (one pepper read per tenant). */
export interface ApiKeys {
  hasher: ApiKeyHasher;
  service: ApiKeyService;
  verifier: ApiKeyVerifier;
}

/**
 * @example
 * const apiKeys = createApiKeys({ db, store, authorizer: identity.authorizer, audit: identity.audit, bus, usage });
 * const { key } = await apiKeys.service.create(actor, tenantId, userId, { name: 'deploy' });
 * (await apiKeys.verifier.verify(key)).valid; // true
 */
export function createApiKeys(options: ApiKeysOptions): ApiKeys {
  const hasher = new ApiKeyHasher({ store: options.store });
  const service = createApiKeyService({
    db: options.db,
    hasher,
    authorizer: options.authorizer,
    audit: options.audit,
    bus: options.bus,
    clock: options.clock,
  });
  const verifier = new ApiKeyVerifier({
    ...options.verifier,
    db: options.db,
    hasher,
    authorizer: options.authorizer,
    audit: options.audit,
    bus: options.bus,
    usage: options.usage,
    clock: options.clock,
    logger: options.logger,
  });
  return { hasher, service, verifier };
}
