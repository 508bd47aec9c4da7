import { z } from 'zod';
import { LatchkeyError, assertSafeInput, newId, parseInput, stringError, systemClock, unsafeInput, type Clock, type Logger } from '../core/index.js';
import { runTransaction, type DatabaseHandle, type Executor } from '../db/index.js';
import type { Actor, Authorizer, Permission } from '../identity/index.js';
import type { EncryptedObjectStore } from '../objects/index.js';
import { TASK_SECRETS_TYPE, type CredentialRef, type CredentialStrategy, type RunAs, type TaskGrant } from './credentials/index.js';
import { taskApiClient, type TaskApi } from './task-api.js';
import { isEndUserId } from '../oauth/index.js';
import { TaskRunner } from './runner.js';
import { firstSlot, normalizeSchedule, taskScheduleSchema, type TaskSchedule } from './schedule.js';
import { TaskStore, type TaskRunRow } from './task-store.js';
import { TaskTypeRegistry, type TaskOwner, type TaskRunContext, type TaskTypeDefinition } from './task-types.js';
import type { TaskEventSink } from './task-events.js';
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
  /** Credentials for tasks that run as a user (`runAs`); without them such tasks are refused. */
  credentials?: TaskCredentialsOptions;
  /** Latchkey's own HTTP API in this process, for the client a run as a user is given (undefined without the HTTP app). */
  api?: () => TaskApi | undefined;
}

export interface TaskCredentialsOptions {
  strategy: CredentialStrategy;
  /** Holds each task's secrets (register TASK_SECRETS_TYPE with its registry). */
  store: EncryptedObjectStore;
  authorizer: Pick<Authorizer, 'userPermissions'>;
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
  /**
   * Run as the caller (`"caller"`) or as one of the application's end users (`{endUserId}`, for a
   * caller holding `connectors:use`): the task is granted its credentials now, from `actor`, and
   * they are invalidated when it is removed. Needs `actor`; the owner is the actor.
   */
  runAs?: 'caller' | { endUserId: string };
  /** Who schedules the task: needed with `runAs`, checked for `tasks:write`. */
  actor?: Actor;
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
  /** What the last successful run returned (a small JSON summary), or null. */
  lastResult: unknown;
  /** Who the task runs as, or null for a task without credentials. */
  runAs: RunAs | null;
  /** The credentials it holds, by id (never a secret): its API key (`native`), and an external one when granted. */
  credentials: CredentialRef[];
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
  /**
   * Deletes a task and its history; a worker running it can no longer record anything. Every
   * credential it holds is queued for invalidation in the same transaction.
   */
  remove(id: string, scope?: TaskScope): Promise<void>;
  /** Deletes many tasks in one transaction, queueing all their credentials; ids not found (in the scope) are named, not an error. */
  removeMany(ids: readonly string[], scope?: TaskScope): Promise<{ removed: string[]; notFound: string[] }>;
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
  runAs: z
    .union([z.literal('caller'), z.strictObject({ endUserId: z.string({ error: stringError }).refine(isEndUserId, 'must be 1 to 255 characters without control characters') })], {
      error: 'must be "caller" or {"endUserId": "..."}',
    })
    .optional(),
});

/** What a caller of the HTTP API (or any tenant's caller) sends to schedule a task: the owner is the caller. */
export const scheduleTaskBody = scheduleInput.omit({ owner: true });

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

