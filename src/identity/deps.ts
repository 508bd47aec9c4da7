import type { Kysely } from 'kysely';
import type { Clock, Logger } from '../core/index.js';
import type { Database, InvalidationBus } from '../db/index.js';
import type { AuditLog } from './audit-log.js';

/** What every identity service is built from (see createIdentity). */
export interface IdentityDeps {
  db: Kysely<Database>;
  bus: InvalidationBus;
  clock: Clock;
  audit: AuditLog;
  logger: Logger | undefined;
}
