import { LatchkeyError, newId, type Clock, type Logger } from '../core/index.js';
import type { Transaction } from 'kysely';
import { runTransaction, withSavepoint, type Database, type DatabaseHandle } from '../db/index.js';
import type { ObjectTransaction } from '../objects/index.js';
import { finishedEvent, type TaskEventSink } from './task-events.js';
import { TASKS_CHANNEL, type RunRecord, type TaskStore } from './task-store.js';
import type { RegisteredTaskType, TaskRunContext, TaskTypeRegistry } from './task-types.js';
import { afterRun, type RunOutcome, type TaskRow } from './transitions.js';

export interface TaskRunnerOptions {
  handle: DatabaseHandle;
  store: TaskStore;
  types: TaskTypeRegistry;
  clock: Clock;
  logger?: Logger;
  /** How long a claim holds a task without a heartbeat (default 30 s). */
  leaseMs: number;
  /** How often a running task's lease is extended (default 10 s; below the lease). */
  heartbeatMs: number;
  /** Tasks run at once by this process (default 10). */
  concurrency: number;
  /** How often due tasks are looked for besides wake-ups (default 1 s). */
  pollIntervalMs: number;
  /** At shutdown, how long running tasks may go on before they are aborted and released (default 10 s). */
  shutdownGraceMs: number;
  /**
   * What a run gets besides the engine's own context (its credentials, for a task that runs as a
   * user). A LatchkeyError thrown here fails the run without a retry, with its code and sentence.
   */
  extendContext?: (row: TaskRow, type: RegisteredTaskType) => Promise<Partial<TaskRunContext<unknown>>>;
  /** Told of each recorded attempt of an owned task, in its finish's transaction (needs `storeTransaction`). */
  onFinished?: TaskEventSink;
  /** Runs a finish with an event in one store transaction. */
  storeTransaction?: <T>(fn: (tx: ObjectTransaction) => Promise<T>) => Promise<T>;
}

/** Why a run's signal fired. */
type AbortCause = 'timeout' | 'lease_lost' | 'shutdown';

interface Running {
  row: TaskRow;
  controller: AbortController;
  cause: AbortCause | undefined;
  done: Promise<void>;
}

const ERROR_CHARS = 500;
const MAX_PROGRESS_BYTES = 4096;

/** The sentence kept for a failed attempt: a LatchkeyError's own (safe to show by contract), else only the error's kind. */
function describeFailure(err: unknown): { code: string; message: string } {
  if (err instanceof LatchkeyError) return { code: err.code, message: err.message.slice(0, ERROR_CHARS) };
  const name = err instanceof Error ? err.name : typeof err;
  return { code: 'task_failed', message: `The run threw ${/^[A-Za-z]{1,40}$/.test(name) ? name : 'an error'}; its message is in the log.` };
}

function parseStored(type: RegisteredTaskType, params: string): { success: true; data: unknown } | { success: false } {
  let value: unknown;
  try {
    value = JSON.parse(params);
  } catch {
    return { success: false };
  }
  return type.paramsSchema.safeParse(value);
}

const RESULT_BYTES = 4096;

/** What a successful run returned, kept as its summary when it is a JSON object of at most 4 KiB. */
function resultOf(value: unknown): { result?: string } {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return {};
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    return {};
  }
  return json !== undefined && Buffer.byteLength(json) <= RESULT_BYTES ? { result: json } : {};
}

