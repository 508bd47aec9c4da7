import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Identity } from '../../identity/index.js';
import { forbidden, isAdmin, principalOf, SECURITY } from '../auth.js';
import { EXAMPLE_IDS as ID } from '../examples.js';
import { errorResponses, idParams, nameSchema, noContent, passwordSchema, USER_EXAMPLE, userSchema, usernameSchema, withRequestExample } from '../schemas.js';

export interface UserRoutesOptions {
  identity: Identity;
}

const displayName = z.string({ error: 'must be a string' }).max(200, { error: 'must be at most 200 characters' }).nullable();

const createBody = withRequestExample(
  z.strictObject({
    username: usernameSchema,
    displayName: displayName.optional(),
    password: passwordSchema.optional().describe('Without one the user cannot log in (API keys only).'),
    roles: z.array(nameSchema, { error: 'must be a list of role names' }).max(100).optional().describe('Roles granted directly.'),
  }),
  { username: 'ada', displayName: 'Ada Lovelace', password: 'example-password-not-real', roles: ['editor'] },
);

const updateBody = withRequestExample(
  z.strictObject({
    displayName: displayName.optional(),
    disabled: z.boolean({ error: 'must be true or false' }).optional().describe('Disabling ends the user\'s sessions and refuses their API keys at once.'),
    password: passwordSchema.optional().describe('A new password; ends the user\'s sessions.'),
  }),
  { displayName: 'Ada King', disabled: false },
);

const ADMIN = 'Needs identity:admin.';

/**
 * Users of the caller's tenant. Reads: identity:admin, or the caller's own user (a caller without
 * identity:admin lists only itself). Writes: identity:admin.
 *
 * @example
 * await secured.register(userRoutes, { identity });
 */
export const userRoutes: FastifyPluginAsync<UserRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { identity } = options;

  app.get(
    '/users',
    {
      config: { permission: 'authenticated' },
      schema: {
        tags: ['users'],
        operationId: 'listUsers',
        summary: 'List users',
        description: 'identity:admin lists every user of the tenant; any other caller gets only its own user.',
        security: SECURITY,
        response: { 200: z.object({ items: z.array(userSchema) }).meta({
          description: 'The tenant\'s users.',
          examples: [{ items: [{ ...USER_EXAMPLE, id: ID.admin, username: 'admin', displayName: null }, USER_EXAMPLE] }],
        }), ...errorResponses() },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      if (isAdmin(principal)) return { items: await identity.users.list(principal.tenantId) };
      return { items: [await identity.users.get(principal.tenantId, principal.userId)] };
    },
  );

  app.post(
    '/users',
    {
      config: { permission: 'identity:admin' },
      schema: {
        tags: ['users'],
        operationId: 'createUser',
        summary: 'Create a user',
        description: ADMIN,
        security: SECURITY,
        body: createBody,
        response: { 201: userSchema, ...errorResponses(400, 403, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const user = await identity.users.create(principal.actor, principal.tenantId, request.body);
      return reply.code(201).send(user);
    },
  );

  app.get(
    '/users/:id',
    {
      config: { permission: 'authenticated' },
      schema: {
        tags: ['users'],
        operationId: 'getUser',
        summary: 'Get a user',
        description: 'identity:admin, or the caller\'s own user.',
        security: SECURITY,
        params: idParams,
        response: { 200: userSchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { id } = request.params;
      if (id !== principal.userId && !isAdmin(principal)) throw forbidden('identity:admin');
      return identity.users.get(principal.tenantId, id);
    },
  );

  app.patch(
    '/users/:id',
    {
      config: { permission: 'identity:admin' },
      schema: {
        tags: ['users'],
        operationId: 'updateUser',
        summary: 'Update a user (display name, disabled, password)',
        description: ADMIN,
        security: SECURITY,
        params: idParams,
        body: updateBody,
        response: { 200: userSchema, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      return identity.users.update(principal.actor, principal.tenantId, request.params.id, request.body);
    },
  );

  app.delete(
    '/users/:id',
    {
      config: { permission: 'identity:admin' },
      schema: {
        tags: ['users'],
        operationId: 'deleteUser',
        summary: 'Delete a user with their role bindings, memberships, sessions and API keys',
        description: `${ADMIN} Refused (409) when it would leave the tenant without an active admin.`,
        security: SECURITY,
        params: idParams,
        response: { 204: noContent, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      await identity.users.delete(principal.actor, principal.tenantId, request.params.id);
      return reply.code(204).send(null);
    },
  );
};
