import type { Clock, Logger } from '../core/index.js';
import { LatchkeyError } from '../core/index.js';
import type { EncryptedObjectStore } from '../objects/index.js';
import { CONNECTION_TYPE } from './connections.js';
import type { TokenClient } from './token-client.js';
import { refreshAhead, refreshAt } from './tokens.js';

export interface ProactiveRefreshOptions {
  store: EncryptedObjectStore;
  tokens: Pick<TokenClient, 'refreshIfDue' | 'refreshSkewMs'>;
  /** The tenants whose connections are looked at. */
  tenantIds(): Promise<readonly string[]>;
  clock: Clock;
  logger?: Logger;
}

export interface ProactiveRefreshReport {
  /** Connections whose token was due within the window. */
  due: number;
  refreshed: number;
  /** Refreshes that failed (the connection records why; the next run tries again after its backoff). */
  failed: number;
}

const PAGE = 500;

/**
 * Refreshes every connection whose access token is due for a refresh within `aheadMs`, before
 * any caller needs it, through the token client's exactly-once path (`refreshIfDue`). Connections
 * that need reauthorization, are backing off, or have no expiry are left alone; a failure is
 * recorded on its connection (and sent as its webhook event) exactly as an on-demand refresh's.
 *
 * @example
 * await refreshExpiringConnections({ store, tokens, tenantIds, clock }, { aheadMs: 2 * 60_000, signal });
 */
export async function refreshExpiringConnections(options: ProactiveRefreshOptions, run: { aheadMs: number; signal?: AbortSignal }): Promise<ProactiveRefreshReport> {
  const { store, tokens, clock, logger } = options;
  const skewMs = tokens.refreshSkewMs;
  const report: ProactiveRefreshReport = { due: 0, refreshed: 0, failed: 0 };
  for (const tenantId of await options.tenantIds()) {
    let after: string | undefined;
    do {
      run.signal?.throwIfAborted();
      const page = await store.list(CONNECTION_TYPE, tenantId, { limit: PAGE, ...(after !== undefined ? { after } : {}) });
      after = page.next;
      const now = clock.now().getTime();
      for (const connection of page.items) {
        const a = connection.attributes;
        if (a.status === 'needs_reauthorization' || a.expiresAt === null) continue;
        if (a.backoffUntil !== null && Date.parse(a.backoffUntil) > now) continue;
        if (refreshAt(a, skewMs) - refreshAhead(a, run.aheadMs) > now) continue;
        report.due++;
        run.signal?.throwIfAborted();
        const owner = a.endUserId !== null ? { endUserId: a.endUserId } : a.userId;
        try {
          if ((await tokens.refreshIfDue(tenantId, a.connectorId, owner, run.aheadMs)).refreshed) report.refreshed++;
        } catch (err) {
          report.failed++;
          const code = err instanceof LatchkeyError ? err.code : 'internal_error';
          logger?.info({ tenantId, connectionId: connection.id, code }, `Refreshing the connection ${connection.id} ahead of its expiry failed (${code}).`);
        }
      }
    } while (after !== undefined);
  }
  return report;
}
