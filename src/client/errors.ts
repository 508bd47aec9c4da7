import type { components } from './openapi.js';

type ErrorSchemas = {
  [K in keyof components['schemas'] as K extends `Error${number}` ? K : never]: components['schemas'][K];
};
type CodeOf<S> = S extends { error?: { code?: infer C } } ? C : never;

/**
 * Every error code the OpenAPI description lists, over all statuses (`not_found`,
 * `validation_failed`, …). The description does not list every route's 500 (`internal_error`)
 * nor fastify's own 405 and 413, so an answer with one of those carries a code outside it.
 */
export type ApiErrorCode = Exclude<{ [K in keyof ErrorSchemas]: CodeOf<ErrorSchemas[K]> }[keyof ErrorSchemas], undefined>;

/**
 * An error answer of the Latchkey API: its status, its stable `code`, its one-sentence message,
 * the request id (quote it when reporting a problem) and the details (`fields` for
 * `validation_failed`, `retryAfterSeconds` for 429 and 503).
 *
 * @example
 * try {
 *   await latchkey.connectors.get('connector_nope');
 * } catch (err) {
 *   if (err instanceof LatchkeyApiError && err.code === 'not_found') console.log(err.message, err.requestId);
 *   else throw err;
 * }
 */
export class LatchkeyApiError extends Error {
  readonly status: number;
  readonly code: ApiErrorCode;
  readonly requestId: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(status: number, body: { code: ApiErrorCode; message: string; requestId: string; details?: Record<string, unknown> }) {
    super(body.message);
    this.name = new.target.name;
    this.status = status;
    this.code = body.code;
    this.requestId = body.requestId;
    this.details = body.details;
  }
}

/**
 * No answer from Latchkey: the request could not be sent or its answer not read (refused
 * connection, DNS, TLS, a dropped socket), or something in between (a load balancer) answered
 * without a Latchkey error body. `status` is that answer's status, when there was one.
 *
 * @example
 * catch (err) { if (err instanceof LatchkeyNetworkError) retryLater(); }
 */
export class LatchkeyNetworkError extends Error {
  readonly status: number | undefined;

  constructor(message: string, options: { cause?: unknown; status?: number } = {}) {
    super(message);
    this.name = new.target.name;
    this.status = options.status;
    // Non-enumerable, as on the server: a cause may carry text that is not ours to print.
    if (options.cause !== undefined) Object.defineProperty(this, 'cause', { value: options.cause, enumerable: false, writable: true });
  }
}

/** The `error` of a Latchkey error body, or undefined when `body` is not one. */
export function latchkeyErrorOf(body: unknown): { code: ApiErrorCode; message: string; requestId: string; details?: Record<string, unknown> } | undefined {
  const error = (body as { error?: unknown } | null | undefined)?.error as Record<string, unknown> | undefined;
  if (error === null || typeof error !== 'object') return undefined;
  const { code, message, requestId, details } = error;
  if (typeof code !== 'string' || typeof message !== 'string' || typeof requestId !== 'string') return undefined;
  return {
    code: code as ApiErrorCode,
    message,
    requestId,
    ...(details !== null && typeof details === 'object' ? { details: details as Record<string, unknown> } : {}),
  };
}
