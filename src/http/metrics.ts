import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Counter, Histogram, Registry } from 'prom-client';
import type { Metrics } from '../core/index.js';

export const HTTP_DURATION_METRIC = 'latchkey_http_request_duration_seconds';
export const HTTP_REQUESTS_METRIC = 'latchkey_http_requests_total';

type HttpLabel = 'method' | 'route' | 'status_code';

/**
 * The route pattern a request matched (`/api/v1/things/:id`), or `unmatched`. Never the raw URL:
 * it may hold ids or secrets, and it would make label values unbounded.
 */
export function routeLabel(request: FastifyRequest): string {
  if (request.is404) return 'unmatched';
  return request.routeOptions.url ?? 'unmatched';
}

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One (method, route pattern, status) series: its count, its sum of seconds, its count per bucket. */
interface Series {
  labels: Record<HttpLabel, string>;
  count: number;
  sum: number;
  /** Observations per bucket of {@link BUCKETS}, not yet cumulative. */
  inBucket: number[];
}

/** What prom-client's registry reads of a metric: its name, help, type, and values when scraped. */
interface ScrapedMetric {
  name: string;
  help: string;
  type: 'histogram' | 'counter';
  aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: 'histogram' | 'counter'; aggregator: 'sum'; values: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }> }>;
  reset(): void;
}

/**
 * The HTTP metrics' series, counted here and handed to prom-client's registry only when it is
 * scraped. prom-client's own `observe` and `inc` check and hash a child's labels on every call and
 * cannot add to a series in bulk; that was about 6% of a `/healthz` request's CPU (bench/http-ab.ts,
 * A/B 1.059). prom-client still writes the exposition; the series and their shape are the same.
 */
class HttpSeries {
  readonly #series = new Map<string, Series>();

  observe(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route} ${status}`;
    let series = this.#series.get(key);
    if (series === undefined) {
      series = { labels: { method, route, status_code: String(status) }, count: 0, sum: 0, inBucket: BUCKETS.map(() => 0) };
      this.#series.set(key, series);
    }
    series.count += 1;
    series.sum += seconds;
    for (let i = 0; i < BUCKETS.length; i++) {
      if (seconds <= (BUCKETS[i] ?? 0)) {
        series.inBucket[i] = (series.inBucket[i] ?? 0) + 1;
        break;
      }
    }
  }

  /** Registers the duration histogram and the request counter on `registry`. */
  register(registry: Registry): void {
    const metric = (name: string, help: string, type: 'histogram' | 'counter', values: () => Awaited<ReturnType<ScrapedMetric['get']>>['values']): ScrapedMetric => ({
      name,
      help,
      type,
      aggregator: 'sum',
      get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: values() }),
      reset: () => this.#series.clear(),
    });
    const duration = metric(HTTP_DURATION_METRIC, 'HTTP request duration in seconds, by method, route pattern and status code.', 'histogram', () =>
      [...this.#series.values()].flatMap((s) => {
        let cumulative = 0;
        return [
          ...BUCKETS.map((le, i) => ({ labels: { le, ...s.labels }, value: (cumulative += s.inBucket[i] ?? 0), metricName: `${HTTP_DURATION_METRIC}_bucket` })),
          { labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: `${HTTP_DURATION_METRIC}_bucket` },
          { labels: { ...s.labels }, value: s.sum, metricName: `${HTTP_DURATION_METRIC}_sum` },
          { labels: { ...s.labels }, value: s.count, metricName: `${HTTP_DURATION_METRIC}_count` },
        ];
      }),
    );
    const total = metric(HTTP_REQUESTS_METRIC, 'HTTP requests answered, by method, route pattern and status code.', 'counter', () =>
      [...this.#series.values()].map((s) => ({ labels: { ...s.labels }, value: s.count })),
    );
    // The registry takes any metric with a name and a get(); its types list only its own classes.
    registry.registerMetric(Object.assign(duration, { series: this }) as unknown as Histogram);
    registry.registerMetric(total as unknown as Counter);
  }
}

/**
 * What each response records in `latchkey_http_request_duration_seconds` and
 * `latchkey_http_requests_total`, by method, route pattern and status code (called by the
 * request-completed hook, request-log.ts). Routes are patterns and statuses few, so the series
 * stay few.
 */
export function createHttpRecorder(metrics: Metrics): (request: FastifyRequest, reply: FastifyReply, route?: string) => void {
  const { registry } = metrics;
  let series = existing<{ series?: HttpSeries }>(registry, HTTP_DURATION_METRIC)?.series;
  if (series === undefined) {
    series = new HttpSeries();
    series.register(registry);
  }
  const counted = series;
  return (request, reply, route = routeLabel(request)) => {
    counted.observe(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
  };
}

/** A second app on the same registry (tests, embedded use) shares the metrics instead of throwing. */
function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}
