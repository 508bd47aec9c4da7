// The upstream of `npm run bench:proxy`: a Fastify process on 127.0.0.1 answering GET /1k and
// GET /1m with fixed random bodies to a caller that sends the expected API key, 401 otherwise
// (so a proxied call that lost its credential fails the run). Started by bench/proxy.ts.
// Usage: tsx bench/proxy-upstream.ts PORT (the key comes in BENCH_UPSTREAM_KEY).
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';

const port = Number(process.argv[2]);
const key = process.env.BENCH_UPSTREAM_KEY ?? '';
if (!Number.isInteger(port) || port <= 0 || key === '') throw new TypeError('usage: BENCH_UPSTREAM_KEY=... proxy-upstream.ts PORT');

const bodies: Record<string, Buffer> = { '/1k': randomBytes(1024), '/1m': randomBytes(1024 * 1024) };
const app = Fastify({ logger: false });
app.get('/ready', async () => ({ ok: true }));
for (const [path, body] of Object.entries(bodies)) {
  app.get(path, async (request, reply) => {
    if (request.headers['x-api-key'] !== key) return reply.code(401).send({ error: 'no key' });
    return reply.header('content-type', 'application/octet-stream').send(body);
  });
}

const address = await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`bench upstream listening on ${address}\n`);
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
