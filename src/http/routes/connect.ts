import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ConnectSessions } from '../../connect/index.js';
import type { ConnectorService } from '../../connectors/index.js';
import { LatchkeyError, systemClock, type Clock } from '../../core/index.js';
import { CALLBACK_PATH, type CallbackResult, type ConnectionStore, type OAuthFlow } from '../../oauth/index.js';
import { principalOf, SECURITY } from '../auth.js';
import { CONNECT_ASSETS, connectErrorPage, connectHeaders, connectListPage, connectOutcomePage, type ConnectAssetName, type ConnectOutcome, type ConnectPageItem } from '../connect-html.js';
import { RequestLimiter, type RateLimit } from '../rate-limit.js';
import { errorResponses } from '../schemas.js';

/** The cookie that binds a connect flow to the browser that started it; sent only to the callback. */
export const CONNECT_COOKIE = 'latchkey_connect';

const endUserSchema = z.strictObject({
  id: z.string().describe('The application\'s own id for the end user (1 to 255 characters).'),
  displayName: z.string().optional(),
  email: z.string().optional(),
  tags: z.record(z.string(), z.string()).optional().describe('Up to 20 key-value pairs.'),
});

const createBody = z
  .strictObject({
    endUser: endUserSchema,
    allowedConnectors: z.array(z.string()).optional().describe('Per-user connectors the end user may connect (default every per-user connector).'),
    returnTo: z.string().optional().describe('Where the page sends the browser when done; must be on one of `allowedOrigins`.'),
    allowedOrigins: z.array(z.string()).optional().describe('Origins that may get the outcome: by redirect to `returnTo`, or by postMessage to the opener.'),
    ttlMs: z.number().optional().describe('Lifetime in milliseconds (default 30 minutes, at most 24 hours).'),
  })
  .describe('A connect session for one end user.');

const createdSchema = z.object({
  token: z.string().describe('The session token, shown once. It can only start and finish connections for this end user.'),
  url: z.string().describe('The hosted connect page for this session.'),
  expiresAt: z.string(),
});

export interface ConnectSessionRoutesOptions {
  sessions: ConnectSessions;
}

