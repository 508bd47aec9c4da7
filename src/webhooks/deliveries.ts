import type { Selectable } from 'kysely';
import { LatchkeyError, newId } from '../core/index.js';
import { claimRows, type DatabaseHandle, type Executor, type WebhookDeliveriesTable, type WebhookDeliveryAttemptsTable } from '../db/index.js';

export type DeliveryRow = Selectable<WebhookDeliveriesTable>;
export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'succeeded', 'failed'];

/** One attempt as the API shows it. */
export interface DeliveryAttemptView {
  at: string;
  /** The receiver's HTTP status, or null when none came (timeout, refused connection). */
  statusCode: number | null;
  /** Why the attempt failed (`http_500`, `timeout`, `network_error`...), or null on success. */
  errorCode: string | null;
  durationMs: number;
  /** The first characters of the receiver's answer, if any. */
  responseSnippet: string | null;
}

/** A delivery of one message to one endpoint, with its attempts (oldest first). */
export interface DeliveryView {
  id: string;
  endpointId: string;
  /** The `webhook-id` header: the same on every attempt and redelivery. */
  messageId: string;
  eventType: string;
  /** The body that is sent. */
  payload: unknown;
  status: DeliveryStatus;
  attempts: number;
  /** When the next attempt is due (pending deliveries), else null. */
  nextAttemptAt: string | null;
  lastAttemptAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
  attemptLog: DeliveryAttemptView[];
}

/** What one attempt came to. */
export interface AttemptOutcome {
  at: Date;
  statusCode: number | null;
  errorCode: string | null;
  durationMs: number;
  responseSnippet: string | null;
  /** Succeeded: no further attempt. */
  ok: boolean;
  /** Failed for good (the endpoint is gone, or its URL is refused): no further attempt either. */
  final: boolean;
  /** When to try again, for a failure that may be retried. */
  retryAt: Date;
}

function toAttemptView(row: Selectable<WebhookDeliveryAttemptsTable>): DeliveryAttemptView {
  return { at: row.at, statusCode: row.status_code, errorCode: row.error_code, durationMs: row.duration_ms, responseSnippet: row.response_snippet };
}

function toView(row: DeliveryRow, attempts: DeliveryAttemptView[]): DeliveryView {
  return {
    id: row.id,
    endpointId: row.endpoint_id,
    messageId: row.message_id,
    eventType: row.event_type,
    payload: JSON.parse(row.payload) as unknown,
    status: row.status as DeliveryStatus,
    attempts: Number(row.attempts),
    nextAttemptAt: row.status === 'pending' ? row.next_attempt_at : null,
    lastAttemptAt: row.last_attempt_at,
    lastStatusCode: row.last_status_code,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    attemptLog: attempts,
  };
}

/**
 * The stored deliveries (`webhook_deliveries`, `webhook_delivery_attempts`): enqueued by emit,
 * each attempt queued as a task of the engine (the delivery's `claim_token` names the task that
 * holds its next attempt), recorded attempt by attempt.
 */
export class DeliveryStore {
  readonly #handle: DatabaseHandle;

  constructor(handle: DatabaseHandle) {
    this.#handle = handle;
  }

  /**
   * Writes the deliveries in `db`, each with its first attempt queued through `schedule` in the
   * same transaction (the delivery names that attempt in `claim_token`).
   */
  async enqueue(
    db: Executor,
    rows: ReadonlyArray<{ tenantId: string; endpointId: string; messageId: string; eventType: string; payload: string; attemptsAllowed: number; at: Date }>,
    schedule: (deliveryId: string, at: Date) => Promise<string>,
  ): Promise<string[]> {
    if (rows.length === 0) return [];
    const values = [];
    for (const r of rows) {
      const id = newId('whd');
      values.push({
        id,
        tenant_id: r.tenantId,
        endpoint_id: r.endpointId,
        message_id: r.messageId,
        event_type: r.eventType,
        payload: r.payload,
        status: 'pending',
        attempts: 0,
        attempts_allowed: r.attemptsAllowed,
        next_attempt_at: r.at.toISOString(),
        claim_token: await schedule(id, r.at),
        created_at: r.at.toISOString(),
        updated_at: r.at.toISOString(),
      });
    }
    await db.insertInto('webhook_deliveries').values(values).execute();
    return values.map((v) => v.id);
  }

  async byId(id: string): Promise<DeliveryRow | undefined> {
    return this.#handle.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Records an attempt and the delivery's new state in `db` (the attempt's fenced transaction),
   * queuing the next attempt through `scheduleNext` when one is due; false, and nothing written,
   * when another attempt holds the delivery now (a redelivery, a stalled attempt replaced).
   */
  async record(db: Executor, delivery: DeliveryRow, outcome: AttemptOutcome, scheduleNext: (at: Date) => Promise<string>): Promise<boolean> {
    const at = outcome.at.toISOString();
    const attempts = Number(delivery.attempts) + 1;
    const exhausted = attempts >= delivery.attempts_allowed;
    const status: DeliveryStatus = outcome.ok ? 'succeeded' : outcome.final || exhausted ? 'failed' : 'pending';
    const result = await db
      .updateTable('webhook_deliveries')
      .set({
        status,
        attempts,
        next_attempt_at: status === 'pending' ? outcome.retryAt.toISOString() : at,
        claim_token: null,
        last_attempt_at: at,
        last_status_code: outcome.statusCode,
        last_error: outcome.errorCode,
        updated_at: at,
      })
      .where('id', '=', delivery.id)
      .where('status', '=', 'pending')
      .where('claim_token', '=', delivery.claim_token)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) return false;
    if (status === 'pending') {
      await db.updateTable('webhook_deliveries').set({ claim_token: await scheduleNext(outcome.retryAt) }).where('id', '=', delivery.id).execute();
    }
    await db
      .insertInto('webhook_delivery_attempts')
      .values({
        id: newId('wha'),
        delivery_id: delivery.id,
        tenant_id: delivery.tenant_id,
        at,
        status_code: outcome.statusCode,
        error_code: outcome.errorCode,
        duration_ms: Math.max(0, Math.round(outcome.durationMs)),
        response_snippet: outcome.responseSnippet,
      })
      .execute();
    return true;
  }

