import { z } from 'zod';
import { LatchkeyError, newId, parseInput, systemClock, type Clock } from '../core/index.js';
import type { Actor, AuditLog } from '../identity/index.js';
import { defineObjectType, type AttributesOf, type EncryptedObjectStore, type ObjectTransaction, type PlainAttributesOf, type StoredObject } from '../objects/index.js';
import type { Outbound } from '../outbound/index.js';
import { WEBHOOK_EVENTS, type WebhookEventType } from './events.js';
import { newSigningSecret } from './signing.js';

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO-8601 time');

/**
 * A webhook endpoint. The signing secret (and, for a day after a roll, the previous one) is
 * sealed with the URL in its AAD: a row edited to send to another URL no longer decrypts, so no
 * signed message goes there.
 */
export const WEBHOOK_ENDPOINT_TYPE = defineObjectType({
  name: 'webhook_endpoint',
  versions: [
    {
      version: 1,
      schema: z.object({
        url: z.string().min(1),
        events: z.array(z.enum(WEBHOOK_EVENTS)).min(1),
        description: z.string().nullable(),
        enabled: z.boolean(),
        secretRolledAt: isoTime,
        previousSecretExpiresAt: isoTime.nullable(),
        signingSecret: z.string().min(1),
        previousSigningSecret: z.string().min(1).optional(),
      }),
      attributesToEncrypt: ['signingSecret', 'previousSigningSecret'],
      attributesToIncludeInAAD: ['url'],
    },
  ],
});

type EndpointAttributes = AttributesOf<typeof WEBHOOK_ENDPOINT_TYPE>;

/** An endpoint as reads show it: never a secret. */
export interface WebhookEndpointView {
  id: string;
  url: string;
  events: WebhookEventType[];
  description: string | null;
  enabled: boolean;
  /** When the current signing secret was made. */
  secretRolledAt: string;
  /** Until then messages are signed with the previous secret too (after a roll). */
  previousSecretExpiresAt: string | null;
  revision: number;
  createdAt: string;
  updatedAt: string;
}

/** An endpoint with its signing secret: the answer of create and roll, shown this once. */
export interface IssuedWebhookEndpoint {
  endpoint: WebhookEndpointView;
  secret: string;
}

export interface WebhookEndpointPage {
  items: WebhookEndpointView[];
  next?: string;
}

export interface WebhookEndpoints {
  create(actor: Actor, tenantId: string, input: unknown): Promise<IssuedWebhookEndpoint>;
  get(tenantId: string, id: string): Promise<WebhookEndpointView>;
  list(tenantId: string, options?: { limit?: number; after?: string }): Promise<WebhookEndpointPage>;
  update(actor: Actor, tenantId: string, id: string, patch: unknown): Promise<WebhookEndpointView>;
  delete(actor: Actor, tenantId: string, id: string): Promise<void>;
  /** A new signing secret; the previous one keeps signing alongside it for `previousSecretTtlMs`. */
  rollSecret(actor: Actor, tenantId: string, id: string): Promise<IssuedWebhookEndpoint>;
  /** Internal (the delivery worker): the secrets messages are signed with now, or undefined when the endpoint is gone. */
  signingSecrets(tenantId: string, id: string): Promise<{ url: string; enabled: boolean; secrets: string[] } | undefined>;
  /** Internal (emit): enabled endpoints of the tenant subscribed to `event`, through `tx` when given. */
  subscribed(tenantId: string, event: WebhookEventType, tx?: ObjectTransaction): Promise<WebhookEndpointView[]>;
}

export interface WebhookEndpointsOptions {
  store: EncryptedObjectStore;
  /** URL rules (https, or plain http to loopback with the opt-in) come from here. */
  outbound: Outbound;
  audit?: AuditLog;
  clock?: Clock;
  /** How long the previous secret keeps signing after a roll (default 24 hours). */
  previousSecretTtlMs?: number;
  /** Runs in the transaction that deletes an endpoint: removes its deliveries. */
  onDelete?: (tx: ObjectTransaction, tenantId: string, id: string) => Promise<void>;
}

const TYPE = WEBHOOK_ENDPOINT_TYPE;
const DAY_MS = 24 * 3600 * 1000;
const ENDPOINT_ID = /^whk_[0-9A-Za-z]{1,32}$/;

