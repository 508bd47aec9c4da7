import type { z } from 'zod';
import { parseDuration } from '../core/index.js';
import type { RunAs } from './credentials/index.js';
import type { TaskLatchkeyClient } from './task-api.js';
import type { Transaction } from 'kysely';
import type { Database } from '../db/index.js';

/** Who a task runs for: a tenant and, optionally, one of its users. Null for Latchkey's own tasks. */
export interface TaskOwner {
  tenantId: string;
  userId: string | null;
}

/** What a run is given. */
export interface TaskRunContext<P> {
  taskId: string;
  type: string;
  /** The stored params, parsed again by the type's schema. */
  params: P;
  /**
   * The same on every attempt of one run slot (a retry, or a run again after its worker died),
   * different for each slot: `<taskId>@<slot>`. Delivery is at least once, so a run with side
   * effects elsewhere passes this on (an `Idempotency-Key` header, a unique column) to have them
   * happen once.
   */
  idempotencyKey: string;
  /** The scheduled time this run belongs to. */
  slot: Date;
  /** 1 for the first attempt of the slot. */
  attempt: number;
  owner: TaskOwner | null;
  /**
   * Aborted when the run times out, when this worker lost its lease (another took the task over),
   * or at shutdown past its grace period. Pass it to every request and stop when it fires: an
   * aborted run's outcome is not recorded as success.
   */
  signal: AbortSignal;
  /** Who the task runs as, for a task scheduled with `runAs`; null otherwise. */
  runAs: RunAs | null;
  /**
   * The credential the strategy chose for this run (the task's API key, or the external one when
   * `credentialType` is `external` and the task holds one). `secret` is there only for a type
   * that declares `needsSecret`.
   */
  credential: { kind: 'native' | 'external'; id: string; expiresAt: string | null; secret?: string } | null;
  /** Latchkey's own API as the task's user (through the HTTP app of this process), or null. */
  latchkey: TaskLatchkeyClient | null;
  /**
   * Runs `fn` in one database transaction that first checks, and holds until the commit, this
   * attempt's claim (the task row with this claim's fencing token): what the run writes there
   * commits only while no other worker has taken the task over. Throws `conflict` (and aborts the
   * run) when the lease was lost or the task removed.
   *
   * @example
   * await context.transaction((db) => db.updateTable('reports').set({ sent_at: now }).where('id', '=', id).execute());
   */
  transaction<T>(fn: (db: Transaction<Database>) => Promise<T>): Promise<T>;
  /**
   * Reports how far the run has come (`{done: 120, total: 500}`, a phase...), shown as the task's
   * `progress` and kept once the run ends. JSON of at most 4 KiB, never a secret. Written only
   * while this attempt holds its claim: throws `conflict` (and aborts the run) when it lost it.
   *
   * @example
   * await context.progress({ phase: 'copying', done, total });
   */
  progress(progress: Record<string, unknown>): Promise<void>;
}

/** Retry delays after failures: `base · 2^(n-1)` capped at `max`, with jitter. Durations as `"30s"` or ms. */
export interface TaskBackoff {
  /** Delay after the first failure (default 30 s). */
  base?: string | number;
  /** Longest delay (default 1 hour). */
  max?: string | number;
}

/** A task type, registered in code. */
export interface TaskTypeDefinition<S extends z.ZodType = z.ZodType> {
  /** Lowercase letters, digits, `_`, `.`, `:` and `-`; 1 to 64 characters. */
  type: string;
  /** Parses params when a task is scheduled, and again before each run. Params are stored in plain: never put a secret in them. */
  paramsSchema: S;
  /** A JSON object returned (at most 4 KiB) is kept as the task's `lastResult`: a summary, never a secret. */
  run(context: TaskRunContext<z.output<S>>): Promise<unknown> | unknown;
  /** The run is given its credential's secret (default false: only its kind and id). */
  needsSecret?: boolean;
  /** Only a task scheduled with `runAs` can run (it calls Latchkey as that user): scheduling one without is refused. */
  requiresRunAs?: boolean;
  /**
   * Checks what the parsed params name against the owner tenant's state when the task is
   * scheduled (a connector that exists), so a task that can never run is refused then, not on
   * every attempt; throw `validation_failed` naming the field. Not called again: a run meets
   * later changes itself.
   */
  check?(params: z.output<S>, scheduling: { tenantId: string }): Promise<void> | void;
  /** Per attempt; the signal aborts past it (default 5 minutes). */
  timeout?: string | number;
  /** Attempts per run slot before a run is given up (default 3). */
  maxAttempts?: number;
  backoff?: TaskBackoff;
}

