import type { Kysely } from 'kysely';
import { LatchkeyError, systemClock, type Clock, type Logger } from '../core/index.js';
import type { Database } from '../db/index.js';
import { leaseCredits, leaseRateSlots, type Refill } from './usage-store.js';
import { UsageWriteBack } from './usage-writeback.js';

/** What a key is allowed: a rate limit per fixed window and/or a credit balance. Null: unlimited. */
export interface UsagePolicy {
  rateLimit: { limit: number; windowMs: number } | null;
  /**
   * `remaining` is the caller's cached figure and only says that the key is metered: the balance
   * (and its refill) are read from the database's `api_keys` row, which every process shares.
   */
  credits: { remaining: number; refill: { amount: number; intervalMs: number } | null } | null;
}

/** The answer for one request. */
export interface UsageDecision {
  ok: boolean;
  code?: 'rate_limited' | 'usage_exceeded';
  /** `rate_limited`: until the window resets. `usage_exceeded`: until the next refill, absent without one. */
  retryAfterMs?: number;
  /**
   * Credits left after this request as this process knows them: the database balance at its last
   * lease plus what it still holds. Other processes' unused leases are not subtracted.
   */
  remaining?: number;
  /** Slots left in the current window, known the same way as `remaining`; `resetAt` is UTC ISO-8601. */
  rateLimit?: { limit: number; remaining: number; resetAt: string };
}

export interface UsageGate {
  /** Decides rate limit and credits together for one request (all or nothing, counted once). */
  admit(key: { id: string; tenantId: string; policy: UsagePolicy }): Promise<UsageDecision>;
  /** Records last-used time (flushed in batches, never a synchronous write). */
  touch(keyId: string): void;
  /** Drop any local state for a key (revoked/rolled/changed). */
  forget(keyId: string): void;
}

export interface UsageGateOptions {
  db: Kysely<Database>;
  clock?: Clock;
  /** How often last-used times are written and idle leases returned. Default 1000. */
  flushIntervalMs?: number;
  /** The most slots or credits one lease takes. Default 10. */
  leaseSize?: number;
  logger?: Logger;
}

const DEFAULT_FLUSH_INTERVAL_MS = 1000;
const DEFAULT_LEASE_SIZE = 10;

/** Slots of one key's current window held by this process. */
interface RateState {
  windowStart: number;
  windowEnd: number;
  /** `windowEnd` as UTC ISO-8601, formatted once per window. */
  resetAt: string;
  windowMs: number;
  limit: number;
  /** Leased and not yet used. */
  available: number;
  /** The window's count over all processes as of this process's last lease or return. */
  dbUsed: number;
  /** The window was full at the last lease: refuse without asking the database until then. */
  fullUntil: number;
  /** Leased or drawn on since the last flush; an idle block is returned. */
  active: boolean;
}

/** Credits of one key held by this process. */
interface CreditState {
  available: number;
  /** The database balance as of this process's last lease or return. */
  dbRemaining: number;
  /** False when the database holds no balance for the key (credits removed): nothing to return. */
  metered: boolean;
  /** The balance was empty at the last lease: refuse without asking the database until then. */
  exhaustedUntil: number;
  nextRefillAt: number | null;
  /** Leased or drawn on since the last flush; an idle block is returned. */
  active: boolean;
}

