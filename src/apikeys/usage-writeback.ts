import type { Kysely } from 'kysely';
import type { Database } from '../db/index.js';
import { returnCredits, returnRateSlots, writeLastUsed } from './usage-store.js';

/**
 * What the usage gate owes the database: last-used times and unused leases. Entries are merged per
 * key (a batched row must not repeat a key) and put back when a write fails, so a failed flush
 * loses nothing and the next one retries.
 */
export class UsageWriteBack {
  readonly #db: Kysely<Database>;
  /** Epoch milliseconds: formatted once per flush, not once per request. */
  readonly #lastUsed = new Map<string, number>();
  readonly #credits = new Map<string, number>();
  readonly #slots = new Map<string, { keyId: string; windowStart: string; count: number }>();

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  get hasReturns(): boolean {
    return this.#credits.size > 0 || this.#slots.size > 0;
  }

  /** Keeps the later of the two times. */
  touch(keyId: string, at: number): void {
    const known = this.#lastUsed.get(keyId);
    if (known === undefined || known < at) this.#lastUsed.set(keyId, at);
  }

  returnCredits(keyId: string, count: number): void {
    if (count > 0) this.#credits.set(keyId, (this.#credits.get(keyId) ?? 0) + count);
  }

  /** `windowStart` is the window's UTC ISO-8601 start: slots of another window are not touched. */
  returnSlots(keyId: string, windowStart: string, count: number): void {
    if (count <= 0) return;
    const id = `${keyId}\n${windowStart}`;
    const entry = this.#slots.get(id);
    if (entry) entry.count += count;
    else this.#slots.set(id, { keyId, windowStart, count });
  }

  async writeReturns(): Promise<void> {
    const credits = [...this.#credits].map(([keyId, count]) => ({ keyId, count }));
    const slots = [...this.#slots.values()];
    this.#credits.clear();
    this.#slots.clear();
    try {
      if (credits.length > 0) await returnCredits(this.#db, credits);
    } catch (err) {
      for (const e of credits) this.returnCredits(e.keyId, e.count);
      for (const e of slots) this.returnSlots(e.keyId, e.windowStart, e.count);
      throw err;
    }
    try {
      if (slots.length > 0) await returnRateSlots(this.#db, slots);
    } catch (err) {
      for (const e of slots) this.returnSlots(e.keyId, e.windowStart, e.count);
      throw err;
    }
  }

  async writeLastUsed(): Promise<void> {
    if (this.#lastUsed.size === 0) return;
    const entries = [...this.#lastUsed].map(([keyId, at]) => ({ keyId, at }));
    this.#lastUsed.clear();
    try {
      await writeLastUsed(this.#db, entries.map((e) => ({ keyId: e.keyId, at: new Date(e.at).toISOString() })));
    } catch (err) {
      for (const e of entries) this.touch(e.keyId, e.at);
      throw err;
    }
  }
}
