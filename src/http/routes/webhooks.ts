import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DELIVERY_STATUSES, WEBHOOK_EVENTS, createWebhookInput, updateWebhookInput, type Webhooks } from '../../webhooks/index.js';
import { principalOf, SECURITY } from '../auth.js';
import { EXAMPLE_IDS as ID, EXAMPLE_TIMES as AT, EXAMPLE_WEBHOOK_SECRET } from '../examples.js';
import { errorResponses, idSchema, noContent, timestampSchema, withRequestExample } from '../schemas.js';

export interface WebhookRoutesOptions {
  webhooks: Webhooks;
}

const read = { permission: 'webhooks:read' } as const;
const write = { permission: 'webhooks:write' } as const;

const ENDPOINT_EXAMPLE = {
  id: ID.webhook,
  url: 'https://app.example.com/hooks/latchkey',
  events: ['connection.created', 'connection.needs_reauthorization'],
  description: 'Tell the app when a customer must reconnect.',
  enabled: true,
  secretRolledAt: AT.created,
  previousSecretExpiresAt: null,
  revision: 1,
  createdAt: AT.created,
  updatedAt: AT.created,
};

const DELIVERY_EXAMPLE = {
  id: ID.delivery,
  endpointId: ID.webhook,
  messageId: ID.message,
  eventType: 'connection.needs_reauthorization',
  payload: {
    type: 'connection.needs_reauthorization',
    timestamp: AT.updated,
    data: {
      connectorId: ID.connector,
      connectionId: `per-user:${ID.connector}:end-user:customer-42`,
      userId: null,
      endUserId: 'customer-42',
      status: 'needs_reauthorization',
      errorCode: 'invalid_grant',
    },
  },
  status: 'succeeded',
  attempts: 2,
  nextAttemptAt: null,
  lastAttemptAt: AT.updated,
  lastStatusCode: 204,
  lastError: null,
  createdAt: AT.updated,
  updatedAt: AT.updated,
  attemptLog: [
    { at: AT.updated, statusCode: 503, errorCode: 'http_503', durationMs: 41, responseSnippet: 'Service Unavailable' },
    { at: AT.updated, statusCode: 204, errorCode: null, durationMs: 37, responseSnippet: null },
  ],
};

const endpointSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.enum(WEBHOOK_EVENTS)),
    description: z.string().nullable(),
    enabled: z.boolean(),
    secretRolledAt: timestampSchema.describe('When the current signing secret was made.'),
    previousSecretExpiresAt: timestampSchema.nullable().describe('After a roll, messages are signed with the previous secret too until then.'),
    revision: z.number(),
    createdAt: timestampSchema,
    updatedAt: timestampSchema,
  })
  .meta({ id: 'WebhookEndpoint', description: 'A webhook endpoint (never its signing secret).', examples: [ENDPOINT_EXAMPLE] });

const issuedSchema = z
  .object({
    secret: z.string().describe('The signing secret (`whsec_…`, Standard Webhooks): shown this once, never again.'),
    endpoint: endpointSchema,
  })
  .meta({
    id: 'IssuedWebhookEndpoint',
    description: 'The endpoint and its signing secret, shown this once.',
    examples: [{ secret: EXAMPLE_WEBHOOK_SECRET, endpoint: ENDPOINT_EXAMPLE }],
  });

const attemptSchema = z.object({
  at: timestampSchema,
  statusCode: z.number().nullable(),
  errorCode: z.string().nullable().describe('`http_<status>`, `timeout`, `network_error`, `endpoint_deleted`...; null on success.'),
  durationMs: z.number(),
  responseSnippet: z.string().nullable().describe('The first 200 characters of the answer, at most.'),
});

const deliverySchema = z
  .object({
    id: z.string(),
    endpointId: z.string(),
    messageId: z.string().describe('The `webhook-id` header: the same on every attempt; deduplicate on it.'),
    eventType: z.string(),
    payload: z.unknown().describe('The body sent: `{type, timestamp, data}`.'),
    status: z.enum(DELIVERY_STATUSES),
    attempts: z.number(),
    nextAttemptAt: timestampSchema.nullable(),
    lastAttemptAt: timestampSchema.nullable(),
    lastStatusCode: z.number().nullable(),
    lastError: z.string().nullable(),
    createdAt: timestampSchema,
    updatedAt: timestampSchema,
    attemptLog: z.array(attemptSchema),
  })
  .meta({ id: 'WebhookDelivery', description: 'A delivery of an event to an endpoint.', examples: [DELIVERY_EXAMPLE] });

const params = z.object({ id: idSchema });
const deliveryParams = z.object({ id: idSchema, deliveryId: idSchema });
const listQuery = z.object({
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be a whole number' }).min(1, { error: 'must be at least 1' }).max(1000, { error: 'must be at most 1000' }).optional(),
  after: z.string({ error: 'must be a string' }).max(200, { error: 'is too long' }).optional(),
});
const deliveriesQuery = z.object({
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be a whole number' }).min(1, { error: 'must be at least 1' }).max(100, { error: 'must be at most 100' }).optional(),
  status: z.enum(DELIVERY_STATUSES, { error: 'must be pending, succeeded or failed' }).optional(),
});

/**
 * Webhook endpoints of the caller's tenant and their deliveries. Reads need webhooks:read,
 * changes webhooks:write. The signing secret is in the answer of create and `_roll_secret` only.
 *
 * @example
 * await secured.register(webhookRoutes, { webhooks });
 */
