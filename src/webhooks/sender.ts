import { randomInt } from 'node:crypto';
import type { Transaction } from 'kysely';
import { LatchkeyError, type Clock, type Logger } from '../core/index.js';
import type { Database, Executor } from '../db/index.js';
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

/**
 * Queues attempts of deliveries as work of Latchkey's task engine (the webhooks module names only
 * this port; `createLatchkey` wires it to `tasks.schedule`).
 */
export interface DeliveryScheduler {
  /**
   * Queues one attempt of the delivery, due at `at`, in the transaction `db` (so it commits with
   * the delivery, or not at all); returns the id of what runs it. The delivery names that id, and
   * an attempt run under any other id does nothing.
   */
  schedule(db: Executor, deliveryId: string, at: Date): Promise<string>;
}

/** What the engine gives the run of one attempt. */
export interface AttemptRun {
  /** The id `DeliveryScheduler.schedule` returned for this attempt. */
  attemptId: string;
  /** Aborted at shutdown, or when the engine lost its claim on the attempt. */
  signal: AbortSignal;
  /** A transaction that commits only while this run still holds its claim (the task's fenced transaction). */
  transaction<T>(fn: (db: Transaction<Database>) => Promise<T>): Promise<T>;
}

export interface DeliverySenderOptions {
  deliveries: DeliveryStore;
  endpoints: WebhookEndpoints;
  outbound: Outbound;
  scheduler: DeliveryScheduler;
  clock: Clock;
  logger?: Logger;
  /** Per attempt, connection to last byte (default 10 s). */
  timeoutMs: number;
  backoff: Required<WebhookBackoff>;
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
 * Makes one attempt of a delivery (signed, POSTed through the outbound module) and records it with
 * the next attempt, queued after backoff, in one transaction fenced by the run's claim: a run that
 * lost its claim, or whose delivery another attempt holds, records nothing.
 */
export class DeliverySender {
  readonly #o: DeliverySenderOptions;

  constructor(options: DeliverySenderOptions) {
    this.#o = options;
  }

  /** Runs the attempt `run.attemptId` of the delivery; nothing when the delivery has finished or another attempt holds it. */
  async attempt(deliveryId: string, run: AttemptRun): Promise<void> {
    const { deliveries, scheduler, logger } = this.#o;
    const delivery = await deliveries.byId(deliveryId);
    if (!delivery || delivery.status !== 'pending' || delivery.claim_token !== run.attemptId) return;
    const outcome = await this.#attempt(delivery, run.signal);
    const recorded = await run.transaction((db) => deliveries.record(db, delivery, outcome, (at) => scheduler.schedule(db, delivery.id, at)));
    const fields = { tenantId: delivery.tenant_id, endpointId: delivery.endpoint_id, deliveryId: delivery.id, statusCode: outcome.statusCode, code: outcome.errorCode };
    if (!recorded) logger?.debug(fields, `Webhook delivery ${delivery.id} was taken over before its outcome was recorded.`);
    else if (!outcome.ok) logger?.info(fields, `Webhook delivery ${delivery.id} failed (${outcome.errorCode}).`);
  }

  async #attempt(delivery: DeliveryRow, signal: AbortSignal): Promise<AttemptOutcome> {
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
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
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
