import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
import { assertSafeInput, type Logger, type Metrics } from '../core/index.js';
import { mapError, notFoundBody } from './errors.js';
import { openApiPlugin } from './openapi.js';
import type { ReadinessCheck } from './readiness.js';
import { REQUEST_ID_HEADER, requestIdFor } from './request-id.js';
import { headersForLog, requestCompletedPlugin } from './request-log.js';
import { responseSerializerCompiler } from './serializer.js';
import { requestChildLogger } from './request-logger.js';
import { healthRoutes } from './routes/health.js';

export type { ReadinessCheck };

export const API_PREFIX = '/api/v1';

export interface HttpAppOptions {
  /** The process logger (pino); fastify logs through it with its redaction rules. */
  logger: Logger;
  metrics: Metrics;
  readiness: ReadinessCheck[];
  version?: string;
  /** Route plugins added by later modules, registered under /api/v1. */
  apiPlugins?: FastifyPluginAsync[];
  /** Pages outside the API (the hosted connect page), registered at the root. */
  sitePlugins?: FastifyPluginAsync[];
  bodyLimit?: number;
  /**
   * Proxy addresses or CIDRs (`LATCHKEY_TRUST_PROXY`) whose `X-Forwarded-For` names the client;
   * from any other hop the header is ignored. Default none: the client is the socket's peer.
   */
  trustProxy?: readonly string[];
  /** `LATCHKEY_PUBLIC_URL`: the server the OpenAPI description names. */
  publicUrl?: string;
}

/**
 * The Latchkey HTTP app: zod validation and serialization, OpenAPI 3.1 at `/openapi.json`, request
 * ids, one error body shape, metrics, and the public health routes. Returns the instance ready to
 * `listen` (or `inject` after `await app.ready()`).
 *
 * @example
 * const app = await createHttpApp({ logger: createLogger(), metrics: createMetrics(), readiness: [] });
 * await app.ready();
 * const res = await app.inject({ method: 'GET', url: '/healthz' }); // 200 {"status":"ok"}
 */
export async function createHttpApp(options: HttpAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    childLoggerFactory: requestChildLogger,
    genReqId: requestIdFor,
    requestIdHeader: false,
    // Fastify's request lines log the URL with its query string; request-log.ts writes ours.
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    trustProxy: options.trustProxy !== undefined && options.trustProxy.length > 0 ? [...options.trustProxy] : false,
    // Keep-alive sockets with no request in flight close at shutdown; busy ones finish first.
    forceCloseConnections: 'idle',
    // During a drain, requests already on an open connection are served (with Connection: close)
    // rather than answered by fastify's 503, whose body is not ours.
    return503OnClosing: false,
    // Malformed URLs are rejected before routing; answer them in our error shape too.
    frameworkErrors: (error, request, reply) => {
      sendError(error, request, reply);
    },
  });

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(responseSerializerCompiler);

  // Many clients send `content-type: application/json` on every request: an empty body is no body.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined);
    else parseJson(request, body.toString(), done);
  });
  // Once for every route, before any schema: NUL characters (PostgreSQL refuses them, SQLite
  // stores them) and nesting deep enough to overflow a recursive validator are a 400.
  // (The hooks on every request take a callback rather than returning a promise: cheaper.)
  app.addHook('preValidation', (request, _reply, done) => {
    try {
      assertSafeInput(request.params, 'request path');
      assertSafeInput(request.query, 'query string');
      assertSafeInput(request.body, 'request body');
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  });

  // Once shutdown starts, responses still in flight close their connection, so a kept-alive
  // socket does not hold the drain open until the shutdown timeout.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // Every answer, errors and streams included, names its request.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  app.setErrorHandler(async (error, request, reply) => sendError(error, request, reply));

  app.setNotFoundHandler(async (request, reply) => {
    return reply
      .code(404)
      .header(REQUEST_ID_HEADER, request.id)
      .send(notFoundBody(request.method, request.url, request.id));
  });

  await app.register(requestCompletedPlugin, { metrics: options.metrics });
  await app.register(openApiPlugin, {
    version: options.version ?? '0.0.0',
    ...(options.publicUrl !== undefined ? { publicUrl: options.publicUrl } : {}),
  });
  await app.register(healthRoutes, { metrics: options.metrics, readiness: options.readiness });

  for (const plugin of options.sitePlugins ?? []) await app.register(plugin);
  const apiPlugins = options.apiPlugins ?? [];
  await app.register(
    async (api) => {
      for (const plugin of apiPlugins) await api.register(plugin);
    },
    { prefix: API_PREFIX },
  );

  return app;
}

/** Answers any thrown value with the error body; unexpected errors are logged, never shown. */
function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, body, internal } = mapError(error, request.id);
  // A 429 or 503 says when to come back: the error carries it as details.retryAfterSeconds.
  const retryAfter = body.error.details?.retryAfterSeconds;
  if ((status === 429 || status === 503) && typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
  if (internal) {
    request.log.error({ err: error, headers: headersForLog(request.headers) }, 'request failed');
  } else if (status >= 500) {
    request.log.warn({ code: body.error.code }, body.error.message);
  }
  return reply.code(status).header(REQUEST_ID_HEADER, request.id).send(body);
}
