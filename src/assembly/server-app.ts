import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { counted, LatchkeyError, verb, type Logger, type Metrics } from '../core/index.js';
import type { Keyring } from '../crypto/index.js';
import { pendingMigrations, type DatabaseHandle } from '../db/index.js';
import { createHttpApp } from '../http/index.js';
import { VERSION } from '../version.js';

/**
 * The HTTP app with Latchkey's API routes and its readiness checks: the database answers,
 * migrations are applied, the key is loaded.
 *
 * @example
 * const app = await buildServerApp({ logger, metrics, database, keyring, apiPlugins: [apiRoutes({ ... })] });
 */
export async function buildServerApp(options: {
  logger: Logger;
  metrics: Metrics;
  database: DatabaseHandle;
  keyring: Keyring;
  apiPlugins: FastifyPluginAsync[];
  sitePlugins?: FastifyPluginAsync[];
  /** Proxy addresses or CIDRs whose `X-Forwarded-For` names the client. */
  trustProxy: readonly string[];
  /** `LATCHKEY_PUBLIC_URL`: the OpenAPI description's server. */
  publicUrl?: string;
}): Promise<FastifyInstance> {
  const { database, keyring } = options;
  return createHttpApp({
    logger: options.logger,
    metrics: options.metrics,
    apiPlugins: options.apiPlugins,
    ...(options.sitePlugins ? { sitePlugins: options.sitePlugins } : {}),
    version: VERSION,
    trustProxy: options.trustProxy,
    ...(options.publicUrl !== undefined ? { publicUrl: options.publicUrl } : {}),
    readiness: [
      { name: 'database', check: () => database.ping() },
      {
        name: 'migrations',
        check: async () => {
          const pending = await pendingMigrations(database);
          if (pending.length > 0) throw new LatchkeyError('not_ready', `${counted(pending.length, 'migration')} ${verb(pending.length, 'is', 'are')} pending.`);
        },
      },
      {
        name: 'key',
        check: async () => {
          // The key is loaded at start; this proves it is usable.
          if (keyring.primary.key.length !== 32) throw new LatchkeyError('not_ready', 'The master key is not loaded.');
        },
      },
    ],
  });
}
