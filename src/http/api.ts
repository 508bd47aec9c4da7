import fastifyCookie from '@fastify/cookie';
import type { FastifyPluginAsync } from 'fastify';
import type { ApiKeys } from '../apikeys/index.js';
import type { Diagnostics } from '../objects/index.js';
import type { ConnectSessions } from '../connect/index.js';
import type { ConnectorService } from '../connectors/index.js';
import type { Proxy } from '../proxy/index.js';
import type { Clock } from '../core/index.js';
import type { InvalidationBus } from '../db/index.js';
import type { Identity } from '../identity/index.js';
import type { ConnectionStore, OAuthFlow, TokenClient, UserCredentials } from '../oauth/index.js';
import type { Webhooks } from '../webhooks/index.js';
import { authPlugin } from './auth.js';
import { DisplayCache } from './display-cache.js';
import type { RateLimit } from './rate-limit.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { auditRoutes } from './routes/audit.js';
import { connectCallbackOutcome, connectPageRoutes, connectSessionRoutes } from './routes/connect.js';
import { connectionRoutes } from './routes/connections.js';
import { proxyRoutes } from './routes/proxy.js';
import { connectorRoutes } from './routes/connectors.js';
import { groupRoutes } from './routes/groups.js';
import { meRoutes } from './routes/me.js';
import { oauthCallbackRoutes } from './routes/oauth-callback.js';
import { providerRoutes } from './routes/providers.js';
import { roleRoutes } from './routes/roles.js';
import { sessionRoutes } from './routes/sessions.js';
import { settingsRoutes } from './routes/settings.js';
import { tenantRoutes } from './routes/tenants.js';
import { userRoutes } from './routes/users.js';
import { webhookRoutes } from './routes/webhooks.js';
import { taskRoutes } from './routes/tasks.js';
import type { Tasks } from '../tasks/index.js';

export interface ApiRoutesOptions {
  identity: Identity;
  apiKeys: ApiKeys;
  /** Started by the caller; the display cache follows its invalidations. */
  bus: InvalidationBus;
  /** `LATCHKEY_PUBLIC_URL`: the session cookie is `Secure` when it is https. */
  publicUrl: string;
  /** Failed authentications allowed per client address within the window (default 30 a minute). */
  authFailureLimit?: { limit: number; windowMs: number };
  /** Connectors and connections; without them the connector routes are left out. */
  connectors?: ConnectorService;
  oauth?: {
    flow: OAuthFlow;
    connections: ConnectionStore;
    tokens: TokenClient;
    credentials: UserCredentials;
    /** Authorization starts per user within the window (default 20 a minute). */
    authorizeLimit?: RateLimit;
    /** OAuth callbacks per client address within the window (default 60 a minute). */
    callbackLimit?: RateLimit;
  };
  /** The proxy to connectors' APIs (needs `connectors` and `oauth`). */
  proxy?: Proxy;
  /** Connect sessions for end users (needs `connectors` and `oauth`); the page itself is {@link connectPage}. */
  connectSessions?: ConnectSessions;
  /** Webhook endpoints and deliveries; without them the webhook routes are left out. */
  webhooks?: Webhooks;
  /** The task engine; without it the task routes are left out. */
  tasks?: Tasks;
  /** The server's settings and doctor's checks (`GET /settings`, `GET /doctor`); without it those routes are left out. */
  diagnostics?: Diagnostics;
  clock?: Clock;
}

/**
 * The identity, API key, connector and connection routes, to register under `/api/v1` (pass to
 * `createHttpApp` in `apiPlugins`). Login, logout and the OAuth callback sit in a public scope;
 * everything else in a sibling scope behind {@link authPlugin}, each route declaring the
 * permission it needs.
 *
 * @example
 * const app = await createHttpApp({ logger, metrics, readiness: [],
 *   apiPlugins: [apiRoutes({ identity, apiKeys, bus, publicUrl: settings.publicUrl, connectors, oauth: { flow, connections, tokens } })] });
 */
export function apiRoutes(options: ApiRoutesOptions): FastifyPluginAsync {
  const { identity, apiKeys, bus, connectors, oauth, webhooks } = options;
  const clock = options.clock ? { clock: options.clock } : {};
  return async (api) => {
    const display = new DisplayCache({ identity, apiKeys, bus });
    api.addHook('onClose', async () => display.close());
    // Cookies are parsed only where a route needs them: an API key request never pays for it.
    await api.register(fastifyCookie, { hook: false });

    await api.register(sessionRoutes, { identity, secureCookie: new URL(options.publicUrl).protocol === 'https:' });
    if (oauth) {
      const sessions = options.connectSessions;
      await api.register(oauthCallbackRoutes, {
        flow: oauth.flow,
        ...(oauth.callbackLimit ? { callbackLimit: oauth.callbackLimit } : {}),
        ...(sessions && connectors ? { connectOutcome: (result, reply) => connectCallbackOutcome(sessions, connectors, result, reply) } : {}),
        ...clock,
      });
    }

    await api.register(async (secured) => {
      await secured.register(authPlugin, {
        identity,
        apiKeys,
        display,
        ...(options.authFailureLimit ? { failureLimit: options.authFailureLimit } : {}),
        ...clock,
      });
      await secured.register(meRoutes, { display });
      await secured.register(tenantRoutes, { identity, display });
      await secured.register(userRoutes, { identity });
      await secured.register(groupRoutes, { identity });
      await secured.register(roleRoutes, { identity });
      await secured.register(apiKeyRoutes, { identity, apiKeys });
      await secured.register(auditRoutes, { identity });
      if (connectors) await secured.register(connectorRoutes, { connectors });
      if (connectors) await secured.register(providerRoutes, { providers: connectors.providers });
      if (webhooks) await secured.register(webhookRoutes, { webhooks });
      if (options.tasks) await secured.register(taskRoutes, { tasks: options.tasks });
      if (options.diagnostics) await secured.register(settingsRoutes, { diagnostics: options.diagnostics });
      if (connectors && oauth) {
        const { flow, connections, tokens, credentials } = oauth;
        await secured.register(connectionRoutes, {
          connectors,
          flow,
          connections,
          tokens,
          credentials,
          ...(options.proxy ? { proxy: options.proxy } : {}),
          ...(oauth.authorizeLimit ? { authorizeLimit: oauth.authorizeLimit } : {}),
          ...clock,
        });
        if (options.connectSessions) await secured.register(connectSessionRoutes, { sessions: options.connectSessions });
        if (options.proxy) await secured.register(proxyRoutes, { connectors, proxy: options.proxy });
      }
    });
  };
}

export interface ConnectPageOptions {
  sessions: ConnectSessions;
  connectors: ConnectorService;
  connections: ConnectionStore;
  credentials: UserCredentials;
  flow: OAuthFlow;
  publicUrl: string;
  clock?: Clock;
}

/**
 * The hosted connect page (`/connect`), registered at the root of the app next to the API.
 *
 * @example
 * await createHttpApp({ ..., apiPlugins: [apiRoutes({ ..., connectSessions })], sitePlugins: [connectPage({ sessions, connectors, connections, credentials, flow, publicUrl })] });
 */
export function connectPage(options: ConnectPageOptions): FastifyPluginAsync {
  return async (site) => {
    await site.register(fastifyCookie, { hook: false });
    await site.register(connectPageRoutes, {
      sessions: options.sessions,
      connectors: options.connectors,
      connections: options.connections,
      credentials: options.credentials,
      flow: options.flow,
      secureCookie: new URL(options.publicUrl).protocol === 'https:',
      ...(options.clock ? { clock: options.clock } : {}),
    });
  };
}
