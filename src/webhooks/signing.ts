import { createHmac, randomBytes } from 'node:crypto';

/** Standard Webhooks secrets: `whsec_` and the base64 of the key bytes. */
export const SECRET_PREFIX = 'whsec_';
const SECRET_BYTES = 32;

/**
 * A new signing secret: `whsec_` + base64 of 32 random bytes, as Standard Webhooks specifies.
 *
 * @example
 * newSigningSecret(); // 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw…'
 */
export function newSigningSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString('base64')}`;
}

function keyOf(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new TypeError('"secret" must start with whsec_.');
  return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
}

/**
 * One `v1,<base64>` signature: HMAC-SHA-256 under the secret's key over `id.timestamp.body`.
 *
 * @example
 * signature(secret, 'msg_1', 1700000000, '{"type":"connection.created"}'); // 'v1,K5oZ…'
 */
export function signature(secret: string, messageId: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', keyOf(secret)).update(`${messageId}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/**
 * The three Standard Webhooks headers of one attempt. With more than one secret (during a roll)
 * `webhook-signature` holds one signature per secret, separated by spaces; a receiver accepts a
 * message when any of them verifies.
 *
 * @example
 * signedHeaders([secret], 'msg_1', new Date(), body);
 * // { 'webhook-id': 'msg_1', 'webhook-timestamp': '1700000000', 'webhook-signature': 'v1,…' }
 */
export function signedHeaders(secrets: readonly string[], messageId: string, at: Date, body: string): Record<string, string> {
  const timestamp = Math.floor(at.getTime() / 1000);
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': secrets.map((secret) => signature(secret, messageId, timestamp, body)).join(' '),
  };
}
