import { LatchkeyError, systemClock, type Clock } from '../core/index.js';
import { SlidingWindow } from '../identity/index.js';

/** At most `limit` requests within any `windowMs`. */
export interface RateLimit {
  limit: number;
  windowMs: number;
}

/**
 * A per-key request limit over a sliding window, in this process's memory (each process counts
 * its own requests). Every request counts, whatever its outcome; one over the limit is refused
 * with 429 `rate_limited` and a `Retry-After` of when the oldest counted request leaves the window.
 *
 * @example
 * const authorizeLimit = new RequestLimiter({ limit: 20, windowMs: 60_000 }, 'Too many connection attempts; try again later.');
 * authorizeLimit.take(`${principal.tenantId}:${principal.userId}`);
 */
export class RequestLimiter {
  readonly #window: SlidingWindow;
  readonly #clock: Clock;
  readonly #message: string;

  constructor(limit: RateLimit, message: string, clock: Clock = systemClock) {
    this.#window = new SlidingWindow({ limit: limit.limit, windowMs: limit.windowMs });
    this.#message = message;
    this.#clock = clock;
  }

  /** Counts one request of `key`; throws 429 `rate_limited` when the key is over its limit. */
  take(key: string): void {
    const now = this.#clock.now().getTime();
    const waitMs = this.#window.retryAfterMs(key, now);
    if (waitMs > 0) {
      throw new LatchkeyError('rate_limited', this.#message, { details: { retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) } });
    }
    this.#window.hit(key, now);
  }
}
