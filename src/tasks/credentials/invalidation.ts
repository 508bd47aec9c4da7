import { Counter, Gauge, type Registry } from 'prom-client';
import { systemClock, type Clock } from '../../core/index.js';
import type { DatabaseHandle } from '../../db/index.js';
import { retryDelayMs } from '../transitions.js';
import type { CredentialKind, CredentialStrategy, QueuedCredential } from './types.js';

export interface CredentialInvalidatorOptions {
  handle: DatabaseHandle;
  strategy: CredentialStrategy;
  /** Queued credentials are invalidated once they are this old (default 1 hour): a run that holds one may finish. */
  delayMs?: number;
  /** Entries handled per batch (default 500). */
  batchSize?: number;
  /** Retry delays after a failed invalidation (default 1 minute doubling to 1 hour, with jitter). */
  backoff?: { baseMs: number; maxMs: number };
  metrics?: Registry;
  clock?: Clock;
}

export interface InvalidationReport {
  invalidated: number;
  failed: number;
  /** Still held by another task: dropped from the queue without being invalidated. */
  stillReferenced: number;
}

/**
 * Works through `credentials_to_invalidate`: entries older than the delay are invalidated through
 * the strategy; an entry is deleted only after its invalidation succeeded (a failure is retried
 * with backoff, never dropped); a credential another task still holds is not invalidated.
 * Run by the recurring `latchkey.invalidate_credentials` task, one run at a time.
 *
 * @example
 * const report = await invalidator.runOnce();
 * report.invalidated; // 12
 */
export class CredentialInvalidator {
  readonly #o: Required<Omit<CredentialInvalidatorOptions, 'metrics'>>;
  readonly #invalidated: Counter<'kind'> | undefined;
  readonly #failed: Counter<'kind'> | undefined;

  constructor(options: CredentialInvalidatorOptions) {
    this.#o = {
      handle: options.handle,
      strategy: options.strategy,
      delayMs: options.delayMs ?? 3600_000,
      batchSize: options.batchSize ?? 500,
      backoff: options.backoff ?? { baseMs: 60_000, maxMs: 3600_000 },
      clock: options.clock ?? systemClock,
    };
    if (!(this.#o.delayMs >= 0)) throw new TypeError('"delayMs" must be 0 or more.');
    const registry = options.metrics;
    if (registry) {
      const db = options.handle.db;
      new Gauge({
        name: 'latchkey_task_credentials_queued',
        help: 'Task credentials waiting to be invalidated (removed tasks, and grant intents).',
        registers: [registry],
        async collect() {
          const row = await db.selectFrom('credentials_to_invalidate').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
          this.set(Number(row?.n ?? 0));
        },
      });
      this.#invalidated = new Counter({ name: 'latchkey_task_credentials_invalidated_total', help: 'Task credentials invalidated, by kind.', labelNames: ['kind'] as const, registers: [registry] });
      this.#failed = new Counter({ name: 'latchkey_task_credential_invalidation_failures_total', help: 'Failed attempts to invalidate a task credential (each is retried), by kind.', labelNames: ['kind'] as const, registers: [registry] });
    }
  }

  /** Invalidates every entry that is due now, batch by batch; stops early when `signal` aborts. */
  async runOnce(signal?: AbortSignal): Promise<InvalidationReport> {
    const report: InvalidationReport = { invalidated: 0, failed: 0, stillReferenced: 0 };
    const seen = new Set<string>();
    for (;;) {
      if (signal?.aborted) return report;
      const batch = (await this.#due()).filter((e) => !seen.has(e.id));
      if (batch.length === 0) return report;
      for (const entry of batch) seen.add(entry.id);
      await this.#handle(batch, report);
    }
  }

  async #due(): Promise<QueuedCredential[]> {
    const now = this.#o.clock.now();
    const rows = await this.#o.handle.db
      .selectFrom('credentials_to_invalidate')
      .selectAll()
      .where('queued_at', '<=', new Date(now.getTime() - this.#o.delayMs).toISOString())
      .where('next_attempt_at', '<=', now.toISOString())
      .orderBy('queued_at')
      .orderBy('id')
      .limit(this.#o.batchSize)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      tenantId: r.tenant_id,
      kind: r.kind as CredentialKind,
      credentialId: r.credential_id,
      taskId: r.task_id,
      reason: r.reason as QueuedCredential['reason'],
      attempts: Number(r.attempts),
    }));
  }

  async #handle(batch: QueuedCredential[], report: InvalidationReport): Promise<void> {
    const db = this.#o.handle.db;
    const held = new Set<string>();
    for (const kind of ['native', 'external'] as const) {
      const ids = batch.filter((e) => e.kind === kind).map((e) => e.credentialId);
      if (ids.length === 0) continue;
      const rows = await db.selectFrom('task_credentials').select('credential_id').where('kind', '=', kind).where('credential_id', 'in', ids).execute();
      for (const row of rows) held.add(`${kind}:${row.credential_id}`);
    }
    const referenced = batch.filter((e) => held.has(`${e.kind}:${e.credentialId}`));
    if (referenced.length > 0) {
      await db.deleteFrom('credentials_to_invalidate').where('id', 'in', referenced.map((e) => e.id)).execute();
      report.stillReferenced += referenced.length;
    }
    const work = batch.filter((e) => !held.has(`${e.kind}:${e.credentialId}`));
    if (work.length === 0) return;
    const outcomes = await this.#o.strategy.invalidate(work);
    const byId = new Map(work.map((e) => [e.id, e]));
    const done = outcomes.filter((o) => o.ok).map((o) => o.id);
    for (let i = 0; i < done.length; i += 500) await db.deleteFrom('credentials_to_invalidate').where('id', 'in', done.slice(i, i + 500)).execute();
    for (const id of done) this.#invalidated?.inc({ kind: byId.get(id)?.kind ?? 'native' });
    report.invalidated += done.length;
    const now = this.#o.clock.now();
    for (const outcome of outcomes) {
      if (outcome.ok) continue;
      const entry = byId.get(outcome.id);
      if (!entry) continue;
      const attempts = entry.attempts + 1;
      await db
        .updateTable('credentials_to_invalidate')
        .set({ attempts, next_attempt_at: new Date(now.getTime() + retryDelayMs(attempts, this.#o.backoff)).toISOString(), last_error: outcome.error })
        .where('id', '=', entry.id)
        .execute();
      this.#failed?.inc({ kind: entry.kind });
      report.failed += 1;
    }
  }
}
