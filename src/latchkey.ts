import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { Background, ConfigError, createLogger, createMetrics, LatchkeyError, systemClock, type Clock, type Logger, type Metrics, type Settings } from './core/index.js';
import type { DataKeys, Keyring } from './crypto/index.js';
import { createApiKeys, createUsageGate, API_KEY_PEPPER_TYPE, type ApiKeys } from './apikeys/index.js';
import { buildServerApp } from './assembly/server-app.js';
import { openStorage } from './assembly/storage.js';
import { registerLatchkeyTasks, webhookAttemptScheduler } from './assembly/latchkey-tasks.js';
import { createProxy, type Proxy } from './proxy/index.js';
import { CONNECT_SESSION_TYPE, createConnectSessions, type ConnectSessions } from './connect/index.js';
import { CONNECTOR_TYPE, createConnectorService, loadCatalog, type ConnectorService } from './connectors/index.js';
import { InvalidationBus, type DatabaseHandle } from './db/index.js';
import { createIdentity, type BootstrapResult, type Identity } from './identity/index.js';
import { apiRoutes, connectPage, consoleSite, listenWithShutdown, type RunningServer } from './http/index.js';
import {
  CONNECTION_TYPE,
  OAUTH_STATE_TYPE,
  assembleOAuth,
  refreshExpiringConnections,
  type AssembledOAuth,
  type ConnectionStore,
  type OAuthFlow,
  type TokenClient,
  type UserCredentials,
} from './oauth/index.js';
import { createOutbound } from './outbound/index.js';
import { createDiagnostics, ObjectTypeRegistry, type EncryptedObjectStore, type ObjectMaintenance, type ObjectTypeDefinition } from './objects/index.js';
import { connectorRequestTask, CredentialInvalidator, TASK_SECRETS_TYPE, createCredentialStrategy, createHttpCredentialIssuer, createTasks, type ExternalCredentialIssuer, type TaskApi, type Tasks } from './tasks/index.js';
import { WEBHOOK_ENDPOINT_TYPE, createWebhooks, type WebhookBackoff, type Webhooks } from './webhooks/index.js';

/** Object types every Latchkey process registers. Later modules add theirs here. */
export const BUILTIN_OBJECT_TYPES: readonly ObjectTypeDefinition[] = [API_KEY_PEPPER_TYPE, CONNECTOR_TYPE, OAUTH_STATE_TYPE, CONNECTION_TYPE, CONNECT_SESSION_TYPE, WEBHOOK_ENDPOINT_TYPE, TASK_SECRETS_TYPE];

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

/** Webhook delivery knobs for embedders and tests; no setting or environment variable reaches them. */
export interface LatchkeyWebhookOptions {
  /** Attempts per delivery before it is marked failed (default 8). */
  maxAttempts?: number;
  /** Retry delays: `baseMs · 4^(n-1)` capped at `maxMs`, with jitter (default 1 minute, 12 hours). */
  backoff?: WebhookBackoff;
  /** Per attempt (default the OAuth timeout, 10 s). */
  timeoutMs?: number;
}

/**
 * Task engine knobs for embedders and tests. The lease, heartbeat and concurrency default to the
 * settings (`--task-lease`, `--task-heartbeat`, `--task-concurrency`); given here, they win.
 */
export interface LatchkeyTaskOptions {
  /** How long a claim holds a task without a heartbeat; a task whose process died runs again after it (default 30 s). */
  leaseMs?: number;
  /** How often a running task's lease is extended (default 10 s; below the lease). */
  heartbeatMs?: number;
  /** Tasks run at once by this process (default 10). */
  concurrency?: number;
  /** How often due tasks are looked for besides wake-ups (default 1 s). */
  pollIntervalMs?: number;
  /** At shutdown, how long running tasks may go on before they are aborted and released (default 10 s). */
  shutdownGraceMs?: number;
  /** Runs kept per task (default 20). */
  historyLimit?: number;
  /**
   * Your own external credential issuer (instead of the HTTP one the settings configure): every
   * task that runs as a user is then granted a credential from it too, used when
   * `taskCredentialType` is `external`.
   */
  issuer?: ExternalCredentialIssuer;
}

