// The baseline server of `npm run bench:apikeys` and `bench:http`: a bare Fastify route returning a constant, in its
// own process, started by bench/apikeys-servers.ts. Usage: tsx bench/apikeys-bare-server.ts PORT
import Fastify from 'fastify';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) throw new TypeError('usage: apikeys-bare-server.ts PORT');

const app = Fastify({ logger: false });
const constant = { ok: true };
app.get('/bare', async () => constant);
// bench:http's reference for a POST with a small JSON body (what _verify reads).
app.post('/bare', async (request) => ({ ok: typeof (request.body as { key?: unknown } | null)?.key === 'string' }));

const address = await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`bare fastify listening on ${address}\n`);
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
