import { STATUS_CODES } from 'node:http';
import { z } from 'zod';
import { ERROR_STATUS, fieldProblem, isLatchkeyError, sentence, type ErrorCode } from '../core/index.js';
import { scrubSecrets } from './secrets.js';

/** The one error body of the HTTP API. */
export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    requestId: string;
    details?: Record<string, unknown>;
  };
}

/** The error body as a zod schema, for routes that declare their 4xx/5xx responses. */
export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]),
      message: z.string(),
      requestId: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .describe('Error');

export interface MappedError {
  status: number;
  body: ErrorBody;
  /** True when the caller got the generic 500 sentence: log the original error. */
  internal: boolean;
}

export interface FieldError {
  path: string;
  message: string;
}

export const INTERNAL_ERROR_MESSAGE = 'An internal error occurred; quote the request id when reporting it.';

/** 5xx codes whose message is written for callers (everything else 5xx becomes internal_error). */
const PUBLIC_SERVER_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['not_ready', 'provider_unavailable', 'connection_degraded', 'issuer_unavailable']);

/**
 * The codes an answer with `status` can carry: those ERROR_STATUS maps to it, except 5xx codes not
 * written for callers, which all answer as 500 `internal_error`.
 *
 * @example
 * errorCodesFor(403); // ['forbidden', 'insufficient_permissions', 'egress_refused']
 */
export function errorCodesFor(status: number): ErrorCode[] {
  if (status === 500) return ['internal_error'];
  return (Object.entries(ERROR_STATUS) as [ErrorCode, number][])
    .filter(([code, mapped]) => mapped === status && (status < 500 || PUBLIC_SERVER_CODES.has(code)))
    .map(([code]) => code);
}

/** Fixed sentences for fastify's own client errors: their messages may quote caller input. */
const FASTIFY_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'The request body is not valid JSON.',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'The request body is empty but the content type is application/json.',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'The request content type is not supported; send application/json.',
  FST_ERR_CTP_BODY_TOO_LARGE: 'The request body is too large.',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'The request body size does not match its Content-Length header.',
  FST_ERR_BAD_URL: 'The request URL is malformed.',
  FST_ERR_MAX_PARAM_LENGTH: 'A path parameter in the request URL is too long.',
  FST_ERR_ROUTE_MISSING_CONTENTTYPE: 'The request has a body but no Content-Type header.',
};

const VALIDATION_CONTEXT: Record<string, string> = {
  body: 'request body',
  querystring: 'query string',
  params: 'request path',
  headers: 'request header',
};

interface ValidationIssue {
  instancePath?: string;
  message?: string;
}

/**
 * Maps any thrown value to a status and the public error body. Only messages written for callers
 * pass through; anything unexpected becomes a generic 500 so no stack, SQL, driver text or secret
 * reaches a client.
 *
 * @example
 * const { status, body } = mapError(new LatchkeyError('conflict', 'The name is taken.'), 'req_1');
 * // status 409, body.error.code 'conflict'
 */
export function mapError(error: unknown, requestId: string): MappedError {
  if (isLatchkeyError(error)) {
    if (error.status < 500 || PUBLIC_SERVER_CODES.has(error.code)) {
      return result(error.status, error.code, error.message, requestId, error.details);
    }
    return internal(requestId);
  }

  const validation = validationIssues(error);
  if (validation) {
    const context = typeof (error as { validationContext?: unknown }).validationContext === 'string'
      ? (error as { validationContext: string }).validationContext
      : 'body';
    const fields = validation.map(fieldError);
    return result(400, 'validation_failed', validationMessage(context, fields), requestId, { fields });
  }

  const status = clientStatus(error);
  if (status !== undefined) {
    if (status === 413) return result(413, 'payload_too_large', FASTIFY_MESSAGES.FST_ERR_CTP_BODY_TOO_LARGE!, requestId);
    if (status === 404) return result(404, 'not_found', 'The requested resource does not exist.', requestId);
    const code = (error as { code?: unknown }).code;
    const known = typeof code === 'string' ? FASTIFY_MESSAGES[code] : undefined;
    return result(status, 'invalid_request', known ?? genericClientMessage(status), requestId);
  }

  return internal(requestId);
}

/** The 404 body for a request that matched no route. The query string is left out, API keys redacted. */
export function notFoundBody(method: string, url: string, requestId: string): ErrorBody {
  const path = scrubSecrets(url.split('?')[0] ?? '').slice(0, 200);
  return result(404, 'not_found', `No route matches ${method} ${path}.`, requestId).body;
}

function result(
  status: number,
  code: ErrorCode,
  message: string,
  requestId: string,
  details?: Record<string, unknown>,
): MappedError {
  const body: ErrorBody = { error: { code, message, requestId } };
  if (details !== undefined) body.error.details = details;
  return { status, body, internal: false };
}

function internal(requestId: string): MappedError {
  return { ...result(500, 'internal_error', INTERNAL_ERROR_MESSAGE, requestId), internal: true };
}

function validationIssues(error: unknown): ValidationIssue[] | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, validation } = error as { code?: unknown; validation?: unknown };
  if (code !== 'FST_ERR_VALIDATION' || !Array.isArray(validation) || validation.length === 0) return undefined;
  return validation as ValidationIssue[];
}

function fieldError(issue: ValidationIssue): FieldError {
  // Paths and messages can quote caller input (an unrecognized key's name): a key pasted there stays out.
  const path = scrubSecrets((issue.instancePath ?? '').split('/').filter((part) => part !== '').join('.'));
  const raw = scrubSecrets(issue.message ?? 'is invalid');
  return { path, message: fieldProblem(raw) };
}

function validationMessage(context: string, fields: FieldError[]): string {
  const label = VALIDATION_CONTEXT[context] ?? 'request';
  const first = fields[0];
  if (!first) return `The ${label} is invalid.`;
  const problem =
    first.path === ''
      ? first.message === 'is required'
        ? 'it is required'
        : `${lowerFirst(first.message)}`
      : /^(is|must) /.test(first.message)
        ? `"${first.path}" ${first.message}`
        : `"${first.path}" is invalid (${lowerFirst(first.message)})`;
  const more = fields.length > 1 ? ` (and ${fields.length - 1} more)` : '';
  return sentence(`The ${label} is invalid: ${problem}${more}`);
}

function clientStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const status = (error as { statusCode?: unknown }).statusCode;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 499) return undefined;
  return status;
}

function genericClientMessage(status: number): string {
  const reason = STATUS_CODES[status];
  return reason ? `The request was rejected: ${reason}.` : 'The request was rejected.';
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
