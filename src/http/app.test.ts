import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { createLogger, createMetrics, LatchkeyError, type Metrics } from '../core/index.js';
import { createHttpApp, type ReadinessCheck } from './app.js';

const secret = (): string => `s3cr3t_${randomBytes(12).toString('hex')}`;

const thingsPlugin: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.post(
    '/things',
    {
      schema: {
        body: z.object({ name: z.string().min(1), size: z.number().int().optional() }),
        response: { 201: z.object({ id: z.string(), name: z.string() }) },
      },
    },
    async (request, reply) => reply.code(201).send({ id: 'thing_1', name: request.body.name }),
  );
  app.get(
    '/things/:id',
    { schema: { params: z.object({ id: z.string() }), response: { 200: z.object({ id: z.string() }) } } },
    async (request) => ({ id: request.params.id }),
  );
  app.post('/things/conflict', async () => {
    throw new LatchkeyError('conflict', 'A thing with that name already exists.');
  });
};

interface Harness {
  app: FastifyInstance;
  lines: string[];
  metrics: Metrics;
  logs(): Array<Record<string, unknown>>;
}

async function harness(
  options: { readiness?: ReadinessCheck[]; apiPlugins?: FastifyPluginAsync[]; bodyLimit?: number } = {},
): Promise<Harness> {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
  const metrics = createMetrics({ processMetrics: false });
  const app = await createHttpApp({
    logger,
    metrics,
    readiness: options.readiness ?? [],
    version: '1.2.3',
    apiPlugins: options.apiPlugins ?? [thingsPlugin],
    ...(options.bodyLimit !== undefined ? { bodyLimit: options.bodyLimit } : {}),
  });
  await app.ready();
  return { app, lines, metrics, logs: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

function assertErrorShape(body: unknown, code: string, requestId: string): void {
  assert.ok(typeof body === 'object' && body !== null);
  const { error } = body as { error: Record<string, unknown> };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.equal(error.code, code);
  assert.equal(typeof error.message, 'string');
  assert.match(error.message as string, /^[A-Z].*\.$/);
  assert.equal(error.requestId, requestId);
  for (const key of Object.keys(error)) assert.ok(['code', 'message', 'requestId', 'details'].includes(key), key);
}

describe('http app', () => {
  it('answers /healthz with ok and a generated request id, a new one for every request', async () => {
    const { app } = await harness();
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
    assert.match(String(res.headers['x-request-id']), /^req_[0-9a-f]{16}_[0-9a-z]+$/);
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) ids.add(String((await app.inject({ method: 'GET', url: '/healthz' })).headers['x-request-id']));
    assert.equal(ids.size, 50);
    await app.close();
  });

  it('honours a plain x-request-id and replaces an unsafe one', async () => {
    const { app } = await harness();
    const kept = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'abc-123_X.y' } });
    assert.equal(kept.headers['x-request-id'], 'abc-123_X.y');
    for (const bad of ['has space', 'a'.repeat(65), 'semi;colon', '']) {
      const res = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': bad } });
      assert.match(String(res.headers['x-request-id']), /^req_/, bad);
    }
    await app.close();
  });

  it('answers /readyz with every check when all pass', async () => {
    const { app } = await harness({
      readiness: [
        { name: 'database', check: async () => undefined },
        { name: 'keyring', check: async () => undefined },
      ],
    });
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ready', checks: { database: 'ok', keyring: 'ok' } });
    await app.close();
  });

  it('answers /readyz 503 naming the failing check without its error text', async () => {
    const hidden = secret();
    const { app } = await harness({
      readiness: [
        { name: 'database', check: async () => Promise.reject(new Error(`connect failed password=${hidden}`)) },
        { name: 'keyring', check: async () => undefined },
      ],
    });
    const res = await app.inject({ method: 'GET', url: '/readyz', headers: { 'x-request-id': 'ready-1' } });
    assert.equal(res.statusCode, 503);
    assertErrorShape(res.json(), 'not_ready', 'ready-1');
    assert.equal(res.json().error.message, 'Latchkey is not ready: database.');
    assert.ok(!res.body.includes(hidden));
    await app.close();
  });

  it('answers an unknown route with a 404 error body whose requestId is the x-request-id header', async () => {
    const { app } = await harness();
    const token = secret();
    const res = await app.inject({ method: 'GET', url: `/nope?token=${token}` });
    assert.equal(res.statusCode, 404);
    assertErrorShape(res.json(), 'not_found', String(res.headers['x-request-id']));
    assert.equal(res.json().error.message, 'No route matches GET /nope.');
    assert.ok(!res.body.includes(token));
    await app.close();
  });

  it('answers a malformed URL in the error shape', async () => {
    const { app } = await harness();
    const res = await app.inject({ method: 'GET', url: '/api/v1/things/%E0%A4%A', headers: { 'x-request-id': 'bad-url' } });
    assert.equal(res.statusCode, 400);
    assertErrorShape(res.json(), 'invalid_request', 'bad-url');
    assert.equal(res.headers['x-request-id'], 'bad-url');
    assert.equal(res.json().error.message, 'The request URL is malformed.');
    await app.close();
  });

  it('answers a body that fails its zod schema with 400 validation_failed and field details', async () => {
    const { app } = await harness();
    const res = await app.inject({ method: 'POST', url: '/api/v1/things', payload: { size: 1.5 } });
    assert.equal(res.statusCode, 400);
    const body = res.json();
    assertErrorShape(body, 'validation_failed', String(res.headers['x-request-id']));
    assert.equal(body.error.message, 'The request body is invalid: "name" is required (and 1 more).');
    const fields = body.error.details.fields as Array<{ path: string; message: string }>;
    assert.deepEqual(
      fields.map((field) => field.path),
      ['name', 'size'],
    );
    assert.equal(fields[0]?.message, 'is required');
    assert.equal(typeof fields[1]?.message, 'string');
    await app.close();
  });

  it('answers a valid body through the route', async () => {
    const { app } = await harness();
    const res = await app.inject({ method: 'POST', url: '/api/v1/things', payload: { name: 'widget' } });
    assert.equal(res.statusCode, 201);
    assert.deepEqual(res.json(), { id: 'thing_1', name: 'widget' });
    await app.close();
  });

  it('answers malformed JSON with 400 invalid_request without echoing the body', async () => {
    const { app } = await harness();
    const hidden = secret();
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/things',
      headers: { 'content-type': 'application/json' },
      payload: `{"name": ${hidden}`,
    });
    assert.equal(res.statusCode, 400);
    assertErrorShape(res.json(), 'invalid_request', String(res.headers['x-request-id']));
    assert.equal(res.json().error.message, 'The request body is not valid JSON.');
    assert.ok(!res.body.includes(hidden));
    await app.close();
  });

  it('answers an unsupported content type with 415 invalid_request', async () => {
    const { app } = await harness();
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/things',
      headers: { 'content-type': 'application/xml' },
      payload: '<name>x</name>',
    });
    assert.equal(res.statusCode, 415);
    assertErrorShape(res.json(), 'invalid_request', String(res.headers['x-request-id']));
    await app.close();
  });

  it('answers a body over the limit with 413 payload_too_large', async () => {
    const { app } = await harness({ bodyLimit: 64 });
    const res = await app.inject({ method: 'POST', url: '/api/v1/things', payload: { name: 'x'.repeat(200) } });
    assert.equal(res.statusCode, 413);
    assertErrorShape(res.json(), 'payload_too_large', String(res.headers['x-request-id']));
    await app.close();
  });

  it('passes a LatchkeyError through with its status, code and message', async () => {
    const { app } = await harness();
    const res = await app.inject({ method: 'POST', url: '/api/v1/things/conflict' });
    assert.equal(res.statusCode, 409);
    assertErrorShape(res.json(), 'conflict', String(res.headers['x-request-id']));
    assert.equal(res.json().error.message, 'A thing with that name already exists.');
    await app.close();
  });

  it('answers an unexpected error with a generic 500 and logs it with the request id and redacted authorization', async () => {
    const hidden = secret();
    const authorization = `ApiKey lk_${secret()}`;
    const apiKey = `lk_${secret()}`;
    const cookie = `session=${secret()}`;
    const boom: FastifyPluginAsync = async (app) => {
      app.get('/boom', async () => {
        throw new Error(`SELECT * FROM secrets WHERE value = '${hidden}'`);
      });
    };
    const { app, lines, logs } = await harness({ apiPlugins: [boom] });
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/boom',
      headers: { authorization, 'x-api-key': apiKey, cookie, 'user-agent': 'test-agent', 'x-request-id': 'boom-1' },
    });
    assert.equal(res.statusCode, 500);
    assert.deepEqual(res.json(), {
      error: {
        code: 'internal_error',
        message: 'An internal error occurred; quote the request id when reporting it.',
        requestId: 'boom-1',
      },
    });
    assert.ok(!res.body.includes(hidden));
    assert.ok(!res.body.includes('SELECT'));

    const failure = logs().find((entry) => entry.msg === 'request failed');
    assert.ok(failure, 'the failure is logged');
    assert.equal(failure.level, 50);
    assert.equal(failure.requestId, 'boom-1');
    assert.match(JSON.stringify(failure.err), /SELECT/);
    const headers = failure.headers as Record<string, unknown>;
    assert.equal(headers.authorization, '[redacted]');
    assert.equal(headers['x-api-key'], '[redacted]');
    assert.equal(headers.cookie, '[redacted]');
    assert.equal(headers['user-agent'], 'test-agent');
    for (const value of [authorization, apiKey, cookie]) assert.ok(!lines.join('').includes(value), 'credentials never reach the log');
    await app.close();
  });

  it('logs completed requests without their query string', async () => {
    const token = secret();
    const { app, lines, logs } = await harness();
    await app.inject({ method: 'GET', url: `/api/v1/things/thing_42?code=${token}` });
    const completed = logs().find((entry) => entry.msg === 'request completed');
    assert.ok(completed);
    assert.equal(completed.path, '/api/v1/things/thing_42');
    assert.equal(completed.route, '/api/v1/things/:id');
    assert.equal(completed.statusCode, 200);
    assert.ok(!lines.join('').includes(token));
    await app.close();
  });

  it('counts requests by route pattern, never by raw URL', async () => {
    const { app } = await harness();
    const id = `thing_${randomBytes(8).toString('hex')}`;
    assert.equal((await app.inject({ method: 'GET', url: `/api/v1/things/${id}` })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: `/missing/${id}` })).statusCode, 404);
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.match(
      res.body,
      /latchkey_http_requests_total\{method="GET",route="\/api\/v1\/things\/:id",status_code="200"\} 1/,
    );
    assert.match(res.body, /latchkey_http_requests_total\{method="GET",route="unmatched",status_code="404"\} 1/);
    assert.match(res.body, /latchkey_http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/api\/v1\/things\/:id"/);
    assert.ok(!res.body.includes(id));
    await app.close();
  });

  it('shares one registry between two apps without a duplicate-metric error', async () => {
    const first = await harness();
    const second = await createHttpApp({ logger: createLogger({ level: 'silent' }), metrics: first.metrics, readiness: [] });
    await second.ready();
    // Both count into the same series.
    assert.equal((await first.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    assert.equal((await second.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    assert.match(await first.metrics.registry.metrics(), /latchkey_http_requests_total\{method="GET",route="\/healthz",status_code="200"\} 2\n/);
    await Promise.all([first.app.close(), second.close()]);
  });

  it('writes each series as a Prometheus histogram: cumulative buckets, +Inf, sum and count equal to the requests', async () => {
    const { app, metrics } = await harness();
    const calls = 3 + (randomBytes(1)[0] ?? 0) % 5;
    for (let i = 0; i < calls; i++) assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    const text = await metrics.registry.metrics();
    const series = (suffix: string, le?: string) => {
      const labels = `${le === undefined ? '' : `le="${le}",`}method="GET",route="/healthz",status_code="200"`;
      const line = text.split('\n').find((l) => l.startsWith(`latchkey_http_request_duration_seconds${suffix}{${labels}} `));
      assert.ok(line, `${suffix} ${le ?? ''} is written`);
      return Number(line.split(' ')[1]);
    };
    const buckets = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf'].map((le) => series('_bucket', le));
    assert.deepEqual([...buckets].sort((a, b) => a - b), buckets, 'buckets are cumulative');
    assert.equal(buckets.at(-1), calls);
    assert.equal(series('_count'), calls);
    const sum = series('_sum');
    assert.ok(sum > 0 && sum < calls * 10, `the sum of durations (${sum} s) is plausible`);
    assert.match(text, /# TYPE latchkey_http_request_duration_seconds histogram\n/);
    assert.match(text, new RegExp(`# TYPE latchkey_http_requests_total counter\\nlatchkey_http_requests_total\\{method="GET",route="/healthz",status_code="200"\\} ${calls}\\n`));
    metrics.registry.resetMetrics();
    assert.doesNotMatch(await metrics.registry.metrics(), /route="\/healthz"/, 'reset empties the series');
    await app.close();
  });

  it('serves an OpenAPI 3.1 document listing the API routes but not itself', async () => {
    const { app } = await harness();
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json() as { openapi: string; info: { title: string; version: string }; paths: Record<string, Record<string, unknown>> };
    assert.match(doc.openapi, /^3\.1\./);
    assert.equal(doc.info.title, 'Latchkey');
    assert.equal(doc.info.version, '1.2.3');
    const create = doc.paths['/api/v1/things']?.post as { requestBody?: { content?: Record<string, { schema?: { required?: string[] } }> } };
    assert.ok(create, 'POST /api/v1/things is documented');
    assert.deepEqual(create.requestBody?.content?.['application/json']?.schema?.required, ['name']);
    assert.ok(doc.paths['/api/v1/things/{id}']?.get, 'path parameters use OpenAPI syntax');
    assert.ok(doc.paths['/readyz']?.get);
    assert.equal(doc.paths['/openapi.json'], undefined);
    assert.equal(doc.paths['/metrics'], undefined);
    await app.close();
  });
});