const events = z
  .array(z.enum(WEBHOOK_EVENTS, { error: `must be one of ${WEBHOOK_EVENTS.join(', ')}` }), { error: 'must be a list of event types' })
  .min(1, { error: 'must name at least one event' })
  .max(WEBHOOK_EVENTS.length * 2, { error: 'names too many events' })
  .transform((list) => [...new Set(list)]);
const description = z.string({ error: 'must be a string' }).max(500, { error: 'must be at most 500 characters' }).nullable();
const url = z.string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') }).max(2048, { error: 'must be at most 2048 characters' });

/** The body of a create (also the HTTP route's schema). */
export const createWebhookInput = z.strictObject({ url, events, description: description.optional(), enabled: z.boolean({ error: 'must be true or false' }).optional() });
/** The body of an update: a merge patch (absent keeps). */
export const updateWebhookInput = z.strictObject({ url: url.optional(), events: events.optional(), description: description.optional(), enabled: z.boolean({ error: 'must be true or false' }).optional() });

function toView(object: StoredObject<PlainAttributesOf<typeof WEBHOOK_ENDPOINT_TYPE>>): WebhookEndpointView {
  const a = object.attributes;
  return {
    id: object.id,
    url: a.url,
    events: [...a.events],
    description: a.description,
    enabled: a.enabled,
    secretRolledAt: a.secretRolledAt,
    previousSecretExpiresAt: a.previousSecretExpiresAt,
    revision: object.revision,
    createdAt: object.createdAt,
    updatedAt: object.updatedAt,
  };
}

function notFound(id: string): LatchkeyError {
  // The same answer for an unknown id and another tenant's: ids are no oracle.
  return new LatchkeyError('not_found', `No webhook endpoint with id ${JSON.stringify(id)} exists.`);
}

function assertTenant(tenantId: unknown): asserts tenantId is string {
  if (typeof tenantId !== 'string' || tenantId.length === 0 || tenantId.length > 200) throw new TypeError('"tenantId" must be a non-empty string.');
}

/**
 * Webhook endpoints of a tenant in the encrypted object store. The signing secret is answered by
 * create and roll, once; every other read leaves it out.
 *
 * @example
 * const { endpoint, secret } = await endpoints.create(actor, tenantId, { url: 'https://app.example.com/hooks', events: ['connection.created'] });
 */
