export interface SlidingWindowOptions {
  /** Events allowed within one window. */
  limit: number;
  windowMs: number;
  /** Keys tracked at most; the oldest are forgotten first (default 100,000). */
  maxKeys?: number;
}

/**
 * Counts events per key over a sliding window, in memory. Used for failed logins: after `limit`
 * failures within `windowMs`, a key must wait until the oldest of them leaves the window.
 *
 * @example
 * const failures = new SlidingWindow({ limit: 5, windowMs: 15 * 60_000 });
 * if (failures.retryAfterMs(account, now) > 0) refuse();
 * failures.hit(account, now);
 */
export class SlidingWindow {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #events = new Map<string, number[]>();

  constructor(options: SlidingWindowOptions) {
    if (!Number.isInteger(options.limit) || options.limit < 1) throw new TypeError('"limit" must be a positive integer.');
    if (!(options.windowMs > 0)) throw new TypeError('"windowMs" must be positive.');
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
    this.#maxKeys = options.maxKeys ?? 100_000;
  }

  /** Milliseconds until `key` may act again; 0 when it may now. */
  retryAfterMs(key: string, now: number): number {
    const events = this.#current(key, now);
    if (events.length < this.#limit) return 0;
    const oldest = events[events.length - this.#limit] as number;
    return Math.max(1, oldest + this.#windowMs - now);
  }

  hit(key: string, now: number): void {
    const events = this.#current(key, now);
    events.push(now);
    // Only the newest `limit` events can matter.
    if (events.length > this.#limit) events.splice(0, events.length - this.#limit);
    this.#events.delete(key);
    this.#events.set(key, events);
    if (this.#events.size > this.#maxKeys) this.#evict(now);
  }

  reset(key: string): void {
    this.#events.delete(key);
  }

  #current(key: string, now: number): number[] {
    const events = this.#events.get(key);
    if (!events) return [];
    const start = now - this.#windowMs;
    while (events.length > 0 && (events[0] as number) <= start) events.shift();
    if (events.length === 0) this.#events.delete(key);
    return events;
  }

  #evict(now: number): void {
    for (const key of this.#events.keys()) this.#current(key, now);
    // Map order is least recently hit first.
    for (const key of this.#events.keys()) {
      if (this.#events.size <= this.#maxKeys) break;
      this.#events.delete(key);
    }
  }
}
