import { sql, type Kysely, type Transaction } from 'kysely';
import type { DatabaseHandle } from './adapter.js';
import type { Database } from './schema.js';

/** What changed: every process drops cached entries that depend on it. */
export interface Invalidation {
  seq: number;
  /** `api_key` (one key), `user` (one user's permissions), `tenant` (roles, groups: every user), `connector` (one connector's settings and secrets). */
  scope: 'api_key' | 'user' | 'tenant' | 'connector';
  tenantId: string;
  subjectId: string | null;
}

export interface InvalidationBusOptions {
  handle: DatabaseHandle;
  /**
   * The most time a process may go on trusting a cached entry after a change made elsewhere when
   * a notification is lost: the bus polls at half of it, and caches should expire entries at it.
   */
  boundMs?: number;
  onError?: (err: unknown) => void;
}

/**
 * Work queued in a table that other processes' workers should look at now rather than at their
 * next poll (`webhook_deliveries`: deliveries due).
 */
export type WakeTopic = 'webhook_deliveries';

/** A change to announce: what {@link InvalidationBus.publish} takes. */
type Change = { scope: Invalidation['scope']; tenantId: string; subjectId?: string | null };

const CHANNEL = 'latchkey_invalidations';
/** Rows per insert of publishMany: 4 bound parameters each, far under SQLite's and PostgreSQL's bounds. */
const PUBLISH_ROWS = 500;
/** Rows a poll reads past the last applied sequence number before it polls again. */
const POLL_ROWS = 1000;
/** Sequence numbers not yet seen below the last applied one that a process keeps looking for. */
const MAX_HOLES = 10_000;
/** At start, how far below the end of the log a process looks for rows still being committed. */
const START_LOOK_BACK = 200;
/** A notification with this payload prefix is a wake-up, not an invalidation. */
const WAKE_PREFIX = 'wake:';

/**
 * Cache invalidation across processes sharing one database. A change is written to the
 * `invalidations` table in the same transaction as the change itself (so nothing is announced
 * that did not commit), and PostgreSQL's transactional NOTIFY wakes every listener at commit.
 * Each process also polls the table, so a lost notification (or SQLite, which has none) delays
 * an invalidation by at most the bound.
 *
 * The same notifications carry wake-ups ({@link InvalidationBus.wake}): a process that queued work
 * in a table (a webhook delivery) wakes the workers of every process at commit, on the one
 * listening connection each process already has. A lost wake-up costs the worker's poll interval.
 *
 * `generation` grows with every invalidation this process applies: a cache that reads the
 * database checks it before and after, and does not store a value read across an invalidation
 * (a refill can never resurrect what was just revoked).
 */
export class InvalidationBus {
  readonly #handle: DatabaseHandle;
  readonly #boundMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #listeners = new Set<(inv: Invalidation) => void>();
  readonly #wakeListeners = new Map<WakeTopic, Set<() => void>>();
  #lastSeq = 0;
  /**
   * Sequence numbers below #lastSeq not seen yet, with when they were first missed: on PostgreSQL
   * a number is taken at insert and becomes visible at commit, so a transaction that commits late
   * (a batch of 500 revocations) shows up below numbers already applied. Each poll asks for them
   * again until they appear or the bound has passed (then every cache entry they would drop has
   * expired anyway; a rolled-back transaction leaves holes that never fill).
   */
  readonly #holes = new Map<number, number>();
  #generation = 0;
  #timer: NodeJS.Timeout | undefined;
  #unlisten: (() => Promise<void>) | undefined;
  #polling: Promise<void> | undefined;
  #again = false;
  #started = false;

  constructor(options: InvalidationBusOptions) {
    this.#handle = options.handle;
    this.#boundMs = options.boundMs ?? 5000;
    this.#onError = options.onError ?? (() => {});
  }

  get boundMs(): number {
    return this.#boundMs;
  }

  /** Grows with every invalidation applied in this process. */
  get generation(): number {
    return this.#generation;
  }

