import { newId, systemClock, type Clock, type Logger } from '../core/index.js';
import { runTransaction, type DatabaseHandle, type Executor } from '../db/index.js';
import type { AuditLog } from '../identity/index.js';
import type { EncryptedObjectStore, ObjectTransaction } from '../objects/index.js';
import type { Outbound } from '../outbound/index.js';
import { DELIVERY_STATUSES, DeliveryStore, type DeliveryStatus, type DeliveryView } from './deliveries.js';
import { createWebhookEndpoints, type WebhookEndpoints } from './endpoints.js';
import { assertEventData, isWebhookEvent, type WebhookEventType } from './events.js';
import { DeliverySender, type AttemptRun, type DeliveryScheduler, type WebhookBackoff } from './sender.js';

export interface WebhooksOptions {
  /** Its registry must know `WEBHOOK_ENDPOINT_TYPE`; built with `handle`. */
  store: EncryptedObjectStore;
  handle: DatabaseHandle;
  /** Every delivery goes through it (URL rules, egress policy). */
  outbound: Outbound;
  audit?: AuditLog;
  clock?: Clock;
  logger?: Logger;
  /** Attempts per delivery before it is marked failed (default 8). */
  maxAttempts?: number;
  backoff?: WebhookBackoff;
  /** Per attempt (default the outbound module's timeout). */
  timeoutMs?: number;
  /** Queues each attempt as engine work (`createLatchkey` wires it to `tasks.schedule`). */
  scheduler: DeliveryScheduler;
  /** Finished deliveries are kept this long for the deliveries API (default 30 days). */
  retentionMs?: number;
}

export interface EmitOptions {
  /**
   * Write the deliveries in this store transaction, so they commit with the change they report (or
   * not at all), their first attempts queued in it too.
   */
  tx?: ObjectTransaction;
}

export interface Webhooks {
  endpoints: WebhookEndpoints;
  /**
   * Writes one delivery per enabled endpoint of the tenant subscribed to `event` (none: nothing is
   * written). `data` must never hold a token or secret: fields named like one are refused.
   */
  emit(tenantId: string, event: WebhookEventType, data: Record<string, unknown>, options?: EmitOptions): Promise<{ messageId: string; deliveries: number }>;
  /** The endpoint's recent deliveries, newest first (`not_found` for another tenant's endpoint). */
  deliveries(tenantId: string, endpointId: string, options?: { limit?: number; status?: DeliveryStatus }): Promise<DeliveryView[]>;
  /** Makes a delivery due again at once, with a fresh set of attempts. */
  redeliver(tenantId: string, endpointId: string, deliveryId: string): Promise<DeliveryView>;
  /** Deletes finished deliveries older than the retention. */
  prune(): Promise<number>;
  /** Runs one queued attempt (what the engine's delivery task does); see `DeliverySender.attempt`. */
  attempt(deliveryId: string, run: AttemptRun): Promise<void>;
  /** Queues a fresh attempt for pending deliveries whose attempt is overdue by more than 5 minutes (housekeeping). */
  requeueStalled(): Promise<number>;
  /** Per attempt, in milliseconds. */
  timeoutMs: number;
}

const DEFAULT_MAX_ATTEMPTS = 8;
const STALLED_GRACE_MS = 5 * 60_000;
const MINUTE_MS = 60_000;

/**
 * The webhooks module: endpoints, emit, stored deliveries and their attempts (each one queued as
 * engine work through `scheduler`, in the transaction that makes it due), signed as Standard
 * Webhooks specifies.
 *
 * @example
 * const webhooks = createWebhooks({ store, handle, outbound, clock, logger, scheduler: { schedule: (db, deliveryId, at) => queueAttempt(db, deliveryId, at) } });
 * await webhooks.emit(tenantId, 'connection.created', { connectorId, connectionId, userId, status: 'active', errorCode: null });
 */
export function createWebhooks(options: WebhooksOptions): Webhooks {
  const { store, handle, outbound, logger, scheduler } = options;
  const clock = options.clock ?? systemClock;
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 50) throw new TypeError('"maxAttempts" must be a whole number from 1 to 50.');
  const backoff = { baseMs: options.backoff?.baseMs ?? MINUTE_MS, maxMs: options.backoff?.maxMs ?? 12 * 60 * MINUTE_MS };
  if (!(backoff.baseMs >= 0 && backoff.maxMs >= backoff.baseMs)) throw new TypeError('"backoff" needs 0 <= baseMs <= maxMs.');
  const retentionMs = options.retentionMs ?? 30 * 24 * 60 * MINUTE_MS;
  const deliveryStore = new DeliveryStore(handle);
  const endpoints = createWebhookEndpoints({
    store,
    outbound,
    ...(options.audit ? { audit: options.audit } : {}),
    clock,
    onDelete: (tx, tenantId, id) => deliveryStore.deleteForEndpoint(tx.db, tenantId, id),
  });
  const timeoutMs = options.timeoutMs ?? outbound.timeoutMs;
  const sender = new DeliverySender({ deliveries: deliveryStore, endpoints, outbound, scheduler, clock, ...(logger ? { logger } : {}), timeoutMs, backoff });

  const limitOf = (limit: number | undefined) => Math.min(Math.max(Math.trunc(limit ?? 50), 1), 100);

  return {
    endpoints,
    async emit(tenantId, event, data, emitOptions = {}) {
      if (!isWebhookEvent(event)) throw new TypeError(`"event" must be one of the webhook events, not ${JSON.stringify(event)}.`);
      assertEventData(data);
      const messageId = newId('msg');
      const tx = emitOptions.tx;
      const subscribed = await endpoints.subscribed(tenantId, event, tx);
      if (subscribed.length === 0) return { messageId, deliveries: 0 };
      const at = clock.now();
      // The Standard Webhooks payload: type, timestamp, data. The same bytes are signed and sent on every attempt.
      const payload = JSON.stringify({ type: event, timestamp: at.toISOString(), data });
      const rows = subscribed.map((endpoint) => ({ tenantId, endpointId: endpoint.id, messageId, eventType: event, payload, attemptsAllowed: maxAttempts, at }));
      const write = (db: Executor) => deliveryStore.enqueue(db, rows, (deliveryId, due) => scheduler.schedule(db, deliveryId, due));
      if (tx) await write(tx.db);
      else await runTransaction(handle, write);
      return { messageId, deliveries: rows.length };
    },
    async deliveries(tenantId, endpointId, listOptions = {}) {
      await endpoints.get(tenantId, endpointId);
      if (listOptions.status !== undefined && !DELIVERY_STATUSES.includes(listOptions.status)) throw new TypeError('"status" must be pending, succeeded or failed.');
      return deliveryStore.list(tenantId, endpointId, { limit: limitOf(listOptions.limit), ...(listOptions.status ? { status: listOptions.status } : {}) });
    },
    async redeliver(tenantId, endpointId, deliveryId) {
      await endpoints.get(tenantId, endpointId);
      return deliveryStore.redeliver(tenantId, endpointId, deliveryId, clock.now(), maxAttempts, scheduler.schedule.bind(scheduler));
    },
    async prune() {
      return deliveryStore.pruneFinished(new Date(clock.now().getTime() - retentionMs));
    },
    attempt: (deliveryId, run) => sender.attempt(deliveryId, run),
    requeueStalled: () => deliveryStore.requeueStalled(clock.now(), STALLED_GRACE_MS, scheduler.schedule.bind(scheduler)),
    timeoutMs,
  };
}
