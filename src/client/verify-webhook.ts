import { createHmac, timingSafeEqual } from 'node:crypto';

/** The events Latchkey sends (see the README's Webhooks section). */
export type WebhookEventType =
  | 'connection.created'
  | 'connection.refresh_failed'
  | 'connection.needs_reauthorization'
  | 'connection.recovered'
  | 'connection.deleted';

/** A verified webhook message. Its body never holds a token or secret. */
export interface WebhookEvent {
  type: WebhookEventType;
  timestamp: string;
  data: {
    connectorId: string;
    connectionId: string;
    userId?: string | null;
    endUserId?: string | null;
    status?: string;
    errorCode?: string | null;
    [field: string]: unknown;
  };
}

export interface VerifyWebhookOptions {
  /** The endpoint's signing secret (`whsec_…`), or several while rolling it. */
  secret?: string;
  secrets?: readonly string[];
  /** The request's headers: a `Headers`, or Node's `req.headers`. */
  headers: Headers | Record<string, string | string[] | undefined>;
  /** The raw body as received, before any JSON parsing. */
  body: string | Uint8Array;
  /** How far the `webhook-timestamp` may be from now (default 300 s), against replays. */
  toleranceSeconds?: number;
  /** Now (default the clock). */
  now?: Date;
}

/** A webhook message that is not Latchkey's, was changed, or is too old or too new. */
export class WebhookVerificationError extends Error {
  readonly code: 'missing_headers' | 'invalid_timestamp' | 'timestamp_out_of_tolerance' | 'invalid_signature' | 'invalid_body';

  constructor(code: WebhookVerificationError['code'], message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

const PREFIX = 'whsec_';

function header(headers: VerifyWebhookOptions['headers'], name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const value = headers[name] ?? Object.entries(headers).find(([key]) => key.toLowerCase() === name)?.[1];
  return Array.isArray(value) ? value[0] : value;
}

function keyOf(secret: unknown): Buffer {
  if (typeof secret !== 'string' || !secret.startsWith(PREFIX)) throw new TypeError('"secret" must be a webhook signing secret starting with whsec_.');
  return Buffer.from(secret.slice(PREFIX.length), 'base64');
}

/**
 * Verifies a Standard Webhooks message from Latchkey (`webhook-id`, `webhook-timestamp`,
 * `webhook-signature`: HMAC-SHA-256 of `id.timestamp.body`, compared in constant time) and
 * answers its parsed body. Throws a {@link WebhookVerificationError} on a missing header, a
 * timestamp outside the tolerance (a replay), or a signature that no given secret made.
 * Deduplicate on `webhook-id`: a message may come more than once.
 *
 * @example
 * const event = verifyWebhook({ secret: process.env.LATCHKEY_WEBHOOK_SECRET, headers: req.headers, body: rawBody });
 * if (event.type === 'connection.needs_reauthorization') askToReconnect(event.data.connectionId);
 */
export function verifyWebhook(options: VerifyWebhookOptions): WebhookEvent {
  const secrets = options.secrets ?? (options.secret !== undefined ? [options.secret] : []);
  if (secrets.length === 0) throw new TypeError('Give "secret" or "secrets".');
  const keys = secrets.map(keyOf);
  const id = header(options.headers, 'webhook-id');
  const timestamp = header(options.headers, 'webhook-timestamp');
  const signatures = header(options.headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError('missing_headers', 'The message lacks a webhook-id, webhook-timestamp or webhook-signature header.');
  }
  if (!/^\d{1,12}$/.test(timestamp)) throw new WebhookVerificationError('invalid_timestamp', 'The webhook-timestamp header is not a Unix time in seconds.');
  const tolerance = options.toleranceSeconds ?? 300;
  const now = (options.now ?? new Date()).getTime() / 1000;
  if (Math.abs(now - Number(timestamp)) > tolerance) {
    throw new WebhookVerificationError('timestamp_out_of_tolerance', `The message's timestamp is more than ${tolerance} seconds from now.`);
  }
  const body = typeof options.body === 'string' ? Buffer.from(options.body, 'utf8') : Buffer.from(options.body);
  const given = signatures
    .split(' ')
    .map((candidate) => candidate.split(','))
    .filter(([version, value]) => version === 'v1' && value !== undefined)
    .map(([, value]) => Buffer.from(value ?? '', 'base64'));
  const verified = keys.some((key) => {
    const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
    return given.some((signature) => signature.length === expected.length && timingSafeEqual(signature, expected));
  });
  if (!verified) throw new WebhookVerificationError('invalid_signature', 'No signature of the message matches the given secrets.');
  try {
    return JSON.parse(body.toString('utf8')) as WebhookEvent;
  } catch {
    throw new WebhookVerificationError('invalid_body', 'The signed body is not JSON.');
  }
}
