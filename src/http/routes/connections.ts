import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { connectorCredentialSchema, isStaticCredentialAuthType, type ConnectorService } from '../../connectors/index.js';
import { LatchkeyError, systemClock, type Clock } from '../../core/index.js';
import { connectionId, isEndUser, type ConnectionStore, type ConnectionView, type OAuthFlow, type TokenClient, type UserCredentials } from '../../oauth/index.js';
import type { Proxy } from '../../proxy/index.js';
import { forbidden, isAdmin, principalOf, SECURITY, type Principal } from '../auth.js';
import {
  accessTokenSchema,
  authorizationSchema,
  authorizeBody,
  connectionListQuery,
  connectionPageSchema,
  connectionQuery,
  connectionSchema,
  connectorConnectionsQuery,
  connectorParams,
  disconnectedSchema,
  saveCredentialBody,
} from '../connector-schemas.js';
import { endUserOf, ownerOf } from '../connection-owner.js';
import { RequestLimiter, type RateLimit } from '../rate-limit.js';
import { EXAMPLE_TIMES as AT } from '../examples.js';
import { errorResponses } from '../schemas.js';

export interface ConnectionRoutesOptions {
  connectors: ConnectorService;
  flow: OAuthFlow;
  connections: ConnectionStore;
  tokens: TokenClient;
  credentials: UserCredentials;
  /** Hands out tokens, audited (`connection.token_issued`); without it they are handed out unaudited. */
  proxy?: Proxy;
  /** Authorization starts allowed per user within the window (default 20 a minute). */
  authorizeLimit?: RateLimit;
  clock?: Clock;
}

/** The 503 of a degraded connection, with its backoff as `Retry-After` seconds. */
function withRetryAfter(err: unknown, now: number): unknown {
  if (!(err instanceof LatchkeyError) || err.code !== 'connection_degraded') return err;
  const until = typeof err.details?.retryAfter === 'string' ? Date.parse(err.details.retryAfter) : Number.NaN;
  const retryAfterSeconds = Number.isFinite(until) ? Math.max(1, Math.ceil((until - now) / 1000)) : 1;
  return new LatchkeyError(err.code, err.message, { cause: err, details: { ...err.details, retryAfterSeconds } });
}

/**
 * Connecting accounts and using their tokens: start the authorization code flow, take a token,
 * read or end a connection. Per-user connectors name the user with `?user=` (default the caller;
 * another user needs identity:admin). Tokens appear only in the answer of `POST .../token`.
 *
 * @example
 * await secured.register(connectionRoutes, { connectors, flow, connections, tokens });
 */