/** `POST /api/v1/connect-sessions` (permission `connectors:use`). */
export const connectSessionRoutes: FastifyPluginAsync<ConnectSessionRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.post(
    '/connect-sessions',
    {
      config: { permission: 'connectors:use' },
      schema: {
        tags: ['connections'],
        summary: 'Create a connect session for an end user',
        description:
          'Needs connectors:use. Answers a short-lived token and the URL of the hosted connect page, where the end user connects ' +
          'their own accounts of the allowed per-user connectors. The token is shown once and can do nothing else.',
        security: SECURITY,
        body: createBody,
        response: { 201: createdSchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const created = await options.sessions.create(principal.actor, principal.tenantId, request.body);
      return reply.code(201).header('cache-control', 'no-store').send(created);
    },
  );
};

export interface ConnectPageRoutesOptions {
  sessions: ConnectSessions;
  connectors: ConnectorService;
  connections: ConnectionStore;
  flow: OAuthFlow;
  /** The callback cookie is `Secure` when the public URL is https. */
  secureCookie: boolean;
  /** Flows started per session within the window (default 20 a minute). */
  startLimit?: RateLimit;
  clock?: Clock;
}

function statusOf(status: string | undefined): ConnectPageItem['status'] {
  if (status === undefined) return 'not_connected';
  if (status === 'active') return 'connected';
  return status === 'degraded' ? 'degraded' : 'needs_reauthorization';
}

/**
 * The hosted connect page: `GET /connect?session=...` lists what the end user may connect;
 * `POST /connect/start` (a form) starts the authorization code flow, bound to the session, the end
 * user and a cookie of this browser. Public: the session token is the credential.
 */
export const connectPageRoutes: FastifyPluginAsync<ConnectPageRoutesOptions> = async (fastify, options) => {
  const { sessions, connections, flow } = options;
  const limiter = new RequestLimiter(options.startLimit ?? { limit: 20, windowMs: 60_000 }, 'Too many connection attempts; try again in a minute.', options.clock ?? systemClock);
  // The page's forms post urlencoded fields; URLSearchParams parses them.
  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  const fail = (reply: FastifyReply, err: unknown) => {
    if (!(err instanceof LatchkeyError) || err.status >= 500) throw err;
    return connectHeaders(reply).code(err.status).type('text/html; charset=utf-8').send(connectErrorPage(err.message));
  };

  fastify.get('/connect', { schema: { hide: true } }, async (request, reply) => {
    const token = (request.query as Record<string, unknown>)['session'];
    try {
      const session = await sessions.open(token);
      const items: ConnectPageItem[] = [];
      for (const connector of await sessions.connectors(session)) {
        const connection = await connections.find(session.tenantId, connector.id, { endUserId: session.endUserId });
        items.push({ id: connector.id, name: connector.name, status: statusOf(connection?.status), connectable: connector.authType === 'oauth_authorization_code' });
      }
      return connectHeaders(reply).type('text/html; charset=utf-8').send(connectListPage(token as string, session.displayName, items));
    } catch (err) {
      return fail(reply, err);
    }
  });

  fastify.post('/connect/start', { schema: { hide: true } }, async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    try {
      const session = await sessions.open(body['session']);
      limiter.take(session.id);
      const connector = await sessions.connector(session, body['connector']);
      const started = await flow.authorize({ tenantId: session.tenantId, endUserId: session.endUserId, connectSessionId: session.id }, connector.id);
      const maxAge = Math.max(1, Math.floor((Date.parse(started.expiresAt) - Date.now()) / 1000));
      reply.setCookie(CONNECT_COOKIE, started.browserCookie ?? '', {
        path: CALLBACK_PATH,
        httpOnly: true,
        sameSite: 'lax',
        secure: options.secureCookie,
        maxAge,
      });
      return connectHeaders(reply).redirect(started.authorizationUrl, 303);
    } catch (err) {
      return fail(reply, err);
    }
  });

  fastify.get('/connect/assets/:name', { schema: { hide: true } }, async (request, reply) => {
    const name = (request.params as { name: string }).name;
    if (!Object.hasOwn(CONNECT_ASSETS, name)) throw new LatchkeyError('not_found', 'There is no such asset.');
    const asset = CONNECT_ASSETS[name as ConnectAssetName];
    return reply.header('cache-control', 'public, max-age=3600').header('x-content-type-options', 'nosniff').type(asset.type).send(asset.body);
  });
};

/**
 * What the OAuth callback shows for a flow started on the connect page: a redirect to the
 * session's `returnTo`, or a page that says how it went and posts it to the opener (allowed
 * origins only). Undefined when the flow did not come from a connect session.
 */
export async function connectCallbackOutcome(
  sessions: ConnectSessions,
  connectors: ConnectorService,
  result: CallbackResult,
  reply: FastifyReply,
): Promise<FastifyReply | undefined> {
  const sessionId = result.connectSessionId;
  if (sessionId === null || sessionId === undefined) return undefined;
  reply.clearCookie(CONNECT_COOKIE, { path: CALLBACK_PATH });
  const session = result.tenantId === undefined ? undefined : await sessions.find(result.tenantId, sessionId);
  let outcome: ConnectOutcome;
  if (result.ok) {
    const name = await connectors.get(result.tenantId, result.connectorId).then((c) => c.name, () => 'The');
    outcome = { type: 'latchkey:connect', ok: true, connectorId: result.connectorId, endUserId: result.endUserId, message: `${name} account is connected.` };
  } else {
    outcome = {
      type: 'latchkey:connect',
      ok: false,
      connectorId: result.connectorId ?? null,
      endUserId: result.endUserId ?? null,
      error: result.code,
      ...(result.providerError ? { providerError: result.providerError } : {}),
      message: result.message,
    };
  }
  connectHeaders(reply);
  if (session?.returnTo) {
    const target = new URL(session.returnTo);
    target.searchParams.set('status', outcome.ok ? 'connected' : 'failed');
    if (outcome.connectorId) target.searchParams.set('connector', outcome.connectorId);
    if (!outcome.ok) {
      target.searchParams.set('error', outcome.error ?? 'failed');
      if (outcome.providerError) target.searchParams.set('provider_error', outcome.providerError);
      target.searchParams.set('error_description', outcome.message);
    }
    return reply.redirect(target.href, 302);
  }
  return reply
    .code(result.ok ? 200 : 400)
    .type('text/html; charset=utf-8')
    .send(connectOutcomePage(outcome, session?.allowedOrigins ?? []));
}
