import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { principalOf, SECURITY } from '../auth.js';
import type { DisplayCache } from '../display-cache.js';
import { EXAMPLE_IDS as ID, EXAMPLE_MASKED_KEY } from '../examples.js';
import { errorResponses, permissionSchema } from '../schemas.js';

export interface MeRoutesOptions {
  display: DisplayCache;
}

export const meSchema = z
  .object({
    tenant: z.object({ id: z.string(), name: z.string() }),
    user: z.object({ id: z.string(), username: z.string() }),
    apiKey: z.object({ id: z.string(), name: z.string(), masked: z.string() }).nullable().describe('The key the request came with; null for a session.'),
    permissions: z.array(permissionSchema).describe('The caller\'s effective permissions now, sorted.'),
  })
  .meta({
    id: 'Me',
    description: 'The caller.',
    examples: [
      {
        tenant: { id: ID.tenant, name: 'acme' },
        user: { id: ID.user, username: 'ada' },
        apiKey: { id: ID.apiKey, name: 'billing-service', masked: EXAMPLE_MASKED_KEY },
        permissions: ['apikeys:read', 'connectors:read', 'connectors:use'],
      },
    ],
  });

/**
 * `GET /me`: who the caller is. The hot route: the principal comes from the verifier's cache and
 * the names from the display cache, so a warm request reads nothing from the database.
 *
 * @example
 * await secured.register(meRoutes, { display });
 */
export const meRoutes: FastifyPluginAsync<MeRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { display } = options;

  app.get(
    '/me',
    {
      config: { permission: 'authenticated' },
      schema: {
        tags: ['me'],
        operationId: 'getMe',
        summary: 'The caller: tenant, user, API key and effective permissions',
        description: 'Any authenticated caller.',
        security: SECURITY,
        response: { 200: meSchema, ...errorResponses() },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { tenantId, userId, apiKeyId } = principal;
      let names = display.peekMe(tenantId, userId, apiKeyId);
      if (names === undefined) {
        const [tenantName, username, key] = await Promise.all([
          display.tenantName(tenantId),
          display.username(tenantId, userId),
          apiKeyId === undefined ? undefined : display.keyLabel(tenantId, apiKeyId),
        ]);
        names = { tenantName, username, key };
      }
      const { tenantName, username, key } = names;
      return {
        tenant: { id: tenantId, name: tenantName },
        user: { id: userId, username },
        apiKey: apiKeyId === undefined || key === undefined ? null : { id: apiKeyId, name: key.name, masked: key.masked },
        permissions: [...principal.permissionList],
      };
    },
  );
};
