import fastifySwagger from '@fastify/swagger';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { finishOpenApiDocument } from './openapi-document.js';

export interface OpenApiOptions {
  version: string;
  /** `LATCHKEY_PUBLIC_URL`: the document's server. */
  publicUrl?: string;
}

/**
 * Collects every route's zod schemas into an OpenAPI 3.1 document served at `GET /openapi.json`.
 * Register before any route: @fastify/swagger learns routes through the onRoute hook.
 *
 * @example
 * await app.register(openApiPlugin, { version: '0.1.0', publicUrl: 'https://latchkey.example.com' });
 */
const openApi: FastifyPluginAsync<OpenApiOptions> = async (app, options) => {
    await app.register(fastifySwagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Latchkey',
          description: 'Credential broker: encrypted secrets, API keys, OAuth connectors and tasks that run as a user.',
          version: options.version,
          license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
        },
        components: {
          securitySchemes: {
            apiKey: {
              type: 'apiKey',
              in: 'header',
              name: 'Authorization',
              description:
                '`ApiKey lk_...` (or `Bearer lk_...`). Keys look like `lk_` + key id (`k` + 15 base62) + `_` + 43 base62 secret + 6 base62 CRC32 checksum.',
            },
            sessionCookie: {
              type: 'apiKey',
              in: 'cookie',
              name: 'latchkey_session',
              description: 'The console session set by `POST /api/v1/sessions` (HttpOnly, SameSite=Lax).',
            },
          },
        },
      },
      transform: jsonSchemaTransform,
      transformObject: (input) =>
        finishOpenApiDocument(jsonSchemaTransformObject(input) as Record<string, unknown>, {
          ...(options.publicUrl !== undefined ? { publicUrl: options.publicUrl } : {}),
        }) as ReturnType<typeof jsonSchemaTransformObject>,
    });

    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
};

export const openApiPlugin = fp(openApi, { name: 'latchkey-openapi' });