/** Latchkey's recurring task that invalidates removed tasks' credentials. */
export const INVALIDATION_TASK = 'latchkey.invalidate_credentials';

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
  webhooks?: LatchkeyWebhookOptions;
  tasks?: LatchkeyTaskOptions;
  /**
   * Start the background work while starting (default false): the invalidation bus (changes made
   * by other processes reach this one's caches at once rather than when entries expire), the API
   * key usage flush, and the task runner (which runs webhook delivery attempts, OAuth state clean-up
   * and housekeeping as Latchkey's own tasks). `listen()` starts it in any case; CLI commands that
   * only touch the database never do.
   */
  background?: boolean;
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
  /**
   * The authorization code flow, the stored connections, the token client that keeps them fresh,
   * and users' own credentials for per-user api_key, basic and bearer connectors.
   */
  oauth: { flow: OAuthFlow; connections: ConnectionStore; tokens: TokenClient; credentials: UserCredentials };
  /** Calls to connectors' APIs with their credentials (what `/api/v1/connectors/{id}/proxy/*` runs). */
  proxy: Proxy;
  /** Connect sessions: what an application's end users use on the hosted connect page. */
  connect: { sessions: ConnectSessions };
  /** Webhook endpoints, `emit`, and the stored deliveries (each attempt a task of the engine). */
  webhooks: Webhooks;
  /**
   * The task engine: register task types, schedule tasks; the runner claims and runs them as
   * part of the background work.
   */
  tasks: Tasks;
  /** Undefined when built with `http: false`. */
  app: FastifyInstance | undefined;
  /** The invalidation bus, the usage flush and the task runner: started by `listen()`, or by `background.start()`. */
  background: Background;
  /** Listens on the configured host and port; shuts down gracefully on SIGTERM/SIGINT. */
  listen(): Promise<RunningServer>;
  close(): Promise<void>;
}

