import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createLogger, SECRET_FIELDS, type Logger } from './index.js';
import { isoTime } from './logger.js';

const random = (prefix: string) => `${prefix}_${randomBytes(18).toString('base64url')}`;

/** A logger writing into an array, one parsed JSON line per entry. */
function capture(): { log: Logger; text: () => string; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const log = createLogger({ level: 'trace', destination: { write: (chunk: string) => void chunks.push(chunk) } });
  return {
    log,
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

function at(value: unknown, path: string[]): unknown {
  return path.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], value);
}

describe('logger redaction', () => {
  for (const field of SECRET_FIELDS) {
    it(`redacts "${field}" at the top level, one level and two levels deep`, () => {
      const { log, text, lines } = capture();
      const top = random('top');
      const one = random('one');
      const two = random('two');
      const visible = random('visible');
      log.info(
        {
          [field]: top,
          tenantId: visible,
          connector: { [field]: one, provider: visible },
          request: { body: { [field]: two, grantType: visible } },
        },
        'saved',
      );
      const out = text();
      for (const secret of [top, one, two]) assert.ok(!out.includes(secret), `"${field}" leaked: ${out}`);
      const [line] = lines();
      assert.equal(line?.[field], '[redacted]');
      assert.equal(at(line, ['connector', field]), '[redacted]');
      assert.equal(at(line, ['request', 'body', field]), '[redacted]');
      assert.equal(line?.['tenantId'], visible);
      assert.equal(at(line, ['connector', 'provider']), visible);
      assert.equal(at(line, ['request', 'body', 'grantType']), visible);
      assert.equal(line?.['msg'], 'saved');
    });
  }

  it('redacts the authorization, cookie, x-api-key and CSRF token request headers and keeps the others', () => {
    const { log, text, lines } = capture();
    const apiKey = random('lk');
    const cookie = `session=${random('c')}`;
    const xApiKey = random('lk');
    const csrf = random('csrf');
    const requestId = random('req');
    log.info(
      {
        req: {
          method: 'GET',
          url: '/v1/connectors',
          headers: { authorization: `ApiKey ${apiKey}`, cookie, 'x-api-key': xApiKey, 'x-latchkey-csrf': csrf, 'x-request-id': requestId, 'user-agent': 'sdk' },
        },
      },
      'request',
    );
    const out = text();
    for (const secret of [apiKey, cookie, xApiKey, csrf]) assert.ok(!out.includes(secret), `a header leaked: ${out}`);
    const headers = at(lines()[0], ['req', 'headers']) as Record<string, unknown>;
    assert.deepEqual(headers, {
      authorization: '[redacted]',
      cookie: '[redacted]',
      'x-api-key': '[redacted]',
      'x-latchkey-csrf': '[redacted]',
      'x-request-id': requestId,
      'user-agent': 'sdk',
    });
    assert.equal(at(lines()[0], ['req', 'url']), '/v1/connectors');
  });

  it('redacts set-cookie response headers and bare headers objects', () => {
    const { log, text, lines } = capture();
    const setCookie = `session=${random('c')}`;
    const bearer = random('tok');
    const cookie = `a=${random('c')}`;
    const contentType = 'application/json';
    log.info({ res: { statusCode: 200, headers: { 'set-cookie': setCookie, 'content-type': contentType } } }, 'response');
    log.info({ headers: { authorization: `Bearer ${bearer}`, cookie, accept: contentType } }, 'outgoing');
    const out = text();
    for (const secret of [setCookie, bearer, cookie]) assert.ok(!out.includes(secret), `a header leaked: ${out}`);
    const [response, outgoing] = lines();
    assert.equal(at(response, ['res', 'headers', 'content-type']), contentType);
    assert.equal(at(response, ['res', 'statusCode']), 200);
    assert.equal(at(outgoing, ['headers', 'accept']), contentType);
  });

  it('redacts every secret field at once, in child logger bindings too', () => {
    const { log, text, lines } = capture();
    const secrets = SECRET_FIELDS.map((field) => [field, random('s')] as const);
    const visible = random('visible');
    const child = log.child({ ...Object.fromEntries(secrets.map(([f, s]) => [f, `${s}-child`])), component: visible });
    child.warn({ nested: Object.fromEntries(secrets), keyId: visible, tokenType: 'bearer' }, 'all');
    const out = text();
    for (const [field, secret] of secrets) assert.ok(!out.includes(secret), `"${field}" leaked: ${out}`);
    const [line] = lines();
    assert.equal(line?.['component'], visible);
    assert.equal(line?.['keyId'], visible, 'a field that only looks like a secret name stays');
    assert.equal(line?.['tokenType'], 'bearer');
  });

  it('redacts a secret field even when its value is an object', () => {
    const { log, text, lines } = capture();
    const inner = random('inner');
    log.error({ connector: { secrets: { clientSecret: inner, note: inner } } }, 'failed');
    assert.ok(!text().includes(inner), text());
    assert.equal(at(lines()[0], ['connector', 'secrets']), '[redacted]');
  });
});

