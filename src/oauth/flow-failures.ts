import * as oauth from 'oauth4webapi';

/**
 * Why a callback did not connect an account. Results, not errors: the callback page shows them
 * (or passes them to `returnTo`), and none of them is a fault of Latchkey itself.
 * - `invalid_state`: unknown, expired, already used or tampered state.
 * - `browser_mismatch`: the flow was bound to the browser that started it and another finished it.
 * - `provider_error`: the provider sent `error` back (the user declined, a bad scope...).
 * - `connector_unavailable`: the connector was deleted or changed while the user was away, or names an
 *   endpoint that no request may reach (plain http without the insecure-loopback opt-in, or an address
 *   the egress policy refuses).
 * - `provider_unavailable`: the provider could not be reached, timed out or answered 5xx.
 * - `token_exchange_failed`: the provider refused the code (invalid_grant, invalid_client...).
 * - `invalid_provider_response`: the provider's answer broke the protocol (not JSON, no access token, wrong iss).
 * - `internal_error`: the tokens could not be stored.
 */
export const CALLBACK_FAILURE_CODES = [
  'invalid_state',
  'browser_mismatch',
  'provider_error',
  'connector_unavailable',
  'provider_unavailable',
  'token_exchange_failed',
  'invalid_provider_response',
  'internal_error',
] as const;

export type CallbackFailureCode = (typeof CALLBACK_FAILURE_CODES)[number];

export interface Failure {
  code: CallbackFailureCode;
  /** One sentence of plain text (the HTTP layer escapes it). */
  message: string;
  /** The provider's OAuth error code, when it sent one (`access_denied`, `invalid_grant`...). */
  providerError?: string;
}

const MAX_TEXT = 300;

/**
 * Provider text made fit for one sentence: control characters and runs of white space become one
 * space, at most 300 characters, no trailing full stop (the caller ends the sentence).
 */
export function plainText(value: string): string {
  const flat = value.replace(/[\p{Cc}\p{Zl}\p{Zp}\s]+/gu, ' ').trim();
  const cut = flat.length > MAX_TEXT ? `${flat.slice(0, MAX_TEXT - 1)}…` : flat;
  return cut.replace(/[.\s]+$/, '');
}

/** An OAuth error code as RFC 6749 allows it (printable ASCII without `"` and `\`), or undefined. */
export function errorCode(value: string | null | undefined): string | undefined {
  if (!value || value.length > 100 || !/^[\x20\x21\x23-\x5B\x5D-\x7E]+$/.test(value)) return undefined;
  return value;
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}

/** The callback's error parameters, as a failure. */
export function providerErrorFailure(provider: string, error: string, description: string | undefined): Failure {
  const code = errorCode(error);
  const detail = description ? plainText(description) : '';
  const reason = detail || code || 'an unknown error';
  return {
    code: 'provider_error',
    message: code === 'access_denied' && !detail ? `Access was not granted at ${provider}.` : `${provider} did not authorize the connection: ${reason}.`,
    ...(code ? { providerError: code } : {}),
  };
}

/**
 * Maps what discovery or the token exchange threw to a failure. Unknown errors (a bug, an argument
 * error) are not mapped: the caller rethrows them.
 */
export function remoteFailure(provider: string, err: unknown): Failure | undefined {
  if (isTimeout(err)) return { code: 'provider_unavailable', message: `${provider} did not answer in time; try again later.` };
  if (err instanceof oauth.ResponseBodyError) {
    const code = errorCode(err.error);
    if (err.status >= 500) return { code: 'provider_unavailable', message: `${provider} failed to answer (HTTP ${err.status}); try again later.` };
    return {
      code: 'token_exchange_failed',
      message: `${provider} refused the authorization${code ? ` (${code})` : ''}; start connecting again.`,
      ...(code ? { providerError: code } : {}),
    };
  }
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    return { code: 'token_exchange_failed', message: `${provider} refused the client credentials (HTTP ${err.status}).` };
  }
  if (err instanceof oauth.AuthorizationResponseError) return providerErrorFailure(provider, err.error, err.error_description);
  if (err instanceof oauth.OperationProcessingError || err instanceof oauth.UnsupportedOperationError) {
    const status = err.cause instanceof Response ? err.cause.status : undefined;
    if (status !== undefined && status >= 500) {
      return { code: 'provider_unavailable', message: `${provider} failed to answer (HTTP ${status}); try again later.` };
    }
    return { code: 'invalid_provider_response', message: `${provider} sent an answer that does not follow the OAuth protocol.` };
  }
  // fetch() rejects with a TypeError (cause: ECONNREFUSED, ENOTFOUND...) when the server is unreachable.
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  if (err instanceof TypeError && (err.message === 'fetch failed' || typeof cause?.code === 'string') && !('code' in err)) {
    return { code: 'provider_unavailable', message: `${provider} could not be reached; try again later.` };
  }
  return undefined;
}
