import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { counted, createLogger, createMetrics, LatchkeyError, verb, systemClock, type Clock, type Logger, type Metrics, type Settings } from './core/index.js';
import { DataKeys, loadKeyring, type Keyring } from './crypto/index.js';
import { createApiKeys, createUsageGate, API_KEY_PEPPER_TYPE, type ApiKeys } from './apikeys/index.js';
import { CONNECTOR_TYPE, createConnectorService, loadCatalog, type ConnectorService } from './connectors/index.js';
import {
  InvalidationBus,
  migrateToLatest,
  openDatabase,
  pendingMigrations,
  registerDatabaseMetrics,
  type DatabaseHandle,
} from './db/index.js';
import { createIdentity, type BootstrapResult, type Identity } from './identity/index.js';
import { apiRoutes, createHttpApp, listenWithShutdown, type RunningServer } from './http/index.js';
import {
  CONNECTION_TYPE,
  OAUTH_STATE_TYPE,
  assembleOAuth,
  startStateCleanup,
  type AssembledOAuth,
  type ConnectionStore,
  type OAuthFlow,
  type TokenClient,
} from './oauth/index.js';
import { createOutbound } from './outbound/index.js';
import { VERSION } from './version.js';
import { EncryptedObjectStore, ObjectMaintenance, ObjectTypeRegistry, type ObjectTypeDefinition } from './objects/index.js';

/** Object types every Latchkey process registers. Later modules add theirs here. */
export const BUILTIN_OBJECT_TYPES: readonly ObjectTypeDefinition[] = [API_KEY_PEPPER_TYPE, CONNECTOR_TYPE, OAUTH_STATE_TYPE, CONNECTION_TYPE];

/** How often expired OAuth states are deleted (the task engine takes this over later). */
const STATE_CLEANUP_INTERVAL_MS = 30 * 60 * 1000;

/** OAuth knobs for embedders and tests; no setting or environment variable reaches them. */
export interface LatchkeyOAuthOptions {
  /** Origins `returnTo` may point at for every connector, besides the public URL's (each connector may add its own). */
  allowedReturnOrigins?: readonly string[];
  /** Per request to a provider: discovery, token exchange, refresh, revocation (default 10 s). */
  timeoutMs?: number;
  /** Refresh a token when it expires within this (default 5 minutes). */
  refreshSkewMs?: number;
  /** How long a user has to finish signing in at the provider (default 10 minutes). */
  stateTtlMs?: number;
  /** The fetch used for every provider request (default the global fetch). */
  fetch?: typeof fetch;
  /**
   * The same as the `allowInsecureLoopback` setting (`--allow-insecure-loopback`), which it turns
   * on: plain http to loopback addresses only, for a local authorization server. Logged as a
   * warning at start.
   */
  unsafeAllowInsecureLoopbackRequests?: boolean;
}

export interface LatchkeyOptions {
  settings: Settings;
  logger?: Logger;
  clock?: Clock;
  /** Apply pending migrations while starting (default true). */
  migrate?: boolean;
  /** May create `<dataDir>/master.key` when no key is configured (default: only on SQLite). */
  allowKeyCreation?: boolean;
  /** Extra object types (an embedding application's own). */
  objectTypes?: readonly ObjectTypeDefinition[];
  /** Build the HTTP app (default true; CLI maintenance commands skip it). */
  http?: boolean;
  /**
   * On an empty database, create tenant "default" and user "admin" (default true). The initial
   * password goes to `onBootstrap` once and nowhere else (never to the log).
   */
  bootstrap?: boolean;
  onBootstrap?: (result: Extract<BootstrapResult, { created: true }>) => void;
  oauth?: LatchkeyOAuthOptions;
}

/** A registry of the built-in object types (plus extra ones). */
export function builtinRegistry(extra: readonly ObjectTypeDefinition[] = []): ObjectTypeRegistry {
  const registry = new ObjectTypeRegistry();
  for (const type of [...BUILTIN_OBJECT_TYPES, ...extra]) registry.register(type);
  return registry;
}

/** One assembled Latchkey instance: everything the server, the CLI and embedders use. */
export interface Latchkey {
  settings: Settings;
  logger: Logger;
  metrics: Metrics;
  database: DatabaseHandle;
  keyring: Keyring;
  dataKeys: DataKeys;
  registry: ObjectTypeRegistry;
  store: EncryptedObjectStore;
  maintenance: ObjectMaintenance;
  bus: InvalidationBus;
  identity: Identity;
  apiKeys: ApiKeys;
  connectors: ConnectorService;
  /** The authorization code flow, the stored connections and the token client that keeps them fresh. */
  oauth: { flow: OAuthFlow; connections: ConnectionStore; tokens: TokenClient };
  /** Undefined when built with `http: false`. */
  app: FastifyInstance | undefined;
  /** Listens on the configured host and port; shuts down gracefully on SIGTERM/SIGINT. */
  listen(): Promise<RunningServer>;
  close(): Promise<void>;
}

/**
 * Assembles Latchkey from settings: key, database (migrated), encrypted object store and HTTP app.
 * Every dependency is built here and passed down; no module reads the environment.
 *
 * @example
 * const latchkey = await createLatchkey({ settings: loadSettings({ env: process.env }) });
 * const server = await latchkey.listen();
 * await server.closed;
 */