describe('logger timestamps', () => {
  it('writes the time exactly as toISOString does, across second and millisecond boundaries', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.UTC(2026, 11, 2, 9, 26, 24, 998) });
    for (let i = 0; i < 2_005; i++) {
      assert.equal(isoTime(), `,"time":"${new Date(Date.now()).toISOString()}"`);
      t.mock.timers.tick(1);
    }
  });
});

describe('logger destination', () => {
  it('writes every line to stdout in order, multi-byte text intact, even when the process exits at once', async () => {
    const { spawnSync } = await import('node:child_process');
    const { mkdtempSync, openSync, closeSync, readFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const marker = random('line');
    // 20,000 lines written in one go (most while a write is in flight), then process.exit: pino
    // flushes what is pending. Once to a pipe, once to a file.
    const script = [
      `import { createLogger } from ${JSON.stringify(new URL('./logger.ts', import.meta.url).href)};`,
      `const log = createLogger();`,
      `for (let i = 0; i < 20000; i++) log.info({ i, text: 'zürich ✓ ${marker}' }, 'line');`,
      `process.exit(0);`,
    ].join('\n');
    const args = ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script];
    const check = (stdout: string) => {
      const lines = stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { i: number; text: string });
      assert.equal(lines.length, 20000);
      assert.deepEqual(lines.map((l) => l.i), Array.from({ length: 20000 }, (_, i) => i));
      assert.ok(lines.every((l) => l.text === `zürich ✓ ${marker}`));
    };
    const piped = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    assert.equal(piped.status, 0, piped.stderr);
    check(piped.stdout);
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-log-'));
    try {
      const fd = openSync(join(dir, 'out.log'), 'w');
      const filed = spawnSync(process.execPath, args, { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
      closeSync(fd);
      assert.equal(filed.status, 0, filed.stderr);
      check(readFileSync(join(dir, 'out.log'), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes a lone line within a moment while the process keeps running: lines are gathered, never held back', async () => {
    const { spawn } = await import('node:child_process');
    const marker = random('quiet');
    // One short line (far below the 4 KiB gathered before a write), then the process idles.
    const script = [
      `import { createLogger } from ${JSON.stringify(new URL('./logger.ts', import.meta.url).href)};`,
      `createLogger().info({ marker: '${marker}' }, 'alone');`,
      `setTimeout(() => {}, 20000);`,
    ].join('\n');
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      const seen = new Promise<string>((resolve) => {
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString('utf8');
          if (out.includes('\n')) resolve(out);
        });
      });
      const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('nothing written'), 10_000).unref());
      const first = await Promise.race([seen, timeout]);
      assert.notEqual(first, 'nothing written', 'the line is written while the process still runs');
      assert.equal((JSON.parse(first.split('\n')[0] ?? '') as { marker: string }).marker, marker);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
