import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Diagnostics } from '../../objects/index.js';
import { BOOTSTRAP_TENANT } from '../../identity/index.js';
import { SECURITY } from '../auth.js';
import { errorResponses } from '../schemas.js';

export interface SettingsRoutesOptions {
  diagnostics: Diagnostics;
}

const settingSchema = z
  .object({
    name: z.string().describe('The setting\'s key in the config file (`publicUrl`, `shutdownTimeout`), or `configFile` for the config file itself.'),
    env: z.string().describe('Its environment variable.'),
    flag: z.string().nullable().describe('Its command-line flag; null for the master keys, which are never taken as flags.'),
    secret: z.boolean().describe('A secret\'s value is never shown.'),
    set: z.boolean().describe('Whether a value is configured (for a list: a non-empty one).'),
    value: z
      .union([z.string(), z.number(), z.boolean(), z.array(z.string())])
      .nullable()
      .describe('The value in use, defaults applied (durations in milliseconds); null for a secret and for a setting without a value.'),
  })
  .meta({ id: 'Setting', description: 'One setting of the running server.' });

const findingSchema = z
  .object({
    status: z.enum(['ok', 'warn', 'fail']),
    check: z.string().describe('`configuration`, `master key`, `database`, `migrations`, `data keys`, `rekey`, `model versions`.'),
    message: z.string(),
    fix: z.string().optional().describe('What to do, when the check is not ok.'),
  })
  .meta({ id: 'DoctorFinding', description: 'The outcome of one of `latchkey doctor`\'s checks.' });

const SYSTEM_ONLY = `Needs identity:admin in the system tenant (the tenant Latchkey creates on first start, "${BOOTSTRAP_TENANT}"): the settings are the whole server's.`;
const systemAdmin = { permission: 'identity:admin', systemTenant: true } as const;

/**
 * The running server's effective configuration and `doctor`'s checks, for system administrators.
 * Never a secret: secret settings are only "set" or "not set".
 *
 * @example
 * await secured.register(settingsRoutes, { diagnostics });
 */
export const settingsRoutes: FastifyPluginAsync<SettingsRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { diagnostics } = options;

  app.get(
    '/settings',
    {
      config: systemAdmin,
      schema: {
        tags: ['settings'],
        operationId: 'getSettings',
        summary: 'The effective configuration (never a secret)',
        description: `${SYSTEM_ONLY} Flags, environment, config file and defaults resolved as at start; secrets (the database URL, master keys) only as set or not set.`,
        security: SECURITY,
        response: {
          200: z
            .object({ items: z.array(settingSchema) })
            .describe('Every setting, in the order of the settings table.')
            .meta({
              examples: [
                {
                  items: [
                    { name: 'port', env: 'LATCHKEY_PORT', flag: '--port', secret: false, set: false, value: 4400 },
                    { name: 'databaseUrl', env: 'LATCHKEY_DATABASE_URL', flag: '--database-url', secret: true, set: true, value: null },
                    { name: 'encryptionKey', env: 'LATCHKEY_ENCRYPTION_KEY', flag: null, secret: true, set: true, value: null },
                  ],
                },
              ],
            }),
          ...errorResponses(403),
        },
      },
    },
    async () => ({ items: diagnostics.settings() }),
  );

  app.get(
    '/doctor',
    {
      config: systemAdmin,
      schema: {
        tags: ['settings'],
        operationId: 'runDoctor',
        summary: 'Run `latchkey doctor`\'s checks against this server',
        description: `${SYSTEM_ONLY} The configuration, the master key, the database, pending migrations, data keys under older master keys, objects under retired data keys or at older model versions. Not the decrypt-everything scan (\`latchkey doctor --scan\`).`,
        security: SECURITY,
        response: {
          200: z
            .object({ items: z.array(findingSchema) })
            .describe('The findings, in the order doctor prints them.')
            .meta({
              examples: [
                {
                  items: [
                    { status: 'ok', check: 'database', message: 'reachable (postgres at db.internal:5432/latchkey)' },
                    { status: 'warn', check: 'data keys', message: '2 of 5 data keys are wrapped by an older master key', fix: 'run `latchkey rekey` to rewrap them, then the old key can be removed.' },
                  ],
                },
              ],
            }),
          ...errorResponses(403),
        },
      },
    },
    async (_request, reply) => reply.header('cache-control', 'no-store').send({ items: await diagnostics.checks() }),
  );
};
