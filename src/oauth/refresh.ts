import * as oauth from 'oauth4webapi';
import type { Outbound } from '../outbound/index.js';
import { withoutIdToken } from './id-token.js';
import { clientAuthentication, type ResolvedClient } from './resolved-client.js';

export type TokenGrant = { type: 'refresh_token'; refreshToken: string } | { type: 'client_credentials' };

function authorizationServer(client: ResolvedClient): oauth.AuthorizationServer {
  return {
    // Without a known issuer the token URL's origin stands in: only an id_token's `iss` is checked against it.
    issuer: client.issuer ?? new URL(client.tokenUrl).origin,
    token_endpoint: client.tokenUrl,
    ...(client.revocationUrl !== undefined ? { revocation_endpoint: client.revocationUrl } : {}),
  };
}

function authOf(client: ResolvedClient): oauth.ClientAuth {
  return clientAuthentication(client.clientAuthentication, client.clientSecret);
}

/**
 * One call to the token endpoint (a refresh or a client credentials grant), built and checked by
 * oauth4webapi. Throws whatever oauth4webapi or fetch throws; {@link classifyRefreshError} sorts it.
 */
export async function requestTokens(client: ResolvedClient, grant: TokenGrant, outbound: Outbound): Promise<oauth.TokenEndpointResponse> {
  const as = authorizationServer(client);
  const metadata: oauth.Client = { client_id: client.clientId };
  const options = outbound.oauthOptions(client.tokenUrl);
  if (grant.type === 'refresh_token') {
    let response = await oauth.refreshTokenGrantRequest(as, metadata, authOf(client), grant.refreshToken, {
      ...options,
      additionalParameters: client.tokenParams,
    });
    // Without a known issuer an id_token (Google, Microsoft with "common") cannot be checked; it is
    // dropped, as the authorization code exchange does (Latchkey never uses it).
    if (client.issuer === undefined) response = await withoutIdToken(response);
    return oauth.processRefreshTokenResponse(as, metadata, response);
  }
  const parameters = new URLSearchParams(client.tokenParams);
  if (client.scopes.length > 0) parameters.set('scope', client.scopes.join(client.scopeSeparator));
  const response = await oauth.clientCredentialsGrantRequest(as, metadata, authOf(client), parameters, options);
  return oauth.processClientCredentialsResponse(as, metadata, response);
}

/** RFC 7009 revocation of one token at the client's revocation endpoint. */
export async function revokeToken(client: ResolvedClient, token: string, hint: 'refresh_token' | 'access_token', outbound: Outbound): Promise<void> {
  if (client.revocationUrl === undefined) throw new TypeError('"client.revocationUrl" is required to revoke a token.');
  const as = authorizationServer(client);
  const response = await oauth.revocationRequest(as, { client_id: client.clientId }, authOf(client), token, {
    ...outbound.oauthOptions(client.revocationUrl),
    additionalParameters: { token_type_hint: hint },
  });
  await oauth.processRevocationResponse(response);
}

export interface RefreshFailure {
  /** `needs_reauthorization`: refreshing stops until a reconnect. `degraded`: retried after a backoff. */
  outcome: 'needs_reauthorization' | 'degraded';
  /** Stored as `lastRefreshError`: the provider's OAuth error code or one of ours. */
  code: string;
  /** HTTP status of the provider's answer, when there was one. */
  status?: number;
}

/** Errors after which the refresh token (or the client) will not work again: only a reconnect helps. */
const REAUTHORIZE = new Set(['invalid_grant', 'invalid_client']);
const OAUTH_ERROR_CODE = /^[a-z0-9_]{1,64}$/;

function providerCode(error: string | undefined): string {
  return error !== undefined && OAUTH_ERROR_CODE.test(error) ? error : 'provider_error';
}

/**
 * Sorts a failed token endpoint call. `invalid_grant` and `invalid_client` (in the body or in a
 * `WWW-Authenticate` challenge; a bare 401 means the client failed to authenticate) need the user
 * to reconnect. Everything else (network errors, timeouts, 5xx, other OAuth errors, answers that
 * are not a token response) is transient: degraded, retried after a backoff.
 */
export function classifyRefreshError(err: unknown): RefreshFailure {
  if (err instanceof oauth.ResponseBodyError) {
    if (REAUTHORIZE.has(err.error) && err.status < 500) return { outcome: 'needs_reauthorization', code: err.error, status: err.status };
    return { outcome: 'degraded', code: err.status >= 500 ? 'server_error' : providerCode(err.error), status: err.status };
  }
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    const error = err.cause.map((challenge) => challenge.parameters.error).find((e) => e !== undefined);
    if ((error !== undefined && REAUTHORIZE.has(error)) || (error === undefined && err.status === 401)) {
      return { outcome: 'needs_reauthorization', code: error ?? 'invalid_client', status: err.status };
    }
    return { outcome: 'degraded', code: err.status >= 500 ? 'server_error' : providerCode(error), status: err.status };
  }
  if (err instanceof oauth.OperationProcessingError) {
    // Some checks carry the response: an error status without an OAuth error body (text, HTML).
    const status = err.cause instanceof Response ? err.cause.status : undefined;
    if (status !== undefined && status !== 200) return { outcome: 'degraded', code: status >= 500 ? 'server_error' : 'unexpected_status', status };
    switch (err.code) {
      case oauth.HTTP_REQUEST_FORBIDDEN:
      case oauth.REQUEST_PROTOCOL_FORBIDDEN:
      case oauth.MISSING_SERVER_METADATA:
      case oauth.INVALID_SERVER_METADATA:
        return { outcome: 'degraded', code: 'invalid_endpoint' };
      default:
        // Not JSON, no access_token, a bad expires_in or id_token: not a usable token response.
        return { outcome: 'degraded', code: 'invalid_response' };
    }
  }
  if (err instanceof oauth.UnsupportedOperationError) return { outcome: 'degraded', code: 'invalid_response' };
  const name = (err as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return { outcome: 'degraded', code: 'timeout' };
  return { outcome: 'degraded', code: 'network_error' };
}

export interface BackoffOptions {
  /** Delay after the first failure (default 1 s); doubled after each further failure. */
  initialMs?: number;
  /** Longest delay (default 10 minutes). */
  maxMs?: number;
}

/** Exponential backoff with jitter (80 to 100 % of the step), so a provider outage is not met by a stampede on recovery. */
export function backoffDelayMs(failureCount: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialMs ?? 1000;
  const max = options.maxMs ?? 10 * 60 * 1000;
  const step = Math.min(max, initial * 2 ** Math.min(Math.max(failureCount - 1, 0), 30));
  return Math.round(step * (0.8 + 0.2 * random()));
}
