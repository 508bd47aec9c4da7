import { REQUEST_ID_HEADER } from './request-id.js';
import { errorCodesFor } from './errors.js';

// What @fastify/swagger cannot say from the route schemas alone: declared tags, the server, the
// documented response headers, one shared error schema (each status naming only the codes it can
// answer) and no component nobody refers to.

/** Every tag an operation may use, in the order a reader meets them. */
export const OPENAPI_TAGS = [
  { name: 'health', description: 'Liveness and readiness, for load balancers and orchestrators; public.' },
  { name: 'sessions', description: 'Console log in and log out (the session cookie); public.' },
  { name: 'me', description: 'The caller: tenant, user, API key and effective permissions.' },
  { name: 'tenants', description: 'Tenants; the system tenant\'s admins administer every tenant.' },
  { name: 'users', description: 'Users of a tenant.' },
  { name: 'groups', description: 'Groups of users, and their members.' },
  { name: 'roles', description: 'Built-in and custom roles, and their grants to users and groups.' },
  { name: 'api-keys', description: 'API keys: create, list, roll, revoke and verify.' },
  { name: 'audit', description: 'The tenant\'s audit log.' },
  { name: 'providers', description: 'The provider catalog connectors are made from.' },
  { name: 'connectors', description: 'Connectors: a provider with its client credentials or API credential.' },
  {
    name: 'connections',
    description: 'Connecting accounts (OAuth), connections, tokens, connect sessions for end users, and the proxy.',
  },
  { name: 'webhooks', description: 'Webhook endpoints and their deliveries.' },
  { name: 'settings', description: 'The server\'s effective configuration and `doctor`\'s checks, for system administrators.' },
] as const;

type Json = Record<string, unknown>;

const HEADERS: Json = {
  RequestId: {
    description: 'The request id (also in every error body and log line); quote it when reporting a problem.',
    schema: { type: 'string' },
  },
  RetryAfter: {
    description: 'Seconds to wait before trying again, when known.',
    schema: { type: 'integer', minimum: 0 },
  },
};

const ERROR_SCHEMA: Json = {
  type: 'object',
  description: 'The one error body of the API.',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string', description: 'A stable snake_case code; each response lists the codes it can carry.' },
        message: { type: 'string', description: 'One sentence, safe to show a user.' },
        requestId: { type: 'string' },
        details: {
          type: 'object',
          additionalProperties: {},
          description: 'Extra fields: `fields` for validation_failed, `retryAfterSeconds` for 429 and 503.',
        },
      },
      required: ['code', 'message', 'requestId'],
    },
  },
  required: ['error'],
};

/** What @fastify/swagger writes when a response has no description. */
const DEFAULT_DESCRIPTION = 'Default Response';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/**
 * Finishes the document @fastify/swagger built: tags, servers, response headers, the shared error
 * schema, and unused component schemas dropped. Mutates and returns `doc`.
 *
 * @example
 * transformObject: ({ openapiObject }) => finishOpenApiDocument(jsonSchemaTransformObject({ openapiObject }), { publicUrl })
 */
export function finishOpenApiDocument(doc: Json, options: { publicUrl?: string } = {}): Json {
  doc.tags = OPENAPI_TAGS.map((tag) => ({ ...tag }));
  if (options.publicUrl !== undefined) doc.servers = [{ url: options.publicUrl.replace(/\/+$/, '') }];
  const components = (doc.components ??= {}) as Json;
  const schemas = (components.schemas ??= {}) as Json;
  components.headers = { ...HEADERS };
  schemas.Error = ERROR_SCHEMA;

  doc.paths = namedWildcards((doc.paths ?? {}) as Record<string, Json>);
  for (const item of Object.values(doc.paths as Record<string, Json>)) {
    for (const method of METHODS) {
      const operation = item[method] as Json | undefined;
      if (!operation) continue;
      const responses = (operation.responses ?? {}) as Record<string, Json>;
      for (const [status, response] of Object.entries(responses)) {
        finishResponse(Number(status), response, schemas);
      }
    }
  }

  dropUnusedSchemas(doc, schemas);
  return doc;
}

/**
 * Fastify's wildcard (`/proxy/*`) becomes `{*}`, which is no valid parameter name: call it `path`
 * (the rest of the URL, slashes included).
 */
function namedWildcards(paths: Record<string, Json>): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [path, item] of Object.entries(paths)) {
    if (!path.endsWith('/{*}')) {
      out[path] = item;
      continue;
    }
    for (const method of METHODS) {
      const parameters = (item[method] as { parameters?: Json[] } | undefined)?.parameters ?? [];
      for (const parameter of parameters) {
        if (parameter.in !== 'path' || parameter.name !== '*') continue;
        parameter.name = 'path';
        parameter.description = 'The rest of the URL, slashes included: the path at the connector\'s API base URL.';
      }
    }
    out[`${path.slice(0, -'{*}'.length)}{path}`] = item;
  }
  return out;
}

function finishResponse(status: number, response: Json, schemas: Json): void {
  const headers: Json = { [REQUEST_ID_HEADER]: { $ref: '#/components/headers/RequestId' } };
  if (status === 429 || status === 503) headers['Retry-After'] = { $ref: '#/components/headers/RetryAfter' };
  response.headers = { ...(response.headers as Json | undefined), ...headers };
  const json = (response.content as Record<string, Json> | undefined)?.['application/json'];
  if (status < 400) {
    // A route answering a component says what it is through the component's description.
    const ref = (json?.schema as { $ref?: unknown } | undefined)?.$ref;
    const component = typeof ref === 'string' ? (schemas[ref.slice('#/components/schemas/'.length)] as Json | undefined) : undefined;
    if (response.description === DEFAULT_DESCRIPTION && typeof component?.description === 'string') {
      response.description = component.description;
    }
    return;
  }
  if (!json || !isErrorBody(json.schema)) return;
  const name = `Error${status}`;
  schemas[name] ??= {
    description: `An error answered with status ${status}.`,
    allOf: [
      { $ref: '#/components/schemas/Error' },
      {
        type: 'object',
        properties: { error: { type: 'object', properties: { code: { type: 'string', enum: errorCodesFor(status) } } } },
      },
    ],
  };
  json.schema = { $ref: `#/components/schemas/${name}` };
}

/** The error body as zod writes it: `{ error: { code, message, requestId, details? } }`. */
function isErrorBody(schema: unknown): boolean {
  const error = (schema as { properties?: { error?: { properties?: Json } } } | undefined)?.properties?.error?.properties;
  return error !== undefined && 'code' in error && 'requestId' in error && 'message' in error;
}

function dropUnusedSchemas(doc: Json, schemas: Json): void {
  const used = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string' && value.startsWith('#/components/schemas/')) {
        const name = decodeURIComponent(value.slice('#/components/schemas/'.length));
        if (!used.has(name)) {
          used.add(name);
          visit(schemas[name]);
        }
      } else visit(value);
    }
  };
  visit(doc.paths);
  for (const name of Object.keys(schemas)) if (!used.has(name)) delete schemas[name];
}
