import type { Logger } from '../core/index.js';
import { withSavepoint } from '../db/index.js';
import type { ObjectTransaction } from '../objects/index.js';
import type { ConnectionStatus } from './connections.js';

/** What happened to a connection, for whoever listens (the webhooks module). */
export type ConnectionEventType =
  | 'connection.created'
  | 'connection.refresh_failed'
  | 'connection.needs_reauthorization'
  | 'connection.recovered'
  | 'connection.deleted';

/** A connection event: ids, status and an error code; never a token. */
export interface ConnectionEvent {
  type: ConnectionEventType;
  tenantId: string;
  data: {
    connectorId: string;
    connectionId: string;
    /** The Latchkey user of a per-user connection; null for a shared one or an end user's. */
    userId: string | null;
    /** The application's end user of a per-user connection; null otherwise. */
    endUserId: string | null;
    status: ConnectionStatus | 'deleted';
    /** The refresh failure (`invalid_grant`, `timeout`...), or null. */
    errorCode: string | null;
  };
}

/**
 * Receives connection events, in the transaction of the change they report: the sink writes
 * through `tx` (webhook deliveries), so the event commits with the change or not at all. Latchkey
 * always passes `tx`; an embedder's own sink may ignore it.
 */
export type ConnectionEventSink = (event: ConnectionEvent, tx?: ObjectTransaction) => Promise<void>;

/**
 * Records `event` in the change's transaction `tx`, before the change is written: a crash commits
 * both or neither, and a failing write of the change rolls the event back with it. The sink runs in
 * a savepoint, so a sink that fails is rolled back alone and logged, and the change still commits:
 * a failing listener must never cost a rotated refresh token or a fresh grant.
 */
export async function recordConnectionEvent(sink: ConnectionEventSink | undefined, event: ConnectionEvent, tx: ObjectTransaction, logger: Logger | undefined): Promise<void> {
  if (!sink) return;
  try {
    await withSavepoint(tx.db, () => sink(event, tx));
  } catch (err) {
    logger?.warn({ err, tenantId: event.tenantId, connectionId: event.data.connectionId, event: event.type }, `Recording the event ${event.type} failed; the change is kept without it.`);
  }
}
