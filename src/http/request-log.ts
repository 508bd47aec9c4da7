import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { routeLabel } from './metrics.js';
import { scrubSecrets } from './secrets.js';

/**
 * One "request completed" line per response, in place of fastify's request logging: it logs the
 * path without its query string (OAuth callbacks carry codes there), with anything shaped like an
 * API key redacted, and the route pattern.
 *
 * @example
 * Fastify({ disableRequestLogging: true }).register(requestLogPlugin);
 */
const requestLog: FastifyPluginAsync = async (app) => {
  // Through the app logger with the request id spelled out: `request.log` is made only when
  // something else logs through it (see request-logger.ts).
  const log = app.log;
  app.addHook('onResponse', (request, reply, done) => {
    log.info(requestCompletedFields(request, reply), 'request completed');
    done();
  });
};

/** The fields of a "request completed" line: never the query string, nothing shaped like a key. */
export function requestCompletedFields(request: FastifyRequest, reply: FastifyReply): Record<string, unknown> {
  return {
    requestId: request.id,
    method: request.method,
    path: scrubSecrets(request.url.split('?')[0] ?? ''),
    route: routeLabel(request),
    statusCode: reply.statusCode,
    responseTimeMs: Math.round(reply.elapsedTime * 10) / 10,
  };
}

export const requestLogPlugin = fp(requestLog, { name: 'latchkey-request-log' });

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
