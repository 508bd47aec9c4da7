import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from '../db/index.js';

// The usage gate's database statements. Every one is a single atomic statement (no transaction
// spans an await), so they behave the same on SQLite, where two handles in one process would
// otherwise wait on each other's locks, and on PostgreSQL under any number of processes.

/** Rows per batched statement: well under both dialects' bound-parameter limits. */
const CHUNK = 300;
/** `credits_remaining` is a 32-bit integer column. */
const MAX_CREDITS = 2_147_483_647;
/** Compare-and-set attempts before giving up; each failure means another process just won. */
const CAS_ATTEMPTS = 50;

function int(value: number): RawBuilder<number> {
  // PostgreSQL cannot infer a type for a bare parameter inside CASE or VALUES.
  return sql<number>`cast(${value} as integer)`;
}

function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

export interface RateLeaseResult {
  /** Slots granted to this process (0 when the window is full). */
  granted: number;
  /** The window's count over all processes after this lease (the limit when full). */
  used: number;
}

/**
 * Raises the key's window count by up to `want` slots, never above `limit`, in one statement. A
 * row for an older window is reset to the new one; a row already in a newer window (another
 * process's clock is ahead) grants nothing.
 */
export async function leaseRateSlots(
  db: Kysely<Database>,
  keyId: string,
  windowStart: string,
  want: number,
  limit: number,
): Promise<RateLeaseResult> {
  const first = Math.min(want, limit);
  const row = await db
    .insertInto('api_key_rate_windows')
    .values({ key_id: keyId, window_start: windowStart, used: first, granted: first })
    .onConflict((oc) =>
      oc
        .column('key_id')
        .doUpdateSet({
          // SET expressions read the row as it was before this statement, on both dialects.
          used: sql<number>`case when api_key_rate_windows.window_start < ${windowStart} then ${int(first)}
            when api_key_rate_windows.used + ${int(want)} > ${int(limit)} then ${int(limit)}
            else api_key_rate_windows.used + ${int(want)} end`,
          granted: sql<number>`case when api_key_rate_windows.window_start < ${windowStart} then ${int(first)}
            when api_key_rate_windows.used + ${int(want)} > ${int(limit)} then ${int(limit)} - api_key_rate_windows.used
            else ${int(want)} end`,
          window_start: windowStart,
        })
        .where(
          sql<boolean>`api_key_rate_windows.window_start < ${windowStart}
            or (api_key_rate_windows.window_start = ${windowStart} and api_key_rate_windows.used < ${int(limit)})`,
        ),
    )
    .returning(['used', 'granted'])
    .executeTakeFirst();
  if (!row) return { granted: 0, used: limit };
  return { granted: Number(row.granted), used: Number(row.used) };
}

/**
 * Gives back slots leased in `windowStart` and never used (a newer window makes it a no-op). Each
 * (key, window) at most once per call: a batched row that repeats a key is applied only once.
 */
export async function returnRateSlots(
  db: Kysely<Database>,
  entries: Array<{ keyId: string; windowStart: string; count: number }>,
): Promise<void> {
  for (const chunk of chunks(entries)) {
    const values = sql.join(chunk.map((e) => sql`(${e.keyId}, ${e.windowStart}, ${int(e.count)})`));
    await sql`update api_key_rate_windows set used = api_key_rate_windows.used - v.column3
      from (values ${values}) as v
      where api_key_rate_windows.key_id = v.column1 and api_key_rate_windows.window_start = v.column2
        and api_key_rate_windows.used >= v.column3`.execute(db);
  }
}

export interface Refill {
  amount: number;
  intervalMs: number;
}

export interface CreditLeaseResult {
  /** Credits granted to this process; 0 when none are left. */
  granted: number;
  /** The database balance after this lease. */
  remaining: number;
  /** False when the key has no balance in the database (credits were removed): nothing to return. */
  metered: boolean;
  /** When the next refill is due (epoch ms), or null without refill. */
  nextRefillAt: number | null;
}

