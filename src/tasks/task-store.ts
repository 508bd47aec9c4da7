import { sql, type Insertable, type QueryCreator, type Selectable, type Transaction, type Updateable } from 'kysely';
import { newId } from '../core/index.js';
import { claimRows, notify, runTransaction, type Database, type DatabaseHandle, type Executor, type TaskRunsTable, type TasksTable } from '../db/index.js';
import type { RunOutcomeKind, TaskRow, TaskStatus } from './transitions.js';

export type TaskRunRow = Selectable<TaskRunsTable>;

/** The channel that wakes workers when a task becomes due now (PostgreSQL NOTIFY). */
export const TASKS_CHANNEL = 'latchkey_tasks';

/** One finished attempt, as recorded in the history. */
export interface RunRecord {
  startedAt: Date;
  finishedAt: Date;
  durationMs: number;
  outcome: RunOutcomeKind;
  errorCode: string | null;
  error: string | null;
}

export interface ClaimRequest {
  now: Date;
  workerId: string;
  leaseMs: number;
  limit: number;
  /** Only tasks of these types are claimed (the types this process can run). */
  types: readonly string[];
}

export interface ListFilter {
  tenantId?: string;
  type?: string;
  status?: TaskStatus;
  /** Ids after this one (pages in id order). */
  after?: string;
  limit: number;
}

/** How often a claim looks for expired leases before due tasks, however many tasks are due. */
const EXPIRED_CHECK_MS = 1000;

const LEASE_EXPIRED_MESSAGE = 'The worker running this attempt stopped renewing its lease (it stopped or lost the database).';

/**
 * The `tasks` and `task_runs` tables: writes, claims with leases and fencing tokens, and the
 * fenced updates that end a run. Every update of a claimed task names the token of its claim,
 * so a worker whose lease was taken over changes nothing.
 */
export class TaskStore {
  readonly #handle: DatabaseHandle;
  readonly #historyLimit: number;
  /** When this process last looked for expired leases (its clock's time). */
  #expiredCheckedAt = Number.NEGATIVE_INFINITY;

  constructor(handle: DatabaseHandle, options: { historyLimit: number }) {
    this.#handle = handle;
    this.#historyLimit = options.historyLimit;
  }

