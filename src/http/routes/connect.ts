import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CONNECT_PAGE_PATH, type ConnectSession, type ConnectSessions } from '../../connect/index.js';
import { USER_CREDENTIAL_FIELDS, isStaticCredentialAuthType, type ConnectorService, type ConnectorView } from '../../connectors/index.js';
import { LatchkeyError, systemClock, type Clock } from '../../core/index.js';
import { CALLBACK_PATH, type CallbackResult, type ConnectionStore, type OAuthFlow, type UserCredentials } from '../../oauth/index.js';
import { principalOf, SECURITY } from '../auth.js';
import {
  CONNECT_ASSETS,
  connectErrorPage,
  connectHeaders,
  connectListPage,
  connectOutcomePage,
  type ConnectAssetName,
  type ConnectFormField,
  type ConnectOutcome,
  type ConnectPageItem,
} from '../connect-html.js';
import { RequestLimiter, type RateLimit } from '../rate-limit.js';
import { EXAMPLE_CONNECT_TOKEN, EXAMPLE_IDS as ID, EXAMPLE_PUBLIC_URL, EXAMPLE_TIMES as AT } from '../examples.js';
import { errorResponses, timestampSchema, withRequestExample } from '../schemas.js';

/** The cookie that binds a connect flow to the browser that started it; sent only to the callback. */
export const CONNECT_COOKIE = 'latchkey_connect';

const endUserSchema = z.strictObject({
  id: z.string().describe('The application\'s own id for the end user (1 to 255 characters).'),
  displayName: z.string().optional(),
  email: z.string().optional(),
  tags: z.record(z.string(), z.string()).optional().describe('Up to 20 key-value pairs.'),
});

const createBody = withRequestExample(
  z
    .strictObject({
      endUser: endUserSchema,
      allowedConnectors: z.array(z.string()).optional().describe('Per-user connectors the end user may connect (default every per-user connector).'),
      returnTo: z.string().optional().describe('Where the page sends the browser when done; must be on one of `allowedOrigins`.'),
      allowedOrigins: z.array(z.string()).optional().describe('Origins that may get the outcome: by redirect to `returnTo`, or by postMessage to the opener.'),
      ttlMs: z.number().optional().describe('Lifetime in milliseconds (default 30 minutes, at most 24 hours).'),
    })
    .describe('A connect session for one end user.'),
  {
    endUser: { id: 'customer-42', displayName: 'Grace Hopper', email: 'grace@customer.example', tags: { plan: 'pro' } },
    allowedConnectors: [ID.perUserConnector],
    returnTo: 'https://app.example.com/integrations/done',
    allowedOrigins: ['https://app.example.com'],
    ttlMs: 900_000,
  },
);

