/** Every event a webhook endpoint can subscribe to. */
export const WEBHOOK_EVENTS = [
  'connection.created',
  'connection.refresh_failed',
  'connection.needs_reauthorization',
  'connection.recovered',
  'connection.deleted',
  // Opt-in like every event (an endpoint lists what it wants): a task with an owner's recorded attempt.
  'task.succeeded',
  'task.failed',
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

const KNOWN = new Set<string>(WEBHOOK_EVENTS);

/**
 * @example
 * isWebhookEvent('connection.created'); // true
 */
export function isWebhookEvent(value: unknown): value is WebhookEventType {
  return typeof value === 'string' && KNOWN.has(value);
}

/** Field names that may hold a credential: refused in event data at any depth. */
const CREDENTIAL_FIELD = /token|secret|password|credential|assertion|signature|apikey|api_key/i;

/**
 * Throws a TypeError when `data` holds a field named like a credential (a caller's bug: webhook
 * bodies never carry a token or secret), or something JSON cannot say.
 */
export function assertEventData(data: unknown, depth = 0): void {
  if (depth > 8) throw new TypeError('Webhook event data nests too deeply.');
  if (data === null || typeof data !== 'object') {
    if (typeof data === 'function' || typeof data === 'symbol' || typeof data === 'bigint') throw new TypeError('Webhook event data must be JSON.');
    return;
  }
  if (Array.isArray(data)) {
    for (const item of data) assertEventData(item, depth + 1);
    return;
  }
  for (const [name, value] of Object.entries(data)) {
    if (CREDENTIAL_FIELD.test(name)) throw new TypeError(`Webhook event data must not hold a credential field ("${name}").`);
    assertEventData(value, depth + 1);
  }
}
