import type { ErrorCode } from '../core/index.js';
import { REQUEST_ID_HEADER } from './request-id.js';
import { errorCodesFor } from './errors.js';
import { EXAMPLE_IDS as ID } from './examples.js';

// What @fastify/swagger cannot say from the route schemas alone: declared tags, the server, the
// documented response headers, one shared error schema (each status naming only the codes it can
// answer, with an example of each), an example on every body whose schema is a component, and no
// component nobody refers to.

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
  { name: 'tasks', description: 'Background tasks: scheduled, run as a user with credentials granted at scheduling time, and their runs.' },
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

/**
 * An example answer for each error code a documented status can carry (`components.examples`);
 * test/openapi.test.ts fails when a documented status carries a code without one.
 */
const ERROR_EXAMPLES: Partial<Record<ErrorCode, { message: string; details?: Json }>> = {
  invalid_request: { message: 'Send one Latchkey-User header.' },
  validation_failed: {
    message: 'The request body is invalid: "name" is invalid (must be a string).',
    details: { fields: [{ path: 'name', message: 'must be a string' }] },
  },
  unauthorized: { message: 'Authentication failed: send a valid API key or log in.' },
  invalid_connect_session: { message: 'This connect link is invalid or has expired; ask the application for a new one.' },
  forbidden: { message: 'This action needs the permission connectors:write.', details: { permission: 'connectors:write' } },
  insufficient_permissions: { message: 'You cannot grant permissions you do not hold: identity:admin.' },
  csrf_failed: {
    message:
      'A request made with the session cookie must send the X-Latchkey-CSRF header with the value of the latchkey_csrf cookie; reload the console or log in again.',
  },
  egress_refused: { message: 'The egress policy refuses requests to idp.internal: it is a private address (10.0.0.7) (allow it with --egress-allow).' },
  not_found: { message: `No connector with id "${ID.connector}" exists.` },
  not_connected: { message: `There is no connection shared:${ID.connector}; connect the account first.` },
  conflict: { message: 'A user named "ada" already exists in this tenant.' },
  needs_reauthorization: {
    message: `The connection shared:${ID.connector} must be reconnected: the provider no longer accepts its grant (invalid_grant).`,
  },
  insecure_endpoint: {
    message:
      'The token endpoint http://idp.internal/token uses plain http, which is refused: use https (for a local test server on a loopback address, start Latchkey with --allow-insecure-loopback).',
  },
  rate_limited: { message: 'The API key has reached its rate limit; try again later.', details: { retryAfterSeconds: 12 } },
  usage_exceeded: { message: 'The API key has no credits left.', details: { retryAfterSeconds: 3600 } },
  provider_unavailable: { message: 'The OpenID Connect metadata of Microsoft could not be read.' },
  connection_degraded: {
    message: `The connection shared:${ID.connector} is being refreshed by another process; retry shortly.`,
    details: { retryAfterSeconds: 2 },
  },
  not_ready: { message: 'Latchkey is not ready: database.' },
  issuer_unavailable: { message: 'The external credential issuer did not grant the task its credential; nothing was scheduled, try again later.' },
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
  const examples: Json = {};

  doc.paths = namedWildcards((doc.paths ?? {}) as Record<string, Json>);
  for (const item of Object.values(doc.paths as Record<string, Json>)) {
    for (const method of METHODS) {
      const operation = item[method] as Json | undefined;
      if (!operation) continue;
      const requestBody = (operation.requestBody as { content?: Record<string, Json> } | undefined)?.content ?? {};
      for (const media of Object.values(requestBody)) exampleFromSchema(media, schemas);
      const responses = (operation.responses ?? {}) as Record<string, Json>;
      for (const [status, response] of Object.entries(responses)) {
        finishResponse(Number(status), response, schemas, examples);
      }
    }
  }

  if (Object.keys(examples).length > 0) components.examples = examples;
  dropUnusedSchemas(doc, schemas);
  return doc;
}

/**
 * A body whose schema is a component takes the component's first example; a schema with examples
 * that @fastify/swagger left in place (a response given per content type) gives its first to the
 * media type, where documentation tools look.
 */
function exampleFromSchema(media: Json, schemas: Json): void {
  if ('example' in media || 'examples' in media) return;
  const schema = media.schema as { $ref?: unknown; examples?: unknown } | undefined;
  if (!schema) return;
  if (typeof schema.$ref === 'string') {
    const component = schemas[schema.$ref.slice('#/components/schemas/'.length)] as { examples?: unknown } | undefined;
    if (Array.isArray(component?.examples) && component.examples.length > 0) media.example = component.examples[0];
    return;
  }
  if (Array.isArray(schema.examples) && schema.examples.length > 0) {
    media.example = schema.examples[0];
    delete schema.examples;
  }
}

/** One example per error code the status can carry, each written once in `components.examples`. */
function errorExamples(status: number, examples: Json): Json {
  const out: Json = {};
  for (const code of errorCodesFor(status)) {
    const example = ERROR_EXAMPLES[code];
    if (!example) continue;
    const error: Json = { code, message: example.message, requestId: ID.request };
    if (example.details) error.details = example.details;
    examples[code] ??= { summary: code, value: { error } };
    out[code] = { $ref: `#/components/examples/${code}` };
  }
  return out;
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

function finishResponse(status: number, response: Json, schemas: Json, examples: Json): void {
  const headers: Json = { [REQUEST_ID_HEADER]: { $ref: '#/components/headers/RequestId' } };
  if (status === 429 || status === 503) headers['Retry-After'] = { $ref: '#/components/headers/RetryAfter' };
  response.headers = { ...(response.headers as Json | undefined), ...headers };
  const content = (response.content ?? {}) as Record<string, Json>;
  const json = content['application/json'];
  if (status < 400) {
    for (const media of Object.values(content)) exampleFromSchema(media, schemas);
    // A route answering a component says what it is through the component's description.
    const ref = (json?.schema as { $ref?: unknown } | undefined)?.$ref;
    const component = typeof ref === 'string' ? (schemas[ref.slice('#/components/schemas/'.length)] as Json | undefined) : undefined;
    if (response.description === DEFAULT_DESCRIPTION && typeof component?.description === 'string') {
      response.description = component.description;
    }
    return;
  }
  for (const [type, media] of Object.entries(content)) if (type !== 'application/json') exampleFromSchema(media, schemas);
  if (!json || !isErrorBody(json.schema)) return;
  const name = `Error${status}`;
  schemas[name] ??= {
    description: `An error answered with status ${status}.`,
    allOf: [
      { $ref: '#/components/schemas/Error' },
      {
        type: 'object',
        properties: {
          error: {
            type: 'object',
            properties: { code: { type: 'string', enum: errorCodesFor(status) } },
            // The JSON Schema default, said out loud: the other fields are the shared schema's.
            // Redocly checks examples as if every object without it refused unknown fields.
            unevaluatedProperties: true,
          },
        },
      },
    ],
  };
  json.schema = { $ref: `#/components/schemas/${name}` };
  json.examples = errorExamples(status, examples);
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