export function createWebhookEndpoints(options: WebhookEndpointsOptions): WebhookEndpoints {
  const { store, outbound, audit } = options;
  const clock = options.clock ?? systemClock;
  const previousTtlMs = options.previousSecretTtlMs ?? DAY_MS;

  function checkUrl(value: string): string {
    const problem = outbound.urlProblem(value);
    const fail = (message: string) => {
      throw new LatchkeyError('validation_failed', `The webhook endpoint is invalid: "url" ${message}.`, { details: { fields: [{ path: 'url', message }] } });
    };
    if (problem !== undefined) fail(problem);
    const parsed = new URL(value);
    if (parsed.username !== '' || parsed.password !== '') fail('must not hold a user name or password (use the signature to authenticate messages)');
    if (parsed.hash !== '') fail('must not have a fragment');
    return parsed.toString();
  }

  async function changed<T>(actor: Actor, tenantId: string, change: (tx: ObjectTransaction) => Promise<{ result: T; action: string; target: string; details?: Record<string, unknown> }>): Promise<T> {
    return store.transaction(async (tx) => {
      const { result, action, target, details } = await change(tx);
      await audit?.record(tx.db, { tenantId, actor, action, target, ...(details ? { details } : {}) });
      return result;
    });
  }

  async function read<T>(tenantId: string, id: string, get: (tenantId: string, id: string) => Promise<T>): Promise<T> {
    assertTenant(tenantId);
    if (typeof id !== 'string' || !ENDPOINT_ID.test(id)) throw notFound(String(id));
    try {
      return await get(tenantId, id);
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === 'not_found') throw notFound(id);
      throw err;
    }
  }

  async function all(s: EncryptedObjectStore, tenantId: string): Promise<WebhookEndpointView[]> {
    const items: WebhookEndpointView[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await s.list(TYPE, tenantId, { limit: 1000, after });
      items.push(...page.items.map(toView));
      if (page.next === undefined) return items;
      after = page.next;
    }
  }

  const plain = (tenantId: string, id: string) => store.get(TYPE, tenantId, id);
  const decrypted = (tenantId: string, id: string) => store.getDecrypted(TYPE, tenantId, id);

  return {
    async create(actor, tenantId, input) {
      assertTenant(tenantId);
      const body = parseInput(createWebhookInput, input, 'webhook endpoint');
      const secret = newSigningSecret();
      const attributes: EndpointAttributes = {
        url: checkUrl(body.url),
        events: body.events,
        description: body.description ?? null,
        enabled: body.enabled ?? true,
        secretRolledAt: clock.now().toISOString(),
        previousSecretExpiresAt: null,
        signingSecret: secret,
      };
      const created = await changed(actor, tenantId, async (tx) => {
        const object = await tx.store.create(TYPE, tenantId, { ...attributes }, { id: newId('whk') });
        return { result: object, action: 'webhook.created', target: object.id, details: { url: attributes.url, events: attributes.events } };
      });
      return { endpoint: toView(created), secret };
    },

    async get(tenantId, id) {
      return toView(await read(tenantId, id, plain));
    },

    async list(tenantId, listOptions = {}) {
      assertTenant(tenantId);
      const page = await store.list(TYPE, tenantId, { limit: listOptions.limit ?? 100, after: listOptions.after });
      return page.next === undefined ? { items: page.items.map(toView) } : { items: page.items.map(toView), next: page.next };
    },

    async update(actor, tenantId, id, patch) {
      const body = parseInput(updateWebhookInput, patch, 'webhook endpoint');
      const current = await read(tenantId, id, plain);
      const next: Partial<EndpointAttributes> = {};
      if (body.url !== undefined) next.url = checkUrl(body.url);
      if (body.events !== undefined) next.events = body.events;
      if (body.description !== undefined) next.description = body.description;
      if (body.enabled !== undefined) next.enabled = body.enabled;
      const updated = await changed(actor, tenantId, async (tx) => ({
        // Compare-and-set: a concurrent change is refused with `conflict`, never silently lost.
        result: await tx.store.update(TYPE, tenantId, id, { ...next }, { expectedRevision: current.revision }),
        action: 'webhook.updated',
        target: id,
        details: { changed: Object.keys(next) },
      }));
      return toView(updated);
    },

    async delete(actor, tenantId, id) {
      await read(tenantId, id, plain);
      await changed(actor, tenantId, async (tx) => {
        if (!(await tx.store.delete(TYPE, tenantId, id))) throw notFound(id);
        await options.onDelete?.(tx, tenantId, id);
        return { result: undefined, action: 'webhook.deleted', target: id };
      });
    },

    async rollSecret(actor, tenantId, id) {
      const current = await read(tenantId, id, decrypted);
      const a = current.attributes;
      const secret = newSigningSecret();
      const now = clock.now();
      const patch: Partial<EndpointAttributes> = {
        signingSecret: secret,
        secretRolledAt: now.toISOString(),
        previousSigningSecret: a.signingSecret,
        previousSecretExpiresAt: new Date(now.getTime() + previousTtlMs).toISOString(),
      };
      const rolled = await changed(actor, tenantId, async (tx) => ({
        result: await tx.store.update(TYPE, tenantId, id, { ...patch }, { expectedRevision: current.revision }),
        action: 'webhook.secret_rolled',
        target: id,
      }));
      return { endpoint: toView(rolled), secret };
    },

    async signingSecrets(tenantId, id) {
      let object: StoredObject<EndpointAttributes>;
      try {
        object = await read(tenantId, id, decrypted);
      } catch (err) {
        if (err instanceof LatchkeyError && err.code === 'not_found') return undefined;
        throw err;
      }
      const a = object.attributes;
      const secrets = [a.signingSecret];
      const previousValid = a.previousSecretExpiresAt !== null && Date.parse(a.previousSecretExpiresAt) > clock.now().getTime();
      if (a.previousSigningSecret !== undefined && previousValid) secrets.push(a.previousSigningSecret);
      return { url: a.url, enabled: a.enabled, secrets };
    },

    async subscribed(tenantId, event, tx) {
      assertTenant(tenantId);
      return (await all(tx?.store ?? store, tenantId)).filter((e) => e.enabled && e.events.includes(event));
    },
  };
}