  subscribe(listener: (inv: Invalidation) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Calls `listener` whenever any process (this one included) wakes `topic`, while the bus is started. */
  onWake(topic: WakeTopic, listener: () => void): () => void {
    let set = this.#wakeListeners.get(topic);
    if (!set) {
      set = new Set();
      this.#wakeListeners.set(topic, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Wakes the listeners of `topic` in every process: at the commit of the caller's transaction
   * (nothing when it rolls back), or at once outside one. Only where the database has
   * notifications (PostgreSQL); elsewhere the topic's own polling finds the work.
   */
  async wake(db: Kysely<Database> | Transaction<Database>, topic: WakeTopic): Promise<void> {
    if (this.#handle.supportsNotify) await sql`select pg_notify(${CHANNEL}, ${WAKE_PREFIX + topic})`.execute(db);
  }

  #onNotify(payload: string): void {
    if (!payload.startsWith(WAKE_PREFIX)) {
      void this.poll();
      return;
    }
    for (const listener of this.#wakeListeners.get(payload.slice(WAKE_PREFIX.length) as WakeTopic) ?? []) {
      try {
        listener();
      } catch (err) {
        this.#onError(err);
      }
    }
  }

  /** Records an invalidation inside the caller's transaction (or on its own). */
  async publish(db: Kysely<Database> | Transaction<Database>, change: Change): Promise<void> {
    await this.publishMany(db, [change]);
  }

  /**
   * Records many invalidations inside the caller's transaction (or on its own): inserts of up to
   * 500 rows and one notification, on which every listener polls them all. None writes nothing.
   *
   * @example
   * await bus.publishMany(trx, ids.map((id) => ({ scope: 'api_key', tenantId, subjectId: id })));
   */
  async publishMany(db: Kysely<Database> | Transaction<Database>, changes: readonly Change[]): Promise<void> {
    if (changes.length === 0) return;
    const at = new Date().toISOString();
    for (let start = 0; start < changes.length; start += PUBLISH_ROWS) {
      const rows = changes.slice(start, start + PUBLISH_ROWS).map((c) => ({ scope: c.scope, tenant_id: c.tenantId, subject_id: c.subjectId ?? null, at }));
      await db.insertInto('invalidations').values(rows).execute();
    }
    if (this.#handle.supportsNotify) await sql`select pg_notify(${CHANNEL}, '')`.execute(db);
  }

  /** Starts listening and polling from the current end of the log (and the rows just below it still being committed). */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const row = await this.#handle.db
      .selectFrom('invalidations')
      .select(({ fn }) => fn.max('seq').as('seq'))
      .executeTakeFirst();
    // Rows of transactions still committing at start may sit just below the end: looked for too.
    this.#lastSeq = Math.max(0, Number(row?.seq ?? 0) - START_LOOK_BACK);
    if (this.#handle.listen) {
      try {
        this.#unlisten = await this.#handle.listen(CHANNEL, (payload) => this.#onNotify(payload));
      } catch (err) {
        this.#onError(err);
      }
    }
    const period = Math.max(10, Math.floor(this.#boundMs / 2));
    this.#timer = setInterval(() => void this.poll(), period);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#started = false;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#unlisten?.();
    this.#unlisten = undefined;
    await this.#polling;
  }

  /** Applies every invalidation recorded since the last poll. Concurrent calls coalesce. */
  poll(): Promise<void> {
    if (this.#polling) {
      this.#again = true;
      return this.#polling;
    }
    this.#polling = (async () => {
      do {
        this.#again = false;
        try {
          await this.#pollOnce();
        } catch (err) {
          this.#onError(err);
        }
      } while (this.#again);
    })().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  async #pollOnce(): Promise<void> {
    const holes = [...this.#holes.keys()];
    const after = this.#lastSeq;
    const rows = await this.#handle.db
      .selectFrom('invalidations')
      .selectAll()
      .where((eb) => (holes.length === 0 ? eb('seq', '>', after) : eb.or([eb('seq', '>', after), eb('seq', 'in', holes)])))
      .orderBy('seq')
      .limit(POLL_ROWS + holes.length)
      .execute();
    const now = Date.now();
    let newer = 0;
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq > this.#lastSeq) {
        for (let missing = Math.max(this.#lastSeq + 1, seq - MAX_HOLES); missing < seq; missing++) this.#holes.set(missing, now);
        this.#lastSeq = seq;
        newer++;
      } else if (!this.#holes.delete(seq)) {
        continue;
      }
      this.#generation++;
      const inv: Invalidation = {
        seq,
        scope: row.scope as Invalidation['scope'],
        tenantId: row.tenant_id,
        subjectId: row.subject_id,
      };
      for (const listener of this.#listeners) listener(inv);
    }
    // Holes older than the bound are given up (maps iterate in insertion order: oldest first).
    for (const [seq, since] of this.#holes) {
      if (now - since <= this.#boundMs && this.#holes.size <= MAX_HOLES) break;
      this.#holes.delete(seq);
    }
    if (newer >= POLL_ROWS) this.#again = true;
  }

  /** This process applies its own changes at once, without waiting for a poll. */
  applyLocal(change: Change): void {
    this.#generation++;
    const inv: Invalidation = { seq: -1, scope: change.scope, tenantId: change.tenantId, subjectId: change.subjectId ?? null };
    for (const listener of this.#listeners) listener(inv);
  }

  /** Deletes log entries older than `olderThanMs` (every process has long applied them). */
  async prune(olderThanMs = 24 * 3600 * 1000): Promise<number> {
    const cutoff = new Date(Date.now() - olderThanMs).toISOString();
    const result = await this.#handle.db.deleteFrom('invalidations').where('at', '<', cutoff).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