function parseRefill(json: string | null): Refill | null | undefined {
  if (json === null) return null;
  try {
    const value = JSON.parse(json) as { amount?: unknown; intervalMs?: unknown } | null;
    const amount = value?.amount;
    const intervalMs = value?.intervalMs;
    if (typeof amount === 'number' && Number.isInteger(amount) && typeof intervalMs === 'number' && Number.isInteger(intervalMs) && intervalMs > 0) {
      return { amount, intervalMs };
    }
  } catch {
    // Unreadable: fall back to the caller's policy.
  }
  return undefined;
}

/**
 * Applies due refills and takes up to `size(available)` credits from the key's balance with a
 * compare-and-set on (`credits_remaining`, `credits_refilled_at`), retried when another process
 * wins. The balance never goes below zero. The database row is the truth for the balance and the
 * refill; `fallbackRefill` is used only when the stored refill cannot be read.
 */
export async function leaseCredits(
  db: Kysely<Database>,
  keyId: string,
  nowMs: number,
  size: (available: number) => number,
  fallbackRefill: Refill | null,
): Promise<CreditLeaseResult> {
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    const row = await db
      .selectFrom('api_keys')
      .select(['credits_remaining', 'credits_refill', 'credits_refilled_at'])
      .where('id', '=', keyId)
      .executeTakeFirst();
    if (!row) return { granted: 0, remaining: 0, metered: true, nextRefillAt: null };
    if (row.credits_remaining === null) return { granted: size(MAX_CREDITS), remaining: MAX_CREDITS, metered: false, nextRefillAt: null };
    const old = Number(row.credits_remaining);
    const stored = parseRefill(row.credits_refill);
    const refill = stored === undefined ? fallbackRefill : stored;

    let available = old;
    let refilledAt = row.credits_refilled_at;
    let nextRefillAt: number | null = null;
    if (refill) {
      // Refills are counted from the stored anchor in whole intervals, so applying one late (or
      // from any process) adds exactly the same credits.
      const anchor = refilledAt === null ? nowMs : Date.parse(refilledAt);
      const periods = Math.max(0, Math.floor((nowMs - anchor) / refill.intervalMs));
      available = Math.min(MAX_CREDITS, available + periods * refill.amount);
      const next = anchor + periods * refill.intervalMs;
      refilledAt = new Date(next).toISOString();
      nextRefillAt = next + refill.intervalMs;
    }
    const take = available > 0 ? Math.min(available, Math.max(1, size(available))) : 0;
    const after = available - take;
    if (after === old && refilledAt === row.credits_refilled_at) {
      return { granted: 0, remaining: after, metered: true, nextRefillAt };
    }
    const result = await db
      .updateTable('api_keys')
      .set({ credits_remaining: after, credits_refilled_at: refilledAt })
      .where('id', '=', keyId)
      .where('credits_remaining', '=', old)
      .where('credits_refilled_at', row.credits_refilled_at === null ? 'is' : '=', row.credits_refilled_at)
      .executeTakeFirst();
    if (result.numUpdatedRows === 1n) return { granted: take, remaining: after, metered: true, nextRefillAt };
    // Lost the race: another process changed the balance between our read and write.
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`Credits of API key ${keyId} changed on every one of ${CAS_ATTEMPTS} attempts.`);
}

/** Gives unused leased credits back to their keys' balances, in batches; each key at most once per call. */
export async function returnCredits(db: Kysely<Database>, entries: Array<{ keyId: string; count: number }>): Promise<void> {
  for (const chunk of chunks(entries)) {
    const values = sql.join(chunk.map((e) => sql`(${e.keyId}, ${int(e.count)})`));
    await sql`update api_keys set credits_remaining = api_keys.credits_remaining + v.column2
      from (values ${values}) as v
      where api_keys.id = v.column1 and api_keys.credits_remaining is not null`.execute(db);
  }
}

/**
 * Writes last-used times in batches, each key at most once per call; a stored time never moves
 * backwards (another process may be ahead).
 */
export async function writeLastUsed(db: Kysely<Database>, entries: Array<{ keyId: string; at: string }>): Promise<void> {
  for (const chunk of chunks(entries)) {
    const values = sql.join(chunk.map((e) => sql`(${e.keyId}, ${e.at})`));
    await sql`update api_keys set last_used_at = v.column2
      from (values ${values}) as v
      where api_keys.id = v.column1 and (api_keys.last_used_at is null or api_keys.last_used_at < v.column2)`.execute(db);
  }
}