function parseJsonColumn(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

function toView(row: TaskRow, credentials: CredentialRef[] = []): TaskView {
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
    lastResult: parseJsonColumn(row.last_result),
    runAs: parseJsonColumn(row.run_as) as RunAs | null,
    credentials,
    progress: parseJsonColumn(row.progress) as Record<string, unknown> | null,
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
  const { handle, logger, credentials } = options;
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
    extendContext: async (row, type) => {
      if (row.run_as === null) return {};
      return runContext(row, type.needsSecret);
    },
    ...(options.onFinished && objects ? { onFinished: options.onFinished, storeTransaction: (fn) => objects.transaction(fn) } : {}),
  });

  /** A run as a user: its secrets read and checked against what the row says it runs as, the strategy's choice, the API client. */
  async function runContext(row: TaskRow, needsSecret: boolean): Promise<Partial<TaskRunContext<unknown>>> {
    const unreadable = () => new LatchkeyError('decryption_failed', "The task's credentials could not be read; schedule it again.");
    if (!credentials || row.tenant_id === null) throw new LatchkeyError('invalid_config', 'This process has no task credentials configured, so it cannot run a task that runs as a user.');
    let secrets;
    try {
      secrets = (await credentials.store.getDecrypted(TASK_SECRETS_TYPE, row.tenant_id, row.id)).attributes;
    } catch (err) {
      logger?.warn({ err, taskId: row.id }, `The credentials of task ${row.id} could not be read.`);
      throw unreadable();
    }
    // The object's runAs is authenticated (in its AAD); the row's is plain: they must agree.
    if (secrets.runAs !== row.run_as) throw unreadable();
    const runAs = JSON.parse(secrets.runAs) as RunAs;
    const chosen = credentials.strategy.choose({
      nativeKey: secrets.nativeKey,
      nativeKeyId: secrets.nativeKeyId,
      ...(secrets.externalReference !== null && secrets.externalSecret !== undefined
        ? { external: { reference: secrets.externalReference, secret: secrets.externalSecret, expiresAt: secrets.externalExpiresAt } }
        : {}),
    });
    const api = options.api?.();
    return {
      runAs,
      credential: { kind: chosen.kind, id: chosen.id, expiresAt: chosen.expiresAt, ...(needsSecret ? { secret: chosen.secret } : {}) },
      latchkey: api ? taskApiClient(api, secrets.nativeKey, runAs.kind === 'end_user' ? runAs.endUserId : undefined) : null,
    };
  }

  const prepare = (input: ScheduleTaskInput, key: string | null): TaskRow => {
    // The actor is code's, not input: it is not parsed (nor allowed) as a field.
    const fields = typeof input === 'object' && input !== null && 'actor' in input ? (({ actor: _actor, ...rest }) => rest)(input) : input;
    const parsed = parseInput(scheduleInput, fields, 'task');
    const type = types.get(parsed.type);
    if (!type || (type.type.startsWith('latchkey.') && parsed.owner !== undefined)) {
      // Latchkey's own maintenance types are never a tenant's to schedule.
      throw new LatchkeyError('validation_failed', 'The task is invalid: "type" must be a registered task type.', { details: { fields: [{ path: 'type', message: 'must be a registered task type' }] } });
    }
    if (type.requiresRunAs && parsed.runAs === undefined) {
      throw new LatchkeyError('validation_failed', `The task is invalid: a ${type.type} task runs as a user, so schedule it with "runAs".`, { details: { fields: [{ path: 'runAs', message: 'is required for this task type' }] } });
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
      run_as: null,
      last_result: null,
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

  const credentialsOf = async (taskIds: readonly string[]): Promise<Map<string, CredentialRef[]>> => {
    const byTask = new Map<string, CredentialRef[]>();
    if (!credentials || taskIds.length === 0) return byTask;
    for (const ref of await credentials.strategy.credentialIds(handle.db, taskIds)) byTask.set(ref.taskId, [...(byTask.get(ref.taskId) ?? []), { kind: ref.kind, id: ref.id }]);
    return byTask;
  };

  /** The task type's own check of what the params name, for a task a tenant owns. */
  const checkParams = async (row: TaskRow): Promise<void> => {
    const check = types.get(row.type)?.check;
    if (check !== undefined && row.tenant_id !== null) await check(JSON.parse(row.params) as unknown, { tenantId: row.tenant_id });
  };

  const viewOf = async (row: TaskRow): Promise<TaskView> => toView(row, (await credentialsOf([row.id])).get(row.id));

  /** Schedules a task with credentials granted from the actor: granted first, written with the task in one transaction. */
  const scheduleAsUser = async (input: ScheduleTaskInput): Promise<TaskView> => {
    if (!credentials) throw new LatchkeyError('invalid_config', 'This Latchkey instance has no task credentials configured, so it cannot schedule tasks that run as a user.');
    const { actor } = input;
    if (actor?.type !== 'user') {
      throw new LatchkeyError('insufficient_permissions', 'Only a user (or one of their API keys) can schedule a task that runs as a user.');
    }
    if (input.owner !== undefined && (input.owner.tenantId !== actor.tenantId || (input.owner.userId ?? actor.userId) !== actor.userId)) {
      throw new LatchkeyError('validation_failed', 'The task is invalid: a task that runs as a user is owned by the user who schedules it; leave out "owner".', { details: { fields: [{ path: 'owner', message: 'must be left out with runAs' }] } });
    }
    const row = prepare({ ...input, owner: { tenantId: actor.tenantId, userId: actor.userId } }, null);
    const held = actor.permissions ?? (await credentials.authorizer.userPermissions(actor.tenantId, actor.userId)).permissions;
    const needed: Permission[] = ['tasks:write', ...(typeof input.runAs === 'object' ? (['connectors:use'] as const) : [])];
    const missing = needed.filter((p) => !held.has(p));
    if (missing.length > 0) {
      const why = typeof input.runAs === 'object' ? ' to schedule a task that acts for an end user' : ' to schedule a task';
      throw new LatchkeyError('insufficient_permissions', `You need the permission ${missing.join(' and ')}${why}.`, { details: { missing } });
    }
    await checkParams(row);
    const runAs: RunAs = typeof input.runAs === 'object' ? { kind: 'end_user', endUserId: input.runAs.endUserId, userId: actor.userId } : { kind: 'user', userId: actor.userId };
    row.run_as = JSON.stringify(runAs);
    const grant: TaskGrant = await credentials.strategy.grant({ actor, tenantId: actor.tenantId, taskId: row.id, taskType: row.type, runAs });
    const now = clock.now();
    await credentials.store.transaction(async (tx) => {
      await store.insert(tx.db, row, now);
      await grant.write(tx.db);
      await tx.store.create(
        TASK_SECRETS_TYPE,
        actor.tenantId,
        {
          runAs: row.run_as ?? '',
          nativeKeyId: grant.secrets.nativeKeyId,
          nativeKey: grant.secrets.nativeKey,
          externalReference: grant.secrets.external?.reference ?? null,
          ...(grant.secrets.external ? { externalSecret: grant.secrets.external.secret } : {}),
          externalExpiresAt: grant.secrets.external?.expiresAt ?? null,
        },
        { id: row.id },
      );
    });
    runner.wake();
    return toView(row, grant.scope.credentials);
  };

  /**
   * Deletes the tasks (those in the scope) with their history and secrets, and queues every
   * credential they hold, in one transaction. Only plain columns are read, so a task whose params
   * or secrets no longer read still has its credentials queued.
   */
  const removeTasks = async (taskIds: readonly string[], scope: TaskScope): Promise<{ removed: string[] }> => {
    const work = async (db: Executor, deleteSecrets: (tenantId: string, taskId: string) => Promise<void>) => {
      const found: Array<{ id: string; tenant_id: string | null }> = [];
      for (let i = 0; i < taskIds.length; i += 500) {
        let query = db.selectFrom('tasks').select(['id', 'tenant_id']).where('id', 'in', taskIds.slice(i, i + 500));
        if (scope.tenantId !== undefined) query = query.where('tenant_id', '=', scope.tenantId);
        found.push(...(await query.execute()));
      }
      if (found.length === 0) return { removed: [] };
      const ids = found.map((r) => r.id);
      if (credentials) await credentials.strategy.markForInvalidation(db, ids, clock.now());
      for (const task of found) {
        await store.remove(db, task.id, scope.tenantId);
        if (task.tenant_id !== null) await deleteSecrets(task.tenant_id, task.id);
      }
      return { removed: ids };
    };
    if (!credentials) return runTransaction(handle, (trx) => work(trx, async () => {}));
    return credentials.store.transaction((tx) =>
      work(tx.db, async (tenantId, taskId) => {
        await tx.store.delete(TASK_SECRETS_TYPE, tenantId, taskId);
      }),
    );
  };

  return {
    register: (definition) => types.register(definition),
    async schedule(input, scheduleOptions = {}) {
      if (typeof input === 'object' && input !== null && input.runAs !== undefined) {
        if (scheduleOptions.tx) throw new TypeError('A task that runs as a user is written in its own transaction, with its credentials: leave out "tx".');
        return scheduleAsUser(input);
      }
      const row = prepare(input, null);
      await checkParams(row);
      const now = clock.now();
      if (scheduleOptions.tx) await store.insert(scheduleOptions.tx, row, now);
      else await runTransaction(handle, (trx) => store.insert(trx, row, now));
      runner.wake();
      return toView(row);
    },
    async ensure(key, input) {
      const parsedKey = parseInput(id, key, 'task key');
      const row = prepare(input, parsedKey);
      await checkParams(row);
      if (await store.insertKeyed({ ...row, key: parsedKey }, clock.now())) runner.wake();
      let stored = await store.getByKey(parsedKey);
      if (!stored) throw notFound(parsedKey);
      // A changed setting (an interval) reaches the existing task: its schedule is brought to the input's.
      if (stored.schedule !== row.schedule && (await store.updateIdle(stored.id, undefined, { schedule: row.schedule, run_slot: row.run_slot, next_run_at: row.next_run_at, attempts: 0, updated_at: row.updated_at }, clock.now()))) {
        stored = (await store.getByKey(parsedKey)) ?? stored;
        runner.wake();
      }
      return toView(stored);
    },
    async get(taskId, scope = {}) {
      // The task and its runs as of one moment: a run finishing between the two reads (its history
      // row and its status change commit together) would show a finished run on a running task,
      // so the task is read again after its runs and the pair is taken only when it did not change.
      let row = await load(taskId, scope);
      let runs = await store.runs(row.id, RUNS_SHOWN);
      for (let attempt = 0; attempt < 5; attempt++) {
        const again = await load(taskId, scope);
        const unchanged = JSON.stringify(again) === JSON.stringify(row);
        row = again;
        if (unchanged) break;
        runs = await store.runs(row.id, RUNS_SHOWN);
      }
      return { ...toView(row, (await credentialsOf([row.id])).get(row.id)), runs: runs.map(toRunView) };
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
      const held = await credentialsOf(page.map((r) => r.id));
      return { tasks: page.map((r) => toView(r, held.get(r.id))), next: rows.length > limit ? (page.at(-1)?.id ?? null) : null };
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
      return viewOf(await load(taskId, scope));
    },
    async setEnabled(taskId, enabled, scope = {}) {
      if (typeof enabled !== 'boolean') throw new TypeError('"enabled" must be a boolean.');
      const row = await load(taskId, scope);
      if (!(await store.setEnabled(row.id, scope.tenantId, enabled, clock.now()))) throw notFound(taskId);
      if (enabled) runner.wake();
      return viewOf(await load(taskId, scope));
    },
    async remove(taskId, scope = {}) {
      if (!lookable(taskId, scope)) throw notFound(String(taskId));
      const { removed } = await removeTasks([taskId], scope);
      if (removed.length === 0) throw notFound(taskId);
    },
    async removeMany(ids, scope = {}) {
      if (!Array.isArray(ids) || ids.length === 0 || ids.length > 1000) {
        throw new LatchkeyError('validation_failed', 'The bulk delete is invalid: "ids" must list 1 to 1000 task ids.', { details: { fields: [{ path: 'ids', message: 'must list 1 to 1000 task ids' }] } });
      }
      const unique = [...new Set(ids.map(String))];
      const valid = unique.filter((taskId) => lookable(taskId, scope));
      const { removed } = valid.length > 0 ? await removeTasks(valid, scope) : { removed: [] };
      const gone = new Set(removed);
      return { removed, notFound: unique.filter((taskId) => !gone.has(taskId)) };
    },
    prune: ({ type, finishedBefore }) => store.pruneFinished(type, finishedBefore),
    runner,
    start: () => runner.start(),
    stop: () => runner.stop(),
  };
}
