import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { stringError } from '../../core/index.js';
import type { Identity } from '../../identity/index.js';
import { SESSION_COOKIE } from '../auth.js';
import { CSRF_COOKIE, csrfTokenFor } from '../csrf.js';
import { EXAMPLE_IDS as ID, EXAMPLE_TIMES as AT } from '../examples.js';
import { noContent, publicErrorResponses, timestampSchema, withRequestExample } from '../schemas.js';

export interface SessionRoutesOptions {
  identity: Identity;
  /** The session cookie is `Secure` when Latchkey is served over https. */
  secureCookie: boolean;
}

const loginBody = withRequestExample(
  z.strictObject({
    tenant: z.string({ error: stringError }).min(1, { error: 'must not be empty' }).max(63, { error: 'is too long' }),
    username: z.string({ error: stringError }).min(1, { error: 'must not be empty' }).max(128, { error: 'is too long' }),
    password: z.string({ error: stringError }).min(1, { error: 'must not be empty' }).max(1024, { error: 'is too long' }),
  }),
  { tenant: 'acme', username: 'ada', password: 'example-password-not-real' },
);

const sessionSchema = z.object({ tenantId: z.string(), userId: z.string(), expiresAt: timestampSchema }).meta({
  id: 'Session',
  description: 'The console session (the token is in the Set-Cookie header only).',
  examples: [{ tenantId: ID.tenant, userId: ID.user, expiresAt: AT.inAnHour }],
});

/**
 * Console login and logout. Public: registered beside the authenticated routes, not behind them.
 * Failed logins are limited per account and per client address by the session service.
 *
 * @example
 * await api.register(sessionRoutes, { identity, secureCookie: settings.publicUrl.startsWith('https:') });
 */
export const sessionRoutes: FastifyPluginAsync<SessionRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { identity } = options;
  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, path: '/', secure: options.secureCookie };
  // The CSRF token (see csrf.ts): the console's script reads it, no other site gets it.
  const csrfCookieOptions = { httpOnly: false, sameSite: 'strict' as const, path: '/', secure: options.secureCookie };

  app.post(
    '/sessions',
    {
      schema: {
        tags: ['sessions'],
        operationId: 'createSession',
        summary: 'Log in',
        description:
          'Checks a console user\'s password and sets the `latchkey_session` cookie (HttpOnly, SameSite=Lax, Secure under https). ' +
          'Every failure is the same 401; repeated failures per account or address are 429 with `Retry-After`.',
        security: [],
        body: loginBody,
        response: { 201: sessionSchema, ...publicErrorResponses(400, 401, 429) },
      },
    },
    async (request, reply) => {
      const { tenant, username, password } = request.body;
      const session = await identity.sessions.login({ tenant, username, password, address: request.ip });
      const expires = new Date(session.expiresAt);
      reply.setCookie(SESSION_COOKIE, session.token, { ...cookieOptions, expires });
      reply.setCookie(CSRF_COOKIE, csrfTokenFor(session.token), { ...csrfCookieOptions, expires });
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({ tenantId: session.tenantId, userId: session.userId, expiresAt: session.expiresAt });
    },
  );

  app.delete(
    '/sessions/current',
    {
      schema: {
        tags: ['sessions'],
        operationId: 'deleteSession',
        summary: 'Log out',
        description: 'Ends the session named by the `latchkey_session` cookie, if any, and clears the cookie. Always 204.',
        security: [],
        // Like every route: a NUL character in the query string is a 400.
        response: { 204: noContent, ...publicErrorResponses(400) },
      },
    },
    async (request, reply) => {
      const cookie = request.headers.cookie;
      const token = cookie === undefined ? undefined : app.parseCookie(cookie)[SESSION_COOKIE];
      if (token !== undefined && token !== '') await identity.sessions.logout(token);
      reply.clearCookie(SESSION_COOKIE, cookieOptions);
      reply.clearCookie(CSRF_COOKIE, csrfCookieOptions);
      return reply.code(204).send(null);
    },
  );
};
