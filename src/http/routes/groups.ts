import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Identity } from '../../identity/index.js';
import { principalOf, SECURITY } from '../auth.js';
import { EXAMPLE_IDS as ID } from '../examples.js';
import { errorResponses, GROUP_EXAMPLE, groupSchema, idParams, idSchema, nameSchema, noContent, USER_EXAMPLE, userSchema, withRequestExample } from '../schemas.js';

export interface GroupRoutesOptions {
  identity: Identity;
}

const groupBody = withRequestExample(z.strictObject({ name: nameSchema }), { name: 'support' });
const memberBody = withRequestExample(z.strictObject({ userId: idSchema }), { userId: ID.user });
const memberParams = z.object({ id: idSchema, userId: idSchema });

const ADMIN = 'Needs identity:admin.';
const admin = { permission: 'identity:admin' } as const;

/**
 * Groups of the caller's tenant and their members; roles granted to a group count for each
 * member from the next request on. Everything here needs identity:admin (members are users).
 *
 * @example
 * await secured.register(groupRoutes, { identity });
 */
export const groupRoutes: FastifyPluginAsync<GroupRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { identity } = options;

  app.get(
    '/groups',
    {
      config: admin,
      schema: {
        tags: ['groups'],
        operationId: 'listGroups',
        summary: 'List groups',
        description: ADMIN,
        security: SECURITY,
        response: { 200: z.object({ items: z.array(groupSchema) }).meta({ description: 'The tenant\'s groups.', examples: [{ items: [GROUP_EXAMPLE] }] }), ...errorResponses(403) },
      },
    },
    async (request) => ({ items: await identity.groups.list(principalOf(request).tenantId) }),
  );

  app.post(
    '/groups',
    {
      config: admin,
      schema: {
        tags: ['groups'],
        operationId: 'createGroup',
        summary: 'Create a group',
        description: ADMIN,
        security: SECURITY,
        body: groupBody,
        response: { 201: groupSchema, ...errorResponses(400, 403, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      return reply.code(201).send(await identity.groups.create(principal.actor, principal.tenantId, request.body));
    },
  );

  app.get(
    '/groups/:id',
    {
      config: admin,
      schema: {
        tags: ['groups'],
        operationId: 'getGroup',
        summary: 'Get a group',
        description: ADMIN,
        security: SECURITY,
        params: idParams,
        response: { 200: groupSchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request) => identity.groups.get(principalOf(request).tenantId, request.params.id),
  );

  app.patch(
    '/groups/:id',
    {
      config: admin,
      schema: {
        tags: ['groups'],
        operationId: 'updateGroup',
        summary: 'Rename a group',
        description: ADMIN,
        security: SECURITY,
        params: idParams,
        body: groupBody,
        response: { 200: groupSchema, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      return identity.groups.update(principal.actor, principal.tenantId, request.params.id, request.body);
    },
  );

  app.delete(
    '/groups/:id',
    {
      config: admin,
      schema: {
        tags: ['groups'],
        operationId: 'deleteGroup',
        summary: 'Delete a group, its memberships and its role bindings',
        description: `${ADMIN} Refused (409) when it would leave the tenant without an active admin.`,
        security: SECURITY,
        params: idParams,
        response: { 204: noContent, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      await identity.groups.delete(principal.actor, principal.tenantId, request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/groups/:id/members',
    {
      config: admin,
      schema: {
        tags: ['groups'],
        operationId: 'listGroupMembers',
        summary: 'List a group\'s members',
        description: ADMIN,
        security: SECURITY,
        params: idParams,
        response: { 200: z.object({ items: z.array(userSchema) }).meta({ description: 'The group\'s members.', examples: [{ items: [USER_EXAMPLE] }] }), ...errorResponses(400, 403, 404) },
      },
    },
    async (request) => ({ items: await identity.groups.listMembers(principalOf(request).tenantId, request.params.id) }),
  );

  app.post(
    '/groups/:id/members',
    {
      config: admin,
      schema: {
        tags: ['groups'],
        operationId: 'addGroupMember',
        summary: 'Add a user to a group (adding a member again changes nothing)',
        description: ADMIN,
        security: SECURITY,
        params: idParams,
        body: memberBody,
        response: { 204: noContent, ...errorResponses(400, 403, 404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      await identity.groups.addMember(principal.actor, principal.tenantId, request.params.id, request.body.userId);
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/groups/:id/members/:userId',
    {
      config: admin,
      schema: {
        tags: ['groups'],
        operationId: 'removeGroupMember',
        summary: 'Remove a user from a group',
        description: `${ADMIN} The user loses the group's roles from the next request on.`,
        security: SECURITY,
        params: memberParams,
        response: { 204: noContent, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      await identity.groups.removeMember(principal.actor, principal.tenantId, request.params.id, request.params.userId);
      return reply.code(204).send(null);
    },
  );
};
