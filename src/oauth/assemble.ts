import type { ConnectorService } from '../connectors/index.js';
import type { Clock, Logger } from '../core/index.js';
import type { DatabaseHandle } from '../db/index.js';
import type { AuditLog } from '../identity/index.js';
import type { EncryptedObjectStore } from '../objects/index.js';
import type { Outbound } from '../outbound/index.js';
import { createClientResolver } from './client-resolver.js';
import { recordConnectionEvent, type ConnectionEventSink } from './connection-events.js';
import { CONNECTION_TYPE, connectionId, createConnectionStore, isEndUser, type ConnectionStore } from './connections.js';
import { createOAuthFlow, type OAuthFlow } from './flow.js';
import { createServerResolver } from './flow-server.js';
import { createTokenClient, type TokenClient } from './token-client.js';
import { createUserCredentials, type UserCredentials } from './user-credentials.js';

export interface OAuthAssemblyOptions {
  /** Its registry must know the connection and OAuth state types. */
  store: EncryptedObjectStore;
  handle: DatabaseHandle;
  connectors: ConnectorService;
  /** Every request to a provider goes through it. */
  outbound: Outbound;
  publicUrl: string;
  allowedReturnOrigins?: readonly string[];
  stateTtlMs?: number;
  refreshSkewMs?: number;
  /** How long handed-out tokens are kept in this process (the cache bound). */
  cacheMs: number;
  clock: Clock;
  logger: Logger;
  /**
   * Told when a connection is created, fails to refresh, recovers or is deleted (the webhooks
   * module), in the transaction of the change: see `recordConnectionEvent`.
   */
  onConnectionEvent?: ConnectionEventSink;
  /** Records users' credentials saved and handed out (never a value). */
  audit?: AuditLog;
}

export interface AssembledOAuth {
  flow: OAuthFlow;
  connections: ConnectionStore;
  tokens: TokenClient;
  /** Users' and end users' own credentials for per-user api_key, basic and bearer connectors. */
  credentials: UserCredentials;
  /**
   * Disconnects every connection of a connector, revoking at the provider where it can; a
   * connection that cannot be revoked is deleted all the same, so no stored token outlives its
   * connector. The connector service calls it before deleting a connector.
   */
  disconnectConnector(tenantId: string, connectorId: string): Promise<void>;
}

/**
 * The OAuth module put together: the flow and the token client share one server resolver (and so
 * the outbound module's discovery cache), and tokens of a callback go to the connection store.
 *
 * @example
 * const oauth = assembleOAuth({ store, handle, connectors, outbound, publicUrl, cacheMs: 5000, clock, logger });
 * const { accessToken } = await oauth.tokens.getAccessToken(tenantId, connectorId, userId);
 */
export function assembleOAuth(options: OAuthAssemblyOptions): AssembledOAuth {
  const { store, handle, connectors, outbound, clock, logger } = options;
  const sink = options.onConnectionEvent;
  const connections = createConnectionStore({ store });
  const servers = createServerResolver(outbound);
  const flow = createOAuthFlow({
    store,
    db: handle.db,
    connectors,
    publicUrl: options.publicUrl,
    ...(options.allowedReturnOrigins ? { allowedReturnOrigins: options.allowedReturnOrigins } : {}),
    ...(options.stateTtlMs !== undefined ? { stateTtlMs: options.stateTtlMs } : {}),
    outbound,
    // The tokens and their event commit together: the event is written first, so a failing write
    // of the tokens takes it back too.
    onTokens: (tenantId, connectorId, owner, tokens, config) =>
      store.transaction(async (tx) => {
        const inTx = createConnectionStore({ store: tx.store });
        if (sink) {
          const id = connectionId(connectorId, owner);
          // Held until the commit: of two callbacks for one connection, the second sees the first's.
          await tx.lock(CONNECTION_TYPE, tenantId, id);
          const before = await inTx.find(tenantId, connectorId, owner);
          // A reconnect of a connection that needed it is its recovery; anything else a (re)creation.
          const type = before !== undefined && before.status !== 'active' ? 'connection.recovered' : 'connection.created';
          const data = {
            connectorId,
            connectionId: id,
            userId: typeof owner === 'string' ? owner : null,
            endUserId: isEndUser(owner) ? owner.endUserId : null,
            status: 'active' as const,
            errorCode: null,
          };
          await recordConnectionEvent(sink, { type, tenantId, data }, tx, logger);
        }
        await inTx.save(tenantId, connectorId, owner, tokens, { config });
      }),
    clock,
    logger,
  });
  const tokens = createTokenClient({
    store,
    resolveClient: createClientResolver({ connectors, servers }),
    outbound,
    ...(options.refreshSkewMs !== undefined ? { refreshSkewMs: options.refreshSkewMs } : {}),
    // Tokens this process handed out are kept (sealed under a process-local key) for the cache
    // bound: a disconnect made by another process is seen within it, like a revoked API key.
    cacheMs: options.cacheMs,
    ...(sink ? { onConnectionEvent: sink } : {}),
    clock,
    logger,
  });

  async function disconnectConnector(tenantId: string, connectorId: string): Promise<void> {
    for (;;) {
      // Each pass deletes what it lists, so the first page is always the next one.
      const page = await connections.list(tenantId, { connectorId, limit: 100 });
      for (const connection of page.items) {
        try {
          await tokens.disconnect(tenantId, connectorId, connection.endUserId !== null ? { endUserId: connection.endUserId } : connection.userId);
        } catch (err) {
          logger.warn({ err, tenantId, connectorId }, 'Revoking a connection of a deleted connector failed; it is deleted without revocation.');
          await store.transaction(async (tx) => {
            if (!(await tx.lock(CONNECTION_TYPE, tenantId, connection.id))) return;
            const data = { connectorId, connectionId: connection.id, userId: connection.userId, endUserId: connection.endUserId, status: 'deleted' as const, errorCode: null };
            await recordConnectionEvent(sink, { type: 'connection.deleted', tenantId, data }, tx, logger);
            await tx.store.delete(CONNECTION_TYPE, tenantId, connection.id);
          });
        }
      }
      if (page.next === undefined) return;
    }
  }

  const credentials = createUserCredentials({
    store,
    connectors,
    ...(options.audit ? { audit: options.audit } : {}),
    ...(sink ? { onConnectionEvent: sink } : {}),
    logger,
  });

  return { flow, connections, tokens, credentials, disconnectConnector };
}
