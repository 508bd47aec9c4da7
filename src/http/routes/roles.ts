import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PERMISSIONS, type Identity } from '../../identity/index.js';
import { principalOf, SECURITY } from '../auth.js';
import { EXAMPLE_IDS as ID } from '../examples.js';
import {
  errorResponses,
  idSchema,
  nameSchema,
  noContent,
  permissionSchema,
  principalSchema,
  ROLE_BINDING_EXAMPLE,
  ROLE_EXAMPLE,
  roleBindingSchema,
  roleSchema,
  withRequestExample,
} from '../schemas.js';

export interface RoleRoutesOptions {
  identity: Identity;
}

const description = z.string({ error: 'must be a string' }).max(1000, { error: 'must be at most 1000 characters' }).nullable();
const permissions = z.array(permissionSchema, { error: 'must be a list of permissions' }).max(PERMISSIONS.length * 4);

const createBody = withRequestExample(
  z
    .strictObject({ name: nameSchema, description: description.optional(), permissions }),
  { name: 'connector-reader', description: 'Reads connectors and their connections.', permissions: ['connectors:read'] },
);
const updateBody = withRequestExample(
  z
    .strictObject({ description: description.optional(), permissions: permissions.optional() }),
  { permissions: ['connectors:read', 'connectors:use'] },
);
const nameParams = z.object({ name: nameSchema });
const bindingBody = withRequestExample(z.strictObject({ principal: principalSchema }), { principal: { type: 'group', id: ID.group } });
const bindingParams = z.object({ name: nameSchema, type: z.enum(['user', 'group'], { error: 'must be "user" or "group"' }), id: idSchema });

const ADMIN = 'Needs identity:admin.';
const admin = { permission: 'identity:admin' } as const;

/**
 * Roles (built-in `admin`, `editor`, `viewer` and the tenant's custom roles) and their grants to
 * users and groups. Any caller may read roles; changes and grants need identity:admin. A change
 * is seen by every affected key and session on its next request.
 *
 * @example
 * await secured.register(roleRoutes, { identity });
 */
export const roleRoutes: FastifyPluginAsync<RoleRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { identity } = options;

  app.get(
    '/roles',
    {
      config: { permission: 'authenticated' },
      schema: {
        tags: ['roles'],
        operationId: 'listRoles',
        summary: 'List roles: built-in first, then custom by name',
        description: 'Any authenticated caller.',
        security: SECURITY,
        response: { 200: z.object({ items: z.array(roleSchema) }).meta({
          description: 'The roles.',
          examples: [
            {
              items: [
                {
                  name: 'viewer',
                  description: null,
                  permissions: ['apikeys:read', 'connectors:read', 'tasks:read'],
                  builtin: true,
                  createdAt: null,
                  updatedAt: null,
                },
                ROLE_EXAMPLE,
              ],
            },
          ],
        }), ...errorResponses() },
      },
    },
    async (request) => ({ items: await identity.roles.list(principalOf(request).tenantId) }),
  );

  app.post(
    '/roles',
    {
      config: admin,
      schema: {
        tags: ['roles'],
        operationId: 'createRole',
        summary: 'Create a custom role',
        description: ADMIN,
        security: SECURITY,
        body: createBody,
        response: { 201: roleSchema, ...errorResponses(400, 403, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      return reply.code(201).send(await identity.roles.create(principal.actor, principal.tenantId, request.body));
    },
  );

  app.get(
    '/roles/:name',
    {
      config: { permission: 'authenticated' },
      schema: {
        tags: ['roles'],
        operationId: 'getRole',
        summary: 'Get a role',
        description: 'Any authenticated caller.',
        security: SECURITY,
        params: nameParams,
        response: { 200: roleSchema, ...errorResponses(400, 404) },
      },
    },
    async (request) => identity.roles.get(principalOf(request).tenantId, request.params.name),
  );

  app.patch(
    '/roles/:name',
    {
      config: admin,
      schema: {
        tags: ['roles'],
        operationId: 'updateRole',
        summary: 'Change a custom role\'s description or permissions',
        description: `${ADMIN} Built-in roles cannot be changed (409).`,
        security: SECURITY,
        params: nameParams,
        body: updateBody,
        response: { 200: roleSchema, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      return identity.roles.update(principal.actor, principal.tenantId, request.params.name, request.body);
    },
  );

  app.delete(
    '/roles/:name',
    {
      config: admin,
      schema: {
        tags: ['roles'],
        operationId: 'deleteRole',
        summary: 'Delete a custom role and every grant of it',
        description: `${ADMIN} Built-in roles cannot be deleted (409).`,
        security: SECURITY,
        params: nameParams,
        response: { 204: noContent, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      await identity.roles.delete(principal.actor, principal.tenantId, request.params.name);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/roles/:name/bindings',
    {
      config: admin,
      schema: {
        tags: ['roles'],
        operationId: 'listRoleBindings',
        summary: 'List the grants of a role',
        description: ADMIN,
        security: SECURITY,
        params: nameParams,
        response: { 200: z.object({ items: z.array(roleBindingSchema) }).meta({ description: 'The grants of the role.', examples: [{ items: [ROLE_BINDING_EXAMPLE] }] }), ...errorResponses(400, 403, 404) },
      },
    },
    async (request) => {
      const { tenantId } = principalOf(request);
      const role = await identity.roles.get(tenantId, request.params.name);
      return { items: await identity.roles.bindingsFor(tenantId, { roleName: role.name }) };
    },
  );

  app.post(
    '/roles/:name/bindings',
    {
      config: admin,
      schema: {
        tags: ['roles'],
        operationId: 'createRoleBinding',
        summary: 'Grant a role to a user or group (granting it again changes nothing)',
        description: ADMIN,
        security: SECURITY,
        params: nameParams,
        body: bindingBody,
        response: { 204: noContent, ...errorResponses(400, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      await identity.roles.grant(principal.actor, principal.tenantId, request.params.name, request.body.principal);
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/roles/:name/bindings/:type/:id',
    {
      config: admin,
      schema: {
        tags: ['roles'],
        operationId: 'deleteRoleBinding',
        summary: 'Revoke a role from a user or group',
        description: `${ADMIN} Refused (409) when it would leave the tenant without an active admin.`,
        security: SECURITY,
        params: bindingParams,
        response: { 204: noContent, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { name, type, id } = request.params;
      await identity.roles.revoke(principal.actor, principal.tenantId, name, { type, id });
      return reply.code(204).send(null);
    },
  );
};
