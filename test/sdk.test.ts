// The SDK (`latchkey/client`) as an application uses it: against a real `latchkey serve` process
// (settings from the environment) on each database, with a small upstream API and a webhook
// receiver on 127.0.0.1. API keys, connectors and a connect session whose end user gives a key on
// the hosted page; the proxy as that end user (the upstream's own answers pass through, Latchkey's
// refusals are typed errors); a real webhook delivery verified, and refused once tampered with or
// replayed late; typed error codes; no secret in any error. The README's SDK example is compiled
// and run against the same server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, it } from 'node:test';
import { inspect } from 'node:util';
import ts from 'typescript';
import {
  LatchkeyApiError,
  LatchkeyClient,
  LatchkeyNetworkError,
  verifyWebhook,
  WebhookVerificationError,
  type ApiErrorCode,
} from '../src/client/index.js';
import { newSigningSecret, signedHeaders } from '../src/webhooks/index.js';
import { Browser, pageForms } from './support/browser.js';
import { freePort, ROOT, runCli, startServer, type ServerProcess } from './support/cli.js';
import { createTestDatabase, eachDialect, latchkeyEnv, LOOPBACK_EGRESS, type TestDatabase } from './support/databases.js';

const secret = (prefix: string) => `${prefix}-${randomBytes(18).toString('base64url')}`;

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A server on 127.0.0.1 that records every request and answers with `answer`. */
async function recorder(answer: (request: Received, response: ServerResponse) => void): Promise<{ server: Server; url: string; seen: Received[] }> {
  const seen: Received[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const received = { method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(received);
      answer(received, response);
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((done) => server.once('listening', done));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

/** Waits (without a timed assertion: the test's own timeout is the ceiling) until `check` holds. */
async function until<T>(check: () => T | undefined): Promise<T> {
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    await new Promise((done) => setTimeout(done, 20));
  }
}

/** What `fn` throws; fails when it does not. */
async function thrown(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected an error');
}

/** Everything an error could show: its message, stack, enumerable fields and inspection. */
const shown = (err: unknown) => `${String(err)} ${(err as Error).stack ?? ''} ${JSON.stringify(err)} ${inspect(err, { depth: 5 })}`;

it('verifyWebhook accepts what Latchkey signs, during a roll too, and refuses tampering, replays and other secrets', () => {
  const [current, previous] = [newSigningSecret(), newSigningSecret()];
  const at = new Date();
  const body = JSON.stringify({ type: 'connection.deleted', timestamp: at.toISOString(), data: { connectorId: 'connector_1', connectionId: 'shared:connector_1' } });
  const headers = signedHeaders([current, previous], 'msg_1', at, body);
  assert.equal(verifyWebhook({ secret: current, headers, body }).data.connectorId, 'connector_1');
  assert.equal(verifyWebhook({ secret: previous, headers: new Headers(headers), body: Buffer.from(body) }).type, 'connection.deleted');
  assert.equal(verifyWebhook({ secrets: [newSigningSecret(), previous], headers, body }).type, 'connection.deleted');

  const refused = (options: Partial<Parameters<typeof verifyWebhook>[0]>, code: WebhookVerificationError['code']) => {
    assert.throws(() => verifyWebhook({ secret: current, headers, body, ...options }), (err: unknown) => {
      assert.ok(err instanceof WebhookVerificationError);
      assert.equal(err.code, code);
      assert.ok(!shown(err).includes(current.slice(6)), 'the secret is in no error');
      return true;
    });
  };
  refused({ body: body.replace('connector_1', 'connector_2') }, 'invalid_signature');
  refused({ headers: { ...headers, 'webhook-timestamp': String(Number(headers['webhook-timestamp']) + 1) } }, 'invalid_signature');
  refused({ headers: { ...headers, 'webhook-id': 'msg_2' } }, 'invalid_signature');
  refused({ secret: newSigningSecret() }, 'invalid_signature');
  refused({ headers: { ...headers, 'webhook-signature': 'v2,abc' } }, 'invalid_signature');
  // A replay: the same message, 6 minutes later (the tolerance is 5).
  refused({ now: new Date(at.getTime() + 6 * 60_000) }, 'timestamp_out_of_tolerance');
  refused({ now: new Date(at.getTime() - 6 * 60_000) }, 'timestamp_out_of_tolerance');
  assert.equal(verifyWebhook({ secret: current, headers, body, now: new Date(at.getTime() + 6 * 60_000), toleranceSeconds: 600 }).type, 'connection.deleted');
  refused({ headers: { ...headers, 'webhook-signature': undefined } }, 'missing_headers');
  refused({ headers: { ...headers, 'webhook-timestamp': '1e9' } }, 'invalid_timestamp');
  assert.throws(() => verifyWebhook({ secret: 'not-a-secret', headers, body }), TypeError);
  assert.throws(() => verifyWebhook({ headers, body }), TypeError);
});

it('the client imports nothing of the server: only its own files, openapi-fetch and node:crypto', () => {
  const dir = join(ROOT, 'src/client');
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
  assert.ok(files.includes('index.ts') && files.includes('openapi.ts'));
  for (const file of files) {
    const text = readFileSync(join(dir, file), 'utf8');
    for (const [, specifier] of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*from\s+'([^']+)'/g)) {
      if (specifier === undefined || specifier === 'openapi-fetch' || specifier === 'node:crypto') continue;
      const target = resolve(dirname(join(dir, file)), specifier);
      assert.ok(!relative(dir, target).startsWith('..'), `${file} imports ${specifier}, outside src/client`);
    }
  }
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { default: string; types: string }> };
  assert.deepEqual(pkg.exports['./client'], { types: './dist/client/index.d.ts', default: './dist/client/index.js' }, 'latchkey/client is what tsc builds from src/client/index.ts');
});

