import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Identity } from '../../identity/index.js';
import { isEndUserId } from '../../oauth/connections.js';
import { principalOf, SECURITY } from '../auth.js';
import { EXAMPLE_IDS as ID, EXAMPLE_TIMES as AT } from '../examples.js';
import { errorResponses, timestampSchema } from '../schemas.js';

export interface AuditRoutesOptions {
  identity: Identity;
}

const auditQuery = z.strictObject({
  limit: z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(1, { error: 'must be at least 1' })
    .max(500, { error: 'must be at most 500' })
    .optional()
    .describe('Events per page, 1 to 500 (default 50).'),
  before: z.string({ error: 'must be a string' }).max(200, { error: 'is too long' }).optional().describe('The `next` of the previous page.'),
  action: z
    .string({ error: 'must be a string' })
    .regex(/^[a-z_]+(\.[a-z_]+)+$/, { error: 'must look like "resource.verb"' })
    .optional()
    .describe('Only events with this action, such as `api_key.revoked`.'),
  target: z.string({ error: 'must be a string' }).min(1).max(300, { error: 'is too long' }).optional().describe('Only events about this target: a connector id for `connection.proxied`, a key id...'),
  actor: z
    .string({ error: 'must be a string' })
    .refine((v) => /^(user|api_key):[A-Za-z0-9_-]{1,100}$|^system$/.test(v) || (v.startsWith('end_user:') && isEndUserId(v.slice('end_user:'.length))), {
      error: 'must look like "user:<id>", "api_key:<id>", "end_user:<id>" or "system"',
    })
    .optional()
    .describe('Only events by this actor.'),
  since: z
    .string({ error: 'must be a string' })
    .max(40, { error: 'is too long' })
    .optional()
    .describe('Only events at or after this time (ISO-8601, such as `2026-01-31T12:00:00Z`).'),
  until: z
    .string({ error: 'must be a string' })
    .max(40, { error: 'is too long' })
    .optional()
    .describe('Only events before this time (ISO-8601); later than `since`.'),
});

const AUDIT_EXAMPLE = {
  id: ID.audit,
  tenantId: ID.tenant,
  at: AT.updated,
  actor: `api_key:${ID.adminKey}`,
  action: 'connector.created',
  target: ID.connector,
  details: { name: 'github', provider: 'github', authType: 'oauth_authorization_code', tokenMode: 'per_user' },
};

const auditEventSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    at: timestampSchema,
    actor: z.string().describe('`user:<id>`, `api_key:<id>`, `end_user:<id>` (an end user on the connect page) or `system`.'),
    action: z.string(),
    target: z.string().nullable(),
    details: z.record(z.string(), z.unknown()).nullable(),
  })
  .meta({ id: 'AuditEvent', description: 'An entry of the audit log.', examples: [AUDIT_EXAMPLE] });

/**
 * The tenant's audit log, newest first.
 *
 * @example
 * await secured.register(auditRoutes, { identity });
 */
export const auditRoutes: FastifyPluginAsync<AuditRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { identity } = options;

  app.get(
    '/audit',
    {
      config: { permission: 'audit:read' },
      schema: {
        tags: ['audit'],
        operationId: 'listAuditEvents',
        summary: 'The tenant\'s audit log, newest first',
        description: 'Needs audit:read. Filters combine: `action`, `actor`, `target` and the time range `since` (inclusive) to `until` (exclusive).',
        security: SECURITY,
        querystring: auditQuery,
        response: { 200: z.object({ items: z.array(auditEventSchema), next: z.string().optional() }).meta({
          description: 'A page of audit events, newest first; `next` is there when more follow.',
          examples: [{ items: [AUDIT_EXAMPLE], next: ID.audit }],
        }), ...errorResponses(400, 403) },
      },
    },
    async (request) => {
      const { limit, before, action, target, actor, since, until } = request.query;
      return identity.audit.list(principalOf(request).tenantId, {
        ...(limit !== undefined ? { limit } : {}),
        ...(before !== undefined ? { before } : {}),
        ...(action !== undefined ? { action } : {}),
        ...(target !== undefined ? { target } : {}),
        ...(actor !== undefined ? { actor } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
      });
    },
  );
};