export const connectionRoutes: FastifyPluginAsync<ConnectionRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { connectors, flow, connections, tokens, credentials } = options;
  const clock = options.clock ?? systemClock;
  const authorizeLimit = new RequestLimiter(
    options.authorizeLimit ?? { limit: 20, windowMs: 60_000 },
    'Too many connection attempts by this user; try again later.',
    clock,
  );

  app.post(
    '/connectors/:id/oauth/authorize',
    {
      config: { permission: 'connectors:use' },
      schema: {
        tags: ['connections'],
        operationId: 'authorizeConnector',
        summary: 'Start connecting an account (OAuth authorization code + PKCE)',
        description:
          'Needs connectors:use; connecting the one account of a shared connector also needs connectors:write. Returns the ' +
          'provider URL to send the user\'s browser to; the sign-in must finish before `expiresAt`. Per-user connectors store ' +
          'the tokens for the caller. `returnTo` must be a path on Latchkey or a URL on an allowed origin. Limited per user ' +
          '(20 a minute by default).',
        security: SECURITY,
        params: connectorParams,
        body: authorizeBody,
        response: { 200: authorizationSchema, ...errorResponses(400, 403, 404, 502) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      authorizeLimit.take(`${principal.tenantId}\n${principal.userId}`);
      const connector = await connectors.get(principal.tenantId, request.params.id);
      if (connector.tokenMode === 'shared' && !principal.permissions.has('connectors:write')) {
        throw forbidden('connectors:write', ' to connect the account of a shared connector');
      }
      const returnTo = request.body?.returnTo;
      const started = await flow.authorize(
        { tenantId: principal.tenantId, userId: principal.userId },
        connector.id,
        returnTo === undefined ? {} : { returnTo },
      );
      return reply.header('cache-control', 'no-store').send(started);
    },
  );

  app.post(
    '/connectors/:id/token',
    {
      config: { permission: 'connectors:token' },
      schema: {
        tags: ['connections'],
        operationId: 'takeToken',
        summary: 'Take a valid access token of a connection, or the credential of an api_key, basic or bearer connector',
        description:
          'Needs connectors:token. An `api_key`, `basic` or `bearer` connector answers its stored credential (a per-user one: ' +
          'the user\'s or end user\'s own, as `PUT .../connection` stored it), typed by `authType` ' +
          '(`{authType:"api_key",in,name,prefix,key}`, `{authType:"basic",username,password}`, `{authType:"bearer",token}`); every ' +
          'handout is in the audit log as `connector.credential_issued`. An OAuth connector answers an access token, refreshed ' +
          'when it expires within the skew, or within half its lifetime when that is shorter (exactly once, however many ' +
          'callers ask). 404 `not_connected`: connect first; 409 `needs_reauthorization`: the provider refused the grant, ' +
          'reconnect; 409 `insecure_endpoint`: the connector names a plain-http endpoint this ' +
          'server will not call (fix the connector, or start it with --allow-insecure-loopback for a local test server); ' +
          '503 `connection_degraded`: the provider is failing, retry after `Retry-After` seconds.',
        security: SECURITY,
        params: connectorParams,
        querystring: connectionQuery,
        response: {
          200: z.union([accessTokenSchema, connectorCredentialSchema]).meta({
            description: 'An access token (OAuth connectors) or the connector\'s credential (api_key, basic, bearer).',
            examples: [
              { accessToken: 'example-access-token-not-real', tokenType: 'bearer', expiresAt: AT.inAnHour },
              { authType: 'api_key', in: 'header', name: 'X-Api-Key', prefix: '', key: 'example-api-key-not-real' },
            ],
          }),
          ...errorResponses(400, 403, 404, 409, 502, 503),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const connector = await connectors.get(principal.tenantId, request.params.id);
      const owner = ownerOf(principal, connector, request.query.user, endUserOf(request));
      if (isStaticCredentialAuthType(connector.authType)) {
        const credential =
          owner === null
            ? await connectors.issueCredential(principal.actor, principal.tenantId, connector.id)
            : await credentials.issue(principal.actor, principal.tenantId, connector.id, owner);
        return reply.header('cache-control', 'no-store').send(credential);
      }
      try {
        const token = options.proxy
          ? await options.proxy.token(principal.actor, principal.tenantId, connector.id, owner)
          : await tokens.getAccessToken(principal.tenantId, connector.id, owner);
        return reply.header('cache-control', 'no-store').send(token);
      } catch (err) {
        throw withRetryAfter(err, clock.now().getTime());
      }
    },
  );

  app.put(
    '/connectors/:id/connection',
    {
      config: { permission: 'connectors:use' },
      schema: {
        tags: ['connections'],
        operationId: 'saveConnectionCredential',
        summary: 'Store a user\'s own credential for a per-user api_key, basic or bearer connector',
        description:
          'Needs connectors:use; another Latchkey user\'s also needs identity:admin. Name the owner as for `/token` (`?user=`, ' +
          'the `Latchkey-End-User` header, or the caller). Replaces an earlier credential. `config` holds the connector\'s ' +
          '`endUserFields`. The hosted connect page stores an end user\'s through the same service. Answers the connection, ' +
          'never the credential.',
        security: SECURITY,
        params: connectorParams,
        querystring: connectionQuery,
        body: saveCredentialBody,
        response: { 200: connectionSchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const connector = await connectors.get(principal.tenantId, request.params.id);
      const owner = ownerOf(principal, connector, request.query.user, endUserOf(request));
      const saved = await credentials.save(principal.actor, principal.tenantId, connector.id, owner, request.body);
      return reply.header('cache-control', 'no-store').send(saved);
    },
  );

  app.get(
    '/connectors/:id/connection',
    {
      config: { permission: 'connectors:read' },
      schema: {
        tags: ['connections'],
        operationId: 'getConnection',
        summary: 'Get the status of a connection (never its tokens)',
        description: 'Needs connectors:read; another user\'s connection also needs identity:admin. 404 `not_connected` when there is none.',
        security: SECURITY,
        params: connectorParams,
        querystring: connectionQuery,
        response: { 200: connectionSchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const connector = await connectors.get(principal.tenantId, request.params.id);
      const owner = ownerOf(principal, connector, request.query.user, endUserOf(request));
      return connections.get(principal.tenantId, connectionId(connector.id, owner));
    },
  );

  app.delete(
    '/connectors/:id/connection',
    {
      // The permission depends on whose connection it is: checked below.
      config: { permission: 'authenticated' },
      schema: {
        tags: ['connections'],
        operationId: 'deleteConnection',
        summary: 'Disconnect: delete a connection and revoke its tokens at the provider',
        description:
          'Needs connectors:use for the caller\'s own per-user connection, connectors:write for a shared connection or another ' +
          'user\'s (which also needs identity:admin). Revokes at the provider (RFC 7009) when it has a revocation endpoint; ' +
          '`revoked` says whether it confirmed. The connection is deleted either way.',
        security: SECURITY,
        params: connectorParams,
        querystring: connectionQuery,
        response: { 200: disconnectedSchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { permissions } = principal;
      if (!permissions.has('connectors:use') && !permissions.has('connectors:write')) throw forbidden('connectors:use');
      const connector = await connectors.get(principal.tenantId, request.params.id);
      const owner = ownerOf(principal, connector, request.query.user, endUserOf(request));
      // The application acts for its end users with connectors:use, as it connects them.
      if (!isEndUser(owner) && owner !== principal.userId && !permissions.has('connectors:write')) {
        throw forbidden('connectors:write', owner === null ? ' to disconnect a shared connection' : ' to disconnect another user\'s connection');
      }
      return tokens.disconnect(principal.tenantId, connector.id, owner);
    },
  );

  /** Another Latchkey user's connection is visible to admins only; shared and end users' connections to every reader. */
  const visibleTo = (principal: Principal) => (view: ConnectionView) => view.userId === null || view.userId === principal.userId || isAdmin(principal);

  app.get(
    '/connections',
    {
      config: { permission: 'connectors:read' },
      schema: {
        tags: ['connections'],
        operationId: 'listConnections',
        summary: 'List connections (never their tokens)',
        description:
          'Needs connectors:read. Filter by `endUserId` (an application\'s end user) and `connectorId`. Other Latchkey users\' ' +
          'connections are listed for identity:admin only. Paginated: pass `next` as `after`.',
        security: SECURITY,
        querystring: connectionListQuery,
        response: { 200: connectionPageSchema, ...errorResponses(400, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const page = await connections.list(principal.tenantId, request.query);
      return { ...page, items: page.items.filter(visibleTo(principal)) };
    },
  );

  app.get(
    '/connectors/:id/connections',
    {
      config: { permission: 'connectors:read' },
      schema: {
        tags: ['connections'],
        operationId: 'listConnectorConnections',
        summary: 'List every connection of a connector ("who has connected it?")',
        description: 'Needs connectors:read. Other Latchkey users\' connections are listed for identity:admin only. Paginated.',
        security: SECURITY,
        params: connectorParams,
        querystring: connectorConnectionsQuery,
        response: { 200: connectionPageSchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const connector = await connectors.get(principal.tenantId, request.params.id);
      const page = await connections.list(principal.tenantId, { ...request.query, connectorId: connector.id });
      return { ...page, items: page.items.filter(visibleTo(principal)) };
    },
  );

  app.post(
    '/connectors/:id/connection/_refresh',
    {
      config: { permission: 'connectors:use' },
      schema: {
        tags: ['connections'],
        operationId: 'refreshConnection',
        summary: 'Force a refresh of a connection (the provider refused its token)',
        description:
          'Needs connectors:use. Refreshes through the same exactly-once path as token requests: of many concurrent calls, ' +
          'one refreshes and the rest get its result. Answers the connection\'s status, never a token. Name the owner as for ' +
          '`/token` (`?user=` or `Latchkey-End-User`).',
        security: SECURITY,
        params: connectorParams,
        querystring: connectionQuery,
        response: { 200: connectionSchema, ...errorResponses(400, 403, 404, 409, 502, 503) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const connector = await connectors.get(principal.tenantId, request.params.id);
      const owner = ownerOf(principal, connector, request.query.user, endUserOf(request));
      try {
        await tokens.forceRefresh(principal.tenantId, connector.id, owner);
      } catch (err) {
        throw withRetryAfter(err, clock.now().getTime());
      }
      return connections.get(principal.tenantId, connectionId(connector.id, owner));
    },
  );
};
