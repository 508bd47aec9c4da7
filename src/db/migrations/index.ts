import type { Migration } from 'kysely';
import { encryptedObjects } from './0001-encrypted-objects.js';

/** Every migration, in order. Names sort in the order they must run; never rename or reorder one. */
export const MIGRATIONS: Record<string, Migration> = {
  '0001-encrypted-objects': encryptedObjects,
};
