import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Metrics } from '../core/index.js';
import { createHttpRecorder, routeLabel } from './metrics.js';
import { scrubSecrets } from './secrets.js';

export interface RequestCompletedOptions {
  metrics: Metrics;
}

/**
 * What every response leaves behind, in one `onResponse` hook (each hook Fastify runs costs every
 * request): one "request completed" line in place of fastify's request logging (the path without
 * its query string, where OAuth callbacks carry codes, anything shaped like an API key redacted,
 * the route pattern), and the HTTP metrics (see {@link createHttpRecorder}).
 *
 * @example
 * Fastify({ disableRequestLogging: true }).register(requestCompletedPlugin, { metrics: createMetrics() });
 */
const requestCompleted: FastifyPluginAsync<RequestCompletedOptions> = async (app, options) => {
  // Through the app logger with the request id spelled out: `request.log` is made only when
  // something else logs through it (see request-logger.ts).
  const log = app.log;
  const record = createHttpRecorder(options.metrics);
  app.addHook('onResponse', (request, reply, done) => {
    const fields = requestCompletedFields(request, reply);
    log.info(fields, 'request completed');
    record(request, reply, fields.route);
    done();
  });
};

/** The fields of a "request completed" line: never the query string, nothing shaped like a key. */
export function requestCompletedFields(request: FastifyRequest, reply: FastifyReply): { route: string } & Record<string, unknown> {
  return {
    requestId: request.id,
    method: request.method,
    path: scrubSecrets(request.url.split('?')[0] ?? ''),
    route: routeLabel(request),
    statusCode: reply.statusCode,
    responseTimeMs: Math.round(reply.elapsedTime * 10) / 10,
  };
}

export const requestCompletedPlugin = fp(requestCompleted, { name: 'latchkey-request-completed' });

const SECRET_HEADER = /authorization|cookie|api-?key|token|secret|signature|csrf/i;

/**
 * Request headers safe to log: credential-bearing headers are replaced before the logger's own
 * redaction sees them, so a header the redaction paths do not name cannot leak.
 *
 * @example
 * request.log.error({ err, headers: headersForLog(request.headers) }, 'request failed');
 */
export function headersForLog(headers: IncomingHttpHeaders): Record<string, string | string[] | undefined> {
  const safe: Record<string, string | string[] | undefined> = {};
  for (const [name, value] of Object.entries(headers)) {
    safe[name] = SECRET_HEADER.test(name) ? '[redacted]' : value;
  }
  return safe;
}
