import { z } from 'zod';
import { LatchkeyError, assertSafeInput, newId, parseInput, stringError, systemClock, unsafeInput, type Clock, type Logger } from '../core/index.js';
import { runTransaction, type DatabaseHandle, type Executor } from '../db/index.js';
import { TaskRunner } from './runner.js';
import { firstSlot, normalizeSchedule, taskScheduleSchema, type TaskSchedule } from './schedule.js';
import { TaskStore, type TaskRunRow } from './task-store.js';
import { TaskTypeRegistry, type TaskOwner, type TaskTypeDefinition } from './task-types.js';
import type { TaskEventSink } from './task-events.js';
import type { EncryptedObjectStore } from '../objects/index.js';
import { TASK_STATUSES, scheduleOf, type RunOutcomeKind, type TaskRow, type TaskStatus } from './transitions.js';

export interface TasksOptions {
  handle: DatabaseHandle;
  clock?: Clock;
  logger?: Logger;
  /** How long a claim holds a task without a heartbeat (default 30 s). */
  leaseMs?: number;
  /** How often a running task's lease is extended (default 10 s). */
  heartbeatMs?: number;
  /** Tasks run at once by this process (default 10). */
  concurrency?: number;
  /** How often due tasks are looked for besides wake-ups (default 1 s). */
  pollIntervalMs?: number;
  /** At shutdown, how long running tasks may go on before they are aborted and released (default 10 s). */
  shutdownGraceMs?: number;
  /** Runs kept per task (default 20). */
  historyLimit?: number;
  /**
   * Told of each recorded attempt of a task that has an owner (`task.succeeded`, `task.failed`), in
   * the transaction of its fenced finish, through `store` (required with it).
   */
  onFinished?: TaskEventSink;
  store?: EncryptedObjectStore;
}

/** What `schedule` takes. */
export interface ScheduleTaskInput {
  type: string;
  /** Parsed by the type's schema; stored in plain (never a secret); at most 64 KiB of JSON. */
  params?: unknown;
  /** Absent or null: once, now. */
  schedule?: TaskSchedule | null;
  owner?: { tenantId: string; userId?: string | null };
  /** Default true; a disabled task is never claimed. */
  enabled?: boolean;
}

/** One run (attempt) in a task's history. */
export interface TaskRunView {
  slot: string;
  attempt: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  outcome: RunOutcomeKind;
  errorCode: string | null;
  error: string | null;
}

/** A task as the library (and later the API) shows it. */
export interface TaskView {
  id: string;
  type: string;
  key: string | null;
  owner: TaskOwner | null;
  params: unknown;
  schedule: TaskSchedule | null;
  status: TaskStatus;
  enabled: boolean;
  /** Attempts started in the current slot. */
  attempts: number;
  /** When the next attempt is due, for a scheduled task; null otherwise. */
  nextRunAt: string | null;
  lastRunAt: string | null;
  lastOutcome: RunOutcomeKind | null;
  lastError: { code: string; message: string } | null;
  /** What the latest run last reported through `context.progress` (kept once it ends); null before any report. */
  progress: Record<string, unknown> | null;
  createdAt: string;
  updatedAt: string;
}

export interface TaskScope {
  /** Only a task of this tenant is found; another tenant's id answers `not_found`. */
  tenantId?: string;
}

export interface Tasks {
  /** Registers a task type (before `start`, so this process claims it). */
  register<S extends z.ZodType>(definition: TaskTypeDefinition<S>): void;
  /**
   * Stores a task, validated: params by its type's schema, the schedule, no NUL character, no
   * params over 64 KiB. `tx` writes it in the caller's transaction.
   */
  schedule(input: ScheduleTaskInput, options?: { tx?: Executor }): Promise<TaskView>;
  /** The task named `key`, created from `input` when none exists (Latchkey's own recurring tasks, once per database). */
  ensure(key: string, input: ScheduleTaskInput): Promise<TaskView>;
  get(id: string, scope?: TaskScope): Promise<TaskView & { runs: TaskRunView[] }>;
  list(filter?: TaskScope & { type?: string; status?: TaskStatus; after?: string; limit?: number }): Promise<{ tasks: TaskView[]; next: string | null }>;
  /** Makes a task due now in a new slot (`conflict` while it runs). */
  runNow(id: string, scope?: TaskScope): Promise<TaskView>;
  setEnabled(id: string, enabled: boolean, scope?: TaskScope): Promise<TaskView>;
  /** Deletes a task and its history; a worker running it can no longer record anything. */
  remove(id: string, scope?: TaskScope & { tx?: Executor }): Promise<void>;
  /**
   * Deletes Latchkey's own finished one-off tasks of `type` (no owner, no key) last changed before
   * `finishedBefore`, with their history: for work queued as one task per item (webhook delivery
   * attempts). Returns how many.
   */
  prune(options: { type: string; finishedBefore: Date }): Promise<number>;
  runner: TaskRunner;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const MAX_PARAMS_BYTES = 64 * 1024;
const RUNS_SHOWN = 10;
const id = z.string({ error: stringError }).min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const scheduleInput = z.strictObject({
  type: z.string({ error: stringError }).min(1, 'must not be empty').max(64, 'must be at most 64 characters'),
  params: z.unknown().optional(),
  schedule: taskScheduleSchema.nullable().optional(),
  owner: z.strictObject({ tenantId: id, userId: id.nullable().optional() }).optional(),
  enabled: z.boolean({ error: 'must be true or false' }).optional(),
});

function paramsJson(params: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(params ?? {});
  } catch {
    json = undefined;
  }
  if (json === undefined) throw new LatchkeyError('validation_failed', 'The task params are invalid: they must be JSON.', { details: { fields: [{ path: 'params', message: 'must be JSON' }] } });
  if (Buffer.byteLength(json) > MAX_PARAMS_BYTES) throw new LatchkeyError('payload_too_large', `The task params are too large: their JSON must be at most ${MAX_PARAMS_BYTES} bytes.`);
  return json;
}

