import { LatchkeyError } from '../core/index.js';

/**
 * Error codes of the token client (HTTP status in brackets):
 * - `not_connected` (404): the connector has no connection (for this user); connect first.
 * - `needs_reauthorization` (409): the provider refused the grant or the client (invalid_grant,
 *   invalid_client) or there is no refresh token; refreshing stopped until the user reconnects.
 * - `connection_degraded` (503): the provider cannot be reached or answers nonsense; retried with
 *   exponential backoff, `details.retryAfter` says when.
 */
export type ConnectionErrorCode = 'not_connected' | 'needs_reauthorization' | 'connection_degraded';

export function connectionError(code: ConnectionErrorCode, message: string, details?: Record<string, unknown>): LatchkeyError {
  return new LatchkeyError(code, message, details ? { details } : {});
}
