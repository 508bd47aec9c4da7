// Several Latchkey processes on ONE PostgreSQL database, as a deployment behind a load balancer runs
// them:
// - a webhook delivery queued by one instance is sent by another process's worker at once, woken
//   by NOTIFY: that worker polls every 10 minutes, so only the wake-up can explain a delivery
//   within the (generous) wait;
// - two `latchkey serve` processes with one public URL: a connect session created through A is
//   finished in a cookie-keeping browser on B's hosted page, the provider's callback landing on A or
//   on B (the test plays the load balancer by choosing the process of each request), and the
//   connection works through both; a link finished in another browser attaches nothing;
// - a token the resource server refuses: 100 concurrent proxied calls, half through each process,
//   all meet the 401 (the resource server holds its 401s until calls from both processes are
//   there) and cause exactly one refresh at the authorization server (oidc-provider with rotation:
//   a second refresh with the consumed refresh token would revoke the grant).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { loadSettings } from '../src/core/index.js';
import { SYSTEM_ACTOR } from '../src/identity/index.js';
import { createLatchkey } from '../src/latchkey.js';
import { Browser, formTokenOf } from './support/browser.js';
import { cliEnv, freePort, ROOT, runCli, startServer, type ServerProcess } from './support/cli.js';
import { createTestDatabase, DIALECTS, latchkeyEnv, LOOPBACK_EGRESS, postgresSkipReason, type TestDatabase } from './support/databases.js';
import { startOidcProvider, type TestProvider } from './support/oidc-provider.js';

const skip = DIALECTS.includes('postgres') ? await postgresSkipReason() : 'PostgreSQL is not among LATCHKEY_TEST_DIALECTS';
const random = (prefix: string) => `${prefix}-${randomBytes(12).toString('base64url')}`;

