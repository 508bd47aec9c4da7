import { z } from 'zod';

const DAY_MS = 24 * 3600 * 1000;
const MAX_META_CHARS = 4096;
/** `credits_remaining` is a 32-bit integer column. */
const MAX_CREDITS = 2_147_483_647;

const int = (what: string) => z.number({ error: `must be ${what}` }).int({ error: `must be ${what}` });

/** Role names as the identity module accepts them. */
const roleName = z
  .string({ error: 'must be a string' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/, { error: 'must be 1 to 63 letters, digits or ._:- characters' });

export const createApiKeyInput = z.strictObject({
  name: z
    .string({ error: 'must be a string' })
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(200, { error: 'must be at most 200 characters' })
    .regex(/^[^\p{Cc}]*$/u, { error: 'must not contain control characters' }),
  /** Omitted or null: the key carries all of its owner's permissions, whatever they become. */
  roles: z.array(roleName, { error: 'must be a list of role names' }).max(50, { error: 'must name at most 50 roles' }).nullish(),
  expiresInMs: int('a whole number of milliseconds').min(1000, { error: 'must be at least 1 second' }).max(100 * 365 * DAY_MS, { error: 'must be at most 100 years' }).optional(),
  rateLimit: z
    .strictObject({
      limit: int('a positive whole number').min(1, { error: 'must be at least 1' }).max(1_000_000_000, { error: 'must be at most 1,000,000,000' }),
      windowMs: int('a whole number of milliseconds').min(1, { error: 'must be at least 1' }).max(365 * DAY_MS, { error: 'must be at most a year' }),
    })
    .optional(),
  credits: z
    .strictObject({
      remaining: int('a whole number').min(0, { error: 'must not be negative' }).max(MAX_CREDITS, { error: `must be at most ${MAX_CREDITS}` }),
      refill: z
        .strictObject({
          amount: int('a positive whole number').min(1, { error: 'must be at least 1' }).max(MAX_CREDITS, { error: `must be at most ${MAX_CREDITS}` }),
          intervalMs: int('a whole number of milliseconds').min(1000, { error: 'must be at least 1 second' }).max(365 * DAY_MS, { error: 'must be at most a year' }),
        })
        .optional(),
    })
    .optional(),
  meta: z
    .record(z.string(), z.json(), { error: 'must be an object' })
    .refine((meta) => JSON.stringify(meta).length <= MAX_META_CHARS, { error: `must be at most ${MAX_META_CHARS} characters as JSON` })
    .optional(),
});

export type CreateApiKeyInput = z.input<typeof createApiKeyInput>;

export const rollApiKeyInput = z.strictObject({
  gracePeriodMs: int('a whole number of milliseconds').min(0, { error: 'must not be negative' }).max(30 * DAY_MS, { error: 'must be at most 30 days' }).optional(),
});

export type RollApiKeyInput = z.input<typeof rollApiKeyInput>;

export const listApiKeysInput = z.strictObject({
  ownerId: z.string({ error: 'must be a string' }).min(1).max(200).optional(),
  limit: int('a whole number').min(1, { error: 'must be at least 1' }).max(500, { error: 'must be at most 500' }).optional(),
  after: z.string({ error: 'must be a string' }).min(1).max(200).optional(),
});

export type ListApiKeysInput = z.input<typeof listApiKeysInput>;

export { parseInput, assertId } from '../core/index.js';
