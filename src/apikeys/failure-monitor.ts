import type { Kysely } from 'kysely';
import { systemClock, type Clock } from '../core/index.js';
import type { Database } from '../db/index.js';
import type { AuditLog } from '../identity/index.js';

export interface FailureMonitorOptions {
  db: Kysely<Database>;
  audit: AuditLog;
  clock?: Clock;
  /** Failures for one key within the window that make a burst (default 10). */
  threshold?: number;
  /** Default 60 s. */
  windowMs?: number;
  /** Keys tracked at most; the oldest window goes first (default 10,000). */
  maxTracked?: number;
  onError?: (err: unknown) => void;
}

interface Window {
  tenantId: string;
  startedAt: number;
  count: number;
  codes: Record<string, number>;
  reported: boolean;
}

/**
 * Notices bursts of failed verifications of one existing key (a wrong secret, or a revoked,
 * expired or orphaned key still in use) and writes one `api_key.verification_failures` audit
 * event per key and window. The write is started, never awaited by the verification.
 */
export class FailureMonitor {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  readonly #threshold: number;
  readonly #windowMs: number;
  readonly #maxTracked: number;
  readonly #onError: (err: unknown) => void;
  readonly #windows = new Map<string, Window>();
  readonly #writes = new Set<Promise<void>>();

  constructor(options: FailureMonitorOptions) {
    this.#db = options.db;
    this.#audit = options.audit;
    this.#clock = options.clock ?? systemClock;
    this.#threshold = options.threshold ?? 10;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#maxTracked = options.maxTracked ?? 10_000;
    this.#onError = options.onError ?? (() => {});
  }

  record(tenantId: string, keyId: string, code: string): void {
    const now = this.#clock.now().getTime();
    let window = this.#windows.get(keyId);
    if (window === undefined || now - window.startedAt >= this.#windowMs) {
      if (window === undefined && this.#windows.size >= this.#maxTracked) {
        const oldest = this.#windows.keys().next();
        if (!oldest.done) this.#windows.delete(oldest.value);
      }
      this.#windows.delete(keyId);
      window = { tenantId, startedAt: now, count: 0, codes: {}, reported: false };
      this.#windows.set(keyId, window);
    }
    window.count++;
    window.codes[code] = (window.codes[code] ?? 0) + 1;
    if (window.reported || window.count < this.#threshold) return;
    window.reported = true;
    const write = this.#audit
      .record(this.#db, {
        tenantId,
        actor: { type: 'system' },
        action: 'api_key.verification_failures',
        target: keyId,
        details: { failures: window.count, byCode: { ...window.codes }, windowMs: this.#windowMs, since: new Date(window.startedAt).toISOString() },
      })
      .catch(this.#onError)
      .finally(() => this.#writes.delete(write));
    this.#writes.add(write);
  }

  /** Waits for the audit writes started so far. */
  async flush(): Promise<void> {
    await Promise.all([...this.#writes]);
  }
}