  /**
   * Pending deliveries whose attempt is overdue by more than `graceMs` (its task failed for good,
   * or the delivery was queued before attempts were tasks): each gets a fresh attempt queued through
   * `schedule`, which replaces the one it named. Returns how many.
   */
  async requeueStalled(now: Date, graceMs: number, schedule: (db: Executor, deliveryId: string, at: Date) => Promise<string>, limit = 500): Promise<number> {
    const cutoff = new Date(now.getTime() - graceMs).toISOString();
    return this.#handle.db.transaction().execute(async (trx) => {
      const stalled = await claimRows(
        this.#handle,
        trx.selectFrom('webhook_deliveries').select(['id', 'claim_token']).where('status', '=', 'pending').where('next_attempt_at', '<', cutoff).orderBy('next_attempt_at').limit(limit),
      ).execute();
      for (const delivery of stalled) {
        const attempt = await schedule(trx, delivery.id, now);
        await trx.updateTable('webhook_deliveries').set({ claim_token: attempt, next_attempt_at: now.toISOString(), updated_at: now.toISOString() }).where('id', '=', delivery.id).execute();
      }
      return stalled.length;
    });
  }

  /** The endpoint's most recent deliveries, newest first, with their attempts. */
  async list(tenantId: string, endpointId: string, options: { limit: number; status?: DeliveryStatus }): Promise<DeliveryView[]> {
    const { db } = this.#handle;
    let query = db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('endpoint_id', '=', endpointId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(options.limit);
    if (options.status !== undefined) query = query.where('status', '=', options.status);
    const rows = await query.execute();
    if (rows.length === 0) return [];
    const attempts = await db
      .selectFrom('webhook_delivery_attempts')
      .selectAll()
      .where(
        'delivery_id',
        'in',
        rows.map((r) => r.id),
      )
      .orderBy('at')
      .orderBy('id')
      .execute();
    const byDelivery = new Map<string, DeliveryAttemptView[]>();
    for (const a of attempts) {
      const list = byDelivery.get(a.delivery_id) ?? [];
      list.push(toAttemptView(a));
      byDelivery.set(a.delivery_id, list);
    }
    return rows.map((r) => toView(r, byDelivery.get(r.id) ?? []));
  }

  async get(tenantId: string, endpointId: string, id: string): Promise<DeliveryView> {
    const { db } = this.#handle;
    const row = await db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('id', '=', id)
      .where('tenant_id', '=', tenantId)
      .where('endpoint_id', '=', endpointId)
      .executeTakeFirst();
    if (!row) throw new LatchkeyError('not_found', `No webhook delivery with id ${JSON.stringify(id)} exists.`);
    const attempts = await db.selectFrom('webhook_delivery_attempts').selectAll().where('delivery_id', '=', id).orderBy('at').orderBy('id').execute();
    return toView(row, attempts.map(toAttemptView));
  }

  /**
   * Makes a delivery due now with `extraAttempts` more attempts, whatever its state, its attempt
   * queued through `schedule` in the same transaction. Throws
   * `not_found` for another tenant's or endpoint's id.
   */
  async redeliver(tenantId: string, endpointId: string, id: string, now: Date, extraAttempts: number, schedule: (db: Executor, deliveryId: string, at: Date) => Promise<string>): Promise<DeliveryView> {
    const current = await this.get(tenantId, endpointId, id);
    await this.#handle.db.transaction().execute(async (trx) => {
      // The new attempt replaces any queued one: only the attempt the delivery names runs.
      const attempt = await schedule(trx, id, now);
      await trx
        .updateTable('webhook_deliveries')
        .set({ status: 'pending', attempts_allowed: current.attempts + extraAttempts, next_attempt_at: now.toISOString(), claim_token: attempt, updated_at: now.toISOString() })
        .where('id', '=', id)
        .where('tenant_id', '=', tenantId)
        .where('endpoint_id', '=', endpointId)
        .execute();
    });
    return this.get(tenantId, endpointId, id);
  }

  /** Deletes an endpoint's deliveries and their attempts (in the transaction that deletes the endpoint). */
  async deleteForEndpoint(db: Executor, tenantId: string, endpointId: string): Promise<void> {
    const ids = db.selectFrom('webhook_deliveries').select('id').where('tenant_id', '=', tenantId).where('endpoint_id', '=', endpointId);
    await db.deleteFrom('webhook_delivery_attempts').where('delivery_id', 'in', ids).execute();
    await db.deleteFrom('webhook_deliveries').where('tenant_id', '=', tenantId).where('endpoint_id', '=', endpointId).execute();
  }

  /** Deletes finished deliveries (and their attempts) last changed before `cutoff`. Returns how many. */
  async pruneFinished(cutoff: Date): Promise<number> {
    const { db } = this.#handle;
    const old = db.selectFrom('webhook_deliveries').select('id').where('status', '!=', 'pending').where('updated_at', '<', cutoff.toISOString());
    await db.deleteFrom('webhook_delivery_attempts').where('delivery_id', 'in', old).execute();
    const result = await db.deleteFrom('webhook_deliveries').where('status', '!=', 'pending').where('updated_at', '<', cutoff.toISOString()).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
