import { z } from 'zod';
import { ERROR_STATUS, LatchkeyError, type ErrorCode } from '../../core/index.js';
import type { ConnectorService } from '../../connectors/index.js';
import type { TaskTypeDefinition } from '../task-types.js';

export const CONNECTOR_REQUEST_TASK = 'connector_request';

const paramsSchema = z.strictObject({
  connectorId: z.string().min(1).max(200),
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET'),
  /** The provider API path, as the proxy takes it (`/user`, `/v1/items`). */
  path: z
    .string()
    .min(1)
    .max(2000)
    .regex(/^\/[^\\]*$/, 'must start with "/" and hold no backslash')
    .refine((p) => !p.split('/').some((segment) => /^(\.|%2e){1,2}$/i.test(segment)), 'must not hold "." or ".." segments'),
  query: z.record(z.string().max(200), z.string().max(2000)).optional(),
  /** JSON sent as the request body (POST, PUT, PATCH). */
  body: z.unknown().optional(),
});

export type ConnectorRequestParams = z.output<typeof paramsSchema>;

/** What the task keeps of the last answer: never its body. */
export interface ConnectorRequestResult {
  status: number;
  at: string;
  bytes: number;
  contentType: string | null;
}

/**
 * Latchkey's own refusal (no such connector, not connected, a missing permission) rather than the
 * provider's answer: an error body whose request id is the answer's own `x-request-id`.
 */
function latchkeyRefusal(res: Response, body: Buffer): { code: ErrorCode; message: string } | undefined {
  const requestId = res.headers.get('x-request-id');
  if (requestId === null) return undefined;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { code?: unknown; message?: unknown; requestId?: unknown } };
    const error = parsed.error;
    if (error?.requestId !== requestId || typeof error.message !== 'string' || typeof error.code !== 'string' || !(error.code in ERROR_STATUS)) return undefined;
    return { code: error.code as ErrorCode, message: error.message.slice(0, 300) };
  } catch {
    return undefined;
  }
}

export interface ConnectorRequestTaskOptions {
  /** Where a scheduled task's connector is looked up (in the owner's tenant); without it, only the run finds out. */
  connectors?: Pick<ConnectorService, 'get'>;
}

/**
 * The built-in `connector_request` task: calls a connector's API through Latchkey's proxy as the
 * user or end user who scheduled it (`runAs`), with the task's own credentials, and keeps a
 * summary of the answer (status, time, size) as `lastResult`. An answer of 400 or more fails the
 * attempt (retried with backoff).
 *
 * @example
 * tasks.register(connectorRequestTask({ connectors }));
 * await tasks.schedule({ type: 'connector_request', params: { connectorId, path: '/user' }, schedule: { every: '1h' }, runAs: 'caller', actor });
 */
export function connectorRequestTask(options: ConnectorRequestTaskOptions = {}): TaskTypeDefinition<typeof paramsSchema> {
  const { connectors } = options;
  return {
    type: CONNECTOR_REQUEST_TASK,
    paramsSchema,
    timeout: '2m',
    maxAttempts: 3,
    backoff: { base: '30s', max: '30m' },
    requiresRunAs: true,
    // A connector that does not exist (or is another tenant's: the same answer) is refused when
    // the task is scheduled; one deleted later fails the run with Latchkey's own not_found.
    async check(params, { tenantId }) {
      if (connectors === undefined) return;
      try {
        await connectors.get(tenantId, params.connectorId);
      } catch (err) {
        if (!(err instanceof LatchkeyError) || err.code !== 'not_found') throw err;
        throw new LatchkeyError('validation_failed', 'The task is invalid: "params.connectorId" is not a connector of this tenant.', {
          details: { fields: [{ path: 'params.connectorId', message: 'is not a connector of this tenant' }] },
        });
      }
    },
    async run({ params, latchkey, signal, idempotencyKey }): Promise<ConnectorRequestResult> {
      if (!latchkey) throw new LatchkeyError('invalid_request', 'A connector_request task runs as a user: schedule it with runAs.');
      const search = params.query ? `?${new URLSearchParams(params.query).toString()}` : '';
      const hasBody = params.body !== undefined && params.method !== 'GET' && params.method !== 'DELETE';
      const res = await latchkey.fetch(`/api/v1/connectors/${encodeURIComponent(params.connectorId)}/proxy${params.path}${search}`, {
        method: params.method,
        headers: { 'idempotency-key': idempotencyKey, ...(hasBody ? { 'content-type': 'application/json' } : {}) },
        ...(hasBody ? { body: JSON.stringify(params.body) } : {}),
        signal,
      });
      const body = Buffer.from(await res.arrayBuffer());
      const bytes = body.byteLength;
      if (res.status >= 400) {
        const refusal = latchkeyRefusal(res, body);
        if (refusal) throw new LatchkeyError(refusal.code, `Latchkey refused the call (${refusal.message.replace(/\.$/, '')}).`);
        throw new LatchkeyError('provider_unavailable', `The connector's API answered ${res.status}.`);
      }
      return { status: res.status, at: new Date().toISOString(), bytes, contentType: res.headers.get('content-type') };
    },
  };
}
