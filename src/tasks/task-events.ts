import type { Updateable } from 'kysely';
import type { TasksTable } from '../db/index.js';
import type { ObjectTransaction } from '../objects/index.js';
import type { RunRecord } from './task-store.js';
import type { RunOutcome, TaskRow } from './transitions.js';

/**
 * A recorded attempt of a task that has an owner, told in the transaction of its fenced finish
 * (`createLatchkey` sends it as the webhook event of the same name). Never holds params or secrets.
 */
export interface TaskFinishedEvent {
  type: 'task.succeeded' | 'task.failed';
  tenantId: string;
  data: {
    taskId: string;
    taskType: string;
    /** The run slot (scheduled time) the attempt belongs to. */
    slot: string;
    attempt: number;
    userId: string | null;
    outcome: 'succeeded' | 'failed' | 'timed_out';
    /** A failed attempt that another attempt of the same slot will follow. */
    willRetry: boolean;
    errorCode: string | null;
    /** The failure's sentence as the task keeps it (a LatchkeyError's own, else only the error's kind). */
    errorMessage: string | null;
    durationMs: number;
    /** What a successful run returned as its summary (the task's `lastResult`, such as connector_request's `{status, at, bytes, contentType}`); null otherwise. */
    result: unknown;
  };
}

/** Told of each recorded attempt of an owned task, inside the finish's store transaction. */
export type TaskEventSink = (event: TaskFinishedEvent, tx: ObjectTransaction) => Promise<void>;

/** The event of an attempt about to be recorded with `set`; undefined for Latchkey's own tasks (no owner). */
export function finishedEvent(row: TaskRow, outcome: RunOutcome, set: Updateable<TasksTable>, record: RunRecord): TaskFinishedEvent | undefined {
  if (row.tenant_id === null) return undefined;
  const failed = outcome.kind !== 'succeeded';
  return {
    type: failed ? 'task.failed' : 'task.succeeded',
    tenantId: row.tenant_id,
    data: {
      taskId: row.id,
      taskType: row.type,
      slot: row.run_slot,
      attempt: Number(row.attempts),
      userId: row.owner_id,
      outcome: outcome.kind,
      // afterRun keeps the slot for a retry and moves it on otherwise.
      willRetry: failed && set.status === 'scheduled' && set.run_slot === undefined,
      errorCode: failed ? outcome.code : null,
      errorMessage: failed ? outcome.message : null,
      durationMs: Math.max(0, Math.round(record.durationMs)),
      result: outcome.kind === 'succeeded' && outcome.result !== undefined ? (JSON.parse(outcome.result) as unknown) : null,
    },
  };
}
