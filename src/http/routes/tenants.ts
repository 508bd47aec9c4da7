import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { BOOTSTRAP_TENANT, TENANT_NAME_PATTERN, type Identity } from '../../identity/index.js';
import { principalOf, SECURITY } from '../auth.js';
import type { DisplayCache } from '../display-cache.js';
import { EXAMPLE_IDS as ID } from '../examples.js';
import { errorResponses, idParams, noContent, passwordSchema, TENANT_EXAMPLE, tenantSchema, usernameSchema, withRequestExample } from '../schemas.js';

export interface TenantRoutesOptions {
  identity: Identity;
  display: DisplayCache;
}

const tenantBody = z.strictObject({
  name: z.string({ error: 'must be a string' }).regex(TENANT_NAME_PATTERN, {
    error: 'must be 1 to 63 lower-case letters, digits or dashes, starting with a letter or digit',
  }),
});

const createBody = withRequestExample(
  tenantBody
    .extend({
      initialAdmin: z
        .strictObject({
          username: usernameSchema,
          password: passwordSchema.optional().describe('Without one a password is generated and returned once.'),
        })
        .optional()
        .describe('The tenant\'s first user, with role admin, created with the tenant.'),
    }),
  { name: 'acme', initialAdmin: { username: 'ada' } },
);

const createdTenantSchema = tenantSchema.extend({
  initialAdmin: z
    .object({
      id: z.string(),
      username: z.string(),
      password: z.string().optional().describe('Only when it was generated; shown this once.'),
    })
    .optional(),
}).meta({
  description: 'The new tenant, with its first admin when one was asked for.',
  examples: [{ ...TENANT_EXAMPLE, initialAdmin: { id: ID.user, username: 'ada', password: 'example-generated-password-not-real' } }],
});

const SYSTEM_ONLY = `Needs identity:admin in the system tenant (the tenant Latchkey creates on first start, "${BOOTSTRAP_TENANT}"; marked in the database, not known by its name).`;
const systemAdmin = { permission: 'identity:admin', systemTenant: true } as const;

/**
 * Tenants. `GET /tenants/current` answers any caller; the rest is tenant administration, open only
 * to holders of identity:admin in the system tenant. The tenant service refuses to rename or delete
 * the system tenant.
 *
 * @example
 * await secured.register(tenantRoutes, { identity, display });
 */
export const tenantRoutes: FastifyPluginAsync<TenantRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { identity, display } = options;

  app.get(
    '/tenants/current',
    {
      config: { permission: 'authenticated' },
      schema: {
        tags: ['tenants'],
        operationId: 'getCurrentTenant',
        summary: 'The caller\'s tenant',
        description: 'Any authenticated caller.',
        security: SECURITY,
        response: { 200: tenantSchema, ...errorResponses() },
      },
    },
    async (request) => identity.tenants.get(principalOf(request).tenantId),
  );

  app.get(
    '/tenants',
    {
      config: systemAdmin,
      schema: {
        tags: ['tenants'],
        operationId: 'listTenants',
        summary: 'List tenants',
        description: SYSTEM_ONLY,
        security: SECURITY,
        response: {
          200: z.object({ items: z.array(tenantSchema) }).meta({
            description: 'The tenants.',
            examples: [{ items: [{ ...TENANT_EXAMPLE, id: ID.systemTenant, name: 'default', system: true }, TENANT_EXAMPLE] }],
          }),
          ...errorResponses(403),
        },
      },
    },
    async () => ({ items: await identity.tenants.list() }),
  );

  app.post(
    '/tenants',
    {
      config: systemAdmin,
      schema: {
        tags: ['tenants'],
        operationId: 'createTenant',
        summary: 'Create a tenant, with its first admin when `initialAdmin` is given',
        description: SYSTEM_ONLY,
        security: SECURITY,
        body: createBody,
        response: { 201: createdTenantSchema, ...errorResponses(400, 403, 409) },
      },
    },
    async (request, reply) => {
      const tenant = await identity.tenants.create(request.body, principalOf(request).actor);
      // A generated password is in this body: never cached anywhere.
      reply.header('cache-control', 'no-store');
      return reply.code(201).send(tenant);
    },
  );

  app.get(
    '/tenants/:id',
    {
      config: systemAdmin,
      schema: {
        tags: ['tenants'],
        operationId: 'getTenant',
        summary: 'Get a tenant',
        description: SYSTEM_ONLY,
        security: SECURITY,
        params: idParams,
        response: { 200: tenantSchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request) => identity.tenants.get(request.params.id),
  );

  app.patch(
    '/tenants/:id',
    {
      config: systemAdmin,
      schema: {
        tags: ['tenants'],
        operationId: 'updateTenant',
        summary: 'Rename a tenant',
        description: `${SYSTEM_ONLY} The system tenant cannot be renamed.`,
        security: SECURITY,
        params: idParams,
        body: withRequestExample(tenantBody, { name: 'acme-eu' }),
        response: { 200: tenantSchema, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const tenant = await identity.tenants.update(id, request.body, principalOf(request).actor);
      display.dropTenant(id);
      return tenant;
    },
  );

  app.delete(
    '/tenants/:id',
    {
      config: systemAdmin,
      schema: {
        tags: ['tenants'],
        operationId: 'deleteTenant',
        summary: 'Delete a tenant and everything in it',
        description: `${SYSTEM_ONLY} Its audit events stay. The system tenant cannot be deleted.`,
        security: SECURITY,
        params: idParams,
        response: { 204: noContent, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await identity.tenants.delete(id, principalOf(request).actor);
      display.dropTenant(id);
      return reply.code(204).send(null);
    },
  );
};
