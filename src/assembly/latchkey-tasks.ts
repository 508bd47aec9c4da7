import { z } from 'zod';
import { counted, LatchkeyError, type Clock, type Logger } from '../core/index.js';
import type { InvalidationBus } from '../db/index.js';
import type { ObjectMaintenance, RekeyPhase } from '../objects/index.js';
import type { Tasks } from '../tasks/index.js';
import type { DeliveryScheduler, Webhooks } from '../webhooks/index.js';

/** The task types of Latchkey's own work, run by the engine like any other. */
export const LATCHKEY_TASK_TYPES = {
  webhookAttempt: 'latchkey.webhook-attempt',
  oauthCleanup: 'latchkey.oauth-cleanup',
  housekeeping: 'latchkey.housekeeping',
  tokenRefresh: 'latchkey.token-refresh',
  rekey: 'latchkey.rekey',
} as const;

/** Latchkey's recurring tasks: one per database, created at the first start (`tasks.ensure`). */
const RECURRING = [
  { key: 'latchkey:oauth-cleanup', type: LATCHKEY_TASK_TYPES.oauthCleanup, every: '30m' },
  { key: 'latchkey:housekeeping', type: LATCHKEY_TASK_TYPES.housekeeping, every: '30m' },
  { key: 'latchkey:token-refresh', type: LATCHKEY_TASK_TYPES.tokenRefresh, every: '1m' },
] as const;

/**
 * Proactive refresh counts a token due this much before the on-demand margin (two runs of the
 * 1-minute task, so one missed run still refreshes in time; at most a quarter of a token's lifetime).
 */
const REFRESH_AHEAD_MS = 2 * 60_000;

/** Finished webhook attempt tasks are kept this long (the delivery keeps its own attempt log). */
const ATTEMPT_TASK_RETENTION_MS = 24 * 3600 * 1000;

export interface LatchkeyTaskParts {
  tasks: Tasks;
  webhooks: Webhooks;
  /** Deletes expired OAuth states and connect sessions; returns how many. */
  cleanupExpired(): Promise<number>;
  purgeExpiredSessions(): Promise<number>;
  /** Proactive refresh (`refreshExpiringConnections`) of every tenant's connections. */
  refreshExpiring(run: { aheadMs: number; signal: AbortSignal }): Promise<{ due: number; refreshed: number; failed: number }>;
  bus: InvalidationBus;
  maintenance: Pick<ObjectMaintenance, 'rekey'>;
  clock: Clock;
  logger: Logger;
}

/**
 * Queues webhook delivery attempts as tasks of the engine, in the caller's transaction.
 *
 * @example
 * const webhooks = createWebhooks({ ..., scheduler: webhookAttemptScheduler(tasks) });
 */
export function webhookAttemptScheduler(tasks: Pick<Tasks, 'schedule'>): DeliveryScheduler {
  return {
    async schedule(db, deliveryId, at) {
      const task = await tasks.schedule({ type: LATCHKEY_TASK_TYPES.webhookAttempt, params: { deliveryId }, schedule: { at: at.toISOString() } }, { tx: db });
      return task.id;
    },
  };
}

/** Runs every step, then throws the first failure (the engine retries the run; each step is idempotent). */
async function allSteps(logger: Logger, steps: ReadonlyArray<[string, () => Promise<number>]>): Promise<void> {
  let failure: unknown;
  for (const [what, step] of steps) {
    try {
      const count = await step();
      if (count > 0) logger.debug({ count }, `Housekeeping: ${what}.`);
    } catch (err) {
      logger.warn({ err }, `Housekeeping: ${what} failed.`);
      failure ??= err;
    }
  }
  if (failure !== undefined) throw failure;
}

/**
 * Registers the task types of Latchkey's own work (webhook delivery attempts, OAuth state clean-up,
 * housekeeping, proactive token refresh, the admin task `latchkey.rekey`) and returns `ensure`, which creates the recurring ones once per database.
 *
 * @example
 * const own = registerLatchkeyTasks({ tasks, webhooks, cleanupExpired, purgeExpiredSessions, bus, clock, logger });
 * background.add({ name: 'task runner', start: async () => { await own.ensure(); await tasks.start(); }, stop: () => tasks.stop() });
 */
