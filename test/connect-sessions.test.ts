// End users and the hosted connect page, as an application and its end users meet them: a real
// `latchkey serve` process with settings from the environment, a real authorization server
// (oidc-provider on 127.0.0.1), and one cookie jar per end user's browser. The application creates a
// connect session per end user; each end user follows the page, signs in at the provider and comes
// back; the application then takes each end user's own token. A link finished in another browser
// attaches nothing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { freePort, runCli, startServer, type ServerProcess } from './support/cli.js';
import { createTestDatabase, eachDialect, latchkeyEnv, LOOPBACK_EGRESS } from './support/databases.js';
import { startOidcProvider, type TestProvider } from './support/oidc-provider.js';
import { formTokenOf } from './support/browser.js';

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

let op: TestProvider;
let port: number;
let base: string;
before(async () => {
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  op = await startOidcProvider({ redirectUris: [`${base}/api/v1/oauth/callback`] });
});
after(async () => {
  await op.stop();
});

async function api(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const h: Record<string, string> = { authorization: `ApiKey ${key}`, ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers: h, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A browser: keeps the cookies Latchkey sets, follows nothing on its own. */
class Browser {
  readonly #cookies = new Map<string, string>();

  async get(url: string): Promise<Response> {
    return this.#send(url, { method: 'GET' });
  }

  async post(url: string, form: Record<string, string>): Promise<Response> {
    return this.#send(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
  }

  async #send(url: string, init: RequestInit): Promise<Response> {
    const cookie = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) } });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = (pair ?? '').indexOf('=');
      const name = (pair ?? '').slice(0, at);
      const value = (pair ?? '').slice(at + 1);
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(line) || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return res;
  }
}

/** The connect page's forms: connector id by button label. */
function connectForms(html: string): Map<string, string> {
  const forms = new Map<string, string>();
  for (const match of html.matchAll(/name="connector" value="([^"]+)">(?:<input type="hidden" name="form_token" value="[^"]*">)?<button type="submit" aria-label="(?:Connect|Reconnect) ([^"]+)"/g)) {
    forms.set(match[2] as string, match[1] as string);
  }
  return forms;
}

/** Starts connecting on the page in `browser`; returns the provider's authorization URL. */
async function start(browser: Browser, pageUrl: string, connectorName: string): Promise<string> {
  const page = await browser.get(pageUrl);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  const connectorId = connectForms(html).get(connectorName);
  assert.ok(connectorId, `the page offers ${connectorName}: ${html}`);
  const session = new URL(pageUrl).searchParams.get('session') as string;
  const started = await browser.post(`${base}/connect/start`, { session, connector: connectorId, form_token: formTokenOf(html) });
  assert.equal(started.status, 303, await started.text());
  return started.headers.get('location') as string;
}