/** Params as stored; null when the row no longer holds JSON (the run then fails with `invalid_params`). */
function storedParams(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return null;
  }
}

function toView(row: TaskRow): TaskView {
  const status = row.status as TaskStatus;
  return {
    id: row.id,
    type: row.type,
    key: row.key,
    owner: row.tenant_id === null ? null : { tenantId: row.tenant_id, userId: row.owner_id },
    params: storedParams(row.params),
    schedule: scheduleOf(row),
    status,
    enabled: Number(row.enabled) === 1,
    attempts: Number(row.attempts),
    nextRunAt: status === 'scheduled' ? row.next_run_at : null,
    lastRunAt: row.last_run_at,
    lastOutcome: row.last_outcome as RunOutcomeKind | null,
    lastError: row.last_error_code === null ? null : { code: row.last_error_code, message: row.last_error ?? '' },
    progress: row.progress === null ? null : (storedParams(row.progress) as Record<string, unknown> | null),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toRunView(row: TaskRunRow): TaskRunView {
  return {
    slot: row.run_slot,
    attempt: Number(row.attempt),
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    durationMs: Number(row.duration_ms),
    outcome: row.outcome as RunOutcomeKind,
    errorCode: row.error_code,
    error: row.error,
  };
}

function notFound(taskId: string): LatchkeyError {
  return new LatchkeyError('not_found', `No task with id ${JSON.stringify(taskId.slice(0, 200).replaceAll('\u0000', ''))} exists.`);
}

/**
 * The task engine: task types registered in code, stored tasks with schedules, and the runner
 * that claims them (leases with fencing tokens, heartbeats, timeouts, retries with backoff).
 * Delivery is at least once; only the current claim's holder records an outcome.
 *
 * @example
 * const tasks = createTasks({ handle, clock, logger });
 * tasks.register({ type: 'report.send', paramsSchema: z.object({ to: z.string() }), run: async ({ params, idempotencyKey, signal }) => { ... } });
 * await tasks.schedule({ type: 'report.send', params: { to: 'ops' }, schedule: { cron: '0 9 * * 1', timezone: 'Europe/Paris' } });
 * await tasks.start();
 */
export function createTasks(options: TasksOptions): Tasks {
  const { handle, logger } = options;
  const clock = options.clock ?? systemClock;
  const historyLimit = options.historyLimit ?? 20;
  if (!Number.isInteger(historyLimit) || historyLimit < 1) throw new TypeError('"historyLimit" must be a whole number of at least 1.');
  const store = new TaskStore(handle, { historyLimit });
  const objects = options.store;
  if (options.onFinished && !objects) throw new TypeError('"onFinished" needs "store": its events are written in a store transaction.');
  const types = new TaskTypeRegistry();
  const runner = new TaskRunner({
    handle,
    store,
    types,
    clock,
    ...(logger ? { logger } : {}),
    leaseMs: options.leaseMs ?? 30_000,
    heartbeatMs: options.heartbeatMs ?? 10_000,
    concurrency: options.concurrency ?? 10,
    pollIntervalMs: options.pollIntervalMs ?? 1000,
    shutdownGraceMs: options.shutdownGraceMs ?? 10_000,
    ...(options.onFinished && objects ? { onFinished: options.onFinished, storeTransaction: (fn) => objects.transaction(fn) } : {}),
  });

  const prepare = (input: ScheduleTaskInput, key: string | null): TaskRow => {
    const parsed = parseInput(scheduleInput, input, 'task');
    const type = types.get(parsed.type);
    if (!type) {
      throw new LatchkeyError('validation_failed', 'The task is invalid: "type" must be a registered task type.', { details: { fields: [{ path: 'type', message: 'must be a registered task type' }] } });
    }
    if (type.system && parsed.owner) {
      throw new LatchkeyError('validation_failed', `The task is invalid: "${type.type}" is Latchkey's own task type and runs for no owner.`, { details: { fields: [{ path: 'owner', message: 'must be absent for this type' }] } });
    }
    paramsJson(parsed.params);
    // Parsed under "params" so that errors name the field as the caller wrote it ("params.label").
    const params = paramsJson(parseInput(z.object({ params: type.paramsSchema }), { params: parsed.params ?? {} }, 'task').params);
    const schedule = parsed.schedule ? normalizeSchedule(parsed.schedule) : null;
    const now = clock.now();
    const slot = firstSlot(schedule, now).toISOString();
    return {
      id: newId('tsk'),
      type: type.type,
      key,
      tenant_id: parsed.owner?.tenantId ?? null,
      owner_id: parsed.owner?.userId ?? null,
      params,
      schedule: schedule === null ? null : JSON.stringify(schedule),
      status: 'scheduled',
      enabled: parsed.enabled === false ? 0 : 1,
      attempts: 0,
      run_slot: slot,
      next_run_at: slot,
      lease_token: 0,
      lease_owner: null,
      lease_expires_at: null,
      last_run_at: null,
      last_outcome: null,
      last_error_code: null,
      last_error: null,
      created_at: now.toISOString(),
      updated_at: now.toISOString(),
      progress: null,
    };
  };

  /** Ids no task can have (too long, a NUL character PostgreSQL refuses) answer like unknown ones. */
  const lookable = (taskId: unknown, scope: TaskScope): taskId is string =>
    typeof taskId === 'string' && taskId.length <= 200 && unsafeInput([taskId, scope.tenantId ?? '']) === undefined;
  const load = async (taskId: string, scope: TaskScope): Promise<TaskRow> => {
    const row = lookable(taskId, scope) ? await store.get(taskId, scope.tenantId) : undefined;
    if (!row) throw notFound(String(taskId));
    return row;
  };

  return {
    register: (definition) => types.register(definition),
    async schedule(input, scheduleOptions = {}) {
      const row = prepare(input, null);
      const now = clock.now();
      if (scheduleOptions.tx) await store.insert(scheduleOptions.tx, row, now);
      else await runTransaction(handle, (trx) => store.insert(trx, row, now));
      runner.wake();
      return toView(row);
    },
    async ensure(key, input) {
      const parsedKey = parseInput(id, key, 'task key');
      const row = prepare(input, parsedKey);
      if (await store.insertKeyed({ ...row, key: parsedKey }, clock.now())) runner.wake();
      const stored = await store.getByKey(parsedKey);
      if (!stored) throw notFound(parsedKey);
      return toView(stored);
    },
    async get(taskId, scope = {}) {
      const row = await load(taskId, scope);
      return { ...toView(row), runs: (await store.runs(row.id, RUNS_SHOWN)).map(toRunView) };
    },
    async list(filter = {}) {
      assertSafeInput(filter, 'task list');
      const limit = filter.limit ?? 50;
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new LatchkeyError('validation_failed', 'The task list is invalid: "limit" must be a whole number from 1 to 500.');
      if (filter.status !== undefined && !TASK_STATUSES.includes(filter.status)) {
        throw new LatchkeyError('validation_failed', `The task list is invalid: "status" must be one of ${TASK_STATUSES.join(', ')}.`);
      }
      const rows = await store.list({ ...filter, limit: limit + 1 });
      const page = rows.slice(0, limit);
      return { tasks: page.map(toView), next: rows.length > limit ? (page.at(-1)?.id ?? null) : null };
    },
    async runNow(taskId, scope = {}) {
      const row = await load(taskId, scope);
      const now = clock.now().toISOString();
      const updated = await store.updateIdle(row.id, scope.tenantId, { status: 'scheduled', attempts: 0, run_slot: now, next_run_at: now, updated_at: now }, clock.now());
      if (!updated) {
        await load(taskId, scope);
        throw new LatchkeyError('conflict', `Task ${row.id} is running now; run it again once it finishes.`);
      }
      runner.wake();
      return toView(await load(taskId, scope));
    },
    async setEnabled(taskId, enabled, scope = {}) {
      if (typeof enabled !== 'boolean') throw new TypeError('"enabled" must be a boolean.');
      const row = await load(taskId, scope);
      if (!(await store.setEnabled(row.id, scope.tenantId, enabled, clock.now()))) throw notFound(taskId);
      if (enabled) runner.wake();
      return toView(await load(taskId, scope));
    },
    async remove(taskId, scope = {}) {
      if (!lookable(taskId, scope) || !(await store.remove(scope.tx ?? handle.db, taskId, scope.tenantId))) throw notFound(String(taskId));
    },
    prune: ({ type, finishedBefore }) => store.pruneFinished(type, finishedBefore),
    runner,
    start: () => runner.start(),
    stop: () => runner.stop(),
  };
}