export function registerLatchkeyTasks(parts: LatchkeyTaskParts): { ensure(): Promise<void> } {
  const { tasks, webhooks, clock, logger } = parts;
  tasks.register({
    type: LATCHKEY_TASK_TYPES.webhookAttempt,
    paramsSchema: z.object({ deliveryId: z.string().min(1).max(200) }),
    // A failed POST is recorded and its retry queued by the run itself (the webhook backoff); the
    // engine's own retries are for runs that could not record (a database error).
    timeout: webhooks.timeoutMs + 10_000,
    maxAttempts: 5,
    backoff: { base: '5s', max: '5m' },
    run: ({ params, taskId, signal, transaction }) => webhooks.attempt(params.deliveryId, { attemptId: taskId, signal, transaction }),
  });
  tasks.register({
    type: LATCHKEY_TASK_TYPES.oauthCleanup,
    paramsSchema: z.object({}),
    run: async () => {
      await allSteps(logger, [['deleted expired OAuth states and connect sessions', () => parts.cleanupExpired()]]);
    },
  });
  tasks.register({
    type: LATCHKEY_TASK_TYPES.housekeeping,
    paramsSchema: z.object({}),
    run: async () => {
      await allSteps(logger, [
        ['purged expired sessions', () => parts.purgeExpiredSessions()],
        ['pruned old invalidations', () => parts.bus.prune()],
        ['pruned old webhook deliveries', () => webhooks.prune()],
        ['queued attempts of stalled webhook deliveries', () => webhooks.requeueStalled()],
        [
          'pruned finished webhook attempt tasks',
          () => tasks.prune({ type: LATCHKEY_TASK_TYPES.webhookAttempt, finishedBefore: new Date(clock.now().getTime() - ATTEMPT_TASK_RETENTION_MS) }),
        ],
      ]);
    },
  });
  tasks.register({
    type: LATCHKEY_TASK_TYPES.tokenRefresh,
    paramsSchema: z.object({}),
    timeout: '10m',
    // A connection's failure is recorded on it and never fails the run; the next slot is a minute away.
    maxAttempts: 2,
    backoff: { base: '10s', max: '30s' },
    run: async ({ signal }) => {
      const report = await parts.refreshExpiring({ aheadMs: REFRESH_AHEAD_MS, signal });
      if (report.due > 0) logger.debug(report, `Proactive refresh: ${report.refreshed} of ${report.due} connections due refreshed, ${report.failed} failed.`);
    },
  });
  tasks.register({
    type: LATCHKEY_TASK_TYPES.rekey,
    paramsSchema: z.strictObject({
      dataKeys: z.boolean({ error: 'must be true or false' }).default(false),
      batchSize: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(10_000, 'must be at most 10000').default(500),
    }),
    // Resumable: a retry (or a run again after a crash) picks up where the last one stopped.
    timeout: '12h',
    maxAttempts: 3,
    backoff: { base: '1m', max: '10m' },
    run: async ({ params, progress }) => {
      const reporter = progressReporter(progress);
      const report = await parts.maintenance.rekey({
        dataKeys: params.dataKeys,
        batchSize: params.batchSize,
        onPhase: (phase) => reporter.phase(phase),
        onProgress: (phase, done, total) => reporter.counts(phase, done, total),
      });
      const failed = report.failures.length + report.dataKeyFailures.length;
      await reporter.done({
        dataKeysRewrapped: report.dataKeysRewrapped,
        ...(report.dataKeys ? { rotatedTenants: report.dataKeys.rotatedTenants, reencrypted: report.dataKeys.reencrypted, prunedDataKeys: report.dataKeys.prunedDataKeys } : {}),
        failed,
      });
      if (failed > 0) {
        throw new LatchkeyError('internal_error', `The rekey left ${counted(failed, 'item')} it could not rekey; fix them (see \`latchkey doctor --scan\`) and run it again to resume.`);
      }
    },
  });
  return {
    async ensure() {
      for (const task of RECURRING) await tasks.ensure(task.key, { type: task.type, schedule: { every: task.every } });
    },
  };
}

/**
 * Turns a rekey's synchronous callbacks into the task's progress writes: one write at a time, the
 * latest state written next (counts that arrive meanwhile are folded), a lost claim surfacing at
 * `done` (the run's signal is aborted at once).
 */
function progressReporter(write: (progress: Record<string, unknown>) => Promise<void>) {
  let state: Record<string, unknown> = { phase: 'rewrapping', done: 0, total: null };
  let writing: Promise<void> | undefined;
  let dirty = false;
  let failure: unknown;
  const flush = () => {
    if (writing) {
      dirty = true;
      return;
    }
    const snapshot = state;
    writing = write(snapshot)
      .catch((err: unknown) => {
        failure ??= err;
      })
      .finally(() => {
        writing = undefined;
        if (dirty) {
          dirty = false;
          flush();
        }
      });
  };
  return {
    phase(phase: RekeyPhase) {
      state = { phase, done: 0, total: null };
      flush();
    },
    counts(phase: RekeyPhase, done: number, total: number) {
      state = { phase, done, total };
      flush();
    },
    async done(summary: Record<string, unknown>) {
      while (writing) await writing;
      if (failure !== undefined) throw failure;
      await write({ phase: 'done', ...summary });
    },
  };
}