  /** Inserts a task in `db` (a caller's transaction, or alone); wakes workers at commit when it is due. */
  async insert(db: Executor, row: Insertable<TasksTable>, now: Date): Promise<void> {
    await db.insertInto('tasks').values(row).execute();
    if (row.next_run_at <= now.toISOString()) await notify(this.#handle, db, TASKS_CHANNEL);
  }

  /** Inserts the task unless one with its key exists; returns whether it inserted. */
  async insertKeyed(row: Insertable<TasksTable> & { key: string }, now: Date): Promise<boolean> {
    return runTransaction(this.#handle, async (trx) => {
      const result = await trx.insertInto('tasks').values(row).onConflict((oc) => oc.column('key').doNothing()).executeTakeFirst();
      const inserted = Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
      if (inserted && row.next_run_at <= now.toISOString()) await notify(this.#handle, trx, TASKS_CHANNEL);
      return inserted;
    });
  }

  async get(id: string, tenantId?: string): Promise<TaskRow | undefined> {
    let query = this.#handle.db.selectFrom('tasks').selectAll().where('id', '=', id);
    if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
    return query.executeTakeFirst();
  }

  async getByKey(key: string): Promise<TaskRow | undefined> {
    return this.#handle.db.selectFrom('tasks').selectAll().where('key', '=', key).executeTakeFirst();
  }

  async list(filter: ListFilter): Promise<TaskRow[]> {
    let query = this.#handle.db.selectFrom('tasks').selectAll().orderBy('id').limit(filter.limit);
    if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
    if (filter.type !== undefined) query = query.where('type', '=', filter.type);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (filter.after !== undefined) query = query.where('id', '>', filter.after);
    return query.execute();
  }

  /** The task's latest runs, newest first. */
  async runs(taskId: string, limit: number): Promise<TaskRunRow[]> {
    return this.#handle.db.selectFrom('task_runs').selectAll().where('task_id', '=', taskId).orderBy('lease_token', 'desc').orderBy('finished_at', 'desc').limit(limit).execute();
  }

  /** Changes a task that is not claimed; false when it does not exist (in that tenant) or is running. */
  async updateIdle(id: string, tenantId: string | undefined, set: Updateable<TasksTable>, now: Date): Promise<boolean> {
    return runTransaction(this.#handle, async (trx) => {
      let query = trx.updateTable('tasks').set(set).where('id', '=', id).where('status', '!=', 'running');
      if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
      const result = await query.executeTakeFirst();
      const updated = Number(result.numUpdatedRows) === 1;
      if (updated && set.next_run_at !== undefined && set.next_run_at <= now.toISOString()) await notify(this.#handle, trx, TASKS_CHANNEL);
      return updated;
    });
  }

  /** Enables or disables a task, running or not (a running attempt finishes; no new one is claimed). */
  async setEnabled(id: string, tenantId: string | undefined, enabled: boolean, now: Date): Promise<boolean> {
    return runTransaction(this.#handle, async (trx) => {
      let query = trx.updateTable('tasks').set({ enabled: enabled ? 1 : 0, updated_at: now.toISOString() }).where('id', '=', id);
      if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
      const result = await query.executeTakeFirst();
      const updated = Number(result.numUpdatedRows) === 1;
      if (updated && enabled) await notify(this.#handle, trx, TASKS_CHANNEL);
      return updated;
    });
  }

  /** Deletes a task and its history; a worker running it then fails its heartbeat and its fenced completion. */
  async remove(db: Executor, id: string, tenantId: string | undefined): Promise<boolean> {
    await db.deleteFrom('task_runs').where('task_id', 'in', (eb) => {
      let owned = eb.selectFrom('tasks').select('id').where('id', '=', id);
      if (tenantId !== undefined) owned = owned.where('tenant_id', '=', tenantId);
      return owned;
    }).execute();
    let query = db.deleteFrom('tasks').where('id', '=', id);
    if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
    const result = await query.executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  /**
   * Claims up to `limit` enabled tasks that are due, or whose lease has expired, in one
   * transaction: PostgreSQL locks the candidates `FOR UPDATE SKIP LOCKED` (concurrent claimers
   * take different tasks and never wait on each other); SQLite's transaction began IMMEDIATE and
   * is the only writer. Each claimed task gets the next fencing token, a lease until
   * `now + leaseMs`, and one more attempt; an expired lease is recorded in the history.
   */
  async claim(request: ClaimRequest): Promise<TaskRow[]> {
    if (request.types.length === 0 || request.limit < 1) return [];
    const nowMs = request.now.getTime();
    // Expired leases first when they were last looked for a while ago; otherwise only when the due
    // tasks leave room. Under a backlog of due tasks a claim is then one statement, and a task whose
    // worker died still waits at most `EXPIRED_CHECK_MS` more than its lease.
    const checkExpiredFirst = nowMs - this.#expiredCheckedAt >= EXPIRED_CHECK_MS || nowMs < this.#expiredCheckedAt;
    const expired = checkExpiredFirst ? await this.#claimExpired(request) : [];
    const due = expired.length < request.limit ? await this.#claimDue({ ...request, limit: request.limit - expired.length }) : [];
    const claimed = [...expired, ...due];
    if (!checkExpiredFirst && claimed.length < request.limit) claimed.push(...(await this.#claimExpired({ ...request, limit: request.limit - claimed.length })));
    return claimed;
  }

  /**
   * Claims due scheduled tasks in one statement: PostgreSQL locks the candidates `FOR UPDATE SKIP
   * LOCKED` in a materialized CTE (concurrent claimers take different tasks and never wait on each
   * other; the CTE runs once, so the limit holds); SQLite's one statement is atomic and the only
   * writer. The candidates are one index range scan (`tasks_due`) that stops at the limit.
   */
  async #claimDue(request: ClaimRequest): Promise<TaskRow[]> {
    const now = request.now.toISOString();
    const set = {
      status: 'running',
      lease_owner: request.workerId,
      lease_expires_at: new Date(request.now.getTime() + request.leaseMs).toISOString(),
      last_run_at: now,
      updated_at: now,
    };
    const candidates = (db: QueryCreator<Database>) =>
      claimRows(
        this.#handle,
        db
          .selectFrom('tasks')
          .select('id')
          // Literals, as the partial index tasks_due names them (a bound value would not match it).
          .where('status', '=', sql.lit('scheduled'))
          .where('enabled', '=', sql.lit(1))
          .where('next_run_at', '<=', now)
          .where('type', 'in', request.types)
          .orderBy('next_run_at')
          .limit(request.limit),
      );
    if (this.#handle.supportsRowLocks) {
      const query = this.#handle.db
        .with(
          (cte) => cte('candidates').materialized(),
          (db) => candidates(db),
        )
        .updateTable('tasks')
        .from('candidates')
        .set((eb) => ({ ...set, attempts: eb('tasks.attempts', '+', 1), lease_token: eb('tasks.lease_token', '+', 1) }))
        .whereRef('tasks.id', '=', 'candidates.id')
        .returningAll('tasks');
      return (await this.#handle.executeRepeated(query.compile())).rows;
    }
    return this.#handle.db
      .updateTable('tasks')
      .set((eb) => ({ ...set, attempts: eb('attempts', '+', 1), lease_token: eb('lease_token', '+', 1) }))
      .where('id', 'in', candidates(this.#handle.db))
      .returningAll()
      .execute();
  }

  /**
   * Claims running tasks whose lease has expired (their worker died or stopped renewing), in one
   * transaction that also records the lost attempt in the history.
   */
  async #claimExpired(request: ClaimRequest): Promise<TaskRow[]> {
    const now = request.now.toISOString();
    this.#expiredCheckedAt = request.now.getTime();
    return runTransaction(this.#handle, async (trx) => {
      const expired = await claimRows(
        this.#handle,
        trx
          .selectFrom('tasks')
          .select(['id', 'status', 'attempts', 'run_slot', 'lease_token', 'lease_expires_at', 'last_run_at'])
          .where('status', '=', sql.lit('running'))
          .where('lease_expires_at', '<=', now)
          .where('enabled', '=', 1)
          .where('type', 'in', request.types)
          .orderBy('lease_expires_at')
          .limit(request.limit),
      ).execute();
      if (expired.length === 0) return [];
      for (const lost of expired) {
        const startedAt = lost.last_run_at ?? now;
        const finishedAt = lost.lease_expires_at ?? now;
        await this.#recordRun(trx, lost.id, lost.run_slot, Number(lost.attempts), Number(lost.lease_token), {
          startedAt: new Date(startedAt),
          finishedAt: new Date(finishedAt),
          durationMs: Date.parse(finishedAt) - Date.parse(startedAt),
          outcome: 'lease_expired',
          errorCode: 'lease_expired',
          error: LEASE_EXPIRED_MESSAGE,
        });
      }
      return trx
        .updateTable('tasks')
        .set((eb) => ({
          status: 'running',
          attempts: eb('attempts', '+', 1),
          lease_token: eb('lease_token', '+', 1),
          lease_owner: request.workerId,
          lease_expires_at: new Date(request.now.getTime() + request.leaseMs).toISOString(),
          last_run_at: now,
          updated_at: now,
          last_outcome: 'lease_expired',
          last_error_code: 'lease_expired',
          last_error: LEASE_EXPIRED_MESSAGE,
        }))
        .where(
          'id',
          'in',
          expired.map((c) => c.id),
        )
        .returningAll()
        .execute();
    });
  }

  /** Extends the lease of the claim holding `token`; false when the lease was taken over or the task removed. */
  async heartbeat(id: string, token: number, leaseUntil: Date, now: Date): Promise<boolean> {
    const result = await this.#handle.db
      .updateTable('tasks')
      .set({ lease_expires_at: leaseUntil.toISOString(), updated_at: now.toISOString() })
      .where('id', '=', id)
      .where('lease_token', '=', token)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Checks, inside the transaction `db`, that the claim holding `token` still holds the task, and
   * keeps the row locked until `db` ends (PostgreSQL: the update's row lock; SQLite: the write
   * lock), so no takeover or removal commits in between. False when it no longer holds it.
   */
  async hold(db: Executor, id: string, token: number, now: Date): Promise<boolean> {
    const result = await db
      .updateTable('tasks')
      .set({ updated_at: now.toISOString() })
      .where('id', '=', id)
      .where('lease_token', '=', token)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Stores the progress of the claim holding `token`; false when it no longer holds the task. */
  async setProgress(id: string, token: number, progress: string, now: Date): Promise<boolean> {
    const result = await this.#handle.db
      .updateTable('tasks')
      .set({ progress, updated_at: now.toISOString() })
      .where('id', '=', id)
      .where('lease_token', '=', token)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Deletes Latchkey's own finished one-off tasks of `type` (no owner, no key) last changed before
   * `cutoff`, and their history. Returns how many.
   */
  async pruneFinished(type: string, cutoff: Date): Promise<number> {
    return runTransaction(this.#handle, async (trx) => {
      const old = (db: Executor) =>
        db
          .selectFrom('tasks')
          .select('id')
          .where('type', '=', type)
          .where('tenant_id', 'is', null)
          .where('key', 'is', null)
          .where('schedule', 'is', null)
          .where('status', 'in', ['succeeded', 'failed'])
          .where('updated_at', '<', cutoff.toISOString());
      await trx.deleteFrom('task_runs').where('task_id', 'in', old(trx)).execute();
      const result = await trx.deleteFrom('tasks').where('id', 'in', old(trx)).executeTakeFirst();
      return Number(result.numDeletedRows);
    });
  }

  /**
   * Ends the claim holding `token` with `set` (the task's next state) and records the run, in one
   * transaction. Refused (false, nothing written) when another claim took the task over or it was
   * removed: a stale worker never overwrites the result of the one that took over.
   */
  async finish(claimed: TaskRow, set: Updateable<TasksTable>, run: RunRecord): Promise<boolean> {
    // PostgreSQL, most finishes: one statement, atomic by itself (no BEGIN and COMMIT round trips).
    if (this.#handle.supportsRowLocks && !this.#needsMore(claimed, set, run)) {
      const result = await this.#handle.executeRepeated(this.#finishQuery(this.#handle.db, claimed, set, run).compile());
      return Number(result.numAffectedRows ?? 0) === 1;
    }
    return runTransaction(this.#handle, (trx) => this.finishIn(trx, claimed, set, run));
  }

  /** {@link finish} inside the caller's transaction `trx` (so that what reports the outcome commits with it). */
  async finishIn(trx: Transaction<Database>, claimed: TaskRow, set: Updateable<TasksTable>, run: RunRecord): Promise<boolean> {
    if (this.#handle.supportsRowLocks) {
      const result = await this.#finishQuery(trx, claimed, set, run).executeTakeFirst();
      if (Number(result.numInsertedOrUpdatedRows ?? 0) !== 1) return false;
    } else {
      const result = await trx
        .updateTable('tasks')
        .set(set)
        .where('id', '=', claimed.id)
        .where('lease_token', '=', claimed.lease_token)
        .where('status', '=', 'running')
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      await this.#recordRun(trx, claimed.id, claimed.run_slot, Number(claimed.attempts), Number(claimed.lease_token), run, { trim: false });
    }
    if (Number(claimed.lease_token) > this.#historyLimit) await this.#trimHistory(trx, claimed.id);
    if (this.#wakesNow(set, run)) await notify(this.#handle, trx, TASKS_CHANNEL);
    return true;
  }

  /** A finished run that makes the task due again at once (workers are woken) or whose history needs trimming. */
  #needsMore(claimed: TaskRow, set: Updateable<TasksTable>, run: RunRecord): boolean {
    return Number(claimed.lease_token) > this.#historyLimit || this.#wakesNow(set, run);
  }

  #wakesNow(set: Updateable<TasksTable>, run: RunRecord): boolean {
    return set.next_run_at !== undefined && set.status === 'scheduled' && set.next_run_at <= run.finishedAt.toISOString();
  }

  /**
   * PostgreSQL: the fenced update and the history row in one statement (a data-modifying CTE): the
   * run is recorded only when the update matched, and neither is written otherwise.
   */
  #finishQuery(db: Executor, claimed: TaskRow, set: Updateable<TasksTable>, run: RunRecord) {
    const row = this.#runRow(claimed.id, claimed.run_slot, Number(claimed.attempts), Number(claimed.lease_token), run);
    return db
      .with('finished', (q) => q.updateTable('tasks').set(set).where('id', '=', claimed.id).where('lease_token', '=', claimed.lease_token).where('status', '=', 'running').returning('id'))
      .insertInto('task_runs')
      .columns(['id', 'task_id', 'run_slot', 'attempt', 'lease_token', 'started_at', 'finished_at', 'duration_ms', 'outcome', 'error_code', 'error'])
      .expression((eb) =>
        eb
          .selectFrom('finished')
          .select([
            eb.cast<string>(eb.val(row.id), 'text').as('id'),
            'finished.id as task_id',
            eb.cast<string>(eb.val(row.run_slot), 'text').as('run_slot'),
            eb.cast<number>(eb.val(row.attempt), 'integer').as('attempt'),
            eb.cast<number>(eb.val(row.lease_token), 'integer').as('lease_token'),
            eb.cast<string>(eb.val(row.started_at), 'text').as('started_at'),
            eb.cast<string>(eb.val(row.finished_at), 'text').as('finished_at'),
            eb.cast<number>(eb.val(row.duration_ms), 'integer').as('duration_ms'),
            eb.cast<string>(eb.val(row.outcome), 'text').as('outcome'),
            eb.cast<string | null>(eb.val(row.error_code), 'text').as('error_code'),
            eb.cast<string | null>(eb.val(row.error), 'text').as('error'),
          ]),
      );
  }

  /**
   * Gives a claim back unfinished (shutdown): due again at once, the attempt not counted. Fenced
   * like {@link finish}.
   */
  async release(claimed: TaskRow, now: Date): Promise<boolean> {
    return runTransaction(this.#handle, async (trx) => {
      const result = await trx
        .updateTable('tasks')
        .set((eb) => ({
          status: 'scheduled',
          attempts: eb('attempts', '-', 1),
          next_run_at: now.toISOString(),
          lease_owner: null,
          lease_expires_at: null,
          updated_at: now.toISOString(),
        }))
        .where('id', '=', claimed.id)
        .where('lease_token', '=', claimed.lease_token)
        .where('status', '=', 'running')
        .executeTakeFirst();
      const released = Number(result.numUpdatedRows) === 1;
      if (released) await notify(this.#handle, trx, TASKS_CHANNEL);
      return released;
    });
  }

  #runRow(taskId: string, slot: string, attempt: number, token: number, run: RunRecord): TaskRunsTable {
    return {
      id: newId('tkr'),
      task_id: taskId,
      run_slot: slot,
      attempt,
      lease_token: token,
      started_at: run.startedAt.toISOString(),
      finished_at: run.finishedAt.toISOString(),
      duration_ms: Math.max(0, Math.round(run.durationMs)),
      outcome: run.outcome,
      error_code: run.errorCode,
      error: run.error,
    };
  }

  async #recordRun(db: Executor, taskId: string, slot: string, attempt: number, token: number, run: RunRecord, options = { trim: true }): Promise<void> {
    await db.insertInto('task_runs').values(this.#runRow(taskId, slot, attempt, token, run)).execute();
    if (options.trim && token > this.#historyLimit) await this.#trimHistory(db, taskId);
  }

  /**
   * Bounded history: the newest runs (by fencing token, which only grows) are kept. A token has at
   * most one run (its finish, or its lease_expired record written by the claim that took over), so
   * a task whose token is within the limit has nothing to trim: most tasks skip the statement.
   */
  async #trimHistory(db: Executor, taskId: string): Promise<void> {
    await db
      .deleteFrom('task_runs')
      .where('task_id', '=', taskId)
      .where('id', 'not in', (eb) =>
        eb.selectFrom('task_runs').select('id').where('task_id', '=', taskId).orderBy('lease_token', 'desc').orderBy('finished_at', 'desc').limit(this.#historyLimit),
      )
      .execute();
  }
}