/** Waits for `check` to hold, polling; fails after a generous ceiling (never a timing assertion). */
async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, ceilingMs = 30_000): Promise<T> {
  const deadline = Date.now() + ceilingMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`Gave up waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface Received {
  headers: Record<string, string>;
  body: string;
}

/** A webhook receiver on 127.0.0.1 that keeps every request and answers 204. */
async function startReceiver(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const WORKER_CHILD = fileURLToPath(new URL('./support/webhook-worker-child.ts', import.meta.url));

/** Another process with a Latchkey whose background work runs (bus and webhook worker), no HTTP app. */
async function startWorkerProcess(env: Record<string, string>, pollIntervalMs: number) {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), WORKER_CHILD], {
    cwd: ROOT,
    env: cliEnv({ ...env, WEBHOOK_CHILD_POLL_MS: String(pollIntervalMs) }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null]>;
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => (line === 'ready' ? resolve() : (output += `${line}\n`)));
    void exited.then(([code]) => reject(new Error(`the worker process exited with ${code}:\n${output}`)));
  });
  return {
    output: () => output,
    async stop(): Promise<number | null> {
      child.stdin.end();
      const [code] = await exited;
      return code;
    },
  };
}

describe('webhook deliveries across processes [postgres]', skip ? { skip } : {}, () => {
  it('a delivery queued by instance A is sent by the worker of another process, woken by NOTIFY long before its 10-minute poll', async (t) => {
    const tdb = await createTestDatabase('postgres');
    const receiver = await startReceiver();
    const env = latchkeyEnv(tdb, { LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS, LATCHKEY_LOG_LEVEL: 'warn' });
    // Instance A runs no background work: its own worker never starts, so it delivers nothing.
    const a = await createLatchkey({ settings: loadSettings({ env: { ...env, LATCHKEY_LOG_LEVEL: 'silent' } }), http: false });
    t.after(async () => {
      await a.close();
      await receiver.close();
      await tdb.dispose();
    });
    const tenant = await a.identity.tenants.create({ name: `t-${randomBytes(5).toString('hex')}` });
    const { endpoint, secret } = await a.webhooks.endpoints.create(SYSTEM_ACTOR, tenant.id, { url: receiver.url, events: ['connection.deleted'] });
    const connector = await a.connectors.create(SYSTEM_ACTOR, tenant.id, {
      name: random('c'),
      provider: 'oauth2',
      authType: 'oauth_authorization_code',
      tokenMode: 'shared',
      // Never contacted: without a revocation endpoint a disconnect calls nobody.
      config: { authorizationUrl: 'https://idp.example.com/authorize', tokenUrl: 'https://idp.example.com/token', clientId: random('client') },
      secrets: { clientSecret: random('secret') },
    });
    const tokens = { accessToken: random('at'), refreshToken: random('rt') };
    await a.oauth.connections.save(tenant.id, connector.id, null, { ...tokens, tokenType: 'Bearer', expiresAt: new Date(Date.now() + 3600_000).toISOString() });

    const b = await startWorkerProcess(env, 10 * 60_000);
    let stopped = false;
    t.after(async () => {
      if (!stopped) await b.stop();
    });
    // B's worker has made its first pass (nothing due) and now sleeps for 10 minutes.
    await a.oauth.tokens.disconnect(tenant.id, connector.id);
    const [message] = await until('the delivery from the other process', () => (receiver.received.length > 0 ? receiver.received : undefined));
    const body = new Webhook(secret).verify(message?.body ?? '', message?.headers ?? {}) as { type: string; data: Record<string, unknown> };
    assert.equal(body.type, 'connection.deleted');
    assert.equal(body.data.connectionId, `shared:${connector.id}`);
    for (const value of Object.values(tokens)) assert.ok(!message?.body.includes(value), 'no token in the body');
    const [delivery] = await until('the outcome recorded by the other process', async () => {
      const items = await a.webhooks.deliveries(tenant.id, endpoint.id);
      return items[0]?.status === 'succeeded' ? items : undefined;
    });
    assert.equal(delivery?.attempts, 1);
    assert.equal(receiver.received.length, 1, 'sent once');
    stopped = true;
    assert.equal(await b.stop(), 0, b.output());
  });
});

interface Reply {
  status: number;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** The connect page's forms: connector id by button label. */
function connectForms(html: string): Map<string, string> {
  const forms = new Map<string, string>();
  for (const match of html.matchAll(/name="connector" value="([^"]+)">(?:<input type="hidden" name="form_token" value="[^"]*">)?<button type="submit" aria-label="(?:Connect|Reconnect) ([^"]+)"/g)) {
    forms.set(match[2] as string, match[1] as string);
  }
  return forms;
}

describe('two server processes on one PostgreSQL database [postgres]', skip ? { skip } : {}, () => {
  const CONNECTOR_NAME = 'Local IdP';
  let tdb: TestDatabase;
  let op: TestProvider;
  let upstream: FastifyInstance;
  let servers: { a: ServerProcess; b: ServerProcess };
  let key: string;
  let connectorId: string;
  /** The resource server's refused tokens; calls bearing one wait at `hold` for their 401. */
  const refused = new Set<string>();
  const refusedBy = { A: 0, B: 0 };
  let hold: Promise<boolean> = Promise.resolve(true);
  let releaseHold: () => void = () => {};

  before(async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    // One public URL for both, as behind a load balancer: A's address.
    const publicUrl = `http://127.0.0.1:${portA}`;
    op = await startOidcProvider({ redirectUris: [`${publicUrl}/api/v1/oauth/callback`] });
    upstream = Fastify();
    upstream.get('/me', async (request, reply) => {
      const token = /^Bearer (.+)$/.exec(String(request.headers.authorization ?? ''))?.[1];
      if (!token) return reply.code(401).send({ error: 'no token' });
      if (refused.has(token)) {
        const via = request.headers['x-via'] === 'B' ? 'B' : 'A';
        refusedBy[via]++;
        releaseHold();
        await hold;
        return reply.code(401).send({ error: 'invalid_token' });
      }
      const found = await op.provider.AccessToken.find(token);
      if (!found) return reply.code(401).send({ error: 'invalid_token' });
      return { sub: found.accountId };
    });
    await upstream.listen({ host: '127.0.0.1', port: 0 });
    const upstreamUrl = `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`;

    tdb = await createTestDatabase('postgres');
    const env = latchkeyEnv(tdb, { LATCHKEY_PUBLIC_URL: publicUrl, LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS, LATCHKEY_LOG_LEVEL: 'info' });
    // A migrates and bootstraps; B starts on the migrated database.
    const a = await startServer(['--port', String(portA)], { env });
    servers = { a, b: await startServer(['--port', String(portB)], { env }).catch(async (err: unknown) => {
      await a.stop();
      throw err;
    }) };
    const minted = await runCli(['admin', 'create-key', '--tenant', 'default', '--user', 'admin', '--name', 'app', '--json'], { env });
    assert.equal(minted.code, 0, minted.stderr);
    key = (JSON.parse(minted.stdout) as { key: string }).key;
    const created = await api(servers.a, 'POST', '/api/v1/connectors', {
      name: CONNECTOR_NAME,
      provider: 'oidc',
      authType: 'oauth_authorization_code',
      tokenMode: 'per_user',
      config: { issuer: op.issuer, clientId: op.clients.basic.clientId, scopes: ['openid', 'offline_access', 'api:read'], apiBaseUrl: upstreamUrl },
      secrets: { clientSecret: op.clients.basic.clientSecret },
    });
    assert.equal(created.status, 201, created.text);
    connectorId = created.json.id as string;
  });
  after(async () => {
    releaseHold();
    await Promise.all([servers?.a.stop(), servers?.b.stop()]);
    // Read once both have exited: everything they logged has been written.
    const output = `${servers?.a.output() ?? ''}${servers?.b.output() ?? ''}`;
    await upstream?.close();
    await op?.stop();
    await tdb?.dispose();
    assert.ok(key && !output.includes(key), 'no API key in either server\'s output');
    assert.ok(op && !output.includes(op.clients.basic.clientSecret), 'no client secret in either server\'s output');
  });

  async function api(server: ServerProcess, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const h: Record<string, string> = { authorization: `ApiKey ${key}`, ...headers };
    if (body !== undefined) h['content-type'] = 'application/json';
    const res = await fetch(`${server.url}${path}`, { method, headers: h, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json };
  }

  /** `url` sent to `server` instead of the host it names: the load balancer's choice. */
  const on = (server: ServerProcess, url: string) => {
    const u = new URL(url);
    return `${server.url}${u.pathname}${u.search}`;
  };

  /**
   * The end user's browser opens the session's page on `page` and starts connecting there, signs in
   * at the provider as `accountId`, and comes back to the callback; returns the provider's callback URL.
   */
  async function startOnPage(browser: Browser, sessionUrl: string, page: ServerProcess, accountId: string): Promise<string> {
    const listed = await browser.get(on(page, sessionUrl));
    assert.equal(listed.status, 200);
    const html = await listed.text();
    const connector = connectForms(html).get(CONNECTOR_NAME);
    assert.equal(connector, connectorId, 'the page offers the connector');
    const started = await browser.post(`${page.url}/connect/start`, {
      session: new URL(sessionUrl).searchParams.get('session') as string,
      connector: connectorId,
      form_token: formTokenOf(html),
    });
    assert.equal(started.status, 303, await started.text());
    return (await op.signIn(started.headers.get('location') as string, { accountId })).href;
  }

  async function session(server: ServerProcess, endUserId: string): Promise<string> {
    const made = await api(server, 'POST', '/api/v1/connect-sessions', { endUser: { id: endUserId }, allowedConnectors: [connectorId] });
    assert.equal(made.status, 201, made.text);
    return made.json.url as string;
  }

  const accountOf = async (accessToken: string) => (await op.provider.AccessToken.find(accessToken))?.accountId as string | undefined;
  const tokenOf = (server: ServerProcess, endUserId: string) => api(server, 'POST', `/api/v1/connectors/${connectorId}/token`, undefined, { 'latchkey-end-user': endUserId });
  const proxied = (server: ServerProcess, endUserId: string, via: 'A' | 'B') =>
    api(server, 'GET', `/api/v1/connectors/${connectorId}/proxy/me`, undefined, { 'latchkey-end-user': endUserId, 'x-via': via });

  it('a connect session created through A is finished on B\'s hosted page, the callback on A or on B; the connection works through both', async () => {
    const { a, b } = servers;
    for (const [endUserId, callbackOn] of [['alice', a], ['bob', b]] as const) {
      const url = await session(a, endUserId);
      const browser = new Browser();
      const callback = await startOnPage(browser, url, b, `${endUserId}-at-idp`);
      const done = await browser.get(on(callbackOn, callback));
      const html = await done.text();
      assert.equal(done.status, 200, html);
      assert.match(html, new RegExp(`${CONNECTOR_NAME} account is connected`));
    }
    for (const endUserId of ['alice', 'bob']) {
      for (const [server, via] of [[a, 'A'], [b, 'B']] as const) {
        const token = await tokenOf(server, endUserId);
        assert.equal(token.status, 200, token.text);
        assert.equal(await accountOf(token.json.accessToken), `${endUserId}-at-idp`, `${endUserId}'s own token through ${via}`);
        const me = await proxied(server, endUserId, via);
        assert.equal(me.status, 200, me.text);
        assert.deepEqual(me.json, { sub: `${endUserId}-at-idp` });
      }
      const listed = await api(b, 'GET', `/api/v1/connections?endUserId=${endUserId}`);
      assert.deepEqual(listed.json.items.map((c: { connectorId: string; status: string }) => [c.connectorId, c.status]), [[connectorId, 'active']]);
    }

    // A link started in Mallory's browser on B and finished in another browser on A attaches nothing.
    const forwarded = await startOnPage(new Browser(), await session(a, 'carol'), b, 'mallory-at-idp');
    const elsewhere = await new Browser().get(on(a, forwarded));
    assert.equal(elsewhere.status, 400);
    assert.match(await elsewhere.text(), /different browser/);
    assert.deepEqual((await api(b, 'GET', '/api/v1/connections?endUserId=carol')).json.items, []);
  });

  it('100 concurrent proxied calls through both processes meet one 401 each and cause exactly one refresh', async () => {
    const { a, b } = servers;
    const endUserId = 'dave';
    const browser = new Browser();
    const done = await browser.get(on(a, await startOnPage(browser, await session(b, endUserId), b, 'dave-at-idp')));
    assert.equal(done.status, 200, await done.text());
    // Both processes have used (and cached) the token before the resource server refuses it.
    for (const [server, via] of [[a, 'A'], [b, 'B']] as const) assert.equal((await proxied(server, endUserId, via)).status, 200);
    const old = (await tokenOf(a, endUserId)).json.accessToken as string;
    assert.equal((await tokenOf(b, endUserId)).json.accessToken, old);

    // The 401s wait until calls from both processes hold the refused token (each process sends up to
    // 10 at once per connector, all with the old token), so both meet it together.
    const wanted = 5;
    let met = false;
    hold = new Promise<boolean>((resolve) => {
      const ceiling = setTimeout(() => resolve(false), 30_000);
      releaseHold = () => {
        if (refusedBy.A >= wanted && refusedBy.B >= wanted) {
          met = true;
          clearTimeout(ceiling);
          resolve(true);
        }
      };
    });
    refused.add(old);
    op.resetCounters();
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? proxied(a, endUserId, 'A') : proxied(b, endUserId, 'B'))));
    assert.ok(met, `calls from both processes met the 401 together (A ${refusedBy.A}, B ${refusedBy.B})`);
    const failed = answers.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text}`);
    assert.deepEqual(failed, [], 'every call succeeds with the refreshed token');
    for (const answer of answers) assert.deepEqual(answer.json, { sub: 'dave-at-idp' });
    assert.equal(op.counters.refresh, 1, 'exactly one refresh reached the authorization server');
    assert.equal(op.counters.grantsRevoked, 0, 'no refresh token was presented twice');

    const fresh = (await tokenOf(a, endUserId)).json.accessToken as string;
    assert.notEqual(fresh, old);
    assert.equal((await tokenOf(b, endUserId)).json.accessToken, fresh, 'both processes hand out the one new token');
    assert.equal(await accountOf(fresh), 'dave-at-idp');
  });
});
