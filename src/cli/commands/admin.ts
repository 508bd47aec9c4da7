import { Command, Option } from 'commander';
import { createLogger, isLatchkeyError, LatchkeyError, parseDuration } from '../../core/index.js';
import { SYSTEM_ACTOR } from '../../identity/index.js';
import { createLatchkey } from '../../latchkey.js';
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
      }
      const latchkey = await createLatchkey({
        settings,
        logger: createLogger({ level: 'warn' }),
        migrate: false,
        http: false,
        bootstrap: false,
        allowKeyCreation: false,
      });
      try {
        const tenant = await unlessNotFound(latchkey.identity.tenants.getByName(opts.tenant));
        if (!tenant) throw new LatchkeyError('not_found', `No tenant named "${opts.tenant}" exists.`);
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
      } finally {
        await latchkey.close();
      }
    });
}

export function adminCommand(): Command {
  return new Command('admin').description('Administration that works directly on the database.').addCommand(createKeyCommand().exitOverride());
}