/** Resolves when `signal` aborts (never rejects), so a run that ignores its signal is not waited for. */
function aborted(signal: AbortSignal): { promise: Promise<void>; dispose: () => void } {
  let onAbort = () => {};
  const promise = new Promise<void>((resolve) => {
    onAbort = () => resolve();
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}

/**
 * Claims due tasks, runs them with a timeout and a heartbeat, and records each outcome through
 * fenced updates. Woken by PostgreSQL NOTIFY (other processes' writes), by this process's own
 * writes and by a poll. `stop` stops claiming, waits for running tasks within the grace period,
 * then aborts the rest and releases their leases.
 *
 * @example
 * // Built by createTasks; tests drive it by hand instead of starting its loop:
 * await tasks.runner.claimAndRun();
 * await tasks.runner.idle();
 */
export class TaskRunner {
  readonly #o: TaskRunnerOptions;
  readonly workerId = newId('wkr');
  readonly #running = new Map<string, Running>();
  #started = false;
  #stopping = false;
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> | undefined;
  #again = false;
  #unlisten: (() => Promise<void>) | undefined;
  #idleWaiters: Array<() => void> = [];

  constructor(options: TaskRunnerOptions) {
    if (!(options.heartbeatMs > 0 && options.heartbeatMs < options.leaseMs)) throw new TypeError('"heartbeatMs" must be above 0 and below "leaseMs".');
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new TypeError('"concurrency" must be a whole number of at least 1.');
    this.#o = options;
  }

  /** Tasks this process is running now. */
  get runningCount(): number {
    return this.#running.size;
  }

  /** Starts claiming: listens for wake-ups (PostgreSQL) and polls. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#stopping = false;
    if (this.#o.handle.listen) {
      try {
        this.#unlisten = await this.#o.handle.listen(TASKS_CHANNEL, () => this.wake());
      } catch (err) {
        this.#o.logger?.warn({ err }, 'Listening for task wake-ups failed; tasks are found by polling.');
      }
    }
    this.wake();
  }

  /**
   * Stops claiming, lets running tasks finish within the grace period, then aborts those still
   * running and releases their leases so another process runs them at once.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#started = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#unlisten?.().catch(() => {});
    this.#unlisten = undefined;
    await this.#tick;
    if (this.#running.size > 0) {
      let graceTimer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        graceTimer = setTimeout(resolve, this.#o.shutdownGraceMs);
      });
      await Promise.race([this.idle(), grace]);
      clearTimeout(graceTimer);
      for (const run of this.#running.values()) this.#abort(run, 'shutdown');
      await this.idle();
    }
  }

  /** Resolves once no task runs in this process. */
  idle(): Promise<void> {
    if (this.#running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Looks for due tasks now. */
  wake(): void {
    if (!this.#started) return;
    if (this.#tick) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#tick = this.#loop().finally(() => {
      this.#tick = undefined;
      if (!this.#started) return;
      if (this.#again) {
        this.#again = false;
        this.wake();
        return;
      }
      this.#timer = setTimeout(() => this.wake(), this.#o.pollIntervalMs);
      this.#timer.unref();
    });
  }

  async #loop(): Promise<void> {
    try {
      while (this.#started && (await this.claimAndRun()) > 0 && this.#running.size < this.#o.concurrency);
    } catch (err) {
      this.#o.logger?.warn({ err }, 'Claiming tasks failed; retrying.');
    }
  }

  /**
   * Claims as many due tasks as this process has room for and starts them (without waiting for
   * them to finish: see {@link idle}). Returns how many it claimed. Claims nothing once stopping.
   */
  async claimAndRun(): Promise<number> {
    const room = this.#o.concurrency - this.#running.size;
    if (this.#stopping || room <= 0) return 0;
    const claimed = await this.#o.store.claim({
      now: this.#o.clock.now(),
      workerId: this.workerId,
      leaseMs: this.#o.leaseMs,
      limit: room,
      types: this.#o.types.names(),
    });
    for (const row of claimed) this.#start(row);
    return claimed.length;
  }

  #start(row: TaskRow): void {
    const run: Running = { row, controller: new AbortController(), cause: undefined, done: Promise.resolve() };
    this.#running.set(row.id, run);
    run.done = this.#execute(run)
      .catch((err: unknown) => this.#o.logger?.warn({ err, taskId: row.id }, `Recording the outcome of task ${row.id} failed; it runs again when its lease ends.`))
      .finally(() => {
        this.#running.delete(row.id);
        if (this.#running.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
        this.wake();
      });
  }

  #abort(run: Running, cause: AbortCause): void {
    if (run.controller.signal.aborted) return;
    run.cause = cause;
    const messages: Record<AbortCause, string> = {
      timeout: 'The run took longer than its timeout.',
      lease_lost: 'This worker lost its lease on the task.',
      shutdown: 'The process is shutting down.',
    };
    const reason = new Error(messages[cause]);
    reason.name = cause === 'timeout' ? 'TimeoutError' : 'AbortError';
    run.controller.abort(reason);
  }

  async #execute(run: Running): Promise<void> {
    const { store, types, clock, logger, heartbeatMs, leaseMs } = this.#o;
    const { row } = run;
    const type = types.get(row.type);
    const startedAt = clock.now();
    const startedMs = performance.now();
    const heartbeat = setInterval(() => {
      void store.heartbeat(row.id, Number(row.lease_token), new Date(clock.now().getTime() + leaseMs), clock.now()).then(
        (held) => {
          if (!held) this.#abort(run, 'lease_lost');
        },
        (err: unknown) => logger?.warn({ err, taskId: row.id }, `Extending the lease of task ${row.id} failed; retrying.`),
      );
    }, heartbeatMs);
    heartbeat.unref();
    let timeout: NodeJS.Timeout | undefined;
    let outcome: RunOutcome;
    try {
      outcome = type ? await this.#attempt(run, type, (ms) => (timeout = setTimeout(() => this.#abort(run, 'timeout'), ms))) : { kind: 'failed', code: 'unknown_task_type', message: 'No task type of this name is registered.', retry: false };
    } finally {
      clearInterval(heartbeat);
      clearTimeout(timeout);
    }
    const finishedAt = clock.now();
    if (run.cause === 'shutdown' && outcome.kind !== 'succeeded') {
      await store.release(row, finishedAt);
      return;
    }
    if (run.cause === 'lease_lost') {
      logger?.info({ taskId: row.id }, `Task ${row.id} was taken over by another worker; this attempt's outcome is not recorded.`);
      return;
    }
    const record: RunRecord = {
      startedAt,
      finishedAt,
      durationMs: performance.now() - startedMs,
      outcome: outcome.kind,
      errorCode: outcome.kind === 'succeeded' ? null : outcome.code,
      error: outcome.kind === 'succeeded' ? null : outcome.message,
    };
    const set = afterRun(row, type ?? { maxAttempts: 1, backoff: { baseMs: 0, maxMs: 0 } }, outcome, finishedAt);
    const { onFinished, storeTransaction } = this.#o;
    const event = onFinished && storeTransaction ? finishedEvent(row, outcome, set, record) : undefined;
    const accepted =
      event && onFinished && storeTransaction
        ? await storeTransaction(async (tx) => {
            if (!(await store.finishIn(tx.db, row, set, record))) return false;
            // In a savepoint: an event that cannot be written is logged, and the outcome still commits.
            await withSavepoint(tx.db, () => onFinished(event, tx)).catch((err: unknown) =>
              logger?.warn({ err, taskId: row.id }, `The ${event.type} event of task ${row.id} could not be written; its outcome is recorded.`),
            );
            return true;
          })
        : await store.finish(row, set, record);
    if (!accepted) logger?.info({ taskId: row.id }, `Task ${row.id} was taken over or removed before this attempt's outcome was recorded.`);
    else if (outcome.kind !== 'succeeded') logger?.info({ taskId: row.id, type: row.type, code: outcome.code }, `Task ${row.id} (${row.type}) failed: ${outcome.message}`);
  }

  /** A transaction that holds the run's claim first (see `TaskRunContext.transaction`). */
  async #fenced<T>(run: Running, fn: (db: Transaction<Database>) => Promise<T>): Promise<T> {
    const { row } = run;
    return runTransaction(this.#o.handle, async (trx) => {
      if (!(await this.#o.store.hold(trx, row.id, Number(row.lease_token), this.#o.clock.now()))) {
        this.#abort(run, 'lease_lost');
        throw new LatchkeyError('conflict', `This worker no longer holds task ${row.id}: another took it over or it was removed.`);
      }
      return fn(trx);
    });
  }

  async #progress(run: Running, progress: Record<string, unknown>): Promise<void> {
    let json: string | undefined;
    try {
      json = progress !== null && typeof progress === 'object' && !Array.isArray(progress) ? JSON.stringify(progress) : undefined;
    } catch {
      json = undefined;
    }
    if (json === undefined) throw new TypeError('"progress" must be a JSON object.');
    if (Buffer.byteLength(json) > MAX_PROGRESS_BYTES) throw new TypeError(`"progress" must be at most ${MAX_PROGRESS_BYTES} bytes of JSON.`);
    const { row } = run;
    if (!(await this.#o.store.setProgress(row.id, Number(row.lease_token), json, this.#o.clock.now()))) {
      this.#abort(run, 'lease_lost');
      throw new LatchkeyError('conflict', `This worker no longer holds task ${row.id}: another took it over or it was removed.`);
    }
  }

  async #attempt(run: Running, type: RegisteredTaskType, armTimeout: (ms: number) => void): Promise<RunOutcome> {
    const { row } = run;
    const attempt = Number(row.attempts);
    if (attempt > type.maxAttempts) {
      return { kind: 'failed', code: 'attempts_exhausted', message: `Every one of its ${type.maxAttempts} attempts ended without an outcome.`, retry: false };
    }
    const parsed = parseStored(type, row.params);
    if (!parsed.success) return { kind: 'failed', code: 'invalid_params', message: "The stored params no longer match the task type's schema.", retry: false };
    let extra: Partial<TaskRunContext<unknown>> = {};
    if (this.#o.extendContext) {
      try {
        extra = await this.#o.extendContext(row, type);
      } catch (err) {
        if (err instanceof LatchkeyError) return { kind: 'failed', code: err.code, message: err.message.slice(0, ERROR_CHARS), retry: false };
        throw err;
      }
    }
    const { signal } = run.controller;
    const stop = aborted(signal);
    armTimeout(type.timeoutMs);
    const context: TaskRunContext<unknown> = {
      runAs: null,
      credential: null,
      latchkey: null,
      ...extra,
      taskId: row.id,
      type: row.type,
      params: parsed.data,
      idempotencyKey: `${row.id}@${row.run_slot}`,
      slot: new Date(row.run_slot),
      attempt,
      owner: row.tenant_id === null ? null : { tenantId: row.tenant_id, userId: row.owner_id },
      signal,
      transaction: <T>(fn: (db: Transaction<Database>) => Promise<T>) => this.#fenced(run, fn),
      progress: (progress: Record<string, unknown>) => this.#progress(run, progress),
    };
    let finished = false;
    let returned: unknown;
    const work = (async () => {
      returned = await type.run(context);
      finished = true;
    })();
    try {
      // A run that ignores its signal is not waited for past the abort.
      await Promise.race([work, stop.promise]);
    } catch (err) {
      if (run.cause === undefined) {
        this.#o.logger?.warn({ err, taskId: row.id, type: row.type }, `Task ${row.id} (${row.type}) threw.`);
        return { kind: 'failed', ...describeFailure(err), retry: true };
      }
    } finally {
      stop.dispose();
    }
    // A run that finished before its signal fired succeeded, whatever fired after.
    if (finished) return { kind: 'succeeded', ...resultOf(returned) };
    if (run.cause === 'timeout') return { kind: 'timed_out', code: 'timeout', message: `The run took longer than its timeout of ${type.timeoutMs} ms.`, retry: true };
    if (run.cause !== undefined) return { kind: 'failed', code: run.cause, message: 'The run was aborted.', retry: true };
    return { kind: 'succeeded', ...resultOf(returned) };
  }
}
