import { LatchkeyError, systemClock, type Clock, type Logger } from '../core/index.js';
import type { EncryptedObjectStore, ObjectTransaction } from '../objects/index.js';
import { recordConnectionEvent, type ConnectionEvent, type ConnectionEventSink } from './connection-events.js';
import {
  CONNECTION_TYPE,
  assertConnectionKey,
  connectionId,
  isEndUser,
  readConnection,
  type ConnectionAttributes,
  type ConnectionOwner,
  type ConnectionRecord,
} from './connections.js';
import { withConnectionLock } from './connections-lock.js';
import { createOutbound, type Outbound } from '../outbound/index.js';
import { classifyRefreshError, requestTokens, revokeToken, type BackoffOptions } from './refresh.js';
import type { ResolvedClient } from './resolved-client.js';
import { decide, failedAttributes, placeholderAttributes, refreshAt, refreshedAttributes, type Decision } from './tokens.js';
import { connectionError } from './tokens-errors.js';
import { toTokenSet } from './flow-tokens.js';
import { AccessTokenCache } from './token-client-cache.js';

export interface TokenClientOptions {
  /** Its registry must know {@link CONNECTION_TYPE}; built with `handle` (refreshes run in its transactions). */
  store: EncryptedObjectStore;
  /**
   * The connector as the token client uses it. `connectionConfig` reads the config stored with the
   * connection (the end user's subdomain...), for connectors whose endpoints depend on it.
   */
  resolveClient(tenantId: string, connectorId: string, connectionConfig?: () => Promise<Record<string, string> | undefined>): Promise<ResolvedClient>;
  /** Every call to a token or revocation endpoint goes through it (default: `createOutbound()`). */
  outbound?: Outbound;
  clock?: Clock;
  logger?: Logger;
  /**
   * Refresh when the token expires within this (default 5 minutes), or within half its lifetime
   * when that is shorter (the lifetime the provider gave when it issued the token).
   */
  refreshSkewMs?: number;
  /** Backoff of degraded connections (default 1 s doubling up to 10 minutes). */
  backoff?: BackoffOptions;
  /**
   * Keep handed-out tokens in this process for this long (default 0: every call reads the
   * database). A hit skips `resolveClient` and the database. The price: a disconnect or reconnect
   * through another process is seen here only after this long. Tokens expiring within the skew
   * are never served from the cache.
   */
  cacheMs?: number;
  /** Told of refresh failures, recoveries and disconnects, in the transaction of the change (see `recordConnectionEvent`). */
  onConnectionEvent?: ConnectionEventSink;
}

export interface AccessToken {
  accessToken: string;
  /** `Bearer` for most providers: use as `Authorization: <tokenType> <accessToken>`. */
  tokenType: string;
  /** Null when the provider said nothing: the token is used until an API answers 401. */
  expiresAt: string | null;
}

export interface TokenClient {
  /** How long before its expiry a token is refreshed on demand (the `refreshSkewMs` option). */
  readonly refreshSkewMs: number;
  /**
   * A valid access token, refreshing when it expires within the skew. Refresh happens exactly
   * once however many callers and processes ask at once. Throws `not_connected`,
   * `needs_reauthorization` or `connection_degraded` (with `details.retryAfter`).
   */
  getAccessToken(tenantId: string, connectorId: string, owner?: ConnectionOwner): Promise<AccessToken>;
  /**
   * For a token an API refused (401) although it had not expired (or had no expiry): a new one,
   * refreshed exactly once however many callers report the same token. A caller whose token was
   * already replaced gets the replacement without a refresh.
   */
  refreshRejected(tenantId: string, connectorId: string, owner: ConnectionOwner | undefined, rejectedAccessToken: string): Promise<AccessToken>;
  /**
   * Refreshes now, whatever the token's expiry (the provider refused it), exactly once however many
   * callers and processes ask at once: a refresh begun within the last 10 seconds counts as this
   * one, and its token is the answer.
   */
  forceRefresh(tenantId: string, connectorId: string, owner?: ConnectionOwner): Promise<AccessToken>;
  /**
   * Proactive refresh: refreshes the connection when its token is due for a refresh within
   * `aheadMs` (at most a quarter of its lifetime), through the same exactly-once path as
   * {@link getAccessToken} (one flight per connection in this process, the row lock and re-read
   * across processes): with an on-demand refresh at the same time, the provider sees one refresh.
   * Returns whether the connection was refreshed (by this call, or by one in this process it joined);
   * throws what `getAccessToken` throws.
   */
  refreshIfDue(tenantId: string, connectorId: string, owner: ConnectionOwner | undefined, aheadMs: number): Promise<{ refreshed: boolean }>;
  /** Deletes the connection and revokes at the provider (RFC 7009) when it has a revocation endpoint. */
  disconnect(tenantId: string, connectorId: string, owner?: ConnectionOwner): Promise<{ revoked: boolean }>;
}

