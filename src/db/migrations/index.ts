import type { Migration } from 'kysely';
import type { DialectName } from '../adapter.js';
import { encryptedObjects } from './0001-encrypted-objects.js';
import { identityAndApiKeys } from './0002-identity-and-api-keys.js';
import { systemTenant } from './0003-system-tenant.js';
import { webhooks } from './0004-webhooks.js';
import { tasks } from './0005-tasks.js';
import { taskCredentials } from './0006-task-credentials.js';
import { taskProgress } from './0007-task-progress.js';
import { taskClaimIndexes } from './0008-task-claim-indexes.js';

/** Every migration, in order. Names sort in the order they must run; never rename or reorder one. */
export function migrationsFor(dialect: DialectName): Record<string, Migration> {
  return {
    '0001-encrypted-objects': encryptedObjects,
    '0002-identity-and-api-keys': identityAndApiKeys(dialect),
    '0003-system-tenant': systemTenant,
    '0004-webhooks': webhooks,
    '0005-tasks': tasks,
    '0006-task-credentials': taskCredentials,
    '0007-task-progress': taskProgress,
    '0008-task-claim-indexes': taskClaimIndexes,
  };
}

/** Migration names, in order. */
export const MIGRATION_NAMES: readonly string[] = Object.keys(migrationsFor('sqlite'));
