import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Metrics } from '../core/index.js';

export const HTTP_DURATION_METRIC = 'latchkey_http_request_duration_seconds';
export const HTTP_REQUESTS_METRIC = 'latchkey_http_requests_total';

type HttpLabel = 'method' | 'route' | 'status_code';
const LABELS = ['method', 'route', 'status_code'] as const;

/**
 * The route pattern a request matched (`/api/v1/things/:id`), or `unmatched`. Never the raw URL:
 * it may hold ids or secrets, and it would make label values unbounded.
 */
export function routeLabel(request: FastifyRequest): string {
  if (request.is404) return 'unmatched';
  return request.routeOptions.url ?? 'unmatched';
}

/**
 * What each response records in `latchkey_http_request_duration_seconds` and
 * `latchkey_http_requests_total` (by method, route pattern and status code; called by the
 * request-completed hook, request-log.ts): one observation of the duration and one count,
 * on the children bound to (method, route pattern, status). prom-client would otherwise hash a
 * labels object on every call; routes are patterns and statuses few, so the map stays small.
 */
export function createHttpRecorder(metrics: Metrics): (request: FastifyRequest, reply: FastifyReply, route?: string) => void {
  const { registry } = metrics;
  const duration = existing<Histogram<HttpLabel>>(registry, HTTP_DURATION_METRIC) ??
    new Histogram({
      name: HTTP_DURATION_METRIC,
      help: 'HTTP request duration in seconds, by method, route pattern and status code.',
      labelNames: LABELS,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  const total = existing<Counter<HttpLabel>>(registry, HTTP_REQUESTS_METRIC) ??
    new Counter({
      name: HTTP_REQUESTS_METRIC,
      help: 'HTTP requests answered, by method, route pattern and status code.',
      labelNames: LABELS,
      registers: [registry],
    });
  const children = new Map<string, { duration: Histogram.Internal<HttpLabel>; total: Counter.Internal }>();
  return (request, reply, route = routeLabel(request)) => {
    const key = `${request.method} ${route} ${reply.statusCode}`;
    let child = children.get(key);
    if (child === undefined) {
      const labels = { method: request.method, route, status_code: String(reply.statusCode) };
      child = { duration: duration.labels(labels), total: total.labels(labels) };
      children.set(key, child);
    }
    child.duration.observe(reply.elapsedTime / 1000);
    child.total.inc();
  };
}

/** A second app on the same registry (tests, embedded use) shares the metrics instead of throwing. */
function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}
