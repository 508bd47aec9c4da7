// The floor of `npm run bench:proxy`: the least a Node proxy does, in its own process: a bare
// Fastify route that forwards GET /proxy/* to the upstream with undici, the upstream's key
// injected, and streams the answer back. No authentication, audit, log line, metrics or egress
// check; at most 10 connections to the upstream, as Latchkey's per-connector concurrency limit
// allows (undici queues the rest). Started by bench/proxy.ts.
// Usage: tsx bench/proxy-floor.ts PORT UPSTREAM_URL (the key comes in BENCH_UPSTREAM_KEY).
import Fastify from 'fastify';
import { Agent } from 'undici';

const port = Number(process.argv[2]);
const upstream = process.argv[3] ?? '';
const key = process.env.BENCH_UPSTREAM_KEY ?? '';
if (!Number.isInteger(port) || port <= 0 || upstream === '' || key === '') throw new TypeError('usage: BENCH_UPSTREAM_KEY=... proxy-floor.ts PORT UPSTREAM_URL');

const dispatcher = new Agent({ connections: 10 });
const { origin } = new URL(upstream);
const app = Fastify({ logger: false });
app.get('/ready', async () => ({ ok: true }));
app.get('/proxy/*', async (request, reply) => {
  const path = (request.params as { '*': string })['*'];
  const answer = await dispatcher.request({ origin, path: `/${path}`, method: 'GET', headers: { 'x-api-key': key } });
  reply.code(answer.statusCode);
  for (const name of ['content-type', 'content-length']) {
    const value = answer.headers[name];
    if (typeof value === 'string') reply.header(name, value);
  }
  return reply.send(answer.body);
});

const address = await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`bench proxy floor listening on ${address}\n`);
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
