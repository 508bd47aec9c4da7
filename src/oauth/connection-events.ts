import type { Logger } from '../core/index.js';
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
 * Receives connection events. With `tx` the event is part of the change's transaction (it commits
 * with it, and a throw rolls the change back); without, it follows a committed change.
 */
export type ConnectionEventSink = (event: ConnectionEvent, tx?: ObjectTransaction) => Promise<void>;

/** Sends an event after its change committed: a failing sink is logged, never the caller's failure. */
export async function notifyAfterCommit(sink: ConnectionEventSink | undefined, event: ConnectionEvent, logger: Logger | undefined): Promise<void> {
  if (!sink) return;
  try {
    await sink(event);
  } catch (err) {
    logger?.warn({ err, tenantId: event.tenantId, connectionId: event.data.connectionId, event: event.type }, `Recording the event ${event.type} failed.`);
  }
}
