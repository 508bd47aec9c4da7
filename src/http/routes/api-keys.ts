import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiKeys, ApiKeyView, CreateApiKeyInput, VerifyResult } from '../../apikeys/index.js';
import { LatchkeyError } from '../../core/index.js';
import type { Identity } from '../../identity/index.js';
import { forbidden, isAdmin, principalOf, SECURITY, type Principal } from '../auth.js';
import { EXAMPLE_IDS as ID, EXAMPLE_KEY, EXAMPLE_TIMES as AT } from '../examples.js';
import {
  API_KEY_EXAMPLE,
  apiKeySchema,
  durationSchema,
  errorResponses,
  idSchema,
  issuedApiKeySchema,
  keyIdSchema,
  nameSchema,
  permissionSchema,
  timestampSchema,
  withRequestExample,
} from '../schemas.js';

export interface ApiKeyRoutesOptions {
  identity: Identity;
  apiKeys: ApiKeys;
}

const SECOND = 1000;
const DAY = 24 * 3600 * SECOND;
const count = (what: string) => z.number({ error: `must be ${what}` }).int({ error: `must be ${what}` });

const createBody = z.strictObject({
  name: z.string({ error: 'must be a string' }).max(200, { error: 'must be at most 200 characters' }),
  roles: z
    .array(nameSchema, { error: 'must be a list of role names' })
    .max(50, { error: 'must name at most 50 roles' })
    .nullish()
    .describe('Limit the key to these roles (within its owner\'s permissions); omitted or null: all of the owner\'s permissions, whatever they become.'),
  expiresIn: durationSchema(SECOND, 100 * 365 * DAY).optional(),
  rateLimit: z
    .strictObject({
      limit: count('a positive whole number').min(1, { error: 'must be at least 1' }).max(1_000_000_000, { error: 'must be at most 1,000,000,000' }),
      window: durationSchema(1, 365 * DAY),
    })
    .optional()
    .describe('At most `limit` requests per fixed window.'),
  credits: z
    .strictObject({
      remaining: count('a whole number').min(0, { error: 'must not be negative' }).max(2_147_483_647, { error: 'must be at most 2147483647' }),
      refill: z
        .strictObject({
          amount: count('a positive whole number').min(1, { error: 'must be at least 1' }).max(2_147_483_647, { error: 'must be at most 2147483647' }),
          interval: durationSchema(SECOND, 365 * DAY),
        })
        .optional(),
    })
    .optional()
    .describe('A balance of uses, each request takes one; optionally refilled by `amount` every `interval`.'),
  meta: z.record(z.string(), z.unknown(), { error: 'must be an object' }).optional().describe('Free JSON, at most 4096 characters.'),
  ownerId: idSchema.optional().describe('The user the key belongs to (identity:admin only); default the caller.'),
});

const rollBody = z
  .strictObject({
    gracePeriod: durationSchema(0, 30 * DAY).optional().describe('How long the old secret keeps working (default 0: not at all).'),
  })
  .nullish();

const listQuery = z.strictObject({
  ownerId: idSchema.optional().describe('Only this user\'s keys (another user\'s: identity:admin only).'),
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be a whole number' }).min(1, { error: 'must be at least 1' }).max(500, { error: 'must be at most 500' }).optional(),
  after: keyIdSchema.optional().describe('The `next` of the previous page.'),
});

const keyParams = z.object({ id: keyIdSchema });

const verifyBody = withRequestExample(
  z.strictObject({
    key: z.string({ error: 'must be a string' }).max(200, { error: 'is too long' }),
    permissions: z.array(permissionSchema, { error: 'must be a list of permissions' }).max(50).optional().describe('Permissions the key must carry.'),
  }),
  { key: EXAMPLE_KEY, permissions: ['connectors:read'] },
);

const VERIFY_CODES = ['valid', 'not_found', 'revoked', 'expired', 'disabled_owner', 'insufficient_permissions', 'rate_limited', 'usage_exceeded'] as const;