const createdSchema = z.object({
  token: z.string().describe('The session token, shown once. It can only start and finish connections for this end user.'),
  url: z.string().describe('The hosted connect page for this session.'),
  expiresAt: timestampSchema,
}).meta({
  description: 'The new connect session: hand `url` (or `token`) to the end user.',
  examples: [{ token: EXAMPLE_CONNECT_TOKEN, url: `${EXAMPLE_PUBLIC_URL}/connect?session=${EXAMPLE_CONNECT_TOKEN}`, expiresAt: AT.soon }],
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
        operationId: 'createConnectSession',
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
  /** Stores end users' own credentials for per-user api_key, basic and bearer connectors. */
  credentials: UserCredentials;
  flow: OAuthFlow;
  /** The callback and form cookies are `Secure` when the public URL is https. */
  secureCookie: boolean;
  /** Flows started and credentials submitted per session within the window (default 20 a minute). */
  startLimit?: RateLimit;
  clock?: Clock;
}

/** The cookie that binds the page's credential forms to the browser that opened the page. */
export const CONNECT_FORM_COOKIE = 'latchkey_connect_form';
const FORM_COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;
/** Form bodies: a credential is at most 8192 characters, and every field is percent-encoded. */
const FORM_BODY_LIMIT = 64 * 1024;

function statusOf(status: string | undefined): ConnectPageItem['status'] {
  if (status === undefined) return 'not_connected';
  if (status === 'active') return 'connected';
  return status === 'degraded' ? 'degraded' : 'needs_reauthorization';
}

const CREDENTIAL_LABELS: Readonly<Record<'key' | 'username' | 'password' | 'token', { label: string; secret: boolean; maxLength: number }>> = {
  key: { label: 'API key', secret: true, maxLength: 8192 },
  username: { label: 'User name', secret: false, maxLength: 255 },
  password: { label: 'Password', secret: true, maxLength: 8192 },
  token: { label: 'Token', secret: true, maxLength: 8192 },
};

/** What the page asks of the end user for a connector: its end-user fields, then its credential's parts. */
function itemOf(connector: ConnectorView, providers: ConnectorService['providers'], status: ConnectPageItem['status']): ConnectPageItem {
  const described = new Map(providers.get(connector.provider).fields.filter((f) => f.location === 'config').map((f) => [f.name, f]));
  const fields: ConnectFormField[] = connector.endUserFields.map((name) => {
    const field = described.get(name);
    return {
      name: `config.${name}`,
      label: name.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/^./, (c) => c.toUpperCase()),
      ...(field ? { hint: field.description } : {}),
      secret: false,
      required: field?.required ?? true,
      maxLength: field?.schema.maxLength ?? 2048,
    };
  });
  const base = { id: connector.id, name: connector.name, status };
  if (connector.authType === 'oauth_authorization_code') return { ...base, kind: 'oauth', fields };
  if (connector.tokenMode === 'per_user' && isStaticCredentialAuthType(connector.authType)) {
    const parts = USER_CREDENTIAL_FIELDS[connector.authType].map((part) => ({ name: `credential.${part}`, required: true, ...CREDENTIAL_LABELS[part] }));
    return { ...base, kind: 'credential', fields: [...fields, ...parts] };
  }
  return { ...base, kind: 'none', fields: [] };
}

/** `config.<field>` and `credential.<part>` form fields as the services take them; anything else stays a top-level key (and is refused there). */
/** A form's fields: `config.*` (end-user config), `credential.*`, and the rest. */
interface FormInput {
  config: Record<string, unknown>;
  credential: Record<string, unknown>;
  rest: Record<string, unknown>;
}

function formInput(body: Record<string, unknown>, omit: readonly string[]): FormInput {
  const out = { config: {} as Record<string, unknown>, credential: {} as Record<string, unknown>, rest: {} as Record<string, unknown> };
  for (const [name, value] of Object.entries(body)) {
    if (omit.includes(name)) continue;
    const dot = name.indexOf('.');
    const group = dot === -1 ? undefined : name.slice(0, dot);
    if (group === 'config' || group === 'credential') out[group][name.slice(dot + 1)] = value;
    else out.rest[name] = value;
  }
  return out;
}

/** The form token of a session in a browser: the hash of the browser's form cookie and the session's id. */
function formTokenOf(cookie: string, sessionId: string): string {
  return createHash('sha256').update(`${cookie}\n${sessionId}`, 'utf8').digest('base64url');
}

/**
 * The hosted connect page: `GET /connect?session=...` lists what the end user may connect;
 * `POST /connect/start` (a form) starts the authorization code flow, bound to the session, the end
 * user and a cookie of this browser, after the connector's end-user fields (a subdomain) when it has
 * any; `POST /connect/credentials` stores the end user's own credential of a per-user api_key, basic
 * or bearer connector, through the same service as `PUT /api/v1/connectors/{id}/connection`. Public:
 * the session token is the credential.
 *
 * Every form (starting a flow, saving a credential) carries a form token, the hash of a random
 * `SameSite=Strict`, HttpOnly cookie set when the page is opened and the session's id: a submission
 * must come from the browser that opened the page (a cross-site post carries no cookie; a forwarded
 * form token is no good without it).
 */