/** A task type with its settings resolved. */
export interface RegisteredTaskType {
  type: string;
  paramsSchema: z.ZodType;
  run(context: TaskRunContext<unknown>): Promise<unknown> | unknown;
  needsSecret: boolean;
  requiresRunAs: boolean;
  check: ((params: unknown, scheduling: { tenantId: string }) => Promise<void> | void) | undefined;
  timeoutMs: number;
  maxAttempts: number;
  backoff: { baseMs: number; maxMs: number };
}

const TYPE_NAME = /^[a-z][a-z0-9_.:-]{0,63}$/;
const DEFAULT_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_MAX_ATTEMPTS = 3;
const DEFAULT_BACKOFF = { baseMs: 30_000, maxMs: 3600_000 };

function durationOption(value: string | number | undefined, fallback: number, name: string, type: string): number {
  if (value === undefined) return fallback;
  const ms = parseDuration(value);
  if (ms === undefined || ms < 1) throw new TypeError(`Task type "${type}": "${name}" must be a positive duration such as "30s" or a number of milliseconds.`);
  return ms;
}

/** The task types this process knows. A process claims only tasks of its registered types. */
export class TaskTypeRegistry {
  readonly #types = new Map<string, RegisteredTaskType>();

  /**
   * Registers a task type. Throws a TypeError for a bad definition or a type registered twice.
   *
   * @example
   * types.register({ type: 'report.send', paramsSchema: z.object({ to: z.email() }), run: async ({ params, signal }) => { ... } });
   */
  register<S extends z.ZodType>(definition: TaskTypeDefinition<S>): void {
    const { type } = definition;
    if (typeof type !== 'string' || !TYPE_NAME.test(type)) {
      throw new TypeError(`Task type ${JSON.stringify(type)} must be 1 to 64 lowercase letters, digits, "_", ".", ":" or "-", starting with a letter.`);
    }
    if (this.#types.has(type)) throw new TypeError(`Task type "${type}" is already registered.`);
    if (typeof definition.paramsSchema?.safeParse !== 'function') throw new TypeError(`Task type "${type}": "paramsSchema" must be a zod schema.`);
    if (typeof definition.run !== 'function') throw new TypeError(`Task type "${type}": "run" must be a function.`);
    const maxAttempts = definition.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) throw new TypeError(`Task type "${type}": "maxAttempts" must be a whole number from 1 to 100.`);
    const backoff = {
      baseMs: durationOption(definition.backoff?.base, DEFAULT_BACKOFF.baseMs, 'backoff.base', type),
      maxMs: durationOption(definition.backoff?.max, DEFAULT_BACKOFF.maxMs, 'backoff.max', type),
    };
    if (backoff.maxMs < backoff.baseMs) throw new TypeError(`Task type "${type}": "backoff.max" must not be below "backoff.base".`);
    this.#types.set(type, {
      type,
      paramsSchema: definition.paramsSchema,
      run: (context) => definition.run(context as TaskRunContext<z.output<S>>),
      needsSecret: definition.needsSecret === true,
      requiresRunAs: definition.requiresRunAs === true,
      check: definition.check as RegisteredTaskType['check'],
      timeoutMs: durationOption(definition.timeout, DEFAULT_TIMEOUT_MS, 'timeout', type),
      maxAttempts,
      backoff,
    });
  }

  get(type: string): RegisteredTaskType | undefined {
    return this.#types.get(type);
  }

  /** The registered type names. */
  names(): string[] {
    return [...this.#types.keys()];
  }
}
