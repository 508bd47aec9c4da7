import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createLogger, createMetrics } from '../core/index.js';
import { createHttpApp } from './app.js';
import { CONSOLE_CSP, consoleSite } from './console.js';

// The console's serving, on a stand-in build (the real one is exercised by the browser tests).

async function appFor(dir: string, lines: string[] = []): Promise<FastifyInstance> {
  const app = await createHttpApp({
    logger: createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } }),
    metrics: createMetrics({ processMetrics: false }),
    readiness: [],
    sitePlugins: [consoleSite({ dir })],
  });
  await app.ready();
  return app;
}

function assertSecurityHeaders(headers: Record<string, unknown>): void {
  const csp = String(headers['content-security-policy']);
  assert.equal(csp, CONSOLE_CSP);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /script-src 'self';/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/, 'no inline script, no wildcard');
  assert.equal(headers['x-frame-options'], 'DENY');
  assert.equal(headers['referrer-policy'], 'no-referrer');
  assert.equal(headers['x-content-type-options'], 'nosniff');
}

describe('console site', () => {
  let dir: string;
  let app: FastifyInstance;
  const marker = randomBytes(8).toString('hex');
  const outside = `outside-${randomBytes(8).toString('hex')}`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-console-'));
    mkdirSync(join(dir, 'build', 'assets'), { recursive: true });
    writeFileSync(join(dir, 'build', 'index.html'), `<!doctype html><title>${marker}</title><script type="module" src="/console/assets/app-1.js"></script>`);
    writeFileSync(join(dir, 'build', 'connected.html'), '<!doctype html><title>popup</title>');
    writeFileSync(join(dir, 'build', 'assets', 'app-1.js'), 'console.log(1);');
    writeFileSync(join(dir, 'build', 'assets', '.env'), outside);
    writeFileSync(join(dir, 'secret.txt'), outside);
    writeFileSync(join(dir, 'build', 'secret.txt'), outside);
    app = await appFor(join(dir, 'build'));
  });
  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('redirects / and /console to /console/', async () => {
    for (const url of ['/', '/console']) {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 302, url);
      assert.equal(res.headers.location, '/console/');
    }
  });

  it('answers the app for every page path under /console/, never cached, with the security headers', async () => {
    for (const url of ['/console/', '/console/api-keys', '/console/connectors/connector_abc', '/console/no/such/page']) {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.ok(res.body.includes(marker), url);
      assert.equal(res.headers['cache-control'], 'no-store');
      assertSecurityHeaders(res.headers);
    }
    const popup = await app.inject({ method: 'GET', url: '/console/connected.html' });
    assert.equal(popup.statusCode, 200);
    assert.match(popup.body, /<title>popup<\/title>/);
    assertSecurityHeaders(popup.headers);
  });

  it('serves the hashed assets for good, with the security headers', async () => {
    const res = await app.inject({ method: 'GET', url: '/console/assets/app-1.js' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, 'console.log(1);');
    assert.match(String(res.headers['content-type']), /javascript/);
    assert.match(String(res.headers['cache-control']), /max-age=31536000.*immutable/);
    assertSecurityHeaders(res.headers);
  });

  it('serves nothing outside the assets folder, nor dot files', async () => {
    for (const url of ['/console/assets/../secret.txt', '/console/assets/..%2fsecret.txt', '/console/assets/..%2f..%2fsecret.txt', '/console/assets/%2e%2e/secret.txt', '/console/assets/.env', '/console/assets/%00', '/console/assets/app-1.js%00.txt']) {
      const res = await app.inject({ method: 'GET', url });
      assert.ok(!res.body.includes(outside), `${url} answered ${res.statusCode}: ${res.body}`);
      assert.notEqual(res.statusCode, 500, `${url}: ${res.body}`);
    }
    const missing = await app.inject({ method: 'GET', url: '/console/assets/nope.js' });
    assert.equal(missing.statusCode, 404);
  });

  it('keeps its routes out of the OpenAPI description and its headers off the API', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, unknown> };
    assert.deepEqual(Object.keys(doc.paths).filter((path) => path === '/' || path.startsWith('/console')), []);
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(health.statusCode, 200);
    assert.equal(health.headers['content-security-policy'], undefined);
  });

  it('without a build answers 503 saying what to run, and logs it at start', async () => {
    const lines: string[] = [];
    const empty = mkdtempSync(join(tmpdir(), 'latchkey-console-empty-'));
    const bare = await appFor(empty, lines);
    try {
      const res = await bare.inject({ method: 'GET', url: '/console/' });
      assert.equal(res.statusCode, 503);
      assert.match(res.body, /The console is not built/);
      assert.match(res.body, /npm run build/);
      assertSecurityHeaders(res.headers);
      assert.ok(lines.some((line) => /The console is not built/.test(line)), lines.join('\n'));
      assert.equal((await bare.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'the API works without it');
    } finally {
      await bare.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
