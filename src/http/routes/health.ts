import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { LatchkeyError, type Metrics } from '../../core/index.js';
import { runReadinessChecks, type ReadinessCheck } from '../readiness.js';
import { publicErrorResponses } from '../schemas.js';

export interface HealthRoutesOptions {
  metrics: Metrics;
  readiness: ReadinessCheck[];
  /** Per-check limit; a check slower than this counts as failed. */
  readinessTimeoutMs?: number;
}

const healthSchema = z.object({ status: z.literal('ok') }).describe('The process is alive.').meta({ examples: [{ status: 'ok' }] });
const readySchema = z
  .object({
    status: z.literal('ready'),
    checks: z.record(z.string(), z.literal('ok')),
  })
  .describe('Every dependency answered.')
  .meta({ examples: [{ status: 'ready', checks: { database: 'ok' } }] });

/**
 * Public, unauthenticated routes: liveness, readiness and Prometheus metrics. Registered in their
 * own scope so API-wide hooks (authentication, rate limits) never apply to them.
 *
 * @example
 * await app.register(healthRoutes, { metrics, readiness: [{ name: 'database', check: () => db.ping() }] });
 */
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const timeoutMs = options.readinessTimeoutMs ?? 2000;

  app.get(
    '/healthz',
    { schema: { tags: ['health'], operationId: 'getHealth', summary: 'Liveness', security: [], response: { 200: healthSchema, ...publicErrorResponses(400) } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        operationId: 'getReadiness',
        summary: 'Readiness: every dependency answers',
        security: [],
        response: { 200: readySchema, ...publicErrorResponses(400, 503) },
      },
    },
    async (request) => {
      const results = await runReadinessChecks(options.readiness, timeoutMs);
      const failed = results.filter((entry) => entry.error !== undefined);
      if (failed.length > 0) {
        for (const entry of failed) {
          request.log.warn({ check: entry.name, err: entry.error }, 'readiness check failed');
        }
        // Names only: a check's error text may carry hosts, SQL or credentials.
        throw new LatchkeyError('not_ready', `Latchkey is not ready: ${failed.map((entry) => entry.name).join(', ')}.`);
      }
      const checks: Record<string, 'ok'> = {};
      for (const entry of results) checks[entry.name] = 'ok';
      return { status: 'ready' as const, checks };
    },
  );

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const { registry } = options.metrics;
    const text = await registry.metrics();
    return reply.header('content-type', registry.contentType).send(text);
  });
};