const DEFAULT_SKEW_MS = 5 * 60 * 1000;
/** A forced refresh within this long of the last refresh uses that refresh's token. */
const FORCED_REFRESH_WINDOW_MS = 10_000;

/** A token handed out, and when it is due for a refresh (what the cache needs to know). */
interface Served {
  token: AccessToken;
  refreshAtMs: number;
}

type Outcome = { kind: 'token'; served: Served & { refreshed?: true } } | { kind: 'error'; error: LatchkeyError };

function assertTenant(tenantId: unknown): asserts tenantId is string {
  if (typeof tenantId !== 'string' || tenantId.length === 0 || tenantId.length > 200) throw new TypeError('"tenantId" must be a non-empty string.');
}

function assertDuration(value: number | undefined, name: string, min: number): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min)) throw new TypeError(`"${name}" must be a whole number of milliseconds, at least ${min}.`);
}

/** The token cache's key for an owner: end users and Latchkey users never share one. */
function cacheKeyOf(owner: ConnectionOwner | undefined): string | null | undefined {
  return isEndUser(owner) ? `end-user:${owner.endUserId}` : owner;
}

function tokenOf(a: ConnectionAttributes): AccessToken {
  return { accessToken: a.accessToken, tokenType: a.tokenType, expiresAt: a.expiresAt };
}

function served(a: ConnectionAttributes, skewMs: number): Served {
  return { token: tokenOf(a), refreshAtMs: refreshAt(a, skewMs) };
}

/**
 * Hands out access tokens of connections and keeps them fresh.
 *
 * Exactly once: inside a process, concurrent callers of one connection share one promise; across
 * processes, the refresh runs under the connection's row lock (see `withConnectionLock`), re-reads
 * the connection first and reuses a refresh another process committed meanwhile. New tokens are
 * written with a compare-and-set on the object's revision and committed, rotated refresh token
 * included, before the new access token is handed out. A response without a refresh token keeps
 * the old one.
 *
 * Failures: `invalid_grant` / `invalid_client` set `needs_reauthorization` (no further calls to the
 * provider until a reconnect); network errors, timeouts, 5xx and garbage set `degraded` with an
 * exponential backoff, and the next success sets `active` again. While a degraded connection's
 * token has not expired it is still handed out. A token without `expires_in` is handed out until
 * an API refuses it: report that with {@link TokenClient.refreshRejected}.
 *
 * @example
 * const tokens = createTokenClient({ store, resolveClient: (tenantId, id) => connectors.resolveClient(tenantId, id) });
 * const { accessToken, tokenType } = await tokens.getAccessToken(tenantId, connectorId, userId);
 * await fetch(url, { headers: { authorization: `${tokenType} ${accessToken}` } });
 */
