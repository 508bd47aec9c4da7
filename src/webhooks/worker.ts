import { randomInt } from 'node:crypto';
import { LatchkeyError, type Clock, type Logger } from '../core/index.js';
import type { Outbound } from '../outbound/index.js';
import type { AttemptOutcome, DeliveryRow, DeliveryStore } from './deliveries.js';
import type { WebhookEndpoints } from './endpoints.js';
import { signedHeaders } from './signing.js';

/** Retry schedule of failed deliveries: `baseMs · 4^(n-1)`, capped at `maxMs`, with jitter. */
export interface WebhookBackoff {
  /** Delay after the first failure (default 1 minute). */
  baseMs?: number;
  /** Longest delay (default 12 hours). */
  maxMs?: number;
}

export interface DeliveryWorkerOptions {
  deliveries: DeliveryStore;
  endpoints: WebhookEndpoints;
  outbound: Outbound;
  clock: Clock;
  logger?: Logger;
  /** How often due deliveries are looked for (default 1 s); a queued delivery wakes the worker at once (see `bus`). */
  pollIntervalMs: number;
  /** Per attempt, connection to last byte (default 10 s). */
  timeoutMs: number;
  backoff: Required<WebhookBackoff>;
  /** Deliveries attempted at once by this process (default 10). */
  concurrency: number;
}

const SNIPPET_CHARS = 200;
const FACTOR = 4;

/**
 * The delay before attempt `n + 1` after `n` failures: exponential, capped, with "equal jitter"
 * (half fixed, half random) so that receivers coming back are not hit by every sender at once.
 *
 * @example
 * retryDelayMs(1, { baseMs: 60_000, maxMs: 12 * 3600_000 }); // 30 000 to 60 000
 */
export function retryDelayMs(failures: number, backoff: Required<WebhookBackoff>): number {
  const exponential = Math.min(backoff.maxMs, backoff.baseMs * FACTOR ** Math.max(0, failures - 1));
  const half = Math.floor(exponential / 2);
  return half + (half > 0 ? randomInt(0, half + 1) : 0);
}

/** `Retry-After` of a 429 or 503, in milliseconds (seconds or an HTTP date), when it is sane. */
function retryAfterMs(response: Response, now: number): number | undefined {
  const value = response.headers.get('retry-after');
  if (value === null) return undefined;
  const seconds = /^\d{1,7}$/.test(value.trim()) ? Number(value) * 1000 : Date.parse(value) - now;
  return Number.isFinite(seconds) && seconds > 0 ? seconds : undefined;
}

/** The first characters of a body, read no further than needed. */
async function snippet(response: Response): Promise<string | null> {
  if (!response.body) return null;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length < SNIPPET_CHARS) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // A body cut off early still leaves what came.
  } finally {
    await reader.cancel().catch(() => {});
  }
  return text === '' ? null : text.slice(0, SNIPPET_CHARS);
}