await eachDialect('end users and the hosted connect page', (dialect) => {
  it('two end users connect through the page; each gets their own token; a link finished in another browser attaches nothing', async () => {
    const tdb = await createTestDatabase(dialect);
    const env = latchkeyEnv(tdb, { LATCHKEY_PUBLIC_URL: base, LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS });
    let server: ServerProcess | undefined;
    try {
      server = await startServer(['--port', String(port)], { env });
      const minted = await runCli(['admin', 'create-key', '--tenant', 'default', '--user', 'admin', '--name', 'app', '--json'], { env });
      assert.equal(minted.code, 0, minted.stderr);
      const { key } = JSON.parse(minted.stdout) as { key: string };
      const client = op.clients.basic;
      const created = await api('POST', '/api/v1/connectors', key, {
        name: 'Local IdP',
        provider: 'oidc',
        authType: 'oauth_authorization_code',
        tokenMode: 'per_user',
        config: { issuer: op.issuer, clientId: client.clientId, scopes: ['openid', 'offline_access', 'api:read'] },
        secrets: { clientSecret: client.clientSecret },
      });
      assert.equal(created.status, 201, created.text);
      const connectorId = created.json.id as string;
      const shared = await api('POST', '/api/v1/connectors', key, {
        name: 'Shared IdP',
        provider: 'oidc',
        authType: 'oauth_client_credentials',
        config: { issuer: op.issuer, clientId: client.clientId, scopes: ['api:read'] },
        secrets: { clientSecret: client.clientSecret },
      });
      assert.equal(shared.status, 201, shared.text);

      // Bad sessions change nothing: a shared connector cannot be offered, returnTo must be on an allowed origin.
      const refusedShared = await api('POST', '/api/v1/connect-sessions', key, { endUser: { id: 'alice' }, allowedConnectors: [shared.json.id] });
      assert.equal(refusedShared.status, 400, refusedShared.text);
      const refusedReturn = await api('POST', '/api/v1/connect-sessions', key, { endUser: { id: 'alice' }, returnTo: 'https://evil.example/x' });
      assert.equal(refusedReturn.status, 400, refusedReturn.text);
      const refusedNul = await api('POST', '/api/v1/connect-sessions', key, { endUser: { id: 'al\u0000ice' } });
      assert.equal(refusedNul.status, 400, refusedNul.text);

      const session = async (endUserId: string) => {
        const answer = await api('POST', '/api/v1/connect-sessions', key, {
          endUser: { id: endUserId, displayName: `${endUserId} <b>`, email: `${endUserId}@example.com`, tags: { plan: 'pro' } },
          allowedConnectors: [connectorId],
          allowedOrigins: ['https://app.example.com'],
        });
        assert.equal(answer.status, 201, answer.text);
        assert.equal(answer.headers.get('cache-control'), 'no-store');
        assert.ok(Date.parse(answer.json.expiresAt) - Date.now() > 25 * 60_000, 'about 30 minutes by default');
        return answer.json as { token: string; url: string };
      };
      const alice = await session('alice');
      const bob = await session('bob');
      assert.ok(alice.url.startsWith(`${base}/connect?session=`));

      // Alice connects in her browser.
      const aliceBrowser = new Browser();
      const aliceBack = await op.signIn(await start(aliceBrowser, alice.url, 'Local IdP'), { accountId: 'alice-at-idp' });
      const done = await aliceBrowser.get(aliceBack.href);
      const doneHtml = await done.text();
      assert.equal(done.status, 200, doneHtml);
      assert.match(doneHtml, /Local IdP account is connected/);
      assert.match(doneHtml, /data-origins="\[&quot;https:\/\/app.example.com&quot;\]"/, 'the outcome is posted to the allowed origins only');
      assert.match(doneHtml, /<script src="\/connect\/assets\/connect.js">/);

      // Bob's link is forwarded: Mallory's browser starts it, Bob's browser finishes it (or the reverse). Refused.
      const mallory = new Browser();
      const forwarded = await op.signIn(await start(mallory, bob.url, 'Local IdP'), { accountId: 'mallory-at-idp' });
      const elsewhere = await new Browser().get(forwarded.href);
      const elsewhereHtml = await elsewhere.text();
      assert.equal(elsewhere.status, 400);
      assert.match(elsewhereHtml, /different browser/);
      const bobConnections = await api('GET', '/api/v1/connections?endUserId=bob', key);
      assert.deepEqual(bobConnections.json.items, [], 'nothing attached to bob');

      // Bob connects in his own browser.
      const bobBrowser = new Browser();
      const bobBack = await op.signIn(await start(bobBrowser, bob.url, 'Local IdP'), { accountId: 'bob-at-idp' });
      assert.equal((await bobBrowser.get(bobBack.href)).status, 200);

      // The application takes each end user's own token.
      const accountOf = async (accessToken: string) => (await op.provider.AccessToken.find(accessToken))?.accountId as string | undefined;
      const aliceToken = await api('POST', `/api/v1/connectors/${connectorId}/token`, key, undefined, { 'latchkey-end-user': 'alice' });
      assert.equal(aliceToken.status, 200, aliceToken.text);
      assert.equal(await accountOf(aliceToken.json.accessToken), 'alice-at-idp');
      const bobToken = await api('POST', `/api/v1/connectors/${connectorId}/token`, key, undefined, { 'latchkey-end-user': 'bob' });
      assert.equal(await accountOf(bobToken.json.accessToken), 'bob-at-idp');
      // Without an end user the call is about the calling user, who never connected.
      const nobody = await api('POST', `/api/v1/connectors/${connectorId}/token`, key);
      assert.equal(nobody.status, 404, nobody.text);
      assert.equal(nobody.json.error.code, 'not_connected');
      const carol = await api('POST', `/api/v1/connectors/${connectorId}/token`, key, undefined, { 'latchkey-end-user': 'carol' });
      assert.equal(carol.json.error.code, 'not_connected');

      // Lists: by end user, and "who has connected it?"; never a token.
      const listed = await api('GET', `/api/v1/connectors/${connectorId}/connections`, key);
      assert.deepEqual(listed.json.items.map((c: { endUserId: string }) => c.endUserId).sort(), ['alice', 'bob']);
      assert.ok(!listed.text.includes(aliceToken.json.accessToken));

      // A forced refresh replaces the token through the exactly-once path.
      op.resetCounters();
      const refreshed = await Promise.all(
        Array.from({ length: 10 }, () => api('POST', `/api/v1/connectors/${connectorId}/connection/_refresh`, key, undefined, { 'latchkey-end-user': 'alice' })),
      );
      for (const r of refreshed) assert.equal(r.status, 200, r.text);
      assert.equal(op.counters.refresh, 1, 'ten concurrent forced refreshes, one refresh');
      const newer = await api('POST', `/api/v1/connectors/${connectorId}/token`, key, undefined, { 'latchkey-end-user': 'alice' });
      assert.notEqual(newer.json.accessToken, aliceToken.json.accessToken);
      assert.equal(await accountOf(newer.json.accessToken), 'alice-at-idp');

      // The session token opens the page and nothing else.
      const asKey = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${alice.token}` } });
      assert.equal(asKey.status, 401);
      const tampered = await new Browser().get(`${alice.url.slice(0, -2)}${alice.url.endsWith('A') ? 'B' : 'A'}x`);
      assert.equal(tampered.status, 401);
      assert.match(await tampered.text(), /invalid or has expired/);

      // Disconnect one end user.
      const gone = await api('DELETE', `/api/v1/connectors/${connectorId}/connection`, key, undefined, { 'latchkey-end-user': 'bob' });
      assert.equal(gone.status, 200, gone.text);
      assert.deepEqual((await api('GET', '/api/v1/connections?endUserId=bob', key)).json.items, []);

      assert.equal(await server.stop(), 0);
      const output = server.output();
      server = undefined;
      for (const secret of [alice.token, bob.token, aliceToken.json.accessToken, client.clientSecret]) assert.ok(!output.includes(secret), 'no secret in the log');
      assert.ok(!output.includes('alice@example.com'), 'no end-user email in the log');
    } finally {
      await server?.stop();
      await tdb.dispose();
    }
  });

  it('a provider that refuses shows its own error in words and sends it to returnTo', async () => {
    const tdb = await createTestDatabase(dialect);
    const env = latchkeyEnv(tdb, { LATCHKEY_PUBLIC_URL: base, LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS });
    let server: ServerProcess | undefined;
    try {
      server = await startServer(['--port', String(port)], { env });
      const minted = await runCli(['admin', 'create-key', '--tenant', 'default', '--user', 'admin', '--name', 'app', '--json'], { env });
      const { key } = JSON.parse(minted.stdout) as { key: string };
      const client = op.clients.basic;
      const created = await api('POST', '/api/v1/connectors', key, {
        name: 'Local IdP',
        provider: 'oidc',
        authType: 'oauth_authorization_code',
        tokenMode: 'per_user',
        config: { issuer: op.issuer, clientId: client.clientId, scopes: ['openid'] },
        secrets: { clientSecret: client.clientSecret },
      });
      const endUserId = `eu-${randomBytes(4).toString('hex')}`;
      const made = await api('POST', '/api/v1/connect-sessions', key, {
        endUser: { id: endUserId },
        returnTo: 'https://app.example.com/connected',
        allowedOrigins: ['https://app.example.com'],
      });
      assert.equal(made.status, 201, made.text);
      const browser = new Browser();
      const back = await op.signIn(await start(browser, made.json.url, 'Local IdP'), { accountId: 'x', deny: true });
      const done = await browser.get(back.href);
      assert.equal(done.status, 302);
      const target = new URL(done.headers.get('location') as string);
      assert.equal(`${target.origin}${target.pathname}`, 'https://app.example.com/connected');
      assert.equal(target.searchParams.get('status'), 'failed');
      assert.equal(target.searchParams.get('error'), 'provider_error');
      assert.equal(target.searchParams.get('provider_error'), 'access_denied');
      // The provider's own words (oidc-provider's error_description), not a generic code.
      assert.match(target.searchParams.get('error_description') ?? '', /did not authorize the connection: End-User aborted interaction/);
      assert.equal(target.searchParams.get('connector'), created.json.id);
    } finally {
      await server?.stop();
      await tdb.dispose();
    }
  });
});
