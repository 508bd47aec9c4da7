import type { LatchkeyError } from '../core/index.js';
import { cleanExtra, normaliseTokenType, type ConnectionAttributes, type TokenSet } from './connections.js';
import { backoffDelayMs, type BackoffOptions, type RefreshFailure } from './refresh.js';
import type { ResolvedClient } from './resolved-client.js';
import { connectionError } from './tokens-errors.js';

/**
 * What to do with a connection's token: hand it out, refresh it, give up (no refresh token and
 * expired), or fail (needs reauthorization, or in backoff with an expired token).
 */
export type Decision = { kind: 'use' } | { kind: 'refresh' } | { kind: 'unrefreshable' } | { kind: 'fail'; error: LatchkeyError };

export interface DecideInput {
  now: number;
  skewMs: number;
  /** A refresh token, or the client credentials grant. */
  canRefresh: boolean;
  /** A token an API refused: never handed out again. */
  rejected?: string | undefined;
  /** Proactive refresh: count the token due this much earlier (see {@link refreshAhead}). */
  aheadMs?: number;
}

export function needsReauthorization(id: string, code: string | null): LatchkeyError {
  return connectionError(
    'needs_reauthorization',
    `The connection ${id} must be reconnected: the provider no longer accepts its grant${code ? ` (${code})` : ''}.`,
    { lastRefreshError: code },
  );
}

export function degraded(id: string, code: string | null, retryAfter: string | null): LatchkeyError {
  return connectionError(
    'connection_degraded',
    `The provider of connection ${id} cannot issue a token right now${code ? ` (${code})` : ''}; retry later.`,
    { lastRefreshError: code, retryAfter },
  );
}

/** Expiry in epoch ms; a token without one counts as valid until an API refuses it. */
function expiry(a: ConnectionAttributes): number {
  return a.expiresAt === null ? Number.POSITIVE_INFINITY : Date.parse(a.expiresAt);
}

/**
 * When a token is refreshed ahead of its expiry: the skew before it, or half the token's lifetime
 * when that is shorter (a 5-minute skew would refresh a 5-minute token on every request). Without
 * `issuedAt` (connections stored before it was recorded) the skew alone applies.
 *
 * @example
 * refreshAt({ expiresAt: '2030-01-01T00:05:00Z', issuedAt: '2030-01-01T00:00:00Z' }, 5 * 60_000); // 00:02:30
 */
export function refreshAt(a: Pick<ConnectionAttributes, 'expiresAt' | 'issuedAt'>, skewMs: number): number {
  if (a.expiresAt === null) return Number.POSITIVE_INFINITY;
  const expiresAt = Date.parse(a.expiresAt);
  const issuedAt = a.issuedAt === null ? Number.NaN : Date.parse(a.issuedAt);
  const lifetime = expiresAt - issuedAt;
  const margin = Number.isFinite(lifetime) && lifetime >= 0 ? Math.min(skewMs, lifetime / 2) : skewMs;
  return expiresAt - margin;
}

/**
 * How much earlier than {@link refreshAt} a proactive refresh counts a token due: `aheadMs`, but at
 * most a quarter of the token's lifetime, so that a token just issued (by a concurrent refresh, seen
 * again under the lock) is never due: a proactive and an on-demand refresh together refresh once.
 *
 * @example
 * refreshAhead({ expiresAt: '2030-01-01T00:10:00Z', issuedAt: '2030-01-01T00:00:00Z' }, 5 * 60_000); // 150 000
 */
export function refreshAhead(a: Pick<ConnectionAttributes, 'expiresAt' | 'issuedAt'>, aheadMs: number): number {
  if (aheadMs <= 0 || a.expiresAt === null) return 0;
  const lifetime = a.issuedAt === null ? Number.NaN : Date.parse(a.expiresAt) - Date.parse(a.issuedAt);
  return Number.isFinite(lifetime) && lifetime >= 0 ? Math.min(aheadMs, lifetime / 4) : aheadMs;
}

export function decide(id: string, a: ConnectionAttributes, input: DecideInput): Decision {
  if (a.status === 'needs_reauthorization') return { kind: 'fail', error: needsReauthorization(id, a.lastRefreshError) };
  const usable = a.accessToken !== '' && a.accessToken !== input.rejected;
  const expiresAt = expiry(a);
  if (usable && refreshAt(a, input.skewMs) - refreshAhead(a, input.aheadMs ?? 0) > input.now) return { kind: 'use' };
  const stillValid = usable && expiresAt > input.now;
  if (a.backoffUntil !== null && Date.parse(a.backoffUntil) > input.now) {
    return stillValid ? { kind: 'use' } : { kind: 'fail', error: degraded(id, a.lastRefreshError, a.backoffUntil) };
  }
  if (!input.canRefresh) return stillValid ? { kind: 'use' } : { kind: 'unrefreshable' };
  return { kind: 'refresh' };
}

/** The attributes after a successful refresh: active again, the old refresh token kept when none came. */
export function refreshedAttributes(a: ConnectionAttributes, tokens: TokenSet, at: Date): ConnectionAttributes {
  const rotated = tokens.refreshToken !== undefined;
  return {
    ...a,
    accessToken: tokens.accessToken,
    refreshToken: rotated ? tokens.refreshToken : a.refreshToken,
    refreshTokenExpiresAt: rotated ? (tokens.refreshTokenExpiresAt ?? null) : a.refreshTokenExpiresAt,
    tokenType: normaliseTokenType(tokens.tokenType),
    scopes: tokens.scopes ? [...tokens.scopes] : a.scopes,
    expiresAt: tokens.expiresAt ?? null,
    issuedAt: tokens.issuedAt ?? null,
    extra: tokens.extra ? { ...a.extra, ...cleanExtra(tokens.extra) } : a.extra,
    status: 'active',
    lastRefreshAt: at.toISOString(),
    lastRefreshError: null,
    backoffUntil: null,
    failureCount: 0,
  };
}

/** The attributes after a failed refresh, and the error its callers get. */
export function failedAttributes(
  a: ConnectionAttributes,
  failure: Pick<RefreshFailure, 'outcome' | 'code'>,
  at: Date,
  backoff?: BackoffOptions,
): { patch: Partial<ConnectionAttributes>; error: (id: string) => LatchkeyError } {
  const failureCount = a.failureCount + 1;
  const common = { lastRefreshError: failure.code, lastFailureAt: at.toISOString(), failureCount };
  if (failure.outcome === 'needs_reauthorization') {
    return { patch: { ...common, status: 'needs_reauthorization', backoffUntil: null }, error: (id) => needsReauthorization(id, failure.code) };
  }
  const backoffUntil = new Date(at.getTime() + backoffDelayMs(failureCount, backoff)).toISOString();
  return { patch: { ...common, status: 'degraded', backoffUntil }, error: (id) => degraded(id, failure.code, backoffUntil) };
}

/** A client credentials connection before its first token: a row to lock, nothing to hand out. */
export function placeholderAttributes(client: ResolvedClient): ConnectionAttributes {
  return {
    connectorId: client.connectorId,
    userId: null,
    endUserId: null,
    tokenType: 'Bearer',
    scopes: [...client.scopes],
    expiresAt: null,
    issuedAt: null,
    refreshTokenExpiresAt: null,
    extra: {},
    status: 'active',
    lastRefreshAt: null,
    lastRefreshError: null,
    lastFailureAt: null,
    backoffUntil: null,
    failureCount: 0,
    config: {},
    accessToken: '',
  };
}
