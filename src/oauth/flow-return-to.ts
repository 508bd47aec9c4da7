import { LatchkeyError } from '../core/index.js';

const MAX_RETURN_TO = 2048;

function refuse(message: string): LatchkeyError {
  const fields = [{ path: 'returnTo', message }];
  return new LatchkeyError('validation_failed', `The request is invalid: "returnTo" ${message}.`, { details: { fields } });
}

/**
 * Checks where the browser goes after the callback: an absolute http(s) URL on an allowed origin,
 * or a path on Latchkey's own public URL. The URL is parsed the way browsers parse it (WHATWG), so
 * `//evil.example`, `/\evil.example` or `https://app.example@evil.example` resolve to their real
 * origin and are refused unless that origin is allowed. No open redirect.
 *
 * @example
 * checkReturnTo('/connected', 'https://latchkey.example.com', ['https://app.example.com']);
 * // 'https://latchkey.example.com/connected'
 * checkReturnTo('https://evil.example/', 'https://latchkey.example.com', []); // throws validation_failed
 */
export function checkReturnTo(returnTo: unknown, publicUrl: string, allowedOrigins: readonly string[]): string {
  if (typeof returnTo !== 'string' || returnTo.length === 0) throw refuse('must be a non-empty string');
  if (returnTo.length > MAX_RETURN_TO) throw refuse(`must be at most ${MAX_RETURN_TO} characters`);
  if (/[\p{Cc}\s]/u.test(returnTo)) throw refuse('must not contain white space or control characters');
  let url: URL;
  try {
    url = new URL(returnTo, publicUrl);
  } catch {
    throw refuse('must be a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refuse('must be an http or https URL');
  if (url.username || url.password) throw refuse('must not contain a user name or password');
  const own = new URL(publicUrl).origin;
  if (url.origin !== own && !allowedOrigins.includes(url.origin)) throw refuse(`must be on an allowed origin; ${url.origin} is not one`);
  return url.href;
}