export const webhookRoutes: FastifyPluginAsync<WebhookRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { webhooks } = options;
  const { endpoints } = webhooks;

  app.post(
    '/webhooks',
    {
      config: write,
      schema: {
        tags: ['webhooks'],
        operationId: 'createWebhook',
        summary: 'Create a webhook endpoint',
        description:
          'Needs webhooks:write. `url` must be https; `events` lists what to send (' + WEBHOOK_EVENTS.join(', ') + '). ' +
          'Answers the signing secret once: verify every message with it as Standard Webhooks specifies.',
        security: SECURITY,
        body: withRequestExample(createWebhookInput, {
          url: 'https://app.example.com/hooks/latchkey',
          events: ['connection.created', 'connection.needs_reauthorization'],
          description: 'Tell the app when a customer must reconnect.',
        }),
        response: { 201: issuedSchema, ...errorResponses(400, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      return reply.code(201).header('cache-control', 'no-store').send(await endpoints.create(principal.actor, principal.tenantId, request.body));
    },
  );

  app.get(
    '/webhooks',
    {
      config: read,
      schema: {
        tags: ['webhooks'],
        operationId: 'listWebhooks',
        summary: 'List webhook endpoints, by id',
        description: 'Needs webhooks:read. Never shows a signing secret.',
        security: SECURITY,
        querystring: listQuery,
        response: { 200: z.object({ items: z.array(endpointSchema), next: z.string().optional() }).meta({
          description: 'A page of webhook endpoints; `next` is there when more follow.',
          examples: [{ items: [ENDPOINT_EXAMPLE], next: ID.webhook }],
        }), ...errorResponses(400, 403) },
      },
    },
    async (request) => {
      const { limit, after } = request.query;
      return endpoints.list(principalOf(request).tenantId, { ...(limit !== undefined ? { limit } : {}), ...(after !== undefined ? { after } : {}) });
    },
  );

  app.get(
    '/webhooks/:id',
    {
      config: read,
      schema: { tags: ['webhooks'], operationId: 'getWebhook', summary: 'Get a webhook endpoint', description: 'Needs webhooks:read.', security: SECURITY, params, response: { 200: endpointSchema, ...errorResponses(400, 403, 404) } },
    },
    async (request) => endpoints.get(principalOf(request).tenantId, request.params.id),
  );

  app.patch(
    '/webhooks/:id',
    {
      config: write,
      schema: {
        tags: ['webhooks'],
        operationId: 'updateWebhook',
        summary: 'Change a webhook endpoint',
        description: 'Needs webhooks:write. A merge patch of `url`, `events`, `description`, `enabled`. A concurrent change is 409 `conflict`.',
        security: SECURITY,
        params,
        body: withRequestExample(updateWebhookInput, { events: ['connection.needs_reauthorization', 'connection.deleted'], enabled: true }),
        response: { 200: endpointSchema, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      return endpoints.update(principal.actor, principal.tenantId, request.params.id, request.body);
    },
  );

  app.delete(
    '/webhooks/:id',
    {
      config: write,
      schema: {
        tags: ['webhooks'],
        operationId: 'deleteWebhook',
        summary: 'Delete a webhook endpoint and its deliveries',
        description: 'Needs webhooks:write.',
        security: SECURITY,
        params,
        response: { 204: noContent, ...errorResponses(400, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      await endpoints.delete(principal.actor, principal.tenantId, request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/webhooks/:id/_roll_secret',
    {
      config: write,
      schema: {
        tags: ['webhooks'],
        operationId: 'rollWebhookSecret',
        summary: 'Make a new signing secret',
        description:
          'Needs webhooks:write. Answers the new secret once. For 24 hours messages carry a signature under the previous ' +
          'secret too (`webhook-signature` holds both), so receivers can switch without losing a message.',
        security: SECURITY,
        params,
        response: { 200: issuedSchema, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      return reply.header('cache-control', 'no-store').send(await endpoints.rollSecret(principal.actor, principal.tenantId, request.params.id));
    },
  );

  app.get(
    '/webhooks/:id/deliveries',
    {
      config: read,
      schema: {
        tags: ['webhooks'],
        operationId: 'listWebhookDeliveries',
        summary: 'Recent deliveries of an endpoint, newest first',
        description: 'Needs webhooks:read. Each delivery lists its attempts (status code, error code, duration, a short snippet of the answer).',
        security: SECURITY,
        params,
        querystring: deliveriesQuery,
        response: { 200: z.object({ items: z.array(deliverySchema) }).meta({ description: 'The endpoint\'s recent deliveries, newest first.', examples: [{ items: [DELIVERY_EXAMPLE] }] }), ...errorResponses(400, 403, 404) },
      },
    },
    async (request) => {
      const { limit, status } = request.query;
      const items = await webhooks.deliveries(principalOf(request).tenantId, request.params.id, { ...(limit !== undefined ? { limit } : {}), ...(status ? { status } : {}) });
      return { items };
    },
  );

  app.post(
    '/webhooks/:id/deliveries/:deliveryId/_redeliver',
    {
      config: write,
      schema: {
        tags: ['webhooks'],
        operationId: 'redeliverWebhookDelivery',
        summary: 'Send a delivery again',
        description: 'Needs webhooks:write. The delivery is due at once, with a fresh set of attempts; its `webhook-id` stays the same.',
        security: SECURITY,
        params: deliveryParams,
        response: { 202: deliverySchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request, reply) => {
      const { id, deliveryId } = request.params;
      return reply.code(202).send(await webhooks.redeliver(principalOf(request).tenantId, id, deliveryId));
    },
  );
};
