import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { createLogger, createMetrics, LatchkeyError, systemClock, type Clock, type Logger, type Metrics, type Settings } from './core/index.js';
import { DataKeys, loadKeyring, type Keyring } from './crypto/index.js';
import { createApiKeys, createUsageGate, API_KEY_PEPPER_TYPE, type ApiKeys } from './apikeys/index.js';
import { CONNECTOR_TYPE, createConnectorService, loadCatalog, type ConnectorService, type ResolvedConnector } from './connectors/index.js';
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
  createConnectionStore,
  createOAuthFlow,
  createServerResolver,
  createTokenClient,
  startStateCleanup,
  type ConnectionStore,
  type OAuthFlow,
  type ResolvedClient,
  type ServerResolver,
  type TokenClient,
} from './oauth/index.js';
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
   * UNSAFE, for tests against a local authorization server only: OAuth requests may use plain http
   * to 127.0.0.1, localhost and [::1] (never to another host). Logged as a warning at start.
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

/** Endpoints of an OpenID Connect issuer, as last discovered. */
interface DiscoveredEndpoints {
  issuer: string;
  tokenUrl: string;
  revocationUrl: string | undefined;
}

/**
 * The token client's view of a connector: endpoints from the template, or discovered from the
 * issuer for `oidc`-style connectors (cached per issuer; when discovery fails, the endpoints last
 * discovered in this process are used, so a fresh token is not refused for an outage of the
 * metadata document). The client secret is non-enumerable: it never reaches a log line.
 */
