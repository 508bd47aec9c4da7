import type * as oauth from 'oauth4webapi';
import type { TokenSet } from './connections.js';

const KNOWN = new Set(['access_token', 'refresh_token', 'id_token', 'token_type', 'scope', 'expires_in', 'refresh_token_expires_in']);
/** Response fields that may hold a credential are never kept in `extra`. */
const CREDENTIAL_FIELD = /token|secret|password|assertion|code|key|signature/i;

function seconds(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : undefined;
}

function splitScopes(scope: string): string[] {
  // RFC 6749 says space; some providers (Slack, GitHub) answer with commas.
  return scope.split(/[\s,]+/).filter((s) => s.length > 0);
}

/**
 * The TokenSet of a validated token response (processAuthorizationCodeResponse's result). Times are
 * relative to `now` (the time the request was sent, recorded as `issuedAt`); `requestedScopes` stand in when the response has no `scope` (RFC 6749 5.1: the
 * granted scopes are then those requested).
 *
 * @example
 * const tokens = toTokenSet(await oauth.processAuthorizationCodeResponse(as, client, response), new Date(), ['openid']);
 */
export function toTokenSet(response: oauth.TokenEndpointResponse, now: Date, requestedScopes: readonly string[]): TokenSet {
  const tokens: TokenSet = { accessToken: response.access_token, tokenType: response.token_type };
  if (response.refresh_token !== undefined) tokens.refreshToken = response.refresh_token;
  const scopes = response.scope !== undefined ? splitScopes(response.scope) : [...requestedScopes];
  if (scopes.length > 0) tokens.scopes = scopes;
  const expiresIn = seconds(response.expires_in);
  if (expiresIn !== undefined) {
    tokens.expiresAt = new Date(now.getTime() + expiresIn * 1000).toISOString();
    tokens.issuedAt = now.toISOString();
  }
  const refreshIn = seconds(response.refresh_token_expires_in);
  if (refreshIn !== undefined && tokens.refreshToken !== undefined) {
    tokens.refreshTokenExpiresAt = new Date(now.getTime() + refreshIn * 1000).toISOString();
  }
  const extra: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(response)) {
    if (KNOWN.has(name) || CREDENTIAL_FIELD.test(name) || value === undefined) continue;
    extra[name] = value;
  }
  if (Object.keys(extra).length > 0) tokens.extra = extra;
  return tokens;
}
