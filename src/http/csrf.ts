import { createHmac, timingSafeEqual } from 'node:crypto';

// CSRF defence for requests authenticated by the session cookie (a signed double-submit token).
// At login Latchkey sets, beside the HttpOnly session cookie, a cookie that script can read: an
// HMAC of the session token. The console sends it back in a header on every state-changing
// request; the auth plugin recomputes it from the session cookie. Another site can neither read
// the cookie nor compute the HMAC without the session token, and a cookie it plants (from a
// sibling subdomain) matches no session. Requests with an API key carry no ambient credential and
// need no token.

/** The cookie that holds the token: readable by the console's script, sent to Latchkey only. */
export const CSRF_COOKIE = 'latchkey_csrf';

/** The header the console sends the token in. */
export const CSRF_HEADER = 'x-latchkey-csrf';

/** Methods that change nothing: no token needed. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The one sentence of a refused request. */
export const CSRF_FAILED =
  'A request made with the session cookie must send the X-Latchkey-CSRF header with the value of the latchkey_csrf cookie; reload the console or log in again.';

/**
 * The CSRF token of a session: derived from the session token, so nothing is stored.
 *
 * @example
 * reply.setCookie(CSRF_COOKIE, csrfTokenFor(session.token), { path: '/', sameSite: 'strict' });
 */
export function csrfTokenFor(sessionToken: string): string {
  return createHmac('sha256', sessionToken).update('latchkey csrf token v1').digest('base64url');
}

/** True when a request of this method needs the token. */
export function needsCsrfToken(method: string): boolean {
  return !SAFE_METHODS.has(method);
}

/**
 * Whether the header holds the token of this session (compared in constant time).
 *
 * @example
 * if (!csrfTokenMatches(sessionToken, request.headers[CSRF_HEADER])) throw new LatchkeyError('csrf_failed', CSRF_FAILED);
 */
export function csrfTokenMatches(sessionToken: string, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string' || header.length === 0 || header.length > 128) return false;
  const expected = Buffer.from(csrfTokenFor(sessionToken));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