function oauthClientResolver(deps: {
  connectors: ConnectorService;
  servers: ServerResolver;
  allowInsecureRequests: boolean;
}): (tenantId: string, connectorId: string) => Promise<ResolvedClient> {
  const lastDiscovered = new Map<string, DiscoveredEndpoints>();

  async function discovered(resolved: ResolvedConnector, issuer: string): Promise<DiscoveredEndpoints> {
    try {
      const { as } = await deps.servers.metadata(resolved);
      const endpoints = { issuer: as.issuer, tokenUrl: as.token_endpoint as string, revocationUrl: as.revocation_endpoint };
      lastDiscovered.set(issuer, endpoints);
      return endpoints;
    } catch (err) {
      const known = lastDiscovered.get(issuer);
      if (known) return known;
      if (err instanceof LatchkeyError) throw err;
      throw new LatchkeyError('provider_unavailable', `The OpenID Connect metadata of ${resolved.template.name} could not be read.`, { cause: err });
    }
  }

  return async (tenantId, connectorId) => {
    const resolved = await deps.connectors.getResolved(tenantId, connectorId);
    const { connector } = resolved;
    const config = resolved.provider.oauth;
    const authType = connector.authType;
    if ((authType !== 'oauth_authorization_code' && authType !== 'oauth_client_credentials') || config === undefined) {
      throw new LatchkeyError('invalid_request', `The connector ${connectorId} does not use OAuth (its auth type is ${authType}); it has no tokens to hand out.`);
    }
    const endpoints: Partial<DiscoveredEndpoints> =
      config.discovery === 'oidc' ? await discovered(resolved, config.issuer) : { tokenUrl: config.tokenUrl, revocationUrl: config.revocationUrl };
    const client: ResolvedClient = {
      connectorId,
      tokenMode: connector.tokenMode,
      authType,
      tokenUrl: endpoints.tokenUrl as string,
      ...(endpoints.revocationUrl !== undefined ? { revocationUrl: endpoints.revocationUrl } : {}),
      ...(endpoints.issuer !== undefined ? { issuer: endpoints.issuer } : {}),
      clientId: resolved.clientId ?? '',
      clientAuthentication: config.clientAuthentication,
      scopes: authType === 'oauth_client_credentials' ? [...config.clientCredentialsScopes] : [...config.scopes],
      scopeSeparator: config.scopeSeparator,
      tokenParams: { ...config.tokenParams },
      allowInsecureRequests: deps.allowInsecureRequests,
    };
    if (resolved.clientSecret !== undefined) Object.defineProperty(client, 'clientSecret', { value: resolved.clientSecret, enumerable: false });
    return client;
  };
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
        throw new LatchkeyError('invalid_request', `The database has ${pending.length} pending migrations; run \`latchkey migrate\` first.`);
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

  const connectors = createConnectorService({ store, catalog: loadCatalog(), audit: { log: identity.audit, db: database.db } });
  const connections = createConnectionStore({ store });
  const oauthOptions = options.oauth ?? {};
  const insecure = oauthOptions.unsafeAllowInsecureLoopbackRequests === true;
  if (insecure) {
    logger.warn('UNSAFE: OAuth requests may use plain http to loopback hosts (unsafeAllowInsecureLoopbackRequests); for tests only.');
  }
  const providerHttp = {
    ...(oauthOptions.fetch ? { fetch: oauthOptions.fetch } : {}),
    ...(oauthOptions.timeoutMs !== undefined ? { timeoutMs: oauthOptions.timeoutMs } : {}),
  };
  const flow = createOAuthFlow({
    store,
    db: database.db,
    connectors,
    publicUrl: settings.publicUrl,
    ...(oauthOptions.allowedReturnOrigins ? { allowedReturnOrigins: oauthOptions.allowedReturnOrigins } : {}),
    ...(oauthOptions.stateTtlMs !== undefined ? { stateTtlMs: oauthOptions.stateTtlMs } : {}),
    ...providerHttp,
    onTokens: async (tenantId, connectorId, userId, tokens) => {
      await connections.save(tenantId, connectorId, userId, tokens);
    },
    clock,
    logger,
    allowInsecureRequests: insecure,
  });
  const servers = createServerResolver(
    { fetch: oauthOptions.fetch, timeoutMs: oauthOptions.timeoutMs ?? 10_000, allowInsecureRequests: insecure },
    60 * 60 * 1000,
    () => clock.now().getTime(),
  );
  const tokens = createTokenClient({
    store,
    handle: database,
    keyring,
    resolveClient: oauthClientResolver({ connectors, servers, allowInsecureRequests: insecure }),
    ...providerHttp,
    ...(oauthOptions.refreshSkewMs !== undefined ? { refreshSkewMs: oauthOptions.refreshSkewMs } : {}),
    // Tokens this process handed out are kept (sealed under a process-local key) for the cache
    // bound: a disconnect made by another process is seen within it, like a revoked API key.
    cacheMs: settings.cacheBoundMs,
    clock,
    logger,
  });
  // Deleting a connector first disconnects every connection of it (revoking at the provider where
  // it can), so no stored token outlives its connector.
  const connectorsWithCascade: ConnectorService = {
    ...connectors,
    async delete(actor, tenantId, id) {
      await connectors.get(tenantId, id);
      let after: string | undefined;
      for (;;) {
        const page = await connections.list(tenantId, { connectorId: id, limit: 100, ...(after ? { after } : {}) });
        after = page.next;
        for (const connection of page.items) {
          await tokens.disconnect(tenantId, id, connection.userId).catch((err: unknown) => {
            logger.warn({ err, tenantId, connectorId: id }, 'Disconnecting a connection of a deleted connector failed.');
          });
        }
        if (page.items.length === 0 || page.next === undefined) break;
      }
      return connectors.delete(actor, tenantId, id);
    },
  };
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
    apiRoutes({ identity, apiKeys, bus, publicUrl: settings.publicUrl, clock, connectors: connectorsWithCascade, oauth: { flow, connections, tokens } }),
  ];
  const app =
    options.http === false
      ? undefined
      : await createHttpApp({
          logger,
          metrics,
          apiPlugins,
          version: VERSION,
          trustProxy: settings.trustProxy,
          readiness: [
            { name: 'database', check: () => database.ping() },
            {
              name: 'migrations',
              check: async () => {
                const pending = await pendingMigrations(database);
                if (pending.length > 0) throw new LatchkeyError('not_ready', `${pending.length} migrations are pending.`);
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