const verifySchema = z
  .object({
    valid: z.boolean(),
    code: z.enum(VERIFY_CODES),
    keyId: z.string().nullable(),
    tenant: z.string().nullable().describe('The key\'s tenant id.'),
    owner: z.string().nullable().describe('The key owner\'s user id.'),
    permissions: z.array(permissionSchema).describe('The key\'s current permissions, sorted.'),
    expiresAt: timestampSchema.nullable(),
    remaining: z.number().optional().describe('Credits left, when the key has credits.'),
    rateLimit: z.object({ limit: z.number(), remaining: z.number(), resetAt: timestampSchema }).optional(),
    retryAfterSeconds: z.number().optional(),
  })
  .meta({
    id: 'ApiKeyVerification',
    description: 'The verdict on the key.',
    examples: [
      {
        valid: true,
        code: 'valid',
        keyId: ID.apiKey,
        tenant: ID.tenant,
        owner: ID.user,
        permissions: ['connectors:read'],
        expiresAt: AT.inAMonth,
        remaining: 4_199,
        rateLimit: { limit: 100, remaining: 99, resetAt: AT.soon },
      },
    ],
  });

type VerifyAnswer = z.input<typeof verifySchema>;

const NOT_FOUND_ANSWER: VerifyAnswer = { valid: false, code: 'not_found', keyId: null, tenant: null, owner: null, permissions: [], expiresAt: null };

function answer(result: VerifyResult): VerifyAnswer {
  if (result.code === 'not_found') return NOT_FOUND_ANSWER;
  const out: VerifyAnswer = {
    valid: result.valid,
    code: result.code,
    keyId: result.keyId ?? null,
    tenant: result.tenantId ?? null,
    owner: result.ownerId ?? null,
    permissions: [...(result.permissions ?? [])],
    expiresAt: result.expiresAt ?? null,
  };
  if (result.remaining !== undefined) out.remaining = result.remaining;
  if (result.rateLimit !== undefined) out.rateLimit = result.rateLimit;
  if (result.retryAfterMs !== undefined) out.retryAfterSeconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
  return out;
}

/** Exactly the service's answer for an unknown id: another user's key is no oracle either. */
function keyNotFound(id: string): LatchkeyError {
  return new LatchkeyError('not_found', `No API key with id ${JSON.stringify(id)} exists.`);
}

type CreateBody = z.output<typeof createBody>;

function serviceInput(body: CreateBody): CreateApiKeyInput {
  const input: CreateApiKeyInput = { name: body.name, roles: body.roles ?? null };
  if (body.expiresIn !== undefined) input.expiresInMs = body.expiresIn;
  if (body.rateLimit !== undefined) input.rateLimit = { limit: body.rateLimit.limit, windowMs: body.rateLimit.window };
  if (body.credits !== undefined) {
    const { remaining, refill } = body.credits;
    input.credits = refill === undefined ? { remaining } : { remaining, refill: { amount: refill.amount, intervalMs: refill.interval } };
  }
  if (body.meta !== undefined) input.meta = body.meta as CreateApiKeyInput['meta'];
  return input;
}

/**
 * API keys of the caller's tenant. Keys are shown whole once (create, roll); every other answer
 * is metadata with a masked form. A caller without identity:admin sees and changes only its own
 * keys (another user's key answers 404, like an unknown id). A request made with a key can never
 * mint or roll a key that carries more than the calling key: 403 `insufficient_permissions`.
 *
 * @example
 * await secured.register(apiKeyRoutes, { identity, apiKeys });
 */