it('a request that gets no answer is a LatchkeyNetworkError, without the key', async () => {
  const apiKey = `lk_${secret('net')}`;
  const client = new LatchkeyClient({ baseUrl: `http://127.0.0.1:${await freePort()}/`, apiKey });
  const err = await thrown(() => client.me.get());
  assert.ok(err instanceof LatchkeyNetworkError, String(err));
  assert.ok(!(err instanceof LatchkeyApiError));
  assert.match(err.message, /^Could not reach Latchkey at http:\/\/127\.0\.0\.1:\d+/);
  assert.ok(!shown(err).includes(apiKey));
  assert.ok(!inspect(client, { depth: 10 }).includes(apiKey) && !JSON.stringify(client).includes(apiKey), 'the client shows no key');
  assert.throws(() => new LatchkeyClient({ baseUrl: 'latchkey', apiKey }), TypeError);
  assert.throws(() => new LatchkeyClient({ baseUrl: 'http://x', apiKey: '' }), TypeError);
});

await eachDialect('the SDK against a latchkey serve process', (dialect) => {
  let tdb: TestDatabase;
  let server: ServerProcess | undefined;
  let upstream: Awaited<ReturnType<typeof recorder>>;
  let receiver: Awaited<ReturnType<typeof recorder>>;
  let key: string;
  let latchkey: LatchkeyClient;
  /** Every secret the test made: none may appear in an error or the server's output. */
  const secrets: string[] = [];

  before(async () => {
    upstream = await recorder((request, response) => {
      if (request.url.startsWith('/api/missing')) {
        // An upstream error that looks like Latchkey's, but is the provider's: passed through.
        response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found","message":"No such item.","requestId":"up_1"}}');
      } else if (request.url.startsWith('/api/stream')) {
        response.writeHead(207, { 'content-type': 'text/plain', 'x-upstream': 'yes' });
        response.write('first,');
        setTimeout(() => response.end('second'), 10);
      } else {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method: request.method, url: request.url, body: request.body }));
      }
    });
    receiver = await recorder((_request, response) => response.writeHead(204).end());
    tdb = await createTestDatabase(dialect);
    const port = await freePort();
    const env = latchkeyEnv(tdb, {
      LATCHKEY_PUBLIC_URL: `http://127.0.0.1:${port}`,
      LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1',
      LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS,
      LATCHKEY_LOG_LEVEL: 'info',
    });
    server = await startServer(['--port', String(port)], { env });
    const minted = await runCli(['admin', 'create-key', '--tenant', 'default', '--user', 'admin', '--name', 'app', '--json'], { env });
    assert.equal(minted.code, 0, minted.stderr);
    key = (JSON.parse(minted.stdout) as { key: string }).key;
    secrets.push(key);
    latchkey = new LatchkeyClient({ baseUrl: server.url, apiKey: key });
  });
  after(async () => {
    if (server) assert.equal(await server.stop(), 0, server.output());
    const output = server?.output() ?? '';
    for (const value of secrets) assert.ok(!output.includes(value), 'no secret in the server\'s output');
    await new Promise((done) => upstream.server.close(done));
    await new Promise((done) => receiver.server.close(done));
    await tdb.dispose();
  });

  it('creates, lists and revokes API keys; a revoked key is unauthorized', async () => {
    const me = await latchkey.me.get();
    assert.equal(me.tenant.name, 'default');
    const { key: minted, apiKey } = await latchkey.apiKeys.create({ name: 'worker', roles: ['viewer'] });
    secrets.push(minted);
    assert.match(minted, /^lk_/);
    const worker = new LatchkeyClient({ baseUrl: server?.url ?? '', apiKey: minted });
    assert.equal((await worker.me.get()).apiKey?.id, apiKey.id);

    const listed = await latchkey.apiKeys.list({ limit: 100 });
    const found = listed.items.find((item) => item.id === apiKey.id);
    assert.ok(found, 'the new key is listed');
    assert.ok(!JSON.stringify(listed).includes(minted), 'a list never shows a key');
    assert.equal((await latchkey.apiKeys.get(apiKey.id)).name, 'worker');

    // A roll answers a new secret once; with no grace period the old one stops at once.
    const rolled = await latchkey.apiKeys.roll(apiKey.id);
    secrets.push(rolled.key);
    assert.notEqual(rolled.key, minted);
    const stale = await thrown(() => worker.me.get());
    assert.ok(stale instanceof LatchkeyApiError && stale.code === 'unauthorized', String(stale));
    const rolledWorker = new LatchkeyClient({ baseUrl: server?.url ?? '', apiKey: rolled.key });
    assert.equal((await rolledWorker.me.get()).apiKey?.id, apiKey.id);

    await latchkey.apiKeys.revoke(apiKey.id);
    const refused = await thrown(() => rolledWorker.me.get());
    assert.ok(refused instanceof LatchkeyApiError, String(refused));
    assert.equal(refused.status, 401);
    assert.equal(refused.code satisfies ApiErrorCode, 'unauthorized');
    assert.match(refused.requestId, /\S/);
    assert.ok(!shown(refused).includes(rolled.key) && !shown(stale).includes(minted), 'the refused key is in no error');
  });

  it('answers typed errors: not_found, validation_failed with the fields, forbidden', async () => {
    const missing = await thrown(() => latchkey.connectors.get('connector_nope'));
    assert.ok(missing instanceof LatchkeyApiError);
    assert.equal(missing.status, 404);
    assert.equal(missing.code, 'not_found');
    assert.match(missing.message, /^[A-Z].*\.$/, 'one sentence');

    const invalid = await thrown(() => latchkey.webhooks.create({ url: 'not a url', events: ['connection.created'] }));
    assert.ok(invalid instanceof LatchkeyApiError);
    assert.equal(invalid.code, 'validation_failed');
    assert.equal(invalid.status, 400);
    assert.ok(invalid.details?.['fields'], JSON.stringify(invalid.details));

    const viewer = await latchkey.apiKeys.create({ name: 'viewer', roles: ['viewer'] });
    secrets.push(viewer.key);
    const narrow = new LatchkeyClient({ baseUrl: server?.url ?? '', apiKey: viewer.key });
    const forbidden = await thrown(() => narrow.connectSessions.create({ endUser: { id: 'u-1' }, allowedConnectors: ['connector_nope'] }));
    assert.ok(forbidden instanceof LatchkeyApiError);
    assert.equal(forbidden.code, 'forbidden');
    for (const err of [missing, invalid, forbidden]) for (const value of secrets) assert.ok(!shown(err).includes(value));

    // A key of the right shape that Latchkey never issued.
    const stranger = new LatchkeyClient({ baseUrl: server?.url ?? '', apiKey: `${key.slice(0, -8)}AAAAAAAA` });
    const unauthorized = await thrown(() => stranger.providers.list());
    assert.ok(unauthorized instanceof LatchkeyApiError);
    assert.equal(unauthorized.code, 'unauthorized');
  });

  it('makes a connector and a connect session; the end user connects on the page; the proxy calls as that end user', async () => {
    assert.ok((await latchkey.providers.list()).items.some((provider) => provider.id === 'http'));
    assert.equal((await latchkey.providers.get('http')).id, 'http');
    const connector = await latchkey.connectors.create({
      name: 'Acme API',
      provider: 'http',
      authType: 'api_key',
      tokenMode: 'per_user',
      config: { apiBaseUrl: `${upstream.url}/api`, name: 'X-Api-Key' },
    });
    assert.ok((await latchkey.connectors.list()).items.some((item) => item.id === connector.id));
    const { secret: signing, endpoint } = await latchkey.webhooks.create({ url: `${receiver.url}/hooks`, events: ['connection.created'] });
    secrets.push(signing);

    const session = await latchkey.connectSessions.create({ endUser: { id: 'u-42', displayName: 'Ada' }, allowedConnectors: [connector.id] });
    secrets.push(session.token);
    const browser = new Browser();
    const page = await browser.get(session.url);
    const form = pageForms(await browser.text(page)).get('Connect Acme API');
    assert.ok(form, 'the page offers the connector');
    const endUserKey = secret('ada-key');
    secrets.push(endUserKey);
    const done = await browser.post(`${server?.url ?? ''}${form.action}`, { ...form.hidden, 'credential.key': endUserKey });
    assert.equal(done.status, 200, await browser.text(done));

    const connection = await latchkey.connections.get(connector.id, { endUserId: 'u-42' });
    assert.equal(connection.status, 'active');
    assert.ok(!JSON.stringify(connection).includes(endUserKey));
    assert.ok((await latchkey.connections.list({ endUserId: 'u-42' })).items.some((item) => item.id === connection.id));

    // GET with a query: the upstream gets the end user's key, never the application's.
    const before = upstream.seen.length;
    const got = await latchkey.proxy(connector.id, '/items?limit=5', { endUserId: 'u-42' });
    assert.equal(got.status, 200);
    assert.deepEqual(await got.json(), { method: 'GET', url: '/api/items?limit=5', body: '' });
    const sent = upstream.seen[before];
    assert.equal(sent?.headers['x-api-key'], endUserKey);
    assert.equal(sent?.headers['authorization'], undefined);

    // A POST body goes through, and so does a streamed answer with the provider's status and headers.
    const posted = await latchkey.proxy(connector.id, 'items', { endUserId: 'u-42', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"x"}' });
    assert.equal(((await posted.json()) as { body: string }).body, '{"name":"x"}');
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('streamed '));
        controller.enqueue(new TextEncoder().encode('body'));
        controller.close();
      },
    });
    const streamedUp = await latchkey.proxy(connector.id, 'upload', { endUserId: 'u-42', method: 'PUT', headers: { 'content-type': 'text/plain' }, body: stream });
    assert.equal(((await streamedUp.json()) as { body: string }).body, 'streamed body');
    const streamed = await latchkey.proxy(connector.id, '/stream', { endUserId: 'u-42' });
    assert.equal(streamed.status, 207);
    assert.equal(streamed.headers.get('x-upstream'), 'yes');
    assert.equal(await streamed.text(), 'first,second');

    // The provider's own error is its answer, not a Latchkey error, even when it looks like one.
    const missing = await latchkey.proxy(connector.id, '/missing', { endUserId: 'u-42' });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { requestId: string } }).error.requestId, 'up_1');

    // Latchkey's own refusals are typed: an end user who never connected, an unknown connector.
    const notConnected = await thrown(() => latchkey.proxy(connector.id, '/items', { endUserId: 'u-43' }));
    assert.ok(notConnected instanceof LatchkeyApiError, String(notConnected));
    assert.equal(notConnected.code, 'not_connected');
    const unknown = await thrown(() => latchkey.proxy('connector_nope', '/items', { endUserId: 'u-42' }));
    assert.ok(unknown instanceof LatchkeyApiError);
    assert.equal(unknown.code, 'not_found');
    // A path never climbs out of the connector's API: not to another Latchkey route, nor upstream.
    const sentBefore = upstream.seen.length;
    for (const path of ['../../../api-keys', '/a/%2e%2e/%2E%2E/%2e%2e/api-keys', '/a/./b', '..\\..\\api-keys']) {
      await assert.rejects(latchkey.proxy(connector.id, path, { endUserId: 'u-42', method: 'POST', body: '{}' }), TypeError, path);
    }
    await assert.rejects(latchkey.proxy('..', '/api-keys', { method: 'POST', body: '{}' }), TypeError);
    for (const id of ['', '.', '..']) await assert.rejects(latchkey.connectors.get(id), TypeError, `connector id ${JSON.stringify(id)}`);
    await assert.rejects(latchkey.tokens.take(connector.id, { user: 'usr_1', endUserId: 'u-42' }), TypeError);
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(latchkey.proxy(connector.id, '/items', { endUserId: 'u-42', signal: aborted.signal }), { name: 'AbortError' });
    assert.equal(upstream.seen.length, sentBefore, 'nothing was sent');
    const escape = await thrown(() => latchkey.proxy(connector.id, '/a/%2F..%2Fadmin', { endUserId: 'u-42' }));
    assert.ok(escape instanceof LatchkeyApiError);
    assert.equal(escape.code, 'invalid_request');
    for (const err of [notConnected, unknown, escape]) for (const value of secrets) assert.ok(!shown(err).includes(value));

    // The token route hands the credential to the application; every use is audited.
    assert.deepEqual(await latchkey.tokens.take(connector.id, { endUserId: 'u-42' }), { authType: 'api_key', in: 'header', name: 'X-Api-Key', prefix: '', key: endUserKey });
    const audited = await latchkey.audit.list({ action: 'connection.proxied', target: connector.id });
    assert.ok(audited.items.length >= 5, `${audited.items.length} proxied calls audited`);

    // The connection.created webhook arrived signed: it verifies, and a tampered or late copy does not.
    const delivery = await until(() => receiver.seen.find((request) => request.url === '/hooks'));
    const headers = delivery.headers as Record<string, string | undefined>;
    const event = verifyWebhook({ secret: signing, headers, body: delivery.body });
    assert.equal(event.type, 'connection.created');
    assert.equal(event.data.connectorId, connector.id);
    assert.equal(event.data.endUserId, 'u-42');
    assert.ok(!delivery.body.includes(endUserKey), 'a webhook body holds no credential');
    assert.throws(() => verifyWebhook({ secret: signing, headers, body: delivery.body.replace('u-42', 'u-43') }), { code: 'invalid_signature' });
    assert.throws(() => verifyWebhook({ secret: signing, headers, body: delivery.body, now: new Date(Date.now() + 3600_000) }), { code: 'timestamp_out_of_tolerance' });

    // Deliveries are listed with their attempts; a redelivery comes again with the same webhook-id.
    const deliveries = await latchkey.webhooks.deliveries(endpoint.id);
    const first = deliveries.items[0];
    assert.ok(first, 'the delivery is listed');
    await latchkey.webhooks.redeliver(endpoint.id, first.id);
    const again = await until(() => receiver.seen.filter((request) => request.url === '/hooks')[1]);
    assert.equal(again.headers['webhook-id'], delivery.headers['webhook-id']);
    const rolled = await latchkey.webhooks.rollSecret(endpoint.id);
    secrets.push(rolled.secret);
    assert.notEqual(rolled.secret, signing);
    assert.equal((await latchkey.webhooks.get(endpoint.id)).id, endpoint.id);

  });

  it('runs the README\'s SDK example, type-checked, against this server', async (t) => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## The TypeScript SDK'));
    const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(block?.includes("from 'latchkey/client'"), 'the README has the SDK example');

    const connector = await latchkey.connectors.create({
      name: 'Example API',
      provider: 'http',
      authType: 'api_key',
      tokenMode: 'per_user',
      config: { apiBaseUrl: `${upstream.url}/api`, name: 'X-Api-Key' },
    });
    // What the end user does on the connect page between the example's first and second steps.
    const endUserKey = secret('u42-key');
    secrets.push(endUserKey);
    await latchkey.connections.save(connector.id, { credential: { key: endUserKey } }, { endUserId: 'u-42' });
    const { secret: signing } = await latchkey.webhooks.create({ url: `${receiver.url}/example`, events: ['connection.needs_reauthorization'] });
    secrets.push(signing);

    // The example, importing the SDK's source, in a file of this repository (so it finds its types).
    const dir = join(ROOT, 'test-results', `sdk-readme-${randomBytes(4).toString('hex')}`);
    mkdirSync(dir, { recursive: true });
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'example.ts');
    const clientUrl = relative(dir, join(ROOT, 'src/client/index.js')).split('\\').join('/');
    writeFileSync(file, (block ?? '').replace("from 'latchkey/client'", `from '${clientUrl}'`));

    const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
    assert.ok(config);
    const program = ts.createProgram([file], { ...config.options, noEmit: true });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    assert.deepEqual(diagnostics, [], 'the example type-checks');

    const printed: string[] = [];
    t.mock.method(console, 'log', (...args: unknown[]) => printed.push(args.map(String).join(' ')));
    const env = { LATCHKEY_URL: server?.url ?? '', LATCHKEY_API_KEY: key, LATCHKEY_CONNECTOR: connector.id, LATCHKEY_WEBHOOK_SECRET: signing };
    const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
    Object.assign(process.env, env);
    let example: { onLatchkeyWebhook(headers: Record<string, string | string[] | undefined>, rawBody: string): unknown };
    try {
      example = (await import(file)) as typeof example;
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    assert.ok(printed.some((line) => line.includes(`/connect?session=lkcs_`)), printed.join('\n'));
    assert.ok(printed.some((line) => line.startsWith('200 ') && line.includes('/api/items?limit=5')), printed.join('\n'));
    assert.ok(printed.includes('u-43 has not connected yet'), printed.join('\n'));
    const sentBy = upstream.seen.find((request) => request.url === '/api/items?limit=5' && request.headers['x-api-key'] === endUserKey);
    assert.ok(sentBy, 'the example called the upstream as the end user');

    // Its webhook handler, given a message as Latchkey signs it, and the same message tampered with.
    const body = JSON.stringify({ type: 'connection.needs_reauthorization', timestamp: new Date().toISOString(), data: { connectorId: connector.id, connectionId: 'c', endUserId: 'u-42' } });
    const headers = signedHeaders([signing], 'msg_readme', new Date(), body);
    process.env['LATCHKEY_WEBHOOK_SECRET'] = signing;
    try {
      example.onLatchkeyWebhook(headers, body);
      assert.ok(printed.includes('ask u-42 to reconnect'), printed.join('\n'));
      assert.throws(() => example.onLatchkeyWebhook(headers, body.replace('u-42', 'u-43')), WebhookVerificationError);
    } finally {
      delete process.env['LATCHKEY_WEBHOOK_SECRET'];
    }
  });
});
