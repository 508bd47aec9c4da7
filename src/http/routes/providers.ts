import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ProviderDirectory } from '../../connectors/index.js';
import { SECURITY } from '../auth.js';
import { PROVIDER_EXAMPLE, providerParams, providerSchema } from '../provider-schemas.js';
import { errorResponses } from '../schemas.js';

export interface ProviderRoutesOptions {
  providers: ProviderDirectory;
}

const read = { permission: 'connectors:read' } as const;

/**
 * The provider catalog, read-only: what can be connected, with which auth types, and which config
 * and secrets a connector of each needs. Needs connectors:read, like reading connectors.
 *
 * @example
 * await secured.register(providerRoutes, { providers: connectors.providers });
 */
export const providerRoutes: FastifyPluginAsync<ProviderRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { providers } = options;

  app.get(
    '/providers',
    {
      config: read,
      schema: {
        tags: ['providers'],
        operationId: 'listProviders',
        summary: 'List the providers of the catalog, by id',
        description: 'Needs connectors:read.',
        security: SECURITY,
        response: { 200: z.object({ items: z.array(providerSchema) }).meta({ description: 'The providers of the catalog.', examples: [{ items: [PROVIDER_EXAMPLE] }] }), ...errorResponses(403) },
      },
    },
    async () => ({ items: providers.list() }),
  );

  app.get(
    '/providers/:id',
    {
      config: read,
      schema: {
        tags: ['providers'],
        operationId: 'getProvider',
        summary: 'Get a provider of the catalog',
        description: 'Needs connectors:read. An unknown id is 404 `not_found` with the nearest ids in `details.suggestions`.',
        security: SECURITY,
        params: providerParams,
        response: { 200: providerSchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request) => providers.get(request.params.id),
  );
};