export const apiKeyRoutes: FastifyPluginAsync<ApiKeyRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { apiKeys } = options;
  const { service, verifier } = apiKeys;

  /** The key, when the caller may act on it (its own, or any in the tenant for identity:admin). */
  async function reachableKey(principal: Principal, id: string): Promise<ApiKeyView> {
    const view = await service.get(principal.tenantId, id);
    if (view.ownerId !== principal.userId && !isAdmin(principal)) throw keyNotFound(id);
    return view;
  }

  /** A key's current permissions: its owner's, narrowed by its roles. */
  app.post(
    '/api-keys',
    {
      config: { permission: 'apikeys:write' },
      schema: {
        tags: ['api-keys'],
        operationId: 'createApiKey',
        summary: 'Create an API key; the whole key is in this answer only',
        description:
          'Needs apikeys:write; `ownerId` other than the caller needs identity:admin. The key carries at most its owner\'s ' +
          'permissions, and, when the request comes with a key, at most the calling key\'s: asking for more is 403 `insufficient_permissions`.',
        security: SECURITY,
        body: withRequestExample(createBody, {
          name: 'billing-service',
          roles: ['connector-reader'],
          expiresIn: '30d',
          rateLimit: { limit: 100, window: '1m' },
          credits: { remaining: 5_000, refill: { amount: 5_000, interval: '1d' } },
          meta: { team: 'billing' },
          ownerId: ID.user,
        }),
        response: { 201: issuedApiKeySchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const ownerId = request.body.ownerId ?? principal.userId;
      if (ownerId !== principal.userId && !isAdmin(principal)) throw forbidden('identity:admin');
      const issued = await service.create(principal.actor, principal.tenantId, ownerId, serviceInput(request.body));
      return reply.code(201).header('cache-control', 'no-store').send(issued);
    },
  );

  app.get(
    '/api-keys',
    {
      config: { permission: 'apikeys:read' },
      schema: {
        tags: ['api-keys'],
        operationId: 'listApiKeys',
        summary: 'List API keys (metadata only), by id',
        description: 'Needs apikeys:read. Without identity:admin, only the caller\'s own keys.',
        security: SECURITY,
        querystring: listQuery,
        response: { 200: z.object({ items: z.array(apiKeySchema), next: keyIdSchema.optional() }).meta({
          description: 'A page of API keys; `next` is there when more follow.',
          examples: [{ items: [API_KEY_EXAMPLE], next: ID.apiKey }],
        }), ...errorResponses(400, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { ownerId, limit, after } = request.query;
      if (!isAdmin(principal) && ownerId !== undefined && ownerId !== principal.userId) throw forbidden('identity:admin');
      const owner = isAdmin(principal) ? ownerId : principal.userId;
      return service.list(principal.tenantId, {
        ...(owner !== undefined ? { ownerId: owner } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(after !== undefined ? { after } : {}),
      });
    },
  );

  app.get(
    '/api-keys/:id',
    {
      config: { permission: 'apikeys:read' },
      schema: {
        tags: ['api-keys'],
        operationId: 'getApiKey',
        summary: 'Get an API key (metadata only)',
        description: 'Needs apikeys:read; another user\'s key needs identity:admin.',
        security: SECURITY,
        params: keyParams,
        response: { 200: apiKeySchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request) => reachableKey(principalOf(request), request.params.id),
  );

  app.post(
    '/api-keys/:id/_roll',
    {
      config: { permission: 'apikeys:write' },
      schema: {
        tags: ['api-keys'],
        operationId: 'rollApiKey',
        summary: 'Issue a new secret for a key; the old one works until the grace period ends',
        description:
          'Needs apikeys:write; another user\'s key needs identity:admin. Through a key, only keys that carry no more than the calling key.',
        security: SECURITY,
        params: keyParams,
        body: withRequestExample(rollBody, { gracePeriod: '1h' }),
        response: { 200: issuedApiKeySchema, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { id } = request.params;
      await reachableKey(principal, id);
      const gracePeriodMs = request.body?.gracePeriod;
      const issued = await service.roll(principal.actor, principal.tenantId, id, gracePeriodMs === undefined ? {} : { gracePeriodMs });
      return reply.header('cache-control', 'no-store').send(issued);
    },
  );

  app.delete(
    '/api-keys/:id',
    {
      config: { permission: 'apikeys:write' },
      schema: {
        tags: ['api-keys'],
        operationId: 'revokeApiKey',
        summary: 'Revoke an API key; answers once the revocation is durable',
        description:
          'Needs apikeys:write; another user\'s key needs identity:admin. The key stays as a tombstone (returned). ' +
          'This process refuses it at once, every other process within the cache bound. Revoking again changes nothing.',
        security: SECURITY,
        params: keyParams,
        response: { 200: apiKeySchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { id } = request.params;
      await reachableKey(principal, id);
      return service.revoke(principal.actor, principal.tenantId, id);
    },
  );

  app.post(
    '/api-keys/_verify',
    {
      config: { permission: 'apikeys:verify' },
      schema: {
        tags: ['api-keys'],
        operationId: 'verifyApiKey',
        summary: 'Verify an API key of the caller\'s tenant, counting the request against its limits',
        description:
          'Needs apikeys:verify (admin only by default). Always 200; `valid` and `code` give the answer. A key of another tenant ' +
          'answers exactly like an unknown key (`not_found`, nothing else) and is not counted against its limits.',
        security: SECURITY,
        body: verifyBody,
        response: { 200: verifySchema, ...errorResponses(400, 403) },
      },
    },
    async (request) => {
      const { tenantId } = principalOf(request);
      const { key, permissions } = request.body;
      // Another tenant's key is not charged, nor told apart from none: the verifier answers not_found for it.
      return answer(await verifier.verify(key, permissions === undefined ? { tenantId } : { tenantId, permissions }));
    },
  );
};