export const connectPageRoutes: FastifyPluginAsync<ConnectPageRoutesOptions> = async (fastify, options) => {
  const { sessions, connectors, connections, credentials, flow } = options;
  const clock = options.clock ?? systemClock;
  const limiter = new RequestLimiter(options.startLimit ?? { limit: 20, windowMs: 60_000 }, 'Too many connection attempts; try again in a minute.', clock);
  // The page's forms post urlencoded fields; URLSearchParams parses them (a repeated field keeps its last value).
  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  const html = (reply: FastifyReply, status: number, body: string) => connectHeaders(reply).code(status).type('text/html; charset=utf-8').send(body);
  const fail = (reply: FastifyReply, err: unknown) => {
    if (!(err instanceof LatchkeyError) || err.status >= 500) throw err;
    return html(reply, err.status, connectErrorPage(err.message));
  };
  // Errors before a route runs (a body over the limit, a malformed one) are pages too, in words.
  fastify.setErrorHandler(async (err, request, reply) => {
    const status = typeof (err as { statusCode?: unknown }).statusCode === 'number' ? (err as { statusCode: number }).statusCode : 500;
    // A form refused at the edge (a NUL character in a field): the page again with the reason, as
    // the routes' own checks do, so the person can correct it; only for a session that opens.
    if (err instanceof LatchkeyError && err.code === 'validation_failed' && request.method === 'POST') {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const session = await sessions.open(body['session']).catch(() => undefined);
      if (session) return listPage(request, reply, body['session'] as string, session, 400, { connectorId: String(body['connector']), message: err.message });
    }
    if (err instanceof LatchkeyError) return fail(reply, err);
    if (status === 413) return html(reply, 413, connectErrorPage('What you sent is too large; nothing was saved.'));
    if (status >= 400 && status < 500) return html(reply, 400, connectErrorPage('The form could not be read; nothing was saved. Open the connect link again.'));
    throw err;
  });

  /** The form cookie this browser has, or a new one set on the reply. */
  const formCookie = (request: FastifyRequest, reply: FastifyReply, session: ConnectSession): string => {
    const header = request.headers.cookie;
    const existing = header === undefined ? undefined : fastify.parseCookie(header)[CONNECT_FORM_COOKIE];
    if (existing !== undefined && FORM_COOKIE_VALUE.test(existing)) return existing;
    const value = randomBytes(32).toString('base64url');
    const maxAge = Math.max(1, Math.floor((Date.parse(session.expiresAt) - clock.now().getTime()) / 1000));
    reply.setCookie(CONNECT_FORM_COOKIE, value, { path: CONNECT_PAGE_PATH, httpOnly: true, sameSite: 'strict', secure: options.secureCookie, maxAge });
    return value;
  };

  const assertSameBrowser = (request: FastifyRequest, session: ConnectSession, token: unknown) => {
    const header = request.headers.cookie;
    const cookie = header === undefined ? undefined : fastify.parseCookie(header)[CONNECT_FORM_COOKIE];
    const expected = Buffer.from(cookie !== undefined && FORM_COOKIE_VALUE.test(cookie) ? formTokenOf(cookie, session.id) : '');
    const actual = Buffer.from(typeof token === 'string' ? token : '');
    if (expected.length === 0 || actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
      throw new LatchkeyError('forbidden', 'This form was not opened in this browser, or it has expired; open the connect link again in this browser.');
    }
  };

  const listItems = async (session: ConnectSession): Promise<ConnectPageItem[]> => {
    const items: ConnectPageItem[] = [];
    for (const connector of await sessions.connectors(session)) {
      const connection = await connections.find(session.tenantId, connector.id, { endUserId: session.endUserId });
      items.push(itemOf(connector, connectors.providers, statusOf(connection?.status)));
    }
    return items;
  };

  const listPage = async (request: FastifyRequest, reply: FastifyReply, token: string, session: ConnectSession, status: number, error?: { connectorId: string; message: string }) => {
    const items = await listItems(session);
    const formToken = formTokenOf(formCookie(request, reply, session), session.id);
    return html(reply, status, connectListPage(token, session.displayName, items, { formToken, ...(error ? { error } : {}) }));
  };

  fastify.get('/connect', { schema: { hide: true } }, async (request, reply) => {
    const token = (request.query as Record<string, unknown>)['session'];
    try {
      const session = await sessions.open(token);
      return await listPage(request, reply, token as string, session, 200);
    } catch (err) {
      return fail(reply, err);
    }
  });

  /**
   * A form of the page: opens its session, counts it against the session's limit, checks it comes
   * from the browser that opened the page (a cross-site post made with someone else's session — login
   * CSRF — must not start a flow or save a credential), finds the connector the session allows and
   * reads the fields. Bad details show the page again with the reason (never the value).
   */
  const formPost =
    (handle: (reply: FastifyReply, form: { session: ConnectSession; connector: ConnectorView; input: FormInput }) => Promise<unknown>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      let session: ConnectSession | undefined;
      try {
        session = await sessions.open(body['session']);
        limiter.take(session.id);
        assertSameBrowser(request, session, body['form_token']);
        const connector = await sessions.connector(session, body['connector']);
        return await handle(reply, { session, connector, input: formInput(body, ['session', 'connector', 'form_token']) });
      } catch (err) {
        if (session && err instanceof LatchkeyError && err.code === 'validation_failed') {
          return listPage(request, reply, body['session'] as string, session, 400, { connectorId: String(body['connector']), message: err.message });
        }
        return fail(reply, err);
      }
    };

  fastify.post(
    '/connect/start',
    { schema: { hide: true } },
    formPost(async (reply, { session, connector, input }) => {
      const subject = { tenantId: session.tenantId, endUserId: session.endUserId, connectSessionId: session.id };
      const started = await flow.authorize(subject, connector.id, connector.endUserFields.length > 0 ? { endUserConfig: input.config } : {});
      const maxAge = Math.max(1, Math.floor((Date.parse(started.expiresAt) - Date.now()) / 1000));
      reply.setCookie(CONNECT_COOKIE, started.browserCookie ?? '', {
        path: CALLBACK_PATH,
        httpOnly: true,
        sameSite: 'lax',
        secure: options.secureCookie,
        maxAge,
      });
      return connectHeaders(reply).redirect(started.authorizationUrl, 303);
    }),
  );

  fastify.post(
    '/connect/credentials',
    { schema: { hide: true } },
    formPost(async (reply, { session, connector, input }) => {
      const { config, credential, rest } = input;
      const actor = { type: 'end_user' as const, tenantId: session.tenantId, endUserId: session.endUserId, connectSessionId: session.id };
      await credentials.save(actor, session.tenantId, connector.id, { endUserId: session.endUserId }, { ...rest, credential, config });
      const outcome: ConnectOutcome = { type: 'latchkey:connect', ok: true, connectorId: connector.id, endUserId: session.endUserId, message: `${connector.name} account is connected.` };
      // 303: the browser follows a form post with a GET.
      return sendOutcome(reply, session, outcome, 303);
    }),
  );

  fastify.get('/connect/assets/:name', { schema: { hide: true } }, async (request, reply) => {
    const name = (request.params as { name: string }).name;
    if (!Object.hasOwn(CONNECT_ASSETS, name)) throw new LatchkeyError('not_found', 'There is no such asset.');
    const asset = CONNECT_ASSETS[name as ConnectAssetName];
    return reply.header('cache-control', 'public, max-age=3600').header('x-content-type-options', 'nosniff').type(asset.type).send(asset.body);
  });
};

/**
 * Tells the end user and the application how connecting went: a redirect to the session's
 * `returnTo` (with `status`, `connector` and, on failure, `error`, `provider_error` and
 * `error_description`), else a page that says it and posts it to the opener (allowed origins only).
 */
function sendOutcome(reply: FastifyReply, session: ConnectSession | undefined, outcome: ConnectOutcome, redirectStatus: 302 | 303): FastifyReply {
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
    return reply.redirect(target.href, redirectStatus);
  }
  return reply
    .code(outcome.ok ? 200 : 400)
    .type('text/html; charset=utf-8')
    .send(connectOutcomePage(outcome, session?.allowedOrigins ?? []));
}

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
  return sendOutcome(reply, session, outcome, 302);
}