interface KeyState {
  rate: RateState | undefined;
  credits: CreditState | undefined;
  rateLease: Promise<void> | undefined;
  creditLease: Promise<void> | undefined;
  /** An admit looked at this key since the last flush; an idle state holding nothing is dropped. */
  active: boolean;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

function closedError(): LatchkeyError {
  return new LatchkeyError('not_ready', 'The usage gate is closed.');
}

function invalid(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_VALUE' });
}

function assertAdmitKey(key: unknown): asserts key is { id: string; tenantId: string; policy: UsagePolicy } {
  const k = key as { id?: unknown; tenantId?: unknown; policy?: Partial<UsagePolicy> } | null;
  if (typeof k !== 'object' || k === null) throw invalid('"key" must be an object');
  if (typeof k.id !== 'string' || k.id === '') throw invalid('"key.id" must be a non-empty string');
  if (typeof k.tenantId !== 'string') throw invalid('"key.tenantId" must be a string');
  const policy = k.policy;
  if (typeof policy !== 'object' || policy === null) throw invalid('"key.policy" must be an object');
  const rate = policy.rateLimit;
  if (rate !== null) {
    if (typeof rate !== 'object') throw invalid('"key.policy.rateLimit" must be an object or null');
    if (!isPositiveInteger(rate.limit)) throw invalid('"key.policy.rateLimit.limit" must be a positive integer');
    if (!isPositiveInteger(rate.windowMs)) throw invalid('"key.policy.rateLimit.windowMs" must be a positive integer');
  }
  const credits = policy.credits;
  if (credits !== null) {
    if (typeof credits !== 'object') throw invalid('"key.policy.credits" must be an object or null');
    const refill = credits.refill;
    if (refill !== null) {
      if (typeof refill !== 'object') throw invalid('"key.policy.credits.refill" must be an object or null');
      if (!isPositiveInteger(refill.amount)) throw invalid('"key.policy.credits.refill.amount" must be a positive integer');
      if (!isPositiveInteger(refill.intervalMs)) throw invalid('"key.policy.credits.refill.intervalMs" must be a positive integer');
    }
  }
}

/**
 * Rate limits and credits for API keys, decided together and exact across every process that
 * shares the database, without a database write per request.
 *
 * **Leases.** A process reserves a small block from the database in one atomic statement and
 * admits requests from it locally: rate slots from a counter row per key and fixed window (raised
 * only while it stays at or below the limit), credits from `api_keys.credits_remaining` (a
 * compare-and-set that never takes it below zero, taking fewer when fewer remain). A block holds
 * at most `min(leaseSize, ⌈limit/10⌉)` slots or `min(leaseSize, ⌈balance/10⌉)` credits (never
 * fewer than one), so a process never holds more than a tenth of what is left. Concurrent
 * requests in one process share one in-flight lease request per key; only the request that
 * empties a block waits for the database.
 *
 * **Bounds** (these are the documented guarantees):
 * - Rate limit: over all processes, at most `limit` requests are admitted per window. Windows are
 *   fixed and aligned on multiples of `windowMs` since the Unix epoch (UTC), as read from each
 *   process's clock; so up to twice `limit` can pass in a span of `windowMs` that straddles a
 *   boundary, and a process whose clock lags can use at most one lease of the previous window
 *   after another process has opened the next.
 * - Credits: over all processes, the requests admitted never exceed the balance plus its refills,
 *   and the stored balance never goes below zero. A refill adds `amount` for every whole
 *   `intervalMs` since `credits_refilled_at` (the anchor advances by whole intervals, so a late
 *   refill adds exactly as much), applied in the same compare-and-set as the reservation.
 * - All or nothing: a request is admitted only when both a slot and a credit are in hand, and
 *   then takes one of each; a request refused for either takes neither. Slots are reserved
 *   before credits, so a full window answers `rate_limited` without reserving credits.
 * - Crash: leased credits are taken from the balance when leased; unused ones go back when idle
 *   for a flush interval, when a key is forgotten, and on `close()`. A process that dies without
 *   `close()` loses at most the unused part of the one lease it holds per key (at most
 *   `leaseSize` credits, and at most ⌈balance/10⌉ of the balance when it was taken), plus the
 *   lease of a key forgotten in the moment before the crash, whose return was not yet written.
 *   Unused rate slots of a dead process are lost only until their window ends.
 * - Fairness: a process may refuse while another holds unused slots or credits (at most one
 *   lease each); idle leases return within two flush intervals, and a refusal is checked against
 *   the database again after at most one flush interval (or at the window's end or the next
 *   refill, if sooner).
 * - Changing a balance: the unused lease a process holds when told to `forget()` the key goes
 *   back on top of the new balance, so a balance set by an administrator can be exceeded by at
 *   most one lease per process (a relative change is exact).
 * - Last use: `touch()` keeps times in memory; one batched statement per flush writes them
 *   (never moving a stored time backwards). A crash loses at most one flush interval of them.
 *
 * @example
 * const gate = createUsageGate({ db: handle.db });
 * gate.start(); // flush every interval (a server does; without it, only flush() and close() write)
 * const decision = await gate.admit({ id: key.id, tenantId: key.tenantId, policy });
 * if (!decision.ok) reply.code(429).header('retry-after', Math.ceil((decision.retryAfterMs ?? 0) / 1000));
 * else gate.touch(key.id);
 * // at shutdown: unused credits go back, last-used times are written
 * await gate.close();
 */
export function createUsageGate(options: UsageGateOptions): UsageGate & { start(): void; flush(): Promise<void>; close(): Promise<void> } {
  if (typeof options !== 'object' || options === null || typeof options.db !== 'object') throw invalid('"options.db" must be a Kysely instance');
  const flushIntervalMs = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
  const leaseSize = options.leaseSize ?? DEFAULT_LEASE_SIZE;
  if (!isPositiveInteger(flushIntervalMs)) throw invalid('"options.flushIntervalMs" must be a positive integer');
  if (!isPositiveInteger(leaseSize)) throw invalid('"options.leaseSize" must be a positive integer');
  const db = options.db;
  const clock = options.clock ?? systemClock;
  const logger = options.logger;

  const states = new Map<string, KeyState>();
  const owed = new UsageWriteBack(db);
  let closed = false;
  let flushing: Promise<void> = Promise.resolve();

  let timer: NodeJS.Timeout | undefined;

  /** Flushes every interval from now on (background work: a server starts it, a CLI command does not). */
  function start(): void {
    if (timer || closed) return;
    timer = setInterval(() => {
      flush().catch((err: unknown) => logger?.warn({ err }, 'usage flush failed; retrying at the next interval'));
    }, flushIntervalMs);
    timer.unref();
  }

  function stateFor(keyId: string): KeyState {
    let state = states.get(keyId);
    if (!state) {
      state = { rate: undefined, credits: undefined, rateLease: undefined, creditLease: undefined, active: true };
      states.set(keyId, state);
    }
    return state;
  }

  /** The state for the window `now` falls in; slots of an older window expire with it. */
  function currentRate(keyId: string, state: KeyState, policy: { limit: number; windowMs: number }, now: number): RateState {
    const windowStart = Math.floor(now / policy.windowMs) * policy.windowMs;
    const rate = state.rate;
    if (rate && rate.windowStart === windowStart && rate.windowMs === policy.windowMs && rate.limit === policy.limit) return rate;
    if (rate && rate.windowStart === windowStart) owed.returnSlots(keyId, iso(windowStart), rate.available);
    const fresh: RateState = {
      windowStart,
      windowEnd: windowStart + policy.windowMs,
      resetAt: iso(windowStart + policy.windowMs),
      windowMs: policy.windowMs,
      limit: policy.limit,
      available: 0,
      dbUsed: 0,
      fullUntil: 0,
      active: true,
    };
    state.rate = fresh;
    return fresh;
  }

  function leaseRate(keyId: string, state: KeyState, rate: RateState): Promise<void> {
    if (state.rateLease) return state.rateLease;
    const want = Math.max(1, Math.min(leaseSize, Math.ceil(rate.limit / 10)));
    const lease: Promise<void> = (async () => {
      let result;
      try {
        result = await leaseRateSlots(db, keyId, iso(rate.windowStart), want, rate.limit);
      } catch (err) {
        throw new LatchkeyError('database_error', 'Could not reserve rate-limit slots for an API key.', { cause: err });
      }
      if (states.get(keyId) !== state || state.rate !== rate) {
        // Forgotten, or the policy changed meanwhile: the block belongs to no one here.
        owed.returnSlots(keyId, iso(rate.windowStart), result.granted);
        return;
      }
      rate.available += result.granted;
      rate.dbUsed = result.used;
      rate.active = true;
      if (result.granted === 0) rate.fullUntil = Math.min(rate.windowEnd, clock.now().getTime() + flushIntervalMs);
    })().finally(() => {
      if (state.rateLease === lease) state.rateLease = undefined;
    });
    state.rateLease = lease;
    return lease;
  }

  function leaseCreditBlock(keyId: string, state: KeyState, refill: Refill | null): Promise<void> {
    if (state.creditLease) return state.creditLease;
    const lease: Promise<void> = (async () => {
      const now = clock.now().getTime();
      let result;
      try {
        result = await leaseCredits(db, keyId, now, (available) => Math.min(leaseSize, Math.ceil(available / 10)), refill);
      } catch (err) {
        throw new LatchkeyError('database_error', 'Could not reserve credits for an API key.', { cause: err });
      }
      if (states.get(keyId) !== state) {
        if (result.metered) owed.returnCredits(keyId, result.granted);
        return;
      }
      const credits = (state.credits ??= { available: 0, dbRemaining: 0, metered: true, exhaustedUntil: 0, nextRefillAt: null, active: true });
      credits.available += result.granted;
      credits.active = true;
      credits.dbRemaining = result.remaining;
      credits.metered = result.metered;
      credits.nextRefillAt = result.nextRefillAt;
      if (result.granted === 0) credits.exhaustedUntil = Math.min(result.nextRefillAt ?? Infinity, now + flushIntervalMs);
    })().finally(() => {
      if (state.creditLease === lease) state.creditLease = undefined;
    });
    state.creditLease = lease;
    return lease;
  }

  function rateInfo(rate: RateState): NonNullable<UsageDecision['rateLimit']> {
    return {
      limit: rate.limit,
      remaining: Math.max(0, rate.limit - rate.dbUsed + rate.available),
      resetAt: rate.resetAt,
    };
  }

  function decision(base: UsageDecision, rate: RateState | undefined, credits: CreditState | undefined): UsageDecision {
    if (credits?.metered && base.remaining === undefined) base.remaining = credits.dbRemaining + credits.available;
    if (rate) base.rateLimit = rateInfo(rate);
    return base;
  }

  async function admit(key: { id: string; tenantId: string; policy: UsagePolicy }): Promise<UsageDecision> {
    assertAdmitKey(key);
    const { rateLimit, credits: creditPolicy } = key.policy;
    if (!rateLimit && !creditPolicy) return { ok: true };
    if (closed) throw closedError();
    for (;;) {
      const now = clock.now().getTime();
      const state = stateFor(key.id);
      state.active = true;
      const rate = rateLimit ? currentRate(key.id, state, rateLimit, now) : undefined;
      const credits = creditPolicy ? state.credits : undefined;

      // Refusals known without the database.
      const rateOut = rate !== undefined && rate.available === 0 && rate.fullUntil > now;
      const creditsOut = credits !== undefined && credits.available === 0 && credits.exhaustedUntil > now;
      if (creditsOut) {
        const out: UsageDecision = { ok: false, code: 'usage_exceeded', remaining: 0 };
        if (credits.nextRefillAt !== null) out.retryAfterMs = credits.nextRefillAt - now;
        return decision(out, rate, credits);
      }
      if (rateOut) return decision({ ok: false, code: 'rate_limited', retryAfterMs: rate.windowEnd - now }, rate, credits);

      const needRate = rate !== undefined && rate.available === 0;
      const needCredits = creditPolicy !== null && (credits === undefined || credits.available === 0);
      if (!needRate && !needCredits) {
        // Both in hand: take one of each, with no await between the check and the take.
        if (rate) {
          rate.available--;
          rate.active = true;
        }
        if (credits) {
          credits.available--;
          credits.active = true;
        }
        return decision({ ok: true }, rate, credits);
      }
      // One lease at a time, rate first: a full window then costs no credit reservation.
      if (closed) throw closedError();
      if (needRate) await leaseRate(key.id, state, rate);
      else await leaseCreditBlock(key.id, state, creditPolicy?.refill ?? null);
    }
  }

  function touch(keyId: string): void {
    if (typeof keyId !== 'string' || keyId === '') throw invalid('"keyId" must be a non-empty string');
    if (closed) return;
    owed.touch(keyId, clock.now().getTime());
  }

  function forget(keyId: string): void {
    if (typeof keyId !== 'string') throw invalid('"keyId" must be a string');
    const state = states.get(keyId);
    if (!state) return;
    states.delete(keyId);
    // Pending last-used times stay: the key was used. Unused leases go back at once.
    if (state.rate) owed.returnSlots(keyId, iso(state.rate.windowStart), state.rate.available);
    if (state.credits?.metered) owed.returnCredits(keyId, state.credits.available);
    if (!closed && owed.hasReturns) {
      serially(() => owed.writeReturns()).catch((err: unknown) =>
        logger?.warn({ err }, 'returning unused API key leases failed; retrying at the next flush'),
      );
    }
  }

  /** Moves idle leases (all of them when `everything`) to the return queues; drops idle states. */
  function collectReturns(everything: boolean): void {
    const now = clock.now().getTime();
    for (const [keyId, state] of states) {
      if (state.rateLease || state.creditLease) continue;
      const rate = state.rate;
      if (rate) {
        if (rate.available > 0 && (everything || !rate.active || rate.windowEnd <= now)) {
          // Slots of an ended window are simply gone; the database row has moved on or will.
          if (rate.windowEnd > now) {
            owed.returnSlots(keyId, iso(rate.windowStart), rate.available);
            rate.dbUsed -= rate.available;
          }
          rate.available = 0;
        }
        rate.active = false;
      }
      const credits = state.credits;
      if (credits) {
        if (credits.available > 0 && credits.metered && (everything || !credits.active)) {
          owed.returnCredits(keyId, credits.available);
          credits.dbRemaining += credits.available;
          credits.available = 0;
        }
        credits.active = false;
      }
      const holds = (rate?.available ?? 0) > 0 || (credits?.available ?? 0) > 0;
      if (everything || (!state.active && !holds)) states.delete(keyId);
      else state.active = false;
    }
  }

  async function flushOnce(everything: boolean): Promise<void> {
    collectReturns(everything);
    const results = await Promise.allSettled([owed.writeLastUsed(), owed.writeReturns()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw new LatchkeyError('database_error', 'Could not write API key usage.', { cause: failed.reason });
  }

  /** Runs database writes one after another, so close() can wait for all of them. */
  function serially(write: () => Promise<void>): Promise<void> {
    const run = flushing.then(write);
    flushing = run.catch(() => {});
    return run;
  }

  /** Writes last-used times and returns idle leases (every lease when `everything`). */
  function flush(everything = false): Promise<void> {
    return serially(() => flushOnce(everything));
  }

  async function close(): Promise<void> {
    if (closed) return flushing;
    closed = true;
    clearInterval(timer);
    const inFlight = [...states.values()].flatMap((s) => [s.rateLease, s.creditLease]).filter((p) => p !== undefined);
    await Promise.allSettled(inFlight);
    await flush(true);
  }

  return { admit, touch, forget, start, flush: () => flush(false), close };
}
