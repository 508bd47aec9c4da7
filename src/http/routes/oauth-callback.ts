import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { systemClock, type Clock } from '../../core/index.js';
import { CALLBACK_PATH, type CallbackFailureCode, type CallbackResult, type OAuthFlow } from '../../oauth/index.js';
import { CONNECT_COOKIE } from './connect.js';
import { API_PREFIX } from '../app.js';
import { errorBodySchema } from '../errors.js';
import { RequestLimiter, type RateLimit } from '../rate-limit.js';
import { callbackHeaders, resultPage } from '../result-page.js';

export interface OAuthCallbackRoutesOptions {
  flow: OAuthFlow;
  /**
   * The answer for flows started on the hosted connect page (undefined for any other flow): the
   * callback then reads the browser-binding cookie and leaves the page to the connect module.
   */
  connectOutcome?: (result: CallbackResult, reply: FastifyReply) => Promise<FastifyReply | undefined>;
  /** Callbacks allowed per client address within the window (default 60 a minute). */
  callbackLimit?: RateLimit;
  clock?: Clock;
}

/** The status of the result page for each way a callback can fail. */
const FAILURE_STATUS: Readonly<Record<CallbackFailureCode, 400 | 500 | 502>> = {
  invalid_state: 400,
  browser_mismatch: 400,
  provider_error: 400,
  connector_unavailable: 400,
  token_exchange_failed: 502,
  provider_unavailable: 502,
  invalid_provider_response: 502,
  internal_error: 500,
};

const param = (description: string) => z.string().optional().describe(description);

const callbackQuery = z.looseObject({
  state: param('The state Latchkey issued at authorize; good for one callback.'),
  code: param('The authorization code.'),
  iss: param('The issuer (RFC 9207), checked when the issuer is known.'),
  error: param('The provider\'s error code, when it did not authorize.'),
  error_description: param('The provider\'s explanation (shown HTML-escaped).'),
});

/** A plain page answer, with the page it shows as its example. */
const page = (title: string, message: string) => z.string().meta({ examples: [resultPage(title, message)] });
const html = (description: string, title: string, message: string) => ({ description, content: { 'text/html': { schema: page(title, message) } } });
const CONNECTED_PAGE = ['Account connected', 'The account is connected. You can close this window.'] as const;

/**
 * `GET /api/v1/oauth/callback`, the redirect URI of every connector (unless one overrides it):
 * public, since the browser comes back from the provider without Latchkey credentials. The state
 * (consumed in one statement) says who started the flow. Success: 302 to `returnTo` (checked at
 * authorize: no open redirect), else a plain page. Failure: 302 to `returnTo?error=<code>` when the
 * state named one, else a plain page whose text is HTML-escaped (provider text included).
 * Limited per client address.
 *
 * @example
 * await api.register(oauthCallbackRoutes, { flow });
 */
export const oauthCallbackRoutes: FastifyPluginAsync<OAuthCallbackRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { flow } = options;
  const limiter = new RequestLimiter(
    options.callbackLimit ?? { limit: 60, windowMs: 60_000 },
    'Too many sign-in callbacks from this address; try again later.',
    options.clock ?? systemClock,
  );
  // Registered under /api/v1: the path the flow builds redirect URIs with, minus the prefix.
  const path = CALLBACK_PATH.startsWith(API_PREFIX) ? CALLBACK_PATH.slice(API_PREFIX.length) : CALLBACK_PATH;

  app.get(
    path,
    {
      schema: {
        tags: ['connections'],
        operationId: 'finishOAuthAuthorization',
        summary: 'OAuth redirect URI: finishes connecting an account',
        description:
          'Public: the provider sends the user\'s browser here. Register `<LATCHKEY_PUBLIC_URL>/api/v1/oauth/callback` as the ' +
          'redirect URI at the provider. Answers with a redirect to `returnTo` (with `?error=<code>` on failure) or a plain ' +
          'HTML page. Limited per client address.',
        security: [],
        querystring: callbackQuery,
        response: {
          200: html('Connected; no `returnTo` was given.', ...CONNECTED_PAGE),
          302: z.null().describe('To `returnTo`; on failure with `error` set to the failure code (invalid_state, provider_error...) and `error_description` to one sentence with the provider\'s own error, as plain text.'),
          400: {
            description: 'The state is unknown, expired or used, the provider refused, or the connector is gone (HTML); or a malformed query (JSON).',
            content: {
              'text/html': { schema: page('Connecting failed', 'This sign-in link is invalid, expired or already used; start connecting again.') },
              'application/json': { schema: errorBodySchema },
            },
          },
          429: errorBodySchema.describe('Too many callbacks from this address (`rate_limited`); `Retry-After` says when to come back.'),
          500: html('The tokens could not be stored.', 'Connecting failed', 'The account could not be saved; try connecting again.'),
          502: html('The provider could not be reached, refused the code or answered badly.', 'Connecting failed', 'The provider refused the sign-in code; start connecting again.'),
        },
      },
    },
    async (request, reply) => {
      limiter.take(request.ip);
      const params = new URL(request.url, 'http://callback.invalid').searchParams;
      const cookie = request.headers.cookie;
      const browserCookie = cookie === undefined ? undefined : fastify.parseCookie(cookie)[CONNECT_COOKIE];
      const result = await flow.callback(params, browserCookie === undefined ? {} : { browserCookie });
      callbackHeaders(reply);
      const handled = await options.connectOutcome?.(result, reply);
      if (handled) {
        request.log.info({ ok: result.ok, code: result.ok ? undefined : result.code, connectorId: result.connectorId }, 'A connect page flow finished.');
        return handled;
      }
      if (result.ok) {
        request.log.info({ tenantId: result.tenantId, connectorId: result.connectorId, userId: result.userId }, 'An account was connected.');
        if (result.returnTo) return reply.redirect(result.returnTo, 302);
        return reply
          .code(200)
          .type('text/html; charset=utf-8')
          .send(resultPage(...CONNECTED_PAGE));
      }
      request.log.info({ code: result.code, providerError: result.providerError }, 'An OAuth callback did not connect an account.');
      if (result.returnTo) {
        const target = new URL(result.returnTo);
        target.searchParams.set('error', result.code);
        // The sentence a person reads (with the provider's own error and description, as plain text): the page shows it as text.
        target.searchParams.set('error_description', result.message.slice(0, 500));
        return reply.redirect(target.href, 302);
      }
      return reply
        .code(FAILURE_STATUS[result.code])
        .type('text/html; charset=utf-8')
        .send(resultPage('Connecting failed', result.message));
    },
  );
};