export async function createLatchkey(options: LatchkeyOptions): Promise<Latchkey> {
  const { settings } = options;
  const logger = options.logger ?? createLogger({ level: settings.logLevel });
  const clock = options.clock ?? systemClock;
  const metrics = createMetrics();
  const { keyring } = loadKeyring({
    encryptionKey: settings.encryptionKey,
    decryptionKeys: settings.decryptionKeys,
    keyFile: settings.keyFile,
    dataDir: settings.dataDir,
    allowCreate: options.allowKeyCreation ?? settings.databaseUrl === undefined,
    logger,
  });
  const database = openDatabase({ url: settings.databaseUrl, dataDir: settings.dataDir });
  try {
    if (options.migrate ?? true) {
      await migrateToLatest(database, (name) => logger.info({ migration: name }, `Applied migration ${name}.`));
    } else {
      const pending = await pendingMigrations(database);
      if (pending.length > 0) {
        throw new LatchkeyError('invalid_request', `The database has ${counted(pending.length, 'pending migration')}; run \`latchkey migrate\` first.`);
      }
    }
  } catch (err) {
    await database.close();
    throw err;
  }
  registerDatabaseMetrics(metrics.registry, database);

  const registry = builtinRegistry(options.objectTypes);
  const dataKeys = new DataKeys({ db: database.db, keyring, clock, metrics });
  const store = new EncryptedObjectStore({ db: database.db, registry, dataKeys, clock, metrics });
  const maintenance = new ObjectMaintenance({ db: database.db, registry, dataKeys, store, metrics, clock });

  const bus = new InvalidationBus({
    handle: database,
    boundMs: settings.cacheBoundMs,
    onError: (err) => logger.warn({ err }, 'Reading cache invalidations failed; retrying.'),
  });
  await bus.start();
  const identity = createIdentity({ db: database.db, bus, clock, logger });
  const usage = createUsageGate({ db: database.db, clock, logger });
  const apiKeys = createApiKeys({ db: database.db, store, authorizer: identity.authorizer, audit: identity.audit, bus, usage, clock, logger });
  if (options.bootstrap ?? true) {
    const first = await identity.bootstrap();
    if (first.created) options.onBootstrap?.(first);
  }

  const oauthOptions = options.oauth ?? {};
  const outbound = createOutbound({
    ...(oauthOptions.fetch ? { fetch: oauthOptions.fetch } : {}),
    ...(oauthOptions.timeoutMs !== undefined ? { timeoutMs: oauthOptions.timeoutMs } : {}),
    allowInsecureLoopback: settings.allowInsecureLoopback || oauthOptions.unsafeAllowInsecureLoopbackRequests === true,
    clock,
    logger,
  });
  // The connector service cascades a delete through the OAuth module, which is built on it (the
  // hook runs only on a delete, long after both exist).
  const connectors = createConnectorService({
    store,
    catalog: loadCatalog(),
    audit: { log: identity.audit, db: database.db },
    allowInsecureLoopback: outbound.allowInsecureLoopback,
    beforeDelete: (tenantId, connectorId) => oauth.disconnectConnector(tenantId, connectorId),
  });
  const oauth: AssembledOAuth = assembleOAuth({
    store,
    handle: database,
    keyring,
    connectors,
    outbound,
    publicUrl: settings.publicUrl,
    ...(oauthOptions.allowedReturnOrigins ? { allowedReturnOrigins: oauthOptions.allowedReturnOrigins } : {}),
    ...(oauthOptions.stateTtlMs !== undefined ? { stateTtlMs: oauthOptions.stateTtlMs } : {}),
    ...(oauthOptions.refreshSkewMs !== undefined ? { refreshSkewMs: oauthOptions.refreshSkewMs } : {}),
    cacheMs: settings.cacheBoundMs,
    clock,
    logger,
  });
  const { flow, connections, tokens } = oauth;
  const stopStateCleanup = startStateCleanup(flow, STATE_CLEANUP_INTERVAL_MS, (err) => logger.warn({ err }, 'Deleting expired OAuth states failed.'));
  // Housekeeping a server owns (the task engine takes it over later).
  const housekeeping = setInterval(() => {
    void identity.sessions.purgeExpired().catch((err: unknown) => logger.warn({ err }, 'Purging expired sessions failed.'));
    void bus.prune().catch((err: unknown) => logger.warn({ err }, 'Pruning old invalidations failed.'));
  }, 30 * 60 * 1000);
  housekeeping.unref();
  const stopServices = async () => {
    clearInterval(housekeeping);
    stopStateCleanup();
    await apiKeys.verifier.close();
    await usage.close();
    await bus.stop();
  };

  const apiPlugins: FastifyPluginAsync[] = [
    apiRoutes({ identity, apiKeys, bus, publicUrl: settings.publicUrl, clock, connectors, oauth: { flow, connections, tokens } }),
  ];
  const app =
    options.http === false
      ? undefined
      : await createHttpApp({
          logger,
          metrics,
          apiPlugins,
          version: VERSION,
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

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    if (app) await app.close();
    await stopServices();
    await database.close();
  };

  return {
    settings,
    logger,
    metrics,
    database,
    keyring,
    dataKeys,
    registry,
    store,
    maintenance,
    bus,
    identity,
    apiKeys,
    connectors,
    oauth: { flow, connections, tokens },
    app,
    async listen() {
      if (!app) throw new LatchkeyError('internal_error', 'This instance was built without its HTTP app.');
      return listenWithShutdown(app, {
        host: settings.host,
        port: settings.port,
        shutdownTimeoutMs: settings.shutdownTimeoutMs,
        logger,
        onClose: async () => {
          closed = true;
          await stopServices();
          await database.close();
        },
      });
    },
    close,
  };
}
