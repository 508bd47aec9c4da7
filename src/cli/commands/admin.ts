import { Command, Option } from 'commander';
import { isLatchkeyError, LatchkeyError, parseDuration } from '../../core/index.js';
import { generatePassword, SYSTEM_ACTOR } from '../../identity/index.js';
import type { Latchkey } from '../../latchkey.js';
import { withLatchkey } from '../with-latchkey.js';
import { DATABASE_SETTINGS, settingsFrom, withSettingsOptions } from '../settings-options.js';

/** The value, or undefined when the lookup answered not_found (any other failure propagates). */
async function unlessNotFound<T>(lookup: Promise<T>): Promise<T | undefined> {
  try {
    return await lookup;
  } catch (err) {
    if (isLatchkeyError(err) && err.code === 'not_found') return undefined;
    throw err;
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function tenantNamed(latchkey: Latchkey, name: string) {
  const tenant = await unlessNotFound(latchkey.identity.tenants.getByName(name));
  if (!tenant) throw new LatchkeyError('not_found', `No tenant named "${name}" exists.`);
  return tenant;
}

/** Generated passwords: 24 base62 characters (about 143 bits). */
const GENERATED_PASSWORD_LENGTH = 24;

function createKeyCommand(): Command {
  return withSettingsOptions(new Command('create-key'), DATABASE_SETTINGS)
    .description('Mint an API key for a user, for automation and recovery. Works against the configured database while servers run.')
    .requiredOption('--tenant <name>', 'tenant name')
    .requiredOption('--user <username>', 'the user the key belongs to')
    .requiredOption('--name <name>', 'a name for the key')
    .addOption(new Option('--role <role>', 'limit the key to this role (repeatable); default: all of the user\'s permissions').argParser(collect).default([]))
    .option('--expires-in <duration>', 'lifetime such as 30d or 12h; default: no expiry')
    .option('--json', 'print exactly {"id":"...","key":"..."}', false)
    .action(async (opts: { tenant: string; user: string; name: string; role: string[]; expiresIn?: string; json: boolean }, command: Command) => {
      const settings = settingsFrom(command);
      let expiresInMs: number | undefined;
      if (opts.expiresIn !== undefined) {
        expiresInMs = parseDuration(opts.expiresIn);
        if (expiresInMs === undefined || expiresInMs <= 0) {
          throw new LatchkeyError('invalid_request', `--expires-in must be a duration such as "30d" or "12h", got "${opts.expiresIn}".`);
        }
        // A bare number is milliseconds: "5" is far too short for a key, and likely meant "5d".
        if (expiresInMs < 1000) throw new LatchkeyError('invalid_request', `--expires-in must be at least 1 second, got "${opts.expiresIn}" (a number alone is milliseconds; write "5d" for days).`);
      }
      await withLatchkey(settings, async (latchkey) => {
        const tenant = await tenantNamed(latchkey, opts.tenant);
        const user = await unlessNotFound(latchkey.identity.users.getByUsername(tenant.id, opts.user));
        if (!user) throw new LatchkeyError('not_found', `No user named "${opts.user}" exists in tenant "${opts.tenant}".`);
        const issued = await latchkey.apiKeys.service.create(SYSTEM_ACTOR, tenant.id, user.id, {
          name: opts.name,
          roles: opts.role.length > 0 ? opts.role : null,
          ...(expiresInMs !== undefined ? { expiresInMs } : {}),
        });
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ id: issued.apiKey.id, key: issued.key })}\n`);
        } else {
          process.stdout.write(
            `Created API key ${issued.apiKey.id} ("${issued.apiKey.name}") for ${opts.user} in tenant ${opts.tenant}.\n` +
              `Key (shown only this once): ${issued.key}\n`,
          );
        }
      });
    });
}

function createUserCommand(): Command {
  return withSettingsOptions(new Command('create-user'), DATABASE_SETTINGS)
    .description('Create a user in a tenant (a new tenant\'s first administrator, or recovery). Works against the configured database while servers run.')
    .requiredOption('--tenant <name>', 'tenant name')
    .requiredOption('--username <username>', 'the new user\'s name')
    .addOption(new Option('--role <role>', 'grant this role (repeatable), e.g. admin').argParser(collect).default([]))
    .option('--no-password', 'create a user without a password (API keys only); default: a generated password, printed once')
    .option('--json', 'print exactly {"id":"...","username":"...","password":"..."} (no "password" with --no-password)', false)
    .action(async (opts: { tenant: string; username: string; role: string[]; password: boolean; json: boolean }, command: Command) => {
      const settings = settingsFrom(command);
      await withLatchkey(settings, async (latchkey) => {
        const tenant = await tenantNamed(latchkey, opts.tenant);
        const password = opts.password ? generatePassword(GENERATED_PASSWORD_LENGTH) : undefined;
        const user = await latchkey.identity.users.create(SYSTEM_ACTOR, tenant.id, {
          username: opts.username,
          roles: opts.role,
          ...(password !== undefined ? { password } : {}),
        });
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ id: user.id, username: user.username, ...(password !== undefined ? { password } : {}) })}\n`);
        } else {
          const roles = opts.role.length > 0 ? ` with ${opts.role.length === 1 ? 'role' : 'roles'} ${opts.role.join(', ')}` : '';
          process.stdout.write(
            `Created user ${user.username} (${user.id}) in tenant ${tenant.name}${roles}.\n` +
              (password !== undefined ? `Password (shown only this once): ${password}\n` : 'The user has no password: mint an API key with `latchkey admin create-key`.\n'),
          );
        }
      });
    });
}

export function adminCommand(): Command {
  return new Command('admin').description('Administration that works directly on the database.').addCommand(createKeyCommand().exitOverride())
    .addCommand(createUserCommand().exitOverride());
}