/**
 * Assembles Latchkey from settings: storage (key, database, encrypted object store), then each
 * module's assembler (identity, API keys, connectors, OAuth), the background work and the HTTP app.
 * Every dependency is built here and passed down; no module reads the environment. Nothing runs in
 * the background until `listen()` or `background.start()` (or `background: true`). A failure while
 * starting closes whatever was opened.
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
  const registry = builtinRegistry(options.objectTypes);
  const storage = await openStorage({
    settings,
    registry,
    logger,
    clock,
    metrics,
    migrate: options.migrate ?? true,
    allowKeyCreation: options.allowKeyCreation ?? settings.databaseUrl === undefined,
  });
  const { database, keyring, store } = storage;
  const background = new Background();
  // What close() undoes, newest first; filled as the parts are built so a failed start undoes them too.
  const closers: Array<() => Promise<void> | void> = [() => database.close(), () => background.stop()];
  const closeAll = async () => {
    // Background work first: a running task may still call the HTTP app, the outbound module and the database.
    await background.stop();
    for (const closer of closers.splice(0).reverse()) await closer();
  };

  try {
    const bus = new InvalidationBus({
      handle: database,
      boundMs: settings.cacheBoundMs,
      onError: (err) => logger.warn({ err }, 'Reading cache invalidations failed; retrying.'),
    });
    background.add({ name: 'invalidation bus', start: () => bus.start(), stop: () => bus.stop() });

    const identity = createIdentity({ db: database.db, appendRows: (table, rows) => database.appendRows(table, rows), bus, clock, logger });
    const usage = createUsageGate({ db: database.db, clock, logger });
    closers.push(() => usage.close());
    background.add({ name: 'API key usage flush', start: () => usage.start(), stop: () => {} });
    const apiKeys = createApiKeys({ db: database.db, store, authorizer: identity.authorizer, audit: identity.audit, bus, usage, clock, logger });
    closers.push(() => apiKeys.verifier.close());
    if (options.bootstrap ?? true) {
      const first = await identity.bootstrap();
      if (first.created) options.onBootstrap?.(first);
    }

    const oauthOptions = options.oauth ?? {};
    const outbound = createOutbound({
      ...(oauthOptions.fetch ? { fetch: oauthOptions.fetch } : {}),
      ...(oauthOptions.timeoutMs !== undefined ? { timeoutMs: oauthOptions.timeoutMs } : {}),
      allowInsecureLoopback: settings.allowInsecureLoopback || oauthOptions.unsafeAllowInsecureLoopbackRequests === true,
      egressAllow: settings.egressAllow,
      concurrency: settings.outboundConcurrency,
      clock,
      logger,
    });
    closers.push(() => outbound.close());
    const { issuer: issuerOption, ...taskOptions } = options.tasks ?? {};
    const issuer: ExternalCredentialIssuer | undefined =
      issuerOption ??
      (settings.taskCredentialIssuerUrl !== undefined && settings.taskCredentialIssuerSecret !== undefined
        ? createHttpCredentialIssuer({ url: settings.taskCredentialIssuerUrl, secret: settings.taskCredentialIssuerSecret, fetch: outbound.fetch })
        : undefined);
    if (settings.taskCredentialType === 'external' && !issuer) {
      throw new ConfigError('--task-credential-type (LATCHKEY_TASK_CREDENTIAL_TYPE) is "external", but no task credential issuer is configured (--task-credential-issuer-url).');
    }
    const strategy = createCredentialStrategy({ handle: database, apiKeys: apiKeys.service, ...(issuer ? { issuer } : {}), credentialType: settings.taskCredentialType, clock, logger });
    let taskApi: TaskApi | undefined;
    // The task engine comes before the modules whose work it runs: webhook attempts are queued as its tasks.
    const tasks = createTasks({
      handle: database,
      clock,
      logger,
      leaseMs: settings.taskLeaseMs,
      heartbeatMs: settings.taskHeartbeatMs,
      concurrency: settings.taskConcurrency,
      ...taskOptions,
      credentials: { strategy, store, authorizer: identity.authorizer },
      api: () => taskApi,
      // Webhooks are built on the engine (their attempts are its tasks); the sink runs only once both exist.
      store,
      onFinished: async (event, tx) => {
        await webhooks.emit(event.tenantId, event.type, event.data, { tx });
      },
    });
    const invalidator = new CredentialInvalidator({ handle: database, strategy, delayMs: settings.invalidationDelayMs, metrics: metrics.registry, clock });
    tasks.register({
      type: INVALIDATION_TASK,
      paramsSchema: z.object({}),
      timeout: '30m',
      maxAttempts: 1,
      run: async ({ signal }) => ({ ...(await invalidator.runOnce(signal)) }),
    });
    // The connector service is made below; the check runs only when a task is scheduled.
    tasks.register(connectorRequestTask({ connectors: { get: (tenantId, id) => connectors.get(tenantId, id) } }));
    const webhooks = createWebhooks({
      store,
      handle: database,
      outbound,
      audit: identity.audit,
      clock,
      logger,
      scheduler: webhookAttemptScheduler(tasks),
      ...(options.webhooks ?? {}),
    });

    // The connector service cascades a delete through the OAuth module, which is built on it (the
    // hook runs only on a delete, long after both exist).
    const connectors = createConnectorService({
      store,
      catalog: loadCatalog(),
      audit: identity.audit,
      allowInsecureLoopback: outbound.allowInsecureLoopback,
      beforeDelete: (tenantId, connectorId) => oauth.disconnectConnector(tenantId, connectorId),
      bus,
    });
    const oauth: AssembledOAuth = assembleOAuth({
      store,
      handle: database,
      connectors,
      outbound,
      publicUrl: settings.publicUrl,
      ...(oauthOptions.allowedReturnOrigins ? { allowedReturnOrigins: oauthOptions.allowedReturnOrigins } : {}),
      ...(oauthOptions.stateTtlMs !== undefined ? { stateTtlMs: oauthOptions.stateTtlMs } : {}),
      ...(oauthOptions.refreshSkewMs !== undefined ? { refreshSkewMs: oauthOptions.refreshSkewMs } : {}),
      cacheMs: settings.cacheBoundMs,
      onConnectionEvent: (event, tx) => webhooks.emit(event.tenantId, event.type, event.data, tx ? { tx } : {}).then(() => {}),
      audit: identity.audit,
      clock,
      logger,
    });
    const { flow, connections, tokens, credentials } = oauth;
    const proxy = createProxy({ connectors, tokens, credentials, connections, outbound, audit: identity.audit, logger });
    const connectSessions = createConnectSessions({ store, connectors, publicUrl: settings.publicUrl, audit: identity.audit, clock });

    const ownTasks = registerLatchkeyTasks({
      tasks,
      webhooks,
      cleanupExpired: async () => (await flow.cleanupExpired()) + (await connectSessions.deleteExpired(clock.now())),
      purgeExpiredSessions: () => identity.sessions.purgeExpired(),
      refreshExpiring: (run) =>
        refreshExpiringConnections({ store, tokens, tenantIds: async () => (await identity.tenants.list()).map((tenant) => tenant.id), clock, logger }, run),
      bus,
      maintenance: storage.maintenance,
      clock,
      logger,
    });
    // Stopped before the parts a running task may use (background work stops newest first).
    background.add({
      name: 'task runner',
      start: async () => {
        await ownTasks.ensure();
        await tasks.ensure(INVALIDATION_TASK, { type: INVALIDATION_TASK, schedule: { every: settings.invalidationIntervalMs } });
        await tasks.start();
      },
      stop: () => tasks.stop(),
    });

    const app =
      options.http === false
        ? undefined
        : await buildServerApp({
            logger,
            metrics,
            database,
            keyring,
            trustProxy: settings.trustProxy,
            publicUrl: settings.publicUrl,
            apiPlugins: [
              apiRoutes({ identity, apiKeys, bus, publicUrl: settings.publicUrl, clock, connectors, oauth: { flow, connections, tokens, credentials }, connectSessions, webhooks, proxy, tasks, diagnostics: createDiagnostics({ settings, ...storage }) }),
            ],
            sitePlugins: [connectPage({ sessions: connectSessions, connectors, connections, credentials, flow, publicUrl: settings.publicUrl, clock }), consoleSite()],
          });
    if (app) taskApi = (request) => app.inject({ method: request.method as 'GET', url: request.url, headers: request.headers, ...(request.body !== undefined ? { payload: request.body } : {}) });
    let appClosed = false;
    if (app) closers.push(() => (appClosed ? undefined : app.close()));
    if (options.background) await background.start();

    return {
      settings,
      logger,
      metrics,
      ...storage,
      registry,
      bus,
      identity,
      apiKeys,
      connectors,
      oauth: { flow, connections, tokens, credentials },
      connect: { sessions: connectSessions },
      proxy,
      webhooks,
      tasks,
      app,
      background,
      async listen() {
        if (!app) throw new LatchkeyError('internal_error', 'This instance was built without its HTTP app.');
        await background.start();
        return listenWithShutdown(app, {
          host: settings.host,
          port: settings.port,
          shutdownTimeoutMs: settings.shutdownTimeoutMs,
          logger,
          // The server has closed the app; the rest closes in reverse order of its making.
          onClose: () => {
            appClosed = true;
            return closeAll();
          },
        });
      },
      close: closeAll,
    };
  } catch (err) {
    await closeAll().catch((closeErr: unknown) => logger.warn({ err: closeErr }, 'Closing after a failed start failed.'));
    throw err;
  }
}
