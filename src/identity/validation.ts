import { z } from 'zod';
import { LatchkeyError } from '../core/index.js';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from './passwords.js';
import { PERMISSIONS } from './permissions.js';

/** Tenant names: lower-case letters, digits and dashes; they appear in URLs and on the command line. */
export const TENANT_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Usernames: letters, digits and `._@+-` (so an e-mail address fits). */
export const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;
/** Group and custom role names. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/;

export const tenantName = z.string({ error: 'must be a string' }).regex(TENANT_NAME_PATTERN, {
  error: 'must be 1 to 63 lower-case letters, digits or dashes, starting with a letter or digit',
});
export const username = z.string({ error: 'must be a string' }).regex(USERNAME_PATTERN, {
  error: 'must be 1 to 128 letters, digits or ._@+- characters, starting with a letter or digit',
});
export const name = z.string({ error: 'must be a string' }).regex(NAME_PATTERN, {
  error: 'must be 1 to 63 letters, digits or ._:- characters, starting with a letter or digit',
});
export const displayName = z
  .string({ error: 'must be a string' })
  .max(200, { error: 'must be at most 200 characters' })
  .nullable();
export const description = z
  .string({ error: 'must be a string' })
  .max(1000, { error: 'must be at most 1000 characters' })
  .nullable();
export const password = z
  .string({ error: 'must be a string' })
  .min(MIN_PASSWORD_LENGTH, { error: `must be at least ${MIN_PASSWORD_LENGTH} characters` })
  .max(MAX_PASSWORD_LENGTH, { error: `must be at most ${MAX_PASSWORD_LENGTH} characters` });
export const permission = z.enum(PERMISSIONS, {
  error: (issue) => `is not a known permission (${JSON.stringify(issue.input)})`,
});
export const permissions = z.array(permission, { error: 'must be a list of permissions' }).max(PERMISSIONS.length * 4);
export const roleNames = z.array(name, { error: 'must be a list of role names' }).max(100);

export { parseInput, assertId } from '../core/index.js';

export function notFound(what: string, id: string): LatchkeyError {
  return new LatchkeyError('not_found', `No ${what} with id ${JSON.stringify(id)} exists.`);
}
