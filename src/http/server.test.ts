import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyPluginAsync } from 'fastify';
import { createLogger, createMetrics } from '../core/index.js';
import { createHttpApp } from './app.js';
import { listenWithShutdown } from './server.js';

interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

function get(url: string, agent: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

function slowPlugin(events: string[]): FastifyPluginAsync {
  return async (app) => {
    app.get('/slow', async () => {
      await delay(300);
      events.push('slow handled');
      return { done: true };
    });
    app.addHook('onResponse', async () => {
      events.push('response sent');
    });
  };
}

async function start(shutdownTimeoutMs: number, route: FastifyPluginAsync, onClose: () => Promise<void>) {
  const logger = createLogger({ level: 'silent' });
  const app = await createHttpApp({
    logger,
    metrics: createMetrics({ processMetrics: false }),
    readiness: [],
    apiPlugins: [route],
  });
  return listenWithShutdown(app, {
    host: '127.0.0.1',
    port: 0,
    shutdownTimeoutMs,
    logger,
    onClose,
    signals: ['SIGUSR2'],
  });
}

describe('listenWithShutdown', () => {
  it('lets a request in flight finish on a shutdown signal, refuses new connections, then runs onClose', async () => {
    const events: string[] = [];
    const server = await start(5000, slowPlugin(events), async () => {
      events.push('onClose');
    });
    assert.match(server.address, /^http:\/\/127\.0\.0\.1:\d+$/);
    const agent = new Agent({ keepAlive: true });
    try {
      // A kept-alive idle socket must not hold the shutdown open.
      assert.equal((await get(`${server.address}/healthz`, agent)).status, 200);

      const startedAt = Date.now();
      const slow = get(`${server.address}/api/v1/slow`, new Agent({ keepAlive: true }));
      await delay(50);
      process.kill(process.pid, 'SIGUSR2');
      await delay(20);

      await assert.rejects(get(`${server.address}/healthz`, new Agent()), { code: 'ECONNREFUSED' });

      const answer = await slow;
      assert.equal(answer.status, 200);
      assert.deepEqual(JSON.parse(answer.body), { done: true });

      await server.closed;
      events.push('closed');
      assert.deepEqual(events, ['slow handled', 'response sent', 'onClose', 'closed']);
      assert.equal(answer.headers.connection, 'close');
      // Drained promptly, not after a keep-alive timeout or the shutdown timeout.
      assert.ok(Date.now() - startedAt < 2000, `shutdown took ${Date.now() - startedAt} ms`);
      assert.equal(process.listenerCount('SIGUSR2'), 0);
    } finally {
      agent.destroy();
    }
  });

  it('destroys connections still open after the shutdown timeout and still runs onClose', async () => {
    let closedDb = false;
    const stuck: FastifyPluginAsync = async (app) => {
      app.get('/stuck', async () => {
        await delay(1000);
        return { done: true };
      });
    };
    const server = await start(200, stuck, async () => {
      closedDb = true;
    });
    const startedAt = Date.now();
    const pending = get(`${server.address}/api/v1/stuck`, new Agent());
    await delay(50);
    await server.close();
    assert.ok(closedDb);
    assert.ok(Date.now() - startedAt < 900, `shutdown took ${Date.now() - startedAt} ms`);
    await assert.rejects(pending, { code: 'ECONNRESET' });
  });
});
