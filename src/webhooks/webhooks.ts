import { newId, systemClock, type Clock, type Logger } from '../core/index.js';
import type { DatabaseHandle, InvalidationBus } from '../db/index.js';
import type { AuditLog } from '../identity/index.js';
import type { EncryptedObjectStore, ObjectTransaction } from '../objects/index.js';
import type { Outbound } from '../outbound/index.js';
import { DELIVERY_STATUSES, DeliveryStore, type DeliveryStatus, type DeliveryView } from './deliveries.js';
import { createWebhookEndpoints, type WebhookEndpoints } from './endpoints.js';
import { assertEventData, isWebhookEvent, type WebhookEventType } from './events.js';
import { DeliveryWorker, type WebhookBackoff } from './worker.js';

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
  /**
   * How often the worker looks for due deliveries (default 1 s). With `bus`, deliveries queued by
   * any process wake it at once on PostgreSQL, and the poll is the fallback for a lost wake-up.
   */
  pollIntervalMs?: number;
  /**
   * Wakes the workers of every process when a delivery is queued (PostgreSQL `NOTIFY`, on the
   * bus's one listening connection). Without it, only this process's worker is woken.
   */
  bus?: InvalidationBus;
  /** Deliveries attempted at once by this process (default 10). */
  concurrency?: number;
  /** Finished deliveries are kept this long for the deliveries API (default 30 days). */
  retentionMs?: number;
}

export interface EmitOptions {
  /**
   * Write the deliveries in this store transaction, so they commit with the change they report (or
   * not at all); workers are woken at the commit.
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
  /** The delivery worker: started by the `Background` lifecycle. */
  worker: DeliveryWorker;
}

const DEFAULT_MAX_ATTEMPTS = 8;
const WAKE_TOPIC = 'webhook_deliveries';
const MINUTE_MS = 60_000;

/**
 * The webhooks module: endpoints, emit, stored deliveries and the worker that sends them, signed
 * as Standard Webhooks specifies.
 *
 * @example
 * const webhooks = createWebhooks({ store, handle, outbound, clock, logger });
 * background.add({ name: 'webhook deliveries', start: () => webhooks.worker.start(), stop: () => webhooks.worker.stop() });
 * await webhooks.emit(tenantId, 'connection.created', { connectorId, connectionId, userId, status: 'active', errorCode: null });
 */
export function createWebhooks(options: WebhooksOptions): Webhooks {
  const { store, handle, outbound, logger, bus } = options;
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
  const worker = new DeliveryWorker({
    deliveries: deliveryStore,
    endpoints,
    outbound,
    clock,
    ...(logger ? { logger } : {}),
    pollIntervalMs: options.pollIntervalMs ?? 1000,
    timeoutMs: options.timeoutMs ?? outbound.timeoutMs,
    backoff,
    concurrency: options.concurrency ?? 10,
  });
  bus?.onWake(WAKE_TOPIC, () => worker.wake());
  const wakeLocal = () => setImmediate(() => worker.wake());

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
      const db = tx?.db ?? handle.db;
      await deliveryStore.enqueue(db, rows);
      // Other processes' workers hear of the rows at the commit (NOTIFY is transactional); this
      // process's worker right after it, also where there is no NOTIFY.
      await bus?.wake(db, WAKE_TOPIC);
      if (tx) tx.afterCommit(wakeLocal);
      else wakeLocal();
      return { messageId, deliveries: rows.length };
    },
    async deliveries(tenantId, endpointId, listOptions = {}) {
      await endpoints.get(tenantId, endpointId);
      if (listOptions.status !== undefined && !DELIVERY_STATUSES.includes(listOptions.status)) throw new TypeError('"status" must be pending, succeeded or failed.');
      return deliveryStore.list(tenantId, endpointId, { limit: limitOf(listOptions.limit), ...(listOptions.status ? { status: listOptions.status } : {}) });
    },
    async redeliver(tenantId, endpointId, deliveryId) {
      await endpoints.get(tenantId, endpointId);
      const view = await deliveryStore.redeliver(tenantId, endpointId, deliveryId, clock.now(), maxAttempts);
      await bus?.wake(handle.db, WAKE_TOPIC);
      wakeLocal();
      return view;
    },
    async prune() {
      return deliveryStore.pruneFinished(new Date(clock.now().getTime() - retentionMs));
    },
    worker,
  };
}
