import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ConnectorService } from '../../connectors/index.js';
import { principalOf, SECURITY } from '../auth.js';
import { CONNECTOR_EXAMPLE, connectorListQuery, connectorParams, connectorSchema, createConnectorBody, updateConnectorBody } from '../connector-schemas.js';
import { errorResponses, noContent } from '../schemas.js';

export interface ConnectorRoutesOptions {
  connectors: ConnectorService;
}

const read = { permission: 'connectors:read' } as const;
const write = { permission: 'connectors:write' } as const;

/**
 * Connectors of the caller's tenant. Reads need connectors:read, changes connectors:write. Secrets
 * go in and never come out: every answer shows `{"secrets":{"clientSecret":{"set":true}}}` flags.
 * A bad connector is one 400 `validation_failed` listing every bad field in `details.fields`.
 *
 * @example
 * await secured.register(connectorRoutes, { connectors });
 */
export const connectorRoutes: FastifyPluginAsync<ConnectorRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { connectors } = options;

  app.post(
    '/connectors',
    {
      config: write,
      schema: {
        tags: ['connectors'],
        operationId: 'createConnector',
        summary: 'Create a connector',
        description:
          'Needs connectors:write. `config` is checked against the provider and auth type, `secrets` against the auth type ' +
          '(`clientSecret` for OAuth, `apiKeyValue`, `username` + `password`, `token`); secrets are stored encrypted and never shown again.',
        security: SECURITY,
        body: createConnectorBody,
        response: { 201: connectorSchema, ...errorResponses(400, 403) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      return reply.code(201).send(await connectors.create(principal.actor, principal.tenantId, request.body));
    },
  );

  app.get(
    '/connectors',
    {
      config: read,
      schema: {
        tags: ['connectors'],
        operationId: 'listConnectors',
        summary: 'List connectors, by id',
        description: 'Needs connectors:read.',
        security: SECURITY,
        querystring: connectorListQuery,
        response: { 200: z.object({ items: z.array(connectorSchema), next: z.string().optional() }).meta({
          description: 'A page of connectors; `next` is there when more follow.',
          examples: [{ items: [CONNECTOR_EXAMPLE], next: CONNECTOR_EXAMPLE.id }],
        }), ...errorResponses(400, 403) },
      },
    },
    async (request) => {
      const { limit, after } = request.query;
      return connectors.list(principalOf(request).tenantId, { ...(limit !== undefined ? { limit } : {}), ...(after !== undefined ? { after } : {}) });
    },
  );

  app.get(
    '/connectors/:id',
    {
      config: read,
      schema: {
        tags: ['connectors'],
        operationId: 'getConnector',
        summary: 'Get a connector',
        description: 'Needs connectors:read.',
        security: SECURITY,
        params: connectorParams,
        response: { 200: connectorSchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request) => connectors.get(principalOf(request).tenantId, request.params.id),
  );

  app.patch(
    '/connectors/:id',
    {
      config: write,
      schema: {
        tags: ['connectors'],
        operationId: 'updateConnector',
        summary: 'Change a connector',
        description:
          'Needs connectors:write. `config` and `secrets` are merge patches (a value sets, null removes, absent keeps); ' +
          '`provider`, `authType` and `tokenMode` cannot change. A concurrent change is 409 `conflict`.',
        security: SECURITY,
        params: connectorParams,
        body: updateConnectorBody,
        response: { 200: connectorSchema, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      return connectors.update(principal.actor, principal.tenantId, request.params.id, request.body);
    },
  );

  app.delete(
    '/connectors/:id',
    {
      config: write,
      schema: {
        tags: ['connectors'],
        operationId: 'deleteConnector',
        summary: 'Delete a connector',
        description: 'Needs connectors:write.',
        security: SECURITY,
        params: connectorParams,
        response: { 204: noContent, ...errorResponses(400, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      await connectors.delete(principal.actor, principal.tenantId, request.params.id);
      return reply.code(204).send(null);
    },
  );
};