function errorCodeOf(err: unknown): string {
  if (err instanceof LatchkeyError) return err.code;
  const name = (err as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return 'timeout';
  return 'network_error';
}

/**
 * Claims due deliveries, signs and POSTs them through the outbound module, records each attempt
 * and schedules retries. Started and stopped by the `Background` lifecycle; `stop` waits for the
 * attempts under way, and a delivery whose attempt never finished is due again when its lease ends.
 */
export class DeliveryWorker {
  readonly #o: DeliveryWorkerOptions;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #tick: Promise<void> | undefined;
  #again = false;

  constructor(options: DeliveryWorkerOptions) {
    this.#o = options;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.wake();
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#tick;
  }

  /** Looks for due deliveries now (after an emit here, or a wake-up from another process). */
  wake(): void {
    if (!this.#running) return;
    if (this.#tick) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#tick = this.#run().finally(() => {
      this.#tick = undefined;
      if (!this.#running) return;
      if (this.#again) {
        this.#again = false;
        this.wake();
        return;
      }
      this.#timer = setTimeout(() => this.wake(), this.#o.pollIntervalMs);
      this.#timer.unref();
    });
  }

  async #run(): Promise<void> {
    const { deliveries, clock, concurrency, timeoutMs, logger } = this.#o;
    try {
      for (;;) {
        if (!this.#running) return;
        const now = clock.now();
        // The lease outlasts the attempt's timeout: another process takes the delivery over only
        // when this one has died (or hangs far beyond its own timeout).
        const leaseUntil = new Date(now.getTime() + timeoutMs + 30_000);
        const claimed = await deliveries.claim(now, leaseUntil, concurrency);
        if (claimed.length === 0) return;
        await Promise.all(claimed.map((delivery) => this.#deliver(delivery)));
        if (claimed.length < concurrency) return;
      }
    } catch (err) {
      logger?.warn({ err }, 'Delivering webhooks failed; retrying.');
    }
  }

  async #deliver(delivery: DeliveryRow): Promise<void> {
    const outcome = await this.#attempt(delivery);
    try {
      const recorded = await this.#o.deliveries.record(delivery, outcome);
      const fields = { tenantId: delivery.tenant_id, endpointId: delivery.endpoint_id, deliveryId: delivery.id, statusCode: outcome.statusCode, code: outcome.errorCode };
      if (!recorded) this.#o.logger?.debug(fields, `Webhook delivery ${delivery.id} was taken over before its outcome was recorded.`);
      else if (!outcome.ok) this.#o.logger?.info(fields, `Webhook delivery ${delivery.id} failed (${outcome.errorCode}).`);
    } catch (err) {
      this.#o.logger?.warn({ err, deliveryId: delivery.id }, `Recording webhook delivery ${delivery.id} failed; it is attempted again when its lease ends.`);
    }
  }

  async #attempt(delivery: DeliveryRow): Promise<AttemptOutcome> {
    const { endpoints, outbound, clock, timeoutMs, backoff } = this.#o;
    const started = clock.now();
    const startedMs = performance.now();
    const failures = Number(delivery.attempts) + 1;
    const outcome = (fields: Partial<AttemptOutcome> & Pick<AttemptOutcome, 'ok'>): AttemptOutcome => {
      const at = clock.now();
      return {
        at,
        statusCode: null,
        errorCode: null,
        responseSnippet: null,
        final: false,
        retryAt: new Date(at.getTime() + retryDelayMs(failures, backoff)),
        durationMs: performance.now() - startedMs,
        ...fields,
      };
    };
    let target;
    try {
      target = await endpoints.signingSecrets(delivery.tenant_id, delivery.endpoint_id);
    } catch (err) {
      // A secret that no longer decrypts (a row edited to another URL, a lost key) is never retried into success.
      return outcome({ ok: false, final: true, errorCode: err instanceof LatchkeyError ? err.code : 'internal_error' });
    }
    if (!target) return outcome({ ok: false, final: true, errorCode: 'endpoint_deleted' });
    if (!target.enabled) return outcome({ ok: false, final: true, errorCode: 'endpoint_disabled' });
    try {
      outbound.assertAllowed(target.url, 'webhook endpoint');
    } catch (err) {
      return outcome({ ok: false, final: true, errorCode: errorCodeOf(err) });
    }
    const headers = { ...signedHeaders(target.secrets, delivery.message_id, started, delivery.payload), 'content-type': 'application/json', 'user-agent': 'Latchkey-Webhooks' };
    let response: Response;
    try {
      response = await outbound.fetch(target.url, {
        method: 'POST',
        headers,
        body: delivery.payload,
        // A redirect is a failure: the signed message goes to the URL the tenant configured or nowhere.
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      return outcome({ ok: false, errorCode: errorCodeOf(err) });
    }
    const responseSnippet = await snippet(response);
    if (response.status >= 200 && response.status < 300) return outcome({ ok: true, statusCode: response.status, responseSnippet });
    const failed = outcome({ ok: false, statusCode: response.status, errorCode: `http_${response.status}`, responseSnippet });
    const wait = response.status === 429 || response.status === 503 ? retryAfterMs(response, failed.at.getTime()) : undefined;
    if (wait !== undefined) failed.retryAt = new Date(failed.at.getTime() + Math.min(backoff.maxMs, Math.max(wait, failed.retryAt.getTime() - failed.at.getTime())));
    return failed;
  }
}
