import type { Selectable } from 'kysely';
import { LatchkeyError, newId } from '../core/index.js';
import type { DatabaseHandle, Executor, WebhookDeliveriesTable, WebhookDeliveryAttemptsTable } from '../db/index.js';

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
 * claimed by the worker, recorded attempt by attempt.
 */
export class DeliveryStore {
  readonly #handle: DatabaseHandle;

  constructor(handle: DatabaseHandle) {
    this.#handle = handle;
  }

  async enqueue(
    db: Executor,
    rows: ReadonlyArray<{ tenantId: string; endpointId: string; messageId: string; eventType: string; payload: string; attemptsAllowed: number; at: Date }>,
  ): Promise<string[]> {
    if (rows.length === 0) return [];
    const values = rows.map((r) => ({
      id: newId('whd'),
      tenant_id: r.tenantId,
      endpoint_id: r.endpointId,
      message_id: r.messageId,
      event_type: r.eventType,
      payload: r.payload,
      status: 'pending',
      attempts: 0,
      attempts_allowed: r.attemptsAllowed,
      next_attempt_at: r.at.toISOString(),
      created_at: r.at.toISOString(),
      updated_at: r.at.toISOString(),
    }));
    await db.insertInto('webhook_deliveries').values(values).execute();
    return values.map((v) => v.id);
  }

  /**
   * Claims up to `limit` due deliveries in ONE statement: each gets a new claim token and a lease
   * (its due time moves to `leaseUntil`), so a process that dies mid-attempt leaves it due again
   * once the lease ends. On PostgreSQL the candidates are locked `FOR UPDATE SKIP LOCKED`, so
   * processes claiming at once never take the same delivery nor wait on each other.
   */
  async claim(now: Date, leaseUntil: Date, limit: number): Promise<DeliveryRow[]> {
    const { db } = this.#handle;
    let due = db
      .selectFrom('webhook_deliveries')
      .select('id')
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now.toISOString())
      .orderBy('next_attempt_at')
      .limit(limit);
    if (this.#handle.supportsRowLocks) due = due.forUpdate().skipLocked();
    return db
      .updateTable('webhook_deliveries')
      .set({ next_attempt_at: leaseUntil.toISOString(), claim_token: newId('clm'), updated_at: now.toISOString() })
      .where('id', 'in', due)
      .where('status', '=', 'pending')
      .returningAll()
      .execute();
  }

  /** Records an attempt and the delivery's new state, unless another claim took it over meanwhile (then false). */
  async record(delivery: DeliveryRow, outcome: AttemptOutcome): Promise<boolean> {
    const at = outcome.at.toISOString();
    return this.#handle.db.transaction().execute(async (trx) => {
      const attempts = Number(delivery.attempts) + 1;
      const exhausted = attempts >= delivery.attempts_allowed;
      const status: DeliveryStatus = outcome.ok ? 'succeeded' : outcome.final || exhausted ? 'failed' : 'pending';
      const result = await trx
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
        .where('claim_token', '=', delivery.claim_token)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      await trx
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
   * Makes a delivery due now with `extraAttempts` more attempts, whatever its state. Throws
   * `not_found` for another tenant's or endpoint's id.
   */
  async redeliver(tenantId: string, endpointId: string, id: string, now: Date, extraAttempts: number): Promise<DeliveryView> {
    const current = await this.get(tenantId, endpointId, id);
    await this.#handle.db
      .updateTable('webhook_deliveries')
      .set({ status: 'pending', attempts_allowed: current.attempts + extraAttempts, next_attempt_at: now.toISOString(), updated_at: now.toISOString() })
      .where('id', '=', id)
      .where('tenant_id', '=', tenantId)
      .where('endpoint_id', '=', endpointId)
      .execute();
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
