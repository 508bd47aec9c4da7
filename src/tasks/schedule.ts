import { Cron } from 'croner';
import { z } from 'zod';
import { parseDuration } from '../core/index.js';

/**
 * When a task runs: once at a time (`{at}`), at a fixed interval (`{every: "10m"}`, first run at
 * once), or on a cron pattern (`{cron: "0 * * * *", timezone?: "Europe/Paris"}`, five fields, or
 * six with seconds). No schedule: once, now.
 */
export type TaskSchedule = { at: string } | { every: string | number } | { cron: string; timezone?: string };

const MIN_EVERY_MS = 1000;
const MAX_EVERY_MS = 366 * 24 * 3600 * 1000;

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

function cronOf(pattern: string, timezone: string | undefined): Cron {
  return new Cron(pattern, { paused: true, mode: '5-or-6-parts', ...(timezone !== undefined ? { timezone } : {}) });
}

const EXACTLY_ONE = 'must have exactly one of "at", "every" or "cron" (and "timezone" with "cron")';
const strict = { error: (issue: { code?: string }) => (issue.code === 'unrecognized_keys' ? EXACTLY_ONE : undefined) };

const atSchedule = z.strictObject({ at: z.iso.datetime({ offset: true, error: 'must be an ISO-8601 time such as "2030-01-01T09:00:00Z"' }) }, strict);
const everySchedule = z.strictObject(
  {
    every: z.union([z.string(), z.number()], { error: 'must be a duration such as "10m" or a number of milliseconds' }).refine(
      (v) => {
        if (typeof v === 'string' && v.length > 32) return false;
        const ms = parseDuration(v);
        return ms !== undefined && ms >= MIN_EVERY_MS && ms <= MAX_EVERY_MS;
      },
      { error: 'must be a duration from 1s to 366d, such as "10m"' },
    ),
  },
  strict,
);
const CRON_MESSAGE = 'must be a cron pattern of five fields (or six with seconds), such as "0 * * * *"';
const cronSchedule = z
  .strictObject(
    {
      cron: z.string({ error: CRON_MESSAGE }).min(1, CRON_MESSAGE).max(200, 'must be at most 200 characters'),
      timezone: z
        .string({ error: 'must be an IANA time zone such as "Europe/Paris"' })
        .max(64, 'must be an IANA time zone such as "Europe/Paris"')
        .refine(isTimeZone, { error: 'must be an IANA time zone such as "Europe/Paris"' })
        .optional(),
    },
    strict,
  )
  .superRefine((value, ctx) => {
    // A bad time zone has its own issue already.
    if (value.timezone !== undefined && !isTimeZone(value.timezone)) return;
    let next: Date | null;
    try {
      next = cronOf(value.cron, value.timezone).nextRun(new Date());
    } catch {
      ctx.addIssue({ code: 'custom', path: ['cron'], message: CRON_MESSAGE });
      return;
    }
    if (next === null) ctx.addIssue({ code: 'custom', path: ['cron'], message: 'never matches a future time' });
  });

/**
 * The zod schema of a {@link TaskSchedule}: exactly one of `at`, `every` or `cron`, each
 * checked by its own rules so that an error names the field at fault.
 */
export const taskScheduleSchema: z.ZodType<TaskSchedule, unknown> = z.unknown().transform((value, ctx): TaskSchedule => {
  const shape = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  const schema = shape === undefined ? undefined : 'cron' in shape ? cronSchedule : 'every' in shape ? everySchedule : 'at' in shape ? atSchedule : undefined;
  if (schema === undefined) {
    ctx.addIssue({ code: 'custom', message: 'must be {"at": time}, {"every": duration} or {"cron": pattern, "timezone"?: zone}' });
    return z.NEVER;
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  return z.NEVER;
});

/** The schedule as stored: `at` in UTC. */
export function normalizeSchedule(schedule: TaskSchedule): TaskSchedule {
  if ('at' in schedule) return { at: new Date(schedule.at).toISOString() };
  return schedule;
}

/** When the first run of a task scheduled at `now` is due. */
export function firstSlot(schedule: TaskSchedule | null, now: Date): Date {
  if (schedule === null || 'every' in schedule) return now;
  if ('at' in schedule) return new Date(schedule.at);
  return cronOf(schedule.cron, schedule.timezone).nextRun(now) ?? now;
}

/**
 * The slot after a run of `slot` that finished at `now`, or undefined for a task that runs once.
 * Always after `now`: slots missed while no process ran are skipped, so a late task runs once,
 * never once per missed slot. Intervals keep their phase (`slot + k·every`).
 *
 * @example
 * nextSlot({ every: '1h' }, new Date('2030-01-01T10:00:00Z'), new Date('2030-01-01T13:30:00Z')); // 14:00
 */
export function nextSlot(schedule: TaskSchedule | null, slot: Date, now: Date): Date | undefined {
  if (schedule === null || 'at' in schedule) return undefined;
  if ('every' in schedule) {
    const every = parseDuration(schedule.every) ?? MIN_EVERY_MS;
    const steps = Math.max(1, Math.floor((now.getTime() - slot.getTime()) / every) + 1);
    return new Date(slot.getTime() + steps * every);
  }
  return cronOf(schedule.cron, schedule.timezone).nextRun(now) ?? undefined;
}

/** Whether a task with this schedule runs more than once. */
export function isRecurring(schedule: TaskSchedule | null): boolean {
  return schedule !== null && !('at' in schedule);
}