export function createTokenClient(options: TokenClientOptions): TokenClient {
  const { store, logger } = options;
  const clock = options.clock ?? systemClock;
  assertDuration(options.refreshSkewMs, 'refreshSkewMs', 0);
  assertDuration(options.cacheMs, 'cacheMs', 0);
  const cache = options.cacheMs ? new AccessTokenCache(options.cacheMs) : undefined;
  const skewMs = options.refreshSkewMs ?? DEFAULT_SKEW_MS;
  const outbound = options.outbound ?? createOutbound({ clock });
  // Another process's refresh holds the lock for at most one token call plus a few writes.
  const lockWaitMs = outbound.timeoutMs + 10_000;
  const flights = new Map<string, Promise<Served & { refreshed?: true }>>();
  const type = CONNECTION_TYPE;
  const sink = options.onConnectionEvent;

  function eventOf(tenantId: string, id: string, kind: ConnectionEvent['type'], a: Pick<ConnectionAttributes, 'connectorId' | 'userId' | 'endUserId'>, status: ConnectionEvent['data']['status'], errorCode: string | null): ConnectionEvent {
    return { type: kind, tenantId, data: { connectorId: a.connectorId, connectionId: id, userId: a.userId, endUserId: a.endUserId, status, errorCode } };
  }

  function idFor(client: ResolvedClient, connectorId: string, userId: ConnectionOwner | undefined): string {
    if (client.authType === 'oauth_client_credentials' || client.tokenMode === 'shared') return connectionId(connectorId);
    if (userId === undefined || userId === null) {
      throw new LatchkeyError('invalid_request', `The connector ${connectorId} keeps a connection per user; name the user.`);
    }
    return connectionId(connectorId, userId);
  }

  async function resolve(tenantId: string, connectorId: string, userId: ConnectionOwner | undefined) {
    assertTenant(tenantId);
    assertConnectionKey(connectorId, userId);
    // Only per-user connectors leave fields to end users: their connection's id is the owner's.
    const connectionConfig = async () => {
      if (userId === undefined || userId === null) return undefined;
      try {
        return (await store.get(type, tenantId, connectionId(connectorId, userId))).attributes.config;
      } catch (err) {
        if (err instanceof LatchkeyError && err.code === 'not_found') return undefined;
        throw err;
      }
    };
    const client = await options.resolveClient(tenantId, connectorId, connectionConfig);
    return { client, id: idFor(client, connectorId, userId) };
  }

  function canRefresh(client: ResolvedClient, a: ConnectionAttributes): boolean {
    return client.authType === 'oauth_client_credentials' || a.refreshToken !== undefined;
  }

  function settle(decision: Decision, a: ConnectionAttributes): Outcome | undefined {
    if (decision.kind === 'use') return { kind: 'token', served: served(a, skewMs) };
    if (decision.kind === 'fail') return { kind: 'error', error: decision.error };
    return undefined;
  }

  /** Under the lock: re-read, then reuse, refuse, or call the provider once and commit the result. */
  async function refreshLocked(tenantId: string, id: string, client: ResolvedClient, rejected: string | undefined, aheadMs = 0): Promise<Served & { refreshed?: true }> {
    // The store on the lock's transaction reads data keys through it too: SQLite has one
    // connection per process, so a read outside it would wait on the lock this process holds.
    const locked = await withConnectionLock(store, tenantId, id, { waitMs: lockWaitMs }, async (txStore, tx): Promise<Outcome | undefined> => {
      const current = await readConnection(txStore, tenantId, id);
      if (!current) return undefined;
      const a = current.attributes;
      const decision = decide(id, a, { now: clock.now().getTime(), skewMs, canRefresh: canRefresh(client, a), rejected, aheadMs });
      const settled = settle(decision, a);
      if (settled) return settled;
      const write = (patch: Partial<ConnectionAttributes>) => txStore.update(type, tenantId, id, patch, { expectedRevision: current.revision });
      if (decision.kind === 'unrefreshable') {
        const failed = failedAttributes(a, { outcome: 'needs_reauthorization', code: 'no_refresh_token' }, clock.now(), options.backoff);
        await recordConnectionEvent(sink, eventOf(tenantId, id, 'connection.needs_reauthorization', a, 'needs_reauthorization', 'no_refresh_token'), tx, logger);
        await write(failed.patch);
        return { kind: 'error', error: failed.error(id) };
      }
      return callProvider(tenantId, current, client, rejected, write, tx);
    });
    if (!locked.found || locked.value === undefined) throw connectionError('not_connected', `There is no connection ${id}; connect the account first.`);
    if (locked.value.kind === 'error') throw locked.value.error;
    return locked.value.served;
  }

  async function callProvider(
    tenantId: string,
    current: ConnectionRecord,
    client: ResolvedClient,
    rejected: string | undefined,
    write: (patch: Partial<ConnectionAttributes>) => Promise<unknown>,
    tx: ObjectTransaction,
  ): Promise<Outcome> {
    const a = current.attributes;
    // A token endpoint no request may reach is the connector's configuration error: nothing is
    // written, no backoff starts, and the caller is told what to fix instead of "retry later".
    outbound.assertAllowed(client.tokenUrl, 'token endpoint');
    const sentAt = clock.now();
    let response;
    try {
      response = await requestTokens(client, grantFor(client, a), outbound);
    } catch (err) {
      // So is an endpoint the egress policy refuses (checked after DNS): not a provider failure.
      if (err instanceof LatchkeyError && err.code === 'egress_refused') throw err;
      const failure = classifyRefreshError(err);
      const failed = failedAttributes(a, failure, clock.now(), options.backoff);
      logger?.warn(
        { tenantId, connectionId: current.id, code: failure.code, status: failure.status, outcome: failure.outcome, backoffUntil: failed.patch.backoffUntil },
        `Refreshing the connection ${current.id} failed (${failure.code}).`,
      );
      const failedType = failure.outcome === 'needs_reauthorization' ? 'connection.needs_reauthorization' : 'connection.refresh_failed';
      await recordConnectionEvent(sink, eventOf(tenantId, current.id, failedType, a, failed.patch.status ?? a.status, failure.code), tx, logger);
      await write(failed.patch);
      // A degraded connection whose token has not expired yet (nor been refused) still serves it.
      const usable = a.accessToken !== '' && a.accessToken !== rejected;
      if (failure.outcome === 'degraded' && usable && (a.expiresAt === null || Date.parse(a.expiresAt) > clock.now().getTime())) {
        return { kind: 'token', served: served(a, skewMs) };
      }
      return { kind: 'error', error: failed.error(current.id) };
    }
    const requested = client.authType === 'oauth_client_credentials' ? client.scopes : a.scopes;
    const patch = refreshedAttributes(a, toTokenSet(response, sentAt, requested), sentAt);
    if (a.status !== 'active') await recordConnectionEvent(sink, eventOf(tenantId, current.id, 'connection.recovered', a, 'active', null), tx, logger);
    try {
      await write(patch);
    } catch (err) {
      // The provider may have rotated the refresh token already: losing this write loses the grant.
      logger?.error({ err, tenantId, connectionId: current.id }, `The refreshed tokens of connection ${current.id} could not be stored.`);
      throw err;
    }
    logger?.debug({ tenantId, connectionId: current.id, rotated: response.refresh_token !== undefined }, `Refreshed the connection ${current.id}.`);
    return { kind: 'token', served: { ...served(patch, skewMs), refreshed: true } };
  }

  /** canRefresh() lets only client credentials connections through without a refresh token. */
  function grantFor(client: ResolvedClient, a: ConnectionAttributes) {
    if (client.authType === 'oauth_client_credentials') return { type: 'client_credentials' } as const;
    if (a.refreshToken === undefined) throw new TypeError('A connection without a refresh token reached the refresh.');
    return { type: 'refresh_token', refreshToken: a.refreshToken } as const;
  }

  /** One flight per connection in this process: concurrent callers share its promise. */
  function flight(tenantId: string, id: string, run: () => Promise<Served & { refreshed?: true }>): Promise<Served & { refreshed?: true }> {
    const key = `${tenantId}\n${id}`;
    const running = flights.get(key);
    if (running) return running;
    const started = run().finally(() => {
      if (flights.get(key) === started) flights.delete(key);
    });
    flights.set(key, started);
    return started;
  }

  async function tokenFor(tenantId: string, id: string, client: ResolvedClient, rejected: string | undefined, aheadMs = 0): Promise<Served & { refreshed?: true }> {
    const current = await readConnection(store, tenantId, id);
    if (current) {
      const a = current.attributes;
      const settled = settle(decide(id, a, { now: clock.now().getTime(), skewMs, canRefresh: canRefresh(client, a), rejected, aheadMs }), a);
      if (settled?.kind === 'token') return settled.served;
      if (settled?.kind === 'error') throw settled.error;
    } else if (client.authType === 'oauth_client_credentials') {
      // The first token of a client credentials connector: a row to lock, then the usual refresh.
      try {
        await store.create(type, tenantId, placeholderAttributes(client), { id });
      } catch (err) {
        if (!(err instanceof LatchkeyError && err.code === 'conflict')) throw err;
      }
    } else {
      throw connectionError('not_connected', `There is no connection ${id}; connect the account first.`);
    }
    return flight(tenantId, id, () => refreshLocked(tenantId, id, client, rejected, aheadMs));
  }

  return {
    refreshSkewMs: skewMs,
    async getAccessToken(tenantId, connectorId, userId) {
      const hit = cache?.get(tenantId, connectorId, cacheKeyOf(userId), clock.now().getTime());
      if (hit) return hit;
      const epoch = cache?.epoch ?? 0;
      const { client, id } = await resolve(tenantId, connectorId, userId);
      const result = await tokenFor(tenantId, id, client, undefined);
      cache?.set(tenantId, connectorId, cacheKeyOf(userId), result.token, result.refreshAtMs, clock.now().getTime(), epoch);
      return result.token;
    },

    async refreshRejected(tenantId, connectorId, userId, rejectedAccessToken) {
      if (typeof rejectedAccessToken !== 'string' || rejectedAccessToken.length === 0) throw new TypeError('"rejectedAccessToken" must be a non-empty string.');
      const { client, id } = await resolve(tenantId, connectorId, userId);
      cache?.forget(tenantId, connectorId);
      const epoch = cache?.epoch ?? 0;
      const result = await tokenFor(tenantId, id, client, rejectedAccessToken);
      cache?.set(tenantId, connectorId, cacheKeyOf(userId), result.token, result.refreshAtMs, clock.now().getTime(), epoch);
      return result.token;
    },

    async forceRefresh(tenantId, connectorId, owner) {
      const { client, id } = await resolve(tenantId, connectorId, owner);
      const current = await readConnection(store, tenantId, id);
      cache?.forget(tenantId, connectorId);
      const epoch = cache?.epoch ?? 0;
      const seen = current?.attributes.accessToken;
      const last = current?.attributes.lastRefreshAt;
      // A burst of forced refreshes (every caller whose token the provider refused) is satisfied by
      // the one refresh: a refresh begun within the window counts as this one.
      const recent = last != null && clock.now().getTime() - Date.parse(last) < FORCED_REFRESH_WINDOW_MS;
      const result = await tokenFor(tenantId, id, client, recent || seen === undefined || seen === '' ? undefined : seen);
      cache?.set(tenantId, connectorId, cacheKeyOf(owner), result.token, result.refreshAtMs, clock.now().getTime(), epoch);
      return result.token;
    },

    async refreshIfDue(tenantId, connectorId, owner, aheadMs) {
      assertDuration(aheadMs, 'aheadMs', 0);
      const { client, id } = await resolve(tenantId, connectorId, owner);
      const result = await tokenFor(tenantId, id, client, undefined, aheadMs);
      if (result.refreshed) cache?.forget(tenantId, connectorId);
      return { refreshed: result.refreshed === true };
    },

    async disconnect(tenantId, connectorId, userId) {
      // An api_key, basic or bearer connector's per-user connection (a credential the user gave)
      // is deleted the same way, with nothing to revoke at a provider.
      const { client, id } = await resolve(tenantId, connectorId, userId).catch((err: unknown) => {
        if (!(err instanceof LatchkeyError && err.details?.['reason'] === 'not_oauth' && userId !== undefined && userId !== null)) throw err;
        return { client: undefined, id: connectionId(connectorId, userId) };
      });
      cache?.forget(tenantId, connectorId);
      // The owner is in the id (see connectionId), so the event needs nothing read from the row.
      const shared = id === connectionId(connectorId);
      const owner = { connectorId, userId: shared || isEndUser(userId) ? null : (userId ?? null), endUserId: !shared && isEndUser(userId) ? userId.endUserId : null };
      const outcome = await store.transaction(async (tx): Promise<{ found: false } | { found: true; removed?: ConnectionAttributes }> => {
        if (!(await tx.lock(type, tenantId, id))) return { found: false };
        await recordConnectionEvent(sink, eventOf(tenantId, id, 'connection.deleted', owner, 'deleted', null), tx, logger);
        try {
          // One statement deletes the row and returns its latest tokens.
          const removed = await tx.store.consume(type, id, { tenantId });
          return removed ? { found: true, removed: removed.attributes } : { found: false };
        } catch (err) {
          if (!(err instanceof LatchkeyError)) throw err;
          // Deleted (the transaction commits), but its tokens could not be read back: nothing to revoke with.
          logger?.warn({ tenantId, connectionId: id, code: err.code }, `The connection ${id} was deleted but could not be decrypted to revoke its tokens.`);
          return { found: true };
        }
      });
      if (!outcome.found) throw connectionError('not_connected', `There is no connection ${id}; connect the account first.`);
      if (outcome.removed === undefined) return { revoked: false };
      if (client?.revocationUrl === undefined) return { revoked: false };
      const a = outcome.removed;
      // Revoking the refresh token ends the grant (RFC 7009 2.1: its access tokens should go too).
      const [token, hint] = a.refreshToken !== undefined ? [a.refreshToken, 'refresh_token' as const] : [a.accessToken, 'access_token' as const];
      if (token === '') return { revoked: false };
      try {
        await revokeToken(client, token, hint, outbound);
        return { revoked: true };
      } catch (err) {
        const failure = classifyRefreshError(err);
        logger?.warn({ tenantId, connectionId: id, code: failure.code, status: failure.status }, `Revoking the tokens of connection ${id} failed; the connection is deleted.`);
        return { revoked: false };
      }
    },
  };
}
