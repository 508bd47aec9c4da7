import { randomInt } from 'node:crypto';
import type { Selectable, Updateable } from 'kysely';
import type { TasksTable } from '../db/index.js';
import { isRecurring, nextSlot, type TaskSchedule } from './schedule.js';
import type { RegisteredTaskType } from './task-types.js';

export type TaskRow = Selectable<TasksTable>;
export type TaskStatus = 'scheduled' | 'running' | 'succeeded' | 'failed';
export const TASK_STATUSES: readonly TaskStatus[] = ['scheduled', 'running', 'succeeded', 'failed'];
export type RunOutcomeKind = 'succeeded' | 'failed' | 'timed_out' | 'lease_expired';

/** How one attempt ended. `retry: false` gives the slot up at once (params that no longer parse). */
export type RunOutcome = { kind: 'succeeded'; result?: string } | { kind: 'failed' | 'timed_out'; code: string; message: string; retry: boolean };

/**
 * The delay before attempt `n + 1` after `n` failures: exponential (×2), capped, with "equal
 * jitter" (half fixed, half random) so that tasks failing together do not retry together.
 *
 * @example
 * retryDelayMs(3, { baseMs: 1000, maxMs: 60_000 }); // 2000 to 4000
 */
export function retryDelayMs(failures: number, backoff: { baseMs: number; maxMs: number }): number {
  const exponential = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(40, Math.max(0, failures - 1)));
  const half = Math.floor(exponential / 2);
  return exponential - half + (half > 0 ? randomInt(0, half + 1) : 0);
}

export function scheduleOf(row: TaskRow): TaskSchedule | null {
  return row.schedule === null ? null : (JSON.parse(row.schedule) as TaskSchedule);
}

/**
 * The row's new state after an attempt that ended at `now`: the next slot of a recurring task
 * (never a missed one), a retry after backoff in the same slot, or the end of a one-off task.
 */
export function afterRun(row: TaskRow, type: Pick<RegisteredTaskType, 'maxAttempts' | 'backoff'>, outcome: RunOutcome, now: Date): Updateable<TasksTable> {
  const common: Updateable<TasksTable> = {
    lease_owner: null,
    lease_expires_at: null,
    last_outcome: outcome.kind,
    last_error_code: outcome.kind === 'succeeded' ? null : outcome.code,
    last_error: outcome.kind === 'succeeded' ? null : outcome.message,
    ...(outcome.kind === 'succeeded' && outcome.result !== undefined ? { last_result: outcome.result } : {}),
    updated_at: now.toISOString(),
  };
  const attempts = Number(row.attempts);
  if (outcome.kind !== 'succeeded' && outcome.retry && attempts < type.maxAttempts) {
    return { ...common, status: 'scheduled', next_run_at: new Date(now.getTime() + retryDelayMs(attempts, type.backoff)).toISOString() };
  }
  const schedule = scheduleOf(row);
  const next = isRecurring(schedule) ? nextSlot(schedule, new Date(row.run_slot), now) : undefined;
  if (next !== undefined) return { ...common, status: 'scheduled', attempts: 0, run_slot: next.toISOString(), next_run_at: next.toISOString() };
  return { ...common, status: outcome.kind === 'succeeded' ? 'succeeded' : 'failed' };
}
