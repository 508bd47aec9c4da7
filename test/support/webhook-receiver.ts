// A webhook receiver for tests: a Fastify server on 127.0.0.1 that keeps every request, with the
// polling wait and the signature check (the standardwebhooks package) the webhook tests share.
import Fastify, { type FastifyInstance } from 'fastify';
import { Webhook } from 'standardwebhooks';

export interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A Fastify receiver on 127.0.0.1 that keeps every request; `answer` decides the status per path. */
export interface Receiver {
  url(path: string): string;
  received: Received[];
  answer: (path: string, count: number) => number;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const app: FastifyInstance = Fastify();
  const counts = new Map<string, number>();
  const receiver: Receiver = {
    url: (path) => `http://127.0.0.1:${(app.server.address() as { port: number }).port}${path}`,
    received: [],
    answer: () => 204,
    close: () => app.close(),
  };
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  app.post('/*', async (request, reply) => {
    const path = request.url;
    const count = (counts.get(path) ?? 0) + 1;
    counts.set(path, count);
    receiver.received.push({ path, headers: request.headers as Record<string, string>, body: request.body as string });
    const status = receiver.answer(path, count);
    return reply.code(status).send(status >= 400 ? 'receiver says no' : null);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return receiver;
}

/** Waits for `check` to hold, polling; fails after a generous ceiling (never a timing assertion). */
export async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, step?: () => void): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`Gave up waiting for ${what}.`);
    step?.();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Verifies a received message with the standardwebhooks package; returns its parsed body. */
export function verified(secret: string, message: Received): { type: string; timestamp: string; data: Record<string, unknown> } {
  return new Webhook(secret).verify(message.body, message.headers) as { type: string; timestamp: string; data: Record<string, unknown> };
}
