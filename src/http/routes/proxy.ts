import type { IncomingMessage } from 'node:http';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ConnectorService } from '../../connectors/index.js';
import { LatchkeyError } from '../../core/index.js';
import { Cancel } from '../../outbound/index.js';
import type { Proxy } from '../../proxy/index.js';
import { principalOf, SECURITY } from '../auth.js';
import { endUserOf, ownerOf } from '../connection-owner.js';
import { errorResponses } from '../schemas.js';
import { z } from 'zod';

export interface ProxyRoutesOptions {
  connectors: ConnectorService;
  proxy: Proxy;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * `ANY /api/v1/connectors/{id}/proxy/*` (permission `connectors:use`): the caller's request, sent to
 * the connector's API with its credential. Bodies pass through as streams in both directions, so
 * this scope parses no body at all.
 *
 * @example
 * await secured.register(proxyRoutes, { connectors, proxy });
 */
export const proxyRoutes: FastifyPluginAsync<ProxyRoutesOptions> = async (app, options) => {
  const { connectors, proxy } = options;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  // One route per method, so each has its own operationId (proxyGet, proxyPost, …).
  for (const method of METHODS) app.route({
    method,
    url: '/connectors/:id/proxy/*',
    // HEAD is its own route: the provider answers it, not fastify's GET-without-body.
    exposeHeadRoute: false,
    config: { permission: 'connectors:use' },
    schema: {
      tags: ['connections'],
      operationId: `proxy${method.charAt(0)}${method.slice(1).toLowerCase()}`,
      summary: `Call the connector's API with its credential (the proxy): ${method}`,
      description:
        'Needs connectors:use. Forwards the method, the path after `/proxy`, the query, the headers (not the caller\'s ' +
        'credentials, cookies or hop-by-hop headers) and the body to the connector\'s API base URL, with the credential ' +
        'injected: for OAuth connectors the access token of the shared connection, or of a per-user connection (the ' +
        '`Latchkey-End-User` header\'s end user, the `Latchkey-User` header\'s user, or the caller); the API key, basic or ' +
        'bearer credential otherwise. The query string goes to the provider untouched. Answers the provider\'s status, ' +
        'safe headers and body as they come. A 401 refreshes the token once (only if it is still the refused one) and ' +
        'retries; `Latchkey-Retries: N` (at most 3) retries a 429/503 that says `Retry-After` (up to 10 s).',
      security: SECURITY,
      // The provider's own answers pass through unchanged; the errors are Latchkey's.
      response: {
        200: {
          description: 'The provider\'s answer (any status), with its safe headers and body as they came.',
          // What a provider's JSON API might answer GET /user with.
          content: { '*/*': { schema: z.unknown().meta({ examples: [{ login: 'octocat', id: 583231, name: 'The Octocat' }] }) } },
        },
        ...errorResponses(400, 403, 404, 409, 502, 503),
      },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const params = request.params as { id: string };
      // From this process's cache of decrypted connectors, which forward() reads again.
      const { connector } = await connectors.getResolved(principal.tenantId, params.id);
      const raw = request.raw.url ?? '';
      const marker = `/connectors/${encodeURIComponent(params.id)}/proxy`;
      const at = raw.indexOf(marker);
      if (at < 0) throw new LatchkeyError('invalid_request', 'The proxied path could not be read.');
      const rest = raw.slice(at + marker.length);
      const q = rest.indexOf('?');
      const path = (q < 0 ? rest : rest.slice(0, q)) || '/';
      const query = q < 0 ? '' : rest.slice(q + 1);
      // The query belongs to the provider's API (Slack's `users.info?user=`): the user is a header here.
      const userHeader = request.headers['latchkey-user'];
      if (Array.isArray(userHeader)) throw new LatchkeyError('invalid_request', 'Send one Latchkey-User header.');
      const owner = ownerOf(principal, connector, userHeader, endUserOf(request));
      const retriesHeader = request.headers['latchkey-retries'];
      const retries = typeof retriesHeader === 'string' && /^\d{1,2}$/.test(retriesHeader) ? Number(retriesHeader) : 0;
      const controller = new Cancel();
      // The caller went away before the answer was sent: stop talking to the provider too.
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) controller.abort();
      });
      let answer: Awaited<ReturnType<typeof proxy.forward>>;
      try {
        answer = await proxy.forward({
          actor: principal.actor,
          tenantId: principal.tenantId,
          connectorId: connector.id,
          owner,
          method: request.method,
          path,
          query,
          headers: request.headers,
          body: request.body === undefined || request.body === null ? undefined : (request.body as IncomingMessage),
          retries,
          signal: controller,
        });
      } catch (err) {
        if (!controller.aborted) throw err;
        // Nobody is left to answer: not a failure of Latchkey's, nor of the provider's.
        request.log.info({ connectorId: connector.id }, 'The caller went away before the provider answered.');
        reply.hijack();
        reply.raw.destroy();
        return reply;
      }
      // Any status the provider answered, not only the ones documented for Latchkey's own errors.
      const out: FastifyReply = reply;
      return out.code(answer.status).headers(answer.headers).send(answer.body ?? '');
    },
  });
};
